//! `kube-controller-manager`'s flags, with upstream's names and defaults, and `--controllers`
//! resolution (`*` = every controller on by default, `foo` = on, `-foo` = off; old names are
//! aliases of the new `*-controller` names, as upstream keeps them).

use std::path::PathBuf;
use std::time::Duration;

use apimachinery::duration::parse_duration;
use clap::{ArgAction, Parser};
use client::leaderelection::LeaderElectionArgs;
use client::ClientArgs;

#[derive(Parser, Clone, Debug)]
#[command(
    name = "kube-controller-manager",
    about = "The Kubernetes controller manager: the core control loops",
    version
)]
pub struct Options {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub leader_election: LeaderElectionArgs,
    #[command(flatten)]
    pub delegated_auth: client::DelegatedAuthArgs,

    /// A list of controllers to enable. '*' enables all on-by-default controllers, 'foo' enables
    /// the controller named 'foo', '-foo' disables the controller named 'foo'.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,

    /// The port on which to serve HTTPS with authentication and authorization (0: off).
    #[arg(long, default_value_t = 10257)]
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

    #[arg(long, default_value_t = 5)]
    pub concurrent_replicaset_syncs: usize,
    #[arg(long = "concurrent-rc-syncs", default_value_t = 5)]
    pub concurrent_rc_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_deployment_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_statefulset_syncs: usize,
    #[arg(long, default_value_t = 2)]
    pub concurrent_daemonset_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_job_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_cron_job_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_endpoint_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_service_endpoint_syncs: usize,
    #[arg(long, default_value_t = 20)]
    pub concurrent_gc_syncs: usize,
    /// The maximum number of endpoints added to an EndpointSlice.
    #[arg(long, default_value_t = 100)]
    pub max_endpoints_per_slice: usize,
    /// Service endpoint syncs the endpointslice-mirroring-controller does at once (1-50).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub mirroring_concurrent_service_endpoint_syncs: u16,
    /// The maximum number of endpoints the endpointslice-mirroring-controller mirrors into an
    /// EndpointSlice per Endpoints subset (1-1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub mirroring_max_endpoints_per_subset: u16,
    #[arg(long, default_value_t = 10)]
    pub concurrent_namespace_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_serviceaccount_token_syncs: usize,
    #[arg(long, default_value_t = 5)]
    pub concurrent_ttl_after_finished_syncs: usize,

    /// How long a node may go without a status update or lease renewal before it is unhealthy.
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// The period for syncing NodeStatus in the node lifecycle controller.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,
    /// Number of nodes per second on which pods are deleted in case of node failure when a zone
    /// is healthy (see --unhealthy-zone-threshold for definition of healthy/unhealthy). Zone
    /// refers to entire cluster in non-multizone clusters.
    #[arg(long, default_value_t = 0.1)]
    pub node_eviction_rate: f32,
    /// Number of nodes per second on which pods are deleted in case of node failure when a zone
    /// is unhealthy (see --unhealthy-zone-threshold for definition of healthy/unhealthy). Zone
    /// refers to entire cluster in non-multizone clusters. This value is implicitly overridden
    /// to 0 if the cluster size is smaller than --large-cluster-size-threshold.
    #[arg(long, default_value_t = 0.01)]
    pub secondary_node_eviction_rate: f32,
    /// Number of nodes from which node-lifecycle-controller treats the cluster as large for the
    /// eviction logic purposes. --secondary-node-eviction-rate is implicitly overridden to 0 for
    /// clusters this size or smaller.
    #[arg(long, default_value_t = 50, allow_negative_numbers = true)]
    pub large_cluster_size_threshold: i32,
    /// Fraction of Nodes in a zone which needs to be not Ready (minimum 3) for zone to be
    /// treated as unhealthy.
    #[arg(long, default_value_t = 0.55)]
    pub unhealthy_zone_threshold: f32,
    /// Should CIDRs for Pods be allocated and set on the cloud provider.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allocate_node_cidrs: bool,
    /// CIDR Range for Pods in cluster.
    #[arg(long, default_value = "")]
    pub cluster_cidr: String,
    /// Mask size for node cidr in cluster.
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,
    /// Number of terminated pods that can exist before the terminated pod garbage collector
    /// starts deleting them (<= 0: disabled).
    #[arg(long, default_value_t = 12500)]
    pub terminated_pod_gc_threshold: i64,
    /// A PEM CA certificate to sign cluster-scoped certificates with.
    #[arg(long)]
    pub cluster_signing_cert_file: Option<PathBuf>,
    #[arg(long)]
    pub cluster_signing_key_file: Option<PathBuf>,
    /// The max length of duration signed certificates will be given.
    #[arg(long, default_value = "8760h", value_parser = parse_duration)]
    pub cluster_signing_duration: Duration,
    /// The root certificate authority published in every namespace's kube-root-ca.crt ConfigMap.
    #[arg(long)]
    pub root_ca_file: Option<PathBuf>,
    /// Filename containing a PEM-encoded private RSA or ECDSA key used to sign service account
    /// tokens.
    #[arg(long)]
    pub service_account_private_key_file: Option<PathBuf>,

    /// Log verbosity (0-10), as upstream's -v: 0-1 info, 2-4 debug, 5+ trace.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
}

/// A controller's canonical name, its upstream aliases, and whether `*` includes it.
#[derive(Clone, Copy, Debug)]
pub struct ControllerName {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub on_by_default: bool,
}

impl Options {
    /// Checks `--controllers` against the known names; the message lists them, as upstream's.
    pub fn validate_controllers(&self, known: &[ControllerName]) -> Result<(), String> {
        for item in &self.controllers {
            let name = item.trim().trim_start_matches('-');
            if name == "*" || name.is_empty() {
                continue;
            }
            if !known
                .iter()
                .any(|c| c.name == name || c.aliases.contains(&name))
            {
                let mut all: Vec<&str> = known.iter().map(|c| c.name).collect();
                all.sort_unstable();
                return Err(format!(
                    "\"{name}\" is not in the list of known controllers: {}",
                    all.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Upstream's `IsControllerEnabled`: an explicit `foo` or `-foo` (by name or alias) wins;
    /// otherwise `*` decides by the default.
    pub fn controller_enabled(&self, controller: &ControllerName) -> bool {
        let matches = |item: &str| item == controller.name || controller.aliases.contains(&item);
        let mut star = false;
        for item in &self.controllers {
            let item = item.trim();
            if let Some(negated) = item.strip_prefix('-') {
                if matches(negated) {
                    return false;
                }
            } else if item == "*" {
                star = true;
            } else if matches(item) {
                return true;
            }
        }
        star && controller.on_by_default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[ControllerName] = &[
        ControllerName {
            name: "replicaset-controller",
            aliases: &["replicaset"],
            on_by_default: true,
        },
        ControllerName {
            name: "bootstrap-signer-controller",
            aliases: &["bootstrapsigner"],
            on_by_default: false,
        },
    ];

    fn parse(args: &[&str]) -> Options {
        let mut all = vec!["kube-controller-manager"];
        all.extend_from_slice(args);
        match Options::try_parse_from(all) {
            Ok(options) => options,
            Err(err) => panic!("{err}"),
        }
    }

    #[test]
    fn controllers_follow_upstream_syntax() {
        let [rs, bootstrap] = [KNOWN[0], KNOWN[1]];
        let default = parse(&[]);
        assert!(default.controller_enabled(&rs));
        assert!(!default.controller_enabled(&bootstrap));
        let off = parse(&["--controllers=*,-replicaset"]);
        assert!(!off.controller_enabled(&rs), "an alias disables");
        let on = parse(&["--controllers=*,bootstrap-signer-controller"]);
        assert!(on.controller_enabled(&bootstrap));
        let only = parse(&["--controllers=bootstrapsigner"]);
        assert!(
            !only.controller_enabled(&rs),
            "without * only what is named runs"
        );
        assert!(only.controller_enabled(&bootstrap));
        let bad = parse(&["--controllers=*,nosuch"]);
        let err = bad.validate_controllers(KNOWN).err().unwrap_or_default();
        assert!(
            err.starts_with("\"nosuch\" is not in the list of known controllers"),
            "{err}"
        );
    }

    #[test]
    fn flags_have_upstream_defaults() {
        let o = parse(&[]);
        assert_eq!(o.secure_port, 10257);
        assert_eq!(o.node_monitor_grace_period, Duration::from_secs(40));
        assert_eq!(o.concurrent_gc_syncs, 20);
        assert!(o.leader_election.leader_elect);
        assert_eq!(o.node_eviction_rate, 0.1);
        assert_eq!(o.secondary_node_eviction_rate, 0.01);
        assert_eq!(o.large_cluster_size_threshold, 50);
        assert_eq!(o.unhealthy_zone_threshold, 0.55);
        let o = parse(&[
            "--leader-elect=false",
            "--kube-api-qps=100",
            "--concurrent-deployment-syncs=2",
        ]);
        assert!(!o.leader_election.leader_elect);
        assert_eq!(o.client.kube_api_qps, Some(100.0));
        assert_eq!(o.concurrent_deployment_syncs, 2);
        let o = parse(&[
            "--node-eviction-rate=5",
            "--secondary-node-eviction-rate=0.5",
            "--large-cluster-size-threshold=3",
            "--unhealthy-zone-threshold=0.3",
        ]);
        assert_eq!(
            (
                o.node_eviction_rate,
                o.secondary_node_eviction_rate,
                o.large_cluster_size_threshold,
                o.unhealthy_zone_threshold
            ),
            (5.0, 0.5, 3, 0.3)
        );
    }
}
