//! The end-to-end harness: starts the real `kube-apiserver` binary on a free loopback port (over
//! the embedded store or a real etcd it starts itself), and drives it with the real `kubectl`
//! binaries, the Python `kubernetes` client and a small HTTP client of our own.
//!
//! Everything a test starts belongs to the value that started it: dropping an [`ApiServer`]
//! kills the server (by its own pid) and its etcd, and removes the temporary directories. The
//! server's stderr goes to a per-test log file whose tail is printed when the test panics, so a
//! failure shows what the server said.
//!
//! The binary is found where cargo puts it: `$CARGO_TARGET_DIR/debug/kube-apiserver` when that
//! variable is set, else `<workspace>/target/debug/kube-apiserver`. Nothing here builds it:
//! `cargo build -p apiserver` (or CI's `cargo build --workspace --all-targets`) must run first.

pub mod containerd;
pub mod http;
pub mod pods;

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use tempfile::TempDir;
use test_etcd::Etcd;

pub use http::{HttpResponse, Method};

const SETPRIV_BINARY: &str = "/usr/bin/setpriv";
/// How long the server may take to answer `/readyz` with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Starts retried with a fresh port when another process took ours in between.
const START_ATTEMPTS: usize = 3;
const LOG_TAIL_BYTES: u64 = 8192;
/// Where `deploy/install-deps.sh` puts the venv holding the Python `kubernetes` client.
pub const PYTHON_VENV: &str = "/opt/kube-rs-e2e-venv";

/// Which storage the server runs on; every scenario runs on both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded store in `--data-dir`.
    Embedded,
    /// A real etcd member, started for this server alone.
    Etcd,
}

/// The kubectl binaries on the machine: the default one and two others for skew tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KubectlVersion {
    V1_27,
    V1_32,
    V1_33,
}

impl KubectlVersion {
    /// The binary's path.
    pub fn path(self) -> &'static str {
        match self {
            KubectlVersion::V1_27 => "/usr/lib/google-cloud-sdk/bin/kubectl.1.27",
            KubectlVersion::V1_32 => "/usr/bin/kubectl",
            KubectlVersion::V1_33 => "/usr/lib/google-cloud-sdk/bin/kubectl.1.33",
        }
    }
}

/// A running `kube-apiserver` started by this test, plain HTTP on a loopback port.
pub struct ApiServer {
    child: Option<Child>,
    port: u16,
    backend: Backend,
    log_path: PathBuf,
    // Declared after `child` so the server is killed before its etcd and directories go.
    etcd: Option<Etcd>,
    /// More flags, e.g. the secure port's (see [`ApiServer::start_with`]).
    extra_args: Vec<String>,
    dir: TempDir,
}

impl ApiServer {
    /// Starts a server over the embedded store in a fresh data directory.
    pub fn start_embedded() -> ApiServer {
        Self::start(Backend::Embedded)
    }

    /// Starts a fresh etcd member and a server over it; both stop when the value is dropped.
    pub fn start_etcd() -> ApiServer {
        Self::start(Backend::Etcd)
    }

    /// Starts a server over `backend`, panicking with the server's log when it does not come
    /// up: a test cannot do anything useful without it.
    pub fn start(backend: Backend) -> ApiServer {
        Self::start_with(backend, |_| Vec::new())
    }

    /// Starts a server with more flags; `args` gets the test's scratch directory (to put
    /// certificates and token files in) and returns the flags.
    pub fn start_with(backend: Backend, args: impl FnOnce(&Path) -> Vec<String>) -> ApiServer {
        match Self::try_start(backend, args) {
            Ok(server) => server,
            Err(err) => panic!("starting kube-apiserver ({backend:?}): {err:#}"),
        }
    }

    fn try_start(
        backend: Backend,
        args: impl FnOnce(&Path) -> Vec<String>,
    ) -> anyhow::Result<ApiServer> {
        let dir = tempfile::Builder::new()
            .prefix("kube-e2e-")
            .tempdir()
            .context("creating the test's temporary directory")?;
        let scratch = dir.path().join("work");
        std::fs::create_dir_all(&scratch).context("creating the scratch directory")?;
        let extra_args = args(&scratch);
        let etcd = match backend {
            Backend::Embedded => None,
            Backend::Etcd => Some(Etcd::start().context("starting etcd")?),
        };
        let log_path = dir.path().join("kube-apiserver.log");
        let mut server = ApiServer {
            child: None,
            port: 0,
            backend,
            log_path,
            etcd,
            extra_args,
            dir,
        };
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            server.port = free_port()?;
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                Err(err) => {
                    let port_race = format!("{err:#}").contains("Address already in use");
                    if !port_race {
                        return Err(err);
                    }
                    last_err = Some(err);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("kube-apiserver did not start")))
    }

    /// Kills the server and starts it again on the same port over the same data (the same data
    /// directory, or the same etcd), waiting until it is ready.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(err) = self.spawn_and_wait() {
            panic!("restarting kube-apiserver: {err:#}");
        }
    }

    /// Stops the server, runs `offline` against a second server started on the same data (same
    /// directory or etcd) on another port with `extra` flags, stops that one, and starts this
    /// server again on its own port. Clients of this server see it down the whole time: what
    /// `offline` writes is what they missed.
    pub fn while_down<T>(&mut self, extra: &[&str], offline: impl FnOnce(&str) -> T) -> T {
        self.kill();
        let port = self.port;
        let args = self.extra_args.clone();
        self.extra_args.extend(extra.iter().map(|a| a.to_string()));
        let mut started = Err(anyhow!("not started"));
        for _ in 0..START_ATTEMPTS {
            self.port = match free_port() {
                Ok(p) => p,
                Err(err) => panic!("finding a free port: {err:#}"),
            };
            started = self.spawn_and_wait();
            if started.is_ok() {
                break;
            }
        }
        if let Err(err) = started {
            panic!("starting the offline kube-apiserver: {err:#}");
        }
        let result = offline(&self.url());
        self.kill();
        self.port = port;
        self.extra_args = args;
        if let Err(err) = self.spawn_and_wait() {
            panic!("restarting kube-apiserver: {err:#}");
        }
        result
    }

    /// Stops the server with SIGKILL (no graceful shutdown, so a restart also shows that what
    /// was acknowledged is durable) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The storage this server runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The file the server's stdout and stderr are written to.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// A scratch directory that lives as long as the server, for manifests and scripts.
    /// The endpoints of this server's own etcd (etcd backend only).
    pub fn etcd_endpoints(&self) -> Option<Vec<String>> {
        self.etcd.as_ref().map(Etcd::endpoints)
    }

    pub fn work_dir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Writes `contents` to `name` in the scratch directory and returns its path.
    pub fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.work_dir().join(name);
        if let Err(err) = std::fs::write(&path, contents) {
            panic!("writing {}: {err}", path.display());
        }
        path
    }

    /// The server's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Panics (with the log) when the server has exited: tests call it after hostile input.
    pub fn assert_running(&mut self) {
        let exited = match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => None,
            Some(Ok(Some(status))) => Some(status.to_string()),
            Some(Err(err)) => Some(err.to_string()),
            None => Some("not started".to_string()),
        };
        if let Some(status) = exited {
            panic!(
                "kube-apiserver is not running ({status}); log tail:\n{}",
                log_tail(&self.log_path)
            );
        }
    }

    /// A `kubectl` command for `version` aimed at this server, with its own empty `HOME` and
    /// `KUBECONFIG` so no user configuration is read; for callers that need to spawn it or add
    /// environment (`KUBE_EDITOR`).
    pub fn kubectl_command(&self, version: KubectlVersion) -> Command {
        let home = self.dir.path().join("home");
        let mut command = Command::new(version.path());
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &home)
            .env("KUBECONFIG", home.join("kubeconfig"))
            .env("LANG", "C.UTF-8")
            .arg(format!("--server={}", self.url()))
            .current_dir(self.work_dir())
            .stdin(Stdio::null());
        command
    }

    /// Runs kubectl 1.32 and asserts it succeeded with an empty stderr; returns its output.
    pub fn kubectl<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.kubectl_version(KubectlVersion::V1_32, args)
    }

    /// Runs kubectl `version` and asserts it succeeded with an empty stderr.
    pub fn kubectl_version<I, S>(&self, version: KubectlVersion, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.kubectl_command(version);
        command.args(args);
        run_ok(command)
    }

    /// Runs kubectl 1.32 and returns its output whatever it is, for tests that expect failure.
    pub fn kubectl_unchecked<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.kubectl_command(KubectlVersion::V1_32);
        command.args(args);
        run(command)
    }

    /// Runs kubectl 1.32 and returns its stdout, asserting success and an empty stderr.
    pub fn kubectl_stdout<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        stdout(&self.kubectl(args))
    }

    /// Gets one object as JSON with kubectl.
    pub fn get_json(&self, namespace: Option<&str>, resource: &str) -> serde_json::Value {
        let mut args = vec!["get", resource, "-o", "json"];
        if let Some(ns) = namespace {
            args.extend(["-n", ns]);
        }
        let out = self.kubectl_stdout(args);
        match serde_json::from_str(&out) {
            Ok(value) => value,
            Err(err) => panic!("kubectl get -o json printed invalid JSON ({err}):\n{out}"),
        }
    }

    /// One HTTP request to the server; see [`http::request`].
    pub fn http(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> HttpResponse {
        match http::request(self.port, method, path, content_type, body) {
            Ok(response) => response,
            Err(err) => panic!("{method:?} {path}: {err:#}"),
        }
    }

    /// Runs `tests/python/<script>` with the venv's Python, passing the server URL as the
    /// first argument; asserts exit 0 and returns what it printed on stdout, parsed as JSON.
    pub fn python(&self, script: &str, args: &[&str]) -> serde_json::Value {
        let python = python_binary();
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("python")
            .join(script);
        let mut command = Command::new(&python);
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.dir.path().join("home"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(&path)
            .arg(self.url())
            .args(args)
            .stdin(Stdio::null());
        let output = run(command);
        if !output.status.success() {
            panic!(
                "{} {script} failed ({}):\nstdout:\n{}\nstderr:\n{}",
                python.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let out = stdout(&output);
        match serde_json::from_str(&out) {
            Ok(value) => value,
            Err(err) => panic!("{script} printed invalid JSON ({err}):\n{out}"),
        }
    }

    fn spawn_and_wait(&mut self) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.work_dir()).context("creating the scratch directory")?;
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).context("creating HOME")?;
        // An empty kubeconfig of our own: with none at all, older kubectl warns on stderr.
        std::fs::write(home.join("kubeconfig"), "apiVersion: v1\nkind: Config\n")
            .context("writing the kubeconfig")?;
        let binary = apiserver_binary();
        let mut command = daemon_command(&binary, &self.log_path)?;
        command
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--insecure-port", &self.port.to_string()]);
        if let Some(etcd) = &self.etcd {
            command.args(["--etcd-servers", &etcd.endpoints().join(",")]);
        }
        if !self.extra_args.iter().any(|a| a == "--secure-port") {
            command.args(["--secure-port", "0"]);
        }
        command.args(&self.extra_args);
        let child = command
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().context("polling kube-apiserver")? {
                    self.child = None;
                    bail!(
                        "kube-apiserver exited during start-up ({status}); log tail:\n{}",
                        log_tail(&self.log_path)
                    );
                }
            }
            let last = match http::request(self.port, Method::Get, "/readyz", None, b"") {
                Ok(r) if r.status == 200 => return Ok(()),
                Ok(r) => format!("/readyz answered {}: {}", r.status, r.text()),
                Err(err) => format!("{err:#}"),
            };
            if Instant::now() >= deadline {
                self.kill();
                bail!(
                    "kube-apiserver was not ready within {READY_TIMEOUT:?}: {last}; log tail:\n{}",
                    log_tail(&self.log_path)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- kube-apiserver log ({}, {:?}) ---\n{}\n--- end of log ---",
                self.log_path.display(),
                self.backend,
                log_tail(&self.log_path)
            );
        }
    }
}

/// A daemon (`kube-controller-manager`, `kube-scheduler`) started by a test, talking to an
/// [`ApiServer`] through its insecure port; killed (by its pid) when dropped, its log tail
/// printed if the test panics.
pub struct Daemon {
    name: &'static str,
    child: Option<Child>,
    log_path: PathBuf,
    _dir: TempDir,
}

/// The controller manager is a [`Daemon`]; `ControllerManager::start` starts one.
pub type ControllerManager = Daemon;

impl Daemon {
    /// Starts the controller manager against `server` with `--leader-elect=false`, no secure
    /// port, and `extra` flags (which may override those).
    pub fn start(server: &ApiServer, extra: &[&str]) -> Daemon {
        Daemon::spawn(
            "kube-controller-manager",
            "controller-manager",
            "KCM_LOG",
            server,
            &["--secure-port=0", "--leader-elect=false"],
            extra,
        )
    }

    /// Starts the scheduler the same way (`--leader-elect=false`, no secure port, `extra`).
    pub fn scheduler(server: &ApiServer, extra: &[&str]) -> Daemon {
        Daemon::spawn(
            "kube-scheduler",
            "scheduler",
            "SCHEDULER_LOG",
            server,
            &["--secure-port=0", "--leader-elect=false"],
            extra,
        )
    }

    /// Starts a kubelet against `server` with a kubeconfig naming it, the simulated runtime
    /// (`--container-runtime-endpoint=sim://`), a root dir of its own in the test's scratch
    /// directory and no healthz port; `extra` (`--flag=value` form) may override those.
    pub fn kubelet(server: &ApiServer, extra: &[&str]) -> Daemon {
        static KUBELETS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = KUBELETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let kubeconfig = server.write_file(
            &format!("kubelet-{n}.kubeconfig"),
            &format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {}\n\
                 users:\n- name: kubelet\n  user: {{}}\ncontexts:\n- name: e2e\n  context:\n    \
                 cluster: e2e\n    user: kubelet\ncurrent-context: e2e\n",
                server.url()
            ),
        );
        let defaults = [
            format!("--kubeconfig={}", kubeconfig.display()),
            format!(
                "--root-dir={}",
                server.work_dir().join(format!("kubelet-{n}")).display()
            ),
            "--container-runtime-endpoint=sim://".to_string(),
            "--healthz-port=0".to_string(),
        ];
        let defaults: Vec<&str> = defaults.iter().map(String::as_str).collect();
        Daemon::spawn(
            "kubelet",
            "kubelet",
            "KUBELET_LOG",
            server,
            &defaults,
            extra,
        )
    }

    fn spawn(
        name: &'static str,
        package: &str,
        log_env: &str,
        server: &ApiServer,
        defaults: &[&str],
        extra: &[&str],
    ) -> Daemon {
        let dir = match tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir()
        {
            Ok(dir) => dir,
            Err(err) => panic!("creating the {name} directory: {err}"),
        };
        let log_path = dir.path().join(format!("{name}.log"));
        let binary = binary(name, package);
        let mut command = match daemon_command(&binary, &log_path) {
            Ok(command) => command,
            Err(err) => panic!("{err:#}"),
        };
        command
            .arg(format!("--master={}", server.url()))
            .args(defaults.iter().filter(|default| {
                let flag = default.split('=').next().unwrap_or_default();
                !extra.iter().any(|e| e.split('=').next() == Some(flag))
            }))
            .arg("--cert-dir")
            .arg(dir.path().join("certs"))
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var(log_env).unwrap_or_else(|_| "info".into()),
            );
        let child = match command.spawn() {
            Ok(child) => child,
            Err(err) => panic!("spawning {}: {err}", binary.display()),
        };
        Daemon {
            name,
            child: Some(child),
            log_path,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- {} log ({}) ---\n{}\n--- end of log ---",
                self.name,
                self.log_path.display(),
                log_tail(&self.log_path)
            );
        }
    }
}

static FAKE_POD_IPS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Marks every pod in `namespace` that is not yet Ready as scheduled on `node`, Running and
/// Ready (the kubelet's job, faked where no kubelet runs). Returns how many it changed.
pub fn make_pods_ready(server: &ApiServer, namespace: &str, node: &str) -> usize {
    let list = server.get_json(Some(namespace), "pods");
    let mut changed = 0;
    for pod in list["items"].as_array().cloned().unwrap_or_default() {
        let ready = pod["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
        if ready || pod["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let now = "2026-01-01T00:00:00Z";
        // Every faked pod gets an address of its own, as a CNI plugin would give.
        let n = FAKE_POD_IPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let existing = pod["status"]["podIP"].as_str().map(str::to_string);
        let ip = existing.unwrap_or_else(|| format!("10.244.{}.{}", (n / 250) % 250, n % 250 + 2));
        let patch = serde_json::json!({
            "status": {
                "phase": "Running",
                "hostIP": "10.0.0.1",
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "startTime": now,
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                    {"type": "Ready", "status": "True", "lastTransitionTime": now},
                ],
            }
        });
        let _ = node;
        let path = format!("/api/v1/namespaces/{namespace}/pods/{name}/status");
        let response = server.http(
            Method::Patch,
            &path,
            Some("application/merge-patch+json"),
            patch.to_string().as_bytes(),
        );
        if response.status == 200 {
            changed += 1;
        }
    }
    changed
}

/// A command for one of our daemons with stdout and stderr appended to `log_path`. Under setpriv
/// the daemon dies with the test thread that spawned it, so an aborted test run leaves nothing
/// behind.
fn daemon_command(binary: &Path, log_path: &Path) -> anyhow::Result<Command> {
    let log = File::options()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let log_err = log.try_clone().context("duplicating the log handle")?;
    let mut command = if Path::new(SETPRIV_BINARY).exists() {
        let mut c = Command::new(SETPRIV_BINARY);
        c.args(["--pdeathsig", "KILL"]).arg(binary);
        c
    } else {
        Command::new(binary)
    };
    command.stdin(Stdio::null()).stdout(log).stderr(log_err);
    Ok(command)
}

/// The `kube-apiserver` binary cargo built, or a panic saying how to build it.
pub fn apiserver_binary() -> PathBuf {
    binary("kube-apiserver", "apiserver")
}

/// A binary of the workspace as cargo built it (debug profile), or a panic saying how to build it.
pub fn binary(name: &str, package: &str) -> PathBuf {
    let workspace = workspace_root();
    let target = target_dir(std::env::var_os("CARGO_TARGET_DIR").as_deref(), &workspace);
    let binary = target.join("debug").join(name);
    if !binary.is_file() {
        panic!(
            "{} does not exist: build it first with `cargo build -p {package}` (with the same \
             CARGO_TARGET_DIR as this test run)",
            binary.display()
        );
    }
    binary
}

/// The workspace this crate belongs to (the parent of `tests/`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Where cargo writes its output: `CARGO_TARGET_DIR` (relative to the workspace when relative)
/// or `<workspace>/target`.
fn target_dir(env: Option<&OsStr>, workspace: &Path) -> PathBuf {
    match env.filter(|v| !v.is_empty()) {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

/// The venv's Python (override with `KUBE_E2E_PYTHON`), or a panic saying how to install it.
pub fn python_binary() -> PathBuf {
    let python = std::env::var_os("KUBE_E2E_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(PYTHON_VENV).join("bin").join("python"));
    if !python.is_file() {
        panic!(
            "{} does not exist: run deploy/install-deps.sh (as root) to create the venv with \
             the Python kubernetes client",
            python.display()
        );
    }
    python
}

/// Runs a command to completion, panicking only when it cannot be started.
pub fn run(mut command: Command) -> Output {
    match command.output() {
        Ok(output) => output,
        Err(err) => panic!("running {command:?}: {err}"),
    }
}

/// Runs a command and asserts exit 0 with nothing on stderr: upstream kubectl against a
/// faithful server prints no warnings, so anything there is a finding.
pub fn run_ok(command: Command) -> Output {
    let description = format!("{:?}", command.get_args().collect::<Vec<_>>());
    let output = run(command);
    if !output.status.success() || !output.stderr.is_empty() {
        panic!(
            "{description} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

/// A command's stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A command's stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Polls `check` every 50 ms until it returns `Some`, panicking with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last few KiB of a log file, for failure messages.
pub fn log_tail(path: &Path) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    read().unwrap_or_else(|err| format!("(could not read {}: {err})", path.display()))
}

/// A free loopback port: bound to port 0 and released, so the server can bind it (a race with
/// other processes is retried by the caller).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding port 0")?;
    Ok(listener
        .local_addr()
        .context("reading the bound port")?
        .port())
}

/// Generates one `#[test]` per backend for each scenario `fn name(backend: Backend)`: modules
/// `embedded` and `etcd` hold the variants, so `cargo test embedded::` selects one backend.
#[macro_export]
macro_rules! backend_tests {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[test]
                $(#[$attr])*
                fn $name() {
                    super::$name($crate::Backend::Embedded)
                }
            )*
        }
        mod etcd {
            $(
                #[test]
                $(#[$attr])*
                fn $name() {
                    super::$name($crate::Backend::Etcd)
                }
            )*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_dir_follows_cargo() {
        let ws = Path::new("/ws");
        let cases: &[(Option<&str>, &str)] = &[
            (None, "/ws/target"),
            (Some(""), "/ws/target"),
            (Some("/abs/t"), "/abs/t"),
            (Some("rel"), "/ws/rel"),
        ];
        for (env, want) in cases {
            assert_eq!(
                target_dir(env.map(OsStr::new), ws),
                PathBuf::from(want),
                "{env:?}"
            );
        }
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("tests").join("Cargo.toml").is_file());
    }

    #[test]
    fn kubectl_versions_point_at_distinct_binaries() {
        let paths = [
            KubectlVersion::V1_27.path(),
            KubectlVersion::V1_32.path(),
            KubectlVersion::V1_33.path(),
        ];
        assert_ne!(paths[0], paths[1]);
        assert_ne!(paths[1], paths[2]);
        assert_ne!(paths[0], paths[2]);
    }

    #[test]
    fn wait_for_returns_the_first_value() {
        let mut n = 0;
        let got = wait_for("n to reach 3", Duration::from_secs(5), || {
            n += 1;
            (n >= 3).then_some(n)
        });
        assert_eq!(got, 3);
    }
}
