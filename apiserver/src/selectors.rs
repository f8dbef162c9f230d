//! `labelSelector` and `fieldSelector` of lists, watches and deletecollection: parsed once per
//! request, checked against the fields each resource supports (as upstream's field label
//! conversion does), then matched against objects.

use apimachinery::{fields, labels};
use serde_json::Value;

use crate::errors::{bad_request, ApiResult};
use crate::handlers::Query;
use crate::resources::Resource;

pub struct Filter {
    labels: labels::Selector,
    fields: fields::Selector,
    resource: &'static Resource,
    /// A watch on one object by name (`/watch/.../pods/p`).
    name: Option<String>,
}

impl Filter {
    pub fn from_query(resource: &'static Resource, query: &Query) -> ApiResult<Filter> {
        let labels = match query.get("labelSelector").map(String::as_str) {
            None | Some("") => labels::Selector::everything(),
            Some(text) => {
                labels::Selector::parse(text).map_err(|err| bad_request(err.to_string()))?
            }
        };
        let fields = match query.get("fieldSelector").map(String::as_str) {
            None | Some("") => fields::Selector::everything(),
            Some(text) => {
                fields::Selector::parse(text).map_err(|err| bad_request(err.to_string()))?
            }
        };
        for requirement in fields.requirements() {
            let field = requirement.field.as_str();
            if !(field == "metadata.name"
                || field == "metadata.namespace"
                || resource.selectable_fields.contains(&field))
            {
                return Err(bad_request(format!("field label not supported: {field}")));
            }
        }
        Ok(Filter {
            labels,
            fields,
            resource,
            name: None,
        })
    }

    pub fn require_name(&mut self, name: &str) {
        self.name = Some(name.to_string());
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty() && self.name.is_none()
    }

    /// The same decision on a cached object, without parsing it.
    pub fn matches_cached(&self, cached: &crate::cache::Cached) -> bool {
        if let Some(name) = &self.name {
            if &cached.name != name {
                return false;
            }
        }
        self.labels.matches(&cached.labels) && self.fields.matches(|field| cached.field(field))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(name) = &self.name {
            if crate::object::name(obj) != name {
                return false;
            }
        }
        self.labels.matches_object(obj)
            && self
                .fields
                .matches(|field| field_value(self.resource, obj, field))
    }
}

/// The value of a selectable field, rendered as upstream's field sets render it: absent strings
/// are "", absent booleans "false", numbers in decimal.
pub(crate) fn field_value(resource: &Resource, obj: &Value, field: &str) -> Option<String> {
    let path: &[&str] = &match (resource.kind, field) {
        ("Event", "source") => vec!["source", "component"],
        _ => field.split('.').collect::<Vec<_>>(),
    };
    let value = path.iter().try_fold(obj, |v, key| v.get(*key));
    Some(match value {
        None | Some(Value::Null) => match field {
            "spec.unschedulable" | "spec.hostNetwork" => "false".into(),
            "status.replicas" | "status.successful" => "0".into(),
            _ => String::new(),
        },
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;
    use serde_json::json;

    fn query(pairs: &[(&str, &str)]) -> Query {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_scheduler_finds_unbound_pods_by_empty_node_name() {
        let pods = find("", "v1", "pods").unwrap();
        let f = Filter::from_query(
            pods,
            &query(&[("fieldSelector", "spec.nodeName=,status.phase!=Succeeded")]),
        )
        .unwrap();
        assert!(f.matches(
            &json!({"metadata": {"name": "a"}, "spec": {}, "status": {"phase": "Pending"}})
        ));
        assert!(!f.matches(&json!({"metadata": {"name": "a"}, "spec": {"nodeName": "n1"}})));
    }

    #[test]
    fn unsupported_fields_and_bad_selectors_are_bad_requests() {
        let cms = find("", "v1", "configmaps").unwrap();
        let err = Filter::from_query(cms, &query(&[("fieldSelector", "spec.nodeName=x")]))
            .err()
            .unwrap();
        assert_eq!(err.code, 400);
        assert_eq!(
            err.status["message"],
            "field label not supported: spec.nodeName"
        );
        assert_eq!(
            Filter::from_query(cms, &query(&[("labelSelector", "a in (")]))
                .err()
                .unwrap()
                .code,
            400
        );
    }

    #[test]
    fn labels_and_names_filter() {
        let cms = find("", "v1", "configmaps").unwrap();
        let f = Filter::from_query(
            cms,
            &query(&[
                ("labelSelector", "app in (web,db),!canary"),
                ("fieldSelector", "metadata.name!=skip"),
            ]),
        )
        .unwrap();
        assert!(f.matches(&json!({"metadata": {"name": "a", "labels": {"app": "web"}}})));
        assert!(!f
            .matches(&json!({"metadata": {"name": "a", "labels": {"app": "web", "canary": "1"}}})));
        assert!(!f.matches(&json!({"metadata": {"name": "skip", "labels": {"app": "db"}}})));
    }
}
