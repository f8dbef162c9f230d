//! A container's environment (upstream's `makeEnvironmentVariables`): `envFrom` sources, then
//! `env` entries in order (values with `$(VAR)` expansion, configMapKeyRef, secretKeyRef,
//! fieldRef, resourceFieldRef), on top of the service-link variables. Missing sources give
//! upstream's CreateContainerConfigError messages unless marked optional.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};

/// Where configMaps and secrets come from (the API, an informer, a test map).
pub trait Sources {
    fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, String>;
    fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, String>;
}

/// No configMaps nor secrets at all.
pub struct NoSources;

impl Sources for NoSources {
    fn config_map(&self, _: &str, _: &str) -> Result<Option<ConfigMap>, String> {
        Ok(None)
    }
    fn secret(&self, _: &str, _: &str) -> Result<Option<Secret>, String> {
        Ok(None)
    }
}

/// Expands `$(NAME)` from `vars`; `$$` escapes a `$`; unknown references stay as written
/// (upstream's `expansion.Expand`).
pub fn expand(input: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                b'(' => {
                    if let Some(end) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + end];
                        match vars.get(name) {
                            Some(v) => out.push_str(v),
                            None => out.push_str(&input[i..i + 3 + end]),
                        }
                        i += 3 + end;
                        continue;
                    }
                }
                _ => {}
            }
        }
        let ch = input[i..].chars().next().unwrap_or('\0');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The value of a `fieldRef` (upstream's `podFieldSelectorRuntimeValue`).
pub fn field_value(
    pod: &Pod,
    path: &str,
    host_ip: &str,
    pod_ips: &[String],
) -> Result<String, String> {
    let meta = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let label_or_annotation = |prefix: &str, map: &Option<BTreeMap<String, String>>| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix("['"))
            .and_then(|rest| rest.strip_suffix("']"))
            .map(|key| {
                map.as_ref()
                    .and_then(|m| m.get(key))
                    .cloned()
                    .unwrap_or_default()
            })
    };
    if let Some(v) = label_or_annotation("metadata.labels", &meta.labels) {
        return Ok(v);
    }
    if let Some(v) = label_or_annotation("metadata.annotations", &meta.annotations) {
        return Ok(v);
    }
    let joined = |m: &Option<BTreeMap<String, String>>| {
        m.iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => joined(&meta.labels),
        "metadata.annotations" => joined(&meta.annotations),
        "spec.nodeName" => spec.node_name.unwrap_or_default(),
        "spec.serviceAccountName" => spec.service_account_name.unwrap_or_default(),
        "status.hostIP" => host_ip.to_string(),
        "status.hostIPs" => host_ip.to_string(),
        "status.podIP" => pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => pod_ips.join(","),
        other => return Err(format!("unsupported fieldRef path {other:?}")),
    })
}

/// The value of a `resourceFieldRef`: the container's limit (or, without one, the node's
/// allocatable) or request, divided by the divisor, rounded up (upstream's
/// `ExtractContainerResourceValue`).
pub fn resource_value(
    container: &Container,
    resource: &str,
    divisor: Option<&str>,
    node_allocatable: &BTreeMap<String, f64>,
) -> Result<String, String> {
    let res = container.resources.clone().unwrap_or_default();
    let get =
        |m: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
         k: &str| {
            m.as_ref()
                .and_then(|m| m.get(k))
                .and_then(|q| crate::podstatus::parse_quantity(&q.0))
        };
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource {resource:?}"))?;
    let value = match kind {
        "limits" => get(&res.limits, name).or_else(|| node_allocatable.get(name).copied()),
        "requests" => get(&res.requests, name).or(Some(0.0)),
        _ => None,
    }
    .ok_or_else(|| format!("unsupported container resource {resource:?}"))?;
    let divisor = divisor
        .and_then(crate::podstatus::parse_quantity)
        .filter(|d| *d > 0.0)
        .unwrap_or(1.0);
    Ok(format!("{}", (value / divisor).ceil() as i64))
}

/// Everything a container's environment needs to know.
pub struct Context<'a> {
    pub pod: &'a Pod,
    pub host_ip: &'a str,
    pub pod_ips: &'a [String],
    pub node_allocatable: &'a BTreeMap<String, f64>,
    /// Service-link variables (FOO_SERVICE_HOST ...), added first.
    pub service_env: Vec<(String, String)>,
}

/// The container's environment in order, or upstream's CreateContainerConfigError message.
pub fn container_env(
    ctx: &Context<'_>,
    container: &Container,
    sources: &dyn Sources,
) -> Result<Vec<(String, String)>, String> {
    let namespace = ctx.pod.metadata.namespace.clone().unwrap_or_default();
    let mut order: Vec<String> = Vec::new();
    let mut vars: HashMap<String, String> = HashMap::new();
    let set =
        |order: &mut Vec<String>, vars: &mut HashMap<String, String>, k: String, v: String| {
            if vars.insert(k.clone(), v).is_none() {
                order.push(k);
            }
        };
    for (k, v) in &ctx.service_env {
        set(&mut order, &mut vars, k.clone(), v.clone());
    }
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            let optional = r.optional.unwrap_or(false);
            match sources.config_map(&namespace, &r.name)? {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        set(&mut order, &mut vars, format!("{prefix}{k}"), v.clone());
                    }
                }
                None if optional => {}
                None => return Err(format!("configmap {:?} not found", r.name)),
            }
        }
        if let Some(r) = &from.secret_ref {
            let optional = r.optional.unwrap_or(false);
            match sources.secret(&namespace, &r.name)? {
                Some(s) => {
                    for (k, v) in s.data.iter().flatten() {
                        let text = String::from_utf8_lossy(&v.0).into_owned();
                        set(&mut order, &mut vars, format!("{prefix}{k}"), text);
                    }
                }
                None if optional => {}
                None => return Err(format!("secret {:?} not found", r.name)),
            }
        }
    }
    for e in container.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => expand(v, &vars),
            (None, None) => String::new(),
            (None, Some(from)) => {
                if let Some(r) = &from.config_map_key_ref {
                    let optional = r.optional.unwrap_or(false);
                    match sources.config_map(&namespace, &r.name)? {
                        Some(cm) => match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                            Some(v) => v.clone(),
                            None if optional => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in ConfigMap {namespace}/{}",
                                    r.key, r.name
                                ))
                            }
                        },
                        None if optional => continue,
                        None => return Err(format!("configmap {:?} not found", r.name)),
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    let optional = r.optional.unwrap_or(false);
                    match sources.secret(&namespace, &r.name)? {
                        Some(s) => match s.data.as_ref().and_then(|d| d.get(&r.key)) {
                            Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                            None if optional => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in Secret {namespace}/{}",
                                    r.key, r.name
                                ))
                            }
                        },
                        None if optional => continue,
                        None => return Err(format!("secret {:?} not found", r.name)),
                    }
                } else if let Some(f) = &from.field_ref {
                    field_value(ctx.pod, &f.field_path, ctx.host_ip, ctx.pod_ips)?
                } else if let Some(r) = &from.resource_field_ref {
                    let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
                        Some(name) => ctx
                            .pod
                            .spec
                            .iter()
                            .flat_map(|s| s.containers.iter())
                            .find(|c| c.name == name)
                            .unwrap_or(container),
                        None => container,
                    };
                    resource_value(
                        target,
                        &r.resource,
                        r.divisor.as_ref().map(|d| d.0.as_str()),
                        ctx.node_allocatable,
                    )?
                } else {
                    String::new()
                }
            }
        };
        set(&mut order, &mut vars, e.name.clone(), value);
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let v = vars.remove(&k).unwrap_or_default();
            (k, v)
        })
        .collect())
}

/// The service-link variables of the services in the pod's namespace (and the master service
/// `kubernetes` from default), upstream's `getServiceEnvVarMap`: `<NAME>_SERVICE_HOST`,
/// `<NAME>_SERVICE_PORT`, `<NAME>_SERVICE_PORT_<PORT>` and the docker-link `<NAME>_PORT*`.
pub fn service_env(services: &[k8s_openapi::api::core::v1::Service]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for svc in services {
        let spec = svc.spec.clone().unwrap_or_default();
        let Some(ip) = spec.cluster_ip.filter(|ip| !ip.is_empty() && ip != "None") else {
            continue;
        };
        let name = svc
            .metadata
            .name
            .clone()
            .unwrap_or_default()
            .to_uppercase()
            .replace('-', "_");
        let ports = spec.ports.unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        out.push((format!("{name}_SERVICE_HOST"), ip.clone()));
        out.push((format!("{name}_SERVICE_PORT"), first.port.to_string()));
        for p in &ports {
            if let Some(pn) = p.name.as_deref().filter(|n| !n.is_empty()) {
                out.push((
                    format!(
                        "{name}_SERVICE_PORT_{}",
                        pn.to_uppercase().replace('-', "_")
                    ),
                    p.port.to_string(),
                ));
            }
        }
        let proto = first.protocol.clone().unwrap_or_else(|| "TCP".into());
        out.push((
            format!("{name}_PORT"),
            format!("{}://{ip}:{}", proto.to_lowercase(), first.port),
        ));
        for p in &ports {
            let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            let base = format!("{name}_PORT_{}_{}", p.port, proto.to_uppercase());
            out.push((
                base.clone(),
                format!("{}://{ip}:{}", proto.to_lowercase(), p.port),
            ));
            out.push((format!("{base}_PROTO"), proto.to_lowercase()));
            out.push((format!("{base}_PORT"), p.port.to_string()));
            out.push((format!("{base}_ADDR"), ip.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Maps;

    impl Sources for Maps {
        fn config_map(&self, _: &str, name: &str) -> Result<Option<ConfigMap>, String> {
            Ok((name == "cfg").then(|| {
                serde_json::from_value(
                    json!({"metadata": {"name": "cfg"}, "data": {"mode": "fast", "level": "3"}}),
                )
                .unwrap_or_default()
            }))
        }
        fn secret(&self, _: &str, name: &str) -> Result<Option<Secret>, String> {
            Ok((name == "creds").then(|| {
                serde_json::from_value(
                    json!({"metadata": {"name": "creds"}, "data": {"password": "czNjcjN0"}}),
                )
                .unwrap_or_default()
            }))
        }
    }

    fn pod(container_env: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "prod", "uid": "u1", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "sa",
                     "containers": [{"name": "c", "image": "i", "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}},
                                     "env": container_env["env"], "envFrom": container_env["envFrom"]}]},
        }))
        .unwrap_or_default()
    }

    #[test]
    fn values_references_and_expansion_resolve_in_order() {
        let p = pod(json!({
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "env": [
            {"name": "GREETING", "value": "hello"},
            {"name": "MESSAGE", "value": "$(GREETING) world $$(GREETING) $(NOPE)"},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
            {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}
        ]}));
        let c = p.spec.clone().unwrap_or_default().containers[0].clone();
        let alloc = BTreeMap::from([("cpu".to_string(), 4.0)]);
        let ctx = Context {
            pod: &p,
            host_ip: "192.168.1.5",
            pod_ips: &["10.1.0.7".to_string()],
            node_allocatable: &alloc,
            service_env: vec![("KUBERNETES_SERVICE_HOST".into(), "10.96.0.1".into())],
        };
        let env = container_env(&ctx, &c, &Maps).unwrap_or_default();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(env[0].0, "KUBERNETES_SERVICE_HOST");
        assert_eq!(get("CFG_mode"), Some("fast"));
        assert_eq!(get("MESSAGE"), Some("hello world $(GREETING) $(NOPE)"));
        assert_eq!(get("MODE"), Some("fast"));
        assert_eq!(get("PASSWORD"), Some("s3cr3t"));
        assert_eq!(get("POD"), Some("web"));
        assert_eq!(get("APP"), Some("web"));
        assert_eq!(get("IP"), Some("10.1.0.7"));
        assert_eq!(get("MEM"), Some("64"));
        assert_eq!(get("CPU"), Some("250"));
        assert_eq!(get("CPU_LIMIT"), Some("4"));
    }

    #[test]
    fn missing_sources_fail_unless_optional() {
        let p = pod(
            json!({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "absent"}}}]}),
        );
        let c = p.spec.clone().unwrap_or_default().containers[0].clone();
        let alloc = BTreeMap::new();
        let ctx = Context {
            pod: &p,
            host_ip: "",
            pod_ips: &[],
            node_allocatable: &alloc,
            service_env: vec![],
        };
        assert_eq!(
            container_env(&ctx, &c, &Maps),
            Err("couldn't find key absent in ConfigMap prod/cfg".to_string())
        );
        let p = pod(
            json!({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": true}}}],
                           "envFrom": [{"configMapRef": {"name": "missing"}}]}),
        );
        let c = p.spec.clone().unwrap_or_default().containers[0].clone();
        let ctx = Context {
            pod: &p,
            host_ip: "",
            pod_ips: &[],
            node_allocatable: &alloc,
            service_env: vec![],
        };
        assert_eq!(
            container_env(&ctx, &c, &Maps),
            Err("configmap \"missing\" not found".to_string())
        );
    }

    #[test]
    fn service_links_follow_docker_link_names() {
        let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
            "metadata": {"name": "redis-primary"},
            "spec": {"clusterIP": "10.0.0.11", "ports": [{"name": "redis", "port": 6379, "protocol": "TCP"}]}}))
        .unwrap_or_default();
        let env = service_env(&[svc]);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("REDIS_PRIMARY_SERVICE_HOST"), Some("10.0.0.11"));
        assert_eq!(get("REDIS_PRIMARY_SERVICE_PORT"), Some("6379"));
        assert_eq!(get("REDIS_PRIMARY_SERVICE_PORT_REDIS"), Some("6379"));
        assert_eq!(get("REDIS_PRIMARY_PORT"), Some("tcp://10.0.0.11:6379"));
        assert_eq!(get("REDIS_PRIMARY_PORT_6379_TCP_ADDR"), Some("10.0.0.11"));
    }
}
