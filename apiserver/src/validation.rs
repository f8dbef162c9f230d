//! Validation of the built-in kinds (upstream's strategy `Validate` / `ValidateUpdate`): object
//! metadata for every kind, name rules per kind, and the immutable fields users run into.

use apimachinery::validation::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, validate_object_meta,
    validate_object_meta_update,
};
use serde_json::Value;

use crate::chain::Validator;
use crate::errors::FieldError;
use crate::resources::Resource;

/// Validates every built-in kind.
pub struct BuiltinValidator;

impl Validator for BuiltinValidator {
    fn validate(&self, resource: &Resource, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let empty = Value::Object(Default::default());
        let meta = obj.get("metadata").unwrap_or(&empty);
        let mut errors = match old {
            None => {
                validate_object_meta(meta, resource.namespaced, name_rule(resource), "metadata")
            }
            Some(old) => {
                let old_meta = old.get("metadata").unwrap_or(&empty);
                let mut errors = validate_object_meta(
                    meta,
                    resource.namespaced,
                    name_rule(resource),
                    "metadata",
                );
                errors.extend(validate_object_meta_update(meta, old_meta, "metadata"));
                errors
            }
        };
        errors.extend(builtin::validate(
            resource.group,
            resource.version,
            resource.kind,
            obj,
            old,
        ));
        errors
    }
}

/// Which name rule a kind's names follow (upstream's `ValidateXName` per kind).
fn name_rule(resource: &Resource) -> fn(&str, bool) -> Vec<String> {
    match (resource.group, resource.kind) {
        ("", "Namespace") => dns1123_label,
        ("", "Service") => dns1035_label,
        _ => dns1123_subdomain,
    }
}

fn dns1123_subdomain(name: &str, prefix: bool) -> Vec<String> {
    is_dns1123_subdomain(&mask_prefix(name, prefix))
}

fn dns1123_label(name: &str, prefix: bool) -> Vec<String> {
    is_dns1123_label(&mask_prefix(name, prefix))
}

fn dns1035_label(name: &str, prefix: bool) -> Vec<String> {
    is_dns1035_label(&mask_prefix(name, prefix))
}

/// A `generateName` prefix is validated as the name it will become (upstream appends `a`).
fn mask_prefix(name: &str, prefix: bool) -> String {
    if prefix {
        format!("{name}a")
    } else {
        name.to_string()
    }
}
