//! The summary built from the simulated runtime, checked as JSON (upstream's field names).

use std::path::Path;
use std::sync::Arc;

use cri::v1::*;
use cri::RuntimeService;
use serde_json::Value;

use super::{build_summary, only_cpu_and_memory};
use crate::simcri::SimCri;

async fn sandbox(sim: &SimCri, namespace: &str, name: &str) -> String {
    let config = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: namespace.into(),
            attempt: 0,
        }),
        ..Default::default()
    };
    sim.run_pod_sandbox(RunPodSandboxRequest {
        config: Some(config),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("run sandbox: {e}"))
    .pod_sandbox_id
}

async fn container(sim: &SimCri, sandbox: &str, name: &str, start: bool) -> String {
    let config = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        ..Default::default()
    };
    let id = sim
        .create_container(CreateContainerRequest {
            pod_sandbox_id: sandbox.into(),
            config: Some(config),
            sandbox_config: None,
        })
        .await
        .unwrap_or_else(|e| panic!("create: {e}"))
        .container_id;
    if start {
        sim.start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    }
    id
}

/// Two ready pods (one with two running containers and one never started), one stopped pod.
async fn runtime() -> Arc<SimCri> {
    let sim = Arc::new(SimCri::new());
    let web = sandbox(&sim, "default", "web").await;
    container(&sim, &web, "nginx", true).await;
    container(&sim, &web, "sidecar", true).await;
    container(&sim, &web, "not-started", false).await;
    let _empty = sandbox(&sim, "kube-system", "empty").await;
    let gone = sandbox(&sim, "default", "gone").await;
    container(&sim, &gone, "app", true).await;
    sim.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: gone,
    })
    .await
    .unwrap_or_else(|e| panic!("stop: {e}"));
    sim
}

async fn summary_json(runtime: Option<&dyn RuntimeService>, only: bool) -> Value {
    let summary = build_summary("node-a", Path::new("/"), runtime, only)
        .await
        .unwrap_or_else(|e| panic!("summary: {e}"));
    serde_json::to_value(&summary).unwrap_or_else(|e| panic!("json: {e}"))
}

fn keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn summary_has_upstreams_shape() {
    let sim = runtime().await;
    let json = summary_json(Some(sim.as_ref()), false).await;
    assert_eq!(keys(&json), ["node", "pods"]);

    let node = &json["node"];
    assert_eq!(node["nodeName"], "node-a");
    assert_eq!(
        keys(node),
        ["cpu", "fs", "memory", "nodeName", "rlimit", "startTime"]
    );
    assert!(node["cpu"]["usageCoreNanoSeconds"].is_u64());
    assert!(node["memory"]["workingSetBytes"].is_u64());
    assert!(node["memory"]["availableBytes"].is_u64());
    for key in [
        "availableBytes",
        "capacityBytes",
        "usedBytes",
        "inodesFree",
        "inodes",
    ] {
        assert!(node["fs"][key].is_u64(), "node.fs.{key}: {}", node["fs"]);
    }
    assert!(node["rlimit"]["maxpid"].is_i64());
    assert!(node["rlimit"]["curproc"].is_i64());
    let start = node["startTime"].as_str().unwrap_or_default();
    assert!(start.ends_with('Z') && !start.contains('.'), "{start}");

    // The stopped sandbox is gone; the rest sorted by namespace, name.
    let pods = json["pods"].as_array().cloned().unwrap_or_default();
    let refs: Vec<(&str, &str, &str)> = pods
        .iter()
        .map(|p| {
            let r = &p["podRef"];
            (
                r["namespace"].as_str().unwrap_or_default(),
                r["name"].as_str().unwrap_or_default(),
                r["uid"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        refs,
        [
            ("default", "web", "uid-web"),
            ("kube-system", "empty", "uid-empty")
        ]
    );

    let web = &pods[0];
    assert_eq!(
        keys(web),
        ["containers", "cpu", "memory", "podRef", "startTime"]
    );
    let containers = web["containers"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = containers
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["nginx", "sidecar"], "only running containers count");
    for c in &containers {
        assert_eq!(keys(c), ["cpu", "memory", "name", "rootfs", "startTime"]);
        assert_eq!(c["cpu"]["usageNanoCores"], 10_000_000);
        assert!(c["cpu"]["usageCoreNanoSeconds"].is_u64());
        assert_eq!(c["memory"]["workingSetBytes"], 4 << 20);
        assert_eq!(c["memory"]["usageBytes"], 5 << 20);
        assert_eq!(c["memory"]["rssBytes"], 3 << 20);
        assert_eq!(keys(&c["rootfs"]), ["inodesUsed", "time", "usedBytes"]);
        assert_eq!(c["rootfs"]["usedBytes"], 4096);
    }
    // The pod's own figures are its containers' sums.
    assert_eq!(web["cpu"]["usageNanoCores"], 20_000_000);
    assert_eq!(web["memory"]["workingSetBytes"], 8 << 20);
    assert_eq!(web["memory"]["rssBytes"], 6 << 20);
    assert!(web["memory"].get("availableBytes").is_none());

    let empty = &pods[1];
    assert_eq!(empty["containers"], serde_json::json!([]));
    assert_eq!(empty["cpu"]["usageCoreNanoSeconds"], 0);
    assert_eq!(empty["memory"]["workingSetBytes"], 0);
}

#[tokio::test]
async fn only_cpu_and_memory_drops_the_rest() {
    let sim = runtime().await;
    let json = summary_json(Some(sim.as_ref()), true).await;
    assert_eq!(
        keys(&json["node"]),
        ["cpu", "memory", "nodeName", "startTime"]
    );
    let pods = json["pods"].as_array().cloned().unwrap_or_default();
    assert_eq!(pods.len(), 2);
    for pod in &pods {
        assert_eq!(
            keys(pod),
            ["containers", "cpu", "memory", "podRef", "startTime"]
        );
        for c in pod["containers"].as_array().into_iter().flatten() {
            assert_eq!(keys(c), ["cpu", "memory", "name", "startTime"]);
        }
    }
}

#[tokio::test]
async fn without_a_runtime_there_are_no_pods() {
    let json = summary_json(None, false).await;
    assert_eq!(json["pods"], serde_json::json!([]));
    assert_eq!(json["node"]["nodeName"], "node-a");
}

#[test]
fn only_cpu_and_memory_reads_the_query_like_parse_bool() {
    assert!(only_cpu_and_memory("only_cpu_and_memory=true"));
    assert!(only_cpu_and_memory("x=1&only_cpu_and_memory=1"));
    assert!(only_cpu_and_memory("only_cpu_and_memory=True"));
    assert!(!only_cpu_and_memory("only_cpu_and_memory=false"));
    assert!(!only_cpu_and_memory("only_cpu_and_memory=yes"));
    assert!(!only_cpu_and_memory(""));
}

#[tokio::test]
async fn simulated_stats_rpcs_agree() {
    let sim = runtime().await;
    let listed = sim
        .list_pod_sandbox_stats(ListPodSandboxStatsRequest::default())
        .await
        .unwrap_or_else(|e| panic!("list: {e}"))
        .stats;
    assert_eq!(listed.len(), 3);
    let Some(web) = listed.iter().find(|s| {
        s.attributes
            .as_ref()
            .and_then(|a| a.metadata.as_ref())
            .is_some_and(|m| m.name == "web")
    }) else {
        panic!("no stats for web");
    };
    let linux = web.linux.clone().unwrap_or_default();
    assert_eq!(linux.containers.len(), 3);
    let working_set = linux
        .memory
        .and_then(|m| m.working_set_bytes)
        .map(|v| v.value);
    assert_eq!(working_set, Some(8 << 20));
    let id = web
        .attributes
        .as_ref()
        .map(|a| a.id.clone())
        .unwrap_or_default();
    let one = sim
        .pod_sandbox_stats(PodSandboxStatsRequest { pod_sandbox_id: id })
        .await
        .unwrap_or_else(|e| panic!("one: {e}"));
    assert!(one.stats.is_some());
    let missing = sim
        .container_stats(ContainerStatsRequest {
            container_id: "nope".into(),
        })
        .await;
    assert!(matches!(missing, Err(cri::CriError::NotFound(_))));
}

fn server(runtime: Option<Arc<dyn RuntimeService>>) -> crate::server::KubeletServer {
    let authentication = serving::authn::Authentication::new(None, None, None, true)
        .unwrap_or_else(|e| panic!("authentication: {e}"));
    crate::server::KubeletServer {
        logs_root: std::path::PathBuf::from("/var/log/pods"),
        root_dir: std::path::PathBuf::from("/"),
        node_name: "node-a".into(),
        client: None,
        auth: crate::server::auth::KubeletAuth {
            authentication,
            reviews: None,
            node_name: "node-a".into(),
        },
        runtime,
    }
}

#[tokio::test]
async fn handler_answers_json() {
    use http_body_util::BodyExt;

    let sim: Arc<dyn RuntimeService> = runtime().await;
    let response = super::summary(&server(Some(sim)), "only_cpu_and_memory=true").await;
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(
        response.headers().get(http::header::CONTENT_TYPE),
        Some(&http::HeaderValue::from_static("application/json"))
    );
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|e| panic!("body: {e}"))
        .to_bytes();
    let json: Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("json: {e}"));
    assert_eq!(json["node"]["nodeName"], "node-a");
    assert!(json["node"].get("fs").is_none());
    assert_eq!(json["pods"].as_array().map(Vec::len), Some(2));
}
