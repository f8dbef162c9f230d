//! The `MostAllocated` strategy: favours the fullest nodes (bin packing),
//! `requested * 100 / capacity` per resource, weighted.

use super::resource_allocation::{weighted_scorer, ResourceSpec, Scorer};
use crate::framework::MAX_NODE_SCORE;

/// Requests above capacity (possible with the defaults for request-less containers) count as
/// full.
pub(super) fn most_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    requested.min(capacity) * MAX_NODE_SCORE / capacity
}

pub(super) fn most_resource_scorer(resources: &[ResourceSpec]) -> Scorer {
    weighted_scorer(resources, most_requested_score)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_resource_and_weighted() {
        assert_eq!(most_requested_score(0, 4000), 0);
        assert_eq!(most_requested_score(3000, 4000), 75);
        assert_eq!(most_requested_score(5000, 4000), 100);
        assert_eq!(most_requested_score(1, 0), 0);
        let s =
            most_resource_scorer(&[ResourceSpec::new("cpu", 1), ResourceSpec::new("memory", 1)]);
        assert_eq!(s(&[3000, 5000], &[4000, 10000]), 62);
    }
}
