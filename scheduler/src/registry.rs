//! The in-tree registry (plugin name -> factory) and the building of a profile's framework
//! from its resolved plugin sets and `pluginConfig` args.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Context};
use serde_json::Value;

use crate::config::{resolve_plugins, Profile, DEFAULT_SCHEDULER_NAME};
use crate::framework::{Framework, Handle, Plugin, PluginFactory, Point};
use crate::plugins::*;

/// Every in-tree plugin by name.
pub fn in_tree() -> HashMap<&'static str, PluginFactory> {
    let entries: [(&'static str, PluginFactory); 18] = [
        (prioritysort::NAME, prioritysort::new),
        (schedulinggates::NAME, schedulinggates::new),
        (nodeunschedulable::NAME, nodeunschedulable::new),
        (nodename::NAME, nodename::new),
        (tainttoleration::NAME, tainttoleration::new),
        (nodeaffinity::NAME, nodeaffinity::new),
        (nodeports::NAME, nodeports::new),
        (noderesources::FIT_NAME, noderesources::new_fit),
        (
            noderesources::BALANCED_ALLOCATION_NAME,
            noderesources::new_balanced_allocation,
        ),
        (imagelocality::NAME, imagelocality::new),
        (defaultbinder::NAME, defaultbinder::new),
        (podtopologyspread::NAME, podtopologyspread::new),
        (interpodaffinity::NAME, interpodaffinity::new),
        (volumebinding::NAME, volumebinding::new),
        (volumerestrictions::NAME, volumerestrictions::new),
        (nodevolumelimits::NAME, nodevolumelimits::new),
        (volumezone::NAME, volumezone::new),
        (defaultpreemption::NAME, defaultpreemption::new),
    ];
    entries.into_iter().collect()
}

/// A profile's framework: its plugins built once each with their args, placed at every
/// extension point the merged configuration gives them.
pub fn build_framework(
    profile: &Profile,
    handle: &Handle,
    global_percentage: Option<i32>,
    parallelism: usize,
) -> anyhow::Result<Framework> {
    let registry = in_tree();
    let resolved = resolve_plugins(profile);
    let args: HashMap<&str, &Value> = profile
        .plugin_config
        .iter()
        .filter_map(|pc| pc.args.as_ref().map(|a| (pc.name.as_str(), a)))
        .collect();
    let mut names: Vec<&str> = resolved
        .multi_point
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    names.extend(resolved.enabled.values().flatten().map(|(n, _)| n.as_str()));
    let mut instances: HashMap<String, Arc<dyn Plugin>> = HashMap::new();
    for name in names {
        if instances.contains_key(name) {
            continue;
        }
        let Some(factory) = registry.get(name) else {
            bail!("plugin {name:?} does not exist");
        };
        let plugin = factory(args.get(name).copied(), handle)
            .with_context(|| format!("initializing plugin {name:?}"))?;
        instances.insert(name.to_string(), plugin);
    }
    let mut enabled = Vec::new();
    let mut weights = HashMap::new();
    for point in Point::ALL {
        let list = resolved.for_point(point.config_name(), |n| {
            instances
                .get(n)
                .is_some_and(|p| point.implemented_by(p.as_ref()))
        });
        for (name, weight) in list {
            let Some(plugin) = instances.get(&name) else {
                continue;
            };
            if point == Point::Score {
                weights.insert(
                    plugin.name(),
                    i64::from(if weight == 0 { 1 } else { weight }),
                );
            }
            enabled.push((point, plugin.clone()));
        }
    }
    let name = profile
        .scheduler_name
        .clone()
        .unwrap_or_else(|| DEFAULT_SCHEDULER_NAME.into());
    let percentage = profile
        .percentage_of_nodes_to_score
        .or(global_percentage)
        .filter(|p| *p > 0);
    Framework::new(
        name,
        handle.clone(),
        enabled,
        weights,
        percentage,
        parallelism,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KubeSchedulerConfiguration;

    #[test]
    fn the_default_profile_builds_with_upstream_points_and_weights() {
        let config = KubeSchedulerConfiguration::default_config();
        let fw = build_framework(&config.profiles[0], &Handle::for_tests(), None, 1).unwrap();
        let names = |p: Point| -> Vec<&str> { fw.plugins_at(p).iter().map(|p| p.name()).collect() };
        assert_eq!(names(Point::QueueSort), ["PrioritySort"]);
        assert_eq!(
            names(Point::PreEnqueue),
            ["SchedulingGates", "DefaultPreemption"]
        );
        assert_eq!(names(Point::Bind), ["DefaultBinder"]);
        assert_eq!(names(Point::PostFilter), ["DefaultPreemption"]);
        assert_eq!(
            names(Point::Filter),
            [
                "NodeUnschedulable",
                "NodeName",
                "TaintToleration",
                "NodeAffinity",
                "NodePorts",
                "NodeResourcesFit",
                "VolumeRestrictions",
                "NodeVolumeLimits",
                "VolumeBinding",
                "VolumeZone",
                "PodTopologySpread",
                "InterPodAffinity",
            ]
        );
        assert_eq!(
            names(Point::Score),
            [
                "TaintToleration",
                "NodeAffinity",
                "NodeResourcesFit",
                "VolumeBinding",
                "PodTopologySpread",
                "InterPodAffinity",
                "NodeResourcesBalancedAllocation",
                "ImageLocality",
            ]
        );
    }

    #[test]
    fn unknown_plugins_and_bad_args_fail_at_start() {
        let profile: Profile = serde_json::from_value(serde_json::json!({
            "plugins": {"filter": {"enabled": [{"name": "NoSuchPlugin"}]}}
        }))
        .unwrap();
        let err = build_framework(&profile, &Handle::for_tests(), None, 1)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains("\"NoSuchPlugin\" does not exist"), "{err}");
        let profile: Profile = serde_json::from_value(serde_json::json!({
            "pluginConfig": [{"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "Bogus"}}}]
        }))
        .unwrap();
        assert!(build_framework(&profile, &Handle::for_tests(), None, 1).is_err());
    }
}
