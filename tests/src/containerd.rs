//! A real containerd (Debian's 1.6, with runc and Debian's CNI plugins) for one test, living
//! entirely under a temporary directory and inside a network namespace of its own, plus the
//! small OCI images the tests run (built here from Debian's static busybox: no registry is
//! reachable from these machines).
//!
//! [`Containerd::start`] creates a network namespace `kt-<random>` (loopback up), writes a
//! containerd config whose root, state, gRPC socket, runc root, CNI config directory and pod
//! network namespaces are all inside the temporary directory, starts `containerd` in the
//! namespace with `nsenter --net` (not `ip netns exec`: its private mount namespace hides the
//! cgroup mounts and runc then fails with "no cgroup mount found in mountinfo"), waits for the
//! socket, and imports [`BUSYBOX_IMAGE`] and [`PAUSE_IMAGE`] (the sandbox image) into the
//! `k8s.io` namespace with `ctr`.
//!
//! Dropping the value undoes everything it (and containerd for it) made: pod sandboxes are
//! stopped and removed through CRI while containerd still runs (so CNI releases addresses and
//! shims exit cleanly), then containerd is stopped by its pid, and whatever is left is removed
//! by force: runc containers in our runc root, shim processes serving our socket, mounts under
//! the temporary directory (read from /proc/self/mountinfo), CNI result caches of our
//! sandboxes, the network namespace. The directory itself is deleted only once nothing is
//! mounted under it any more.
//!
//! What had to be found on these machines (DESIGN.md has the first three):
//! - `restrict_oom_score_adj = true` (no CAP_SYS_RESOURCE here: runc otherwise fails writing
//!   oom_score_adj);
//! - image names as CRI normalises them (`docker.io/library/...`), and a sandbox image that is
//!   present locally and keeps running;
//! - `nsenter --net`, not `ip netns exec`;
//! - containerd 1.6 reloads the CNI config directory on write, rename and remove events but
//!   ignores creates, so a conflist moved in from another directory is never loaded: see
//!   [`Containerd::write_bridge_conflist`];
//! - the stream server (Exec/Attach/PortForward URLs) listens on 127.0.0.1 of containerd's
//!   network namespace: a client must be in that namespace to use the URLs.
//!
//! Start it from the test's own thread: containerd gets a parent-death signal and dies with
//! the thread that spawned it, so an aborted test run leaves no daemon behind.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::log_tail;

/// The busybox image every test can run (`sh` by default), named as CRI normalises
/// `busybox:test`.
pub const BUSYBOX_IMAGE: &str = "docker.io/library/busybox:test";
/// The sandbox ("pause") image containerd is configured with: the same busybox layer running
/// `sleep` forever.
pub const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";
/// Where Debian's containernetworking-plugins put the CNI plugins.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";
/// The static busybox from Debian's busybox-static.
pub const BUSYBOX_BINARY: &str = "/bin/busybox";

const SETPRIV_BINARY: &str = "/usr/bin/setpriv";
/// Where libcni caches ADD results, keyed by network name and container ID; containerd 1.6 has
/// no setting to move it.
const CNI_CACHE_DIR: &str = "/var/lib/cni/results";
/// How long containerd may take to open its socket.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long each CRI call of the clean-up may take.
const CLEANUP_CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// One image to build: a name (as CRI normalises it) and what it runs.
#[derive(Clone, Copy, Debug)]
pub struct OciImage<'a> {
    pub name: &'a str,
    pub entrypoint: &'a [&'a str],
    pub cmd: &'a [&'a str],
}

/// [`BUSYBOX_IMAGE`]: `sh`, like Docker Hub's busybox.
pub const BUSYBOX: OciImage<'static> = OciImage {
    name: BUSYBOX_IMAGE,
    entrypoint: &[],
    cmd: &["sh"],
};

/// [`PAUSE_IMAGE`]: sleeps forever (containerd stops sandboxes with SIGKILL).
pub const PAUSE: OciImage<'static> = OciImage {
    name: PAUSE_IMAGE,
    entrypoint: &["/bin/sleep", "2147483647"],
    cmd: &[],
};

/// A containerd started for one test; see the module documentation.
pub struct Containerd {
    child: Option<Child>,
    netns: NetNs,
    socket: PathBuf,
    log_path: PathBuf,
    /// Makes containerd's streaming server (inside `netns`) reachable on the host's loopback.
    stream_forwarder: Option<StreamForwarder>,
    // Last: dropped (or kept, when mounts remain) after everything else is undone.
    dir: Option<TempDir>,
}

/// What a [`Containerd`] made, to check after dropping it that none of it is left.
#[derive(Clone, Debug)]
pub struct Footprint {
    pub dir: PathBuf,
    pub netns: String,
    pub socket: PathBuf,
}

impl Containerd {
    /// Starts containerd with the test images imported, panicking (with its log) on failure.
    pub fn start() -> Containerd {
        match Containerd::try_start() {
            Ok(containerd) => containerd,
            Err(err) => panic!("starting containerd: {err:#}"),
        }
    }

    /// Starts containerd in a fresh network namespace and imports [`BUSYBOX`] and [`PAUSE`].
    pub fn try_start() -> anyhow::Result<Containerd> {
        for (binary, package) in [
            ("containerd", "containerd"),
            ("ctr", "containerd"),
            ("runc", "runc"),
            ("nsenter", "util-linux"),
            ("ip", "iproute2"),
        ] {
            if which(binary).is_none() {
                bail!("{binary} is not installed (Debian package {package}): run deploy/install-deps.sh");
            }
        }
        for path in [BUSYBOX_BINARY, &format!("{CNI_BIN_DIR}/bridge")] {
            if !Path::new(path).exists() {
                bail!("{path} is missing: run deploy/install-deps.sh");
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("kt-containerd-")
            .tempdir()
            .context("creating the containerd directory")?;
        let netns = NetNs::create()?;
        let socket = dir.path().join("containerd.sock");
        let log_path = dir.path().join("containerd.log");
        for sub in ["root", "state", "net.d", "runc", "pods"] {
            std::fs::create_dir_all(dir.path().join(sub))
                .with_context(|| format!("creating {sub} in {}", dir.path().display()))?;
        }
        let stream_forwarder = StreamForwarder::start(&netns.path())?;
        let config_path = dir.path().join("config.toml");
        std::fs::write(
            &config_path,
            config_toml(dir.path(), PAUSE_IMAGE, stream_forwarder.port),
        )
        .with_context(|| format!("writing {}", config_path.display()))?;

        let mut containerd = Containerd {
            child: None,
            netns,
            socket,
            log_path,
            stream_forwarder: Some(stream_forwarder),
            dir: Some(dir),
        };
        containerd.spawn_daemon()?;
        containerd.import_images(&[BUSYBOX, PAUSE])?;
        Ok(containerd)
    }

    /// Starts the daemon (appending to its log) and waits for its socket.
    fn spawn_daemon(&mut self) -> anyhow::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening {}", self.log_path.display()))?;
        let log_err = log.try_clone().context("duplicating the log handle")?;
        let mut command = if Path::new(SETPRIV_BINARY).exists() {
            let mut c = Command::new(SETPRIV_BINARY);
            c.args(["--pdeathsig", "KILL", "nsenter"]);
            c
        } else {
            Command::new("nsenter")
        };
        // nsenter with only --net does not fork: the pid we get is containerd's.
        command
            .arg(format!("--net={}", self.netns.path().display()))
            .arg("containerd")
            .arg("--config")
            .arg(self.dir().join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        self.child = Some(command.spawn().context("spawning containerd")?);
        self.wait_for_socket()
            .with_context(|| format!("containerd log:\n{}", log_tail(&self.log_path)))
    }

    /// Kills containerd with SIGKILL, as a crash would: its shims and containers keep running
    /// and the socket stops answering (CRI calls fail with Unavailable).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts containerd again over the same directories (after [`Containerd::kill`], or
    /// killing it first): it recovers its sandboxes and containers from its state.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn_daemon()
    }

    fn wait_for_socket(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if UnixStream::connect(&self.socket).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().context("waiting for containerd")? {
                    bail!("containerd exited at start ({status})");
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "containerd did not open {} within {START_TIMEOUT:?}",
                    self.socket.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn dir(&self) -> &Path {
        match &self.dir {
            Some(dir) => dir.path(),
            None => Path::new("/nonexistent"),
        }
    }

    /// The gRPC socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `unix://<socket>`, as `--container-runtime-endpoint` takes it.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The network namespace containerd (and its host-network pods, and the CNI bridge) live in.
    pub fn netns(&self) -> &str {
        &self.netns.name
    }

    /// `/var/run/netns/<name>`, for `nsenter --net=`.
    pub fn netns_path(&self) -> PathBuf {
        self.netns.path()
    }

    /// The CNI configuration directory containerd watches (empty at start: NetworkReady is
    /// false until a conflist is written there).
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.dir().join("net.d")
    }

    /// A directory for pod log directories (`PodSandboxConfig.log_directory`).
    pub fn pods_log_dir(&self) -> PathBuf {
        self.dir().join("pods")
    }

    /// The temporary directory everything lives in.
    pub fn root_dir(&self) -> &Path {
        self.dir()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What to look for after the drop.
    pub fn footprint(&self) -> Footprint {
        Footprint {
            dir: self.dir().to_path_buf(),
            netns: self.netns.name.clone(),
            socket: self.socket.clone(),
        }
    }

    /// A `ctr` command against this containerd in the `k8s.io` namespace (CRI's).
    pub fn ctr(&self) -> Command {
        let mut command = Command::new("ctr");
        command
            .arg("--address")
            .arg(&self.socket)
            .args(["--namespace", "k8s.io"])
            .stdin(Stdio::null());
        command
    }

    /// A command run inside containerd's network namespace (e.g. curl to a pod IP).
    pub fn in_netns(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", self.netns.path().display()))
            .arg(program)
            .stdin(Stdio::null());
        command
    }

    /// Builds `images` (one busybox layer each) into an OCI archive and imports it with
    /// `ctr images import`, so CRI finds them by name.
    pub fn import_images(&self, images: &[OciImage<'_>]) -> anyhow::Result<()> {
        let archive = self.dir().join(format!("images-{}.tar", unique_suffix()));
        write_image_archive(&archive, images)?;
        let mut ctr = self.ctr();
        ctr.args(["images", "import"]).arg(&archive);
        let output = ctr.output().context("running ctr images import")?;
        let _ = std::fs::remove_file(&archive);
        if !output.status.success() {
            bail!(
                "ctr images import failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Writes a CNI conflist (bridge `cni0` with host-local IPAM over `subnet`, then portmap)
    /// into [`Containerd::cni_conf_dir`]. The IPAM state lives under the temporary directory
    /// (host-local's `dataDir`), not in the host's /var/lib/cni/networks.
    pub fn write_bridge_conflist(&self, subnet: &str) -> anyhow::Result<PathBuf> {
        let conflist = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "kt-bridge",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": true,
                    "ipMasq": true,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": subnet}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": self.ipam_dir(),
                    }
                },
                {"type": "portmap", "capabilities": {"portMappings": true}}
            ]
        });
        let path = self.cni_conf_dir().join("10-kt-bridge.conflist");
        // containerd must never read half a file, and containerd 1.6 reloads its CNI config
        // only on write, rename and remove events in the directory, ignoring creates: a file
        // renamed in from elsewhere arrives as a create and is never loaded. A temporary name
        // in the same directory (libcni reads only *.conf, *.conflist, *.json) renamed over
        // the target raises a rename event for the old name, and the reload sees the whole
        // new file.
        let tmp = self.cni_conf_dir().join(".10-kt-bridge.conflist.tmp");
        let text = serde_json::to_string_pretty(&conflist).context("encoding the conflist")?;
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
        Ok(path)
    }

    /// host-local's state for [`Containerd::write_bridge_conflist`]: one file per leased
    /// address under `<dir>/kt-bridge/`.
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir().join("cni-ipam")
    }

    /// Asks containerd to stop and remove every pod sandbox, through CRI, from a thread of its
    /// own (callable from inside or outside a Tokio runtime).
    fn remove_sandboxes(&self) -> anyhow::Result<BTreeSet<String>> {
        let endpoint = self.endpoint();
        let worker = std::thread::spawn(move || -> anyhow::Result<BTreeSet<String>> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("building a runtime for the clean-up")?;
            rt.block_on(async move {
                use cri::v1::{
                    ListPodSandboxRequest, RemovePodSandboxRequest, StopPodSandboxRequest,
                };
                use cri::RuntimeService;
                let runtime =
                    cri::RemoteRuntime::new(&endpoint)?.with_timeout(CLEANUP_CALL_TIMEOUT);
                let sandboxes = runtime
                    .list_pod_sandbox(ListPodSandboxRequest::default())
                    .await?
                    .items;
                let mut ids = BTreeSet::new();
                for sandbox in sandboxes {
                    ids.insert(sandbox.id.clone());
                    // Stop first: that is what runs CNI DEL and releases the address.
                    if let Err(err) = runtime
                        .stop_pod_sandbox(StopPodSandboxRequest {
                            pod_sandbox_id: sandbox.id.clone(),
                        })
                        .await
                    {
                        eprintln!(
                            "containerd clean-up: stopping sandbox {}: {err}",
                            sandbox.id
                        );
                    }
                    if let Err(err) = runtime
                        .remove_pod_sandbox(RemovePodSandboxRequest {
                            pod_sandbox_id: sandbox.id.clone(),
                        })
                        .await
                    {
                        eprintln!(
                            "containerd clean-up: removing sandbox {}: {err}",
                            sandbox.id
                        );
                    }
                }
                Ok(ids)
            })
        });
        match worker.join() {
            Ok(result) => result,
            Err(_) => bail!("the clean-up thread panicked"),
        }
    }

    /// Stops containerd: SIGTERM, then SIGKILL after a few seconds.
    fn stop_daemon(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Removes by force what a graceful clean-up left: runc containers, shims, shim sockets,
    /// CNI caches of our sandboxes and mounts. Returns the mounts still left.
    fn force_cleanup(&self, mut sandbox_ids: BTreeSet<String>) -> Vec<PathBuf> {
        let dir = self.dir().to_path_buf();
        // Shim sockets live outside our directory (/run/containerd/s/<hash>); the bundles
        // record where.
        let mut shim_sockets = Vec::new();
        let tasks = dir.join("state/io.containerd.runtime.v2.task");
        for bundle in read_dirs(&tasks).iter().flat_map(|ns| read_dirs(ns)) {
            if let Ok(address) = std::fs::read_to_string(bundle.join("address")) {
                if let Some(path) = address.trim().strip_prefix("unix://") {
                    shim_sockets.push(PathBuf::from(path));
                }
            }
        }
        for runc_root in read_dirs(&dir.join("runc")) {
            let list = Command::new("runc")
                .arg("--root")
                .arg(&runc_root)
                .args(["list", "-q"])
                .stderr(Stdio::null())
                .output();
            let ids: Vec<String> = list
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            for id in ids.into_iter().filter(|id| !id.is_empty()) {
                let _ = Command::new("runc")
                    .arg("--root")
                    .arg(&runc_root)
                    .args(["delete", "--force", &id])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                sandbox_ids.insert(id);
            }
        }
        let shims = processes_with_arg(&self.socket);
        for pid in &shims {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while shims
            .iter()
            .any(|pid| Path::new(&format!("/proc/{pid}")).exists())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        for socket in shim_sockets {
            let _ = std::fs::remove_file(socket);
        }
        for id in &sandbox_ids {
            remove_cni_cache(id);
        }
        unmount_under(&dir)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- containerd log ({}) ---\n{}\n--- end of log ---",
                self.log_path.display(),
                log_tail(&self.log_path)
            );
        }
        let running = self
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        let sandbox_ids = if running {
            self.remove_sandboxes().unwrap_or_else(|err| {
                eprintln!("containerd clean-up through CRI failed: {err:#}");
                BTreeSet::new()
            })
        } else {
            BTreeSet::new()
        };
        self.stop_daemon();
        self.stream_forwarder.take();
        let left = self.force_cleanup(sandbox_ids);
        self.netns.delete();
        if let Some(dir) = self.dir.take() {
            if left.is_empty() {
                let _ = dir.close();
            } else {
                // Deleting a directory with something mounted below would delete inside the
                // mounted filesystem: keep it.
                let kept = dir.keep();
                eprintln!(
                    "containerd clean-up: {} still has mounts ({left:?}); left in place",
                    kept.display()
                );
            }
        }
    }
}

impl Footprint {
    /// What of it is still there: mounts under the directory, the directory, the network
    /// namespace, processes naming the socket.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        for mount in mounts_under(&self.dir) {
            left.push(format!("mount {}", mount.display()));
        }
        if self.dir.exists() {
            left.push(format!("directory {}", self.dir.display()));
        }
        if Path::new("/var/run/netns").join(&self.netns).exists() {
            left.push(format!("network namespace {}", self.netns));
        }
        for pid in processes_with_arg(&self.socket) {
            left.push(format!("process {pid} ({})", cmdline(pid).join(" ")));
        }
        left
    }
}

/// The containerd configuration (version 2 schema, containerd 1.6) for a daemon living in
/// `dir`, with `sandbox_image` as the pause image and the streaming server (exec, attach,
/// port-forward) on `127.0.0.1:<stream_port>` inside its network namespace.
pub fn config_toml(dir: &Path, sandbox_image: &str, stream_port: u16) -> String {
    let d = dir.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
oom_score = 0
# Snapshotters that cannot work here and only add errors to the log.
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{d}/containerd.sock"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{d}/opt"

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{sandbox_image}"
    # No CAP_SYS_RESOURCE here: without this runc fails writing oom_score_adj.
    restrict_oom_score_adj = true
    # Pod network namespaces under state/ rather than the host's /var/run/netns.
    netns_mounts_under_state_dir = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "{stream_port}"
    enable_selinux = false

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{CNI_BIN_DIR}"
      conf_dir = "{d}/net.d"
      max_conf_num = 1

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          # runc's state (one directory per namespace) inside ours.
          Root = "{d}/runc"
          SystemdCgroup = false
"#
    )
}

// --- OCI images -------------------------------------------------------------------------------

/// Writes an OCI image layout archive holding `images`, all on one layer made of
/// [`BUSYBOX_BINARY`] and a symlink per applet in /bin, plus /etc/passwd and /etc/group for
/// root and the usual empty directories. Each image is named by an `io.containerd.image.name`
/// annotation, which `ctr images import` uses as the image's name.
pub fn write_image_archive(path: &Path, images: &[OciImage<'_>]) -> anyhow::Result<()> {
    let layer = busybox_layer()?;
    let layer_digest = sha256_hex(&layer);
    let arch = oci_arch();
    let mut blobs: Vec<(String, Vec<u8>)> = vec![(layer_digest.clone(), layer.clone())];
    let mut manifests = Vec::new();
    for image in images {
        let mut config = serde_json::json!({
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "WorkingDir": "/",
        });
        if !image.entrypoint.is_empty() {
            config["Entrypoint"] = serde_json::json!(image.entrypoint);
        }
        if !image.cmd.is_empty() {
            config["Cmd"] = serde_json::json!(image.cmd);
        }
        let config = serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "kube-rs e2e harness"}],
        });
        let config = serde_json::to_vec(&config).context("encoding an image config")?;
        let config_digest = sha256_hex(&config);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": format!("sha256:{config_digest}"),
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": format!("sha256:{layer_digest}"),
                "size": layer.len(),
            }],
        });
        let manifest = serde_json::to_vec(&manifest).context("encoding a manifest")?;
        let manifest_digest = sha256_hex(&manifest);
        let tag = image
            .name
            .rsplit_once(':')
            .map(|(_, t)| t)
            .unwrap_or("latest");
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_digest}"),
            "size": manifest.len(),
            "platform": {"architecture": arch, "os": "linux"},
            "annotations": {
                "io.containerd.image.name": image.name,
                "org.opencontainers.image.ref.name": tag,
            },
        }));
        blobs.push((config_digest, config));
        blobs.push((manifest_digest, manifest));
    }
    let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
    let index = serde_json::to_vec(&index).context("encoding index.json")?;

    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut archive = tar::Builder::new(file);
    append_file(
        &mut archive,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        0o644,
    )?;
    append_file(&mut archive, "index.json", &index, 0o644)?;
    append_dir(&mut archive, "blobs/")?;
    append_dir(&mut archive, "blobs/sha256/")?;
    let mut seen = BTreeSet::new();
    for (digest, bytes) in &blobs {
        if seen.insert(digest.clone()) {
            append_file(
                &mut archive,
                &format!("blobs/sha256/{digest}"),
                bytes,
                0o644,
            )?;
        }
    }
    let mut file = archive
        .into_inner()
        .context("finishing the image archive")?;
    file.flush().context("writing the image archive")?;
    Ok(())
}

/// The layer: an uncompressed tar of the busybox root filesystem, byte-for-byte reproducible
/// (fixed owners and times), so every image built from it shares one layer digest.
fn busybox_layer() -> anyhow::Result<Vec<u8>> {
    let busybox = std::fs::read(BUSYBOX_BINARY)
        .with_context(|| format!("reading {BUSYBOX_BINARY} (Debian package busybox-static)"))?;
    let list = Command::new(BUSYBOX_BINARY)
        .arg("--list")
        .output()
        .context("running busybox --list")?;
    if !list.status.success() {
        bail!("busybox --list failed ({})", list.status);
    }
    let applets: BTreeSet<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
        .map(str::to_string)
        .collect();

    let mut layer = tar::Builder::new(Vec::new());
    for dir in [
        "bin/", "dev/", "etc/", "proc/", "root/", "sys/", "usr/", "var/", "www/",
    ] {
        append_dir(&mut layer, dir)?;
    }
    let mut tmp = tar::Header::new_gnu();
    tmp.set_entry_type(tar::EntryType::Directory);
    tmp.set_mode(0o1777);
    set_owner_and_time(&mut tmp);
    tmp.set_size(0);
    layer
        .append_data(&mut tmp, "tmp/", std::io::empty())
        .context("adding tmp/")?;
    append_file(&mut layer, "bin/busybox", &busybox, 0o755)?;
    for applet in &applets {
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_mode(0o777);
        set_owner_and_time(&mut link);
        link.set_size(0);
        layer
            .append_link(&mut link, format!("bin/{applet}"), "busybox")
            .with_context(|| format!("adding bin/{applet}"))?;
    }
    append_file(
        &mut layer,
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        0o644,
    )?;
    append_file(
        &mut layer,
        "etc/group",
        b"root:x:0:\nnogroup:x:65534:\n",
        0o644,
    )?;
    layer.into_inner().context("finishing the layer")
}

fn set_owner_and_time(header: &mut tar::Header) {
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
}

fn append_dir<W: Write>(archive: &mut tar::Builder<W>, path: &str) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    set_owner_and_time(&mut header);
    header.set_size(0);
    archive
        .append_data(&mut header, path, std::io::empty())
        .with_context(|| format!("adding {path}"))
}

fn append_file<W: Write>(
    archive: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
    mode: u32,
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(mode);
    set_owner_and_time(&mut header);
    header.set_size(bytes.len() as u64);
    archive
        .append_data(&mut header, path, bytes)
        .with_context(|| format!("adding {path}"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The OCI name of this machine's architecture.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

// --- Network namespace ------------------------------------------------------------------------

/// A network namespace made with `ip netns add`, deleted on drop.
struct NetNs {
    name: String,
    deleted: bool,
}

impl NetNs {
    fn create() -> anyhow::Result<NetNs> {
        let name = format!("kt-{}", unique_suffix());
        let added = run_quiet(Command::new("ip").args(["netns", "add", &name]))?;
        if !added.status.success() {
            bail!(
                "ip netns add {name} failed: {}",
                String::from_utf8_lossy(&added.stderr)
            );
        }
        let netns = NetNs {
            name,
            deleted: false,
        };
        let lo =
            run_quiet(Command::new("ip").args(["-n", &netns.name, "link", "set", "lo", "up"]))?;
        if !lo.status.success() {
            bail!(
                "bringing lo up in {}: {}",
                netns.name,
                String::from_utf8_lossy(&lo.stderr)
            );
        }
        Ok(netns)
    }

    fn path(&self) -> PathBuf {
        Path::new("/var/run/netns").join(&self.name)
    }

    fn delete(&mut self) {
        if !self.deleted {
            self.deleted = true;
            let _ = Command::new("ip")
                .args(["netns", "delete", &self.name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        self.delete();
    }
}

// --- The streaming server's port on the host -------------------------------------------------

/// containerd's CRI streaming server (the URLs Exec, Attach and PortForward answer) listens on
/// `127.0.0.1:<port>` inside the test's network namespace, where the kubelet, on the host, cannot
/// reach it. This forwards the same port on the host's loopback to it: a thread accepts on the
/// host, and a thread that moved into the namespace (`setns`) makes the inner connections (a
/// socket stays in the namespace it was made in, whichever thread then uses it).
struct StreamForwarder {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl StreamForwarder {
    fn start(netns: &Path) -> anyhow::Result<StreamForwarder> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .context("binding the streaming forwarder on the host's loopback")?;
        let port = listener.local_addr()?.port();
        let namespace =
            File::open(netns).with_context(|| format!("opening {}", netns.display()))?;
        let (to_dial, dial) = std::sync::mpsc::channel::<std::net::TcpStream>();
        let (entered_tx, entered) = std::sync::mpsc::channel::<Result<(), String>>();
        std::thread::Builder::new()
            .name("stream-dialer".into())
            .spawn(move || {
                let moved = rustix::thread::move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&namespace),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                );
                let ok = moved.is_ok();
                let _ = entered_tx.send(moved.map_err(|e| e.to_string()));
                if !ok {
                    return;
                }
                for outer in dial {
                    let Ok(inner) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                        continue;
                    };
                    splice(outer, inner);
                }
            })
            .context("spawning the streaming dialer")?;
        entered
            .recv()
            .context("the streaming dialer ended")?
            .map_err(|e| anyhow::anyhow!("setns into {}: {e}", netns.display()))?;
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let acceptor = std::thread::Builder::new()
            .name("stream-acceptor".into())
            .spawn(move || {
                for outer in listener.incoming() {
                    if stopped.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(outer) = outer {
                        if to_dial.send(outer).is_err() {
                            return;
                        }
                    }
                }
            })
            .context("spawning the streaming acceptor")?;
        Ok(StreamForwarder {
            port,
            stop,
            acceptor: Some(acceptor),
        })
    }
}

impl Drop for StreamForwarder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the acceptor so that it sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Copies both ways between two connections, each direction on its own thread, passing on
/// half-closes.
fn splice(a: std::net::TcpStream, b: std::net::TcpStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let pump = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
        move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(std::net::Shutdown::Write);
        }
    };
    std::thread::spawn(pump(a, b2));
    std::thread::spawn(pump(b, a2));
}

// --- Processes, mounts, files -----------------------------------------------------------------

/// Pids of the processes with `arg` among their arguments (containerd's shims name its socket
/// with `-address`).
fn processes_with_arg(arg: &Path) -> Vec<u32> {
    let arg = arg.as_os_str().to_string_lossy();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| cmdline(*pid).iter().any(|a| *a == arg))
        .collect()
}

fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            bytes
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Mount points at or under `dir`, deepest (latest) first, from /proc/self/mountinfo.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut mounts: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|point| point.starts_with(dir))
        .collect();
    mounts.reverse();
    mounts
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let octal = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(value) = u8::from_str_radix(octal, 8) {
                out.push(value);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts everything under `dir` (lazily when a plain unmount is refused); returns what is
/// still mounted afterwards.
fn unmount_under(dir: &Path) -> Vec<PathBuf> {
    for _ in 0..3 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return mounts;
        }
        for mount in mounts {
            let plain = Command::new("umount")
                .arg(&mount)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if !plain.is_ok_and(|s| s.success()) {
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(&mount)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
    mounts_under(dir)
}

/// libcni's cached results for a sandbox: `<network>-<sandbox id>-<interface>`.
fn remove_cni_cache(sandbox_id: &str) {
    let Ok(entries) = std::fs::read_dir(CNI_CACHE_DIR) else {
        return;
    };
    let marker = format!("-{sandbox_id}-");
    for entry in entries.filter_map(Result::ok) {
        if entry.file_name().to_string_lossy().contains(&marker) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn read_dirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

fn which(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
}

fn run_quiet(command: &mut Command) -> anyhow::Result<Output> {
    command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))
}

/// Eight hex digits that differ between calls, processes and runs.
fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seed = format!(
        "{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    sha256_hex(seed.as_bytes())[..8].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mountinfo(r"/tmp/tab\011x\134y"), "/tmp/tab\tx\\y");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/end\04"), r"/end\04");
    }

    #[test]
    fn suffixes_differ() {
        let a = unique_suffix();
        let b = unique_suffix();
        assert_ne!(a, b);
        assert_eq!(a.len(), 8);
    }

    #[test]
    fn the_config_keeps_everything_in_the_directory() {
        let config = config_toml(Path::new("/tmp/kt-x"), PAUSE_IMAGE, 41234);
        for want in [
            r#"root = "/tmp/kt-x/root""#,
            r#"state = "/tmp/kt-x/state""#,
            r#"address = "/tmp/kt-x/containerd.sock""#,
            r#"conf_dir = "/tmp/kt-x/net.d""#,
            r#"Root = "/tmp/kt-x/runc""#,
            "restrict_oom_score_adj = true",
            r#"sandbox_image = "registry.k8s.io/pause:3.10""#,
            r#"stream_server_port = "41234""#,
        ] {
            assert!(config.contains(want), "{want} missing from:\n{config}");
        }
    }

    #[test]
    fn image_archives_are_reproducible() {
        if !Path::new(BUSYBOX_BINARY).exists() {
            eprintln!("skipped: {BUSYBOX_BINARY} is not installed");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
        write_image_archive(&a, &[BUSYBOX, PAUSE]).expect("first archive");
        write_image_archive(&b, &[BUSYBOX, PAUSE]).expect("second archive");
        let a = std::fs::read(a).expect("read a");
        assert_eq!(a, std::fs::read(b).expect("read b"));
        let mut archive = tar::Archive::new(a.as_slice());
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .filter_map(Result::ok)
            .filter_map(|e| e.path().ok().map(|p| p.display().to_string()))
            .collect();
        assert!(names.contains(&"index.json".to_string()), "{names:?}");
        assert!(names.contains(&"oci-layout".to_string()), "{names:?}");
        // One shared layer, a config and a manifest per image.
        let blobs = names
            .iter()
            .filter(|n| n.starts_with("blobs/sha256/") && n.len() > 13);
        assert_eq!(blobs.count(), 5, "{names:?}");
    }
}
