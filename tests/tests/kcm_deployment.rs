//! The deployment controller end to end: the real apiserver and kube-controller-manager
//! (deployment + replicaset controllers) driven by kubectl, with pods faked Ready.
//! Covers `kubectl create deployment`, scale, a rolling update watched pod by pod for the
//! maxSurge / maxUnavailable bounds, `kubectl rollout status|history|undo|pause|resume`, and
//! the progress deadline.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::informer::{Event, Scope};
use client::{Client, ClientOptions, SharedInformerFactory};
use e2e::{make_pods_ready, wait_for, ApiServer, Backend, ControllerManager};
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

const CONTROLLERS: &str = "--controllers=deployment-controller,replicaset-controller";
const TIMEOUT: Duration = Duration::from_secs(60);

fn start(ns: &str) -> (ApiServer, ControllerManager) {
    let server = ApiServer::start(Backend::Embedded);
    let kcm = ControllerManager::start(&server, &[CONTROLLERS]);
    server.kubectl(["create", "namespace", ns]);
    (server, kcm)
}

fn deployment(server: &ApiServer, ns: &str, name: &str) -> Value {
    server.get_json(Some(ns), &format!("deployment/{name}"))
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// (status, reason) of a deployment condition.
fn condition(d: &Value, type_: &str) -> Option<(String, String)> {
    d["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// Whether the latest spec is fully rolled out with `replicas` available pods.
fn rolled_out(d: &Value, replicas: i64) -> bool {
    let s = &d["status"];
    int(&s["observedGeneration"]) >= int(&d["metadata"]["generation"])
        && int(&s["replicas"]) == replicas
        && int(&s["updatedReplicas"]) == replicas
        && int(&s["availableReplicas"]) == replicas
}

/// Plays the kubelet until `name` is rolled out with `replicas` pods.
fn drive(server: &ApiServer, ns: &str, name: &str, replicas: i64) -> Value {
    wait_for(
        &format!("deployment {name} rolled out with {replicas} replicas"),
        TIMEOUT,
        || {
            make_pods_ready(server, ns, "node-1");
            let d = deployment(server, ns, name);
            rolled_out(&d, replicas).then_some(d)
        },
    )
}

fn replica_sets(server: &ApiServer, ns: &str) -> Vec<Value> {
    server.get_json(Some(ns), "replicasets")["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn revision_of(rs: &Value) -> String {
    rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn image_of(rs: &Value) -> String {
    rs["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Watches the pods of a namespace and checks the rolling-update bounds at every event.
struct BoundsChecker {
    _rt: tokio::runtime::Runtime,
    _factory: SharedInformerFactory,
    violations: Arc<Mutex<Vec<String>>>,
    events: Arc<Mutex<usize>>,
}

impl BoundsChecker {
    fn start(server: &ApiServer, ns: &str, min_available: usize, max_total: usize) -> Self {
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(err) => panic!("building a runtime: {err}"),
        };
        let client = {
            let _guard = rt.enter();
            let uri = match server.url().parse() {
                Ok(uri) => uri,
                Err(err) => panic!("{err}"),
            };
            match Client::new(
                kube::Config::new(uri),
                ClientOptions::new("e2e").rate(-1.0, 0),
            ) {
                Ok(c) => c,
                Err(err) => panic!("building a client: {err}"),
            }
        };
        let factory = SharedInformerFactory::new(client);
        let informer = factory.informer_for::<Pod>(Scope::namespace(ns));
        let violations: Arc<Mutex<Vec<String>>> = Arc::default();
        let events: Arc<Mutex<usize>> = Arc::default();
        // name -> (ready, terminating), as the watch shows them in order.
        let pods: Arc<Mutex<BTreeMap<String, (bool, bool)>>> = Arc::default();
        // The initial list arrives one Add at a time: check only once it is all in.
        // (The registration may report synced before its handler ran.)
        let armed = Arc::new(AtomicBool::new(false));
        let registration = {
            let _guard = rt.enter();
            let (violations, events, armed) = (violations.clone(), events.clone(), armed.clone());
            informer.add_event_handler(None, move |event| {
                let (Ok(mut pods), Ok(mut violations), Ok(mut events)) =
                    (pods.lock(), violations.lock(), events.lock())
                else {
                    return;
                };
                *events += 1;
                match event {
                    Event::Add(p) | Event::Update { new: p, .. } => {
                        let ready = p
                            .status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|c| {
                                c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                            });
                        let name = p.metadata.name.clone().unwrap_or_default();
                        pods.insert(name, (ready, p.metadata.deletion_timestamp.is_some()));
                    }
                    Event::Delete(d) => {
                        pods.remove(d.object().metadata.name.as_deref().unwrap_or_default());
                    }
                }
                let total = pods
                    .values()
                    .filter(|(_, terminating)| !terminating)
                    .count();
                let available = pods.values().filter(|(r, t)| *r && !*t).count();
                // The rollout starts from a settled state: the initial list is complete once
                // it shows every available pod.
                if !armed.load(Ordering::SeqCst) {
                    if available < min_available {
                        return;
                    }
                    armed.store(true, Ordering::SeqCst);
                }
                if total > max_total {
                    violations.push(format!("{total} pods > {max_total}: {pods:?}"));
                }
                if available < min_available {
                    violations.push(format!("{available} available < {min_available}: {pods:?}"));
                }
            })
        };
        {
            let _guard = rt.enter();
            factory.start();
        }
        assert!(rt.block_on(factory.wait_for_cache_sync(Duration::from_secs(30))));
        wait_for(
            "the checker's initial sync",
            Duration::from_secs(10),
            || registration.has_synced().then_some(()),
        );
        BoundsChecker {
            _rt: rt,
            _factory: factory,
            violations,
            events,
        }
    }

    fn finish(self) -> (Vec<String>, usize) {
        let violations = self
            .violations
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        let events = self.events.lock().map(|e| *e).unwrap_or_default();
        self._factory.shutdown();
        (violations, events)
    }
}

#[test]
fn create_scale_roll_out_undo_and_history() {
    let ns = "web";
    let (server, _kcm) = start(ns);
    server.kubectl([
        "create",
        "deployment",
        "web",
        "--image=nginx:1",
        "--replicas=3",
        "-n",
        ns,
    ]);
    let d = drive(&server, ns, "web", 3);
    assert_eq!(
        condition(&d, "Available"),
        Some(("True".into(), "MinimumReplicasAvailable".into()))
    );
    assert_eq!(
        condition(&d, "Progressing"),
        Some(("True".into(), "NewReplicaSetAvailable".into()))
    );
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let rses = replica_sets(&server, ns);
    assert_eq!(rses.len(), 1, "{rses:?}");
    let hash = rses[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!hash.is_empty());
    assert_eq!(rses[0]["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(
        rses[0]["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash.as_str()
    );
    assert_eq!(revision_of(&rses[0]), "1");
    assert_eq!(
        rses[0]["metadata"]["ownerReferences"][0]["kind"],
        "Deployment"
    );
    let out = server.kubectl_unchecked([
        "rollout",
        "status",
        "deployment/web",
        "-n",
        ns,
        "--timeout=30s",
    ]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    assert!(
        e2e::stdout(&out).contains("successfully rolled out"),
        "{}",
        e2e::stdout(&out)
    );

    // Scale.
    server.kubectl(["scale", "deployment/web", "--replicas=4", "-n", ns]);
    drive(&server, ns, "web", 4);
    let rses = replica_sets(&server, ns);
    assert_eq!(rses[0]["spec"]["replicas"], 4);
    assert_eq!(
        rses[0]["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"],
        "4"
    );

    // A rolling update with maxSurge 1 and maxUnavailable 0, watched pod by pod.
    server.kubectl([
        "patch",
        "deployment/web",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"strategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0}}}}"#,
    ]);
    drive(&server, ns, "web", 4);
    let checker = BoundsChecker::start(&server, ns, 4, 5);
    server.kubectl(["set", "image", "deployment/web", "nginx=nginx:2", "-n", ns]);
    server.kubectl([
        "annotate",
        "deployment/web",
        "-n",
        ns,
        "kubernetes.io/change-cause=image nginx:2",
    ]);
    let d = drive(&server, ns, "web", 4);
    let (violations, events) = checker.finish();
    assert!(
        violations.is_empty(),
        "bounds violated:\n{}",
        violations.join("\n")
    );
    assert!(events >= 8, "the checker saw only {events} events");
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let out = server.kubectl_unchecked([
        "rollout",
        "status",
        "deployment/web",
        "-n",
        ns,
        "--timeout=30s",
    ]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    let events = server.kubectl_stdout([
        "get",
        "events",
        "-n",
        ns,
        "--field-selector=reason=ScalingReplicaSet",
    ]);
    assert!(events.contains("Scaled up replica set web-"), "{events}");
    assert!(events.contains("Scaled down replica set web-"), "{events}");

    // History lists both revisions, with the change cause.
    let history = server.kubectl_stdout(["rollout", "history", "deployment/web", "-n", ns]);
    assert!(history.contains("1  "), "{history}");
    assert!(
        history.contains("2  ") && history.contains("image nginx:2"),
        "{history}"
    );

    // Undo restores the first template, which comes back as revision 3.
    server.kubectl(["rollout", "undo", "deployment/web", "-n", ns]);
    let d = drive(&server, ns, "web", 4);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1"
    );
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    let rses = replica_sets(&server, ns);
    assert_eq!(rses.len(), 2, "{rses:?}");
    let first = rses.iter().find(|rs| image_of(rs) == "nginx:1");
    let Some(first) = first else {
        panic!("no nginx:1 replica set: {rses:?}")
    };
    assert_eq!(first["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(revision_of(first), "3");
    assert_eq!(
        first["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"],
        "1"
    );
    assert_eq!(first["spec"]["replicas"], 4);
    let history = server.kubectl_stdout(["rollout", "history", "deployment/web", "-n", ns]);
    assert!(
        history.contains("2  ") && history.contains("3  "),
        "{history}"
    );
}

#[test]
fn paused_deployments_scale_but_roll_out_only_when_resumed() {
    let ns = "paused";
    let (server, _kcm) = start(ns);
    server.kubectl([
        "create",
        "deployment",
        "app",
        "--image=busybox:1",
        "--replicas=2",
        "-n",
        ns,
    ]);
    drive(&server, ns, "app", 2);
    server.kubectl(["rollout", "pause", "deployment/app", "-n", ns]);
    server.kubectl([
        "set",
        "image",
        "deployment/app",
        "busybox=busybox:2",
        "-n",
        ns,
    ]);
    server.kubectl(["scale", "deployment/app", "--replicas=3", "-n", ns]);
    let d = wait_for("the paused deployment to be scaled", TIMEOUT, || {
        make_pods_ready(&server, ns, "node-1");
        let d = deployment(&server, ns, "app");
        (int(&d["status"]["observedGeneration"]) >= int(&d["metadata"]["generation"])
            && int(&d["status"]["availableReplicas"]) == 3)
            .then_some(d)
    });
    assert_eq!(
        condition(&d, "Progressing"),
        Some(("Unknown".into(), "DeploymentPaused".into()))
    );
    // Still one ReplicaSet, running the old image.
    let rses = replica_sets(&server, ns);
    assert_eq!(rses.len(), 1, "{rses:?}");
    assert_eq!(image_of(&rses[0]), "busybox:1");
    assert_eq!(rses[0]["spec"]["replicas"], 3);

    server.kubectl(["rollout", "resume", "deployment/app", "-n", ns]);
    let d = drive(&server, ns, "app", 3);
    assert_eq!(
        condition(&d, "Progressing"),
        Some(("True".into(), "NewReplicaSetAvailable".into()))
    );
    let rses = replica_sets(&server, ns);
    let new = rses.iter().find(|rs| image_of(rs) == "busybox:2");
    assert!(
        new.is_some_and(|rs| rs["spec"]["replicas"] == 3),
        "{rses:?}"
    );
}

#[test]
fn a_rollout_that_never_gets_ready_exceeds_its_progress_deadline() {
    let ns = "stuck";
    let (server, _kcm) = start(ns);
    server.kubectl([
        "create",
        "deployment",
        "slow",
        "--image=nginx:1",
        "--replicas=2",
        "-n",
        ns,
    ]);
    server.kubectl([
        "patch",
        "deployment/slow",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"progressDeadlineSeconds":3}}"#,
    ]);
    // No pod ever becomes ready.
    let d = wait_for("ProgressDeadlineExceeded", TIMEOUT, || {
        let d = deployment(&server, ns, "slow");
        (condition(&d, "Progressing") == Some(("False".into(), "ProgressDeadlineExceeded".into())))
            .then_some(d)
    });
    assert_eq!(
        condition(&d, "Available"),
        Some(("False".into(), "MinimumReplicasUnavailable".into()))
    );
    assert_eq!(int(&d["status"]["unavailableReplicas"]), 2);
    let out = server.kubectl_unchecked([
        "rollout",
        "status",
        "deployment/slow",
        "-n",
        ns,
        "--timeout=30s",
    ]);
    assert!(!out.status.success());
    assert!(
        e2e::stderr(&out).contains("exceeded its progress deadline"),
        "{}",
        e2e::stderr(&out)
    );
}

#[test]
fn recreate_replaces_every_pod_at_once() {
    let ns = "recreate";
    let (server, _kcm) = start(ns);
    server.kubectl([
        "create",
        "deployment",
        "db",
        "--image=postgres:15",
        "--replicas=2",
        "-n",
        ns,
    ]);
    server.kubectl([
        "patch",
        "deployment/db",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"strategy":{"type":"Recreate","rollingUpdate":null}}}"#,
    ]);
    drive(&server, ns, "db", 2);
    server.kubectl([
        "set",
        "image",
        "deployment/db",
        "postgres=postgres:16",
        "-n",
        ns,
    ]);
    drive(&server, ns, "db", 2);
    let rses = replica_sets(&server, ns);
    assert_eq!(rses.len(), 2, "{rses:?}");
    for rs in &rses {
        let want = if image_of(rs) == "postgres:16" { 2 } else { 0 };
        assert_eq!(rs["spec"]["replicas"], want, "{rs}");
    }
    let pods = server.get_json(Some(ns), "pods")["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        pods.iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "postgres:16"),
        "{pods:?}"
    );
}
