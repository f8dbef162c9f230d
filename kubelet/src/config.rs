//! The kubelet's configuration: the `KubeletConfiguration` file (`kubelet.config.k8s.io/v1beta1`,
//! YAML or JSON) named by `--config`, upstream's defaults, and the command-line flags, which
//! override the file as upstream's do. [`KubeletConfig::load`] does all three and validates the
//! result, so a bad setting stops the kubelet at start with one line naming the file and field.
//!
//! As upstream, the file is decoded strictly first: a field this kubelet does not know is a
//! warning (upstream falls back to lenient decoding the same way), a field of the wrong type or
//! an invalid value is an error. Fields upstream defines that this kubelet does not act on yet
//! are accepted and ignored.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use apimachinery::duration::parse_duration;
use k8s_openapi::api::core::v1::Taint;
use serde::{Deserialize, Deserializer};

use crate::eviction::{self, Threshold};
use crate::options::Options;
use crate::resources::{self, ResourceList};

pub const GROUP: &str = "kubelet.config.k8s.io";
pub const KIND: &str = "KubeletConfiguration";
/// The endpoint of the simulated runtime.
pub const SIM_ENDPOINT: &str = "sim://";
pub const DEFAULT_RUNTIME_ENDPOINT: &str = "unix:///run/containerd/containerd.sock";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read or decoded (upstream's wording).
    #[error("failed to load kubelet config file, path: {path}, error: {message}")]
    Load { path: String, message: String },
    /// A value (from the file or a flag) is not acceptable.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// A Go duration (`10s`, `5m`) as metav1.Duration serializes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoDuration(pub Duration);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A visitor, so that the decoder can say where a bad value is (field path and line).
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = GoDuration;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration such as 300ms, 10s or 1h30m")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<GoDuration, E> {
                parse_duration(text)
                    .map(GoDuration)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(text), &self))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// The file, as written: every field optional, so that defaults and flags can be told apart
/// from values the file sets.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletConfiguration {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub address: Option<String>,
    pub port: Option<i32>,
    pub read_only_port: Option<i32>,
    pub healthz_port: Option<i32>,
    pub healthz_bind_address: Option<String>,
    pub max_pods: Option<i32>,
    #[serde(rename = "podCIDR")]
    pub pod_cidr: Option<String>,
    #[serde(rename = "clusterDNS")]
    pub cluster_dns: Option<Vec<String>>,
    pub cluster_domain: Option<String>,
    pub static_pod_path: Option<String>,
    pub sync_frequency: Option<GoDuration>,
    pub node_status_update_frequency: Option<GoDuration>,
    pub node_status_report_frequency: Option<GoDuration>,
    pub node_lease_duration_seconds: Option<i32>,
    pub system_reserved: Option<BTreeMap<String, String>>,
    pub kube_reserved: Option<BTreeMap<String, String>>,
    pub eviction_hard: Option<BTreeMap<String, String>>,
    pub merge_default_eviction_settings: Option<bool>,
    pub register_node: Option<bool>,
    pub register_with_taints: Option<Vec<Taint>>,
    pub cgroup_driver: Option<String>,
    pub container_runtime_endpoint: Option<String>,
    pub image_service_endpoint: Option<String>,
    pub fail_swap_on: Option<bool>,
    pub tls_cert_file: Option<String>,
    pub tls_private_key_file: Option<String>,
    pub authentication: Option<FileAuthentication>,
    pub authorization: Option<FileAuthorization>,
    #[serde(rename = "kubeAPIQPS")]
    pub kube_api_qps: Option<i32>,
    #[serde(rename = "kubeAPIBurst")]
    pub kube_api_burst: Option<i32>,
    pub enable_controller_attach_detach: Option<bool>,
    #[serde(rename = "providerID")]
    pub provider_id: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileAuthentication {
    pub x509: Option<FileX509Authentication>,
    pub webhook: Option<FileWebhookAuthentication>,
    pub anonymous: Option<FileAnonymousAuthentication>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct FileX509Authentication {
    #[serde(rename = "clientCAFile")]
    pub client_ca_file: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct FileWebhookAuthentication {
    pub enabled: Option<bool>,
    #[serde(rename = "cacheTTL")]
    pub cache_ttl: Option<GoDuration>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct FileAnonymousAuthentication {
    pub enabled: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct FileAuthorization {
    pub mode: Option<String>,
    pub webhook: Option<FileWebhookAuthorization>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct FileWebhookAuthorization {
    #[serde(rename = "cacheAuthorizedTTL")]
    pub cache_authorized_ttl: Option<GoDuration>,
    #[serde(rename = "cacheUnauthorizedTTL")]
    pub cache_unauthorized_ttl: Option<GoDuration>,
}

/// Top-level fields of upstream's v1beta1 KubeletConfiguration that this kubelet accepts
/// without acting on them yet (so they are not reported as unknown).
const ACCEPTED_UPSTREAM_FIELDS: &[&str] = &[
    "enableServer",
    "podLogsDir",
    "fileCheckFrequency",
    "httpCheckFrequency",
    "staticPodURL",
    "staticPodURLHeader",
    "tlsCipherSuites",
    "tlsCurvePreferences",
    "tlsMinVersion",
    "rotateCertificates",
    "serverTLSBootstrap",
    "registryPullQPS",
    "registryBurst",
    "imagePullCredentialsVerificationPolicy",
    "preloadedImagesVerificationAllowlist",
    "eventRecordQPS",
    "eventBurst",
    "enableDebuggingHandlers",
    "enableContentionProfiling",
    "oomScoreAdj",
    "streamingConnectionIdleTimeout",
    "imageMinimumGCAge",
    "imageMaximumGCAge",
    "imageGCHighThresholdPercent",
    "imageGCLowThresholdPercent",
    "volumeStatsAggPeriod",
    "kubeletCgroups",
    "systemCgroups",
    "cgroupRoot",
    "cgroupsPerQOS",
    "cpuManagerPolicy",
    "singleProcessOOMKill",
    "cpuManagerPolicyOptions",
    "cpuManagerReconcilePeriod",
    "draManagerReconcilePeriod",
    "memoryManagerPolicy",
    "topologyManagerPolicy",
    "topologyManagerScope",
    "topologyManagerPolicyOptions",
    "qosReserved",
    "runtimeRequestTimeout",
    "hairpinMode",
    "podPidsLimit",
    "resolvConf",
    "runOnce",
    "cpuCFSQuota",
    "cpuCFSQuotaPeriod",
    "nodeStatusMaxImages",
    "maxOpenFiles",
    "contentType",
    "serializeImagePulls",
    "maxParallelImagePulls",
    "evictionSoft",
    "evictionSoftGracePeriod",
    "evictionPressureTransitionPeriod",
    "evictionMaxPodGracePeriod",
    "evictionMinimumReclaim",
    "podsPerCore",
    "protectKernelDefaults",
    "makeIPTablesUtilChains",
    "iptablesMasqueradeBit",
    "iptablesDropBit",
    "featureGates",
    "memorySwap",
    "containerLogMaxSize",
    "containerLogMaxFiles",
    "containerLogMaxWorkers",
    "containerLogMonitorInterval",
    "configMapAndSecretChangeDetectionStrategy",
    "reservedSystemCPUs",
    "showHiddenMetricsForVersion",
    "systemReservedCgroup",
    "kubeReservedCgroup",
    "enforceNodeAllocatable",
    "allowedUnsafeSysctls",
    "volumePluginDir",
    "kernelMemcgNotification",
    "logging",
    "enableSystemLogHandler",
    "enableSystemLogQuery",
    "shutdownGracePeriod",
    "shutdownGracePeriodCriticalPods",
    "shutdownGracePeriodByPodPriority",
    "crashLoopBackOff",
    "reservedMemory",
    "enableProfilingHandler",
    "enableDebugFlagsHandler",
    "seccompDefault",
    "memoryThrottlingFactor",
    "memoryReservationPolicy",
    "tracing",
    "localStorageCapacityIsolation",
    "failCgroupV1",
    "userNamespaces",
];

/// Top-level fields this kubelet reads.
const KNOWN_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "address",
    "port",
    "readOnlyPort",
    "healthzPort",
    "healthzBindAddress",
    "maxPods",
    "podCIDR",
    "clusterDNS",
    "clusterDomain",
    "staticPodPath",
    "syncFrequency",
    "nodeStatusUpdateFrequency",
    "nodeStatusReportFrequency",
    "nodeLeaseDurationSeconds",
    "systemReserved",
    "kubeReserved",
    "evictionHard",
    "mergeDefaultEvictionSettings",
    "registerNode",
    "registerWithTaints",
    "cgroupDriver",
    "containerRuntimeEndpoint",
    "imageServiceEndpoint",
    "failSwapOn",
    "tlsCertFile",
    "tlsPrivateKeyFile",
    "authentication",
    "authorization",
    "kubeAPIQPS",
    "kubeAPIBurst",
    "enableControllerAttachDetach",
    "providerID",
];

impl KubeletConfiguration {
    /// Decodes a file's text (YAML, of which JSON is a subset); `path` names it in errors.
    /// Returns the configuration and the unknown top-level fields (for a warning).
    pub fn parse(
        path: &Path,
        text: &str,
    ) -> Result<(KubeletConfiguration, Vec<String>), ConfigError> {
        let load = |message: String| ConfigError::Load {
            path: path.display().to_string(),
            message,
        };
        // Errors from the YAML decoder name the field path and the line; keep them on one line.
        let one_line = |err: &dyn std::fmt::Display| {
            err.to_string()
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let value: serde_yaml::Value = serde_yaml::from_str(text)
            .map_err(|err| load(format!("failed to decode: {}", one_line(&err))))?;
        let serde_yaml::Value::Mapping(map) = &value else {
            return Err(load(
                "failed to decode: the file is not a KubeletConfiguration object".to_string(),
            ));
        };
        let unknown: Vec<String> = map
            .keys()
            .filter_map(|k| k.as_str())
            .filter(|k| !KNOWN_FIELDS.contains(k) && !ACCEPTED_UPSTREAM_FIELDS.contains(k))
            .map(str::to_string)
            .collect();
        let config: KubeletConfiguration = serde_yaml::from_str(text)
            .map_err(|err| load(format!("failed to decode: {}", one_line(&err))))?;
        match config.kind.as_deref() {
            Some(KIND) => {}
            Some(other) => {
                return Err(load(format!(
                    "failed to decode: kind is {other:?}, expected {KIND:?}"
                )))
            }
            None => {
                return Err(load(format!(
                    "failed to decode: Object 'Kind' is missing (expected {KIND:?})"
                )))
            }
        }
        match config.api_version.as_deref() {
            Some(v) if v == format!("{GROUP}/v1beta1") || v == format!("{GROUP}/v1") => {}
            Some(other) => {
                return Err(load(format!(
                    "failed to decode: no kind {KIND:?} is registered for version {other:?}"
                )))
            }
            None => return Err(load(
                "failed to decode: apiVersion is missing (expected kubelet.config.k8s.io/v1beta1)"
                    .to_string(),
            )),
        }
        Ok((config, unknown))
    }
}

/// Who may use the kubelet's HTTPS port (for the server that comes later; resolved and
/// validated now so that a bad file fails at start).
#[derive(Clone, Debug, PartialEq)]
pub struct Authentication {
    pub anonymous: bool,
    pub webhook: bool,
    pub webhook_cache_ttl: Duration,
    pub client_ca_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorizationMode {
    AlwaysAllow,
    Webhook,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Authorization {
    pub mode: AuthorizationMode,
    pub cache_authorized_ttl: Duration,
    pub cache_unauthorized_ttl: Duration,
}

/// The effective configuration: file values over upstream's defaults, flags over both.
#[derive(Clone, Debug)]
pub struct KubeletConfig {
    pub address: IpAddr,
    pub port: u16,
    pub read_only_port: u16,
    /// 0: no healthz server.
    pub healthz_port: u16,
    pub healthz_bind_address: IpAddr,
    pub max_pods: u32,
    pub pod_cidr: String,
    pub cluster_dns: Vec<IpAddr>,
    pub cluster_domain: String,
    pub static_pod_path: Option<PathBuf>,
    pub sync_frequency: Duration,
    pub node_status_update_frequency: Duration,
    pub node_status_report_frequency: Duration,
    pub node_lease_duration_seconds: u32,
    pub system_reserved: ResourceList,
    pub kube_reserved: ResourceList,
    pub eviction_hard: Vec<Threshold>,
    pub register_node: bool,
    pub register_with_taints: Vec<Taint>,
    pub cgroup_driver: String,
    pub container_runtime_endpoint: String,
    pub image_service_endpoint: String,
    pub fail_swap_on: bool,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
    pub authentication: Authentication,
    pub authorization: Authorization,
    pub kube_api_qps: f32,
    pub kube_api_burst: u32,
    pub enable_controller_attach_detach: bool,
    pub provider_id: String,

    // Flag-only settings.
    pub root_dir: PathBuf,
    pub cert_dir: PathBuf,
    pub hostname_override: Option<String>,
    pub node_ips: Vec<IpAddr>,
    pub node_labels: BTreeMap<String, String>,
    pub hollow_nodes: u32,
}

impl KubeletConfig {
    /// Reads `--config` (if given), applies the flags and defaults, and validates.
    pub fn load(options: &Options) -> Result<KubeletConfig, ConfigError> {
        let file = match &options.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Load {
                    path: path.display().to_string(),
                    message: format!("failed to read kubelet config file: {err}"),
                })?;
                let (file, unknown) = KubeletConfiguration::parse(path, &text)?;
                for field in unknown {
                    tracing::warn!(
                        path = %path.display(),
                        %field,
                        "using lenient decoding as strict decoding failed: unknown field"
                    );
                }
                Some(file)
            }
            None => None,
        };
        Self::resolve(file.unwrap_or_default(), options, options.config.as_deref())
    }

    /// Merges `file` (already decoded) with the flags and defaults. `path` is the file's, to
    /// name it in errors about its values.
    pub fn resolve(
        file: KubeletConfiguration,
        options: &Options,
        path: Option<&Path>,
    ) -> Result<KubeletConfig, ConfigError> {
        let mut errors: Vec<String> = Vec::new();
        let source = |field: &str, flag: &str| match path {
            Some(p) => format!("{field} (--{flag} or {})", p.display()),
            None => format!("{field} (--{flag})"),
        };
        let file_source = |field: &str| match path {
            Some(p) => format!("{field} ({})", p.display()),
            None => field.to_string(),
        };

        let address = match (&options.address, &file.address) {
            (Some(ip), _) => *ip,
            (None, Some(text)) => text.parse().unwrap_or_else(|_| {
                errors.push(format!(
                    "{}: {text:?} is not a valid IP address",
                    source("address", "address")
                ));
                IpAddr::from([0, 0, 0, 0])
            }),
            (None, None) => IpAddr::from([0, 0, 0, 0]),
        };
        let mut port_of = |flag: Option<i32>,
                           file: Option<i32>,
                           default: i32,
                           field: &str,
                           name: &str,
                           min: i32| {
            let value = flag.or(file).unwrap_or(default);
            match u16::try_from(value) {
                Ok(p) if value >= min => p,
                _ => {
                    errors.push(format!(
                        "{} {value} must be between {min} and 65535, inclusive",
                        source(field, name)
                    ));
                    0
                }
            }
        };
        let port = port_of(options.port, file.port, 10250, "port", "port", 1);
        let read_only_port = port_of(
            options.read_only_port,
            file.read_only_port,
            0,
            "readOnlyPort",
            "read-only-port",
            0,
        );
        let healthz_port = port_of(
            options.healthz_port,
            file.healthz_port,
            10248,
            "healthzPort",
            "healthz-port",
            0,
        );
        let healthz_bind_address = match (&options.healthz_bind_address, &file.healthz_bind_address)
        {
            (Some(ip), _) => *ip,
            (None, Some(text)) => text.parse().unwrap_or_else(|_| {
                errors.push(format!(
                    "{}: {text:?} is not a valid IP address",
                    source("healthzBindAddress", "healthz-bind-address")
                ));
                IpAddr::from([127, 0, 0, 1])
            }),
            (None, None) => IpAddr::from([127, 0, 0, 1]),
        };
        let max_pods_raw = options.max_pods.or(file.max_pods).unwrap_or(110);
        let max_pods = u32::try_from(max_pods_raw).unwrap_or_else(|_| {
            errors.push(format!(
                "{} {max_pods_raw} must not be a negative number",
                source("maxPods", "max-pods")
            ));
            0
        });
        let cluster_dns = options
            .cluster_dns
            .clone()
            .or(file.cluster_dns.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|s| !s.trim().is_empty())
            .filter_map(|s| match s.trim().parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    errors.push(format!(
                        "{}: {s:?} is not a valid IP address",
                        source("clusterDNS", "cluster-dns")
                    ));
                    None
                }
            })
            .collect();
        let positive = |errors: &mut Vec<String>, d: Duration, what: String| {
            if d.is_zero() {
                errors.push(format!("{what} {d:?} must be > 0"));
            }
            d
        };
        let sync_frequency = positive(
            &mut errors,
            options
                .sync_frequency
                .or(file.sync_frequency.map(|d| d.0))
                .unwrap_or(Duration::from_secs(60)),
            source("syncFrequency", "sync-frequency"),
        );
        let update_from_file = file.node_status_update_frequency.map(|d| d.0);
        let node_status_update_frequency = positive(
            &mut errors,
            options
                .node_status_update_frequency
                .or(update_from_file)
                .unwrap_or(Duration::from_secs(10)),
            source("nodeStatusUpdateFrequency", "node-status-update-frequency"),
        );
        // Upstream: the report frequency defaults to the update frequency when the file sets
        // that explicitly (backward compatibility), else to 5 minutes.
        let node_status_report_frequency = positive(
            &mut errors,
            file.node_status_report_frequency
                .map(|d| d.0)
                .or(update_from_file)
                .unwrap_or(Duration::from_secs(300)),
            file_source("nodeStatusReportFrequency"),
        );
        let lease_seconds = file.node_lease_duration_seconds.unwrap_or(40);
        let node_lease_duration_seconds = match u32::try_from(lease_seconds) {
            Ok(s) if s > 0 => s,
            _ => {
                errors.push(format!(
                    "{} must be greater than 0",
                    file_source("nodeLeaseDurationSeconds")
                ));
                40
            }
        };

        let mut reserved = |flag: &Option<String>,
                            file: &Option<BTreeMap<String, String>>,
                            field: &str,
                            name: &str| {
            let map = match flag {
                Some(text) => match resources::parse_key_values(text, &format!("--{name}")) {
                    Ok(map) => map,
                    Err(err) => {
                        errors.push(err);
                        return ResourceList::new();
                    }
                },
                None => file.clone().unwrap_or_default(),
            };
            resources::parse_resource_list(&map, &source(field, name)).unwrap_or_else(|err| {
                errors.push(err);
                ResourceList::new()
            })
        };
        let system_reserved = reserved(
            &options.system_reserved,
            &file.system_reserved,
            "systemReserved",
            "system-reserved",
        );
        let kube_reserved = reserved(
            &options.kube_reserved,
            &file.kube_reserved,
            "kubeReserved",
            "kube-reserved",
        );
        let eviction_map = match &options.eviction_hard {
            Some(text) => eviction::parse_threshold_flag(text).unwrap_or_else(|err| {
                errors.push(err);
                BTreeMap::new()
            }),
            None => match &file.eviction_hard {
                Some(map) => {
                    // Without mergeDefaultEvictionSettings, a file that sets some signals
                    // turns the others off, as upstream.
                    if file.merge_default_eviction_settings == Some(true) {
                        let mut merged = eviction::default_eviction_hard();
                        merged.extend(map.clone());
                        merged
                    } else {
                        map.clone()
                    }
                }
                None => eviction::default_eviction_hard(),
            },
        };
        let eviction_hard = eviction::parse_thresholds(&eviction_map).unwrap_or_else(|err| {
            errors.push(format!(
                "{}: {err}",
                source("evictionHard", "eviction-hard")
            ));
            Vec::new()
        });

        let register_with_taints = match &options.register_with_taints {
            Some(text) => parse_taints(text).unwrap_or_else(|err| {
                errors.push(format!("--register-with-taints: {err}"));
                Vec::new()
            }),
            None => file.register_with_taints.clone().unwrap_or_default(),
        };
        for taint in &register_with_taints {
            if let Err(err) = validate_taint(taint) {
                errors.push(format!(
                    "{}: {err}",
                    source("registerWithTaints", "register-with-taints")
                ));
            }
        }
        let cgroup_driver = options
            .cgroup_driver
            .clone()
            .or(file.cgroup_driver.clone())
            .unwrap_or_else(|| "cgroupfs".to_string());
        if cgroup_driver != "cgroupfs" && cgroup_driver != "systemd" {
            errors.push(format!(
                "{} {cgroup_driver:?} must be cgroupfs or systemd",
                source("cgroupDriver", "cgroup-driver")
            ));
        }
        let hollow_nodes = options.hollow_nodes;
        let explicit_endpoint = options
            .container_runtime_endpoint
            .clone()
            .or(file.container_runtime_endpoint.clone())
            .filter(|e| !e.is_empty());
        let container_runtime_endpoint = match (&explicit_endpoint, hollow_nodes) {
            (Some(e), _) => e.clone(),
            // Hollow nodes run on the simulated runtime unless told otherwise.
            (None, n) if n > 0 => SIM_ENDPOINT.to_string(),
            (None, _) => DEFAULT_RUNTIME_ENDPOINT.to_string(),
        };
        if hollow_nodes > 0 && container_runtime_endpoint != SIM_ENDPOINT {
            errors.push(format!(
                "--hollow-nodes runs simulated nodes: the container runtime endpoint must be {SIM_ENDPOINT}, not {container_runtime_endpoint:?}"
            ));
        }
        let image_service_endpoint = options
            .image_service_endpoint
            .clone()
            .or(file.image_service_endpoint.clone())
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| container_runtime_endpoint.clone());

        let (authentication, authorization) = resolve_auth(&file, options, &source, &mut errors);
        let tls_cert_file = options
            .tls_cert_file
            .clone()
            .or(file.tls_cert_file.clone())
            .filter(|f| !f.is_empty())
            .map(PathBuf::from);
        let tls_private_key_file = options
            .tls_private_key_file
            .clone()
            .or(file.tls_private_key_file.clone())
            .filter(|f| !f.is_empty())
            .map(PathBuf::from);
        if tls_cert_file.is_some() != tls_private_key_file.is_some() {
            errors.push(
                "tlsCertFile (--tls-cert-file) and tlsPrivateKeyFile (--tls-private-key-file) must be given together"
                    .to_string(),
            );
        }
        let qps = options
            .client
            .kube_api_qps
            .or(file.kube_api_qps.map(|q| q as f32))
            .unwrap_or(50.0);
        if qps < 0.0 {
            errors.push(format!(
                "{} {qps} must not be a negative number",
                source("kubeAPIQPS", "kube-api-qps")
            ));
        }
        let burst_raw = options
            .client
            .kube_api_burst
            .map(i64::from)
            .or(file.kube_api_burst.map(i64::from))
            .unwrap_or(100);
        let kube_api_burst = u32::try_from(burst_raw).unwrap_or_else(|_| {
            errors.push(format!(
                "{} {burst_raw} must not be a negative number",
                source("kubeAPIBurst", "kube-api-burst")
            ));
            0
        });

        let node_ips = match &options.node_ip {
            Some(text) => parse_node_ips(text).unwrap_or_else(|err| {
                errors.push(err);
                Vec::new()
            }),
            None => Vec::new(),
        };
        let node_labels = match &options.node_labels {
            Some(text) => parse_node_labels(text).unwrap_or_else(|err| {
                errors.push(err);
                BTreeMap::new()
            }),
            None => BTreeMap::new(),
        };
        let hostname_override = options
            .hostname_override
            .as_deref()
            .map(|h| h.trim().to_lowercase())
            .filter(|h| !h.is_empty());
        if let Some(h) = &hostname_override {
            let problems = apimachinery::validation::is_dns1123_subdomain(h);
            if !problems.is_empty() {
                errors.push(format!(
                    "--hostname-override {h:?} is not a valid node name: {}",
                    problems.join("; ")
                ));
            }
        }

        if !errors.is_empty() {
            let message = if errors.len() == 1 {
                errors.remove(0)
            } else {
                format!("[{}]", errors.join(", "))
            };
            return Err(ConfigError::Invalid(message));
        }
        Ok(KubeletConfig {
            address,
            port,
            read_only_port,
            healthz_port,
            healthz_bind_address,
            max_pods,
            pod_cidr: options
                .pod_cidr
                .clone()
                .or(file.pod_cidr)
                .unwrap_or_default(),
            cluster_dns,
            cluster_domain: options
                .cluster_domain
                .clone()
                .or(file.cluster_domain)
                .unwrap_or_default(),
            static_pod_path: options
                .pod_manifest_path
                .clone()
                .or(file.static_pod_path)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            sync_frequency,
            node_status_update_frequency,
            node_status_report_frequency,
            node_lease_duration_seconds,
            system_reserved,
            kube_reserved,
            eviction_hard,
            register_node: options.register_node.or(file.register_node).unwrap_or(true),
            register_with_taints,
            cgroup_driver,
            container_runtime_endpoint,
            image_service_endpoint,
            fail_swap_on: options.fail_swap_on.or(file.fail_swap_on).unwrap_or(true),
            tls_cert_file,
            tls_private_key_file,
            authentication,
            authorization,
            kube_api_qps: qps,
            kube_api_burst,
            enable_controller_attach_detach: file.enable_controller_attach_detach.unwrap_or(true),
            provider_id: file.provider_id.unwrap_or_default(),
            root_dir: options.root_dir.clone(),
            cert_dir: options.cert_dir.clone(),
            hostname_override,
            node_ips,
            node_labels,
            hollow_nodes,
        })
    }

    /// Whether the runtime is the simulated one.
    pub fn simulated(&self) -> bool {
        self.container_runtime_endpoint == SIM_ENDPOINT
    }
}

/// The HTTPS port's authentication and authorization: flags over the file over upstream's
/// defaults (webhook token authentication, Webhook authorization, no anonymous users).
fn resolve_auth(
    file: &KubeletConfiguration,
    options: &Options,
    source: &dyn Fn(&str, &str) -> String,
    errors: &mut Vec<String>,
) -> (Authentication, Authorization) {
    let file_auth = file.authentication.clone().unwrap_or_default();
    let authentication = Authentication {
        anonymous: options
            .anonymous_auth
            .or(file_auth.anonymous.as_ref().and_then(|a| a.enabled))
            .unwrap_or(false),
        webhook: options
            .authentication_token_webhook
            .or(file_auth.webhook.as_ref().and_then(|w| w.enabled))
            .unwrap_or(true),
        webhook_cache_ttl: file_auth
            .webhook
            .as_ref()
            .and_then(|w| w.cache_ttl)
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(120)),
        client_ca_file: options
            .client_ca_file
            .clone()
            .or(file_auth
                .x509
                .as_ref()
                .and_then(|x| x.client_ca_file.clone()))
            .filter(|f| !f.is_empty())
            .map(PathBuf::from),
    };
    let file_authz = file.authorization.clone().unwrap_or_default();
    let mode = options
        .authorization_mode
        .clone()
        .or(file_authz.mode.clone())
        .unwrap_or_else(|| "Webhook".to_string());
    let mode = match mode.as_str() {
        "Webhook" => AuthorizationMode::Webhook,
        "AlwaysAllow" => AuthorizationMode::AlwaysAllow,
        other => {
            errors.push(format!(
                "{} {other:?} must be AlwaysAllow or Webhook",
                source("authorization.mode", "authorization-mode")
            ));
            AuthorizationMode::Webhook
        }
    };
    let authz_webhook = file_authz.webhook.clone().unwrap_or_default();
    let authorization = Authorization {
        mode,
        cache_authorized_ttl: authz_webhook
            .cache_authorized_ttl
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(300)),
        cache_unauthorized_ttl: authz_webhook
            .cache_unauthorized_ttl
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(30)),
    };
    (authentication, authorization)
}

/// `--node-ip`: one address, or two of different families (dual-stack).
pub fn parse_node_ips(text: &str) -> Result<Vec<IpAddr>, String> {
    let mut ips = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let ip: IpAddr = part
            .parse()
            .map_err(|_| format!("--node-ip: {part:?} is not a valid IP address"))?;
        ips.push(ip);
    }
    match ips.as_slice() {
        [] => Err("--node-ip: no address given".to_string()),
        [_] => Ok(ips),
        [a, b] if a.is_ipv4() != b.is_ipv4() => Ok(ips),
        [_, _] => Err(format!(
            "--node-ip {text:?}: dual-stack addresses must be one IPv4 and one IPv6"
        )),
        _ => Err(format!(
            "--node-ip {text:?}: at most two addresses (dual-stack)"
        )),
    }
}

/// Labels the kubelet may set on its own Node in the kubernetes.io / k8s.io namespaces.
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

fn label_namespace(key: &str) -> &str {
    key.split_once('/').map(|(ns, _)| ns).unwrap_or("")
}

fn is_kubernetes_label(key: &str) -> bool {
    let ns = label_namespace(key);
    ns == "kubernetes.io"
        || ns.ends_with(".kubernetes.io")
        || ns == "k8s.io"
        || ns.ends_with(".k8s.io")
}

fn is_kubelet_label(key: &str) -> bool {
    if KUBELET_LABELS.contains(&key) {
        return true;
    }
    let ns = label_namespace(key);
    KUBELET_LABEL_NAMESPACES
        .iter()
        .any(|allowed| ns == *allowed || ns.ends_with(&format!(".{allowed}")))
}

/// `--node-labels`: valid label keys and values, and in the kubernetes.io / k8s.io namespaces
/// only the labels a kubelet may set (upstream's rule, which NodeRestriction enforces too).
pub fn parse_node_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let labels = resources::parse_key_values(text, "--node-labels")?;
    for (key, value) in &labels {
        let problems = apimachinery::validation::is_qualified_name(key);
        if !problems.is_empty() {
            return Err(format!(
                "--node-labels: invalid label key {key:?}: {}",
                problems.join("; ")
            ));
        }
        let problems = apimachinery::validation::is_valid_label_value(value);
        if !problems.is_empty() {
            return Err(format!(
                "--node-labels: invalid label value {value:?} for {key}: {}",
                problems.join("; ")
            ));
        }
    }
    let invalid: Vec<&str> = labels
        .keys()
        .map(String::as_str)
        .filter(|k| is_kubernetes_label(k) && !is_kubelet_label(k))
        .collect();
    if !invalid.is_empty() {
        return Err(format!(
            "unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [{}]; \
             --node-labels in the 'kubernetes.io' namespace must begin with an allowed prefix ({}) \
             or be in the specifically allowed set ({})",
            invalid.join(" "),
            KUBELET_LABEL_NAMESPACES.join(", "),
            KUBELET_LABELS.join(", ")
        ));
    }
    Ok(labels)
}

/// `--register-with-taints`: comma-separated `key=value:Effect` or `key:Effect`.
pub fn parse_taints(text: &str) -> Result<Vec<Taint>, String> {
    let mut taints = Vec::new();
    for spec in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((key_value, effect)) = spec.rsplit_once(':') else {
            return Err(format!("invalid taint spec: {spec}"));
        };
        let (key, value) = match key_value.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (key_value, None),
        };
        let taint = Taint {
            key: key.to_string(),
            value,
            effect: effect.to_string(),
            time_added: None,
        };
        validate_taint(&taint)?;
        taints.push(taint);
    }
    Ok(taints)
}

fn validate_taint(taint: &Taint) -> Result<(), String> {
    let problems = apimachinery::validation::is_qualified_name(&taint.key);
    if !problems.is_empty() {
        return Err(format!(
            "invalid taint key {:?}: {}",
            taint.key,
            problems.join("; ")
        ));
    }
    if let Some(value) = &taint.value {
        let problems = apimachinery::validation::is_valid_label_value(value);
        if !problems.is_empty() {
            return Err(format!(
                "invalid taint value {value:?}: {}",
                problems.join("; ")
            ));
        }
    }
    match taint.effect.as_str() {
        "NoSchedule" | "PreferNoSchedule" | "NoExecute" => Ok(()),
        other => Err(format!(
            "invalid taint effect: {other}, unsupported taint effect"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn options(args: &[&str]) -> Options {
        let mut all = vec!["kubelet"];
        all.extend_from_slice(args);
        Options::try_parse_from(all).unwrap()
    }

    fn parse(text: &str) -> Result<KubeletConfiguration, ConfigError> {
        KubeletConfiguration::parse(Path::new("/etc/kubelet.yaml"), text).map(|(c, _)| c)
    }

    #[test]
    fn defaults_are_upstreams() {
        let c =
            KubeletConfig::resolve(KubeletConfiguration::default(), &options(&[]), None).unwrap();
        assert_eq!(c.port, 10250);
        assert_eq!(c.read_only_port, 0);
        assert_eq!(c.healthz_port, 10248);
        assert_eq!(c.healthz_bind_address, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(c.max_pods, 110);
        assert_eq!(c.node_status_update_frequency, Duration::from_secs(10));
        assert_eq!(c.node_status_report_frequency, Duration::from_secs(300));
        assert_eq!(c.node_lease_duration_seconds, 40);
        assert_eq!(c.sync_frequency, Duration::from_secs(60));
        assert_eq!(c.container_runtime_endpoint, DEFAULT_RUNTIME_ENDPOINT);
        assert_eq!(c.image_service_endpoint, DEFAULT_RUNTIME_ENDPOINT);
        assert_eq!(c.cgroup_driver, "cgroupfs");
        assert!(c.register_node && c.fail_swap_on && c.enable_controller_attach_detach);
        assert!(!c.authentication.anonymous && c.authentication.webhook);
        assert_eq!(c.authorization.mode, AuthorizationMode::Webhook);
        assert_eq!(c.eviction_hard.len(), 5);
        assert_eq!(c.kube_api_qps, 50.0);
        assert_eq!(c.kube_api_burst, 100);
    }

    const FILE: &str = r#"
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 10.0.0.1
port: 10260
maxPods: 50
podCIDR: 10.244.1.0/24
clusterDNS: [10.96.0.10]
clusterDomain: cluster.local
staticPodPath: /etc/kubernetes/manifests
nodeStatusUpdateFrequency: 4s
nodeLeaseDurationSeconds: 8
systemReserved: {cpu: 500m, memory: 1Gi}
evictionHard: {memory.available: 200Mi}
registerWithTaints:
- {key: dedicated, value: infra, effect: NoSchedule}
cgroupDriver: systemd
containerRuntimeEndpoint: unix:///run/other.sock
failSwapOn: false
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false, cacheTTL: 1m}
  x509: {clientCAFile: /etc/kubernetes/pki/ca.crt}
authorization: {mode: AlwaysAllow}
kubeAPIQPS: 20
featureGates: {SomeGate: true}
"#;

    #[test]
    fn the_file_sets_values_and_flags_override_them() {
        let file = parse(FILE).unwrap();
        let c = KubeletConfig::resolve(file.clone(), &options(&[]), None).unwrap();
        assert_eq!(c.address, IpAddr::from([10, 0, 0, 1]));
        assert_eq!(c.port, 10260);
        assert_eq!(c.max_pods, 50);
        assert_eq!(c.pod_cidr, "10.244.1.0/24");
        assert_eq!(c.cluster_dns, vec![IpAddr::from([10, 96, 0, 10])]);
        assert_eq!(c.cluster_domain, "cluster.local");
        assert_eq!(
            c.static_pod_path,
            Some(PathBuf::from("/etc/kubernetes/manifests"))
        );
        assert_eq!(c.node_status_update_frequency, Duration::from_secs(4));
        // Set explicitly in the file: the report frequency follows it (upstream's rule).
        assert_eq!(c.node_status_report_frequency, Duration::from_secs(4));
        assert_eq!(c.node_lease_duration_seconds, 8);
        assert_eq!(resources::format_list(&c.system_reserved)["memory"], "1Gi");
        // Only the signal the file names: the others are off without merging.
        assert_eq!(c.eviction_hard.len(), 1);
        assert_eq!(c.register_with_taints.len(), 1);
        assert_eq!(c.register_with_taints[0].key, "dedicated");
        assert_eq!(c.cgroup_driver, "systemd");
        assert_eq!(c.container_runtime_endpoint, "unix:///run/other.sock");
        assert!(!c.fail_swap_on);
        assert!(c.authentication.anonymous && !c.authentication.webhook);
        assert_eq!(c.authentication.webhook_cache_ttl, Duration::from_secs(60));
        assert_eq!(
            c.authentication.client_ca_file,
            Some(PathBuf::from("/etc/kubernetes/pki/ca.crt"))
        );
        assert_eq!(c.authorization.mode, AuthorizationMode::AlwaysAllow);
        assert_eq!(c.kube_api_qps, 20.0);

        let flags = options(&[
            "--max-pods=30",
            "--port=10250",
            "--container-runtime-endpoint=sim://",
            "--node-status-update-frequency=2s",
            "--fail-swap-on=true",
            "--system-reserved=cpu=1",
            "--eviction-hard=memory.available<300Mi,nodefs.available<5%",
            "--register-with-taints=a=b:NoExecute,c:PreferNoSchedule",
            "--anonymous-auth=false",
            "--authorization-mode=Webhook",
            "--kube-api-qps=5",
        ]);
        let c = KubeletConfig::resolve(file, &flags, None).unwrap();
        assert_eq!(c.max_pods, 30);
        assert_eq!(c.port, 10250);
        assert!(c.simulated());
        assert_eq!(c.image_service_endpoint, SIM_ENDPOINT);
        assert_eq!(c.node_status_update_frequency, Duration::from_secs(2));
        assert!(c.fail_swap_on);
        assert_eq!(resources::format_list(&c.system_reserved)["cpu"], "1");
        assert!(!c.system_reserved.contains_key("memory"));
        assert_eq!(c.eviction_hard.len(), 2);
        assert_eq!(c.register_with_taints.len(), 2);
        assert_eq!(c.register_with_taints[1].value, None);
        assert!(!c.authentication.anonymous);
        assert_eq!(c.authorization.mode, AuthorizationMode::Webhook);
        assert_eq!(c.kube_api_qps, 5.0);
        // Values only the file sets survive.
        assert_eq!(c.cluster_domain, "cluster.local");
    }

    #[test]
    fn tab_indented_json_parses() {
        let text = "{\n\t\"apiVersion\": \"kubelet.config.k8s.io/v1beta1\",\n\t\"kind\": \"KubeletConfiguration\",\n\t\"authentication\": {\n\t\t\"anonymous\": {\"enabled\": false}\n\t},\n\t\"maxPods\": 12\n}\n";
        let (file, _) = KubeletConfiguration::parse(Path::new("/k.json"), text).unwrap();
        assert_eq!(file.max_pods, Some(12));
    }

    #[test]
    fn json_files_parse_too_and_unknown_fields_are_reported() {
        let text = r#"{"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                       "maxPods": 12, "readOnlyPort": 10255, "noSuchField": 1, "featureGates": {}}"#;
        let (file, unknown) = KubeletConfiguration::parse(Path::new("/k.json"), text).unwrap();
        assert_eq!(file.max_pods, Some(12));
        assert_eq!(unknown, vec!["noSuchField".to_string()]);
        let c = KubeletConfig::resolve(file, &options(&[]), None).unwrap();
        assert_eq!(c.read_only_port, 10255);
    }

    #[test]
    fn malformed_files_name_the_file_and_field_on_one_line() {
        let cases: &[(&str, &[&str])] = &[
            (
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: lots\n",
                &["/etc/kubelet.yaml", "maxPods", "invalid type"],
            ),
            (
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication:\n  webhook:\n    enabled: maybe\n",
                &["/etc/kubelet.yaml", "authentication.webhook.enabled"],
            ),
            (
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nsyncFrequency: soon\n",
                &["/etc/kubelet.yaml", "syncFrequency", "soon"],
            ),
            (
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: [1\n",
                &["/etc/kubelet.yaml", "line"],
            ),
            ("kind: KubeletConfiguration\n", &["/etc/kubelet.yaml", "apiVersion"]),
            (
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeProxyConfiguration\n",
                &["kind is \"KubeProxyConfiguration\""],
            ),
            ("- just a list\n", &["not a KubeletConfiguration"]),
        ];
        for (text, wants) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(!err.contains('\n'), "one line: {err}");
            assert!(
                err.starts_with("failed to load kubelet config file, path: /etc/kubelet.yaml"),
                "{err}"
            );
            for want in *wants {
                assert!(err.contains(want), "{want:?} in {err}");
            }
        }
    }

    #[test]
    fn bad_values_are_invalid_configuration() {
        let path = Path::new("/etc/kubelet.yaml");
        let cases: &[(&str, &[&str], &str)] = &[
            (
                "nodeLeaseDurationSeconds: 0",
                &[],
                "nodeLeaseDurationSeconds (/etc/kubelet.yaml) must be greater than 0",
            ),
            (
                "port: 70000",
                &[],
                "port (--port or /etc/kubelet.yaml) 70000 must be between 1 and 65535",
            ),
            (
                "maxPods: -1",
                &[],
                "maxPods (--max-pods or /etc/kubelet.yaml) -1 must not be a negative number",
            ),
            ("cgroupDriver: none", &[], "must be cgroupfs or systemd"),
            (
                "systemReserved: {memory: lots}",
                &[],
                "invalid quantity \"lots\" for memory",
            ),
            (
                "evictionHard: {memory.free: 1Gi}",
                &[],
                "unsupported eviction signal memory.free",
            ),
            (
                "registerWithTaints: [{key: a, effect: Sometimes}]",
                &[],
                "invalid taint effect: Sometimes",
            ),
            ("nodeStatusUpdateFrequency: 0s", &[], "must be > 0"),
            (
                "",
                &["--node-labels=node-role.kubernetes.io/master="],
                "unknown 'kubernetes.io' or 'k8s.io' labels",
            ),
            (
                "",
                &["--node-ip=10.0.0.1,10.0.0.2"],
                "one IPv4 and one IPv6",
            ),
            (
                "",
                &["--hostname-override=Not_Valid"],
                "not a valid node name",
            ),
            (
                "",
                &[
                    "--hollow-nodes=3",
                    "--container-runtime-endpoint=unix:///x.sock",
                ],
                "must be sim://",
            ),
        ];
        for (body, flags, want) in cases {
            let text = format!(
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n{body}\n"
            );
            let (file, _) = KubeletConfiguration::parse(path, &text).unwrap();
            let err = KubeletConfig::resolve(file, &options(flags), Some(path))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("invalid configuration: "), "{err}");
            assert!(err.contains(want), "{want:?} in {err}");
        }
    }

    #[test]
    fn node_labels_and_taints_parse() {
        let labels =
            parse_node_labels("node.kubernetes.io/pool=a,example.com/team=x,plain=1").unwrap();
        assert_eq!(labels.len(), 3);
        assert!(parse_node_labels("kubernetes.io/hostname=h").is_ok());
        assert!(parse_node_labels("kubelet.kubernetes.io/x=y").is_ok());
        assert!(parse_node_labels("foo.k8s.io/x=y").is_err());
        assert!(parse_node_labels("bad key=y").is_err());
        let taints = parse_taints("dedicated=gpu:NoSchedule,spot:PreferNoSchedule").unwrap();
        assert_eq!(taints[0].value.as_deref(), Some("gpu"));
        assert_eq!(taints[1].key, "spot");
        assert!(parse_taints("novalue").is_err());
        let hollow = KubeletConfig::resolve(
            KubeletConfiguration::default(),
            &options(&["--hollow-nodes=5"]),
            None,
        )
        .unwrap();
        assert!(
            hollow.simulated(),
            "hollow nodes default to the simulated runtime"
        );
    }
}
