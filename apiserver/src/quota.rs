//! LimitRanger and ResourceQuota admission, as upstream's plugins of the same names:
//!
//! - LimitRanger fills container requests and limits from the namespace's LimitRanges
//!   (`defaultRequest`, `default`) and refuses containers outside `min`/`max`.
//! - ResourceQuota refuses an object whose creation would take a quota's usage past `hard`,
//!   with upstream's "exceeded quota" message. Usage is counted from the watch caches at
//!   admission time (upstream keeps it in `status.used`, written by the quota controller).

use std::collections::BTreeMap;
use std::sync::Arc;

use apimachinery::quantity::Quantity;
use serde_json::{json, Value};

use crate::cache::Caches;
use crate::chain::{Attributes, MutatingAdmission, Operation, ValidatingAdmission};
use crate::errors::{self, ApiResult};
use crate::resources::{find, Resource};

fn namespace_objects(caches: &Caches, plural: &str, namespace: &str) -> Vec<Value> {
    find("", "v1", plural)
        .map(|resource| caches.objects(resource, Some(namespace)))
        .unwrap_or_default()
}

fn is_pod(a: &Attributes) -> bool {
    a.resource.group.is_empty() && a.resource.kind == "Pod" && a.subresource.is_empty()
}

fn containers_mut(pod: &mut Value) -> Vec<&mut Value> {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, list) in spec.iter_mut() {
        if key == "containers" || key == "initContainers" {
            if let Some(items) = list.as_array_mut() {
                out.extend(items.iter_mut());
            }
        }
    }
    out
}

fn containers(pod: &Value) -> Vec<&Value> {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|f| {
            pod.get("spec")
                .and_then(|s| s.get(*f))
                .and_then(Value::as_array)
        })
        .flatten()
        .collect()
}

fn container_limits(limit_range: &Value) -> Vec<&Value> {
    limit_range
        .get("spec")
        .and_then(|s| s.get("limits"))
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter(|i| i.get("type").and_then(Value::as_str) == Some("Container"))
                .collect()
        })
        .unwrap_or_default()
}

pub struct LimitRanger {
    caches: Arc<Caches>,
}

impl LimitRanger {
    pub fn new(caches: Arc<Caches>) -> LimitRanger {
        LimitRanger { caches }
    }
}

impl MutatingAdmission for LimitRanger {
    fn name(&self) -> &'static str {
        "LimitRanger"
    }

    fn admit(
        &self,
        op: Operation,
        a: &Attributes,
        obj: &mut Value,
        _old: Option<&Value>,
    ) -> ApiResult<()> {
        if op != Operation::Create || !is_pod(a) {
            return Ok(());
        }
        let ranges = namespace_objects(&self.caches, "limitranges", crate::object::namespace(obj));
        for range in &ranges {
            for item in container_limits(range) {
                for container in containers_mut(obj) {
                    for (field, default_field) in
                        [("limits", "default"), ("requests", "defaultRequest")]
                    {
                        let Some(defaults) = item.get(default_field).and_then(Value::as_object)
                        else {
                            continue;
                        };
                        if !container.get("resources").is_some_and(Value::is_object) {
                            container["resources"] = json!({});
                        }
                        if !container["resources"]
                            .get(field)
                            .is_some_and(Value::is_object)
                        {
                            container["resources"][field] = json!({});
                        }
                        for (resource, value) in defaults {
                            if container["resources"][field].get(resource).is_none() {
                                container["resources"][field][resource] = value.clone();
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl ValidatingAdmission for LimitRanger {
    fn name(&self) -> &'static str {
        "LimitRanger"
    }

    fn validate(
        &self,
        op: Operation,
        a: &Attributes,
        obj: &Value,
        _old: Option<&Value>,
    ) -> ApiResult<()> {
        if op != Operation::Create || !is_pod(a) {
            return Ok(());
        }
        let ranges = namespace_objects(&self.caches, "limitranges", crate::object::namespace(obj));
        let mut problems = Vec::new();
        for range in &ranges {
            for item in container_limits(range) {
                for container in containers(obj) {
                    let resources = container.get("resources");
                    let get = |field: &str, r: &str| {
                        resources
                            .and_then(|x| x.get(field))
                            .and_then(|x| x.get(r))
                            .and_then(Value::as_str)
                            .and_then(|t| Quantity::parse(t).ok())
                    };
                    for (r, max) in item
                        .get("max")
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                    {
                        let Some(max) = max.as_str().and_then(|t| Quantity::parse(t).ok()) else {
                            continue;
                        };
                        let shown = max_text(item, "max", r);
                        match get("limits", r) {
                            Some(limit) if limit > max => problems.push(format!(
                                "maximum {r} usage per Container is {shown}, but limit is {}",
                                resources.and_then(|x| x.get("limits")).and_then(|x| x.get(r)).and_then(Value::as_str).unwrap_or("")
                            )),
                            Some(_) => {}
                            None => problems.push(format!("maximum {r} usage per Container is {shown}.  No limit is specified")),
                        }
                    }
                    for (r, min) in item
                        .get("min")
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                    {
                        let Some(min) = min.as_str().and_then(|t| Quantity::parse(t).ok()) else {
                            continue;
                        };
                        let shown = max_text(item, "min", r);
                        match get("requests", r) {
                            Some(request) if request < min => problems.push(format!(
                                "minimum {r} usage per Container is {shown}, but request is {}",
                                resources.and_then(|x| x.get("requests")).and_then(|x| x.get(r)).and_then(Value::as_str).unwrap_or("")
                            )),
                            Some(_) => {}
                            None => problems.push(format!("minimum {r} usage per Container is {shown}.  No request is specified")),
                        }
                    }
                }
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        let summary = if problems.len() == 1 {
            problems.remove(0)
        } else {
            format!("[{}]", problems.join(", "))
        };
        Err(forbidden(a.resource, crate::object::name(obj), &summary))
    }
}

fn max_text<'a>(item: &'a Value, field: &str, resource: &str) -> &'a str {
    item.get(field)
        .and_then(|m| m.get(resource))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn forbidden(resource: &Resource, name: &str, why: &str) -> errors::ApiError {
    errors::forbidden(
        resource,
        name,
        format!("{} \"{name}\" is forbidden: {why}", resource.qualified()),
    )
}

/// A quota key over its limit: (key, requested, used, limit).
type Exceeded = (String, Quantity, Quantity, Quantity);

pub struct ResourceQuota {
    caches: Arc<Caches>,
}

impl ResourceQuota {
    pub fn new(caches: Arc<Caches>) -> ResourceQuota {
        ResourceQuota { caches }
    }

    /// What one object of `resource` counts against each quota key.
    fn usage_of(resource: &Resource, obj: &Value) -> BTreeMap<String, Quantity> {
        let mut usage = BTreeMap::new();
        let plural = resource.plural;
        let count_key = if resource.group.is_empty() {
            format!("count/{plural}")
        } else {
            format!("count/{plural}.{}", resource.group)
        };
        usage.insert(count_key, Quantity::from_units(1));
        let counted = matches!(
            plural,
            "pods"
                | "services"
                | "configmaps"
                | "secrets"
                | "persistentvolumeclaims"
                | "replicationcontrollers"
                | "resourcequotas"
        );
        if resource.group.is_empty() && counted {
            usage.insert(plural.to_string(), Quantity::from_units(1));
        }
        if resource.group.is_empty() && resource.kind == "Pod" {
            let phase = obj
                .get("status")
                .and_then(|s| s.get("phase"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if phase == "Succeeded" || phase == "Failed" {
                return BTreeMap::new();
            }
            let mut add = |key: String, q: Quantity| {
                let total = usage.entry(key).or_insert(Quantity::ZERO);
                *total = total.checked_add(q).unwrap_or(*total);
            };
            for container in obj
                .get("spec")
                .and_then(|s| s.get("containers"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for (field, prefix) in [("requests", "requests."), ("limits", "limits.")] {
                    for (r, v) in container
                        .get("resources")
                        .and_then(|x| x.get(field))
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(q) = v.as_str().and_then(|t| Quantity::parse(t).ok()) {
                            add(format!("{prefix}{r}"), q);
                            if field == "requests" {
                                add(r.clone(), q);
                            }
                        }
                    }
                }
            }
        }
        usage
    }
}

impl ValidatingAdmission for ResourceQuota {
    fn name(&self) -> &'static str {
        "ResourceQuota"
    }

    fn validate(
        &self,
        op: Operation,
        a: &Attributes,
        obj: &Value,
        _old: Option<&Value>,
    ) -> ApiResult<()> {
        if op != Operation::Create || !a.subresource.is_empty() || !a.resource.namespaced {
            return Ok(());
        }
        let namespace = crate::object::namespace(obj);
        let quotas = namespace_objects(&self.caches, "resourcequotas", namespace);
        if quotas.is_empty() {
            return Ok(());
        }
        let requested = Self::usage_of(a.resource, obj);
        let existing: Vec<Value> = match a.resource.group {
            "" => namespace_objects(&self.caches, a.resource.plural, namespace),
            _ => Vec::new(),
        };
        let mut used: BTreeMap<String, Quantity> = BTreeMap::new();
        for item in &existing {
            for (k, q) in Self::usage_of(a.resource, item) {
                let total = used.entry(k).or_insert(Quantity::ZERO);
                *total = total.checked_add(q).unwrap_or(*total);
            }
        }
        for quota in &quotas {
            let Some(hard) = quota
                .get("spec")
                .and_then(|s| s.get("hard"))
                .and_then(Value::as_object)
            else {
                continue;
            };
            let mut exceeded: Vec<Exceeded> = Vec::new();
            for (key, limit) in hard {
                let Some(asked) = requested.get(key) else {
                    continue;
                };
                let Some(limit) = limit.as_str().and_then(|t| Quantity::parse(t).ok()) else {
                    continue;
                };
                let now = used.get(key).copied().unwrap_or(Quantity::ZERO);
                if now.checked_add(*asked).is_none_or(|total| total > limit) {
                    exceeded.push((key.clone(), *asked, now, limit));
                }
            }
            if !exceeded.is_empty() {
                let column = |pick: fn(&Exceeded) -> Quantity| {
                    exceeded
                        .iter()
                        .map(|e| format!("{}={}", e.0, pick(e)))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                let why = format!(
                    "exceeded quota: {}, requested: {}, used: {}, limited: {}",
                    crate::object::name(quota),
                    column(|e| e.1),
                    column(|e| e.2),
                    column(|e| e.3),
                );
                return Err(forbidden(a.resource, crate::object::name(obj), &why));
            }
        }
        Ok(())
    }
}
