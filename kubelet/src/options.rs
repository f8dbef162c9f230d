//! The kubelet's flags, with upstream's names. As upstream, most settings also live in the
//! `KubeletConfiguration` file given with `--config`; a flag given on the command line wins over
//! the file, so every flag that mirrors a file field is an `Option` here ("not given" is not
//! the same as "given with the default value"). [`crate::config`] merges the two.
//!
//! Not upstream: `--hollow-nodes N` (N simulated node agents in one process, like kubemark's
//! hollow nodes) and `--master` (the test harness's way to point every daemon at an insecure
//! apiserver; a kubeconfig is the upstream way).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use apimachinery::duration::parse_duration;
use clap::{ArgAction, Parser};
use client::ClientArgs;

#[derive(Parser, Clone, Debug)]
#[command(
    name = "kubelet",
    about = "The kubelet: the primary node agent. It registers the node with the apiserver, \
             keeps the node's Lease and status, and runs the pods bound to the node",
    version
)]
pub struct Options {
    /// The path to the KubeletConfiguration file (kubelet.config.k8s.io/v1beta1, YAML or JSON).
    /// Flags given on the command line override its values.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// --kubeconfig, --kube-api-qps, --kube-api-burst, --kube-api-content-type (and --master).
    /// Without a kubeconfig the kubelet runs standalone: no Node, no Lease.
    #[command(flatten)]
    pub client: ClientArgs,

    /// Directory path for managing kubelet files (volume mounts, etc).
    #[arg(long, default_value = "/var/lib/kubelet", value_name = "DIR")]
    pub root_dir: PathBuf,
    /// The directory where the TLS certs are located. Ignored when tlsCertFile and
    /// tlsPrivateKeyFile are given.
    #[arg(long, default_value = "/var/lib/kubelet/pki", value_name = "DIR")]
    pub cert_dir: PathBuf,

    /// If non-empty, will use this string as identification instead of the actual hostname.
    /// With --hollow-nodes, the base of the hollow nodes' names.
    #[arg(long, value_name = "NAME")]
    pub hostname_override: Option<String>,
    /// IP address (or comma-separated dual-stack IP addresses) of the node. If unset, the
    /// kubelet uses the address of the interface holding the default route.
    #[arg(long, value_name = "IP[,IP]")]
    pub node_ip: Option<String>,
    /// Labels to add when registering the node in the cluster (`key=value,key2=value2`).
    /// Labels in the kubernetes.io and k8s.io namespaces must be ones the kubelet may set.
    #[arg(long, value_name = "LABELS")]
    pub node_labels: Option<String>,
    /// Register the node with the given list of taints
    /// (comma-separated `<key>=<value>:<effect>`).
    #[arg(long, value_name = "TAINTS")]
    pub register_with_taints: Option<String>,
    /// Register the node with the apiserver.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub register_node: Option<bool>,

    /// The endpoint of the remote runtime service (`unix:///run/containerd/containerd.sock`;
    /// `sim://` selects the simulated runtime).
    #[arg(long, value_name = "ENDPOINT")]
    pub container_runtime_endpoint: Option<String>,
    /// The endpoint of the remote image service; the runtime endpoint when empty.
    #[arg(long, value_name = "ENDPOINT")]
    pub image_service_endpoint: Option<String>,
    /// Path to the directory containing static pod files to run, or a single static pod file.
    #[arg(long, value_name = "PATH")]
    pub pod_manifest_path: Option<String>,

    /// Number of Pods that can run on this kubelet.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_pods: Option<i32>,
    /// The IP address for the kubelet to serve on (0.0.0.0 or :: for all interfaces).
    #[arg(long, value_name = "IP")]
    pub address: Option<IpAddr>,
    /// The port for the kubelet to serve on.
    #[arg(long, value_name = "PORT", allow_negative_numbers = true)]
    pub port: Option<i32>,
    /// The read-only port for the kubelet to serve on with no authentication (0 to disable).
    #[arg(long, value_name = "PORT", allow_negative_numbers = true)]
    pub read_only_port: Option<i32>,
    /// The port of the localhost healthz endpoint (0 to disable).
    #[arg(long, value_name = "PORT", allow_negative_numbers = true)]
    pub healthz_port: Option<i32>,
    /// The IP address for the healthz server to serve on.
    #[arg(long, value_name = "IP")]
    pub healthz_bind_address: Option<IpAddr>,
    /// The CIDR to use for pod IP addresses, only used in standalone mode.
    #[arg(long, value_name = "CIDR")]
    pub pod_cidr: Option<String>,
    /// Comma-separated list of DNS server IP addresses for the pods.
    #[arg(long, value_name = "IPS", value_delimiter = ',')]
    pub cluster_dns: Option<Vec<String>>,
    /// Domain for this cluster; containers search it in addition to the host's domains.
    #[arg(long, value_name = "DOMAIN")]
    pub cluster_domain: Option<String>,
    /// Max period between synchronizing running containers and config.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub sync_frequency: Option<Duration>,
    /// How often the kubelet computes the node status and posts it when it changed.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub node_status_update_frequency: Option<Duration>,
    /// Makes the kubelet fail to start if swap is enabled on the node.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub fail_swap_on: Option<bool>,
    /// Driver used to manipulate cgroups on the host (cgroupfs or systemd).
    #[arg(long, value_name = "DRIVER")]
    pub cgroup_driver: Option<String>,
    /// File containing the x509 certificate for HTTPS.
    #[arg(long, value_name = "FILE")]
    pub tls_cert_file: Option<String>,
    /// File containing the x509 private key matching --tls-cert-file.
    #[arg(long, value_name = "FILE")]
    pub tls_private_key_file: Option<String>,
    /// Enables anonymous requests to the kubelet server.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub anonymous_auth: Option<bool>,
    /// Use the TokenReview API to authenticate bearer tokens.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub authentication_token_webhook: Option<bool>,
    /// Authorization mode for the kubelet server (AlwaysAllow or Webhook).
    #[arg(long, value_name = "MODE")]
    pub authorization_mode: Option<String>,
    /// A bundle of client CAs: client certificates signed by one of them are authenticated.
    #[arg(long, value_name = "FILE")]
    pub client_ca_file: Option<String>,
    /// Resources reserved for non-kubernetes components (`cpu=200m,memory=500Mi`).
    #[arg(long, value_name = "RESOURCES")]
    pub system_reserved: Option<String>,
    /// Resources reserved for kubernetes system components (`cpu=200m,memory=500Mi`).
    #[arg(long, value_name = "RESOURCES")]
    pub kube_reserved: Option<String>,
    /// Hard eviction thresholds (`memory.available<100Mi,nodefs.available<10%`).
    #[arg(long, value_name = "THRESHOLDS")]
    pub eviction_hard: Option<String>,

    /// Not upstream: run this many simulated
    /// node agents (`<hostname-override>-0` ... `-N-1`) in this process, on the simulated
    /// runtime, with simulated machines. 0: one ordinary node.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub hollow_nodes: u32,

    /// The runtime's CNI configuration directory: once the node has a podCIDR, the kubelet
    /// writes a bridge + host-local conflist for it there, unless another configuration is
    /// present. Empty turns this off.
    #[arg(long, default_value = "/etc/cni/net.d", value_name = "DIR")]
    pub cni_conf_dir: PathBuf,

    /// Log verbosity.
    #[arg(short = 'v', long = "v", default_value_t = 0, action = ArgAction::Set)]
    pub verbosity: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_names_and_defaults() {
        let o = Options::try_parse_from(["kubelet"]).unwrap();
        assert_eq!(o.root_dir, PathBuf::from("/var/lib/kubelet"));
        assert_eq!(o.cert_dir, PathBuf::from("/var/lib/kubelet/pki"));
        assert_eq!(o.container_runtime_endpoint, None);
        assert_eq!(o.hollow_nodes, 0);
        assert_eq!(o.register_node, None);
        let o = Options::try_parse_from([
            "kubelet",
            "--kubeconfig=/etc/kubernetes/kubelet.conf",
            "--config",
            "/var/lib/kubelet/config.yaml",
            "--container-runtime-endpoint",
            "sim://",
            "--hostname-override=n1",
            "--node-ip=10.0.0.5",
            "--max-pods=30",
            "--node-labels=a=b,c=d",
            "--register-with-taints=k=v:NoSchedule",
            "--fail-swap-on=false",
            "--register-node",
            "--node-status-update-frequency=4s",
            "--cluster-dns=10.96.0.10,10.96.0.11",
            "--hollow-nodes=3",
            "-v=4",
        ])
        .unwrap();
        assert_eq!(
            o.client.kubeconfig,
            Some(PathBuf::from("/etc/kubernetes/kubelet.conf"))
        );
        assert_eq!(
            o.config,
            Some(PathBuf::from("/var/lib/kubelet/config.yaml"))
        );
        assert_eq!(o.container_runtime_endpoint.as_deref(), Some("sim://"));
        assert_eq!(o.max_pods, Some(30));
        assert_eq!(o.fail_swap_on, Some(false));
        assert_eq!(o.register_node, Some(true));
        assert_eq!(o.node_status_update_frequency, Some(Duration::from_secs(4)));
        assert_eq!(
            o.cluster_dns,
            Some(vec!["10.96.0.10".to_string(), "10.96.0.11".to_string()])
        );
        assert_eq!(o.hollow_nodes, 3);
        assert_eq!(o.verbosity, 4);
    }

    #[test]
    fn go_style_booleans_take_their_value_after_an_equals_sign() {
        // `--fail-swap-on false` is a flag and a stray argument in Go's flag package too.
        assert!(Options::try_parse_from(["kubelet", "--fail-swap-on", "false"]).is_err());
        let o = Options::try_parse_from(["kubelet", "--fail-swap-on"]).unwrap();
        assert_eq!(o.fail_swap_on, Some(true));
    }
}
