//! An event recorder writing `events.k8s.io/v1` Events, with client-go's (`tools/events`)
//! aggregation: an event isomorphic to one recorded in the last 6 minutes (same regarding and
//! related objects, action, reason, reporting controller) does not create a new object; it turns
//! the first one into a series (`series.count`, `series.lastObservedTime`).
//!
//! Differences from client-go, on purpose: client-go patches a growing series only every 30
//! minutes, so `kubectl` shows `count: 2` for half an hour; here the count is patched at most once
//! per `series_refresh` (default 10 s) while it grows. A per-object token bucket (burst 25, one
//! more every 5 minutes, client-go's spam filter) drops floods.
//!
//! Recording never blocks and never fails the caller: events go through a channel to one
//! background task, and write errors are logged.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::core::Resource;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::client::{Api, Client, Patch, PatchParams};

/// How long an isomorphic event joins an existing series (client-go: 6 minutes).
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// Upstream validation's limit on `note`.
const MAX_NOTE_BYTES: usize = 1024;
const SPAM_BURST: f64 = 25.0;
const SPAM_REFILL: Duration = Duration::from_secs(300);

/// `Normal` or `Warning`, the two types upstream accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// A reference to `obj` for `regarding` / `related`.
pub fn object_reference<K>(obj: &K) -> ObjectReference
where
    K: Resource,
    K::DynamicType: Default,
{
    let dt = K::DynamicType::default();
    let meta = obj.meta();
    ObjectReference {
        api_version: Some(K::api_version(&dt).into_owned()),
        kind: Some(K::kind(&dt).into_owned()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}

struct Pending {
    regarding: ObjectReference,
    related: Option<ObjectReference>,
    event_type: EventType,
    reason: String,
    action: String,
    note: String,
}

/// Records events for one reporting controller; clones share the background writer.
#[derive(Clone)]
pub struct EventRecorder {
    tx: mpsc::UnboundedSender<Pending>,
}

impl EventRecorder {
    /// `reporting_controller` is the component (`kube-controller-manager`, `default-scheduler`),
    /// `reporting_instance` this process (`<component>-<hostname>`).
    pub fn new(
        client: &Client,
        reporting_controller: &str,
        reporting_instance: &str,
    ) -> EventRecorder {
        Self::with_refresh(
            client,
            reporting_controller,
            reporting_instance,
            Duration::from_secs(10),
        )
    }

    /// Same, with the period at which growing series are written.
    pub fn with_refresh(
        client: &Client,
        reporting_controller: &str,
        reporting_instance: &str,
        series_refresh: Duration,
    ) -> EventRecorder {
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = Sink {
            client: client.clone(),
            controller: reporting_controller.to_string(),
            instance: reporting_instance.to_string(),
            cache: HashMap::new(),
            spam: SpamFilter::default(),
        };
        tokio::spawn(sink.run(rx, series_refresh.max(Duration::from_millis(100))));
        EventRecorder { tx }
    }

    /// Records an event about `regarding`. `action` says what was done (`Binding`, `Scaling`),
    /// `reason` why (`Scheduled`, `SuccessfulCreate`), `note` is for humans.
    pub fn record(
        &self,
        regarding: &ObjectReference,
        related: Option<&ObjectReference>,
        event_type: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) {
        tracing::debug!(
            object = %format!("{}/{}", regarding.namespace.as_deref().unwrap_or(""), regarding.name.as_deref().unwrap_or("")),
            kind = regarding.kind.as_deref().unwrap_or(""),
            r#type = event_type.as_str(),
            %reason,
            %note,
            "event"
        );
        let _ = self.tx.send(Pending {
            regarding: regarding.clone(),
            related: related.cloned(),
            event_type,
            reason: reason.to_string(),
            action: action.to_string(),
            note: note.to_string(),
        });
    }

    pub fn normal(&self, regarding: &ObjectReference, reason: &str, action: &str, note: &str) {
        self.record(regarding, None, EventType::Normal, reason, action, note);
    }

    pub fn warning(&self, regarding: &ObjectReference, reason: &str, action: &str, note: &str) {
        self.record(regarding, None, EventType::Warning, reason, action, note);
    }
}

/// client-go's spam filter: a token bucket per object (burst 25, one more every 5 minutes).
#[derive(Default)]
struct SpamFilter {
    buckets: HashMap<String, (f64, Instant)>,
}

impl SpamFilter {
    fn allowed(&mut self, object: &str) -> bool {
        let now = Instant::now();
        let refill = 1.0 / SPAM_REFILL.as_secs_f64();
        let (tokens, at) = self
            .buckets
            .entry(object.to_string())
            .or_insert((SPAM_BURST, now));
        *tokens =
            (*tokens + now.saturating_duration_since(*at).as_secs_f64() * refill).min(SPAM_BURST);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Drops buckets that have refilled completely: they hold nothing a new one would not.
    fn forget_idle(&mut self) {
        let refill_full = SPAM_REFILL.mul_f64(SPAM_BURST);
        self.buckets.retain(|_, (_, at)| at.elapsed() < refill_full);
    }
}

/// client-go's isomorphism key.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    regarding: String,
    related: String,
    action: String,
    reason: String,
    event_type: &'static str,
}

fn reference_key(r: &ObjectReference) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}",
        r.api_version.as_deref().unwrap_or(""),
        r.kind.as_deref().unwrap_or(""),
        r.namespace.as_deref().unwrap_or(""),
        r.name.as_deref().unwrap_or(""),
        r.uid.as_deref().unwrap_or(""),
        r.field_path.as_deref().unwrap_or("")
    )
}

struct Recorded {
    namespace: String,
    name: String,
    count: i32,
    /// The count last written.
    written: i32,
    last_observed: Timestamp,
    last_seen: Instant,
}

struct Sink {
    client: Client,
    controller: String,
    instance: String,
    cache: HashMap<Key, Recorded>,
    spam: SpamFilter,
}

impl Sink {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Pending>, refresh: Duration) {
        let mut tick = tokio::time::interval(refresh);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                pending = rx.recv() => match pending {
                    Some(pending) => self.handle(pending).await,
                    None => {
                        // Every recorder is gone: write what is left and stop.
                        self.flush().await;
                        return;
                    }
                },
                _ = tick.tick() => self.flush().await,
            }
        }
    }

    async fn handle(&mut self, p: Pending) {
        let regarding_key = reference_key(&p.regarding);
        let key = Key {
            regarding: regarding_key.clone(),
            related: p.related.as_ref().map(reference_key).unwrap_or_default(),
            action: p.action.clone(),
            reason: p.reason.clone(),
            event_type: p.event_type.as_str(),
        };
        let now = Timestamp::now();
        if let Some(recorded) = self.cache.get_mut(&key) {
            if recorded.last_seen.elapsed() < SERIES_WINDOW {
                recorded.count = recorded.count.saturating_add(1);
                recorded.last_observed = now;
                recorded.last_seen = Instant::now();
                // The first repeat turns the event into a series at once, as client-go does.
                if recorded.count == 2 {
                    self.write_series(&key).await;
                }
                return;
            }
        }
        if !self.spam.allowed(&regarding_key) {
            tracing::debug!(reason = %p.reason, "event dropped by the spam filter");
            return;
        }
        let namespace = p
            .regarding
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".to_string());
        let regarding_name = p.regarding.name.clone().unwrap_or_default();
        let nanos = now.as_nanosecond();
        let name = format!("{regarding_name}.{nanos:x}");
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(p.action),
            reason: Some(p.reason),
            note: Some(truncate(&p.note, MAX_NOTE_BYTES)),
            type_: Some(p.event_type.as_str().to_string()),
            regarding: Some(p.regarding),
            related: p.related,
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        };
        let api: Api<Event> = self.client.api(Some(&namespace));
        match api.create(&event).await {
            Ok(_) => {
                self.cache.insert(
                    key,
                    Recorded {
                        namespace,
                        name,
                        count: 1,
                        written: 1,
                        last_observed: now,
                        last_seen: Instant::now(),
                    },
                );
            }
            Err(err) => tracing::warn!(error = %err, event = %name, "could not record an event"),
        }
    }

    async fn write_series(&mut self, key: &Key) {
        let Some(recorded) = self.cache.get(key) else {
            return;
        };
        let (namespace, name, count, last) = (
            recorded.namespace.clone(),
            recorded.name.clone(),
            recorded.count,
            recorded.last_observed,
        );
        let series = EventSeries {
            count,
            last_observed_time: MicroTime(last),
        };
        let patch = json!({ "series": series });
        let api: Api<Event> = self.client.api(Some(&namespace));
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                if let Some(recorded) = self.cache.get_mut(key) {
                    recorded.written = count;
                }
            }
            Err(err) if err.is_not_found() => {
                // The event expired (TTL) under us: the next occurrence starts a new one.
                self.cache.remove(key);
            }
            Err(err) => {
                tracing::warn!(error = %err, event = %name, "could not update an event series")
            }
        }
    }

    /// Writes grown series and forgets series that ended.
    async fn flush(&mut self) {
        let dirty: Vec<Key> = self
            .cache
            .iter()
            .filter(|(_, r)| r.count != r.written)
            .map(|(k, _)| k.clone())
            .collect();
        for key in dirty {
            self.write_series(&key).await;
        }
        self.cache
            .retain(|_, r| r.last_seen.elapsed() < SERIES_WINDOW || r.count != r.written);
        self.spam.forget_idle();
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_spam_filter_lets_a_burst_through_then_one_per_refill() {
        let mut filter = SpamFilter::default();
        for _ in 0..25 {
            assert!(filter.allowed("pod-a"));
        }
        assert!(!filter.allowed("pod-a"));
        assert!(filter.allowed("pod-b"), "buckets are per object");
        tokio::time::advance(SPAM_REFILL).await;
        assert!(filter.allowed("pod-a"));
        assert!(!filter.allowed("pod-a"));
    }

    #[test]
    fn notes_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(
            truncate(&"x".repeat(2000), MAX_NOTE_BYTES).len(),
            MAX_NOTE_BYTES
        );
    }

    #[test]
    fn references_name_the_object() {
        let pod = k8s_openapi::api::core::v1::Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                ..ObjectMeta::default()
            },
            ..Default::default()
        };
        let r = object_reference(&pod);
        assert_eq!(r.kind.as_deref(), Some("Pod"));
        assert_eq!(r.api_version.as_deref(), Some("v1"));
        assert_eq!(r.uid.as_deref(), Some("u1"));
    }
}

/// A recorder of core/v1 Events, as client-go's `tools/record` that most controller-manager
/// controllers and the kubelet use (and `kubectl describe` lists): an event identical to one
/// recorded before (same source, object, type, reason and message) bumps that event's `count`
/// and `lastTimestamp`; more than 10 events about one object with the same reason but different
/// messages within 10 minutes become one "(combined from similar events): ..." event, as
/// client-go's `EventCorrelator` does.
#[derive(Clone)]
pub struct CoreEventRecorder {
    tx: mpsc::UnboundedSender<Pending>,
}

/// client-go's `defaultAggregateMaxEvents` and `defaultAggregateIntervalInSeconds`.
const AGGREGATE_MAX_EVENTS: usize = 10;
const AGGREGATE_INTERVAL: Duration = Duration::from_secs(600);

impl CoreEventRecorder {
    /// `component` is the event source (`replicaset-controller`, `kubelet`), `host` the node
    /// for node agents.
    pub fn new(client: &Client, component: &str, host: Option<&str>) -> CoreEventRecorder {
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = CoreSink {
            client: client.clone(),
            component: component.to_string(),
            host: host.map(str::to_string),
            recorded: HashMap::new(),
            similar: HashMap::new(),
            spam: SpamFilter::default(),
        };
        tokio::spawn(sink.run(rx));
        CoreEventRecorder { tx }
    }

    /// Records an event about `object`; never blocks, never fails the caller.
    pub fn event(
        &self,
        object: &ObjectReference,
        event_type: EventType,
        reason: &str,
        message: &str,
    ) {
        tracing::debug!(
            object = %format!("{}/{}", object.namespace.as_deref().unwrap_or(""), object.name.as_deref().unwrap_or("")),
            kind = object.kind.as_deref().unwrap_or(""),
            r#type = event_type.as_str(),
            %reason,
            %message,
            "event"
        );
        let _ = self.tx.send(Pending {
            regarding: object.clone(),
            related: None,
            event_type,
            reason: reason.to_string(),
            action: String::new(),
            note: message.to_string(),
        });
    }

    pub fn normal(&self, object: &ObjectReference, reason: &str, message: &str) {
        self.event(object, EventType::Normal, reason, message);
    }

    pub fn warning(&self, object: &ObjectReference, reason: &str, message: &str) {
        self.event(object, EventType::Warning, reason, message);
    }
}

struct CoreRecorded {
    namespace: String,
    name: String,
    count: i32,
    first: Timestamp,
}

struct CoreSink {
    client: Client,
    component: String,
    host: Option<String>,
    /// Identical events (by the full key, message included) -> the Event that counts them.
    recorded: HashMap<String, CoreRecorded>,
    /// (object, type, reason) -> distinct messages seen in the aggregation window, and when the
    /// window started.
    similar: HashMap<String, (std::collections::HashSet<String>, Instant)>,
    spam: SpamFilter,
}

impl CoreSink {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Pending>) {
        while let Some(pending) = rx.recv().await {
            self.handle(pending).await;
        }
    }

    async fn handle(&mut self, p: Pending) {
        let object = reference_key(&p.regarding);
        let aggregate_key = format!(
            "{}|{object}|{}|{}",
            self.component,
            p.event_type.as_str(),
            p.reason
        );
        let mut message = truncate(&p.note, MAX_NOTE_BYTES);
        let entry = self
            .similar
            .entry(aggregate_key.clone())
            .or_insert_with(|| (std::collections::HashSet::new(), Instant::now()));
        if entry.1.elapsed() > AGGREGATE_INTERVAL {
            *entry = (std::collections::HashSet::new(), Instant::now());
        }
        entry.0.insert(message.clone());
        let key = if entry.0.len() > AGGREGATE_MAX_EVENTS {
            message = format!("(combined from similar events): {message}");
            aggregate_key
        } else {
            format!("{aggregate_key}|{message}")
        };
        let now = Timestamp::now();
        let time = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now);
        if let Some(recorded) = self.recorded.get_mut(&key) {
            recorded.count = recorded.count.saturating_add(1);
            let (namespace, name, count) = (
                recorded.namespace.clone(),
                recorded.name.clone(),
                recorded.count,
            );
            let patch = json!({"count": count, "lastTimestamp": time, "message": message});
            let api: Api<k8s_openapi::api::core::v1::Event> = self.client.api(Some(&namespace));
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return,
                Err(err) if err.is_not_found() => {
                    // Expired under us: record afresh below.
                    self.recorded.remove(&key);
                }
                Err(err) => {
                    tracing::warn!(error = %err, event = %name, "could not update an event");
                    return;
                }
            }
        }
        if !self.spam.allowed(&object) {
            tracing::debug!(reason = %p.reason, "event dropped by the spam filter");
            return;
        }
        let namespace = p
            .regarding
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".to_string());
        let name = format!(
            "{}.{:x}",
            p.regarding.name.as_deref().unwrap_or_default(),
            now.as_nanosecond()
        );
        let event = k8s_openapi::api::core::v1::Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: p.regarding,
            reason: Some(p.reason),
            message: Some(message),
            type_: Some(p.event_type.as_str().to_string()),
            count: Some(1),
            first_timestamp: Some(time.clone()),
            last_timestamp: Some(time),
            source: Some(k8s_openapi::api::core::v1::EventSource {
                component: Some(self.component.clone()),
                host: self.host.clone(),
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.host.clone().unwrap_or_default()),
            ..Default::default()
        };
        let api: Api<k8s_openapi::api::core::v1::Event> = self.client.api(Some(&namespace));
        match api.create(&event).await {
            Ok(_) => {
                self.recorded.insert(
                    key,
                    CoreRecorded {
                        namespace,
                        name,
                        count: 1,
                        first: now,
                    },
                );
                // Forget events older than the aggregation window, so the map stays small.
                let horizon = AGGREGATE_INTERVAL.as_secs() as i64;
                self.recorded
                    .retain(|_, r| now.as_second() - r.first.as_second() < horizon * 6);
                self.spam.forget_idle();
            }
            Err(err) => tracing::warn!(error = %err, event = %name, "could not record an event"),
        }
    }
}
