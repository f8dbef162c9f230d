//! `KubeSchedulerConfiguration` (kubescheduler.config.k8s.io/v1) from `--config`: decoding
//! (strict, as upstream: unknown fields are errors), upstream's defaults, validation, and the
//! merge of a profile's plugin sets with the default ones.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const API_VERSION: &str = "kubescheduler.config.k8s.io/v1";
pub const KIND: &str = "KubeSchedulerConfiguration";
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// The profile a pod asks for: `spec.schedulerName`, the default one when unset.
pub fn scheduler_name(pod: &k8s_openapi::api::core::v1::Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_SCHEDULER_NAME)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeSchedulerConfiguration {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub parallelism: Option<i32>,
    #[serde(default)]
    pub leader_election: LeaderElection,
    #[serde(default)]
    pub client_connection: ClientConnection,
    pub healthz_bind_address: Option<String>,
    pub metrics_bind_address: Option<String>,
    pub enable_profiling: Option<bool>,
    pub enable_contention_profiling: Option<bool>,
    pub percentage_of_nodes_to_score: Option<i32>,
    pub pod_initial_backoff_seconds: Option<i64>,
    pub pod_max_backoff_seconds: Option<i64>,
    #[serde(default)]
    pub profiles: Vec<Profile>,
    #[serde(default)]
    pub extenders: Vec<Value>,
    pub delay_cache_until_active: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeaderElection {
    pub leader_elect: Option<bool>,
    pub lease_duration: Option<String>,
    pub renew_deadline: Option<String>,
    pub retry_period: Option<String>,
    pub resource_lock: Option<String>,
    pub resource_name: Option<String>,
    pub resource_namespace: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientConnection {
    pub kubeconfig: Option<String>,
    pub accept_content_types: Option<String>,
    pub content_type: Option<String>,
    pub qps: Option<f32>,
    pub burst: Option<i32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    pub scheduler_name: Option<String>,
    pub percentage_of_nodes_to_score: Option<i32>,
    pub plugins: Option<Plugins>,
    #[serde(default)]
    pub plugin_config: Vec<PluginConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plugins {
    pub pre_enqueue: Option<PluginSet>,
    pub queue_sort: Option<PluginSet>,
    pub pre_filter: Option<PluginSet>,
    pub filter: Option<PluginSet>,
    pub post_filter: Option<PluginSet>,
    pub pre_score: Option<PluginSet>,
    pub score: Option<PluginSet>,
    pub reserve: Option<PluginSet>,
    pub permit: Option<PluginSet>,
    pub pre_bind: Option<PluginSet>,
    pub bind: Option<PluginSet>,
    pub post_bind: Option<PluginSet>,
    pub multi_point: Option<PluginSet>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginSet {
    #[serde(default)]
    pub enabled: Vec<PluginRef>,
    #[serde(default)]
    pub disabled: Vec<PluginRef>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginRef {
    pub name: String,
    pub weight: Option<i32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginConfig {
    pub name: String,
    #[serde(default)]
    pub args: Option<Value>,
}

/// Upstream's default profile: every plugin at every point it implements, in this order, with
/// these Score weights (`getDefaultPlugins` for v1).
pub const DEFAULT_PLUGINS: &[(&str, i32)] = &[
    ("SchedulingGates", 0),
    ("PrioritySort", 0),
    ("NodeUnschedulable", 0),
    ("NodeName", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("VolumeRestrictions", 0),
    ("NodeVolumeLimits", 0),
    ("VolumeBinding", 0),
    ("VolumeZone", 0),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", 0),
];

impl KubeSchedulerConfiguration {
    /// Reads `path` (YAML or JSON), decodes strictly and applies the defaults.
    pub fn load(path: &Path) -> anyhow::Result<KubeSchedulerConfiguration> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the scheduler configuration {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<KubeSchedulerConfiguration> {
        let raw: Value = serde_yaml::from_str(text).context("the configuration is not YAML")?;
        let api_version = raw.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = raw.get("kind").and_then(Value::as_str).unwrap_or("");
        if kind != KIND {
            bail!("no kind {kind:?} is registered for version {api_version:?}; want kind {KIND:?}");
        }
        if api_version != API_VERSION {
            bail!(
                "no kind {KIND:?} is registered for version {api_version:?} in scheme (want {API_VERSION})"
            );
        }
        let mut config: KubeSchedulerConfiguration = serde_json::from_value(raw)
            .map_err(|e| anyhow::anyhow!("strict decoding error: {e}"))?;
        config.set_defaults();
        config.validate()?;
        Ok(config)
    }

    /// The configuration with no file: upstream's defaults.
    pub fn default_config() -> KubeSchedulerConfiguration {
        let mut config = KubeSchedulerConfiguration {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            ..KubeSchedulerConfiguration::default()
        };
        config.set_defaults();
        config
    }

    fn set_defaults(&mut self) {
        self.parallelism.get_or_insert(16);
        self.pod_initial_backoff_seconds.get_or_insert(1);
        self.pod_max_backoff_seconds.get_or_insert(10);
        self.percentage_of_nodes_to_score.get_or_insert(0);
        let le = &mut self.leader_election;
        le.leader_elect.get_or_insert(true);
        le.lease_duration.get_or_insert_with(|| "15s".into());
        le.renew_deadline.get_or_insert_with(|| "10s".into());
        le.retry_period.get_or_insert_with(|| "2s".into());
        le.resource_lock.get_or_insert_with(|| "leases".into());
        le.resource_name
            .get_or_insert_with(|| "kube-scheduler".into());
        le.resource_namespace
            .get_or_insert_with(|| "kube-system".into());
        let cc = &mut self.client_connection;
        cc.qps.get_or_insert(50.0);
        cc.burst.get_or_insert(100);
        cc.content_type
            .get_or_insert_with(|| "application/vnd.kubernetes.protobuf".into());
        if self.profiles.is_empty() {
            self.profiles.push(Profile::default());
        }
        for p in &mut self.profiles {
            p.scheduler_name
                .get_or_insert_with(|| DEFAULT_SCHEDULER_NAME.into());
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        let mut errors = Vec::new();
        if self.parallelism.is_some_and(|p| p <= 0) {
            errors.push(
                "parallelism: Invalid value: should be an integer value greater than zero"
                    .to_string(),
            );
        }
        let pct_ok = |p: Option<i32>| p.is_none_or(|p| (0..=100).contains(&p));
        if !pct_ok(self.percentage_of_nodes_to_score) {
            errors.push(format!(
                "percentageOfNodesToScore: Invalid value: {}: not in valid range [0-100]",
                self.percentage_of_nodes_to_score.unwrap_or(0)
            ));
        }
        let initial = self.pod_initial_backoff_seconds.unwrap_or(1);
        let max = self.pod_max_backoff_seconds.unwrap_or(10);
        if initial <= 0 {
            errors.push(format!(
                "podInitialBackoffSeconds: Invalid value: {initial}: must be greater than 0"
            ));
        }
        if max < initial {
            errors.push(format!(
                "podMaxBackoffSeconds: Invalid value: {max}: must be greater than or equal to PodInitialBackoffSeconds"
            ));
        }
        if !self.extenders.is_empty() {
            errors
                .push("extenders: Unsupported value: scheduler extenders are not supported".into());
        }
        let mut names = HashSet::new();
        let mut queue_sorts = HashSet::new();
        for (i, p) in self.profiles.iter().enumerate() {
            let name = p.scheduler_name.clone().unwrap_or_default();
            if name.is_empty() {
                errors.push(format!("profiles[{i}].schedulerName: Required value"));
            } else if !names.insert(name.clone()) {
                errors.push(format!(
                    "profiles[{i}].schedulerName: Duplicate value: {name:?}"
                ));
            }
            if !pct_ok(p.percentage_of_nodes_to_score) {
                errors.push(format!(
                    "profiles[{i}].percentageOfNodesToScore: Invalid value: {}: not in valid range [0-100]",
                    p.percentage_of_nodes_to_score.unwrap_or(0)
                ));
            }
            let mut seen = HashSet::new();
            for (j, pc) in p.plugin_config.iter().enumerate() {
                if !seen.insert(pc.name.clone()) {
                    errors.push(format!(
                        "profiles[{i}].pluginConfig[{j}]: Duplicate value: {:?}",
                        pc.name
                    ));
                }
            }
            let resolved = resolve_plugins(p);
            let sorts: Vec<&String> = resolved.queue_sort_candidates().collect();
            queue_sorts.insert(format!("{sorts:?}"));
            for (point, set) in p.plugins.iter().flat_map(Plugins::sets) {
                for (j, r) in set.enabled.iter().enumerate() {
                    if r.weight.is_some_and(|w| w < 0) {
                        errors.push(format!(
                            "profiles[{i}].plugins.{point}.enabled[{j}].weight: Invalid value: {}: must be a non-negative integer",
                            r.weight.unwrap_or(0)
                        ));
                    }
                }
            }
        }
        if queue_sorts.len() > 1 {
            errors.push("profiles[1].plugins.queueSort: Invalid value: queueSort must be the same for all profiles".into());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            bail!(
                "invalid KubeSchedulerConfiguration: [{}]",
                errors.join(", ")
            )
        }
    }
}

impl Plugins {
    /// Every configured set with its field name.
    pub fn sets(&self) -> Vec<(&'static str, &PluginSet)> {
        [
            ("preEnqueue", &self.pre_enqueue),
            ("queueSort", &self.queue_sort),
            ("preFilter", &self.pre_filter),
            ("filter", &self.filter),
            ("postFilter", &self.post_filter),
            ("preScore", &self.pre_score),
            ("score", &self.score),
            ("reserve", &self.reserve),
            ("permit", &self.permit),
            ("preBind", &self.pre_bind),
            ("bind", &self.bind),
            ("postBind", &self.post_bind),
            ("multiPoint", &self.multi_point),
        ]
        .into_iter()
        .filter_map(|(n, s)| s.as_ref().map(|s| (n, s)))
        .collect()
    }

    fn set(&self, point: &str) -> Option<&PluginSet> {
        self.sets()
            .into_iter()
            .find(|(n, _)| *n == point)
            .map(|(_, s)| s)
    }
}

/// A profile's plugins after merging with the defaults: the multiPoint list and, per specific
/// extension point, what is enabled and disabled there.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolvedPlugins {
    pub multi_point: Vec<(String, i32)>,
    /// Field name ("filter") -> enabled plugins with weights, in order.
    pub enabled: HashMap<&'static str, Vec<(String, i32)>>,
    /// Field name -> disabled plugin names ("*" = all multiPoint ones).
    pub disabled: HashMap<&'static str, HashSet<String>>,
}

impl ResolvedPlugins {
    fn queue_sort_candidates(&self) -> impl Iterator<Item = &String> {
        let disabled = self.disabled.get("queueSort");
        let specific = self.enabled.get("queueSort").into_iter().flatten();
        specific
            .map(|(n, _)| n)
            .chain(self.multi_point.iter().map(|(n, _)| n).filter(move |n| {
                n.as_str() == "PrioritySort"
                    && !disabled.is_some_and(|d| d.contains(*n) || d.contains("*"))
            }))
    }

    /// The plugins a point gets, upstream's order: plugins enabled at the point that are
    /// also multiPoint ones (overrides) first, then the remaining multiPoint plugins that
    /// `implements` says extend the point and that are not disabled there, then the point's
    /// other enabled plugins.
    pub fn for_point(
        &self,
        point: &'static str,
        implements: impl Fn(&str) -> bool,
    ) -> Vec<(String, i32)> {
        let specific = self.enabled.get(point).cloned().unwrap_or_default();
        let disabled = self.disabled.get(point).cloned().unwrap_or_default();
        let in_multi: HashSet<&str> = self.multi_point.iter().map(|(n, _)| n.as_str()).collect();
        let mut out: Vec<(String, i32)> = specific
            .iter()
            .filter(|(n, _)| in_multi.contains(n.as_str()))
            .cloned()
            .collect();
        for (name, weight) in &self.multi_point {
            if disabled.contains(name) || disabled.contains("*") {
                continue;
            }
            if out.iter().any(|(n, _)| n == name) || !implements(name) {
                continue;
            }
            out.push((name.clone(), *weight));
        }
        for (name, weight) in specific {
            if !out.iter().any(|(n, _)| *n == name) {
                out.push((name, weight));
            }
        }
        out
    }
}

/// Merges one set over defaults (upstream's `mergePluginSet`): defaults minus the disabled
/// ones ("*" disables them all); an enabled plugin that is also a default replaces it in place
/// (new weight), others are appended.
fn merge_set(defaults: &[(String, i32)], custom: Option<&PluginSet>) -> Vec<(String, i32)> {
    let Some(custom) = custom else {
        return defaults.to_vec();
    };
    let disabled: HashSet<&str> = custom.disabled.iter().map(|r| r.name.as_str()).collect();
    let mut out: Vec<(String, i32)> = if disabled.contains("*") {
        Vec::new()
    } else {
        defaults
            .iter()
            .filter(|(n, _)| !disabled.contains(n.as_str()))
            .cloned()
            .collect()
    };
    for r in &custom.enabled {
        let weight = r.weight.unwrap_or(0);
        match out.iter_mut().find(|(n, _)| *n == r.name) {
            Some(existing) => existing.1 = weight,
            None => out.push((r.name.clone(), weight)),
        }
    }
    out
}

/// A profile's plugin configuration merged with the defaults.
pub fn resolve_plugins(profile: &Profile) -> ResolvedPlugins {
    let defaults: Vec<(String, i32)> = DEFAULT_PLUGINS
        .iter()
        .map(|(n, w)| (n.to_string(), *w))
        .collect();
    let plugins = profile.plugins.clone().unwrap_or_default();
    let mut resolved = ResolvedPlugins {
        multi_point: merge_set(&defaults, plugins.multi_point.as_ref()),
        ..ResolvedPlugins::default()
    };
    for point in [
        "preEnqueue",
        "queueSort",
        "preFilter",
        "filter",
        "postFilter",
        "preScore",
        "score",
        "reserve",
        "permit",
        "preBind",
        "bind",
        "postBind",
    ] {
        if let Some(set) = plugins.set(point) {
            resolved.enabled.insert(
                point,
                set.enabled
                    .iter()
                    .map(|r| (r.name.clone(), r.weight.unwrap_or(0)))
                    .collect(),
            );
            resolved
                .disabled
                .insert(point, set.disabled.iter().map(|r| r.name.clone()).collect());
        }
    }
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_means_the_default_profile() {
        let c = KubeSchedulerConfiguration::default_config();
        assert_eq!(c.profiles.len(), 1);
        assert_eq!(
            c.profiles[0].scheduler_name.as_deref(),
            Some("default-scheduler")
        );
        assert_eq!(c.parallelism, Some(16));
        assert_eq!(c.pod_initial_backoff_seconds, Some(1));
        assert_eq!(c.pod_max_backoff_seconds, Some(10));
        assert_eq!(
            c.leader_election.resource_name.as_deref(),
            Some("kube-scheduler")
        );
        let r = resolve_plugins(&c.profiles[0]);
        assert_eq!(r.multi_point.len(), DEFAULT_PLUGINS.len());
        assert!(r.multi_point.contains(&("TaintToleration".into(), 3)));
    }

    #[test]
    fn profiles_merge_with_the_defaults() {
        let c = KubeSchedulerConfiguration::parse(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: no-scoring
  plugins:
    multiPoint:
      enabled:
      - name: NodeResourcesFit
        weight: 5
      disabled:
      - name: ImageLocality
    score:
      disabled:
      - name: '*'
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
"#,
        )
        .unwrap();
        assert_eq!(c.profiles.len(), 2);
        let r = resolve_plugins(&c.profiles[1]);
        assert!(r.multi_point.contains(&("NodeResourcesFit".into(), 5)));
        assert!(!r.multi_point.iter().any(|(n, _)| n == "ImageLocality"));
        // Every multiPoint plugin is disabled for Score.
        assert!(r.for_point("score", |_| true).is_empty());
        // ... but not for Filter, in the default order.
        let filters = r.for_point("filter", |n| n.starts_with("Node"));
        let names: Vec<&str> = filters.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "NodeUnschedulable",
                "NodeName",
                "NodeAffinity",
                "NodePorts",
                "NodeResourcesFit",
                "NodeVolumeLimits",
                "NodeResourcesBalancedAllocation"
            ]
        );
    }

    #[test]
    fn a_point_override_comes_first_with_its_weight() {
        let p: Profile = serde_json::from_value(serde_json::json!({
            "plugins": {"score": {"enabled": [{"name": "ImageLocality", "weight": 7}]}}
        }))
        .unwrap();
        let r = resolve_plugins(&p);
        let scores = r.for_point("score", |n| {
            ["TaintToleration", "ImageLocality"].contains(&n)
        });
        assert_eq!(scores[0], ("ImageLocality".to_string(), 7));
        assert_eq!(scores[1], ("TaintToleration".to_string(), 3));
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let unknown = KubeSchedulerConfiguration::parse(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nbogus: 1\n",
        )
        .unwrap_err();
        assert!(
            format!("{unknown:#}").contains("unknown field `bogus`"),
            "{unknown:#}"
        );
        let version = KubeSchedulerConfiguration::parse(
            "apiVersion: kubescheduler.config.k8s.io/v1beta1\nkind: KubeSchedulerConfiguration\n",
        )
        .unwrap_err();
        assert!(format!("{version:#}").contains("v1beta1"), "{version:#}");
        let dup = KubeSchedulerConfiguration::parse(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: a\n- schedulerName: a\n",
        )
        .unwrap_err();
        assert!(format!("{dup:#}").contains("Duplicate value"), "{dup:#}");
        let pct = KubeSchedulerConfiguration::parse(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\npercentageOfNodesToScore: 101\n",
        )
        .unwrap_err();
        assert!(format!("{pct:#}").contains("not in valid range"), "{pct:#}");
        assert!(KubeSchedulerConfiguration::parse("{{{").is_err());
    }
}
