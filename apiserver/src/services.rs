//! What a Service create or delete does besides storing the object: allocate (and release) its
//! ClusterIP from `--service-cluster-ip-range` and its NodePorts from
//! `--service-node-port-range` (upstream's service REST storage).

use std::net::IpAddr;

use serde_json::{json, Value};

use crate::allocator;
use crate::errors::{self, ApiResult};
use crate::object;
use crate::server::State;

/// What one create claimed, so that a failed create gives it back.
#[derive(Default)]
pub struct Claimed {
    ip: Option<String>,
    ports: Vec<u16>,
}

fn service_type(obj: &Value) -> &str {
    obj.get("spec")
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

fn owner(obj: &Value) -> String {
    format!("{}/{}", object::namespace(obj), object::name(obj))
}

fn refused(obj: &Value, err: errors::ApiError) -> errors::ApiError {
    if err.code != 422 {
        return err;
    }
    let message = err
        .status
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    errors::invalid_value_message(format!(
        "Service \"{}\" is invalid: {message}",
        object::name(obj)
    ))
}

/// Allocates the Service's ClusterIP and NodePorts (or reserves the ones it asks for).
pub async fn allocate(state: &State, obj: &mut Value, dry_run: bool) -> ApiResult<Claimed> {
    let mut claimed = Claimed::default();
    let result = allocate_into(state, obj, dry_run, &mut claimed).await;
    match result {
        Ok(()) => Ok(claimed),
        Err(err) => {
            release(state, claimed).await;
            Err(refused(obj, err))
        }
    }
}

async fn allocate_into(
    state: &State,
    obj: &mut Value,
    dry_run: bool,
    claimed: &mut Claimed,
) -> ApiResult<()> {
    let store = state.registry.store();
    let kind = service_type(obj).to_string();
    let owner = owner(obj);
    if kind != "ExternalName" {
        let requested = obj["spec"]
            .get("clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let ip = match requested.as_str() {
            "None" => None,
            "" => {
                if dry_run {
                    None
                } else {
                    Some(
                        allocator::allocate_cluster_ip(store, &state.config.service_range, &owner)
                            .await?,
                    )
                }
            }
            text => {
                let ip: IpAddr = text.parse().map_err(|_| {
                    errors::invalid_value_message(format!(
                        "spec.clusterIPs[0]: Invalid value: \"{text}\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
                    ))
                })?;
                if !state.config.service_range.contains(ip) {
                    return Err(errors::invalid_value_message(format!(
                        "spec.clusterIPs: Invalid value: [\"{text}\"]: failed to allocate IP {text}: the provided IP ({text}) is not in the valid range. The range of valid IPs is {}",
                        state.config.service_range_text
                    )));
                }
                if !dry_run {
                    allocator::reserve_cluster_ip(store, ip, &owner).await?;
                }
                Some(ip)
            }
        };
        if let Some(ip) = ip {
            claimed.ip = Some(ip.to_string());
            obj["spec"]["clusterIP"] = json!(ip.to_string());
            obj["spec"]["clusterIPs"] = json!([ip.to_string()]);
            obj["spec"]["ipFamilies"] = json!([if ip.is_ipv4() { "IPv4" } else { "IPv6" }]);
            if obj["spec"].get("ipFamilyPolicy").is_none() {
                obj["spec"]["ipFamilyPolicy"] = json!("SingleStack");
            }
        } else if requested == "None" {
            obj["spec"]["clusterIPs"] = json!(["None"]);
        }
    }
    if kind == "NodePort" || kind == "LoadBalancer" {
        let count = obj["spec"]
            .get("ports")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        for i in 0..count {
            let asked = obj["spec"]["ports"][i]
                .get("nodePort")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let range = state.config.node_port_range;
            let port = if asked == 0 {
                if dry_run {
                    continue;
                }
                allocator::allocate_node_port(store, range, &owner).await?
            } else {
                let port = u16::try_from(asked).unwrap_or(0);
                if !dry_run {
                    allocator::reserve_node_port(store, port, range, &owner).await?;
                }
                port
            };
            claimed.ports.push(port);
            obj["spec"]["ports"][i]["nodePort"] = json!(port);
        }
    }
    Ok(())
}

pub async fn release(state: &State, claimed: Claimed) {
    let store = state.registry.store();
    if let Some(ip) = claimed.ip {
        allocator::release_cluster_ip(store, &ip).await;
    }
    for port in claimed.ports {
        allocator::release_node_port(store, port).await;
    }
}

/// Gives back what a deleted Service held.
pub async fn release_for(state: &State, obj: &Value) {
    let mut claimed = Claimed::default();
    if let Some(ip) = obj
        .get("spec")
        .and_then(|s| s.get("clusterIP"))
        .and_then(Value::as_str)
    {
        if ip != "None" && !ip.is_empty() {
            claimed.ip = Some(ip.to_string());
        }
    }
    if let Some(ports) = obj
        .get("spec")
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
    {
        claimed.ports = ports
            .iter()
            .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
            .filter_map(|p| u16::try_from(p).ok())
            .collect();
    }
    release(state, claimed).await;
}
