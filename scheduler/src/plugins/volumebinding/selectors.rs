//! Topology selector terms (a StorageClass's `allowedTopologies`) against a node's labels, as
//! upstream's `v1helper.MatchTopologySelectorTerms`. A term that does not parse matches nothing.
//! (A PV's node affinity is a node selector: [`crate::plugins::helper`] matches those.)

use std::collections::BTreeMap;

use apimachinery::labels::{Operator, Requirement};
use k8s_openapi::api::core::v1::TopologySelectorTerm;

/// An empty list allows every node; an empty term allows none.
pub fn topology_selector_terms_match(
    terms: &[TopologySelectorTerm],
    labels: &BTreeMap<String, String>,
) -> bool {
    if terms.is_empty() {
        return true;
    }
    terms.iter().any(|term| {
        let exprs = term.match_label_expressions.as_deref().unwrap_or(&[]);
        !exprs.is_empty()
            && exprs.iter().all(|r| {
                Requirement::new(&r.key, Operator::In, r.values.clone())
                    .is_ok_and(|req| req.matches(labels))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn topology_terms() {
        let t: Vec<TopologySelectorTerm> = serde_json::from_value(json!([
            {"matchLabelExpressions": [{"key": "zone", "values": ["a"]}]}
        ]))
        .unwrap();
        assert!(topology_selector_terms_match(&[], &labels(&[])));
        assert!(topology_selector_terms_match(&t, &labels(&[("zone", "a")])));
        assert!(!topology_selector_terms_match(
            &t,
            &labels(&[("zone", "b")])
        ));
        let empty: Vec<TopologySelectorTerm> = serde_json::from_value(json!([{}])).unwrap();
        assert!(!topology_selector_terms_match(
            &empty,
            &labels(&[("zone", "a")])
        ));
    }
}
