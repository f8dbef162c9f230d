//! The Job and TTL-after-finished controllers against the real kube-apiserver and
//! kube-controller-manager binaries. No kubelet runs: tests finish pods by patching their status
//! (phase Succeeded / Failed with a terminated container and its exit code).

use std::sync::Once;
use std::time::Duration;

use e2e::{wait_for, ApiServer, Backend, ControllerManager, Method};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(30);

/// The controller manager inherits the test's environment: lower the pod failure backoff
/// (10 s upstream) so retry tests take seconds.
fn fast_backoff() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::env::set_var("KCM_JOB_POD_FAILURE_BACKOFF_MS", "200"));
}

fn start(controllers: &str) -> (ApiServer, ControllerManager) {
    fast_backoff();
    let server = ApiServer::start(Backend::Embedded);
    let kcm = ControllerManager::start(&server, &[&format!("--controllers={controllers}")]);
    (server, kcm)
}

fn apply(server: &ApiServer, name: &str, manifest: &str) {
    let path = server.write_file(name, manifest);
    let path = path.display().to_string();
    server.kubectl(["apply", "-f", path.as_str()]);
}

fn job_manifest(name: &str, spec: &str) -> String {
    format!(
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  namespace: default
spec:
{spec}
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
"#
    )
}

fn get_job(server: &ApiServer, name: &str) -> Option<Value> {
    let out = server.kubectl_unchecked(["get", "job", name, "-n", "default", "-o", "json"]);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn job(server: &ApiServer, name: &str) -> Value {
    match get_job(server, name) {
        Some(job) => job,
        None => panic!("job {name} not found"),
    }
}

fn pods(server: &ApiServer, job: &str) -> Vec<Value> {
    let out = server.kubectl_stdout([
        "get",
        "pods",
        "-n",
        "default",
        "-l",
        &format!("batch.kubernetes.io/job-name={job}"),
        "-o",
        "json",
    ]);
    let list: Value = match serde_json::from_str(&out) {
        Ok(v) => v,
        Err(err) => panic!("kubectl get pods printed invalid JSON ({err}): {out}"),
    };
    list["items"].as_array().cloned().unwrap_or_default()
}

fn is_running(pod: &Value) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
    pod["metadata"]["deletionTimestamp"].is_null() && phase != "Succeeded" && phase != "Failed"
}

fn running_pods(server: &ApiServer, job: &str) -> Vec<Value> {
    pods(server, job).into_iter().filter(is_running).collect()
}

fn name_of(pod: &Value) -> String {
    pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// What a kubelet would report for a finished pod.
fn finish_pod(server: &ApiServer, pod: &str, exit_code: i32) {
    let phase = if exit_code == 0 {
        "Succeeded"
    } else {
        "Failed"
    };
    let patch = json!({"status": {
        "phase": phase,
        "containerStatuses": [{
            "name": "main", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": exit_code, "reason": if exit_code == 0 { "Completed" } else { "Error" }}}
        }]
    }});
    let response = server.http(
        Method::Patch,
        &format!("/api/v1/namespaces/default/pods/{pod}/status"),
        Some("application/merge-patch+json"),
        patch.to_string().as_bytes(),
    );
    assert_eq!(
        response.status,
        200,
        "finishing pod {pod}: {}",
        String::from_utf8_lossy(&response.body)
    );
}

fn condition(job: &Value, type_: &str) -> Option<Value> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_ && c["status"] == "True")
        .cloned()
}

fn wait_condition(server: &ApiServer, name: &str, type_: &str) -> Value {
    wait_for(&format!("job {name} condition {type_}"), TIMEOUT, || {
        condition(&job(server, name), type_)
    })
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

fn wait_event(server: &ApiServer, object: &str, reason: &str) -> (String, String, String) {
    wait_for(&format!("event {reason} on {object}"), TIMEOUT, || {
        events(server, object).into_iter().find(|e| e.1 == reason)
    })
}

#[test]
fn job_runs_completions_with_parallelism_and_completes() {
    let (server, _kcm) = start("job-controller");
    apply(
        &server,
        "job.yaml",
        &job_manifest("work", "  completions: 3\n  parallelism: 2"),
    );
    let first = wait_for("two running pods", TIMEOUT, || {
        let running = running_pods(&server, "work");
        (running.len() == 2).then_some(running)
    });
    for pod in &first {
        let labels = &pod["metadata"]["labels"];
        let uid = job(&server, "work")["metadata"]["uid"].clone();
        assert_eq!(labels["batch.kubernetes.io/controller-uid"], uid);
        assert_eq!(labels["controller-uid"], uid);
        assert_eq!(labels["job-name"], "work");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "Job");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
        let finalizers = pod["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            finalizers.contains(&json!("batch.kubernetes.io/job-tracking")),
            "{finalizers:?}"
        );
    }
    let active = wait_for("status.active 2", TIMEOUT, || {
        let j = job(&server, "work");
        (j["status"]["active"] == 2).then_some(j)
    });
    assert!(active["status"]["startTime"].is_string());

    finish_pod(&server, &name_of(&first[0]), 0);
    // The succeeded pod is counted, loses its finalizer, and one more pod makes 2 running.
    wait_for("succeeded 1 and a replacement", TIMEOUT, || {
        let j = job(&server, "work");
        let running = running_pods(&server, "work");
        (j["status"]["succeeded"] == 1 && running.len() == 2).then_some(())
    });
    let counted = pods(&server, "work")
        .into_iter()
        .find(|p| name_of(p) == name_of(&first[0]));
    let counted = match counted {
        Some(p) => p,
        None => panic!("succeeded pod vanished"),
    };
    assert!(
        counted["metadata"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty()),
        "{counted}"
    );

    for pod in running_pods(&server, "work") {
        finish_pod(&server, &name_of(&pod), 0);
    }
    let complete = wait_condition(&server, "work", "Complete");
    assert_eq!(complete["reason"], "CompletionsReached");
    let j = job(&server, "work");
    assert_eq!(j["status"]["succeeded"], 3);
    assert!(j["status"]["completionTime"].is_string());
    assert!(
        condition(&j, "SuccessCriteriaMet").is_some(),
        "{}",
        j["status"]
    );
    assert_eq!(pods(&server, "work").len(), 3, "no pod beyond completions");
    wait_event(&server, "work", "Completed");
    let created = events(&server, "work")
        .into_iter()
        .filter(|e| e.1 == "SuccessfulCreate")
        .count();
    assert!(created >= 1);
}

#[test]
fn failing_pods_retry_backoff_limit_times_then_the_job_fails() {
    let (server, _kcm) = start("job-controller");
    apply(
        &server,
        "job.yaml",
        &job_manifest("flaky", "  backoffLimit: 2"),
    );
    let mut failed = Vec::new();
    for attempt in 0..3 {
        let pod = wait_for(&format!("pod attempt {attempt}"), TIMEOUT, || {
            running_pods(&server, "flaky").into_iter().next()
        });
        finish_pod(&server, &name_of(&pod), 1);
        failed.push(name_of(&pod));
    }
    let cond = wait_condition(&server, "flaky", "Failed");
    assert_eq!(cond["reason"], "BackoffLimitExceeded");
    assert_eq!(
        cond["message"],
        "Job has reached the specified backoff limit"
    );
    let j = job(&server, "flaky");
    assert_eq!(j["status"]["failed"], 3);
    assert!(condition(&j, "FailureTarget").is_some());
    // Exactly backoffLimit retries: three pods in all, none after the failure.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(pods(&server, "flaky").len(), 3, "{failed:?}");
    let (kind, _, message) = wait_event(&server, "flaky", "BackoffLimitExceeded");
    assert_eq!(kind, "Warning");
    assert_eq!(message, "Job has reached the specified backoff limit");
}

#[test]
fn pod_failure_policy_fail_job_on_exit_code() {
    let (server, _kcm) = start("job-controller");
    let spec = "  backoffLimit: 6\n  podFailurePolicy:\n    rules:\n    - action: FailJob\n      onExitCodes:\n        containerName: main\n        operator: In\n        values: [42]";
    apply(&server, "job.yaml", &job_manifest("policy", spec));
    let pod = wait_for("a pod", TIMEOUT, || {
        running_pods(&server, "policy").into_iter().next()
    });
    finish_pod(&server, &name_of(&pod), 42);
    let cond = wait_condition(&server, "policy", "Failed");
    assert_eq!(cond["reason"], "PodFailurePolicy");
    assert_eq!(
        cond["message"],
        format!("Container main for pod default/{} failed with exit code 42 matching FailJob rule at index 0", name_of(&pod))
    );
}

#[test]
fn indexed_job_gives_each_index_its_pod() {
    let (server, _kcm) = start("job-controller");
    apply(
        &server,
        "job.yaml",
        &job_manifest(
            "idx",
            "  completions: 3\n  parallelism: 3\n  completionMode: Indexed",
        ),
    );
    let running = wait_for("three indexed pods", TIMEOUT, || {
        let running = running_pods(&server, "idx");
        (running.len() == 3).then_some(running)
    });
    let mut indexes: Vec<String> = running
        .iter()
        .map(|p| {
            let index = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert_eq!(
                p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"],
                index.as_str()
            );
            assert_eq!(p["spec"]["hostname"], format!("idx-{index}"));
            assert!(
                name_of(p).starts_with(&format!("idx-{index}-")),
                "{}",
                name_of(p)
            );
            let env = &p["spec"]["containers"][0]["env"][0];
            assert_eq!(env["name"], "JOB_COMPLETION_INDEX");
            assert_eq!(
                env["valueFrom"]["fieldRef"]["fieldPath"],
                "metadata.annotations['batch.kubernetes.io/job-completion-index']"
            );
            index
        })
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2"]);

    let by_index = |i: &str| {
        running
            .iter()
            .find(|p| p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == i)
            .map(name_of)
            .unwrap_or_default()
    };
    finish_pod(&server, &by_index("0"), 0);
    finish_pod(&server, &by_index("2"), 0);
    wait_for("completedIndexes 0,2", TIMEOUT, || {
        (job(&server, "idx")["status"]["completedIndexes"] == "0,2").then_some(())
    });
    // A failed index gets a new pod with the same index.
    finish_pod(&server, &by_index("1"), 1);
    let again = wait_for("a new pod for index 1", TIMEOUT, || {
        running_pods(&server, "idx").into_iter().next()
    });
    assert_eq!(
        again["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"],
        "1"
    );
    finish_pod(&server, &name_of(&again), 0);
    wait_condition(&server, "idx", "Complete");
    let j = job(&server, "idx");
    assert_eq!(j["status"]["completedIndexes"], "0-2");
    assert_eq!(j["status"]["succeeded"], 3);
    assert_eq!(j["status"]["failed"], 1);
}

#[test]
fn suspend_deletes_pods_and_resume_recreates_them() {
    let (server, _kcm) = start("job-controller");
    apply(
        &server,
        "job.yaml",
        &job_manifest("pause", "  completions: 2\n  parallelism: 2"),
    );
    wait_for("two pods", TIMEOUT, || {
        (running_pods(&server, "pause").len() == 2).then_some(())
    });
    server.kubectl([
        "patch",
        "job",
        "pause",
        "-n",
        "default",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":true}}"#,
    ]);
    let cond = wait_condition(&server, "pause", "Suspended");
    assert_eq!(cond["reason"], "JobSuspended");
    wait_for("no running pods", TIMEOUT, || {
        running_pods(&server, "pause").is_empty().then_some(())
    });
    wait_for("status.active cleared", TIMEOUT, || {
        job(&server, "pause")["status"]["active"]
            .is_null()
            .then_some(())
    });
    wait_event(&server, "pause", "Suspended");

    server.kubectl([
        "patch",
        "job",
        "pause",
        "-n",
        "default",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);
    wait_for("two pods again", TIMEOUT, || {
        (running_pods(&server, "pause").len() == 2).then_some(())
    });
    let j = job(&server, "pause");
    let suspended = j["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Suspended").cloned())
        .unwrap_or_default();
    assert_eq!(suspended["status"], "False");
    assert_eq!(suspended["reason"], "JobResumed");
    wait_event(&server, "pause", "Resumed");
}

#[test]
fn ttl_after_finished_deletes_the_job() {
    let (server, _kcm) = start("job-controller,ttl-after-finished-controller");
    apply(
        &server,
        "job.yaml",
        &job_manifest("short", "  ttlSecondsAfterFinished: 2"),
    );
    let pod = wait_for("a pod", TIMEOUT, || {
        running_pods(&server, "short").into_iter().next()
    });
    finish_pod(&server, &name_of(&pod), 0);
    wait_condition(&server, "short", "Complete");
    // Still there right after finishing, gone once the TTL passed.
    assert!(get_job(&server, "short").is_some());
    wait_for("the job deleted by its TTL", TIMEOUT, || {
        get_job(&server, "short").is_none().then_some(())
    });
}
