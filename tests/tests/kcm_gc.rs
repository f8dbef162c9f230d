//! The garbage collector and the namespace controller, as processes: the real apiserver and
//! kube-controller-manager (`--controllers=garbage-collector-controller,namespace-controller`),
//! driven with kubectl. ConfigMaps owned by ConfigMaps stand in for workloads, so no other
//! controller is needed.

use std::time::Duration;

use e2e::{wait_for, ApiServer, Backend, ControllerManager};

const TIMEOUT: Duration = Duration::from_secs(30);
const CONTROLLERS: &str = "--controllers=garbage-collector-controller,namespace-controller";

fn start() -> (ApiServer, ControllerManager) {
    let server = ApiServer::start(Backend::Embedded);
    let kcm = ControllerManager::start(&server, &[CONTROLLERS]);
    (server, kcm)
}

fn configmap(server: &ApiServer, ns: &str, name: &str) -> String {
    server.kubectl(["create", "configmap", name, "-n", ns]);
    uid(server, ns, name)
}

fn uid(server: &ApiServer, ns: &str, name: &str) -> String {
    let out = server.kubectl_stdout([
        "get",
        "configmap",
        name,
        "-n",
        ns,
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    assert!(!out.trim().is_empty(), "no uid for {ns}/{name}");
    out.trim().to_string()
}

/// `(owner name, owner uid, blockOwnerDeletion)`.
fn dependent(
    server: &ApiServer,
    ns: &str,
    name: &str,
    owners: &[(&str, &str, bool)],
    finalizers: &[&str],
) {
    let refs: Vec<serde_json::Value> = owners
        .iter()
        .map(|(owner, uid, block)| {
            serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid,
                "blockOwnerDeletion": block,
            })
        })
        .collect();
    let obj = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "ownerReferences": refs, "finalizers": finalizers},
    });
    let file = server.write_file(&format!("{ns}-{name}.json"), &obj.to_string());
    let path = file.to_string_lossy().to_string();
    server.kubectl(["create", "-f", path.as_str()]);
}

fn get(server: &ApiServer, ns: &str, name: &str) -> Option<serde_json::Value> {
    let out = server.kubectl_unchecked(["get", "configmap", name, "-n", ns, "-o", "json"]);
    if !out.status.success() {
        let err = e2e::stderr(&out);
        assert!(err.contains("NotFound"), "kubectl get failed: {err}");
        return None;
    }
    match serde_json::from_str(&e2e::stdout(&out)) {
        Ok(v) => Some(v),
        Err(err) => panic!("kubectl printed invalid JSON: {err}"),
    }
}

fn wait_gone(server: &ApiServer, ns: &str, name: &str) {
    wait_for(&format!("{ns}/{name} to be deleted"), TIMEOUT, || {
        get(server, ns, name).is_none().then_some(())
    });
}

#[test]
fn background_orphan_and_dangling_references() {
    let (server, _kcm) = start();
    server.kubectl(["create", "namespace", "gc"]);

    // Background (kubectl's default): the owner goes at once, its dependents after it.
    let owner = configmap(&server, "gc", "owner");
    dependent(&server, "gc", "child-a", &[("owner", &owner, true)], &[]);
    dependent(&server, "gc", "child-b", &[("owner", &owner, false)], &[]);
    // A dependent with another, live owner keeps living and loses the dead reference.
    let other = configmap(&server, "gc", "other");
    dependent(
        &server,
        "gc",
        "shared",
        &[("owner", &owner, false), ("other", &other, false)],
        &[],
    );
    server.kubectl(["delete", "configmap", "owner", "-n", "gc"]);
    wait_gone(&server, "gc", "child-a");
    wait_gone(&server, "gc", "child-b");
    wait_for("shared to drop the dead reference", TIMEOUT, || {
        let shared = get(&server, "gc", "shared")?;
        let refs = shared["metadata"]["ownerReferences"].as_array().cloned();
        (refs.as_ref().map(Vec::len) == Some(1)).then_some(refs)
    });
    let shared = get(&server, "gc", "shared");
    assert_eq!(
        shared
            .as_ref()
            .map(|s| s["metadata"]["ownerReferences"][0]["uid"].clone()),
        Some(serde_json::json!(other))
    );

    // Orphan: the owner goes, the dependent stays without the reference.
    let parent = configmap(&server, "gc", "parent");
    dependent(&server, "gc", "kept", &[("parent", &parent, true)], &[]);
    server.kubectl([
        "delete",
        "configmap",
        "parent",
        "-n",
        "gc",
        "--cascade=orphan",
    ]);
    wait_gone(&server, "gc", "parent");
    let kept = match get(&server, "gc", "kept") {
        Some(kept) => kept,
        None => panic!("the orphaned dependent was deleted"),
    };
    assert!(
        kept["metadata"]["ownerReferences"].is_null(),
        "orphaned dependent still has references: {kept}"
    );

    // A dangling reference from the start: the owner never existed.
    dependent(
        &server,
        "gc",
        "dangling",
        &[("ghost", "00000000-0000-0000-0000-000000000000", false)],
        &[],
    );
    wait_gone(&server, "gc", "dangling");

    // A namespaced owner in another namespace is no owner: the dependent goes, with a Warning.
    server.kubectl(["create", "namespace", "gc-other"]);
    let foreign = configmap(&server, "gc-other", "foreign");
    dependent(
        &server,
        "gc",
        "misplaced",
        &[("foreign", &foreign, false)],
        &[],
    );
    wait_gone(&server, "gc", "misplaced");
    assert!(get(&server, "gc-other", "foreign").is_some());
    let message = wait_for("the OwnerRefInvalidNamespace event", TIMEOUT, || {
        let events = server.get_json(Some("gc"), "events");
        events["items"]
            .as_array()?
            .iter()
            .find(|e| {
                e["reason"] == "OwnerRefInvalidNamespace"
                    && e["involvedObject"]["name"] == "misplaced"
            })
            .and_then(|e| e["message"].as_str().map(str::to_string))
    });
    assert_eq!(
        message,
        format!("ownerRef [v1/ConfigMap, namespace: gc, name: foreign, uid: {foreign}] does not exist in namespace \"gc\"")
    );

    // Nothing with a live owner was touched.
    assert!(get(&server, "gc", "other").is_some());
    assert!(get(&server, "gc", "kept").is_some());
}

#[test]
fn foreground_deletion_waits_for_blocking_dependents() {
    let (server, _kcm) = start();
    server.kubectl(["create", "namespace", "fg"]);
    let owner = configmap(&server, "fg", "owner");
    // A finalizer of the test's holds the blocking dependent, so the wait is observable.
    dependent(
        &server,
        "fg",
        "held",
        &[("owner", &owner, true)],
        &["example.com/hold"],
    );
    dependent(&server, "fg", "free", &[("owner", &owner, true)], &[]);
    server.kubectl([
        "delete",
        "configmap",
        "owner",
        "-n",
        "fg",
        "--cascade=foreground",
        "--wait=false",
    ]);
    wait_gone(&server, "fg", "free");
    wait_for("the held dependent to be deleting", TIMEOUT, || {
        get(&server, "fg", "held")?["metadata"]["deletionTimestamp"]
            .as_str()
            .map(str::to_string)
    });
    // The owner stays, with its finalizer, while a blocking dependent remains.
    std::thread::sleep(Duration::from_secs(2));
    let owner_now = match get(&server, "fg", "owner") {
        Some(o) => o,
        None => panic!("the owner went before its blocking dependent"),
    };
    assert!(owner_now["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(
        owner_now["metadata"]["finalizers"],
        serde_json::json!(["foregroundDeletion"])
    );
    server.kubectl([
        "patch",
        "configmap",
        "held",
        "-n",
        "fg",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_gone(&server, "fg", "held");
    wait_gone(&server, "fg", "owner");
}

#[test]
fn deleting_a_namespace_removes_its_content_then_the_namespace() {
    let (server, _kcm) = start();
    server.kubectl(["create", "namespace", "doomed"]);
    configmap(&server, "doomed", "a");
    configmap(&server, "doomed", "b");
    server.kubectl([
        "create",
        "secret",
        "generic",
        "s",
        "-n",
        "doomed",
        "--from-literal=k=v",
    ]);
    dependent(&server, "doomed", "held", &[], &["example.com/hold"]);
    server.kubectl(["delete", "namespace", "doomed", "--wait=false"]);

    // Content without finalizers goes; the held object keeps the namespace Terminating with
    // upstream's conditions.
    wait_gone(&server, "doomed", "a");
    wait_gone(&server, "doomed", "b");
    let conditions = wait_for("the finalizers-remaining condition", TIMEOUT, || {
        let ns = server.get_json(None, "namespace/doomed");
        let conditions = ns["status"]["conditions"].as_array().cloned()?;
        conditions
            .iter()
            .any(|c| c["type"] == "NamespaceFinalizersRemaining" && c["status"] == "True")
            .then_some(conditions)
    });
    let find = |kind: &str| match conditions.iter().find(|c| c["type"] == kind) {
        Some(c) => c.clone(),
        None => panic!("no {kind} condition in {conditions:?}"),
    };
    assert_eq!(
        find("NamespaceFinalizersRemaining")["message"],
        "Some finalizers are remaining: example.com/hold in 1 resource instances"
    );
    assert_eq!(
        find("NamespaceContentRemaining")["reason"],
        "SomeResourcesRemain"
    );
    assert_eq!(find("NamespaceDeletionDiscoveryFailure")["status"], "False");
    let ns = server.get_json(None, "namespace/doomed");
    assert_eq!(ns["status"]["phase"], "Terminating");
    let secrets = server.kubectl_stdout(["get", "secrets", "-n", "doomed", "-o", "name"]);
    assert!(secrets.trim().is_empty(), "secrets remain: {secrets}");

    server.kubectl([
        "patch",
        "configmap",
        "held",
        "-n",
        "doomed",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_for("the namespace to be gone", TIMEOUT, || {
        let out = server.kubectl_unchecked(["get", "namespace", "doomed"]);
        (!out.status.success() && e2e::stderr(&out).contains("NotFound")).then_some(())
    });
}

#[test]
fn cyclic_owner_references_do_not_block_foreground_deletion() {
    let (server, _kcm) = start();
    server.kubectl(["create", "namespace", "cycle"]);
    let a = configmap(&server, "cycle", "a");
    let b = configmap(&server, "cycle", "b");
    let c = configmap(&server, "cycle", "c");
    // a -> b -> c -> a, every reference blocking.
    for (name, owner, owner_uid) in [("a", "c", &c), ("b", "a", &a), ("c", "b", &b)] {
        let patch = serde_json::json!({"metadata": {"ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": owner_uid,
            "blockOwnerDeletion": true,
        }]}});
        server.kubectl([
            "patch",
            "configmap",
            name,
            "-n",
            "cycle",
            "--type=merge",
            "-p",
            &patch.to_string(),
        ]);
    }
    server.kubectl([
        "delete",
        "configmap",
        "a",
        "-n",
        "cycle",
        "--cascade=foreground",
        "--wait=false",
    ]);
    for name in ["a", "b", "c"] {
        wait_gone(&server, "cycle", name);
    }
}
