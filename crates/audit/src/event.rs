//! The `audit.k8s.io/v1` `Event`: levels, stages and the exact JSON upstream writes per line.
//!
//! Field names, their order and which of them are omitted when empty follow upstream's Go struct,
//! so log shippers and tools that parse kube-apiserver audit logs read ours unchanged.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// How much of a request is recorded. Ordered: each level includes everything below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    /// Not audited at all.
    None,
    /// User, verb, resource, status, timestamps; no bodies.
    Metadata,
    /// Metadata plus the request body.
    Request,
    /// Request plus the response body.
    RequestResponse,
}

impl Level {
    /// All levels in the order upstream lists them in validation messages.
    pub const ALL: [Level; 4] = [
        Level::None,
        Level::Metadata,
        Level::Request,
        Level::RequestResponse,
    ];

    /// The spelling used in policies and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }

    /// Parses the exact (case-sensitive) spelling, as upstream does.
    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// The point in request handling at which an event is emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stage {
    /// As soon as the request is received, before it goes down the handler chain.
    RequestReceived,
    /// Once response headers are sent; only for long-running requests such as watch.
    ResponseStarted,
    /// Once the response body is complete.
    ResponseComplete,
    /// When handling the request panicked.
    Panic,
}

impl Stage {
    /// All stages in the order upstream lists them in validation messages.
    pub const ALL: [Stage; 4] = [
        Stage::RequestReceived,
        Stage::ResponseStarted,
        Stage::ResponseComplete,
        Stage::Panic,
    ];

    /// The spelling used in policies and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
        }
    }

    /// Parses the exact (case-sensitive) spelling, as upstream does.
    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// `authentication.k8s.io/v1` `UserInfo`: every field is omitted when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The object a request targets; absent for non-resource requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
}

/// The `metav1.Status` upstream puts in `responseStatus`. For successes it carries only the code;
/// `metadata` is always present as `{}` because Go's `ListMeta` field has no `omitempty`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseStatus {
    #[serde(default)]
    metadata: StatusMetadata,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub code: i32,
}

impl ResponseStatus {
    /// The status of a successful response: only the HTTP code, as upstream records it.
    pub fn from_code(code: u16) -> Self {
        ResponseStatus {
            code: i32::from(code),
            ..Default::default()
        }
    }

    /// Takes the fields of a `metav1.Status` body (an error response) and forces its code.
    /// Fields of the wrong type are left out rather than failing: the body came from a handler.
    pub fn from_status_object(status: &Value, code: u16) -> Self {
        let text = |key: &str| {
            status
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        ResponseStatus {
            metadata: StatusMetadata {},
            status: text("status"),
            message: text("message"),
            reason: text("reason"),
            details: status.get("details").filter(|d| d.is_object()).cloned(),
            code: i32::from(code),
        }
    }
}

/// The always-empty `ListMeta` of the recorded status; serializes as `{}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct StatusMetadata {}

fn is_zero(code: &i32) -> bool {
    *code == 0
}

/// One audit record: one request at one stage. Serializes with `kind: Event` and
/// `apiVersion: audit.k8s.io/v1` first, like upstream's log lines.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub level: Level,
    #[serde(rename = "auditID")]
    pub audit_id: String,
    pub stage: Stage,
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    pub verb: String,
    #[serde(default)]
    pub user: UserInfo,
    #[serde(default)]
    pub impersonated_user: Option<UserInfo>,
    #[serde(default, rename = "sourceIPs")]
    pub source_ips: Vec<String>,
    #[serde(default)]
    pub user_agent: String,
    #[serde(default)]
    pub object_ref: Option<ObjectReference>,
    #[serde(default)]
    pub response_status: Option<ResponseStatus>,
    /// Only at level `Request` and above; set it with [`Event::set_request_object`].
    #[serde(default)]
    pub request_object: Option<Value>,
    /// Only at level `RequestResponse`; set it with [`Event::set_response_object`].
    #[serde(default)]
    pub response_object: Option<Value>,
    #[serde(deserialize_with = "deserialize_micro_time")]
    pub request_received_timestamp: DateTime<Utc>,
    #[serde(deserialize_with = "deserialize_micro_time")]
    pub stage_timestamp: DateTime<Utc>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// The wire form: `TypeMeta` inline first, then the event fields in upstream's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireEvent<'a> {
    kind: &'static str,
    api_version: &'static str,
    level: Level,
    #[serde(rename = "auditID")]
    audit_id: &'a str,
    stage: Stage,
    #[serde(rename = "requestURI")]
    request_uri: &'a str,
    verb: &'a str,
    user: &'a UserInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    impersonated_user: Option<&'a UserInfo>,
    #[serde(rename = "sourceIPs", skip_serializing_if = "<[String]>::is_empty")]
    source_ips: &'a [String],
    #[serde(skip_serializing_if = "str::is_empty")]
    user_agent: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_ref: Option<&'a ObjectReference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_status: Option<&'a ResponseStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_object: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_object: Option<&'a Value>,
    #[serde(serialize_with = "serialize_micro_time")]
    request_received_timestamp: &'a DateTime<Utc>,
    #[serde(serialize_with = "serialize_micro_time")]
    stage_timestamp: &'a DateTime<Utc>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WireEvent {
            kind: "Event",
            api_version: "audit.k8s.io/v1",
            level: self.level,
            audit_id: &self.audit_id,
            stage: self.stage,
            request_uri: &self.request_uri,
            verb: &self.verb,
            user: &self.user,
            impersonated_user: self.impersonated_user.as_ref(),
            source_ips: &self.source_ips,
            user_agent: &self.user_agent,
            object_ref: self.object_ref.as_ref(),
            response_status: self.response_status.as_ref(),
            request_object: self.request_object.as_ref(),
            response_object: self.response_object.as_ref(),
            request_received_timestamp: &self.request_received_timestamp,
            stage_timestamp: &self.stage_timestamp,
            annotations: &self.annotations,
        }
        .serialize(s)
    }
}

/// `metav1.MicroTime`: RFC 3339 in UTC with exactly six fractional digits.
fn serialize_micro_time<S: Serializer>(t: &&DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
}

fn deserialize_micro_time<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(serde::de::Error::custom)
}

impl Event {
    /// A new event for a request received at `received`, at the first stage upstream emits.
    /// The apiserver fills the remaining public fields from the request.
    pub fn new(audit_id: impl Into<String>, level: Level, received: DateTime<Utc>) -> Self {
        Event {
            level,
            audit_id: audit_id.into(),
            stage: Stage::RequestReceived,
            request_uri: String::new(),
            verb: String::new(),
            user: UserInfo::default(),
            impersonated_user: None,
            source_ips: Vec::new(),
            user_agent: String::new(),
            object_ref: None,
            response_status: None,
            request_object: None,
            response_object: None,
            request_received_timestamp: received,
            stage_timestamp: received,
            annotations: BTreeMap::new(),
        }
    }

    /// Moves the event to a later stage, stamping when it was reached.
    pub fn set_stage(&mut self, stage: Stage, now: DateTime<Utc>) {
        self.stage = stage;
        self.stage_timestamp = now;
    }

    /// Records the request body, but only at level `Request` or above (upstream drops it below).
    /// With `omit_managed_fields`, `metadata.managedFields` is removed from a copy; the caller's
    /// object is left untouched because it is still on its way to storage.
    pub fn set_request_object(&mut self, object: &Value, omit_managed_fields: bool) {
        if self.level >= Level::Request {
            self.request_object = Some(prepare_body(object, omit_managed_fields));
        }
    }

    /// Records the response body, but only at level `RequestResponse`.
    pub fn set_response_object(&mut self, object: &Value, omit_managed_fields: bool) {
        if self.level >= Level::RequestResponse {
            self.response_object = Some(prepare_body(object, omit_managed_fields));
        }
    }

    /// Adds an annotation, keeping the first value like upstream does for a repeated key.
    pub fn add_annotation(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.annotations
            .entry(key.into())
            .or_insert_with(|| value.into());
    }
}

fn prepare_body(object: &Value, omit_managed_fields: bool) -> Value {
    let mut body = object.clone();
    if omit_managed_fields {
        remove_managed_fields(&mut body);
    }
    body
}

/// Upstream clears managed fields on the object, or on every item of a list. Only those two
/// fixed depths are touched, so arbitrarily nested input cannot deepen the recursion.
pub fn remove_managed_fields(object: &mut Value) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(items)) = map.get_mut("items") {
        for item in items.iter_mut() {
            strip_metadata_managed_fields(item);
        }
        return;
    }
    strip_metadata_managed_fields(object);
}

fn strip_metadata_managed_fields(object: &mut Value) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn at(micros: i64) -> DateTime<Utc> {
        Utc.timestamp_micros(micros).single().unwrap_or_default()
    }

    fn sample() -> Event {
        let mut ev = Event::new("5a3c-uuid", Level::Metadata, at(1_767_323_045_678_901));
        ev.set_stage(Stage::ResponseComplete, at(1_767_323_045_700_000));
        ev.request_uri = "/api/v1/namespaces/default/pods?limit=500".into();
        ev.verb = "list".into();
        ev.user = UserInfo {
            username: "admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            ..Default::default()
        };
        ev.source_ips = vec!["127.0.0.1".into()];
        ev.user_agent = "kubectl/v1.33.0".into();
        ev.object_ref = Some(ObjectReference {
            resource: "pods".into(),
            namespace: "default".into(),
            api_version: "v1".into(),
            ..Default::default()
        });
        ev.response_status = Some(ResponseStatus::from_code(200));
        ev.add_annotation("authorization.k8s.io/decision", "allow");
        ev.add_annotation("authorization.k8s.io/reason", "");
        ev
    }

    #[test]
    fn event_json_matches_upstream_line() {
        let line = serde_json::to_string(&sample()).unwrap_or_default();
        let want = concat!(
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","#,
            r#""auditID":"5a3c-uuid","stage":"ResponseComplete","#,
            r#""requestURI":"/api/v1/namespaces/default/pods?limit=500","verb":"list","#,
            r#""user":{"username":"admin","groups":["system:masters","system:authenticated"]},"#,
            r#""sourceIPs":["127.0.0.1"],"userAgent":"kubectl/v1.33.0","#,
            r#""objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},"#,
            r#""responseStatus":{"metadata":{},"code":200},"#,
            r#""requestReceivedTimestamp":"2026-01-02T03:04:05.678901Z","#,
            r#""stageTimestamp":"2026-01-02T03:04:05.700000Z","#,
            r#""annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}"#,
        );
        assert_eq!(line, want);
    }

    #[test]
    fn empty_optional_fields_are_omitted_but_required_ones_stay() {
        let ev = Event::new("id", Level::Metadata, at(0));
        let v = serde_json::to_value(&ev).unwrap_or_default();
        let keys: Vec<&str> = v
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        for required in [
            "kind",
            "apiVersion",
            "level",
            "auditID",
            "stage",
            "requestURI",
            "verb",
            "user",
            "requestReceivedTimestamp",
            "stageTimestamp",
        ] {
            assert!(keys.contains(&required), "missing {required} in {v}");
        }
        for omitted in [
            "impersonatedUser",
            "sourceIPs",
            "userAgent",
            "objectRef",
            "responseStatus",
            "requestObject",
            "responseObject",
            "annotations",
        ] {
            assert!(
                !keys.contains(&omitted),
                "{omitted} should be omitted in {v}"
            );
        }
        assert_eq!(v["user"], json!({}));
        assert_eq!(v["requestReceivedTimestamp"], "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn event_round_trips() {
        let mut ev = sample();
        ev.level = Level::RequestResponse;
        ev.set_request_object(&json!({"kind": "Pod"}), false);
        ev.set_response_object(&json!({"kind": "Pod", "status": {}}), false);
        let text = serde_json::to_string(&ev).unwrap_or_default();
        let back: Result<Event, _> = serde_json::from_str(&text);
        assert_eq!(back.ok(), Some(ev));
    }

    #[test]
    fn bodies_follow_level() {
        let obj = json!({"kind": "ConfigMap", "data": {"a": "b"}});
        let cases = [
            (Level::None, false, false),
            (Level::Metadata, false, false),
            (Level::Request, true, false),
            (Level::RequestResponse, true, true),
        ];
        for (level, want_req, want_resp) in cases {
            let mut ev = Event::new("id", level, at(0));
            ev.set_request_object(&obj, false);
            ev.set_response_object(&obj, false);
            assert_eq!(ev.request_object.is_some(), want_req, "{level:?} request");
            assert_eq!(
                ev.response_object.is_some(),
                want_resp,
                "{level:?} response"
            );
        }
    }

    #[test]
    fn omit_managed_fields_strips_object_and_list_items_only_from_copies() {
        let pod = json!({
            "kind": "Pod",
            "metadata": {"name": "p", "managedFields": [{"manager": "kubectl"}]},
            "spec": {"metadata": {"managedFields": "not metadata of the object"}}
        });
        let list = json!({
            "kind": "PodList",
            "metadata": {"resourceVersion": "7"},
            "items": [pod.clone(), {"metadata": {"managedFields": []}}, 3]
        });
        let mut ev = Event::new("id", Level::RequestResponse, at(0));
        ev.set_request_object(&pod, true);
        ev.set_response_object(&list, true);
        assert_eq!(
            ev.request_object,
            Some(json!({
                "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {"metadata": {"managedFields": "not metadata of the object"}}
            }))
        );
        let items = ev
            .response_object
            .as_ref()
            .and_then(|l| l.get("items"))
            .cloned();
        assert_eq!(
            items,
            Some(json!([
                {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"metadata": {"managedFields": "not metadata of the object"}}},
                {"metadata": {}},
                3
            ]))
        );
        assert!(
            pod["metadata"].get("managedFields").is_some(),
            "caller's object mutated"
        );

        ev.set_request_object(&pod, false);
        assert_eq!(ev.request_object.as_ref(), Some(&pod));
    }

    #[test]
    fn response_status_from_error_body() {
        let body = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "pods \"x\" not found", "reason": "NotFound",
            "details": {"name": "x", "kind": "pods"}, "code": 404
        });
        let got = serde_json::to_value(ResponseStatus::from_status_object(&body, 404))
            .unwrap_or_default();
        assert_eq!(
            got,
            json!({
                "metadata": {}, "status": "Failure", "message": "pods \"x\" not found",
                "reason": "NotFound", "details": {"name": "x", "kind": "pods"}, "code": 404
            })
        );
    }

    #[test]
    fn levels_are_ordered_and_parse_exactly() {
        assert!(Level::None < Level::Metadata);
        assert!(Level::Metadata < Level::Request);
        assert!(Level::Request < Level::RequestResponse);
        assert_eq!(
            Level::parse("RequestResponse"),
            Some(Level::RequestResponse)
        );
        assert_eq!(Level::parse("metadata"), None);
        assert_eq!(Stage::parse("Panic"), Some(Stage::Panic));
        assert_eq!(Stage::parse("panic"), None);
    }
}
