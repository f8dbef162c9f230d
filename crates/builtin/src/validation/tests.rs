//! Invalid objects in, upstream's exact field errors out; and the update rules users hit.

use super::validate;
use crate::default;
use serde_json::{json, Value};

fn defaulted(group: &str, kind: &str, mut v: Value) -> Value {
    let version = if group == "autoscaling" { "v2" } else { "v1" };
    default(group, version, kind, &mut v);
    v
}

fn errors(group: &str, kind: &str, obj: &Value, old: Option<&Value>) -> Vec<String> {
    let version = if group == "autoscaling" { "v2" } else { "v1" };
    validate(group, version, kind, obj, old)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn deployment(labels: Value, containers: Value) -> Value {
    defaulted(
        "apps",
        "Deployment",
        json!({"spec": {"selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}}}}),
    )
}

#[test]
fn create_errors_match_upstream() {
    let web = json!({"app": "web"});
    let ok_ctr = json!([{"name": "web", "image": "nginx"}]);
    let mut neg_replicas = deployment(web.clone(), ok_ctr.clone());
    neg_replicas["spec"]["replicas"] = json!(-1);
    let cases: Vec<(&str, &str, Value, Vec<&str>)> = vec![
        ("apps", "Deployment", deployment(web.clone(), ok_ctr.clone()), vec![]),
        (
            "apps",
            "Deployment",
            neg_replicas,
            vec!["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            "apps",
            "Deployment",
            deployment(web.clone(), json!([{"name": "web"}])),
            vec!["spec.template.spec.containers[0].image: Required value"],
        ),
        (
            "apps",
            "Deployment",
            deployment(json!({"app": "other"}), ok_ctr.clone()),
            vec!["spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"],
        ),
        (
            "apps",
            "Deployment",
            defaulted("apps", "Deployment", json!({"spec": {"template": {"spec": {"containers": []}}}})),
            // As upstream: a missing selector matches nothing, so the template cannot match it.
            vec![
                "spec.selector: Required value",
                "spec.template.metadata.labels: Invalid value: null: `selector` does not match template `labels`",
                "spec.template.spec.containers: Required value",
            ],
        ),
        (
            "apps",
            "Deployment",
            deployment(web.clone(), json!([{"name": "Web_1", "image": "x", "ports": [{"containerPort": 70000, "protocol": "XTP"}]}])),
            vec![
                "spec.template.spec.containers[0].name: Invalid value: \"Web_1\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.template.spec.containers[0].ports[0].protocol: Unsupported value: \"XTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ],
        ),
        (
            "",
            "Pod",
            defaulted("", "Pod", json!({"spec": {"restartPolicy": "Sometimes", "containers": [
                {"name": "a", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/d"}]},
                {"name": "a", "image": "x", "env": [{"name": "A=B"}]}
            ]}})),
            vec![
                "spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
                "spec.containers[1].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
                "spec.containers[1].name: Duplicate value: \"a\"",
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ],
        ),
        (
            "batch",
            "Job",
            defaulted("batch", "Job", json!({"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]}}}})),
            vec!["spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""],
        ),
        (
            "batch",
            "Job",
            defaulted("batch", "Job", json!({"spec": {"parallelism": -1, "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}})),
            vec![
                "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
                "spec.selector: Required value",
            ],
        ),
        (
            "batch",
            "CronJob",
            defaulted("batch", "CronJob", json!({"spec": {"schedule": "61 * * * *", "jobTemplate": {"spec": {"template": {
                "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "x"}]}}}}}})),
            vec!["spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"],
        ),
        (
            "batch",
            "CronJob",
            defaulted("batch", "CronJob", json!({"spec": {"schedule": "TZ=UTC @daily", "concurrencyPolicy": "Sometimes", "jobTemplate": {"spec": {"template": {
                "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "x"}]}}}}}})),
            vec![
                "spec.schedule: Invalid value: \"TZ=UTC @daily\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
            ],
        ),
        (
            "",
            "Service",
            defaulted("", "Service", json!({"spec": {"type": "Magic", "ports": [{"port": 0, "name": "a"}, {"port": 80}]}})),
            vec![
                "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[1].name: Required value",
                "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
            ],
        ),
        (
            "",
            "Service",
            defaulted("", "Service", json!({"spec": {}})),
            vec!["spec.ports: Required value"],
        ),
        (
            "",
            "Service",
            defaulted("", "Service", json!({"spec": {"clusterIP": "None"}})),
            vec![],
        ),
        (
            "",
            "ConfigMap",
            json!({"data": {"bad key": "v", "ok.key": "v"}}),
            vec!["data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"],
        ),
        (
            "",
            "Secret",
            defaulted("", "Secret", json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "YQ=="}})),
            vec!["data[tls.key]: Required value"],
        ),
        (
            "",
            "PersistentVolumeClaim",
            defaulted("", "PersistentVolumeClaim", json!({"spec": {}})),
            vec![
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.resources[storage]: Required value",
            ],
        ),
        (
            "apps",
            "StatefulSet",
            defaulted("apps", "StatefulSet", json!({"spec": {"podManagementPolicy": "Random", "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})),
            vec!["spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'"],
        ),
        (
            "apps",
            "DaemonSet",
            defaulted("apps", "DaemonSet", json!({"spec": {"selector": {"matchLabels": {"a": "b"}}, "updateStrategy": {"rollingUpdate": {"maxUnavailable": 0}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})),
            vec!["spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"],
        ),
        (
            "rbac.authorization.k8s.io",
            "RoleBinding",
            defaulted("rbac.authorization.k8s.io", "RoleBinding", json!({"roleRef": {"kind": "Secret", "name": "r"}, "subjects": [{"kind": "Robot", "name": "x"}]})),
            vec![
                "roleRef.kind: Unsupported value: \"Secret\": supported values: \"Role\", \"ClusterRole\"",
                "subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
            ],
        ),
        (
            "autoscaling",
            "HorizontalPodAutoscaler",
            defaulted("autoscaling", "HorizontalPodAutoscaler", json!({"spec": {"minReplicas": 3, "maxReplicas": 2, "scaleTargetRef": {"kind": "Deployment"}}})),
            vec![
                "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
                "spec.scaleTargetRef.name: Required value",
            ],
        ),
        (
            "networking.k8s.io",
            "Ingress",
            json!({"spec": {"rules": [{"http": {"paths": [{"path": "foo", "pathType": "Prefix", "backend": {"service": {"name": "web"}}}]}}]}}),
            vec![
                "spec.rules[0].http.paths[0].path: Invalid value: \"foo\": must be an absolute path",
                "spec.rules[0].http.paths[0].backend.service.port: Required value: port name or number is required",
            ],
        ),
        ("example.com", "Widget", json!({"spec": 1}), vec![]),
    ];
    for (group, kind, obj, want) in cases {
        assert_eq!(
            errors(group, kind, &obj, None),
            want,
            "{group} {kind}: {obj}"
        );
    }
}

fn pod() -> Value {
    defaulted(
        "",
        "Pod",
        json!({"spec": {"containers": [{"name": "c", "image": "nginx:1"}],
                        "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]}}),
    )
}

#[test]
fn pod_updates_allow_only_upstream_fields() {
    let old = pod();
    let mut image = old.clone();
    image["spec"]["containers"][0]["image"] = json!("nginx:2");
    image["spec"]["activeDeadlineSeconds"] = json!(30);
    image["spec"]["tolerations"][0]["tolerationSeconds"] = json!(10);
    if let Some(t) = image["spec"]["tolerations"].as_array_mut() {
        t.push(json!({"key": "n", "operator": "Exists"}));
    }
    assert_eq!(errors("", "Pod", &image, Some(&old)), Vec::<String>::new());

    let mut restart = old.clone();
    restart["spec"]["restartPolicy"] = json!("Never");
    let errs = errors("", "Pod", &restart, Some(&old));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
    ), "{errs:?}");

    let mut removed = old.clone();
    removed["spec"]["tolerations"] = json!([]);
    assert_eq!(
        errors("", "Pod", &removed, Some(&old)),
        vec!["spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"]
    );

    let mut added = old.clone();
    if let Some(c) = added["spec"]["containers"].as_array_mut() {
        c.push(json!({"name": "d", "image": "x"}));
    }
    assert_eq!(
        errors("", "Pod", &added, Some(&old)),
        vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]
    );

    let mut deadline = old.clone();
    deadline["spec"]["activeDeadlineSeconds"] = json!(10);
    let mut longer = deadline.clone();
    longer["spec"]["activeDeadlineSeconds"] = json!(20);
    assert_eq!(
        errors("", "Pod", &longer, Some(&deadline)),
        vec!["spec.activeDeadlineSeconds: Invalid value: 20: must be less than or equal to previous value"]
    );
}

#[test]
fn workload_update_rules() {
    let old = deployment(
        json!({"app": "web"}),
        json!([{"name": "web", "image": "nginx"}]),
    );
    let mut new = old.clone();
    new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "tier": "x"}});
    new["spec"]["template"]["metadata"]["labels"] = json!({"app": "web", "tier": "x"});
    assert_eq!(
        errors("apps", "Deployment", &new, Some(&old)),
        vec!["spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"web\",\"tier\":\"x\"}}: field is immutable"]
    );

    let sts = defaulted(
        "apps",
        "StatefulSet",
        json!({"spec": {"serviceName": "a", "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}),
    );
    let mut scaled = sts.clone();
    scaled["spec"]["replicas"] = json!(5);
    scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("y");
    assert_eq!(
        errors("apps", "StatefulSet", &scaled, Some(&sts)),
        Vec::<String>::new()
    );
    let mut renamed = sts.clone();
    renamed["spec"]["serviceName"] = json!("b");
    assert_eq!(
        errors("apps", "StatefulSet", &renamed, Some(&sts)),
        vec!["spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"]
    );

    let job = defaulted(
        "batch",
        "Job",
        json!({"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}}),
    );
    let mut new_job = job.clone();
    new_job["spec"]["template"]["spec"]["containers"][0]["image"] = json!("y");
    new_job["spec"]["completions"] = json!(3);
    let errs = errors("batch", "Job", &new_job, Some(&job));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(
        errs[0],
        "spec.completions: Invalid value: 3: field is immutable"
    );
    assert!(
        errs[1].starts_with("spec.template: Invalid value: ")
            && errs[1].ends_with(": field is immutable")
    );

    // A suspended Job that never ran may change its node selector.
    let mut suspended = job.clone();
    suspended["spec"]["suspend"] = json!(true);
    let mut moved = suspended.clone();
    moved["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
    assert_eq!(
        errors("batch", "Job", &moved, Some(&suspended)),
        Vec::<String>::new()
    );
}

#[test]
fn config_objects_and_claims_update_rules() {
    let cm = json!({"immutable": true, "data": {"a": "1"}});
    let changed = json!({"immutable": false, "data": {"a": "2"}});
    assert_eq!(
        errors("", "ConfigMap", &changed, Some(&cm)),
        vec![
            "immutable: Forbidden: field is immutable when `immutable` is set",
            "data: Forbidden: field is immutable when `immutable` is set",
        ]
    );
    let secret = defaulted("", "Secret", json!({"data": {"a": "YQ=="}}));
    let retyped = defaulted(
        "",
        "Secret",
        json!({"type": "kubernetes.io/basic-auth", "data": {"username": "YQ=="}}),
    );
    assert_eq!(
        errors("", "Secret", &retyped, Some(&secret)),
        vec!["type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable"]
    );

    let svc = defaulted(
        "",
        "Service",
        json!({"spec": {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ports": [{"port": 80}]}}),
    );
    let mut moved = svc.clone();
    moved["spec"]["clusterIP"] = json!("10.0.0.2");
    moved["spec"]["clusterIPs"] = json!(["10.0.0.2"]);
    assert_eq!(
        errors("", "Service", &moved, Some(&svc)),
        vec!["spec.clusterIPs[0]: Invalid value: [\"10.0.0.2\"]: may not change once set"]
    );

    let pvc = defaulted(
        "",
        "PersistentVolumeClaim",
        json!({"spec": {"accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Bound"}}),
    );
    let mut grown = pvc.clone();
    grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
    assert_eq!(
        errors("", "PersistentVolumeClaim", &grown, Some(&pvc)),
        Vec::<String>::new()
    );
    let mut shrunk = pvc.clone();
    shrunk["spec"]["resources"]["requests"]["storage"] = json!("500Mi");
    assert_eq!(
        errors("", "PersistentVolumeClaim", &shrunk, Some(&pvc)),
        vec![
            "spec.resources.requests.storage: Forbidden: field can not be less than previous value"
        ]
    );
    let mut remoded = pvc.clone();
    remoded["spec"]["accessModes"] = json!(["ReadWriteMany"]);
    assert_eq!(
        errors("", "PersistentVolumeClaim", &remoded, Some(&pvc)),
        vec!["spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"]
    );
}

#[test]
fn deeply_nested_and_malformed_input_does_not_panic() {
    let mut deep = json!(1);
    for _ in 0..120 {
        deep = json!({"spec": deep});
    }
    for (g, k) in [
        ("", "Pod"),
        ("apps", "Deployment"),
        ("batch", "Job"),
        ("", "Service"),
        ("batch", "CronJob"),
    ] {
        let _ = errors(g, k, &deep, Some(&deep));
        let _ = errors(
            g,
            k,
            &json!({"spec": {"containers": "x", "ports": [1, "a"], "selector": 5}}),
            None,
        );
        let _ = errors(g, k, &json!(null), Some(&json!([])));
    }
}
