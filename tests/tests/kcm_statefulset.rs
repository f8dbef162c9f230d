//! The StatefulSet controller against the real kube-apiserver and kube-controller-manager
//! binaries, driven by kubectl: OrderedReady creation one pod at a time as pods are faked
//! ready, reverse-order scale-down (held by a finalizer to observe the order), claims from
//! volumeClaimTemplates, Parallel creation, and a rolling update from the highest ordinal that
//! respects a partition, with status revisions and ControllerRevisions.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::{make_pods_ready, wait_for, ApiServer, Backend, ControllerManager};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);
/// How long "nothing else happens" is watched for.
const SETTLE: Duration = Duration::from_millis(1500);

fn start(ns: &str) -> (ApiServer, ControllerManager) {
    let server = ApiServer::start(Backend::Embedded);
    let kcm = ControllerManager::start(&server, &["--controllers=statefulset-controller"]);
    server.kubectl(["create", "namespace", ns]);
    (server, kcm)
}

fn apply(server: &ApiServer, name: &str, manifest: &str) {
    let path = server.write_file(name, manifest);
    let path = path.display().to_string();
    server.kubectl(["apply", "-f", path.as_str()]);
}

fn stateful_set(ns: &str, replicas: u32, policy: &str, claims: bool) -> String {
    let claims = if claims {
        r#"  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: ["ReadWriteOnce"]
      resources:
        requests:
          storage: 1Gi
"#
    } else {
        ""
    };
    format!(
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
  namespace: {ns}
spec:
  replicas: {replicas}
  serviceName: nginx
  podManagementPolicy: {policy}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: main
        image: registry.k8s.io/nginx:1
{claims}"#
    )
}

/// Every pod of `ns` by name (terminating ones included).
fn pods(server: &ApiServer, ns: &str) -> BTreeMap<String, Value> {
    let list = server.get_json(Some(ns), "pods");
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            (
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p,
            )
        })
        .collect()
}

fn pod_names(server: &ApiServer, ns: &str) -> Vec<String> {
    pods(server, ns).into_keys().collect()
}

fn wait_for_pod(server: &ApiServer, ns: &str, name: &str) -> Value {
    wait_for(&format!("pod {ns}/{name}"), TIMEOUT, || {
        pods(server, ns).remove(name)
    })
}

/// Asserts the pods of `ns` stay exactly `want` for a while.
fn assert_pods_stay(server: &ApiServer, ns: &str, want: &[&str], why: &str) {
    let deadline = std::time::Instant::now() + SETTLE;
    while std::time::Instant::now() < deadline {
        assert_eq!(pod_names(server, ns), want, "{why}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn label<'v>(pod: &'v Value, key: &str) -> &'v str {
    pod["metadata"]["labels"][key].as_str().unwrap_or_default()
}

fn set_status(server: &ApiServer, ns: &str) -> Value {
    server.get_json(Some(ns), "statefulset/web")
}

fn event_messages(server: &ApiServer, ns: &str) -> Vec<String> {
    let events = server.get_json(Some(ns), "events");
    events["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["involvedObject"]["name"] == "web")
        .map(|e| {
            format!(
                "{} {}",
                e["reason"].as_str().unwrap_or(""),
                e["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn ordered_ready_creates_in_order_scales_down_in_reverse_and_makes_claims() {
    let ns = "ordered";
    let (server, _kcm) = start(ns);
    apply(
        &server,
        "web.yaml",
        &stateful_set(ns, 3, "OrderedReady", true),
    );

    // One pod at a time, each only after its predecessor is Running and Ready.
    let web0 = wait_for_pod(&server, ns, "web-0");
    assert_pods_stay(
        &server,
        ns,
        &["web-0"],
        "web-1 must wait for web-0 to be ready",
    );
    assert_eq!(make_pods_ready(&server, ns, "node-1"), 1);
    wait_for_pod(&server, ns, "web-1");
    assert_pods_stay(
        &server,
        ns,
        &["web-0", "web-1"],
        "web-2 must wait for web-1 to be ready",
    );
    assert_eq!(make_pods_ready(&server, ns, "node-1"), 1);
    wait_for_pod(&server, ns, "web-2");
    assert_eq!(make_pods_ready(&server, ns, "node-1"), 1);

    // Identity: labels, hostname, subdomain, the claim volume, the controller.
    assert_eq!(label(&web0, "statefulset.kubernetes.io/pod-name"), "web-0");
    assert_eq!(label(&web0, "apps.kubernetes.io/pod-index"), "0");
    assert_eq!(web0["spec"]["hostname"], "web-0");
    assert_eq!(web0["spec"]["subdomain"], "nginx");
    let volume = web0["spec"]["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "www").cloned())
        .unwrap_or_default();
    assert_eq!(volume["persistentVolumeClaim"]["claimName"], "www-web-0");
    assert_eq!(
        web0["metadata"]["ownerReferences"][0]["kind"],
        "StatefulSet"
    );
    assert_eq!(web0["metadata"]["ownerReferences"][0]["controller"], true);

    // Claims, one per pod, labelled with the selector.
    let pvcs = server.get_json(Some(ns), "pvc");
    let mut claim_names: Vec<String> = pvcs["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            assert_eq!(c["metadata"]["labels"]["app"], "web");
            c["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    claim_names.sort();
    assert_eq!(claim_names, ["www-web-0", "www-web-1", "www-web-2"]);

    // Status and the first revision.
    let set = wait_for("3 ready replicas", TIMEOUT, || {
        let set = set_status(&server, ns);
        let s = &set["status"];
        (s["readyReplicas"] == 3 && s["availableReplicas"] == 3 && s["currentReplicas"] == 3)
            .then_some(set)
    });
    let status = &set["status"];
    assert_eq!(status["replicas"], 3);
    assert_eq!(status["observedGeneration"], set["metadata"]["generation"]);
    let revision = status["currentRevision"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(revision.starts_with("web-"), "{status}");
    assert_eq!(status["updateRevision"], revision.as_str());
    assert_eq!(label(&web0, "controller-revision-hash"), revision);
    let cr = server.get_json(Some(ns), &format!("controllerrevision/{revision}"));
    assert_eq!(cr["revision"], 1);
    assert_eq!(cr["data"]["spec"]["template"]["$patch"], "replace");
    assert_eq!(cr["metadata"]["ownerReferences"][0]["name"], "web");

    let messages = event_messages(&server, ns);
    for want in [
        "SuccessfulCreate create Pod web-0 in StatefulSet web successful",
        "SuccessfulCreate create Claim www-web-0 Pod web-0 in StatefulSet web success",
        "SuccessfulCreate create Pod web-2 in StatefulSet web successful",
    ] {
        assert!(messages.iter().any(|m| m == want), "{want}: {messages:?}");
    }

    // Scale down in reverse order: a finalizer holds web-2 in Terminating, and web-1 must
    // not go until web-2 is gone.
    server.kubectl([
        "patch",
        "pod",
        "web-2",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    server.kubectl(["scale", "statefulset/web", "-n", ns, "--replicas=1"]);
    wait_for("web-2 terminating", TIMEOUT, || {
        pods(&server, ns)
            .get("web-2")
            .is_some_and(|p| p["metadata"]["deletionTimestamp"].is_string())
            .then_some(())
    });
    assert_pods_stay(
        &server,
        ns,
        &["web-0", "web-1", "web-2"],
        "web-1 waits while web-2 terminates",
    );
    server.kubectl([
        "patch",
        "pod",
        "web-2",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_for("only web-0 left", TIMEOUT, || {
        (pod_names(&server, ns) == ["web-0"]).then_some(())
    });
    let messages = event_messages(&server, ns);
    assert!(
        messages
            .iter()
            .any(|m| m == "SuccessfulDelete delete Pod web-1 in StatefulSet web successful"),
        "{messages:?}"
    );
    wait_for("status of 1 replica", TIMEOUT, || {
        let s = set_status(&server, ns)["status"].clone();
        (s["replicas"] == 1 && s["readyReplicas"] == 1).then_some(())
    });
    // Claims are retained by default.
    let pvcs = server.get_json(Some(ns), "pvc");
    assert_eq!(pvcs["items"].as_array().map(Vec::len), Some(3));
}

#[test]
fn parallel_creates_every_pod_at_once() {
    let ns = "parallel";
    let (server, _kcm) = start(ns);
    apply(&server, "web.yaml", &stateful_set(ns, 3, "Parallel", false));
    wait_for("web-0..2 without readiness", TIMEOUT, || {
        (pod_names(&server, ns) == ["web-0", "web-1", "web-2"]).then_some(())
    });
    server.kubectl(["scale", "statefulset/web", "-n", ns, "--replicas=0"]);
    wait_for("every pod deleted", TIMEOUT, || {
        pod_names(&server, ns).is_empty().then_some(())
    });
}

/// Makes pods ready until the set reports `n` ready replicas.
fn ready_all(server: &ApiServer, ns: &str, n: u32) {
    wait_for(&format!("{n} ready replicas"), TIMEOUT, || {
        make_pods_ready(server, ns, "node-1");
        (set_status(server, ns)["status"]["readyReplicas"] == n).then_some(())
    });
}

#[test]
fn rolling_update_replaces_from_the_highest_ordinal_and_respects_the_partition() {
    let ns = "rolling";
    let (server, _kcm) = start(ns);
    apply(
        &server,
        "web.yaml",
        &stateful_set(ns, 3, "OrderedReady", false),
    );
    ready_all(&server, ns, 3);
    let rev1 = set_status(&server, ns)["status"]["currentRevision"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!rev1.is_empty());
    let web0_uid = pods(&server, ns)["web-0"]["metadata"]["uid"].clone();

    server.kubectl([
        "patch",
        "statefulset",
        "web",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":1}}}}"#,
    ]);
    server.kubectl([
        "set",
        "image",
        "statefulset/web",
        "-n",
        ns,
        "main=registry.k8s.io/nginx:2",
    ]);
    let rev2 = wait_for("a new update revision", TIMEOUT, || {
        let s = set_status(&server, ns)["status"].clone();
        let update = s["updateRevision"].as_str().unwrap_or_default().to_string();
        (!update.is_empty() && update != rev1).then_some(update)
    });

    // web-2 goes first; web-1 and web-0 keep the old revision meanwhile.
    let web2 = wait_for("web-2 at the new revision", TIMEOUT, || {
        pods(&server, ns)
            .remove("web-2")
            .filter(|p| label(p, "controller-revision-hash") == rev2)
    });
    assert_eq!(
        web2["spec"]["containers"][0]["image"],
        "registry.k8s.io/nginx:2"
    );
    let now = pods(&server, ns);
    assert_eq!(label(&now["web-1"], "controller-revision-hash"), rev1);
    assert_eq!(label(&now["web-0"], "controller-revision-hash"), rev1);

    // Then web-1, once web-2 is ready.
    make_pods_ready(&server, ns, "node-1");
    wait_for("web-1 at the new revision", TIMEOUT, || {
        pods(&server, ns)
            .remove("web-1")
            .filter(|p| label(p, "controller-revision-hash") == rev2)
    });
    ready_all(&server, ns, 3);

    // The partition keeps web-0 on the old revision.
    std::thread::sleep(SETTLE);
    let now = pods(&server, ns);
    assert_eq!(label(&now["web-0"], "controller-revision-hash"), rev1);
    assert_eq!(
        now["web-0"]["metadata"]["uid"], web0_uid,
        "web-0 was not replaced"
    );
    let status = wait_for("partitioned status", TIMEOUT, || {
        let s = set_status(&server, ns)["status"].clone();
        (s["updatedReplicas"] == 2 && s["currentReplicas"] == 1).then_some(s)
    });
    assert_eq!(status["currentRevision"], rev1.as_str());
    assert_eq!(status["updateRevision"], rev2.as_str());

    // Lifting the partition finishes the update; the update revision becomes current.
    server.kubectl([
        "patch",
        "statefulset",
        "web",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
    ]);
    wait_for("web-0 at the new revision", TIMEOUT, || {
        pods(&server, ns)
            .remove("web-0")
            .filter(|p| label(p, "controller-revision-hash") == rev2)
    });
    ready_all(&server, ns, 3);
    wait_for("rolling update complete", TIMEOUT, || {
        let s = set_status(&server, ns)["status"].clone();
        (s["currentRevision"] == rev2.as_str()
            && s["currentReplicas"] == 3
            && s["updatedReplicas"] == 3)
            .then_some(())
    });

    // Both revisions are kept, numbered 1 and 2.
    let revisions = server.get_json(Some(ns), "controllerrevisions");
    let mut numbered: Vec<(i64, String)> = revisions["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["revision"].as_i64().unwrap_or_default(),
                r["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    numbered.sort();
    assert_eq!(numbered, [(1, rev1), (2, rev2)]);
}

/// Labels `ns` so that PodSecurity "restricted" refuses the plain pods these tests make (the
/// StatefulSet or DaemonSet itself is accepted: its template is only warned about).
fn lock(server: &ApiServer, ns: &str) {
    server.kubectl([
        "label",
        "namespace",
        ns,
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
}

#[test]
fn a_template_the_api_refuses_is_reported_while_other_sets_keep_working() {
    let (server, _kcm) = start("open");
    server.kubectl(["create", "namespace", "locked"]);
    lock(&server, "locked");
    let path = server.write_file(
        "locked.yaml",
        &stateful_set("locked", 2, "OrderedReady", false),
    );
    let path = path.display().to_string();
    // kubectl prints the PodSecurity warning on stderr; the StatefulSet is created.
    let out = server.kubectl_unchecked(["apply", "-f", path.as_str()]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    apply(
        &server,
        "open.yaml",
        &stateful_set("open", 2, "OrderedReady", false),
    );

    let warning = wait_for("a FailedCreate warning", TIMEOUT, || {
        event_messages(&server, "locked")
            .into_iter()
            .find(|m| m.starts_with("FailedCreate "))
    });
    assert!(
        warning.starts_with("FailedCreate create Pod web-0 in StatefulSet web failed error: "),
        "{warning}"
    );
    assert!(warning.contains("forbidden"), "{warning}");
    let events = server.get_json(Some("locked"), "events");
    let event = events["items"]
        .as_array()
        .and_then(|items| items.iter().find(|e| e["reason"] == "FailedCreate"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(event["type"], "Warning", "{event}");
    assert_eq!(event["involvedObject"]["kind"], "StatefulSet", "{event}");
    assert_eq!(
        event["source"]["component"], "statefulset-controller",
        "{event}"
    );
    assert!(pod_names(&server, "locked").is_empty());

    // The other set is served all along: ordered creation goes on as pods get ready.
    wait_for_pod(&server, "open", "web-0");
    ready_all(&server, "open", 1);
    wait_for_pod(&server, "open", "web-1");

    // Lifting the restriction lets the refused set recover through its back-off.
    server.kubectl([
        "label",
        "namespace",
        "locked",
        "pod-security.kubernetes.io/enforce-",
    ]);
    wait_for(
        "web-0 in the unlocked namespace",
        Duration::from_secs(90),
        || pods(&server, "locked").remove("web-0"),
    );
}
