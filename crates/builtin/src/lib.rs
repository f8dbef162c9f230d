//! Defaulting and validation of the built-in kinds, as upstream's `pkg/apis/<group>/v1`
//! defaulters and `pkg/apis/<group>/validation`, over objects held as `serde_json::Value`.
//!
//! - [`default`] fills the fields upstream defaults (including every nested pod template,
//!   container, volume and probe), so a stored object reads back as `kubectl get -o json` shows
//!   it on a real cluster.
//! - [`validate`] checks a kind's spec (and status where upstream validates it with the main
//!   resource) on create and update, with upstream's field paths and messages word for word.
//!   Object metadata is not checked here: the API server does that for every kind.
//!
//! A few defaults upstream takes from the registry rather than the scheme are exposed on their
//! own: [`generate_job_selector`] and [`default_service_ip_family_policy`].

mod defaults;
mod json;
mod validation;

pub use defaults::default;
pub use validation::validate;

pub use defaults::generate_job_selector;

use serde_json::Value;

/// Chooses a Service's `spec.ipFamilyPolicy` when the client left it unset, as upstream's
/// service registry does before allocating cluster IPs: the old object's policy on update;
/// `RequireDualStack` for a headless Service without selector; otherwise `SingleStack`.
/// ExternalName Services get none.
pub fn default_service_ip_family_policy(obj: &mut Value, old: Option<&Value>) {
    use json::Get;
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec.str_of("type") == "ExternalName" || spec.has("ipFamilyPolicy") {
        return;
    }
    let old_policy = old
        .and_then(|o| o.get("spec"))
        .and_then(|s| s.get("ipFamilyPolicy"))
        .filter(|p| p.is_string())
        .cloned();
    let policy = match old_policy {
        Some(p) => p,
        None if spec.str_of("clusterIP") == "None" && json::is_zero(spec.get("selector")) => {
            "RequireDualStack".into()
        }
        None => "SingleStack".into(),
    };
    spec.insert("ipFamilyPolicy".into(), policy);
}
