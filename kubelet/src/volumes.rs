//! Pod volumes on the node (upstream's volume manager for the in-tree kinds): emptyDir (disk,
//! or tmpfs for `medium: Memory` with its sizeLimit), hostPath (with its type checks),
//! configMap, secret, downwardAPI and projected (including service-account tokens from the
//! TokenRequest API, renewed at 80% of their life). Content volumes are written like
//! upstream's atomic writer: the files go to a fresh timestamped directory, `..data` is
//! switched to it with a rename, and each visible name is a symlink through `..data`, so a
//! container never sees half an update; an unchanged source leaves the volume untouched.
//!
//! Layout: `<root>/pods/<uid>/volumes/kubernetes.io~<kind>/<name>`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use client::{Api, Client};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, KeyToPath, Pod, Secret, ServiceAccount, Volume,
};

use crate::envvars::{field_value, Sources};
use crate::object_cache::ObjectCache;

/// The configMaps and secrets one pod refers to, fetched before its sync.
#[derive(Debug, Default, Clone)]
pub struct PodSources {
    pub config_maps: HashMap<String, Option<ConfigMap>>,
    pub secrets: HashMap<String, Option<Secret>>,
}

impl Sources for PodSources {
    fn config_map(&self, _namespace: &str, name: &str) -> Result<Option<ConfigMap>, String> {
        Ok(self.config_maps.get(name).cloned().flatten())
    }
    fn secret(&self, _namespace: &str, name: &str) -> Result<Option<Secret>, String> {
        Ok(self.secrets.get(name).cloned().flatten())
    }
}

/// The names of the configMaps and secrets the pod uses (volumes, env, envFrom).
pub fn referenced(pod: &Pod) -> (Vec<String>, Vec<String>) {
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    let spec = pod.spec.clone().unwrap_or_default();
    for v in spec.volumes.iter().flatten() {
        if let Some(cm) = &v.config_map {
            cms.push(cm.name.clone());
        }
        if let Some(s) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            secrets.push(s);
        }
        for src in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(cm) = &src.config_map {
                cms.push(cm.name.clone());
            }
            if let Some(s) = &src.secret {
                secrets.push(s.name.clone());
            }
        }
    }
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for c in containers {
        for from in c.env_from.iter().flatten() {
            if let Some(r) = &from.config_map_ref {
                cms.push(r.name.clone());
            }
            if let Some(r) = &from.secret_ref {
                secrets.push(r.name.clone());
            }
        }
        for e in c.env.iter().flatten() {
            if let Some(from) = &e.value_from {
                if let Some(r) = &from.config_map_key_ref {
                    cms.push(r.name.clone());
                }
                if let Some(r) = &from.secret_key_ref {
                    secrets.push(r.name.clone());
                }
            }
        }
    }
    // Registry credentials (a missing one only means pulling without it).
    for s in spec.image_pull_secrets.iter().flatten() {
        secrets.push(s.name.clone());
    }
    cms.sort();
    cms.dedup();
    secrets.sort();
    secrets.dedup();
    (cms, secrets)
}

/// What the pod refers to, from the node's watched objects; a missing object is None (the
/// volume or env decides whether that is an error), any other failure is an Err.
pub async fn fetch_sources(
    config_maps: &ObjectCache<ConfigMap>,
    secrets: &ObjectCache<Secret>,
    pod: &Pod,
) -> Result<PodSources, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let (cms, secret_names) = referenced(pod);
    let mut out = PodSources::default();
    for name in cms {
        let got = config_maps
            .get(&ns, &name)
            .await
            .map_err(|e| format!("getting configmap {name:?}: {e}"))?;
        out.config_maps.insert(name, got);
    }
    for name in secret_names {
        let got = secrets
            .get(&ns, &name)
            .await
            .map_err(|e| format!("getting secret {name:?}: {e}"))?;
        out.secrets.insert(name, got);
    }
    Ok(out)
}

/// One file of a content volume: bytes and mode.
type Files = BTreeMap<String, (Vec<u8>, u32)>;

fn mode_of(item: Option<i32>, default: Option<i32>) -> u32 {
    u32::try_from(item.or(default).unwrap_or(0o644)).unwrap_or(0o644)
}

/// Picks `items` out of `data` (all keys when none are listed); a listed key that is missing is
/// an error unless the source is optional.
fn select(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: Option<i32>,
    what: &str,
) -> Result<Files, String> {
    let mut files = Files::new();
    match items {
        None => {
            for (k, v) in data {
                files.insert(k.clone(), (v.clone(), mode_of(None, default_mode)));
            }
        }
        Some(items) => {
            for item in items {
                let v = data.get(&item.key).ok_or_else(|| {
                    format!("configuration key {:?} not found in {what}", item.key)
                })?;
                files.insert(
                    item.path.clone(),
                    (v.clone(), mode_of(item.mode, default_mode)),
                );
            }
        }
    }
    Ok(files)
}

fn config_map_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.iter().flatten() {
        data.insert(k.clone(), v.0.clone());
    }
    data
}

fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in s.string_data.iter().flatten() {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    data
}

/// Writes `files` into `dir` atomically (upstream's AtomicWriter); Ok(false) when the content
/// was already there.
pub fn atomic_write(dir: &Path, files: &Files) -> std::io::Result<bool> {
    use std::os::unix::fs::{symlink, PermissionsExt};
    std::fs::create_dir_all(dir)?;
    let data_link = dir.join("..data");
    // Unchanged? Compare with what ..data points at.
    if let Ok(current) = std::fs::read_link(&data_link) {
        let current = dir.join(current);
        let same = files
            .iter()
            .all(|(name, (bytes, _))| std::fs::read(current.join(name)).is_ok_and(|b| &b == bytes))
            && count_files(&current) == files.len();
        if same {
            return Ok(false);
        }
    }
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let ts_name = format!("..{stamp}");
    let ts_dir = dir.join(&ts_name);
    std::fs::create_dir_all(&ts_dir)?;
    for (name, (bytes, mode)) in files {
        let path = ts_dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))?;
    }
    // Swap ..data in one rename.
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    symlink(&ts_name, &tmp_link)?;
    let old = std::fs::read_link(&data_link).ok();
    std::fs::rename(&tmp_link, &data_link)?;
    // Visible names: top-level entries as links through ..data.
    let mut top: Vec<String> = files
        .keys()
        .map(|k| k.split('/').next().unwrap_or(k).to_string())
        .collect();
    top.dedup();
    for name in &top {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(Path::new("..data").join(name), &link)?;
        }
    }
    // Names no longer present go, and so does the old timestamped directory.
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !top.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    if let Some(old) = old {
        if old != Path::new(&ts_name) {
            let _ = std::fs::remove_dir_all(dir.join(old));
        }
    }
    Ok(true)
}

fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                n += count_files(&p);
            } else {
                n += 1;
            }
        }
    }
    n
}

/// A service-account token the kubelet holds for a pod's projected volume.
#[derive(Debug, Clone)]
struct Token {
    token: String,
    issued: SystemTime,
    expires: SystemTime,
}

/// The node's volumes.
pub struct VolumeManager {
    pub root: PathBuf,
    pub client: Option<Client>,
    tokens: Mutex<HashMap<String, Token>>,
}

fn kind_dir(kind: &str) -> String {
    format!("kubernetes.io~{kind}")
}

impl VolumeManager {
    pub fn new(root: PathBuf, client: Option<Client>) -> VolumeManager {
        VolumeManager {
            root,
            client,
            tokens: Mutex::default(),
        }
    }

    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.root.join("pods").join(uid)
    }

    fn volume_dir(&self, uid: &str, kind: &str, name: &str) -> PathBuf {
        self.pod_dir(uid)
            .join("volumes")
            .join(kind_dir(kind))
            .join(name)
    }

    /// Sets up (or refreshes) every volume of the pod; returns volume name -> host path.
    pub async fn setup(
        &self,
        pod: &Pod,
        sources: &PodSources,
        host_ip: &str,
        pod_ips: &[String],
    ) -> Result<HashMap<String, PathBuf>, String> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let mut out = HashMap::new();
        for v in spec.volumes.iter().flatten() {
            let path = self
                .setup_one(pod, &uid, v, sources, host_ip, pod_ips)
                .await
                .map_err(|e| format!("MountVolume.SetUp failed for volume {:?} : {e}", v.name))?;
            out.insert(v.name.clone(), path);
        }
        Ok(out)
    }

    async fn setup_one(
        &self,
        pod: &Pod,
        uid: &str,
        v: &Volume,
        sources: &PodSources,
        host_ip: &str,
        pod_ips: &[String],
    ) -> Result<PathBuf, String> {
        let io = |e: std::io::Error| e.to_string();
        if let Some(ed) = &v.empty_dir {
            let dir = self.volume_dir(uid, "empty-dir", &v.name);
            std::fs::create_dir_all(&dir).map_err(io)?;
            if ed.medium.as_deref() == Some("Memory") && !is_mount_point(&dir) {
                let mut opts = "mode=0777".to_string();
                if let Some(size) = ed
                    .size_limit
                    .as_ref()
                    .and_then(|q| crate::podstatus::parse_quantity(&q.0))
                {
                    opts.push_str(&format!(",size={}", size as u64));
                }
                let status = tokio::process::Command::new("mount")
                    .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
                    .arg(&dir)
                    .status()
                    .await
                    .map_err(io)?;
                if !status.success() {
                    return Err(format!("mounting tmpfs at {} failed", dir.display()));
                }
            } else {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                    .map_err(io)?;
            }
            return Ok(dir);
        }
        if let Some(hp) = &v.host_path {
            let path = PathBuf::from(&hp.path);
            check_host_path(&path, hp.type_.as_deref().unwrap_or(""))?;
            return Ok(path);
        }
        let (kind, files) = if let Some(cm) = &v.config_map {
            let optional = cm.optional.unwrap_or(false);
            let files = match sources.config_maps.get(&cm.name).cloned().flatten() {
                Some(obj) => select(
                    &config_map_data(&obj),
                    cm.items.as_ref(),
                    cm.default_mode,
                    &format!("configmap {:?}", cm.name),
                )?,
                None if optional => Files::new(),
                None => return Err(format!("configmap {:?} not found", cm.name)),
            };
            ("configmap", files)
        } else if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            let optional = s.optional.unwrap_or(false);
            let files = match sources.secrets.get(&name).cloned().flatten() {
                Some(obj) => select(
                    &secret_data(&obj),
                    s.items.as_ref(),
                    s.default_mode,
                    &format!("secret {name:?}"),
                )?,
                None if optional => Files::new(),
                None => return Err(format!("secret {name:?} not found")),
            };
            ("secret", files)
        } else if let Some(d) = &v.downward_api {
            let mut files = Files::new();
            for item in d.items.iter().flatten() {
                if let Some(f) = &item.field_ref {
                    let value = field_value(pod, &f.field_path, host_ip, pod_ips)?;
                    files.insert(
                        item.path.clone(),
                        (value.into_bytes(), mode_of(item.mode, d.default_mode)),
                    );
                }
            }
            ("downward-api", files)
        } else if let Some(p) = &v.projected {
            let mut files = Files::new();
            for src in p.sources.iter().flatten() {
                if let Some(cm) = &src.config_map {
                    match sources.config_maps.get(&cm.name).cloned().flatten() {
                        Some(obj) => files.extend(select(
                            &config_map_data(&obj),
                            cm.items.as_ref(),
                            p.default_mode,
                            &format!("configmap {:?}", cm.name),
                        )?),
                        None if cm.optional.unwrap_or(false) => {}
                        None => return Err(format!("configmap {:?} not found", cm.name)),
                    }
                }
                if let Some(s) = &src.secret {
                    match sources.secrets.get(&s.name).cloned().flatten() {
                        Some(obj) => files.extend(select(
                            &secret_data(&obj),
                            s.items.as_ref(),
                            p.default_mode,
                            &format!("secret {:?}", s.name),
                        )?),
                        None if s.optional.unwrap_or(false) => {}
                        None => return Err(format!("secret {:?} not found", s.name)),
                    }
                }
                if let Some(d) = &src.downward_api {
                    for item in d.items.iter().flatten() {
                        if let Some(f) = &item.field_ref {
                            let value = field_value(pod, &f.field_path, host_ip, pod_ips)?;
                            files.insert(
                                item.path.clone(),
                                (value.into_bytes(), mode_of(item.mode, p.default_mode)),
                            );
                        }
                    }
                }
                if let Some(t) = &src.service_account_token {
                    let token = self
                        .token(
                            pod,
                            &v.name,
                            &t.path,
                            t.audience.as_deref(),
                            t.expiration_seconds.unwrap_or(3600),
                        )
                        .await?;
                    files.insert(
                        t.path.clone(),
                        (token.into_bytes(), mode_of(None, p.default_mode)),
                    );
                }
            }
            ("projected", files)
        } else {
            return Err("unsupported volume type".into());
        };
        let dir = self.volume_dir(uid, kind, &v.name);
        atomic_write(&dir, &files).map_err(io)?;
        Ok(dir)
    }

    /// A token for the pod's service account, reused until 80% of its life has passed.
    async fn token(
        &self,
        pod: &Pod,
        volume: &str,
        path: &str,
        audience: Option<&str>,
        expiration: i64,
    ) -> Result<String, String> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let key = format!("{uid}/{volume}/{path}");
        let now = SystemTime::now();
        if let Some(t) = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            let life = t.expires.duration_since(t.issued).unwrap_or_default();
            if now < t.issued + life.mul_f64(0.8) {
                return Ok(t.token.clone());
            }
        }
        let Some(client) = &self.client else {
            return Ok("simulated-token".into());
        };
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        let request: TokenRequest = serde_json::from_value(serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": audience.map(|a| vec![a.to_string()]).unwrap_or_default(),
                "expirationSeconds": expiration,
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                    "name": pod.metadata.name.clone().unwrap_or_default(), "uid": uid},
            }
        }))
        .map_err(|e| e.to_string())?;
        let api: Api<ServiceAccount> = client.api(Some(&ns));
        let answer: TokenRequest = api
            .create_subresource("token", &sa, &request)
            .await
            .map_err(|e| format!("failed to fetch token: {e}"))?;
        let token = answer.status.map(|s| s.token).unwrap_or_default();
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                key,
                Token {
                    token: token.clone(),
                    issued: now,
                    expires: now + Duration::from_secs(u64::try_from(expiration).unwrap_or(3600)),
                },
            );
        Ok(token)
    }

    /// Unmounts and removes everything of a pod.
    pub async fn teardown(&self, uid: &str) {
        let dir = self.pod_dir(uid);
        let empty = dir.join("volumes").join(kind_dir("empty-dir"));
        if let Ok(entries) = std::fs::read_dir(&empty) {
            for e in entries.flatten() {
                if is_mount_point(&e.path()) {
                    let _ = tokio::process::Command::new("umount")
                        .arg(e.path())
                        .status()
                        .await;
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| !k.starts_with(&format!("{uid}/")));
    }
}

/// Whether `path` is a mount point (listed in /proc/self/mountinfo).
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.display().to_string();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| mp == want)
}

/// hostPath type checks (upstream's `checkType`), creating what `*OrCreate` asks for.
fn check_host_path(path: &Path, kind: &str) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(path);
    let shown = path.display();
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" => {
            if meta.is_err() {
                std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755));
            }
            Ok(())
        }
        "FileOrCreate" => {
            if meta.is_err() {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
                }
                std::fs::write(path, b"").map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        "Directory" => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            _ => Err(format!(
                "hostPath type check failed: {shown} is not a directory"
            )),
        },
        "File" => match meta {
            Ok(m) if m.is_file() => Ok(()),
            _ => Err(format!("hostPath type check failed: {shown} is not a file")),
        },
        "Socket" => match meta {
            Ok(m) if m.file_type().is_socket() => Ok(()),
            _ => Err(format!(
                "hostPath type check failed: {shown} is not a socket file"
            )),
        },
        "CharDevice" => match meta {
            Ok(m) if m.file_type().is_char_device() => Ok(()),
            _ => Err(format!(
                "hostPath type check failed: {shown} is not a character device"
            )),
        },
        "BlockDevice" => match meta {
            Ok(m) if m.file_type().is_block_device() => Ok(()),
            _ => Err(format!(
                "hostPath type check failed: {shown} is not a block device"
            )),
        },
        other => Err(format!("hostPath type {other:?} is not supported")),
    }
}

/// The CRI mounts of one container from its volumeMounts (subPath inside the volume).
pub fn container_mounts(
    container: &Container,
    volumes: &HashMap<String, PathBuf>,
) -> Result<Vec<cri::v1::Mount>, String> {
    let mut out = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let base = volumes.get(&m.name).ok_or_else(|| {
            format!(
                "cannot find volume {:?} to mount into container {:?}",
                m.name, container.name
            )
        })?;
        let host = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => {
                if sub.split('/').any(|part| part == "..") || sub.starts_with('/') {
                    return Err(format!("invalid subPath {sub:?}"));
                }
                let p = base.join(sub);
                if std::fs::symlink_metadata(&p).is_err() {
                    std::fs::create_dir_all(&p).map_err(|e| e.to_string())?;
                }
                p
            }
            None => base.clone(),
        };
        out.push(cri::v1::Mount {
            container_path: m.mount_path.clone(),
            host_path: host.display().to_string(),
            readonly: m.read_only.unwrap_or(false),
            ..Default::default()
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> Files {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), (v.as_bytes().to_vec(), 0o644)))
            .collect()
    }

    #[test]
    fn the_atomic_writer_swaps_data_and_links_names_through_it() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path().join("vol");
        assert!(atomic_write(&dir, &files(&[("a", "1"), ("b", "2")])).unwrap_or(false));
        assert_eq!(
            std::fs::read_to_string(dir.join("a")).unwrap_or_default(),
            "1"
        );
        assert_eq!(
            std::fs::read_link(dir.join("a")).unwrap_or_default(),
            Path::new("..data/a")
        );
        let first = std::fs::read_link(dir.join("..data")).unwrap_or_default();
        // The same content: nothing is rewritten.
        assert!(!atomic_write(&dir, &files(&[("a", "1"), ("b", "2")])).unwrap_or(true));
        // A change: a new timestamped directory, the old one and the dropped name go.
        assert!(atomic_write(&dir, &files(&[("a", "3")])).unwrap_or(false));
        let second = std::fs::read_link(dir.join("..data")).unwrap_or_default();
        assert_ne!(first, second);
        assert!(!dir.join(&first).exists());
        assert_eq!(
            std::fs::read_to_string(dir.join("a")).unwrap_or_default(),
            "3"
        );
        assert!(std::fs::symlink_metadata(dir.join("b")).is_err());
    }

    #[tokio::test]
    async fn volumes_are_set_up_from_their_sources() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let vm = VolumeManager::new(tmp.path().to_path_buf(), None);
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "i", "volumeMounts": [
                        {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": true},
                        {"name": "scratch", "mountPath": "/scratch", "subPath": "sub"}]}],
                     "volumes": [
                        {"name": "cfg", "configMap": {"name": "settings", "items": [{"key": "mode", "path": "conf/mode"}]}},
                        {"name": "scratch", "emptyDir": {}},
                        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                        {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}},
                            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}]}
        }))
        .unwrap_or_default();
        let mut sources = PodSources::default();
        let cm: ConfigMap = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "settings"}, "data": {"mode": "fast"}}),
        )
        .unwrap_or_default();
        sources.config_maps.insert("settings".into(), Some(cm));
        let vols = vm
            .setup(&pod, &sources, "10.0.0.1", &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            std::fs::read_to_string(vols["cfg"].join("conf/mode")).unwrap_or_default(),
            "fast"
        );
        assert_eq!(
            std::fs::read_to_string(vols["info"].join("labels")).unwrap_or_default(),
            "app=\"web\""
        );
        assert_eq!(
            std::fs::read_to_string(vols["token"].join("namespace")).unwrap_or_default(),
            "default"
        );
        let c = pod.spec.clone().unwrap_or_default().containers[0].clone();
        let mounts = container_mounts(&c, &vols).unwrap_or_default();
        assert_eq!(mounts.len(), 2);
        assert!(mounts[0].readonly);
        assert!(mounts[1]
            .host_path
            .ends_with("kubernetes.io~empty-dir/scratch/sub"));
        // A missing configMap is the volume's error.
        sources.config_maps.insert("settings".into(), None);
        let err = vm
            .setup(&pod, &sources, "", &[])
            .await
            .err()
            .unwrap_or_default();
        assert_eq!(
            err,
            "MountVolume.SetUp failed for volume \"cfg\" : configmap \"settings\" not found"
        );
        vm.teardown("u1").await;
        assert!(!vm.pod_dir("u1").exists());
    }
}
