//! Checks our codec against prost's, via the k8s-pb message types: JSON -> our encode ->
//! prost decode, prost encode -> our decode -> JSON, and malformed input.

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message as _;
use serde_json::{json, Value};

/// Our encoding, unwrapped and decoded by prost; also checks the envelope's typeMeta.
fn ours_to_prost<M: prost::Message + Default>(object: &Value) -> M {
    let body = kube_protobuf::encode(object).expect("encode");
    let envelope = body.strip_prefix(b"k8s\0".as_slice()).expect("magic");
    let unknown = Unknown::decode(envelope).expect("prost decodes our envelope");
    let type_meta = unknown.type_meta.expect("typeMeta");
    assert_eq!(
        type_meta.api_version.as_deref(),
        object["apiVersion"].as_str()
    );
    assert_eq!(type_meta.kind.as_deref(), object["kind"].as_str());
    M::decode(unknown.raw.unwrap_or_default().as_slice()).expect("prost decodes our message")
}

/// A body as upstream would send it, made with prost.
fn prost_body(api_version: &str, kind: &str, message: &impl prost::Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(message.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

/// JSON -> ours -> prost -> prost -> ours must give the JSON back.
fn assert_round_trip<M: prost::Message + Default>(object: Value) {
    let api_version = object["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let message: M = ours_to_prost(&object);
    let back = kube_protobuf::decode(&prost_body(&api_version, &kind, &message)).expect("decode");
    assert_eq!(back, object);
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn config_map_both_ways() {
    let object = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "x",
            "namespace": "default",
            "labels": {"app": "web"},
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "resourceVersion": "42",
            "uid": "8d0e0b5a-0000-4000-8000-000000000001",
        },
        "data": {"a": "b", "empty": ""},
        "binaryData": {"bin": "AAEC"},
        "immutable": false,
    });
    let cm: core::ConfigMap = ours_to_prost(&object);
    let meta = cm.metadata.clone().expect("metadata");
    assert_eq!(meta.name, s("x"));
    assert_eq!(
        meta.creation_timestamp,
        Some(meta::Time {
            seconds: Some(1_767_323_045),
            nanos: Some(0)
        })
    );
    assert_eq!(cm.data.get("a"), s("b").as_ref());
    assert_eq!(cm.binary_data.get("bin"), Some(&vec![0u8, 1, 2]));
    assert_eq!(cm.immutable, Some(false));
    assert_round_trip::<core::ConfigMap>(object);
}

/// What `kubectl create configmap x --from-literal=a=b` sends: gogo writes every non-pointer
/// field, so the empty strings, zero generation and zero creationTimestamp are on the wire.
#[test]
fn decodes_a_kubectl_config_map_like_upstream_json() {
    let cm = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            name: s("x"),
            generate_name: s(""),
            namespace: s(""),
            self_link: s(""),
            uid: s(""),
            resource_version: s(""),
            generation: Some(0),
            creation_timestamp: Some(meta::Time::default()),
            ..Default::default()
        }),
        data: [("a".to_string(), "b".to_string())].into(),
        ..Default::default()
    };
    let decoded = kube_protobuf::decode(&prost_body("v1", "ConfigMap", &cm)).expect("decode");
    assert_eq!(
        decoded,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}})
    );
}

#[test]
fn secret_bytes_are_base64() {
    let object = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "type": "Opaque",
        "data": {"password": "c2VjcmV0", "binary": "/wD+"},
    });
    let secret: core::Secret = ours_to_prost(&object);
    assert_eq!(secret.data.get("password"), Some(&b"secret".to_vec()));
    assert_eq!(secret.data.get("binary"), Some(&vec![0xff, 0x00, 0xfe]));
    assert_eq!(secret.r#type, s("Opaque"));
    assert_round_trip::<core::Secret>(object);

    let bad = json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "not base64!"}});
    assert!(matches!(
        kube_protobuf::encode(&bad),
        Err(kube_protobuf::Error::InvalidField { .. })
    ));
}

#[test]
fn deployment_int_or_string_zero_replicas_and_time() {
    let object = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "creationTimestamp": "2026-01-02T03:04:05Z", "generation": 3},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]},
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": {
            "observedGeneration": 3,
            "conditions": [{
                "type": "Available",
                "status": "True",
                "lastUpdateTime": "2026-01-02T03:04:05Z",
                "lastTransitionTime": "2026-01-02T03:04:06Z",
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
            }],
        },
    });
    let d: apps::Deployment = ours_to_prost(&object);
    let spec = d.spec.clone().expect("spec");
    assert_eq!(
        spec.replicas,
        Some(0),
        "an explicit zero must be on the wire"
    );
    let rolling = spec
        .strategy
        .and_then(|st| st.rolling_update)
        .expect("rollingUpdate");
    assert_eq!(
        rolling.max_surge,
        Some(IntOrString {
            r#type: Some(1),
            int_val: Some(0),
            str_val: s("25%")
        })
    );
    assert_eq!(rolling.max_unavailable.and_then(|m| m.int_val), Some(1));
    assert_round_trip::<apps::Deployment>(object);

    // Decoding keeps replicas: 0 (a *int32 upstream) but drops the zero value fields
    // (minReadySeconds, paused, status counters) gogo always writes.
    let d = apps::Deployment {
        metadata: Some(meta::ObjectMeta {
            name: s("web"),
            ..Default::default()
        }),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            replicas: Some(0),
            ready_replicas: Some(0),
            ..Default::default()
        }),
    };
    let decoded = kube_protobuf::decode(&prost_body("apps/v1", "Deployment", &d)).expect("decode");
    assert_eq!(
        decoded,
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 0}, "status": {}})
    );
}

#[test]
fn pod_quantities_acronym_names_and_inline_structs() {
    let object = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true}
        ]},
        "spec": {
            "hostIPC": true,
            "containers": [{
                "name": "c",
                "image": "busybox",
                "command": ["sh", "-c", "sleep 1"],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}],
                "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 10},
                "securityContext": {"runAsUser": 0, "runAsNonRoot": false},
            }],
            "volumes": [{"name": "v", "configMap": {"name": "cm", "defaultMode": 420}}],
            "terminationGracePeriodSeconds": 30,
        },
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.5",
            "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
            "hostIPs": [{"ip": "192.168.1.2"}],
            "startTime": "2026-01-02T03:04:05Z",
        },
    });
    let pod: core::Pod = ours_to_prost(&object);
    let spec = pod.spec.clone().expect("spec");
    assert_eq!(spec.host_ipc, Some(true));
    let container = spec.containers.first().expect("container");
    let limits = &container.resources.as_ref().expect("resources").limits;
    assert_eq!(limits.get("cpu"), Some(&Quantity { string: s("500m") }));
    let key_ref = container
        .env
        .first()
        .and_then(|e| e.value_from.clone())
        .and_then(|v| v.config_map_key_ref);
    // ConfigMapKeySelector embeds LocalObjectReference: JSON's `name` sits beside `key`.
    assert_eq!(
        key_ref
            .and_then(|r| r.local_object_reference)
            .and_then(|l| l.name),
        s("cm")
    );
    let volume = spec.volumes.first().expect("volume");
    assert_eq!(
        volume
            .volume_source
            .as_ref()
            .and_then(|v| v.config_map.as_ref())
            .and_then(|c| c.default_mode),
        Some(420)
    );
    let status = pod.status.clone().expect("status");
    assert_eq!(status.pod_ips.len(), 2);
    assert_eq!(
        status.pod_ips.get(1).and_then(|ip| ip.ip.clone()),
        s("fd00::5")
    );
    assert_round_trip::<core::Pod>(object);
}

#[test]
fn service_ports_and_ip_lists() {
    let object = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc"},
        "spec": {
            "type": "NodePort",
            "selector": {"app": "web"},
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "externalIPs": ["1.2.3.4"],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080},
                {"name": "https", "protocol": "TCP", "port": 443, "targetPort": "https"},
            ],
            "sessionAffinity": "None",
        },
        "status": {"loadBalancer": {}},
    });
    let svc: core::Service = ours_to_prost(&object);
    let spec = svc.spec.clone().expect("spec");
    assert_eq!(spec.external_ips, vec!["1.2.3.4".to_string()]);
    assert_eq!(
        spec.ports
            .get(1)
            .and_then(|p| p.target_port.clone())
            .and_then(|t| t.str_val),
        s("https")
    );
    assert_round_trip::<core::Service>(object);
}

#[test]
fn status_and_delete_options_under_any_group() {
    let object = json!({
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": "configmaps \"x\" not found",
        "reason": "NotFound",
        "details": {"name": "x", "kind": "configmaps", "causes": [{"reason": "FieldValueInvalid", "field": "a"}]},
        "code": 404,
    });
    let status: meta::Status = ours_to_prost(&object);
    assert_eq!(status.code, Some(404));
    assert_eq!(status.details.and_then(|d| d.kind), s("configmaps"));
    assert_round_trip::<meta::Status>(object);

    assert!(kube_protobuf::supports("apps/v1", "DeleteOptions"));
    let options = json!({"apiVersion": "apps/v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground", "gracePeriodSeconds": 0});
    let decoded: meta::DeleteOptions = ours_to_prost(&options);
    assert_eq!(decoded.grace_period_seconds, Some(0));
    assert_round_trip::<meta::DeleteOptions>(options);
}

#[test]
fn lists_micro_time_and_raw_extensions() {
    let list = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "LeaseList",
        "metadata": {"resourceVersion": "7", "continue": "abc"},
        "items": [{
            "metadata": {"name": "kube-scheduler", "namespace": "kube-system"},
            "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "renewTime": "2026-01-02T03:04:05.123456Z", "leaseTransitions": 0},
        }],
    });
    assert_round_trip::<k8s_pb::api::coordination::v1::LeaseList>(list);

    let revision = json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": "r", "managedFields": [{
            "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-01-02T03:04:05Z",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}},
        }]},
        "data": {"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}},
        "revision": 2,
    });
    assert_round_trip::<apps::ControllerRevision>(revision);
}

#[test]
fn every_kind_the_apiserver_serves_is_supported() {
    let kinds = [
        (
            "v1",
            &[
                "Namespace",
                "Pod",
                "Node",
                "Service",
                "Endpoints",
                "ConfigMap",
                "Secret",
                "ServiceAccount",
                "Event",
                "PersistentVolume",
                "PersistentVolumeClaim",
                "ResourceQuota",
                "LimitRange",
                "PodTemplate",
                "ReplicationController",
                "Binding",
                "Status",
                "DeleteOptions",
            ][..],
        ),
        (
            "apps/v1",
            &[
                "Deployment",
                "ReplicaSet",
                "StatefulSet",
                "DaemonSet",
                "ControllerRevision",
            ][..],
        ),
        ("autoscaling/v1", &["Scale"][..]),
        ("batch/v1", &["Job", "CronJob"][..]),
        ("discovery.k8s.io/v1", &["EndpointSlice"][..]),
        ("coordination.k8s.io/v1", &["Lease"][..]),
        ("events.k8s.io/v1", &["Event"][..]),
        (
            "rbac.authorization.k8s.io/v1",
            &["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"][..],
        ),
        (
            "storage.k8s.io/v1",
            &["StorageClass", "CSIDriver", "CSINode", "VolumeAttachment"][..],
        ),
        ("policy/v1", &["PodDisruptionBudget", "Eviction"][..]),
        ("autoscaling/v2", &["HorizontalPodAutoscaler"][..]),
        (
            "networking.k8s.io/v1",
            &["Ingress", "IngressClass", "NetworkPolicy"][..],
        ),
        ("scheduling.k8s.io/v1", &["PriorityClass"][..]),
        ("node.k8s.io/v1", &["RuntimeClass"][..]),
    ];
    for (api_version, kinds) in kinds {
        for kind in kinds {
            assert!(
                kube_protobuf::supports(api_version, kind),
                "{api_version} {kind}"
            );
            let list_kind = format!("{kind}List");
            let single_only = ["Binding", "Status", "DeleteOptions", "Scale", "Eviction"];
            if !single_only.contains(kind) {
                assert!(
                    kube_protobuf::supports(api_version, &list_kind),
                    "{api_version} {list_kind}"
                );
            }
        }
    }
    assert!(!kube_protobuf::supports("v1", "Table"));
    assert!(!kube_protobuf::supports("example.com/v1", "Widget"));
}

#[test]
fn malformed_bodies_are_errors_not_panics() {
    use kube_protobuf::Error;
    assert!(matches!(
        kube_protobuf::decode(b"{\"kind\":\"Pod\"}"),
        Err(Error::MissingMagic)
    ));
    assert!(matches!(
        kube_protobuf::decode(b"k8s"),
        Err(Error::MissingMagic)
    ));
    assert!(matches!(
        kube_protobuf::decode(b"k8s\0"),
        Err(Error::MissingTypeMeta)
    ));
    let widget = prost_body("example.com/v1", "Widget", &core::ConfigMap::default());
    assert!(matches!(
        kube_protobuf::decode(&widget),
        Err(Error::UnsupportedKind { .. })
    ));
    assert!(
        kube_protobuf::decode(&prost_body("v1", "ConfigMap", &core::ConfigMap::default())).is_ok()
    );
    // A varint where ConfigMap.metadata (a message) belongs.
    let mut bad = b"k8s\0".to_vec();
    bad.extend(
        Unknown {
            type_meta: Some(TypeMeta {
                api_version: s("v1"),
                kind: s("ConfigMap"),
            }),
            raw: Some(vec![0x08, 0x01]),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    assert!(matches!(
        kube_protobuf::decode(&bad),
        Err(Error::Malformed(_))
    ));

    // Every prefix of a real body either decodes or fails cleanly.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": "1"}}}]}});
    let body = kube_protobuf::encode(&pod).expect("encode");
    for end in 0..body.len() {
        let _ = kube_protobuf::decode(body.get(..end).unwrap_or_default());
    }
    // Flipped bytes must not panic either.
    for i in 4..body.len() {
        let mut corrupt = body.clone();
        if let Some(b) = corrupt.get_mut(i) {
            *b ^= 0xff;
        }
        let _ = kube_protobuf::decode(&corrupt);
    }
}

#[test]
fn invalid_objects_are_errors() {
    use kube_protobuf::Error;
    let cases = [
        (json!({"kind": "Pod"}), "missing apiVersion"),
        (
            json!({"apiVersion": "v1", "kind": "Pod", "spec": []}),
            "spec is not an object",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": "3"}}),
            "replicas is a string",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 4_294_967_296u64}}),
            "replicas overflows",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"creationTimestamp": "noon"}}),
            "bad time",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": 1}}),
            "map value not a string",
        ),
    ];
    for (object, why) in cases {
        let result = kube_protobuf::encode(&object);
        assert!(
            matches!(
                result,
                Err(Error::MissingTypeMeta | Error::InvalidField { .. })
            ),
            "{why}: {result:?}"
        );
    }
}
