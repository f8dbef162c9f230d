//! Per-cycle scratch space (upstream's `CycleState`): what a plugin computes in PreFilter or
//! PreScore and reads back in Filter or Score. Preemption clones it to try "what if these pods
//! were gone", so every entry knows how to copy itself.

use std::any::Any;
use std::collections::HashMap;

/// A value stored in the cycle state.
pub trait StateData: Any + Send + Sync {
    fn clone_data(&self) -> Box<dyn StateData>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Clone + Send + Sync> StateData for T {
    fn clone_data(&self) -> Box<dyn StateData> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Keyed by a string each plugin owns (upstream uses "PreFilter" + plugin name).
#[derive(Default)]
pub struct CycleState {
    data: HashMap<&'static str, Box<dyn StateData>>,
    /// Plugins whose PreFilter returned Skip: their Filter is not run this cycle.
    skip_filter: Vec<&'static str>,
    /// Plugins whose PreScore returned Skip: their Score is not run this cycle.
    skip_score: Vec<&'static str>,
}

impl Clone for CycleState {
    fn clone(&self) -> CycleState {
        CycleState {
            data: self
                .data
                .iter()
                .map(|(k, v)| (*k, v.as_ref().clone_data()))
                .collect(),
            skip_filter: self.skip_filter.clone(),
            skip_score: self.skip_score.clone(),
        }
    }
}

impl CycleState {
    pub fn new() -> CycleState {
        CycleState::default()
    }

    pub fn write<T: StateData>(&mut self, key: &'static str, value: T) {
        self.data.insert(key, Box::new(value));
    }

    /// The value under `key` if it is a `T`.
    pub fn read<T: 'static>(&self, key: &str) -> Option<&T> {
        self.data.get(key)?.as_ref().as_any().downcast_ref()
    }

    pub fn read_mut<T: 'static>(&mut self, key: &str) -> Option<&mut T> {
        self.data.get_mut(key)?.as_mut().as_any_mut().downcast_mut()
    }

    pub fn delete(&mut self, key: &str) {
        self.data.remove(key);
    }

    pub fn skip_filter(&mut self, plugin: &'static str) {
        self.skip_filter.push(plugin);
    }

    pub fn is_filter_skipped(&self, plugin: &str) -> bool {
        self.skip_filter.contains(&plugin)
    }

    pub fn skip_score(&mut self, plugin: &'static str) {
        self.skip_score.push(plugin);
    }

    pub fn is_score_skipped(&self, plugin: &str) -> bool {
        self.skip_score.contains(&plugin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Counts(Vec<u32>);

    #[test]
    fn typed_reads_and_deep_clones() {
        let mut state = CycleState::new();
        state.write("PreFilterX", Counts(vec![1, 2]));
        assert_eq!(
            state.read::<Counts>("PreFilterX"),
            Some(&Counts(vec![1, 2]))
        );
        assert_eq!(state.read::<u32>("PreFilterX"), None);
        assert_eq!(state.read::<Counts>("missing"), None);

        let mut copy = state.clone();
        if let Some(c) = copy.read_mut::<Counts>("PreFilterX") {
            c.0.push(3);
        }
        assert_eq!(
            state.read::<Counts>("PreFilterX"),
            Some(&Counts(vec![1, 2]))
        );
        assert_eq!(
            copy.read::<Counts>("PreFilterX"),
            Some(&Counts(vec![1, 2, 3]))
        );
    }

    #[test]
    fn skips_are_per_plugin() {
        let mut state = CycleState::new();
        state.skip_filter("NodeAffinity");
        assert!(state.is_filter_skipped("NodeAffinity"));
        assert!(!state.is_filter_skipped("NodePorts"));
        assert!(state.clone().is_filter_skipped("NodeAffinity"));
    }
}
