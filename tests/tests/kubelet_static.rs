//! Static pods on the simulated runtime: manifests in `--pod-manifest-path` run on the node
//! and show in the API as mirror pods (owned by the Node, with their status); a deleted mirror
//! pod comes back while the pod keeps running; an edited manifest replaces the pod; a removed
//! one stops it and deletes its mirror; a malformed one is reported on the Node while every
//! other pod keeps running.

use std::time::Duration;

use e2e::pods::{apply, events_for, get_pod, node_ready, wait_phase};
use e2e::{wait_for, ApiServer, Backend, Daemon};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

fn manifest(image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {{tier: static}}\nspec:\n  containers:\n  - name: app\n    image: {image}\n"
    )
}

fn uid(pod: &Value) -> String {
    pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn mirror_hash(pod: &Value) -> String {
    pod["metadata"]["annotations"]["kubernetes.io/config.mirror"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The mirror pod once it exists with `phase` and (if given) not with `old_uid`.
fn wait_mirror(server: &ApiServer, phase: &str, not_uid: Option<&str>) -> Value {
    let what = match not_uid {
        Some(_) => format!("a new mirror pod web-n1 {phase}"),
        None => format!("mirror pod web-n1 {phase}"),
    };
    wait_for(&what, TIMEOUT, || {
        let out = server.kubectl_unchecked(["get", "pod", "web-n1", "-o", "json"]);
        let pod: Value = serde_json::from_slice(&out.stdout).ok()?;
        let fresh = not_uid.is_none_or(|old| uid(&pod) != old);
        (fresh && pod["status"]["phase"] == phase).then_some(pod)
    })
}

#[test]
fn static_pods_run_from_files_and_mirror_into_the_api() {
    let server = ApiServer::start(Backend::Embedded);
    let dir = server.work_dir().join("manifests");
    if let Err(err) = std::fs::create_dir_all(&dir) {
        panic!("{err}");
    }
    let write = |name: &str, text: &str| {
        if let Err(err) = std::fs::write(dir.join(name), text) {
            panic!("{err}");
        }
    };
    write("web.yaml", &manifest("busybox:1"));
    write(
        "broken.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n",
    );
    let path_flag = format!("--pod-manifest-path={}", dir.display());
    let _kubelet = Daemon::kubelet(&server, &["--hostname-override=n1", path_flag.as_str()]);
    node_ready(&server, "n1", TIMEOUT);
    // An ordinary pod on the same node, which must keep running throughout.
    apply(
        &server,
        "api.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: api, namespace: default}\nspec:\n  nodeName: n1\n  automountServiceAccountToken: false\n  containers:\n  - {name: app, image: busybox:1}\n",
    );
    let api_uid = uid(&wait_phase(&server, "api", "Running", TIMEOUT));

    // The mirror pod: the static pod's name, labels and status; owned by the Node.
    let mirror = wait_mirror(&server, "Running", None);
    let hash = mirror_hash(&mirror);
    assert_eq!(hash.len(), 32, "{mirror}");
    assert_eq!(
        mirror["metadata"]["annotations"]["kubernetes.io/config.source"],
        "file"
    );
    assert_eq!(mirror["metadata"]["labels"]["tier"], "static");
    assert_eq!(mirror["spec"]["nodeName"], "n1");
    let owner = &mirror["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Node");
    assert_eq!(owner["name"], "n1");
    assert_eq!(owner["controller"], true);
    assert_eq!(
        mirror["status"]["containerStatuses"][0]["ready"], true,
        "{mirror}"
    );

    // The malformed manifest is reported on the Node.
    let events = wait_for("the Node's FailedToCreateStaticPod event", TIMEOUT, || {
        let found = events_for(&server, "n1", "FailedToCreateStaticPod");
        (!found.is_empty()).then_some(found)
    });
    let message = events[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("broken.yaml"), "{message}");
    assert_eq!(events[0]["type"], "Warning");

    // Deleting the mirror pod does not stop the static pod: the mirror comes back.
    server.kubectl(["delete", "pod", "web-n1", "--wait=false"]);
    let again = wait_mirror(&server, "Running", Some(&uid(&mirror)));
    assert_eq!(mirror_hash(&again), hash);
    assert_eq!(
        again["status"]["containerStatuses"][0]["restartCount"], 0,
        "the static pod kept running: {again}"
    );

    // An edited manifest is another pod: the mirror is replaced.
    write("web.yaml", &manifest("busybox:2"));
    let edited = wait_for("the edited mirror pod", TIMEOUT, || {
        let out = server.kubectl_unchecked(["get", "pod", "web-n1", "-o", "json"]);
        let pod: Value = serde_json::from_slice(&out.stdout).ok()?;
        (mirror_hash(&pod) != hash
            && !mirror_hash(&pod).is_empty()
            && pod["status"]["phase"] == "Running")
            .then_some(pod)
    });
    assert_eq!(edited["spec"]["containers"][0]["image"], "busybox:2");

    // A removed manifest stops the pod and deletes its mirror.
    if let Err(err) = std::fs::remove_file(dir.join("web.yaml")) {
        panic!("{err}");
    }
    wait_for("the mirror pod deleted", TIMEOUT, || {
        let out = server.kubectl_unchecked(["get", "pod", "web-n1", "-o", "name"]);
        (!out.status.success()).then_some(())
    });

    // The API's pod ran through all of it.
    let api = get_pod(&server, "api");
    assert_eq!(uid(&api), api_uid);
    assert_eq!(api["status"]["phase"], "Running");
    assert_eq!(api["status"]["containerStatuses"][0]["restartCount"], 0);
}
