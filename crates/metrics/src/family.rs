//! The label-keyed series map shared by every vector type. Only `with` and `render` lock it;
//! handles keep their own `Arc` to the series core so observing never touches the map.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::text::normalize_values;

pub(crate) struct Family<C> {
    pub(crate) label_names: Vec<String>,
    // BTreeMap so rendering is already sorted by label values.
    series: Mutex<BTreeMap<Vec<String>, Arc<C>>>,
}

impl<C> Family<C> {
    pub(crate) fn new(labels: &[&str]) -> Family<C> {
        Family {
            label_names: labels.iter().map(|s| (*s).to_string()).collect(),
            series: Mutex::new(BTreeMap::new()),
        }
    }

    pub(crate) fn get_or_create(&self, values: &[&str], make: impl FnOnce() -> C) -> Arc<C> {
        let key = normalize_values(values, self.label_names.len());
        let mut series = self.lock();
        Arc::clone(series.entry(key).or_insert_with(|| Arc::new(make())))
    }

    /// A snapshot of the series so rendering does not hold the lock while formatting.
    pub(crate) fn snapshot(&self) -> Vec<(Vec<String>, Arc<C>)> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    }

    pub(crate) fn remove(&self, values: &[&str]) -> bool {
        let key = normalize_values(values, self.label_names.len());
        self.lock().remove(&key).is_some()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Vec<String>, Arc<C>>> {
        // A panic elsewhere while holding the lock cannot leave the map half-updated (every
        // mutation is a single insert/remove), so a poisoned lock is safe to keep using.
        self.series.lock().unwrap_or_else(|e| e.into_inner())
    }
}
