//! Table-driven checks of every printer against realistic objects, asserting
//! the exact cells upstream's printers produce.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::{cells, column_definitions_json, columns, default_cells, default_columns, PRINTERS};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-06-01T12:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// RFC 3339 text for `ago` before [`now`].
fn ago(d: Duration) -> String {
    (now() - d).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": ago(Duration::minutes(10))})
}

fn texts(v: &[Value]) -> Vec<String> {
    v.iter()
        .map(|c| match c {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn check(group: &str, resource: &str, obj: Value, want: &[&str]) {
    let got = texts(&cells(group, resource, &obj, now()));
    assert_eq!(got, want, "{group}/{resource}: {obj}");
}

#[test]
fn every_printer_aligns_cells_with_columns_even_for_garbage() {
    let inputs = [
        json!({}),
        json!(null),
        json!([1, 2]),
        json!({"metadata": 5, "spec": "x", "status": {"conditions": "no"}}),
        json!({"metadata": {"name": "x"}, "spec": {"containers": [1, null], "ports": [{}]},
               "status": {"containerStatuses": [{"state": {"terminated": {}}}], "initContainerStatuses": [{}]}}),
    ];
    for p in PRINTERS {
        assert_eq!(
            p.columns.first().map(|c| c.name),
            Some(if p.resource == "events" {
                "Last Seen"
            } else {
                "Name"
            })
        );
        for input in &inputs {
            let row = cells(p.group, p.resource, input, now());
            assert_eq!(
                row.len(),
                p.columns.len(),
                "{}/{} on {input}",
                p.group,
                p.resource
            );
        }
    }
}

#[test]
fn resources_without_printer_use_default_table() {
    for (group, resource) in [
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("", "limitranges"),
        ("example.com", "widgets"),
    ] {
        assert!(columns(group, resource).is_none(), "{resource}");
    }
    let names: Vec<_> = default_columns()
        .iter()
        .map(|c| (c.name, c.type_, c.format))
        .collect();
    assert_eq!(
        names,
        [("Name", "string", "name"), ("Created At", "date", "")]
    );
    let obj = json!({"metadata": {"name": "admin", "creationTimestamp": "2024-03-04T05:06:07Z"}});
    assert_eq!(
        texts(&default_cells(&obj)),
        ["admin", "2024-03-04T05:06:07Z"]
    );
    assert_eq!(
        texts(&default_cells(&json!({}))),
        ["", "0001-01-01T00:00:00Z"]
    );
    assert_eq!(
        texts(&cells("", "limitranges", &obj, now())),
        ["admin", "2024-03-04T05:06:07Z"]
    );
}

#[test]
fn column_definitions_serialize_like_metav1() {
    let cols = columns("", "pods").unwrap_or_default();
    let defs = column_definitions_json(cols);
    assert_eq!(defs[0]["name"], "Name");
    assert_eq!(defs[0]["type"], "string");
    assert_eq!(defs[0]["format"], "name");
    assert_eq!(defs[0]["priority"], 0);
    assert_eq!(
        defs[5],
        json!({"name": "IP", "type": "string", "format": "", "priority": 1,
        "description": cols[5].description})
    );
    let names: Vec<&str> = cols.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates"
        ]
    );
}

fn pod(spec: Value, status: Value) -> Value {
    json!({"metadata": meta("web"), "spec": spec, "status": status})
}

fn one_container() -> Value {
    json!({"containers": [{"name": "app", "image": "nginx"}], "nodeName": "node-1"})
}

#[test]
fn pod_status_matches_upstream() {
    let running = json!({"running": {"startedAt": ago(Duration::minutes(9))}});
    let cases: Vec<(&str, Value, [&str; 9])> = vec![
        (
            "running and ready",
            pod(
                one_container(),
                json!({"phase": "Running", "podIP": "10.0.0.5",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": running}]}),
            ),
            [
                "web", "1/1", "Running", "0", "10m", "10.0.0.5", "node-1", "<none>", "<none>",
            ],
        ),
        (
            "crash loop with three restarts",
            pod(
                one_container(),
                json!({"phase": "Running", "podIPs": [{"ip": "10.0.0.6"}, {"ip": "fd00::6"}],
                "containerStatuses": [{"name": "app", "ready": false, "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                        "finishedAt": ago(Duration::minutes(5))}}}]}),
            ),
            [
                "web",
                "0/1",
                "CrashLoopBackOff",
                "3 (5m ago)",
                "10m",
                "10.0.0.6",
                "node-1",
                "<none>",
                "<none>",
            ],
        ),
        (
            "pending before scheduling",
            json!({"metadata": meta("web"), "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
                   "status": {"phase": "Pending"}}),
            [
                "web", "0/2", "Pending", "0", "10m", "<none>", "<none>", "<none>", "<none>",
            ],
        ),
        (
            "scheduling gated",
            pod(
                one_container(),
                json!({"phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
            ),
            [
                "web",
                "0/1",
                "SchedulingGated",
                "0",
                "10m",
                "<none>",
                "node-1",
                "<none>",
                "<none>",
            ],
        ),
        (
            "completed",
            pod(
                one_container(),
                json!({"phase": "Succeeded", "containerStatuses": [{"name": "app",
                "ready": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
            ),
            [
                "web",
                "0/1",
                "Completed",
                "0",
                "10m",
                "<none>",
                "node-1",
                "<none>",
                "<none>",
            ],
        ),
        (
            "error exit",
            pod(
                one_container(),
                json!({"phase": "Failed", "containerStatuses": [{"name": "app",
                "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]}),
            ),
            [
                "web", "0/1", "Error", "0", "10m", "<none>", "node-1", "<none>", "<none>",
            ],
        ),
        (
            "signal without reason",
            pod(
                one_container(),
                json!({"phase": "Failed", "containerStatuses": [{"name": "app",
                "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
            ),
            [
                "web", "0/1", "Signal:9", "0", "10m", "<none>", "node-1", "<none>", "<none>",
            ],
        ),
        (
            "exit code without reason",
            pod(
                one_container(),
                json!({"phase": "Failed", "containerStatuses": [{"name": "app",
                "state": {"terminated": {"exitCode": 3}}}]}),
            ),
            [
                "web",
                "0/1",
                "ExitCode:3",
                "0",
                "10m",
                "<none>",
                "node-1",
                "<none>",
                "<none>",
            ],
        ),
        (
            "terminating",
            json!({"metadata": {"name": "web", "creationTimestamp": ago(Duration::minutes(10)),
                    "deletionTimestamp": ago(Duration::seconds(-30))},
                   "spec": one_container(),
                   "status": {"phase": "Running", "containerStatuses": [{"name": "app", "ready": true, "state": running}]}}),
            [
                "web",
                "1/1",
                "Terminating",
                "0",
                "10m",
                "<none>",
                "node-1",
                "<none>",
                "<none>",
            ],
        ),
        (
            "deleted succeeded pod keeps its reason",
            json!({"metadata": {"name": "web", "creationTimestamp": ago(Duration::minutes(10)),
                    "deletionTimestamp": ago(Duration::seconds(0))},
                   "spec": one_container(),
                   "status": {"phase": "Succeeded", "containerStatuses": [{"name": "app",
                       "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}),
            [
                "web",
                "0/1",
                "Completed",
                "0",
                "10m",
                "<none>",
                "node-1",
                "<none>",
                "<none>",
            ],
        ),
        (
            "node lost",
            json!({"metadata": {"name": "web", "creationTimestamp": ago(Duration::minutes(10)),
                    "deletionTimestamp": ago(Duration::seconds(0))},
                   "spec": one_container(), "status": {"phase": "Running", "reason": "NodeLost"}}),
            [
                "web", "0/1", "Unknown", "0", "10m", "<none>", "node-1", "<none>", "<none>",
            ],
        ),
    ];
    for (what, obj, want) in cases {
        let got = texts(&cells("", "pods", &obj, now()));
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn pod_init_containers_and_sidecars() {
    let spec = json!({"initContainers": [{"name": "init-a"}, {"name": "init-b"}],
                      "containers": [{"name": "app"}]});
    let status_cell = |status: Value| {
        let obj = pod(spec.clone(), status);
        let row = texts(&cells("", "pods", &obj, now()));
        (row[1].clone(), row[2].clone(), row[3].clone())
    };
    let done =
        json!({"name": "init-a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    assert_eq!(
        status_cell(json!({"phase": "Pending", "initContainerStatuses": [done,
            {"name": "init-b", "state": {"running": {}}}]})),
        ("0/1".into(), "Init:1/2".into(), "0".into())
    );
    assert_eq!(
        status_cell(json!({"phase": "Pending", "initContainerStatuses": [done,
            {"name": "init-b", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(Duration::seconds(40))}}}]})),
        (
            "0/1".into(),
            "Init:CrashLoopBackOff".into(),
            "4 (40s ago)".into()
        )
    );
    assert_eq!(
        status_cell(json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "init-a", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]})),
        ("0/1".into(), "Init:Error".into(), "0".into())
    );
    assert_eq!(
        status_cell(json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "init-a", "state": {"terminated": {"exitCode": 1, "signal": 15}}}]})),
        ("0/1".into(), "Init:Signal:15".into(), "0".into())
    );
    assert_eq!(
        status_cell(json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "init-a", "state": {"waiting": {"reason": "PodInitializing"}}}]})),
        ("0/1".into(), "Init:0/2".into(), "0".into())
    );
    let both_done = json!([done, {"name": "init-b", "state": {"terminated": {"exitCode": 0}}}]);
    assert_eq!(
        status_cell(
            json!({"phase": "Pending", "initContainerStatuses": both_done,
            "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]})
        ),
        ("0/1".into(), "PodInitializing".into(), "0".into())
    );

    // A started sidecar counts towards READY and its restarts stay counted.
    let sidecar_spec = json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                              "containers": [{"name": "app"}]});
    let obj = pod(
        sidecar_spec,
        json!({"phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
        "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true, "restartCount": 2,
            "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(Duration::hours(3))}}}],
        "containerStatuses": [{"name": "app", "ready": true, "restartCount": 1, "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(Duration::minutes(20))}}}]}),
    );
    let row = texts(&cells("", "pods", &obj, now()));
    assert_eq!(&row[1..4], ["2/2", "Running", "3 (20m ago)"]);

    // A completed job-like container next to a running one is not "Completed".
    let two = json!({"containers": [{"name": "a"}, {"name": "b"}]});
    let obj = pod(
        two,
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {"name": "a", "ready": true, "state": {"running": {}}},
            {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
    );
    assert_eq!(
        &texts(&cells("", "pods", &obj, now()))[1..3],
        ["1/2", "NotReady"]
    );
}

#[test]
fn pod_readiness_gates() {
    let obj = pod(
        json!({"containers": [{"name": "a"}], "readinessGates": [
            {"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]}),
        json!({"conditions": [{"type": "example.com/lb", "status": "True"},
                              {"type": "example.com/dns", "status": "False"}]}),
    );
    assert_eq!(texts(&cells("", "pods", &obj, now()))[8], "1/2");
}

#[test]
fn services() {
    let node_port = json!({"metadata": meta("web"), "spec": {"type": "NodePort",
        "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "selector": {"app": "web", "tier": "fe"},
        "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                  {"port": 443, "nodePort": 30443, "protocol": "TCP"}]}});
    check(
        "",
        "services",
        node_port,
        &[
            "web",
            "NodePort",
            "10.96.0.10",
            "<none>",
            "80:30080/TCP,443:30443/TCP",
            "10m",
            "app=web,tier=fe",
        ],
    );
    let lb_pending = json!({"metadata": meta("lb"), "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.11"],
        "ports": [{"port": 53, "protocol": "UDP", "nodePort": 31000}]}});
    check(
        "",
        "services",
        lb_pending,
        &[
            "lb",
            "LoadBalancer",
            "10.96.0.11",
            "<pending>",
            "53:31000/UDP",
            "10m",
            "<none>",
        ],
    );
    let lb = json!({"metadata": meta("lb"), "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.11"],
        "externalIPs": ["1.2.3.4"], "ports": [{"port": 80, "protocol": "TCP"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "a-very-long-hostname.example.com"}]}}});
    check(
        "",
        "services",
        lb,
        &[
            "lb",
            "LoadBalancer",
            "10.96.0.11",
            "203.0.113.9,a-very-long-hostname.example.com,1.2.3.4",
            "80/TCP",
            "10m",
            "<none>",
        ],
    );
    let headless =
        json!({"metadata": meta("db"), "spec": {"clusterIP": "None", "clusterIPs": ["None"]}});
    check(
        "",
        "services",
        headless,
        &[
            "db",
            "ClusterIP",
            "None",
            "<none>",
            "<none>",
            "10m",
            "<none>",
        ],
    );
    let ext = json!({"metadata": meta("ext"), "spec": {"type": "ExternalName", "externalName": "db.example.com"}});
    check(
        "",
        "services",
        ext,
        &[
            "ext",
            "ExternalName",
            "<none>",
            "db.example.com",
            "<none>",
            "10m",
            "<none>",
        ],
    );
}

#[test]
fn endpoints_and_slices() {
    let eps = json!({"metadata": meta("web"), "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 8080}, {"port": 9090}]}]});
    check(
        "",
        "endpoints",
        eps,
        &[
            "web",
            "10.0.0.1:8080,10.0.0.2:8080,10.0.0.1:9090 + 1 more...",
            "10m",
        ],
    );
    let v6 = json!({"metadata": meta("v6"), "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]});
    check("", "endpoints", v6, &["v6", "[fd00::1]:80", "10m"]);
    check(
        "",
        "endpoints",
        json!({"metadata": meta("none")}),
        &["none", "<none>", "10m"],
    );

    let slice = json!({"metadata": meta("web-abc"), "addressType": "IPv4",
        "ports": [{"port": 80, "name": "http"}, {"name": "metrics"}, {}, {"port": 1}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]});
    check(
        "discovery.k8s.io",
        "endpointslices",
        slice,
        &[
            "web-abc",
            "IPv4",
            "80,metrics,* + 1 more...",
            "10.0.0.1,10.0.0.2",
            "10m",
        ],
    );
    let empty = json!({"metadata": meta("e"), "addressType": "IPv6"});
    check(
        "discovery.k8s.io",
        "endpointslices",
        empty,
        &["e", "IPv6", "<unset>", "<unset>", "10m"],
    );
}

#[test]
fn nodes() {
    let node = json!({"metadata": {"name": "cp-1", "creationTimestamp": ago(Duration::days(3)),
            "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": "",
                       "kubernetes.io/role": "infra", "node-role.kubernetes.io/": ""}},
        "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "Hostname", "address": "cp-1"}, {"type": "InternalIP", "address": "192.168.1.10"}],
            "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "containerd://1.7.13"}}});
    check(
        "",
        "nodes",
        node,
        &[
            "cp-1",
            "Ready,SchedulingDisabled",
            "control-plane,infra,worker",
            "3d",
            "v1.33.1",
            "192.168.1.10",
            "<none>",
            "Debian GNU/Linux 12 (bookworm)",
            "6.1.0-18-amd64",
            "containerd://1.7.13",
        ],
    );
    let bare = json!({"metadata": meta("n2"), "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
    check(
        "",
        "nodes",
        bare,
        &[
            "n2",
            "NotReady",
            "<none>",
            "10m",
            "",
            "<none>",
            "<none>",
            "<unknown>",
            "<unknown>",
            "<unknown>",
        ],
    );
    check(
        "",
        "nodes",
        json!({"metadata": meta("n3")}),
        &[
            "n3",
            "Unknown",
            "<none>",
            "10m",
            "",
            "<none>",
            "<none>",
            "<unknown>",
            "<unknown>",
            "<unknown>",
        ],
    );
}

#[test]
fn events_core_and_events_v1() {
    let ev = json!({"metadata": meta("web.17a"), "type": "Warning", "reason": "BackOff",
        "message": "  Back-off restarting failed container\n",
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(Duration::minutes(30)), "lastTimestamp": ago(Duration::seconds(45)), "count": 7});
    check(
        "",
        "events",
        ev,
        &[
            "45s",
            "Warning",
            "BackOff",
            "pod/web",
            "spec.containers{app}",
            "kubelet, node-1",
            "Back-off restarting failed container",
            "30m",
            "7",
            "web.17a",
        ],
    );
    let new_style = json!({"metadata": meta("n.1"), "type": "Normal", "reason": "Scheduled",
        "eventTime": "2025-06-01T11:58:00.123456Z", "reportingComponent": "default-scheduler",
        "involvedObject": {"kind": "Pod", "name": "web"}, "message": "assigned"});
    // 1m59.88s truncates to 119s, as Go's int(d.Seconds()) does.
    check(
        "",
        "events",
        new_style,
        &[
            "119s",
            "Normal",
            "Scheduled",
            "pod/web",
            "",
            "default-scheduler",
            "assigned",
            "119s",
            "1",
            "n.1",
        ],
    );
    let v1 = json!({"metadata": meta("e.2"), "type": "Normal", "reason": "Pulled", "note": "pulled image",
        "eventTime": ago(Duration::hours(2)), "reportingController": "kubelet", "reportingInstance": "node-2",
        "regarding": {"kind": "Pod", "name": "api"},
        "series": {"count": 4, "lastObservedTime": ago(Duration::minutes(1))}});
    check(
        "events.k8s.io",
        "events",
        v1,
        &[
            "60s",
            "Normal",
            "Pulled",
            "pod/api",
            "",
            "kubelet, node-2",
            "pulled image",
            "120m",
            "4",
            "e.2",
        ],
    );
    check(
        "",
        "events",
        json!({"metadata": {"name": "x"}}),
        &["<unknown>", "", "", "", "", "", "", "<unknown>", "1", "x"],
    );
}

#[test]
fn simple_core_resources() {
    check(
        "",
        "namespaces",
        json!({"metadata": meta("kube-system"), "status": {"phase": "Active"}}),
        &["kube-system", "Active", "10m"],
    );
    check(
        "",
        "configmaps",
        json!({"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}),
        &["cfg", "3", "10m"],
    );
    check(
        "",
        "secrets",
        json!({"metadata": meta("tls"), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}),
        &["tls", "kubernetes.io/tls", "2", "10m"],
    );
    check(
        "",
        "serviceaccounts",
        json!({"metadata": meta("default")}),
        &["default", "0", "10m"],
    );
    check(
        "",
        "podtemplates",
        json!({"metadata": meta("t"), "template": {"metadata": {"labels": {"app": "x"}},
        "spec": {"containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "nginx:1.27"}]}}}),
        &["t", "a,b", "busybox,nginx:1.27", "app=x"],
    );
    check(
        "",
        "replicationcontrollers",
        json!({"metadata": meta("rc"), "spec": {"replicas": 3, "selector": {"app": "x"},
        "template": {"spec": {"containers": [{"name": "a", "image": "i"}]}}}, "status": {"replicas": 3, "readyReplicas": 2}}),
        &["rc", "3", "3", "2", "10m", "a", "i", "app=x"],
    );
    check(
        "",
        "componentstatuses",
        json!({"metadata": {"name": "etcd-0"}, "conditions": [
        {"type": "Healthy", "status": "True", "message": "ok"}]}),
        &["etcd-0", "Healthy", "ok", ""],
    );
}

#[test]
fn volumes_and_claims() {
    let pv = json!({"metadata": meta("pv-1"), "spec": {"capacity": {"storage": "10240Mi"},
        "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain",
        "claimRef": {"namespace": "default", "name": "data"}, "storageClassName": "fast", "volumeMode": "Filesystem"},
        "status": {"phase": "Bound"}});
    check(
        "",
        "persistentvolumes",
        pv,
        &[
            "pv-1",
            "10Gi",
            "RWO,RWX",
            "Retain",
            "Bound",
            "default/data",
            "fast",
            "<unset>",
            "",
            "10m",
            "Filesystem",
        ],
    );
    let pvc = json!({"metadata": meta("data"), "spec": {"volumeName": "pv-1", "storageClassName": "fast",
        "resources": {"requests": {"storage": "5Gi"}}}, "status": {"phase": "Bound",
        "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"]}});
    check(
        "",
        "persistentvolumeclaims",
        pvc,
        &[
            "data", "Bound", "pv-1", "10Gi", "RWO", "fast", "<unset>", "10m", "<unset>",
        ],
    );
    let pending = json!({"metadata": {"name": "p", "creationTimestamp": ago(Duration::minutes(10)),
        "annotations": {"volume.beta.kubernetes.io/storage-class": "legacy"}}, "spec": {"storageClassName": "fast"},
        "status": {"phase": "Pending"}});
    check(
        "",
        "persistentvolumeclaims",
        pending,
        &[
            "p", "Pending", "", "", "", "legacy", "<unset>", "10m", "<unset>",
        ],
    );
}

#[test]
fn resource_quota_splits_requests_and_limits() {
    let rq = json!({"metadata": meta("q"), "status": {
        "hard": {"pods": "10", "requests.cpu": "2", "limits.memory": "2Gi", "requests.memory": "1024Mi", "limits": "1"},
        "used": {"pods": "3", "requests.cpu": "500m", "limits.memory": "512Mi"}}});
    check(
        "",
        "resourcequotas",
        rq,
        &[
            "q",
            "limits: 0/1, pods: 3/10, requests.cpu: 500m/2, requests.memory: 0/1Gi",
            "limits.memory: 512Mi/2Gi",
            "10m",
        ],
    );
}

#[test]
fn apps_workloads() {
    let tmpl = json!({"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}});
    let deploy = json!({"metadata": meta("web"), "spec": {"replicas": 3,
        "selector": {"matchLabels": {"app": "web"}}, "template": tmpl},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
    check(
        "apps",
        "deployments",
        deploy,
        &[
            "web",
            "2/3",
            "3",
            "2",
            "10m",
            "web",
            "nginx:1.27",
            "app=web",
        ],
    );
    check(
        "apps",
        "deployments",
        json!({"metadata": meta("d")}),
        &["d", "0/1", "0", "0", "10m", "", "", ""],
    );
    let bad = json!({"metadata": meta("b"), "spec": {"replicas": 0, "selector": {"matchExpressions": [{"key": "a", "operator": "Nope"}]}}});
    check(
        "apps",
        "deployments",
        bad,
        &["b", "0/0", "0", "0", "10m", "", "", "<invalid>"],
    );
    let rs = json!({"metadata": meta("web-5d"), "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
        "template": tmpl}, "status": {"replicas": 2, "readyReplicas": 1}});
    check(
        "apps",
        "replicasets",
        rs,
        &[
            "web-5d",
            "2",
            "2",
            "1",
            "10m",
            "web",
            "nginx:1.27",
            "app=web",
        ],
    );
    let sts = json!({"metadata": meta("db"), "spec": {"replicas": 3, "template": tmpl}, "status": {"readyReplicas": 3}});
    check(
        "apps",
        "statefulsets",
        sts,
        &["db", "3/3", "10m", "web", "nginx:1.27"],
    );
    let ds = json!({"metadata": meta("proxy"), "spec": {"selector": {"matchLabels": {"k8s-app": "proxy"}},
        "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "p", "image": "kp"}]}}},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                   "updatedNumberScheduled": 3, "numberAvailable": 2}});
    check(
        "apps",
        "daemonsets",
        ds,
        &[
            "proxy",
            "3",
            "3",
            "2",
            "3",
            "2",
            "kubernetes.io/os=linux",
            "10m",
            "p",
            "kp",
            "k8s-app=proxy",
        ],
    );
    let cr = json!({"metadata": {"name": "proxy-7f", "creationTimestamp": ago(Duration::minutes(10)),
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "proxy", "controller": true}]},
        "revision": 2});
    check(
        "apps",
        "controllerrevisions",
        cr,
        &["proxy-7f", "daemonset.apps/proxy", "2", "10m"],
    );
    check(
        "apps",
        "controllerrevisions",
        json!({"metadata": meta("orphan"), "revision": 1}),
        &["orphan", "<none>", "1", "10m"],
    );
}

#[test]
fn jobs_and_cron_jobs() {
    let job = |status: Value, spec: Value| json!({"metadata": meta("backup"), "spec": spec, "status": status});
    let spec = json!({"completions": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
        "template": {"spec": {"containers": [{"name": "b", "image": "busybox"}]}}});
    let start = ago(Duration::minutes(8));
    check(
        "batch",
        "jobs",
        job(
            json!({"succeeded": 1, "startTime": start, "completionTime": ago(Duration::minutes(7)),
        "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}),
            spec.clone(),
        ),
        &[
            "backup",
            "Complete",
            "1/1",
            "60s",
            "10m",
            "b",
            "busybox",
            "batch.kubernetes.io/controller-uid=u1",
        ],
    );
    check(
        "batch",
        "jobs",
        job(json!({"startTime": start, "active": 1}), spec.clone()),
        &[
            "backup",
            "Running",
            "0/1",
            "8m",
            "10m",
            "b",
            "busybox",
            "batch.kubernetes.io/controller-uid=u1",
        ],
    );
    check(
        "batch",
        "jobs",
        job(
            json!({"failed": 2, "conditions": [{"type": "Failed", "status": "True"}]}),
            json!({"parallelism": 3}),
        ),
        &["backup", "Failed", "0/1 of 3", "", "10m", "", "", "<none>"],
    );
    check(
        "batch",
        "jobs",
        job(
            json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
            json!({"completions": 5}),
        ),
        &["backup", "Suspended", "0/5", "", "10m", "", "", "<none>"],
    );
    check(
        "batch",
        "jobs",
        job(
            json!({"conditions": [{"type": "FailureTarget", "status": "True"}]}),
            json!({}),
        ),
        &[
            "backup",
            "FailureTarget",
            "0/1",
            "",
            "10m",
            "",
            "",
            "<none>",
        ],
    );
    let cj = json!({"metadata": meta("nightly"), "spec": {"schedule": "0 2 * * *", "timeZone": "Etc/UTC", "suspend": false,
        "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "busybox"}]}}}}},
        "status": {"active": [{"name": "nightly-1"}], "lastScheduleTime": ago(Duration::hours(5))}});
    check(
        "batch",
        "cronjobs",
        cj,
        &[
            "nightly",
            "0 2 * * *",
            "Etc/UTC",
            "False",
            "1",
            "5h",
            "10m",
            "b",
            "busybox",
            "<none>",
        ],
    );
    check(
        "batch",
        "cronjobs",
        json!({"metadata": meta("c"), "spec": {"schedule": "@hourly"}}),
        &[
            "c", "@hourly", "<none>", "<unset>", "0", "<none>", "10m", "", "", "<none>",
        ],
    );
}

#[test]
fn networking_resources() {
    let ing = json!({"metadata": meta("web"), "spec": {"ingressClassName": "nginx",
        "rules": [{"host": "a.example.com"}, {}, {"host": "b.example.com"}, {"host": "c.example.com"}, {"host": "d.example.com"}],
        "tls": [{"hosts": ["a.example.com"]}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}});
    check(
        "networking.k8s.io",
        "ingresses",
        ing,
        &[
            "web",
            "nginx",
            "a.example.com,b.example.com,c.example.com + 2 more...",
            "203.0.113.7",
            "80, 443",
            "10m",
        ],
    );
    check(
        "networking.k8s.io",
        "ingresses",
        json!({"metadata": meta("i")}),
        &["i", "<none>", "*", "", "80", "10m"],
    );
    let class = json!({"metadata": meta("nginx"), "spec": {"controller": "k8s.io/ingress-nginx",
        "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
    check(
        "networking.k8s.io",
        "ingressclasses",
        class,
        &[
            "nginx",
            "k8s.io/ingress-nginx",
            "IngressParameters.k8s.example.com/external-lb",
            "10m",
        ],
    );
    let np = json!({"metadata": meta("deny"), "spec": {"podSelector": {}}});
    check(
        "networking.k8s.io",
        "networkpolicies",
        np,
        &["deny", "<none>", "10m"],
    );
    let np =
        json!({"metadata": meta("db"), "spec": {"podSelector": {"matchLabels": {"role": "db"}}}});
    check(
        "networking.k8s.io",
        "networkpolicies",
        np,
        &["db", "role=db", "10m"],
    );
}

#[test]
fn cluster_resources() {
    check(
        "coordination.k8s.io",
        "leases",
        json!({"metadata": meta("kube-scheduler"), "spec": {"holderIdentity": "cp-1_abc"}}),
        &["kube-scheduler", "cp-1_abc", "10m"],
    );
    let rb = json!({"metadata": meta("read"), "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [
        {"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"}, {"kind": "User", "name": "bob"},
        {"kind": "ServiceAccount", "namespace": "ci", "name": "runner"}]});
    check(
        "rbac.authorization.k8s.io",
        "rolebindings",
        rb.clone(),
        &[
            "read",
            "ClusterRole/view",
            "10m",
            "alice, bob",
            "devs",
            "ci/runner",
        ],
    );
    check(
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        rb,
        &[
            "read",
            "ClusterRole/view",
            "10m",
            "alice, bob",
            "devs",
            "ci/runner",
        ],
    );
    check(
        "policy",
        "poddisruptionbudgets",
        json!({"metadata": meta("pdb"), "spec": {"minAvailable": 2},
        "status": {"disruptionsAllowed": 1}}),
        &["pdb", "2", "N/A", "1", "10m"],
    );
    check(
        "policy",
        "poddisruptionbudgets",
        json!({"metadata": meta("pdb"), "spec": {"maxUnavailable": "25%"}}),
        &["pdb", "N/A", "25%", "0", "10m"],
    );
    let hpa = json!({"metadata": meta("web"), "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
        "minReplicas": 2, "maxReplicas": 10, "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1024Mi"}}},
            {"type": "Pods", "pods": {"target": {"averageValue": "1k"}}}]},
        "status": {"currentReplicas": 3, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45}}}]}});
    check(
        "autoscaling",
        "horizontalpodautoscalers",
        hpa,
        &[
            "web",
            "Deployment/web",
            "cpu: 45%/80%, memory: <unknown>/1Gi + 1 more...",
            "2",
            "10",
            "3",
            "10m",
        ],
    );
    let v1 = json!({"metadata": meta("old"), "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "old"},
        "maxReplicas": 4, "targetCPUUtilizationPercentage": 50}});
    check(
        "autoscaling",
        "horizontalpodautoscalers",
        v1,
        &[
            "old",
            "Deployment/old",
            "cpu: <unknown>/50%",
            "<unset>",
            "4",
            "0",
            "10m",
        ],
    );
    check(
        "scheduling.k8s.io",
        "priorityclasses",
        json!({"metadata": meta("system-node-critical"), "value": 2000001000,
        "globalDefault": false, "preemptionPolicy": "PreemptLowerPriority"}),
        &[
            "system-node-critical",
            "2000001000",
            "false",
            "10m",
            "PreemptLowerPriority",
        ],
    );
    check(
        "node.k8s.io",
        "runtimeclasses",
        json!({"metadata": meta("gvisor"), "handler": "runsc"}),
        &["gvisor", "runsc", "10m"],
    );
}

#[test]
fn storage_resources() {
    let sc = json!({"metadata": {"name": "standard", "creationTimestamp": ago(Duration::days(30)),
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "rancher.io/local-path",
        "volumeBindingMode": "WaitForFirstConsumer"});
    check(
        "storage.k8s.io",
        "storageclasses",
        sc,
        &[
            "standard (default)",
            "rancher.io/local-path",
            "Delete",
            "WaitForFirstConsumer",
            "false",
            "30d",
        ],
    );
    let driver = json!({"metadata": meta("csi.example.com"), "spec": {"attachRequired": false, "podInfoOnMount": true,
        "tokenRequests": [{"audience": "vault"}, {"audience": "api"}], "volumeLifecycleModes": ["Persistent", "Ephemeral"]}});
    check(
        "storage.k8s.io",
        "csidrivers",
        driver,
        &[
            "csi.example.com",
            "false",
            "true",
            "false",
            "vault,api",
            "false",
            "Persistent,Ephemeral",
            "10m",
        ],
    );
    check(
        "storage.k8s.io",
        "csidrivers",
        json!({"metadata": meta("d")}),
        &[
            "d", "true", "false", "false", "<unset>", "false", "<none>", "10m",
        ],
    );
    check(
        "storage.k8s.io",
        "csinodes",
        json!({"metadata": meta("node-1"), "spec": {"drivers": [{"name": "a"}]}}),
        &["node-1", "1", "10m"],
    );
    let va = json!({"metadata": meta("csi-123"), "spec": {"attacher": "csi.example.com", "nodeName": "node-1",
        "source": {"persistentVolumeName": "pv-1"}}, "status": {"attached": true}});
    check(
        "storage.k8s.io",
        "volumeattachments",
        va,
        &[
            "csi-123",
            "csi.example.com",
            "pv-1",
            "node-1",
            "true",
            "10m",
        ],
    );
}

#[test]
fn ages_handle_missing_future_and_old_timestamps() {
    let cm = |ts: Value| json!({"metadata": {"name": "c", "creationTimestamp": ts}});
    let age_of = |ts: Value| texts(&cells("", "configmaps", &cm(ts), now()))[2].clone();
    assert_eq!(age_of(Value::Null), "<unknown>");
    assert_eq!(age_of(json!(ago(Duration::seconds(-60)))), "<invalid>");
    assert_eq!(age_of(json!(ago(Duration::days(800)))), "2y70d");
    assert_eq!(age_of(json!("not a time")), "<unknown>");
}

#[test]
fn certificate_signing_requests_print_their_state() {
    let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T01:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let csr = |status: serde_json::Value| {
        serde_json::json!({"metadata": {"name": "jane", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"signerName": "kubernetes.io/kube-apiserver-client", "username": "admin", "expirationSeconds": 86400},
            "status": status})
    };
    let cells = crate::cells(
        "certificates.k8s.io",
        "certificatesigningrequests",
        &csr(serde_json::json!({})),
        now,
    );
    assert_eq!(
        cells,
        vec![
            serde_json::json!("jane"),
            serde_json::json!("60m"),
            serde_json::json!("kubernetes.io/kube-apiserver-client"),
            serde_json::json!("admin"),
            serde_json::json!("24h"),
            serde_json::json!("Pending"),
        ]
    );
    let issued = csr(
        serde_json::json!({"conditions": [{"type": "Approved", "status": "True"}], "certificate": "Y2VydA=="}),
    );
    let cells = crate::cells(
        "certificates.k8s.io",
        "certificatesigningrequests",
        &issued,
        now,
    );
    assert_eq!(cells[5], serde_json::json!("Approved,Issued"));
}
