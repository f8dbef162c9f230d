//! Where the pod metadata and spec live in each resource PodSecurity looks at, like
//! upstream's default pod spec extractor: pods themselves, and the pod templates of
//! workload resources (which only ever warn and audit, never enforce).

use serde_json::Value;

/// The pod metadata and pod spec of `object` when `resource` (plural, lowercase) is one
/// PodSecurity evaluates; `None` for other resources or a template-less object.
/// A missing `metadata` is returned as `Value::Null`, which checks treat as empty.
pub fn pod_metadata_and_spec<'a>(
    resource: &str,
    object: &'a Value,
) -> Option<(&'a Value, &'a Value)> {
    let template = match resource {
        "pods" => Some(object),
        "podtemplates" => object.get("template"),
        "replicationcontrollers"
        | "replicasets"
        | "deployments"
        | "statefulsets"
        | "daemonsets"
        | "jobs" => object.get("spec").and_then(|s| s.get("template")),
        "cronjobs" => object
            .get("spec")
            .and_then(|s| s.get("jobTemplate"))
            .and_then(|j| j.get("spec"))
            .and_then(|s| s.get("template")),
        _ => None,
    }?;
    if !template.is_object() {
        return None;
    }
    let spec = template.get("spec")?;
    let metadata = template.get("metadata").unwrap_or(&Value::Null);
    Some((metadata, spec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_specs_per_resource() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": []}});
        let deploy =
            json!({"spec": {"template": {"metadata": {"labels": {}}, "spec": {"hostPID": true}}}});
        let cron =
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"hostIPC": true}}}}}});
        let podtemplate = json!({"template": {"spec": {"hostNetwork": true}}});

        let (m, s) = pod_metadata_and_spec("pods", &pod).unwrap();
        assert_eq!(m["name"], "p");
        assert!(s.get("containers").is_some());
        for r in [
            "deployments",
            "replicasets",
            "statefulsets",
            "daemonsets",
            "jobs",
            "replicationcontrollers",
        ] {
            let (_, s) = pod_metadata_and_spec(r, &deploy).unwrap();
            assert_eq!(s["hostPID"], true, "{r}");
        }
        let (m, s) = pod_metadata_and_spec("cronjobs", &cron).unwrap();
        assert!(m.is_null());
        assert_eq!(s["hostIPC"], true);
        let (_, s) = pod_metadata_and_spec("podtemplates", &podtemplate).unwrap();
        assert_eq!(s["hostNetwork"], true);

        assert!(pod_metadata_and_spec("services", &pod).is_none());
        assert!(pod_metadata_and_spec("replicationcontrollers", &json!({"spec": {}})).is_none());
        assert!(pod_metadata_and_spec("deployments", &json!({"spec": {"template": 3}})).is_none());
    }
}
