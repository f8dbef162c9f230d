//! ClusterRole aggregation, as upstream's clusterrole-aggregation controller computes it: an
//! aggregated role's rules are the union, in selector order and then role-name order, of the
//! rules of every other ClusterRole whose labels match one of its `clusterRoleSelectors`, with
//! exact duplicates dropped.
//!
//! Upstream reaches nested aggregation (`view` feeding `edit` feeding `admin`) over several
//! controller passes; here the passes run until nothing changes, so one call gives the result
//! the controller converges to.

use serde_json::Value;

use crate::rule::PolicyRule;
use crate::selector;

struct Role<'a> {
    name: &'a str,
    labels: Option<&'a serde_json::Map<String, Value>>,
    selectors: Option<&'a Vec<Value>>,
    rules: Vec<PolicyRule>,
}

fn aggregate_once(roles: &[Role], target: &Role) -> Option<Vec<PolicyRule>> {
    let mut rules: Vec<PolicyRule> = Vec::new();
    for sel in target.selectors.into_iter().flatten() {
        // An invalid selector stops this role's aggregation, as the controller's error does,
        // whether or not any role would be tested against it.
        selector::matches(sel, None).ok()?;
        let mut matched = Vec::new();
        for r in roles {
            if r.name != target.name && selector::matches(sel, r.labels).ok()? {
                matched.push(r);
            }
        }
        matched.sort_by(|a, b| a.name.cmp(b.name));
        for r in matched {
            for rule in &r.rules {
                if !rules.contains(rule) {
                    rules.push(rule.clone());
                }
            }
        }
    }
    Some(rules)
}

/// For every ClusterRole with an `aggregationRule`, its name and the `rules` it must have.
/// Roles whose selectors are invalid are left out, like the controller leaves them untouched.
pub fn aggregated_rules(cluster_roles: &[Value]) -> Vec<(String, Vec<Value>)> {
    let mut roles: Vec<Role> = cluster_roles
        .iter()
        .filter_map(|v| {
            let metadata = v.get("metadata")?;
            Some(Role {
                name: metadata.get("name")?.as_str()?,
                labels: metadata.get("labels").and_then(Value::as_object),
                selectors: v
                    .get("aggregationRule")
                    .and_then(|a| a.get("clusterRoleSelectors"))
                    .and_then(Value::as_array),
                rules: PolicyRule::list_from(v),
            })
        })
        .collect();
    let targets: Vec<usize> = (0..roles.len())
        .filter(|&i| roles.get(i).is_some_and(|r| r.selectors.is_some()))
        .collect();
    let mut valid = vec![true; roles.len()];
    // Each pass can only lengthen a rule list drawn from a finite pool, and a chain of
    // aggregations settles within one pass per aggregated role.
    for _ in 0..=targets.len() {
        let mut changed = false;
        for &i in &targets {
            let Some(target) = roles.get(i) else { continue };
            let next = aggregate_once(&roles, target);
            if let (Some(slot), Some(valid_slot)) = (roles.get_mut(i), valid.get_mut(i)) {
                match next {
                    Some(rules) if rules != slot.rules => {
                        slot.rules = rules;
                        changed = true;
                    }
                    Some(_) => {}
                    None => *valid_slot = false,
                }
            }
        }
        if !changed {
            break;
        }
    }
    targets
        .iter()
        .filter(|&&i| valid.get(i).copied().unwrap_or(false))
        .filter_map(|&i| roles.get(i))
        .map(|r| {
            (
                r.name.to_owned(),
                r.rules.iter().map(PolicyRule::to_value).collect(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cr(name: &str, labels: Value, agg: Option<Value>, rules: Value) -> Value {
        let mut v = json!({"metadata": {"name": name, "labels": labels}, "rules": rules});
        if let (Some(a), Some(m)) = (agg, v.as_object_mut()) {
            m.insert("aggregationRule".into(), json!({"clusterRoleSelectors": a}));
        }
        v
    }
    fn r(verb: &str, res: &str) -> Value {
        json!({"verbs": [verb], "apiGroups": [""], "resources": [res]})
    }

    #[test]
    fn union_in_name_order_deduplicated() {
        let roles = vec![
            cr(
                "agg",
                json!({}),
                Some(json!([{"matchLabels": {"x": "true"}}])),
                json!([r("stale", "old")]),
            ),
            cr(
                "b",
                json!({"x": "true"}),
                None,
                json!([r("get", "b"), r("get", "shared")]),
            ),
            cr(
                "a",
                json!({"x": "true"}),
                None,
                json!([r("get", "a"), r("get", "shared")]),
            ),
            cr("c", json!({"x": "false"}), None, json!([r("get", "c")])),
        ];
        let got = aggregated_rules(&roles);
        assert_eq!(
            got,
            vec![(
                "agg".to_owned(),
                vec![r("get", "a"), r("get", "shared"), r("get", "b"),]
            )]
        );
    }

    #[test]
    fn selectors_in_order_and_self_excluded() {
        let roles = vec![
            cr(
                "agg",
                json!({"y": "1"}),
                Some(json!([{"matchLabels": {"y": "1"}}, {"matchLabels": {"x": "1"}}])),
                json!(null),
            ),
            cr("a", json!({"x": "1"}), None, json!([r("get", "a")])),
            cr("z", json!({"y": "1"}), None, json!([r("get", "z")])),
        ];
        assert_eq!(
            aggregated_rules(&roles),
            vec![("agg".to_owned(), vec![r("get", "z"), r("get", "a")])]
        );
    }

    #[test]
    fn nested_aggregation_converges() {
        // admin <- edit <- view, each also with its own aggregate-to role, like the bootstrap policy.
        let roles = vec![
            cr(
                "admin",
                json!({}),
                Some(json!([{"matchLabels": {"to-admin": "true"}}])),
                json!(null),
            ),
            cr(
                "edit",
                json!({"to-admin": "true"}),
                Some(json!([{"matchLabels": {"to-edit": "true"}}])),
                json!(null),
            ),
            cr(
                "view",
                json!({"to-edit": "true"}),
                Some(json!([{"matchLabels": {"to-view": "true"}}])),
                json!(null),
            ),
            cr(
                "to-view",
                json!({"to-view": "true"}),
                None,
                json!([r("get", "pods")]),
            ),
            cr(
                "to-edit",
                json!({"to-edit": "true"}),
                None,
                json!([r("create", "pods")]),
            ),
        ];
        let got = aggregated_rules(&roles);
        let admin = got
            .iter()
            .find(|(n, _)| n == "admin")
            .map(|(_, r)| r.clone());
        assert_eq!(admin, Some(vec![r("create", "pods"), r("get", "pods")]));
    }

    #[test]
    fn invalid_selector_skips_role() {
        let roles = vec![cr(
            "agg",
            json!({}),
            Some(json!([{"matchExpressions": [{"key": "x", "operator": "Bogus"}]}])),
            json!(null),
        )];
        assert!(aggregated_rules(&roles).is_empty());
    }
}
