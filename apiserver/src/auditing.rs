//! The audit log (`--audit-policy-file`, `--audit-log-path`, `--audit-log-maxage`,
//! `--audit-log-maxbackup`, `--audit-log-maxsize`): one `audit.k8s.io/v1` Event per request and
//! stage the policy asks for, written as JSON lines by the `audit` crate.
//!
//! Events carry who asked (the authenticated, possibly impersonated user), what (verb, URI,
//! objectRef) and the answer's code; at the `Request` level also the request body, at
//! `RequestResponse` also the response body (JSON bodies; watches carry none).

use std::path::PathBuf;

use serde_json::Value;

use crate::request::Target;

/// The audit flags.
#[derive(Clone, Debug, Default)]
pub struct AuditConfig {
    pub policy_file: Option<PathBuf>,
    pub log_path: Option<PathBuf>,
    pub max_age_days: u64,
    pub max_backups: usize,
    pub max_size_mb: u64,
}

pub struct Auditor {
    policy: audit::Policy,
    log: audit::LogWriter,
}

impl Auditor {
    pub fn from_config(config: &AuditConfig) -> anyhow::Result<Option<Auditor>> {
        let (Some(policy), Some(path)) = (&config.policy_file, &config.log_path) else {
            return Ok(None);
        };
        let policy = audit::Policy::from_file(policy)
            .map_err(|e| anyhow::anyhow!("--audit-policy-file {}: {e}", policy.display()))?;
        let log = audit::LogWriter::open(
            path,
            config.max_size_mb,
            config.max_backups,
            config.max_age_days,
        )
        .map_err(|e| anyhow::anyhow!("--audit-log-path {}: {e}", path.display()))?;
        Ok(Some(Auditor { policy, log }))
    }

    /// Starts the event of a request, or `None` when the policy says `None` for it.
    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        &self,
        user: Option<&crate::chain::UserInfo>,
        method: &http::Method,
        uri: &http::Uri,
        target: &Target,
        user_agent: &str,
        source: Option<std::net::SocketAddr>,
        received: chrono::DateTime<chrono::Utc>,
    ) -> Option<Pending> {
        let anonymous = crate::chain::UserInfo {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        };
        let user = user.unwrap_or(&anonymous);
        let (verb, group, version, resource, subresource, namespace, name, path, resource_request) =
            match target {
                Target::Resource(r) => (
                    r.verb.to_string(),
                    r.group.as_str(),
                    r.version.as_str(),
                    r.resource.as_str(),
                    r.subresource.as_str(),
                    r.namespace.as_str(),
                    r.name.as_str(),
                    uri.path(),
                    true,
                ),
                _ => (
                    method.as_str().to_ascii_lowercase(),
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    uri.path(),
                    false,
                ),
            };
        let attributes = audit::RequestAttributes {
            user: &user.name,
            groups: &user.groups,
            verb: &verb,
            api_group: group,
            resource,
            subresource,
            namespace,
            name,
            path,
            resource_request,
        };
        let (level, omitted, omit_managed_fields) = self.policy.level_for(&attributes);
        if level == audit::Level::None {
            return None;
        }
        let mut event = audit::Event::new(uuid::Uuid::new_v4().to_string(), level, received);
        event.request_uri = uri.to_string();
        event.verb = verb.clone();
        event.user = audit::UserInfo {
            username: user.name.clone(),
            groups: user.groups.clone(),
            ..Default::default()
        };
        event.user_agent = user_agent.to_string();
        if let Some(source) = source {
            event.source_ips = vec![source.ip().to_string()];
        }
        if resource_request {
            event.object_ref = Some(audit::ObjectReference {
                resource: resource.to_string(),
                namespace: namespace.to_string(),
                name: name.to_string(),
                api_group: group.to_string(),
                api_version: version.to_string(),
                subresource: subresource.to_string(),
                ..Default::default()
            });
        }
        Some(Pending {
            event,
            level,
            omitted,
            omit_managed_fields,
        })
    }

    /// Writes the event's stages once the answer is known.
    pub fn finish(
        &self,
        pending: Pending,
        code: u16,
        request: Option<&Value>,
        response: Option<&Value>,
    ) {
        let Pending {
            mut event,
            omitted,
            omit_managed_fields,
            ..
        } = pending;
        let received = event.request_received_timestamp;
        if let Some(body) = request {
            event.set_request_object(body, omit_managed_fields);
        }
        if let Some(body) = response {
            event.set_response_object(body, omit_managed_fields);
        }
        for stage in [
            audit::Stage::RequestReceived,
            audit::Stage::ResponseComplete,
        ] {
            if omitted.contains(&stage) {
                continue;
            }
            let now = if stage == audit::Stage::RequestReceived {
                received
            } else {
                chrono::Utc::now()
            };
            event.set_stage(stage, now);
            event.response_status = (stage == audit::Stage::ResponseComplete)
                .then(|| audit::ResponseStatus::from_code(code));
            if let Err(err) = self.log.write(&event) {
                tracing::warn!(%err, "writing the audit log failed");
            }
        }
    }
}

/// An audit event waiting for the request's answer.
pub struct Pending {
    event: audit::Event,
    pub level: audit::Level,
    omitted: Vec<audit::Stage>,
    omit_managed_fields: bool,
}
