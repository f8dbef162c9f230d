//! The request chain, stage by stage, in upstream's order:
//! authentication -> authorization -> mutating admission -> validation -> validating admission
//! -> storage.
//!
//! Each stage is a trait with a list of implementations, so the security work (x509, tokens,
//! RBAC, Node authorizer, more admission plugins) plugs in without touching the handlers. Until
//! then the defaults allow everything, but every stage runs on every request.

use std::sync::Arc;

use crate::authn::Credentials;
use serde_json::Value;

use crate::errors::{self, ApiError, ApiResult, FieldError};
use crate::resources::Resource;

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

/// What is asked (upstream's `authorizer.Attributes`).
#[derive(Clone, Debug)]
pub struct Attributes {
    pub verb: &'static str,
    /// For non-resource requests, [`crate::resources::NON_RESOURCE`].
    pub resource: &'static Resource,
    pub namespace: String,
    pub name: String,
    pub subresource: String,
    /// `Some("/healthz")` for a non-resource request.
    pub path: Option<String>,
    /// The field selector of a list or watch (the Node authorizer reads it).
    pub field_selector: Option<String>,
    /// Who asks, once authenticated (admission plugins read it).
    pub user: Option<UserInfo>,
}

impl Attributes {
    /// What a resource request asks for.
    pub fn for_request(
        request: &crate::request::ResourceRequest,
        resource: &'static Resource,
        field_selector: Option<String>,
    ) -> Attributes {
        Attributes {
            verb: request.verb,
            resource,
            namespace: request.namespace.clone(),
            name: request.name.clone(),
            subresource: request.subresource.clone(),
            path: None,
            field_selector,
            user: None,
        }
    }

    /// A request for a path that is not a resource (`/version`, `/api`, `/healthz`, ...).
    pub fn non_resource(method: &http::Method, path: &str) -> Attributes {
        let verb = match *method {
            http::Method::GET => "get",
            http::Method::HEAD => "head",
            http::Method::POST => "post",
            http::Method::PUT => "put",
            http::Method::PATCH => "patch",
            http::Method::DELETE => "delete",
            http::Method::OPTIONS => "options",
            _ => "",
        };
        Attributes {
            verb,
            resource: &crate::resources::NON_RESOURCE,
            namespace: String::new(),
            name: String::new(),
            subresource: String::new(),
            path: Some(path.to_string()),
            field_selector: None,
            user: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

pub trait Authenticator: Send + Sync {
    /// `Ok(None)`: this authenticator has nothing to say about the request.
    fn authenticate(&self, credentials: &Credentials<'_>) -> ApiResult<Option<UserInfo>>;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    NoOpinion,
    /// No opinion, with a reason the final 403 carries (upstream's authorizers return reasons
    /// with their decisions, e.g. the Node authorizer's "no relationship found").
    NoOpinionBecause(String),
}

pub trait Authorizer: Send + Sync {
    fn authorize(&self, user: &UserInfo, attributes: &Attributes) -> Decision;
}

/// Mutating admission: may change the object.
pub trait MutatingAdmission: Send + Sync {
    fn name(&self) -> &'static str;
    fn admit(
        &self,
        op: Operation,
        attributes: &Attributes,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> ApiResult<()>;
}

/// Validation of a kind (upstream's strategy `Validate` / `ValidateUpdate`).
pub trait Validator: Send + Sync {
    fn validate(&self, resource: &Resource, obj: &Value, old: Option<&Value>) -> Vec<FieldError>;
}

/// Validating admission: may only refuse.
pub trait ValidatingAdmission: Send + Sync {
    fn name(&self) -> &'static str;
    fn validate(
        &self,
        op: Operation,
        attributes: &Attributes,
        obj: &Value,
        old: Option<&Value>,
    ) -> ApiResult<()>;
}

/// Every stage, in order.
pub struct Chain {
    pub authenticators: Vec<Arc<dyn Authenticator>>,
    /// Requests no authenticator recognizes are `system:anonymous` (`--anonymous-auth`) instead
    /// of 401.
    pub anonymous: bool,
    pub authorizers: Vec<Arc<dyn Authorizer>>,
    pub mutating: Vec<Arc<dyn MutatingAdmission>>,
    pub validators: Vec<Arc<dyn Validator>>,
    pub validating: Vec<Arc<dyn ValidatingAdmission>>,
}

impl Chain {
    /// The chain of a server without security configured: every request is `system:admin`
    /// (as on upstream's old insecure port), everything is allowed, objects are still validated.
    pub fn allow_all() -> Chain {
        Chain {
            authenticators: vec![Arc::new(InsecureAdmin)],
            anonymous: true,
            authorizers: vec![Arc::new(PrivilegedGroup), Arc::new(AlwaysAllow)],
            mutating: Vec::new(),
            validators: vec![Arc::new(crate::validation::BuiltinValidator)],
            validating: Vec::new(),
        }
    }

    pub fn authenticate(&self, credentials: &Credentials<'_>) -> ApiResult<UserInfo> {
        for authenticator in &self.authenticators {
            if let Some(user) = authenticator.authenticate(credentials)? {
                return Ok(user);
            }
        }
        if !self.anonymous {
            return Err(errors::unauthorized());
        }
        Ok(UserInfo {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        })
    }

    /// The authenticated user, or whom it impersonates (`Impersonate-User` / `Impersonate-Group`
    /// headers, as `kubectl --as` sends) once it is allowed to (`impersonate` on `users` and
    /// `groups`).
    pub fn identify(&self, credentials: &Credentials<'_>) -> ApiResult<UserInfo> {
        let user = self.authenticate(credentials)?;
        let headers = credentials.headers;
        let Some(target) = headers
            .get("Impersonate-User")
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(user);
        };
        let groups: Vec<String> = headers
            .get_all("Impersonate-Group")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect();
        let check = |resource: &'static Resource, name: &str| -> ApiResult<()> {
            let attributes = Attributes {
                verb: "impersonate",
                resource,
                namespace: String::new(),
                name: name.to_string(),
                subresource: String::new(),
                path: None,
                field_selector: None,
                user: None,
            };
            match self.decide(&user, &attributes) {
                Some(true) => Ok(()),
                _ => Err(forbidden(&user, &attributes)),
            }
        };
        check(&crate::resources::IMPERSONATED_USERS, target)?;
        for group in &groups {
            check(&crate::resources::IMPERSONATED_GROUPS, group)?;
        }
        let mut groups = groups;
        if target.starts_with("system:serviceaccount:") {
            let namespace = target.split(':').nth(2).unwrap_or("");
            groups.push("system:serviceaccounts".into());
            groups.push(format!("system:serviceaccounts:{namespace}"));
        }
        if target != "system:anonymous" {
            groups.push("system:authenticated".into());
        }
        Ok(UserInfo {
            name: target.to_string(),
            groups,
        })
    }

    /// Authentication (and impersonation) then authorization; the first authorizer with an
    /// opinion decides.
    pub fn authorize(
        &self,
        credentials: &Credentials<'_>,
        attributes: &Attributes,
    ) -> ApiResult<UserInfo> {
        let user = self.identify(credentials)?;
        let mut reasons = Vec::new();
        for authorizer in &self.authorizers {
            match authorizer.authorize(&user, attributes) {
                Decision::Allow => return Ok(user),
                Decision::Deny => break,
                Decision::NoOpinion => continue,
                Decision::NoOpinionBecause(reason) => reasons.push(reason),
            }
        }
        let mut err = forbidden(&user, attributes);
        if !reasons.is_empty() {
            if let Some(message) = err
                .status
                .get("message")
                .and_then(serde_json::Value::as_str)
            {
                let message = format!("{message}: {}", reasons.join(", "));
                err.status["message"] = serde_json::Value::String(message);
            }
        }
        Err(err)
    }

    /// The authorizers' verdict for `user`: `Some(true)` allowed, `Some(false)` denied, `None`
    /// no opinion (for the access reviews).
    pub fn decide(&self, user: &UserInfo, attributes: &Attributes) -> Option<bool> {
        for authorizer in &self.authorizers {
            match authorizer.authorize(user, attributes) {
                Decision::Allow => return Some(true),
                Decision::Deny => return Some(false),
                Decision::NoOpinion | Decision::NoOpinionBecause(_) => continue,
            }
        }
        None
    }

    /// Mutating admission, validation, validating admission: the object as it will be stored.
    pub fn admit(
        &self,
        op: Operation,
        attributes: &Attributes,
        mut obj: Value,
        old: Option<&Value>,
    ) -> ApiResult<Value> {
        for plugin in &self.mutating {
            plugin.admit(op, attributes, &mut obj, old)?;
        }
        let mut errors = Vec::new();
        for validator in &self.validators {
            errors.extend(validator.validate(attributes.resource, &obj, old));
        }
        if !errors.is_empty() {
            let name = crate::object::name(&obj).to_string();
            return Err(errors::invalid(attributes.resource, &name, &errors));
        }
        for plugin in &self.validating {
            plugin.validate(op, attributes, &obj, old)?;
        }
        Ok(obj)
    }
}

fn forbidden(user: &UserInfo, a: &Attributes) -> ApiError {
    if let Some(path) = &a.path {
        return errors::forbidden_path(&format!(
            "forbidden: User \"{}\" cannot {} path \"{}\"",
            user.name, a.verb, path
        ));
    }
    let mut resource = a.resource.plural.to_string();
    if !a.subresource.is_empty() {
        resource = format!("{resource}/{}", a.subresource);
    }
    let group = if a.resource.group.is_empty() {
        "\"\"".to_string()
    } else {
        format!("\"{}\"", a.resource.group)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", a.namespace)
    };
    let message = format!(
        "{} is forbidden: User \"{}\" cannot {} resource \"{}\" in API group {} {}",
        if a.name.is_empty() {
            a.resource.qualified()
        } else {
            format!("{} \"{}\"", a.resource.qualified(), a.name)
        },
        user.name,
        a.verb,
        resource,
        group,
        scope
    );
    errors::forbidden(a.resource, &a.name, message)
}

/// Everyone on the insecure loopback port is the cluster admin, as on upstream's old insecure
/// port.
pub struct InsecureAdmin;

impl Authenticator for InsecureAdmin {
    fn authenticate(&self, credentials: &Credentials<'_>) -> ApiResult<Option<UserInfo>> {
        if !credentials.insecure_port {
            return Ok(None);
        }
        Ok(Some(UserInfo {
            name: "system:admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }))
    }
}

pub struct AlwaysAllow;

/// `system:masters` may do everything, whatever the other authorizers say (upstream puts this
/// authorizer first in every mode).
pub struct PrivilegedGroup;

impl Authorizer for PrivilegedGroup {
    fn authorize(&self, user: &UserInfo, _attributes: &Attributes) -> Decision {
        if user.groups.iter().any(|g| g == "system:masters") {
            Decision::Allow
        } else {
            Decision::NoOpinion
        }
    }
}

/// `--authorization-mode=AlwaysDeny`.
pub struct AlwaysDeny;

impl Authorizer for AlwaysDeny {
    fn authorize(&self, _user: &UserInfo, _attributes: &Attributes) -> Decision {
        Decision::Deny
    }
}

impl Authorizer for AlwaysAllow {
    fn authorize(&self, _user: &UserInfo, _attributes: &Attributes) -> Decision {
        Decision::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;

    struct DenyAll;
    impl Authorizer for DenyAll {
        fn authorize(&self, _: &UserInfo, _: &Attributes) -> Decision {
            Decision::Deny
        }
    }

    struct AddLabel;
    impl MutatingAdmission for AddLabel {
        fn name(&self) -> &'static str {
            "AddLabel"
        }
        fn admit(
            &self,
            _: Operation,
            _: &Attributes,
            obj: &mut Value,
            _: Option<&Value>,
        ) -> ApiResult<()> {
            obj["metadata"]["labels"] = serde_json::json!({"admitted": "yes"});
            Ok(())
        }
    }

    struct RefuseUnlabelled;
    impl ValidatingAdmission for RefuseUnlabelled {
        fn name(&self) -> &'static str {
            "RefuseUnlabelled"
        }
        fn validate(
            &self,
            _: Operation,
            a: &Attributes,
            obj: &Value,
            _: Option<&Value>,
        ) -> ApiResult<()> {
            if obj["metadata"]["labels"]["admitted"] == "yes" {
                Ok(())
            } else {
                Err(errors::forbidden(a.resource, "", "unlabelled".into()))
            }
        }
    }

    fn attributes() -> Attributes {
        Attributes {
            verb: "create",
            resource: find("", "v1", "configmaps").unwrap(),
            namespace: "default".into(),
            name: String::new(),
            subresource: String::new(),
            path: None,
            field_selector: None,
            user: None,
        }
    }

    #[test]
    fn a_denying_authorizer_answers_forbidden_in_upstream_words() {
        let mut chain = Chain::allow_all();
        chain.authorizers = vec![Arc::new(PrivilegedGroup), Arc::new(DenyAll)];
        let headers = http::HeaderMap::new();
        let mut credentials = Credentials {
            headers: &headers,
            client_certs: None,
            insecure_port: true,
        };
        chain
            .authorize(&credentials, &attributes())
            .expect("system:masters passes every authorizer");
        credentials.insecure_port = false;
        let err = chain.authorize(&credentials, &attributes()).unwrap_err();
        assert_eq!(err.code, 403);
        assert_eq!(
            err.status["message"],
            "configmaps is forbidden: User \"system:anonymous\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"default\""
        );
    }

    #[test]
    fn stages_run_in_order_mutation_before_validation() {
        let mut chain = Chain::allow_all();
        chain.validating = vec![Arc::new(RefuseUnlabelled)];
        let obj = serde_json::json!({"metadata": {"name": "a", "namespace": "default"}});
        let err = chain
            .admit(Operation::Create, &attributes(), obj.clone(), None)
            .unwrap_err();
        assert_eq!(err.code, 403);
        chain.mutating = vec![Arc::new(AddLabel)];
        let admitted = chain
            .admit(Operation::Create, &attributes(), obj, None)
            .unwrap();
        assert_eq!(admitted["metadata"]["labels"]["admitted"], "yes");
    }

    #[test]
    fn validation_refuses_with_422() {
        let chain = Chain::allow_all();
        let obj = serde_json::json!({"metadata": {"name": "Bad_Name", "namespace": "default"}});
        let err = chain
            .admit(Operation::Create, &attributes(), obj, None)
            .unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(err.status["reason"], "Invalid");
    }
}
