//! What exists after start, as upstream's bootstrap controller ensures: the `default`,
//! `kube-system`, `kube-public` and `kube-node-lease` namespaces, and the `kubernetes` Service
//! (first address of the service range, port 443) with its Endpoints and EndpointSlice pointing
//! at this apiserver.

use std::net::IpAddr;

use serde_json::{json, Value};

use crate::errors::ApiResult;
use crate::resources::find;
use crate::server::State;

pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

pub struct Endpoint {
    pub address: IpAddr,
    pub port: u16,
}

pub async fn ensure(
    state: &State,
    service_ip: IpAddr,
    endpoint: Option<Endpoint>,
) -> ApiResult<()> {
    for class in crate::admission_plugins::system_priority_classes() {
        create_if_missing(state, "scheduling.k8s.io", "v1", "priorityclasses", class).await?;
    }
    for name in SYSTEM_NAMESPACES {
        create_if_missing(
            state,
            "",
            "v1",
            "namespaces",
            json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
            }),
        )
        .await?;
    }
    let port = endpoint.as_ref().map(|e| e.port).unwrap_or(443);
    crate::allocator::reserve_cluster_ip(state.registry.store(), service_ip, "default/kubernetes")
        .await?;
    create_if_missing(
        state,
        "",
        "v1",
        "services",
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": service_ip.to_string(),
                "clusterIPs": [service_ip.to_string()],
                "ipFamilies": [if service_ip.is_ipv4() { "IPv4" } else { "IPv6" }],
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster",
                "sessionAffinity": "None",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
            },
        }),
    )
    .await?;
    if let Some(endpoint) = endpoint {
        let address = endpoint.address.to_string();
        create_if_missing(state, "", "v1", "endpoints", json!({
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": address}],
                         "ports": [{"name": "https", "port": endpoint.port, "protocol": "TCP"}]}],
        }))
        .await?;
        create_if_missing(
            state,
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            json!({
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"kubernetes.io/service-name": "kubernetes"}},
                "addressType": if endpoint.address.is_ipv4() { "IPv4" } else { "IPv6" },
                "endpoints": [{"addresses": [address], "conditions": {"ready": true}}],
                "ports": [{"name": "https", "port": endpoint.port, "protocol": "TCP"}],
            }),
        )
        .await?;
    }
    Ok(())
}

async fn create_if_missing(
    state: &State,
    group: &str,
    version: &str,
    plural: &str,
    obj: Value,
) -> ApiResult<()> {
    let Some(resource) = find(group, version, plural) else {
        return Ok(());
    };
    let admit = |obj: Value, _: Option<&Value>| Ok(obj);
    match state.registry.create(resource, obj, false, &admit).await {
        Ok(_) => Ok(()),
        Err(err) if err.code == 409 => Ok(()),
        Err(err) => Err(err),
    }
}

/// Creates upstream's bootstrap RBAC policy, and reconciles what already exists the way
/// upstream does: objects annotated `rbac.authorization.kubernetes.io/autoupdate: "true"` gain
/// missing rules, subjects, labels and annotations; nothing is removed; a binding whose roleRef
/// changed is recreated (roleRef cannot be updated).
pub async fn ensure_rbac(state: &State) -> ApiResult<()> {
    let policy = rbac::bootstrap_policy();
    let groups = [
        ("clusterroles", policy.cluster_roles),
        ("clusterrolebindings", policy.cluster_role_bindings),
        ("roles", policy.roles),
        ("rolebindings", policy.role_bindings),
    ];
    for (plural, objects) in groups {
        let Some(resource) = find("rbac.authorization.k8s.io", "v1", plural) else {
            continue;
        };
        for wanted in objects {
            let namespace = crate::object::namespace(&wanted).to_string();
            let name = crate::object::name(&wanted).to_string();
            let existing = match state.registry.get(resource, &namespace, &name).await {
                Ok(existing) => existing,
                Err(err) if err.code == 404 => {
                    create_if_missing(state, "rbac.authorization.k8s.io", "v1", plural, wanted)
                        .await?;
                    continue;
                }
                Err(err) => return Err(err),
            };
            let Some(next) = rbac::reconcile(&wanted, &existing) else {
                continue;
            };
            if next.get("roleRef") != existing.get("roleRef") {
                let delete = crate::registry::DeleteRequest::default();
                state
                    .registry
                    .delete(resource, &namespace, &name, &delete)
                    .await?;
                create_if_missing(state, "rbac.authorization.k8s.io", "v1", plural, next).await?;
                continue;
            }
            let admit = |obj: Value, _: Option<&Value>| Ok(obj);
            let track = |obj: Value, _: Option<&Value>| obj;
            state
                .registry
                .update(
                    resource,
                    &namespace,
                    &name,
                    crate::strategy::Part::Main,
                    next,
                    false,
                    &track,
                    &admit,
                )
                .await?;
        }
    }
    Ok(())
}
