//! Command-line flags, named as upstream's kube-apiserver names them.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

#[derive(Clone, Debug, Parser)]
#[command(name = "kube-apiserver", about = "The Kubernetes API server", version)]
pub struct Options {
    /// Directory of the embedded store (used unless --etcd-servers is given).
    #[arg(long, default_value = "/var/lib/kube-apiserver")]
    pub data_dir: PathBuf,

    /// etcd members to connect to (scheme://ip:port), comma separated. Selects the etcd backend.
    #[arg(long, value_delimiter = ',')]
    pub etcd_servers: Vec<String>,

    /// The prefix to prepend to all resource paths in etcd.
    #[arg(long, default_value = "/registry")]
    pub etcd_prefix: String,

    /// SSL Certificate Authority file used to secure etcd communication.
    #[arg(long)]
    pub etcd_cafile: Option<PathBuf>,

    /// SSL certification file used to secure etcd communication.
    #[arg(long)]
    pub etcd_certfile: Option<PathBuf>,

    /// SSL key file used to secure etcd communication.
    #[arg(long)]
    pub etcd_keyfile: Option<PathBuf>,

    /// The interval of compaction requests (e.g. 5m, 1h30m). 0 disables compaction.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub etcd_compaction_interval: Duration,

    /// The port on which to serve HTTPS with authentication and authorization. 0 disables it.
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,

    /// The IP address on which to listen for the --secure-port port.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,

    /// Plain HTTP on 127.0.0.1 with full access and no authentication, like upstream's removed
    /// insecure port. 0 (the default) disables it.
    #[arg(long, default_value_t = 0)]
    pub insecure_port: u16,

    /// The directory where the self-signed serving certificate is written when --tls-cert-file
    /// and --tls-private-key-file are not given.
    #[arg(long, default_value = "/var/run/kubernetes")]
    pub cert_dir: PathBuf,

    /// File containing the default x509 serving certificate (PEM, server certificate first).
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,

    /// File containing the default x509 private key matching --tls-cert-file.
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,

    /// If set, any request presenting a client certificate signed by one of the authorities in
    /// this file is authenticated with the certificate's CommonName as the user.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,

    /// If set, the file that will be used to secure the secure port of the API server via token
    /// authentication (CSV: token,user,uid,"group1,group2").
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,

    /// The private key (RSA or P-256, PEM) that signs service-account tokens.
    #[arg(long)]
    pub service_account_signing_key_file: Option<PathBuf>,

    /// Public keys (or certificates, or private keys) that verify service-account tokens; may
    /// be given several times.
    #[arg(long)]
    pub service_account_key_file: Vec<PathBuf>,

    /// The issuer (`iss`) of service-account tokens; the first one signs, all are accepted.
    #[arg(long)]
    pub service_account_issuer: Vec<String>,

    /// Identifiers of the API; tokens must carry one of them in `aud`. Defaults to the issuers.
    #[arg(long, value_delimiter = ',')]
    pub api_audiences: Vec<String>,

    /// The maximum validity of a token from the TokenRequest API (0: no maximum).
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub service_account_max_token_expiration: Duration,

    /// Enables anonymous requests to the secure port (user system:anonymous, group
    /// system:unauthenticated). Off by default, as in a CIS-hardened cluster.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub anonymous_auth: bool,

    /// Ordered list of plug-ins to do authorization on the secure port: Node, RBAC,
    /// AlwaysAllow, AlwaysDeny; system:masters is always allowed.
    #[arg(long, value_delimiter = ',', default_value = "Node,RBAC")]
    pub authorization_mode: Vec<String>,

    /// The IP address on which to advertise the apiserver to members of the cluster (the
    /// `kubernetes` Service's endpoint). Defaults to 127.0.0.1 when the bind address is
    /// unspecified.
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,

    /// A CIDR notation IP range from which to assign service cluster IPs.
    #[arg(long, default_value = "10.0.0.0/24")]
    pub service_cluster_ip_range: String,

    /// A port range to reserve for services with NodePort visibility (e.g. 30000-32767).
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,

    /// The file with the EncryptionConfiguration: which resources are encrypted at rest, and
    /// how.
    #[arg(long)]
    pub encryption_provider_config: Option<PathBuf>,

    /// Turns on aggregator routing requests to endpoint IP rather than cluster IP (also how
    /// admission webhooks named by `clientConfig.service` are reached).
    #[arg(long, default_value_t = false)]
    pub enable_aggregator_routing: bool,

    /// Admission plugins to enable besides the default ones (e.g. NodeRestriction).
    #[arg(long, value_delimiter = ',')]
    pub enable_admission_plugins: Vec<String>,

    /// Admission plugins to turn off even though they are on by default.
    #[arg(long, value_delimiter = ',')]
    pub disable_admission_plugins: Vec<String>,

    /// Path to the file that defines the audit policy configuration.
    #[arg(long)]
    pub audit_policy_file: Option<PathBuf>,

    /// If set, all requests coming to the apiserver will be logged to this file ('-' means
    /// standard out).
    #[arg(long)]
    pub audit_log_path: Option<PathBuf>,

    /// The maximum number of days to retain old audit log files based on the timestamp encoded
    /// in their filename.
    #[arg(long, default_value_t = 0)]
    pub audit_log_maxage: u64,

    /// The maximum number of old audit log files to retain.
    #[arg(long, default_value_t = 0)]
    pub audit_log_maxbackup: usize,

    /// The maximum size in megabytes of the audit log file before it gets rotated.
    #[arg(long, default_value_t = 0)]
    pub audit_log_maxsize: u64,

    /// The maximum number of non-mutating requests in flight at a given time (0: no limit).
    #[arg(long, default_value_t = 400)]
    pub max_requests_inflight: usize,

    /// The maximum number of mutating requests in flight at a given time (0: no limit).
    #[arg(long, default_value_t = 200)]
    pub max_mutating_requests_inflight: usize,

    /// Log verbosity (0-10), as upstream's -v: 0-1 info, 2-4 debug, 5+ trace.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
}

pub use apimachinery::duration::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_local_command_parses() {
        let options = Options::try_parse_from([
            "kube-apiserver",
            "--data-dir",
            "/tmp/d",
            "--secure-port",
            "0",
            "--insecure-port",
            "18080",
        ])
        .unwrap();
        assert_eq!(options.secure_port, 0);
        assert_eq!(options.insecure_port, 18080);
        assert!(options.etcd_servers.is_empty());
    }
}
