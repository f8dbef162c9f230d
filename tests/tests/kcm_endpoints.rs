//! The Endpoints and EndpointSlice controllers against the real apiserver: ready and not-ready
//! pods, named target ports, scale, and a Service deleted.

use std::time::Duration;

use e2e::{make_pods_ready, wait_for, ApiServer, Backend, ControllerManager};

fn addresses(server: &ApiServer, field: &str) -> Vec<String> {
    let out = server.kubectl_unchecked([
        "get",
        "endpoints",
        "web",
        "-o",
        &format!("jsonpath={{range .subsets[*].{field}[*]}}{{.ip}} {{end}}"),
    ]);
    let mut ips: Vec<String> = e2e::stdout(&out)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    ips.sort();
    ips
}

#[test]
fn services_get_endpoints_and_slices_from_their_pods() {
    let server = ApiServer::start(Backend::Embedded);
    let _kcm = ControllerManager::start(
        &server,
        &["--controllers=endpoints-controller,endpointslice-controller"],
    );
    let manifest = server.write_file(
        "web.yaml",
        r#"
apiVersion: v1
kind: Service
metadata: {name: web, labels: {tier: front}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec: {containers: [{name: c, image: busybox, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, labels: {app: web}}
spec: {containers: [{name: c, image: busybox, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other, labels: {app: other}}
spec: {containers: [{name: c, image: busybox}]}
"#,
    );
    let out = server.kubectl(["apply", "-f", manifest.to_str().unwrap_or_default()]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    // Pods without an IP are not endpoints yet: the Endpoints object exists, empty.
    wait_for("an empty Endpoints object", Duration::from_secs(20), || {
        let out = server.kubectl_unchecked([
            "get",
            "endpoints",
            "web",
            "-o",
            "jsonpath={.metadata.labels.tier}",
        ]);
        (e2e::stdout(&out) == "front").then_some(())
    });
    assert!(addresses(&server, "addresses").is_empty());

    assert_eq!(make_pods_ready(&server, "default", "node-1"), 3);
    let ready = wait_for("two ready addresses", Duration::from_secs(20), || {
        let ips = addresses(&server, "addresses");
        (ips.len() == 2).then_some(ips)
    });
    let port = server.kubectl_stdout([
        "get",
        "endpoints",
        "web",
        "-o",
        "jsonpath={.subsets[0].ports[0].port}",
    ]);
    assert_eq!(
        port, "8080",
        "the named target port resolves to the container port"
    );

    // The slice says the same, owned by the Service.
    let slice = wait_for(
        "a slice with two ready endpoints",
        Duration::from_secs(20),
        || {
            let out = server.kubectl_unchecked([
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=web",
                "-o",
                "json",
            ]);
            let list: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let item = list["items"].as_array()?.first()?.clone();
            let ready = item["endpoints"]
                .as_array()?
                .iter()
                .filter(|e| e["conditions"]["ready"] == true)
                .count();
            (ready == 2).then_some(item)
        },
    );
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(slice["ports"][0]["port"], 8080);
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    let mut slice_ips: Vec<String> = slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["addresses"][0].as_str().map(str::to_string))
        .collect();
    slice_ips.sort();
    assert_eq!(slice_ips, ready);

    // A pod that stops being ready moves to notReadyAddresses.
    let patch = r#"{"status":{"conditions":[{"type":"Ready","status":"False"}]}}"#;
    let out = server.kubectl([
        "patch",
        "pod",
        "web-1",
        "--subresource=status",
        "--type=merge",
        "-p",
        patch,
    ]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    wait_for("web-1 not ready", Duration::from_secs(20), || {
        (addresses(&server, "notReadyAddresses").len() == 1
            && addresses(&server, "addresses").len() == 1)
            .then_some(())
    });

    // Deleting a pod removes it; deleting the Service removes its Endpoints and slices.
    // (--force warns on stderr, as upstream kubectl does.)
    let out = server.kubectl_unchecked(["delete", "pod", "web-2", "--grace-period=0", "--force"]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    wait_for(
        "web-2 gone from the endpoints",
        Duration::from_secs(20),
        || addresses(&server, "addresses").is_empty().then_some(()),
    );
    let out = server.kubectl(["delete", "service", "web"]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    wait_for(
        "the Endpoints object to go",
        Duration::from_secs(20),
        || {
            let out = server.kubectl_unchecked(["get", "endpoints", "web"]);
            (!out.status.success()).then_some(())
        },
    );
}
