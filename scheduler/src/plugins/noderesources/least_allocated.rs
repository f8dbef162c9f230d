//! The `LeastAllocated` strategy (NodeResourcesFit's default): favours nodes with the most
//! room left, `(capacity - requested) * 100 / capacity` per resource, weighted.

use super::resource_allocation::{weighted_scorer, ResourceSpec, Scorer};
use crate::framework::MAX_NODE_SCORE;

/// 0 when over capacity (or no capacity), 100 when nothing is requested.
pub(super) fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

pub(super) fn least_resource_scorer(resources: &[ResourceSpec]) -> Scorer {
    weighted_scorer(resources, least_requested_score)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_resource_and_weighted() {
        assert_eq!(least_requested_score(0, 4000), 100);
        assert_eq!(least_requested_score(3000, 4000), 25);
        assert_eq!(least_requested_score(5000, 4000), 0);
        assert_eq!(least_requested_score(1, 0), 0);
        let s =
            least_resource_scorer(&[ResourceSpec::new("cpu", 1), ResourceSpec::new("memory", 3)]);
        // cpu 50, memory 100 -> (50 + 300) / 4.
        assert_eq!(s(&[2000, 0], &[4000, 10000]), 87);
        // A resource the node lacks is left out.
        assert_eq!(s(&[2000, 0], &[4000, 0]), 50);
        assert_eq!(s(&[0, 0], &[0, 0]), 0);
    }
}
