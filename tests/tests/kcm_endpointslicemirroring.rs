//! The EndpointSlice mirroring controller against the real apiserver: hand-written Endpoints of a
//! selector-less Service become EndpointSlices (read back with real kubectl and with the Python
//! client), follow updates, and go when the Endpoints are labelled skip-mirror or the Service
//! gains a selector.

use std::time::Duration;

use e2e::{wait_for, ApiServer, Backend, ControllerManager};
use serde_json::{json, Value};

const MANAGED_BY: &str =
    "endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io";
const WAIT: Duration = Duration::from_secs(20);

/// The mirrored slices of `service` in `default`, sorted by address type, as kubectl prints them.
fn mirrored(server: &ApiServer, service: &str) -> Vec<Value> {
    let selector = format!("{MANAGED_BY},kubernetes.io/service-name={service}");
    let out = server.kubectl(["get", "endpointslices", "-l", &selector, "-o", "json"]);
    let list: Value = match serde_json::from_slice(&out.stdout) {
        Ok(list) => list,
        Err(err) => panic!(
            "kubectl printed invalid JSON ({err}): {}",
            e2e::stdout(&out)
        ),
    };
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|s| s["addressType"].as_str().unwrap_or_default().to_string());
    items
}

/// A slice's endpoints as (address, ready), sorted.
fn endpoints_of(slice: &Value) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["addresses"][0].as_str().unwrap_or_default().to_string(),
                e["conditions"]["ready"] == true,
            )
        })
        .collect();
    out.sort();
    out
}

fn apply(server: &ApiServer, name: &str, manifest: &str) {
    let path = server.write_file(name, manifest);
    server.kubectl(["apply", "-f", path.to_str().unwrap_or_default()]);
}

const SERVICE_AND_ENDPOINTS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Endpoints
metadata:
  name: ext
  labels: {team: a}
  annotations: {note: x}
subsets:
- addresses: [{ip: 10.1.0.1, hostname: db-0, nodeName: node-1}]
  notReadyAddresses: [{ip: 10.1.0.2}]
  ports: [{name: http, port: 8080, protocol: TCP}]
"#;

const ENDPOINTS_UPDATED: &str = r#"
apiVersion: v1
kind: Endpoints
metadata:
  name: ext
  labels: {team: a}
  annotations: {note: x}
subsets:
- addresses: [{ip: 10.1.0.1}, {ip: 10.1.0.3}, {ip: "fd00::5"}]
  ports: [{name: http, port: 9090, protocol: TCP}]
"#;

#[test]
fn selectorless_endpoints_are_mirrored_into_slices() {
    let server = ApiServer::start(Backend::Embedded);
    let _kcm = ControllerManager::start(
        &server,
        &["--controllers=endpointslice-mirroring-controller"],
    );
    apply(&server, "ext.yaml", SERVICE_AND_ENDPOINTS);

    let slices = wait_for("a mirrored slice", WAIT, || {
        let slices = mirrored(&server, "ext");
        (slices.len() == 1 && endpoints_of(&slices[0]).len() == 2).then_some(slices)
    });
    let slice = &slices[0];
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        endpoints_of(slice),
        [
            ("10.1.0.1".to_string(), true),
            ("10.1.0.2".to_string(), false)
        ]
    );
    assert_eq!(
        slice["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    let ready = slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["addresses"][0] == "10.1.0.1")
        .cloned()
        .unwrap_or_default();
    assert_eq!(ready["hostname"], "db-0");
    assert_eq!(ready["nodeName"], "node-1");
    assert_eq!(
        slice["metadata"]["labels"],
        json!({
            "team": "a",
            "kubernetes.io/service-name": "ext",
            "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io",
        })
    );
    assert_eq!(
        slice["metadata"]["annotations"],
        json!({"note": "x"}),
        "kubectl's last-applied-configuration is not mirrored"
    );
    assert_eq!(slice["metadata"]["generateName"], "ext-");
    let uid = server.kubectl_stdout(["get", "endpoints", "ext", "-o", "jsonpath={.metadata.uid}"]);
    assert_eq!(
        slice["metadata"]["ownerReferences"],
        json!([{
            "apiVersion": "v1",
            "kind": "Endpoints",
            "name": "ext",
            "uid": uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }])
    );
    // Settled: the controller does not keep rewriting what is already right.
    let version = slice["metadata"]["resourceVersion"].clone();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        mirrored(&server, "ext")[0]["metadata"]["resourceVersion"],
        version
    );
    // The apiserver's own `kubernetes` Endpoints are labelled skip-mirror.
    assert!(mirrored(&server, "kubernetes").is_empty());

    // An update: new addresses, a new port and an IPv6 address (a slice of its own).
    let name = slice["metadata"]["name"].clone();
    apply(&server, "ext-2.yaml", ENDPOINTS_UPDATED);
    let slices = wait_for("the slices to follow the Endpoints", WAIT, || {
        let slices = mirrored(&server, "ext");
        (slices.len() == 2 && slices[0]["ports"][0]["port"] == 9090).then_some(slices)
    });
    assert_eq!(slices[0]["addressType"], "IPv4");
    assert_eq!(
        endpoints_of(&slices[0]),
        [
            ("10.1.0.1".to_string(), true),
            ("10.1.0.3".to_string(), true)
        ]
    );
    assert_eq!(
        slices[0]["metadata"]["name"], name,
        "the slice of the old ports is reused"
    );
    assert_eq!(slices[1]["addressType"], "IPv6");
    assert_eq!(endpoints_of(&slices[1]), [("fd00::5".to_string(), true)]);

    // skip-mirror: the mirrored slices go; without it they come back.
    server.kubectl([
        "label",
        "endpoints",
        "ext",
        "endpointslice.kubernetes.io/skip-mirror=true",
    ]);
    wait_for("skip-mirror to delete the slices", WAIT, || {
        mirrored(&server, "ext").is_empty().then_some(())
    });
    server.kubectl([
        "label",
        "endpoints",
        "ext",
        "endpointslice.kubernetes.io/skip-mirror-",
    ]);
    wait_for("the slices to come back", WAIT, || {
        (mirrored(&server, "ext").len() == 2).then_some(())
    });

    // A Service that gains a selector is the endpoint controllers' business: mirrors go.
    server.kubectl([
        "patch",
        "service",
        "ext",
        "-p",
        r#"{"spec":{"selector":{"app":"ext"}}}"#,
    ]);
    wait_for("a selector to delete the slices", WAIT, || {
        mirrored(&server, "ext").is_empty().then_some(())
    });
    server.kubectl([
        "patch",
        "service",
        "ext",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/selector"}]"#,
    ]);
    wait_for("the slices to come back again", WAIT, || {
        (mirrored(&server, "ext").len() == 2).then_some(())
    });

    // The Endpoints deleted: so are the slices.
    server.kubectl(["delete", "endpoints", "ext"]);
    wait_for("deleting the Endpoints to delete the slices", WAIT, || {
        mirrored(&server, "ext").is_empty().then_some(())
    });
}

#[test]
fn python_client_reads_mirrored_slices_and_the_truncation_warning() {
    let server = ApiServer::start(Backend::Embedded);
    let _kcm = ControllerManager::start(
        &server,
        &[
            "--controllers=endpointslicemirroring",
            "--mirroring-max-endpoints-per-subset=2",
        ],
    );
    let got = server.python("endpointslice_mirroring.py", &[]);
    let slices = got["slices"].as_array().cloned().unwrap_or_default();
    assert_eq!(slices.len(), 1, "{got}");
    let slice = &slices[0];
    assert_eq!(slice["address_type"], "IPv4", "{got}");
    assert_eq!(
        slice["addresses"],
        json!(["10.2.0.1", "10.2.0.2"]),
        "two of three ready addresses: {got}"
    );
    assert_eq!(slice["ready"], json!([true, true]), "{got}");
    assert_eq!(slice["ports"], json!([["dns", 53, "UDP"]]), "{got}");
    assert_eq!(slice["service_name"], "py-ext", "{got}");
    assert_eq!(
        slice["owner"],
        json!(["Endpoints", "py-ext", true]),
        "{got}"
    );
    let event = &got["event"];
    assert_eq!(event["type"], "Warning", "{got}");
    assert_eq!(
        event["message"],
        "A max of 2 addresses can be mirrored to EndpointSlices per Endpoints subset. 1 addresses \
         were skipped",
        "{got}"
    );
}
