//! The CronJob controller against the real kube-apiserver and kube-controller-manager binaries:
//! a `* * * * *` CronJob creates its job at the next minute (one test waits for that minute and
//! checks Allow and Forbid together), and unusable schedules give Warning events at once.

use std::time::Duration;

use e2e::{wait_for, ApiServer, Backend, ControllerManager};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);
/// A minute boundary plus slack.
const MINUTE_TIMEOUT: Duration = Duration::from_secs(75);

fn start() -> (ApiServer, ControllerManager) {
    let server = ApiServer::start(Backend::Embedded);
    let kcm = ControllerManager::start(&server, &["--controllers=cronjob-controller"]);
    (server, kcm)
}

fn apply(server: &ApiServer, name: &str, manifest: &str) {
    let path = server.write_file(name, manifest);
    let path = path.display().to_string();
    server.kubectl(["apply", "-f", path.as_str()]);
}

fn cronjob_manifest(name: &str, schedule: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: batch/v1
kind: CronJob
metadata:
  name: {name}
  namespace: default
spec:
  schedule: "{schedule}"
{extra}
  jobTemplate:
    metadata:
      labels:
        from: {name}
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: main
            image: busybox
"#
    )
}

fn get(server: &ApiServer, kind: &str, name: &str) -> Value {
    let out = server.kubectl_stdout(["get", kind, name, "-n", "default", "-o", "json"]);
    match serde_json::from_str(&out) {
        Ok(v) => v,
        Err(err) => panic!("kubectl get {kind} {name} printed invalid JSON ({err}): {out}"),
    }
}

fn jobs_of(server: &ApiServer, cronjob: &str) -> Vec<Value> {
    let list = server.get_json(Some("default"), "jobs");
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|j| j["metadata"]["ownerReferences"][0]["name"] == cronjob)
        .collect()
}

fn events(server: &ApiServer, object: &str) -> Vec<(String, String, String)> {
    let list = server.get_json(Some("default"), "events");
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == object)
        .map(|e| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (s(&e["type"]), s(&e["reason"]), s(&e["message"]))
        })
        .collect()
}

fn wait_event(
    server: &ApiServer,
    object: &str,
    reason: &str,
    timeout: Duration,
) -> (String, String, String) {
    wait_for(&format!("event {reason} on {object}"), timeout, || {
        events(server, object).into_iter().find(|e| e.1 == reason)
    })
}

#[test]
fn unusable_schedules_give_warning_events() {
    let (server, _kcm) = start();
    // Parses, but February never has a 31st.
    apply(
        &server,
        "never.yaml",
        &cronjob_manifest("never", "59 23 31 2 *", ""),
    );
    apply(
        &server,
        "mars.yaml",
        &cronjob_manifest("mars", "0 * * * *", "  timeZone: Mars/Olympus_Mons"),
    );
    let (kind, _, message) = wait_event(&server, "never", "InvalidSchedule", TIMEOUT);
    assert_eq!(kind, "Warning");
    assert!(
        message.starts_with("invalid schedule: 59 23 31 2 *"),
        "{message}"
    );
    let (kind, _, message) = wait_event(&server, "mars", "UnknownTimeZone", TIMEOUT);
    assert_eq!(kind, "Warning");
    assert!(message.contains("Mars/Olympus_Mons"), "{message}");
    assert!(jobs_of(&server, "never").is_empty());
}

#[test]
fn every_minute_creates_a_job_and_forbid_keeps_one_running() {
    let (server, _kcm) = start();
    apply(
        &server,
        "allow.yaml",
        &cronjob_manifest("allow", "* * * * *", ""),
    );
    apply(
        &server,
        "forbid.yaml",
        &cronjob_manifest("forbid", "* * * * *", "  concurrencyPolicy: Forbid"),
    );
    // An unusable neighbour must not hold the others up.
    apply(
        &server,
        "never.yaml",
        &cronjob_manifest("never", "59 23 31 2 *", ""),
    );
    // The Forbid CronJob already has an unfinished job (no job controller runs here, so it stays
    // active): the controller takes it into status.active and must not start another.
    let uid = get(&server, "cronjob", "forbid")["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let running = format!(
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: forbid-running
  namespace: default
  ownerReferences:
  - apiVersion: batch/v1
    kind: CronJob
    name: forbid
    uid: {uid}
    controller: true
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
"#
    );
    apply(&server, "running.yaml", &running);
    wait_for("forbid's status.active to hold its job", TIMEOUT, || {
        let active = get(&server, "cronjob", "forbid")["status"]["active"].clone();
        (active[0]["name"] == "forbid-running").then_some(())
    });

    let job = wait_for("allow's scheduled job", MINUTE_TIMEOUT, || {
        jobs_of(&server, "allow").into_iter().next()
    });
    let name = job["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let stamp = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let scheduled = match stamp.parse::<k8s_openapi::jiff::Timestamp>() {
        Ok(t) => t,
        Err(err) => panic!("scheduled timestamp {stamp:?}: {err}"),
    };
    assert_eq!(scheduled.as_second() % 60, 0, "{stamp}");
    assert_eq!(name, format!("allow-{}", scheduled.as_second() / 60));
    assert_eq!(job["metadata"]["labels"]["from"], "allow");
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    assert_eq!(job["metadata"]["ownerReferences"][0]["controller"], true);
    let cj = wait_for("allow's status", TIMEOUT, || {
        let cj = get(&server, "cronjob", "allow");
        (cj["status"]["active"][0]["name"] == name.as_str()).then_some(cj)
    });
    assert!(cj["status"]["lastScheduleTime"].is_string());
    let (kind, _, message) = wait_event(&server, "allow", "SuccessfulCreate", TIMEOUT);
    assert_eq!(
        (kind.as_str(), message.as_str()),
        ("Normal", format!("Created job {name}").as_str())
    );

    // The same minute passed for Forbid: it was skipped.
    wait_event(&server, "forbid", "JobAlreadyActive", TIMEOUT);
    let forbid_jobs: Vec<String> = jobs_of(&server, "forbid")
        .iter()
        .map(|j| {
            j["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(forbid_jobs, ["forbid-running"]);
    wait_event(&server, "never", "InvalidSchedule", TIMEOUT);
}
