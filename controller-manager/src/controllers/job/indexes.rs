//! Completion indexes of Indexed Jobs: the `batch.kubernetes.io/job-completion-index` annotation
//! of a pod, and the compressed interval strings of `status.completedIndexes` /
//! `status.failedIndexes` (`"1,3-5,7"`), as upstream's `indexed_job_utils.go`.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;

pub const COMPLETION_INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";

/// The completion index of a pod, if its annotation holds a non-negative integer.
pub fn completion_index(pod: &Pod) -> Option<i32> {
    let value = pod
        .metadata
        .annotations
        .as_ref()?
        .get(COMPLETION_INDEX_ANNOTATION)?;
    value.parse::<i32>().ok().filter(|i| *i >= 0)
}

/// Parses `"1,3-5"` into a set, keeping only indexes below `completions`; malformed parts are
/// skipped (upstream logs and ignores them too).
pub fn parse(indexes: Option<&str>, completions: i32) -> BTreeSet<i32> {
    let mut set = BTreeSet::new();
    for part in indexes.unwrap_or_default().split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        let (Ok(first), Ok(last)) = (first, last) else {
            continue;
        };
        for i in first.max(0)..=last.min(completions - 1) {
            set.insert(i);
        }
    }
    set
}

/// Formats a set as upstream's compressed intervals (`"0-2,4"`); empty for an empty set.
pub fn format(set: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut run: Option<(i32, i32)> = None;
    for &i in set {
        run = match run {
            Some((first, last)) if last + 1 == i => Some((first, i)),
            Some(done) => {
                parts.push(interval(done));
                Some((i, i))
            }
            None => Some((i, i)),
        };
    }
    if let Some(done) = run {
        parts.push(interval(done));
    }
    parts.join(",")
}

fn interval((first, last): (i32, i32)) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_round_trip() {
        let cases: &[(&str, i32, &str)] = &[
            ("", 5, ""),
            ("0", 5, "0"),
            ("0-2,4", 5, "0-2,4"),
            ("0,1,2,4", 5, "0-2,4"),
            ("1-3,7", 5, "1-3"),
            ("x,2", 5, "2"),
            ("3-1", 5, ""),
        ];
        for (input, completions, want) in cases {
            assert_eq!(format(&parse(Some(input), *completions)), *want, "{input}");
        }
    }
}
