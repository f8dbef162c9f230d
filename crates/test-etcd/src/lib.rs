//! Real etcd processes for tests and benchmarks: one member ([`Etcd::start`]), one member behind
//! mutual TLS ([`Etcd::start_tls`]) or a static n-member cluster ([`EtcdCluster::start`]).
//!
//! Every member runs the machine's `/usr/bin/etcd` (Debian's 3.4) in its own temporary
//! directory, on free loopback ports, with its log written to a file there (never to the test's
//! output; [`Etcd::log_path`] says where, and start-up failures quote its tail). Members are
//! started with:
//!
//! - `--experimental-watch-progress-notify-interval=500ms`, so watch progress notifications
//!   (the apiserver's bookmarks) arrive within a test's patience rather than every 10 minutes;
//! - `--max-request-bytes=2MiB`, so that a value of exactly the storage layer's own limit
//!   (1.5 MiB) plus its key still fits in one request, and the storage layer's limit is the one
//!   tests see;
//! - a plain-HTTP `--listen-metrics-urls`, whose `/health` is how readiness is polled even when
//!   the client port speaks TLS.
//!
//! Processes are owned by the value that started them: dropping it SIGKILLs and reaps every
//! member and then removes the directory. When `/usr/bin/setpriv` exists, etcd is spawned under
//! `setpriv --pdeathsig KILL`, so that an aborted test run does not leak etcd processes either.
//! The death signal fires when the *thread* that spawned etcd exits, not the process, so every
//! etcd is spawned by one spawner thread that lives as long as the test process: starting is
//! then safe from any thread, including a short-lived `spawn_blocking` one.
//!
//! Starting blocks (for about a second per member) while etcd comes up; from async code, call
//! it through `tokio::task::spawn_blocking`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use tempfile::TempDir;

const ETCD_BINARY: &str = "/usr/bin/etcd";
const SETPRIV_BINARY: &str = "/usr/bin/setpriv";
/// How long a member (or a whole cluster) may take to report healthy.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How many times a start is retried with fresh ports when a port was taken in between.
const START_ATTEMPTS: usize = 3;
const LOG_TAIL_BYTES: u64 = 4096;

/// One etcd member, killed and deleted when dropped.
pub struct Etcd {
    member: Member,
    // Declared after `member` so the directory outlives the process that writes into it.
    dir: TempDir,
}

/// The client-side TLS material for an etcd started with [`Etcd::start_tls`], as PEM files.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The CA that signed etcd's serving certificate (and the client certificate).
    pub ca: PathBuf,
    /// A client certificate etcd accepts.
    pub cert: PathBuf,
    /// The client certificate's private key.
    pub key: PathBuf,
}

/// A statically bootstrapped cluster of real etcd members, all killed when dropped.
pub struct EtcdCluster {
    members: Vec<Member>,
    dir: TempDir,
}

impl Etcd {
    /// Starts one plain-HTTP member and waits until it is healthy.
    pub fn start() -> anyhow::Result<Etcd> {
        let dir = new_tempdir("test-etcd-")?;
        let mut member = start_cluster_with_retries(dir.path(), 1, None)?;
        let member = member.pop().ok_or_else(|| anyhow!("no member started"))?;
        Ok(Etcd { member, dir })
    }

    /// Starts one member that serves clients over TLS and requires a client certificate
    /// signed by a freshly generated CA; returns it with the client's certificate files.
    pub fn start_tls() -> anyhow::Result<(Etcd, TlsFiles)> {
        let dir = new_tempdir("test-etcd-tls-")?;
        let pki = write_pki(dir.path())?;
        let mut member = start_cluster_with_retries(dir.path(), 1, Some(&pki))?;
        let member = member.pop().ok_or_else(|| anyhow!("no member started"))?;
        Ok((Etcd { member, dir }, pki.client))
    }

    /// The client URL(s) to connect to (`http://127.0.0.1:<port>`, or `https://` for TLS).
    pub fn endpoints(&self) -> Vec<String> {
        vec![self.member.client_url.clone()]
    }

    /// The etcd process id.
    pub fn pid(&self) -> Option<u32> {
        self.member.pid()
    }

    /// The file etcd logs into.
    pub fn log_path(&self) -> &Path {
        &self.member.log_path
    }

    /// The temporary directory holding the data directory, log and certificates.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.member.stop();
    }
}

impl EtcdCluster {
    /// Starts an `n`-member cluster (static bootstrap) and waits until every member is healthy,
    /// that is, until it has a leader.
    pub fn start(n: usize) -> anyhow::Result<EtcdCluster> {
        if n == 0 {
            bail!("a cluster needs at least one member");
        }
        let dir = new_tempdir("test-etcd-cluster-")?;
        let members = start_cluster_with_retries(dir.path(), n, None)?;
        Ok(EtcdCluster { members, dir })
    }

    /// Every member's client URL, in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Member `i`'s client URL.
    pub fn endpoint(&self, i: usize) -> anyhow::Result<String> {
        Ok(self.member(i)?.client_url.clone())
    }

    /// How many members the cluster was started with (killed ones included).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: a cluster has at least one member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Member `i`'s process id, if it is running.
    pub fn pid(&self, i: usize) -> anyhow::Result<Option<u32>> {
        Ok(self.member(i)?.pid())
    }

    /// Member `i`'s log file.
    pub fn log_path(&self, i: usize) -> anyhow::Result<PathBuf> {
        Ok(self.member(i)?.log_path.clone())
    }

    /// SIGKILLs member `i` and waits until it is gone. Its data directory stays, so it can be
    /// brought back with [`EtcdCluster::restart`].
    pub fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        let member = self.member_mut(i)?;
        let child = member
            .child
            .as_mut()
            .ok_or_else(|| anyhow!("member {i} is not running"))?;
        child
            .kill()
            .with_context(|| format!("killing etcd member {i}"))?;
        child
            .wait()
            .with_context(|| format!("waiting for etcd member {i} to exit"))?;
        member.child = None;
        Ok(())
    }

    /// Starts a killed member `i` again from its data directory, on the same ports, and waits
    /// until it is healthy.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        let member = self.member_mut(i)?;
        if member.child.is_some() {
            bail!("member {i} is still running");
        }
        member.spawn()?;
        let deadline = Instant::now() + START_TIMEOUT;
        wait_healthy(member, deadline)
    }

    /// The member that is currently the raft leader, as its own metrics report it; `None`
    /// while there is none (for example during an election) or no member answers.
    pub fn leader(&self) -> Option<usize> {
        self.members.iter().position(|m| {
            m.child.is_some()
                && http_get(m.metrics_addr, "/metrics")
                    .map(|(ok, body)| ok && body.lines().any(|l| l == "etcd_server_is_leader 1"))
                    .unwrap_or(false)
        })
    }

    /// Waits up to `timeout` for a leader and returns it.
    pub fn wait_for_leader(&self, timeout: Duration) -> anyhow::Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(leader) = self.leader() {
                return Ok(leader);
            }
            if Instant::now() >= deadline {
                bail!("no etcd member became leader within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The temporary directory holding every member's data directory and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn member(&self, i: usize) -> anyhow::Result<&Member> {
        let n = self.members.len();
        self.members
            .get(i)
            .ok_or_else(|| anyhow!("no member {i} in a {n}-member cluster"))
    }

    fn member_mut(&mut self, i: usize) -> anyhow::Result<&mut Member> {
        let n = self.members.len();
        self.members
            .get_mut(i)
            .ok_or_else(|| anyhow!("no member {i} in a {n}-member cluster"))
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            member.stop();
        }
    }
}

/// One etcd process and everything needed to (re)start it.
struct Member {
    name: String,
    args: Vec<String>,
    client_url: String,
    metrics_addr: SocketAddr,
    log_path: PathBuf,
    child: Option<Child>,
}

impl Member {
    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening {}", self.log_path.display()))?;
        let log_err = log.try_clone().context("duplicating the log file handle")?;
        let mut command = if Path::new(SETPRIV_BINARY).exists() {
            let mut c = Command::new(SETPRIV_BINARY);
            c.args(["--pdeathsig", "KILL", ETCD_BINARY]);
            c
        } else {
            Command::new(ETCD_BINARY)
        };
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = spawn_from_spawner_thread(command)
            .with_context(|| format!("spawning {ETCD_BINARY} for member {}", self.name))?;
        tracing::debug!(
            member = %self.name,
            pid = child.id(),
            client_url = %self.client_url,
            log = %self.log_path.display(),
            "started etcd"
        );
        self.child = Some(child);
        Ok(())
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills and reaps the process; errors are ignored because this runs in `Drop`.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Returns an error if the process has exited.
    fn check_running(&mut self) -> anyhow::Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("member {} is not running", self.name);
        };
        if let Some(status) = child.try_wait().context("polling the etcd process")? {
            self.child = None;
            bail!(
                "etcd member {} exited during start-up ({status}); log tail:\n{}",
                self.name,
                log_tail(&self.log_path)
            );
        }
        Ok(())
    }
}

/// A request to the spawner thread: the command, and where to send the child back.
type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `command` from a thread that lives until the process exits, so that
/// `--pdeathsig` (tied to the spawning thread) fires only when the test process dies.
fn spawn_from_spawner_thread(command: Command) -> anyhow::Result<Child> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<SpawnRequest>();
        let started = std::thread::Builder::new()
            .name("test-etcd-spawner".to_string())
            .spawn(move || {
                for (mut command, reply) in incoming {
                    let _ = reply.send(command.spawn());
                }
            });
        if let Err(err) = started {
            tracing::warn!(%err, "cannot start the etcd spawner thread");
        }
        requests
    });
    let (reply, answer) = mpsc::channel();
    spawner
        .send((command, reply))
        .map_err(|_| anyhow!("the etcd spawner thread is gone"))?;
    let child = answer
        .recv()
        .map_err(|_| anyhow!("the etcd spawner thread did not answer"))??;
    Ok(child)
}

/// Serving and client certificates for a TLS member.
struct Pki {
    server_cert: PathBuf,
    server_key: PathBuf,
    client: TlsFiles,
}

fn new_tempdir(prefix: &str) -> anyhow::Result<TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("creating a temporary directory for etcd")
}

/// Starts the members, retrying with fresh ports when one was taken between choosing it and
/// etcd binding it (ports are chosen by binding port 0 and releasing it, which can race).
fn start_cluster_with_retries(
    dir: &Path,
    n: usize,
    tls: Option<&Pki>,
) -> anyhow::Result<Vec<Member>> {
    let mut last_err = None;
    for attempt in 0..START_ATTEMPTS {
        let attempt_dir = dir.join(format!("attempt-{attempt}"));
        std::fs::create_dir_all(&attempt_dir)
            .with_context(|| format!("creating {}", attempt_dir.display()))?;
        match start_cluster(&attempt_dir, n, tls) {
            Ok(members) => return Ok(members),
            Err(err) => {
                let port_race = format!("{err:#}").contains("address already in use");
                if !port_race {
                    return Err(err);
                }
                tracing::debug!(%err, "a port was taken; retrying etcd start-up");
                last_err = Some(err);
            }
        }
    }
    Err(last_err.unwrap_or_else(|| anyhow!("etcd did not start")))
}

fn start_cluster(dir: &Path, n: usize, tls: Option<&Pki>) -> anyhow::Result<Vec<Member>> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let token = dir
        .parent()
        .and_then(Path::file_name)
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "test-etcd".to_string());

    struct Ports {
        client: u16,
        peer: u16,
        metrics: u16,
    }
    let ports = (0..n)
        .map(|_| {
            Ok(Ports {
                client: free_port()?,
                peer: free_port()?,
                metrics: free_port()?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let initial_cluster = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("member{i}=http://127.0.0.1:{}", p.peer))
        .collect::<Vec<_>>()
        .join(",");

    let mut members = Vec::with_capacity(n);
    for (i, p) in ports.iter().enumerate() {
        let name = format!("member{i}");
        let data_dir = dir.join(format!("{name}.data"));
        let client_url = format!("{scheme}://127.0.0.1:{}", p.client);
        let peer_url = format!("http://127.0.0.1:{}", p.peer);
        let metrics_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, p.metrics));
        let mut args = vec![
            format!("--name={name}"),
            format!("--data-dir={}", data_dir.display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--listen-metrics-urls=http://{metrics_addr}"),
            format!("--initial-cluster={initial_cluster}"),
            "--initial-cluster-state=new".to_string(),
            format!("--initial-cluster-token={token}"),
            "--experimental-watch-progress-notify-interval=500ms".to_string(),
            "--max-request-bytes=2097152".to_string(),
            "--logger=zap".to_string(),
            "--log-outputs=stderr".to_string(),
        ];
        if let Some(pki) = tls {
            args.extend([
                format!("--cert-file={}", pki.server_cert.display()),
                format!("--key-file={}", pki.server_key.display()),
                format!("--trusted-ca-file={}", pki.client.ca.display()),
                "--client-cert-auth".to_string(),
            ]);
        }
        let mut member = Member {
            log_path: dir.join(format!("{name}.log")),
            name,
            args,
            client_url,
            metrics_addr,
            child: None,
        };
        // Once spawned, the member is in `members`, so an error below still kills it on drop.
        let spawned = member.spawn();
        members.push(member);
        if let Err(err) = spawned {
            stop_all(&mut members);
            return Err(err);
        }
    }

    let deadline = Instant::now() + START_TIMEOUT;
    for i in 0..members.len() {
        if let Err(err) = wait_healthy(&mut members[i], deadline) {
            stop_all(&mut members);
            return Err(err);
        }
    }
    Ok(members)
}

fn stop_all(members: &mut [Member]) {
    for member in members {
        member.stop();
    }
}

/// Polls the member's plain-HTTP `/health` until it reports healthy (it has a leader and no
/// alarm), the process exits, or `deadline` passes.
fn wait_healthy(member: &mut Member, deadline: Instant) -> anyhow::Result<()> {
    loop {
        member.check_running()?;
        let last = match health(member.metrics_addr) {
            Ok(true) => return Ok(()),
            Ok(false) => "etcd answered but reports unhealthy".to_string(),
            Err(err) => format!("{err:#}"),
        };
        if Instant::now() >= deadline {
            bail!(
                "etcd member {} ({}) was not healthy within {START_TIMEOUT:?}: {last}; log tail:\n{}",
                member.name,
                member.client_url,
                log_tail(&member.log_path)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One `GET /health`: true when the member has a leader and no alarm.
fn health(addr: SocketAddr) -> anyhow::Result<bool> {
    let (ok, body) = http_get(addr, "/health")?;
    Ok(ok && body.contains(r#""health":"true""#))
}

/// One plain HTTP/1.0 GET (the server closes the connection after the answer); returns
/// whether the status was 200, and the whole answer.
fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(bool, String)> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut answer = String::new();
    stream.take(16 * 1024 * 1024).read_to_string(&mut answer)?;
    let ok = answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200");
    Ok((ok, answer))
}

/// The last few KiB of a log file, for error messages.
fn log_tail(path: &Path) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let start = len.saturating_sub(LOG_TAIL_BYTES);
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    read().unwrap_or_else(|err| format!("(could not read {}: {err})", path.display()))
}

/// A loopback port nobody in this process has been given yet. The port is released before
/// etcd binds it, so another process may take it in between; the caller retries on that.
fn free_port() -> anyhow::Result<u16> {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    for _ in 0..100 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding port 0")?;
        let port = listener
            .local_addr()
            .context("reading a bound port")?
            .port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if handed_out.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    bail!("could not find a free loopback port")
}

/// Generates a CA, a serving certificate for 127.0.0.1/localhost and a client certificate,
/// and writes them as PEM files into `dir`.
fn write_pki(dir: &Path) -> anyhow::Result<Pki> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "test-etcd CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca = Issuer::new(ca_params, ca_key);

    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "etcd");
    server_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate()?;
    let server_cert = server_params.signed_by(&server_key, &ca)?;

    let mut client_params = CertificateParams::new(Vec::<String>::new())?;
    client_params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver-etcd-client");
    client_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate()?;
    let client_cert = client_params.signed_by(&client_key, &ca)?;

    let pki_dir = dir.join("pki");
    std::fs::create_dir_all(&pki_dir).with_context(|| format!("creating {}", pki_dir.display()))?;
    let write = |name: &str, pem: String| -> anyhow::Result<PathBuf> {
        let path = pki_dir.join(name);
        std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    };
    Ok(Pki {
        server_cert: write("server.crt", server_cert.pem())?,
        server_key: write("server.key", server_key.serialize_pem())?,
        client: TlsFiles {
            ca: write("ca.crt", ca_cert.pem())?,
            cert: write("client.crt", client_cert.pem())?,
            key: write("client.key", client_key.serialize_pem())?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process_exists(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn single_member_starts_answers_and_is_killed_on_drop() -> anyhow::Result<()> {
        let etcd = Etcd::start()?;
        let endpoints = etcd.endpoints();
        assert_eq!(endpoints.len(), 1);
        assert!(endpoints[0].starts_with("http://127.0.0.1:"));
        let pid = etcd.pid().context("etcd has a pid")?;
        assert!(process_exists(pid));
        assert!(health(etcd.member.metrics_addr)?);
        let dir = etcd.dir().to_path_buf();
        assert!(etcd.log_path().exists());
        drop(etcd);
        assert!(!process_exists(pid), "etcd {pid} still running after drop");
        assert!(!dir.exists(), "{} not removed", dir.display());
        Ok(())
    }

    #[test]
    fn tls_member_writes_client_material_and_serves_https() -> anyhow::Result<()> {
        let (etcd, files) = Etcd::start_tls()?;
        assert!(etcd.endpoints()[0].starts_with("https://127.0.0.1:"));
        for path in [&files.ca, &files.cert, &files.key] {
            let pem = std::fs::read_to_string(path)?;
            assert!(
                pem.starts_with("-----BEGIN "),
                "{} is not PEM",
                path.display()
            );
        }
        // The client port refuses plain HTTP clients: it speaks TLS only.
        let port: u16 = etcd.endpoints()[0]
            .rsplit(':')
            .next()
            .context("port")?
            .parse()?;
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"GET /health HTTP/1.0\r\n\r\n")?;
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(!answer.contains(r#""health":"true""#), "{answer}");
        Ok(())
    }

    #[test]
    fn cluster_survives_killing_a_member() -> anyhow::Result<()> {
        let mut cluster = EtcdCluster::start(3)?;
        assert_eq!(cluster.len(), 3);
        let endpoints = cluster.endpoints();
        let unique: HashSet<_> = endpoints.iter().collect();
        assert_eq!(unique.len(), 3, "{endpoints:?}");

        let leader = cluster.wait_for_leader(START_TIMEOUT)?;
        assert!(leader < 3);
        let pid = cluster.pid(0)?.context("member 0 has a pid")?;
        cluster.kill(0)?;
        assert!(!process_exists(pid));
        assert_eq!(cluster.pid(0)?, None);
        assert!(
            cluster.kill(0).is_err(),
            "killing a dead member is an error"
        );

        // The two remaining members keep (or re-elect) a leader.
        let deadline = Instant::now() + START_TIMEOUT;
        for i in 1..3 {
            wait_healthy(&mut cluster.members[i], deadline)?;
        }

        let new_leader = cluster.wait_for_leader(START_TIMEOUT)?;
        assert_ne!(new_leader, 0, "a killed member cannot lead");

        cluster.restart(0)?;
        assert!(cluster.pid(0)?.is_some());
        let pids: Vec<u32> = (0..3)
            .filter_map(|i| cluster.pid(i).ok().flatten())
            .collect();
        drop(cluster);
        for pid in pids {
            assert!(!process_exists(pid), "etcd {pid} still running after drop");
        }
        Ok(())
    }

    #[test]
    fn etcd_outlives_the_thread_that_started_it() -> anyhow::Result<()> {
        let etcd = std::thread::spawn(Etcd::start)
            .join()
            .map_err(|_| anyhow!("start panicked"))??;
        // The starting thread has exited; with --pdeathsig tied to it, etcd would be dead.
        std::thread::sleep(Duration::from_millis(300));
        assert!(health(etcd.member.metrics_addr)?);
        Ok(())
    }

    #[test]
    fn free_ports_are_not_handed_out_twice() -> anyhow::Result<()> {
        let ports = (0..50)
            .map(|_| free_port())
            .collect::<anyhow::Result<Vec<_>>>()?;
        let unique: HashSet<_> = ports.iter().collect();
        assert_eq!(unique.len(), ports.len());
        Ok(())
    }
}
