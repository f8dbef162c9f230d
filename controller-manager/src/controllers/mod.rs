//! The controllers, one module each, and the table `--controllers` selects from.

pub mod certificates;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod endpointslicemirroring;
pub mod garbagecollector;
pub mod job;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod podgc;
pub mod pvbinder;
pub mod replicaset;
pub mod serviceaccount;
pub mod statefulset;

use crate::framework::ControllerContext;
use crate::options::ControllerName;

/// A controller: its names and how to start it.
pub struct Descriptor {
    pub name: ControllerName,
    /// Registers informers and handlers and spawns the workers; returns at once.
    pub start: fn(&ControllerContext) -> anyhow::Result<()>,
}

const fn name(
    name: &'static str,
    aliases: &'static [&'static str],
    on_by_default: bool,
) -> ControllerName {
    ControllerName {
        name,
        aliases,
        on_by_default,
    }
}

/// Every controller this manager has, in upstream's canonical names.
pub fn all() -> Vec<Descriptor> {
    vec![
        Descriptor {
            name: name("replicaset-controller", &["replicaset"], true),
            start: replicaset::start_replicaset,
        },
        Descriptor {
            name: name(
                "replicationcontroller-controller",
                &["replicationcontroller"],
                true,
            ),
            start: replicaset::start_replication_controller,
        },
        Descriptor {
            name: name("deployment-controller", &["deployment"], true),
            start: deployment::start,
        },
        Descriptor {
            name: name("statefulset-controller", &["statefulset"], true),
            start: statefulset::start,
        },
        Descriptor {
            name: name("daemonset-controller", &["daemonset"], true),
            start: daemonset::start,
        },
        Descriptor {
            name: name("job-controller", &["job"], true),
            start: job::start,
        },
        Descriptor {
            name: name("cronjob-controller", &["cronjob"], true),
            start: cronjob::start,
        },
        Descriptor {
            name: name(
                "ttl-after-finished-controller",
                &["ttl-after-finished"],
                true,
            ),
            start: job::start_ttl_after_finished,
        },
        Descriptor {
            name: name(
                "persistentvolume-binder-controller",
                &["persistentvolume-binder"],
                true,
            ),
            start: pvbinder::start,
        },
        Descriptor {
            name: name(
                "certificatesigningrequest-signing-controller",
                &["csrsigning"],
                true,
            ),
            start: certificates::start_signing,
        },
        Descriptor {
            name: name(
                "certificatesigningrequest-approving-controller",
                &["csrapproving"],
                true,
            ),
            start: certificates::start_approving,
        },
        Descriptor {
            name: name("garbage-collector-controller", &["garbagecollector"], true),
            start: garbagecollector::start,
        },
        Descriptor {
            name: name("namespace-controller", &["namespace"], true),
            start: namespace::start,
        },
        Descriptor {
            name: name("endpoints-controller", &["endpoint"], true),
            start: endpoints::start_endpoints,
        },
        Descriptor {
            name: name("endpointslice-controller", &["endpointslice"], true),
            start: endpoints::start_endpointslices,
        },
        Descriptor {
            name: name(
                "endpointslice-mirroring-controller",
                &["endpointslicemirroring"],
                true,
            ),
            start: endpointslicemirroring::start,
        },
        Descriptor {
            name: name("node-ipam-controller", &["nodeipam"], true),
            start: nodeipam::start,
        },
        Descriptor {
            name: name("node-lifecycle-controller", &["nodelifecycle"], true),
            start: nodelifecycle::start,
        },
        Descriptor {
            name: name("taint-eviction-controller", &[], true),
            start: nodelifecycle::start_taint_eviction,
        },
        Descriptor {
            name: name("pod-garbage-collector-controller", &["podgc"], true),
            start: podgc::start,
        },
        Descriptor {
            name: name("serviceaccount-controller", &["serviceaccount"], true),
            start: serviceaccount::start_serviceaccount_controller,
        },
        Descriptor {
            name: name(
                "root-ca-certificate-publisher-controller",
                &["root-ca-cert-publisher"],
                true,
            ),
            start: serviceaccount::start_root_ca_publisher,
        },
    ]
}

/// Names only, for `--controllers` validation.
pub fn known() -> Vec<ControllerName> {
    all().into_iter().map(|d| d.name).collect()
}
