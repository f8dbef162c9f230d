//! The hint registry: per profile, which events each plugin that can reject a pod wants to
//! hear about, and its queueing hints (upstream's `buildQueueingHintMap`).

use crate::framework::{
    ActionType, ClusterEvent, ClusterEventWithHint, EventResource, Framework, Point,
};

use super::HintRegistry;

/// Builds the hint registry of these profiles: the events of every plugin that can reject a
/// pod (at PreEnqueue, PreFilter, Filter, Reserve or Permit); a plugin that registers none is
/// registered for every event, as the `Plugin::events_to_register` contract says.
pub fn hint_registry<'a>(frameworks: impl IntoIterator<Item = &'a Framework>) -> HintRegistry {
    const REJECTING: [Point; 5] = [
        Point::PreEnqueue,
        Point::PreFilter,
        Point::Filter,
        Point::Reserve,
        Point::Permit,
    ];
    let mut registry = HintRegistry::new();
    for framework in frameworks {
        let entry = registry
            .entry(framework.profile_name().to_string())
            .or_default();
        for plugin in framework.plugins() {
            let name = plugin.name();
            let rejects = REJECTING.iter().any(|point| {
                framework
                    .plugins_at(*point)
                    .iter()
                    .any(|p| p.name() == name)
            });
            if !rejects {
                continue;
            }
            let events = plugin.events_to_register();
            if events.is_empty() {
                entry.push((
                    name,
                    ClusterEventWithHint::new(ClusterEvent::new(
                        EventResource::WildCard,
                        ActionType::ALL,
                        "WildCard",
                    )),
                ));
            } else {
                entry.extend(events.into_iter().map(|e| (name, e)));
            }
        }
    }
    registry
}
