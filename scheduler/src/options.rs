//! `kube-scheduler`'s flags, with upstream's names and defaults. As upstream, a `--config` file
//! is the main way to configure it; the client and leader-election flags apply when no file is
//! given (upstream ignores those deprecated flags when `--config` is set, and so do we).

use std::path::PathBuf;
use std::time::Duration;

use apimachinery::duration::parse_duration;
use clap::{ArgAction, Parser};
use client::leaderelection::LeaderElectionArgs;
use client::ClientArgs;

#[derive(Parser, Clone, Debug)]
#[command(
    name = "kube-scheduler",
    about = "The Kubernetes scheduler: assigns pods to nodes",
    version
)]
pub struct Options {
    /// The path to the KubeSchedulerConfiguration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// If set, write the configuration values to this file and exit.
    #[arg(long, value_name = "FILE")]
    pub write_config_to: Option<PathBuf>,

    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub leader_election: LeaderElectionArgs,
    /// Who may read /metrics (and the other non-health paths) on the secure port.
    #[command(flatten)]
    pub delegated_auth: client::DelegatedAuthArgs,

    /// The port on which to serve HTTPS with authentication and authorization (0: off).
    #[arg(long, default_value_t = 10259)]
    pub secure_port: u16,
    /// The IP address on which to listen for the --secure-port port.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: std::net::IpAddr,
    /// The directory where a self-signed serving certificate is written when none is given.
    #[arg(long, default_value = "/var/run/kubernetes")]
    pub cert_dir: PathBuf,
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,

    /// The longest a pod may stay in unschedulablePods before it is retried anyway.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub pod_max_in_unschedulable_pods_duration: Duration,

    /// How long a pod naming a scheduler that has no profile here may stay unbound before this
    /// scheduler records a FailedScheduling warning on it (once); 0 turns the warning off. Not
    /// an upstream flag: upstream stays silent about such pods.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub unknown_scheduler_warning_after: Duration,

    /// Log verbosity.
    #[arg(short = 'v', long = "v", default_value_t = 0, action = ArgAction::Set)]
    pub verbosity: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_defaults() {
        let o = Options::try_parse_from(["kube-scheduler"]).unwrap();
        assert_eq!(o.secure_port, 10259);
        assert!(o.leader_election.leader_elect);
        assert_eq!(
            o.pod_max_in_unschedulable_pods_duration,
            Duration::from_secs(300)
        );
        let o = Options::try_parse_from([
            "kube-scheduler",
            "--config=/etc/kubernetes/scheduler.yaml",
            "--leader-elect=false",
            "--secure-port=0",
            "-v=4",
        ])
        .unwrap();
        assert_eq!(
            o.config.as_deref(),
            Some(std::path::Path::new("/etc/kubernetes/scheduler.yaml"))
        );
        assert!(!o.leader_election.leader_elect);
        assert_eq!(o.verbosity, 4);
    }
}
