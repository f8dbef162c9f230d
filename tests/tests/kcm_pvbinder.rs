//! The PersistentVolume binder against the real kube-apiserver and kube-controller-manager
//! binaries: claims bind to the smallest fitting volume, to the volume they name, and to the
//! volume pre-bound to them; volumes of deleted claims are Released and kept (Retain) or deleted
//! (Delete); a claim with nothing to bind to gets the FailedBinding event.

use std::time::Duration;

use e2e::{wait_for, ApiServer, Backend, ControllerManager};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);

fn start() -> (ApiServer, ControllerManager) {
    let server = ApiServer::start(Backend::Embedded);
    let kcm = ControllerManager::start(
        &server,
        &["--controllers=persistentvolume-binder-controller"],
    );
    (server, kcm)
}

fn apply(server: &ApiServer, name: &str, manifest: &str) {
    let path = server.write_file(name, manifest);
    let path = path.display().to_string();
    server.kubectl(["apply", "-f", path.as_str()]);
}

/// A hostPath volume of class "" (`claim_ref`: optional `name` to pre-bind to in `ns`).
fn volume(name: &str, size: &str, policy: &str, claim_ref: Option<(&str, &str)>) -> String {
    let claim_ref = claim_ref
        .map(|(ns, claim)| format!("  claimRef:\n    namespace: {ns}\n    name: {claim}\n"))
        .unwrap_or_default();
    format!(
        r#"apiVersion: v1
kind: PersistentVolume
metadata:
  name: {name}
spec:
  capacity:
    storage: {size}
  accessModes: ["ReadWriteOnce"]
  persistentVolumeReclaimPolicy: {policy}
  storageClassName: ""
  hostPath:
    path: /tmp/{name}
{claim_ref}"#
    )
}

fn claim(ns: &str, name: &str, size: &str, volume_name: Option<&str>) -> String {
    let volume_name = volume_name
        .map(|v| format!("  volumeName: {v}\n"))
        .unwrap_or_default();
    format!(
        r#"apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {name}
  namespace: {ns}
spec:
  accessModes: ["ReadWriteOnce"]
  storageClassName: ""
  resources:
    requests:
      storage: {size}
{volume_name}"#
    )
}

fn get(server: &ApiServer, args: &[&str]) -> Option<Value> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend(["-o", "json", "--ignore-not-found"]);
    let out = server.kubectl_stdout(all);
    if out.trim().is_empty() {
        return None;
    }
    match serde_json::from_str(&out) {
        Ok(v) => Some(v),
        Err(err) => panic!("invalid JSON ({err}): {out}"),
    }
}

fn pv(server: &ApiServer, name: &str) -> Option<Value> {
    get(server, &["pv", name])
}

fn pvc(server: &ApiServer, ns: &str, name: &str) -> Option<Value> {
    get(server, &["pvc", name, "-n", ns])
}

/// Deletes a claim the way it goes when no pod uses it: the apiserver adds the
/// `kubernetes.io/pvc-protection` finalizer, which the pvc-protection controller (not running
/// here) removes; the test removes it in its place.
fn delete_claim(server: &ApiServer, ns: &str, name: &str) {
    server.kubectl(["delete", "pvc", name, "-n", ns, "--wait=false"]);
    let _ = server.kubectl_unchecked([
        "patch",
        "pvc",
        name,
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
}

fn wait_phase(
    server: &ApiServer,
    what: &str,
    fetch: impl Fn(&ApiServer) -> Option<Value>,
    phase: &str,
) -> Value {
    wait_for(&format!("{what} to be {phase}"), TIMEOUT, || {
        let obj = fetch(server)?;
        (obj["status"]["phase"] == phase).then_some(obj)
    })
}

#[test]
fn claims_bind_both_ways_and_volumes_are_reclaimed() {
    let (server, _kcm) = start();
    let ns = "storage";
    server.kubectl(["create", "namespace", ns]);
    apply(
        &server,
        "small.yaml",
        &volume("pv-small", "1Gi", "Retain", None),
    );
    apply(
        &server,
        "big.yaml",
        &volume("pv-big", "5Gi", "Retain", None),
    );
    apply(
        &server,
        "pre.yaml",
        &volume("pv-pre", "2Gi", "Retain", Some((ns, "pre-bound"))),
    );
    apply(
        &server,
        "del.yaml",
        &volume("pv-del", "3Gi", "Delete", None),
    );
    wait_phase(&server, "pv-small", |s| pv(s, "pv-small"), "Available");

    // The smallest volume that fits.
    apply(&server, "c1.yaml", &claim(ns, "data", "1Gi", None));
    let bound = wait_phase(&server, "claim data", |s| pvc(s, ns, "data"), "Bound");
    assert_eq!(bound["spec"]["volumeName"], "pv-small");
    assert_eq!(bound["status"]["capacity"]["storage"], "1Gi");
    assert_eq!(bound["status"]["accessModes"][0], "ReadWriteOnce");
    let annotations = &bound["metadata"]["annotations"];
    assert_eq!(annotations["pv.kubernetes.io/bind-completed"], "yes");
    assert_eq!(annotations["pv.kubernetes.io/bound-by-controller"], "yes");
    let volume = wait_phase(&server, "pv-small", |s| pv(s, "pv-small"), "Bound");
    assert_eq!(volume["spec"]["claimRef"]["name"], "data");
    assert_eq!(volume["spec"]["claimRef"]["uid"], bound["metadata"]["uid"]);
    assert_eq!(
        volume["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"],
        "yes"
    );

    // The volume pre-bound to a claim wins over a smaller free one...
    apply(
        &server,
        "pre-claim.yaml",
        &claim(ns, "pre-bound", "1Gi", None),
    );
    let pre = wait_phase(
        &server,
        "claim pre-bound",
        |s| pvc(s, ns, "pre-bound"),
        "Bound",
    );
    assert_eq!(pre["spec"]["volumeName"], "pv-pre");
    let pre_volume = wait_phase(&server, "pv-pre", |s| pv(s, "pv-pre"), "Bound");
    assert!(
        pre_volume["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"].is_null(),
        "the user chose this binding: {pre_volume}"
    );
    // ...and a claim naming a volume gets that one.
    apply(
        &server,
        "named.yaml",
        &claim(ns, "named", "1Gi", Some("pv-big")),
    );
    let named = wait_phase(&server, "claim named", |s| pvc(s, ns, "named"), "Bound");
    assert_eq!(named["spec"]["volumeName"], "pv-big");
    assert!(named["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"].is_null());
    assert_eq!(named["status"]["capacity"]["storage"], "5Gi");

    // Retain: the volume outlives its claim, Released.
    delete_claim(&server, ns, "data");
    let released = wait_phase(&server, "pv-small", |s| pv(s, "pv-small"), "Released");
    assert_eq!(released["spec"]["claimRef"]["name"], "data");
    std::thread::sleep(Duration::from_millis(500));
    assert!(pv(&server, "pv-small").is_some(), "Retain keeps the volume");

    // Delete: the volume goes with its claim.
    apply(&server, "temp.yaml", &claim(ns, "temp", "3Gi", None));
    let temp = wait_phase(&server, "claim temp", |s| pvc(s, ns, "temp"), "Bound");
    assert_eq!(temp["spec"]["volumeName"], "pv-del");
    delete_claim(&server, ns, "temp");
    // Deleted (the pv-protection finalizer, whose controller is not running, may hold it).
    wait_for("pv-del to be deleted", TIMEOUT, || {
        match pv(&server, "pv-del") {
            None => Some(()),
            Some(v) => v["metadata"]["deletionTimestamp"].is_string().then_some(()),
        }
    });
}

#[test]
fn a_claim_binds_when_a_volume_appears_and_reports_when_none_fits() {
    let (server, _kcm) = start();
    let ns = "waiting";
    server.kubectl(["create", "namespace", ns]);
    apply(&server, "c.yaml", &claim(ns, "big", "10Gi", None));
    wait_for("the FailedBinding event", TIMEOUT, || {
        let events = get(&server, &["events", "-n", ns])?;
        events["items"]
            .as_array()?
            .iter()
            .find(|e| {
                e["reason"] == "FailedBinding"
                    && e["message"]
                        == "no persistent volumes available for this claim and no storage class is set"
                    && e["involvedObject"]["name"] == "big"
            })
            .cloned()
    });
    assert_eq!(
        pvc(&server, ns, "big").map(|c| c["status"]["phase"].clone()),
        Some(Value::from("Pending"))
    );
    // Too small: still Pending; big enough: bound.
    apply(
        &server,
        "small.yaml",
        &volume("pv-small", "1Gi", "Retain", None),
    );
    apply(
        &server,
        "huge.yaml",
        &volume("pv-huge", "20Gi", "Retain", None),
    );
    let bound = wait_phase(&server, "claim big", |s| pvc(s, ns, "big"), "Bound");
    assert_eq!(bound["spec"]["volumeName"], "pv-huge");
    assert_eq!(
        pv(&server, "pv-small").map(|v| v["status"]["phase"].clone()),
        Some(Value::from("Available"))
    );
}
