//! Printers for `networking.k8s.io/v1` (ingresses, ingress classes, network
//! policies) and `discovery.k8s.io/v1` endpoint slices.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::core::load_balancer_string;
use crate::fields::{
    age, arr_at, format_label_selector, get, list_with_more, name, opt_i64, opt_str, s, str_at,
};
use crate::Column;

pub(crate) const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "AddressType",
        "string",
        "addressType specifies the type of address carried by this EndpointSlice.",
    ),
    Column::new(
        "Ports",
        "string",
        "ports specifies the list of network ports exposed by each endpoint in this slice.",
    ),
    Column::new(
        "Endpoints",
        "string",
        "endpoints is a list of unique endpoints in this slice.",
    ),
    Column::age(),
];

const MAX_LISTED: usize = 3;

pub(crate) fn endpoint_slice_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports_all = arr_at(obj, &["ports"]);
    let ports: Vec<String> = ports_all
        .iter()
        .take(MAX_LISTED)
        .map(|p| match (opt_i64(p, &["port"]), opt_str(p, &["name"])) {
            (Some(n), _) => n.to_string(),
            (None, Some(name)) => name.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let addresses: Vec<&Value> = arr_at(obj, &["endpoints"])
        .iter()
        .flat_map(|e| arr_at(e, &["addresses"]))
        .collect();
    let listed: Vec<String> = addresses
        .iter()
        .take(MAX_LISTED)
        .map(|a| a.as_str().unwrap_or("").to_string())
        .collect();
    vec![
        s(name(obj)),
        s(str_at(obj, &["addressType"])),
        s(list_with_more(&ports, ports_all.len(), MAX_LISTED)),
        s(list_with_more(&listed, addresses.len(), MAX_LISTED)),
        age(obj, now),
    ]
}

pub(crate) const INGRESS_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    Column::new(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    Column::new(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    Column::new("Ports", "string", "Ports of TLS configurations that open"),
    Column::age(),
];

/// `formatHosts`: the first three non-empty hosts; "more" counts every rule.
fn format_hosts(rules: &[Value]) -> String {
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX_LISTED {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", rules.len().saturating_sub(MAX_LISTED));
    }
    ret
}

pub(crate) fn ingress_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports = if arr_at(obj, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        s(name(obj)),
        s(opt_str(obj, &["spec", "ingressClassName"]).unwrap_or("<none>")),
        s(format_hosts(arr_at(obj, &["spec", "rules"]))),
        s(load_balancer_string(arr_at(
            obj,
            &["status", "loadBalancer", "ingress"],
        ))),
        s(ports),
        age(obj, now),
    ]
}

pub(crate) const INGRESS_CLASS_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    Column::new(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    Column::age(),
];

pub(crate) fn ingress_class_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let parameters = match get(obj, &["spec", "parameters"]) {
        Some(p) => {
            let mut text = str_at(p, &["kind"]).to_string();
            if let Some(group) = opt_str(p, &["apiGroup"]) {
                text.push('.');
                text.push_str(group);
            }
            format!("{text}/{}", str_at(p, &["name"]))
        }
        None => "<none>".to_string(),
    };
    vec![
        s(name(obj)),
        s(str_at(obj, &["spec", "controller"])),
        s(parameters),
        age(obj, now),
    ]
}

pub(crate) const NETWORK_POLICY_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Pod-Selector",
        "string",
        "podSelector selects the pods to which this NetworkPolicy object applies.",
    ),
    Column::age(),
];

pub(crate) fn network_policy_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // The pod selector is a value, not a pointer, upstream: absent means empty.
    let selector = get(obj, &["spec", "podSelector"])
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    vec![
        s(name(obj)),
        s(format_label_selector(Some(&selector))),
        age(obj, now),
    ]
}
