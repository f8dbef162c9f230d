//! Minimal objects in, fully defaulted objects out: the shapes `kubectl get -o json` shows for
//! the same objects on an upstream 1.33 cluster.

use super::default;
use serde_json::{json, Value};

fn defaulted_container(name: &str, image: &str, policy: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": policy,
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File"
    })
}

fn defaulted_pod_spec(containers: Value) -> Value {
    json!({
        "containers": containers,
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "terminationGracePeriodSeconds": 30
    })
}

#[test]
fn kinds_get_upstream_defaults() {
    let labels = json!({"app": "web"});
    let template_in = json!({
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]}
    });
    let template_out = json!({
        "metadata": {"labels": labels},
        "spec": defaulted_pod_spec(json!([defaulted_container("web", "nginx", "Always")]))
    });
    let cases: Vec<(&str, &str, &str, Value, Value)> = vec![
        (
            "apps",
            "v1",
            "Deployment",
            json!({"spec": {"selector": {"matchLabels": labels}, "template": template_in}}),
            json!({
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                    "revisionHistoryLimit": 10,
                    "progressDeadlineSeconds": 600,
                    "template": template_out
                },
                "status": {}
            }),
        ),
        (
            "apps",
            "v1",
            "Deployment",
            json!({"spec": {"strategy": {"type": "Recreate"}, "replicas": 0}}),
            json!({
                "spec": {
                    "replicas": 0,
                    "strategy": {"type": "Recreate"},
                    "revisionHistoryLimit": 10,
                    "progressDeadlineSeconds": 600,
                    "template": {"spec": {
                        "dnsPolicy": "ClusterFirst",
                        "restartPolicy": "Always",
                        "schedulerName": "default-scheduler",
                        "securityContext": {},
                        "terminationGracePeriodSeconds": 30
                    }}
                },
                "status": {}
            }),
        ),
        (
            "apps",
            "v1",
            "StatefulSet",
            json!({"spec": {"template": template_in, "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}}),
            json!({
                "spec": {
                    "podManagementPolicy": "OrderedReady",
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                    "replicas": 1,
                    "revisionHistoryLimit": 10,
                    "template": template_out,
                    "volumeClaimTemplates": [{
                        "metadata": {"name": "data"},
                        "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"},
                        "status": {"phase": "Pending"}
                    }]
                },
                "status": {"replicas": 0, "availableReplicas": 0}
            }),
        ),
        (
            "apps",
            "v1",
            "DaemonSet",
            json!({"spec": {"template": template_in}}),
            json!({
                "spec": {
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                    "revisionHistoryLimit": 10,
                    "template": template_out
                },
                "status": {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0}
            }),
        ),
        (
            "apps",
            "v1",
            "ReplicaSet",
            json!({"spec": {"template": template_in}}),
            json!({"spec": {"replicas": 1, "template": template_out}, "status": {"replicas": 0}}),
        ),
        (
            "batch",
            "v1",
            "Job",
            json!({"spec": {"template": template_in}}),
            json!({
                "metadata": {"labels": labels},
                "spec": {
                    "completions": 1,
                    "parallelism": 1,
                    "backoffLimit": 6,
                    "completionMode": "NonIndexed",
                    "suspend": false,
                    "podReplacementPolicy": "TerminatingOrFailed",
                    "template": template_out
                },
                "status": {}
            }),
        ),
        (
            "batch",
            "v1",
            "Job",
            json!({"spec": {"parallelism": 3, "backoffLimitPerIndex": 1, "completionMode": "Indexed",
                            "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}}}),
            json!({
                "spec": {
                    "parallelism": 3,
                    "backoffLimit": 2147483647,
                    "backoffLimitPerIndex": 1,
                    "completionMode": "Indexed",
                    "suspend": false,
                    "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]},
                    "podReplacementPolicy": "Failed",
                    "template": {"spec": {
                        "dnsPolicy": "ClusterFirst",
                        "restartPolicy": "Always",
                        "schedulerName": "default-scheduler",
                        "securityContext": {},
                        "terminationGracePeriodSeconds": 30
                    }}
                },
                "status": {}
            }),
        ),
        (
            "batch",
            "v1",
            "CronJob",
            json!({"spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": template_in}}}}),
            json!({
                "spec": {
                    "schedule": "*/1 * * * *",
                    "concurrencyPolicy": "Allow",
                    "suspend": false,
                    "successfulJobsHistoryLimit": 3,
                    "failedJobsHistoryLimit": 1,
                    "jobTemplate": {"spec": {"template": template_out}}
                },
                "status": {}
            }),
        ),
        (
            "",
            "v1",
            "Service",
            json!({"spec": {"ports": [{"port": 80}], "selector": labels}}),
            json!({
                "spec": {
                    "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                    "selector": labels,
                    "sessionAffinity": "None",
                    "type": "ClusterIP",
                    "internalTrafficPolicy": "Cluster"
                },
                "status": {"loadBalancer": {}}
            }),
        ),
        (
            "",
            "v1",
            "Service",
            json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [{"port": 443, "targetPort": "https"}]},
                   "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}}),
            json!({
                "spec": {
                    "type": "LoadBalancer",
                    "sessionAffinity": "ClientIP",
                    "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
                    "ports": [{"port": 443, "protocol": "TCP", "targetPort": "https"}],
                    "externalTrafficPolicy": "Cluster",
                    "internalTrafficPolicy": "Cluster",
                    "allocateLoadBalancerNodePorts": true
                },
                "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4", "ipMode": "VIP"}]}}
            }),
        ),
        (
            "",
            "v1",
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}),
            json!({
                "spec": {"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"},
                "status": {"loadBalancer": {}}
            }),
        ),
        (
            "",
            "v1",
            "Secret",
            json!({"stringData": {"user": "admin"}}),
            json!({"data": {"user": "YWRtaW4="}, "type": "Opaque"}),
        ),
        (
            "",
            "v1",
            "Namespace",
            json!({"metadata": {"name": "dev"}}),
            json!({"metadata": {"name": "dev", "labels": {"kubernetes.io/metadata.name": "dev"}}, "status": {"phase": "Active"}}),
        ),
        (
            "",
            "v1",
            "PersistentVolumeClaim",
            json!({"spec": {"accessModes": ["ReadWriteOnce"]}}),
            json!({"spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"}, "status": {"phase": "Pending"}}),
        ),
        (
            "",
            "v1",
            "PersistentVolume",
            json!({"spec": {"hostPath": {"path": "/data"}}}),
            json!({"spec": {"hostPath": {"path": "/data", "type": ""}, "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem"},
                   "status": {"phase": "Pending"}}),
        ),
        (
            "",
            "v1",
            "ReplicationController",
            json!({"spec": {"template": template_in}}),
            json!({"metadata": {"labels": labels}, "spec": {"replicas": 1, "selector": labels, "template": template_out}, "status": {"replicas": 0}}),
        ),
        (
            "",
            "v1",
            "LimitRange",
            json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}}]}}),
            json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"},
                                         "default": {"cpu": "2"}, "defaultRequest": {"cpu": "2", "memory": "1Mi"}}]}}),
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            json!({"roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "s"}]}),
            json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                   "subjects": [{"kind": "User", "name": "u", "apiGroup": "rbac.authorization.k8s.io"}, {"kind": "ServiceAccount", "name": "s"}]}),
        ),
        (
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}}),
            json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "TCP"}]}], "policyTypes": ["Ingress", "Egress"]}}),
        ),
        (
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            json!({"spec": {"maxReplicas": 5, "scaleTargetRef": {"kind": "Deployment", "name": "web"}, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
            json!({"spec": {
                "maxReplicas": 5,
                "minReplicas": 1,
                "scaleTargetRef": {"kind": "Deployment", "name": "web"},
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}],
                "behavior": {
                    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                        {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]},
                    "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [
                        {"type": "Percent", "value": 100, "periodSeconds": 15}]}
                }
            }, "status": {"desiredReplicas": 0}}),
        ),
        (
            "storage.k8s.io",
            "v1",
            "StorageClass",
            json!({"provisioner": "x.io/y"}),
            json!({"provisioner": "x.io/y", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}),
        ),
        (
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            json!({"value": 5}),
            json!({"value": 5, "preemptionPolicy": "PreemptLowerPriority"}),
        ),
        (
            "example.com",
            "v1",
            "Widget",
            json!({"spec": {}}),
            json!({"spec": {}}),
        ),
    ];
    for (group, version, kind, mut input, want) in cases {
        default(group, version, kind, &mut input);
        assert_eq!(input, want, "{group}/{version} {kind}");
    }
}

#[test]
fn pod_gets_pod_only_defaults_and_nested_ones() {
    let mut pod = json!({"spec": {
        "hostNetwork": true,
        "containers": [{
            "name": "c",
            "image": "busybox:1.36",
            "ports": [{"containerPort": 8080}],
            "resources": {"limits": {"cpu": "1"}, "requests": {"memory": "1Gi"}},
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "livenessProbe": {"httpGet": {"port": 8080}},
            "readinessProbe": {"grpc": {"port": 9090}},
            "lifecycle": {"preStop": {"httpGet": {"port": 80, "path": "/stop"}}}
        }],
        "volumes": [
            {"name": "a"},
            {"name": "b", "configMap": {"name": "cm"}},
            {"name": "c", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
            {"name": "d", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}}
        ]
    }});
    default("", "v1", "Pod", &mut pod);
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        c["ports"][0],
        json!({"containerPort": 8080, "hostPort": 8080, "protocol": "TCP"})
    );
    assert_eq!(
        c["resources"]["requests"],
        json!({"cpu": "1", "memory": "1Gi"})
    );
    assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
               "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(
        c["readinessProbe"]["grpc"],
        json!({"port": 9090, "service": ""})
    );
    assert_eq!(c["lifecycle"]["preStop"]["httpGet"]["scheme"], "HTTP");
    assert_eq!(pod["spec"]["enableServiceLinks"], true);
    let vols = &pod["spec"]["volumes"];
    assert_eq!(vols[0], json!({"name": "a", "emptyDir": {}}));
    assert_eq!(vols[1]["configMap"]["defaultMode"], 420);
    assert_eq!(vols[2]["projected"]["defaultMode"], 420);
    assert_eq!(
        vols[2]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
        3600
    );
    assert_eq!(
        vols[3]["ephemeral"]["volumeClaimTemplate"]["spec"]["volumeMode"],
        "Filesystem"
    );
}

#[test]
fn templates_do_not_get_pod_only_defaults() {
    let mut d = json!({"spec": {"template": {"spec": {
        "hostNetwork": true,
        "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80}], "resources": {"limits": {"cpu": "1"}}}]
    }}}});
    default("apps", "v1", "Deployment", &mut d);
    let spec = &d["spec"]["template"]["spec"];
    assert!(spec.get("enableServiceLinks").is_none());
    assert!(spec["containers"][0]["ports"][0].get("hostPort").is_none());
    assert!(spec["containers"][0]["resources"].get("requests").is_none());
}

#[test]
fn defaulting_is_idempotent_and_tolerates_junk() {
    let mut d =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}});
    default("apps", "v1", "Deployment", &mut d);
    let once = d.clone();
    default("apps", "v1", "Deployment", &mut d);
    assert_eq!(d, once);
    for junk in [
        json!(null),
        json!([1, 2]),
        json!({"spec": "x"}),
        json!({"spec": {"template": 3, "strategy": []}}),
    ] {
        let mut j = junk.clone();
        default("apps", "v1", "Deployment", &mut j);
        default("", "v1", "Pod", &mut j);
        default("batch", "v1", "Job", &mut j);
        default("", "v1", "Service", &mut j);
    }
}

#[test]
fn job_selector_is_generated_from_the_uid() {
    let mut job =
        json!({"metadata": {"name": "pi", "uid": "u-1"}, "spec": {"template": {"metadata": {}}}});
    crate::generate_job_selector(&mut job);
    assert_eq!(
        job["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
    );
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"],
        json!({"batch.kubernetes.io/controller-uid": "u-1", "batch.kubernetes.io/job-name": "pi",
               "controller-uid": "u-1", "job-name": "pi"})
    );
    let mut manual =
        json!({"metadata": {"name": "pi", "uid": "u-1"}, "spec": {"manualSelector": true}});
    crate::generate_job_selector(&mut manual);
    assert!(manual["spec"].get("selector").is_none());
}

#[test]
fn service_ip_family_policy() {
    let cases = [
        (
            json!({"spec": {"type": "ClusterIP", "selector": {"a": "b"}}}),
            None,
            json!("SingleStack"),
        ),
        (
            json!({"spec": {"clusterIP": "None"}}),
            None,
            json!("RequireDualStack"),
        ),
        (json!({"spec": {"type": "ExternalName"}}), None, Value::Null),
        (
            json!({"spec": {}}),
            Some(json!({"spec": {"ipFamilyPolicy": "PreferDualStack"}})),
            json!("PreferDualStack"),
        ),
    ];
    for (mut svc, old, want) in cases {
        crate::default_service_ip_family_policy(&mut svc, old.as_ref());
        assert_eq!(
            svc["spec"]
                .get("ipFamilyPolicy")
                .cloned()
                .unwrap_or(Value::Null),
            want
        );
    }
}
