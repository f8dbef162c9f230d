//! The `RequestedToCapacityRatio` strategy: a piecewise-linear function of utilisation
//! (0..100) given as shape points with scores 0..10, scaled to 0..100; resources that score 0
//! do not count in the weighted average.

use std::sync::Arc;

use serde::Deserialize;

use super::resource_allocation::{ResourceSpec, Scorer};
use crate::framework::MAX_NODE_SCORE;

/// The highest score a shape point may give (upstream's `MaxCustomPriorityScore`).
pub(super) const MAX_CUSTOM_PRIORITY_SCORE: i64 = 10;
const MAX_UTILIZATION: i64 = 100;

/// One point of the shape (`UtilizationShapePoint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UtilizationShapePoint {
    pub utilization: i32,
    pub score: i32,
}

/// The piecewise-linear function through `shape` (sorted by utilisation): flat before the
/// first point and after the last (upstream's `BuildBrokenLinearFunction`).
fn broken_linear(shape: &[(i64, i64)], p: i64) -> i64 {
    for (i, &(u, s)) in shape.iter().enumerate() {
        if p <= u {
            if i == 0 {
                return s;
            }
            let (pu, ps) = shape[i - 1];
            return ps + (s - ps) * (p - pu) / (u - pu);
        }
    }
    shape.last().map_or(0, |&(_, s)| s)
}

pub(super) fn requested_to_capacity_ratio_scorer(
    resources: &[ResourceSpec],
    shape: &[UtilizationShapePoint],
) -> Scorer {
    let shape: Vec<(i64, i64)> = shape
        .iter()
        .map(|p| {
            (
                i64::from(p.utilization),
                i64::from(p.score) * (MAX_NODE_SCORE / MAX_CUSTOM_PRIORITY_SCORE),
            )
        })
        .collect();
    let weights: Vec<i64> = resources.iter().map(|r| r.weight).collect();
    Arc::new(move |requested: &[i64], allocatable: &[i64]| {
        let resource_score = |req: i64, cap: i64| {
            if cap == 0 || req > cap {
                broken_linear(&shape, MAX_UTILIZATION)
            } else {
                broken_linear(&shape, req * MAX_UTILIZATION / cap)
            }
        };
        let (mut score, mut weight_sum) = (0i64, 0i64);
        for (i, (&req, &alloc)) in requested.iter().zip(allocatable).enumerate() {
            if alloc == 0 {
                continue;
            }
            let weight = weights.get(i).copied().unwrap_or(1);
            let s = resource_score(req, alloc);
            if s > 0 {
                score += s * weight;
                weight_sum += weight;
            }
        }
        if weight_sum == 0 {
            0
        } else {
            (score as f64 / weight_sum as f64).round() as i64
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(v: &[(i32, i32)]) -> Vec<UtilizationShapePoint> {
        v.iter()
            .map(|&(utilization, score)| UtilizationShapePoint { utilization, score })
            .collect()
    }

    #[test]
    fn broken_linear_interpolates_and_clamps() {
        let shape = [(10, 1), (90, 9)];
        assert_eq!(broken_linear(&shape, 0), 1);
        assert_eq!(broken_linear(&shape, 10), 1);
        assert_eq!(broken_linear(&shape, 50), 5);
        assert_eq!(broken_linear(&shape, 90), 9);
        assert_eq!(broken_linear(&shape, 100), 9);
        let falling = [(0, 10), (100, 0)];
        assert_eq!(broken_linear(&falling, 25), 8);
    }

    #[test]
    fn scores_scale_to_max_node_score_and_skip_zero_resources() {
        let resources = [ResourceSpec::new("cpu", 1), ResourceSpec::new("memory", 1)];
        // Bin packing: 0% -> 0, 100% -> 10.
        let s = requested_to_capacity_ratio_scorer(&resources, &points(&[(0, 0), (100, 10)]));
        assert_eq!(s(&[2000, 5000], &[4000, 10000]), 50);
        // memory scores 0 and does not count: cpu 30 alone.
        assert_eq!(s(&[1200, 0], &[4000, 10000]), 30);
        // Over capacity scores as 100% utilisation.
        assert_eq!(s(&[5000, 20000], &[4000, 10000]), 100);
        // Spreading: 0% -> 10, 100% -> 0; weights 1 and 3 with cpu 75 and memory 25.
        let weighted = [ResourceSpec::new("cpu", 1), ResourceSpec::new("memory", 3)];
        let s = requested_to_capacity_ratio_scorer(&weighted, &points(&[(0, 10), (100, 0)]));
        assert_eq!(s(&[1000, 7500], &[4000, 10000]), 38);
    }
}
