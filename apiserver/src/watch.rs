//! Watch responses: a chunked stream of `{"type": ..., "object": ...}` lines served from the
//! resource's watch cache, with bookmarks, `sendInitialEvents`, `timeoutSeconds`, and 410
//! `Expired` as an `ERROR` event for a revision older than the cache's window.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderValue, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{json, Value};
use watch_cache::{Event, Filter, Start};

use crate::cache::Cached;
use crate::errors::{self, bad_request, ApiResult};
use crate::handlers::Query;
use crate::negotiation::{IncludeObject, Output};
use crate::object;
use crate::request::ResourceRequest;
use crate::resources::Resource;
use crate::server::{Body, State};
use crate::{selectors, table};

/// Upstream's `--min-request-timeout`: a watch without `timeoutSeconds` ends after a random time
/// between this and twice this, so that clients spread their re-watches.
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(1800);
/// How long a watch waits for the cache to reach the revision it must start from.
const CACHE_WAIT: Duration = Duration::from_secs(3);

pub async fn serve(
    state: Arc<State>,
    resource: &'static Resource,
    request: &ResourceRequest,
    query: &Query,
    output: Output,
) -> ApiResult<Response<Body>> {
    let cache = state
        .caches
        .get(resource)
        .ok_or_else(|| errors::internal("no watch cache for the resource"))?
        .clone();
    let mut filter = selectors::Filter::from_query(resource, query)?;
    if !request.name.is_empty() {
        filter.require_name(&request.name);
    }
    let bookmarks = crate::handlers::query_bool(query, "allowWatchBookmarks") == Some(true);
    let send_initial_events = match query.get("sendInitialEvents") {
        None => None,
        Some(text) => match crate::handlers::query_bool(query, "sendInitialEvents") {
            Some(true) => Some("true"),
            Some(false) => Some("false"),
            None => return Err(bad_request(format!("invalid sendInitialEvents: {text:?}"))),
        },
    };
    let rv = object::parse_resource_version(
        query
            .get("resourceVersion")
            .map(String::as_str)
            .unwrap_or("0")
            .trim(),
    )?;
    let rv_match = query
        .get("resourceVersionMatch")
        .map(String::as_str)
        .unwrap_or("");
    let start = match send_initial_events {
        Some("true") => {
            if rv_match != "NotOlderThan" {
                return Err(errors::invalid_list_options(
                    "resourceVersionMatch",
                    rv_match,
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if !bookmarks {
                return Err(errors::invalid_list_options(
                    "allowWatchBookmarks",
                    "false",
                    "sendInitialEvents requires setting allowWatchBookmarks to true",
                ));
            }
            // The initial state must be at least as new as asked: the store's current revision
            // for a consistent start (no resourceVersion), else the given one. Upstream waits
            // up to 3 s for its cache, then answers 504.
            let wanted = match query.get("resourceVersion").map(|v| v.trim()) {
                None | Some("") => Some(
                    state
                        .registry
                        .store()
                        .current_revision()
                        .await
                        .map_err(|err| errors::from_storage(resource, "", err))?,
                ),
                Some(_) => rv.filter(|n| *n > 0),
            };
            if let Some(wanted) = wanted {
                if !cache.wait_for_revision(wanted, CACHE_WAIT).await {
                    return Err(errors::timeout(format!(
                        "Too large resource version: {wanted}, current: {}",
                        cache.revision()
                    )));
                }
            }
            Start::Now {
                initial_events: true,
                initial_events_end_bookmark: true,
            }
        }
        Some("false") | None => {
            if !rv_match.is_empty() && send_initial_events.is_none() {
                return Err(bad_request(
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
            match rv {
                None | Some(0) => Start::Now {
                    initial_events: true,
                    initial_events_end_bookmark: false,
                },
                Some(n) => Start::After(n),
            }
        }
        Some(other) => return Err(bad_request(format!("invalid sendInitialEvents: {other:?}"))),
    };
    let timeout = match query.get("timeoutSeconds") {
        Some(t) => Duration::from_secs(
            t.parse::<u64>()
                .map_err(|_| bad_request(format!("invalid timeoutSeconds: {t:?}")))?,
        ),
        None => {
            let jitter = uuid::Uuid::new_v4().as_u128() as u64 % MIN_REQUEST_TIMEOUT.as_secs();
            MIN_REQUEST_TIMEOUT + Duration::from_secs(jitter)
        }
    };
    let prefix =
        resource.list_prefix((!request.namespace.is_empty()).then_some(request.namespace.as_str()));
    let matcher = Arc::new(filter);
    let cache_filter: Filter<Cached> = {
        let matcher = matcher.clone();
        Arc::new(move |cached: &Cached| matcher.matches_cached(cached))
    };
    let encoder = Encoder {
        resource,
        output,
        include_object: match output {
            Output::Table { include_object } => include_object.resolve(query),
            _ => IncludeObject::Metadata,
        },
        first: std::sync::atomic::AtomicBool::new(true),
    };
    let watcher = match cache.watch(&prefix, start, cache_filter, bookmarks) {
        Ok(watcher) => watcher,
        Err(watch_cache::Error::Expired { requested, oldest }) => {
            // Upstream answers 200 and a single ERROR event carrying the 410.
            let status = errors::gone(format!("too old resource version: {requested} ({oldest})"));
            let line = event_line("ERROR", &status.status);
            return Ok(stream_response(futures::stream::iter([line]).boxed()));
        }
        Err(err) => return Err(errors::internal(err)),
    };
    let metrics_state = state.clone();
    state
        .metrics
        .watch_opened(resource.group, resource.version, resource.kind);
    let guard = WatchGuard {
        state: metrics_state,
        resource,
    };
    let mut shutdown = state.shutdown.clone();
    let deadline = tokio::time::sleep(timeout);
    let events = watcher.map(move |event| encoder.encode(event));
    let stream = async_stream(
        events,
        deadline,
        async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        },
        guard,
    );
    Ok(stream_response(stream))
}

/// Ends `events` at the deadline or at shutdown, whichever comes first; keeps `guard` alive as
/// long as the stream.
fn async_stream(
    events: impl futures::Stream<Item = Bytes> + Send + 'static,
    deadline: tokio::time::Sleep,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    guard: WatchGuard,
) -> futures::stream::BoxStream<'static, Bytes> {
    let stop = Box::pin(async move {
        tokio::select! {
            _ = deadline => {},
            _ = shutdown => {},
        }
    });
    let events = events.take_until(stop);
    events
        .map(move |line| {
            let _keep = &guard;
            line
        })
        .boxed()
}

struct WatchGuard {
    state: Arc<State>,
    resource: &'static Resource,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.state.metrics.watch_closed(
            self.resource.group,
            self.resource.version,
            self.resource.kind,
        );
    }
}

fn stream_response(lines: futures::stream::BoxStream<'static, Bytes>) -> Response<Body> {
    let frames = lines.map(|line| Ok::<_, std::io::Error>(Frame::data(line)));
    let mut response = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// Turns cache events into wire lines for one watcher.
struct Encoder {
    resource: &'static Resource,
    output: Output,
    include_object: IncludeObject,
    first: std::sync::atomic::AtomicBool,
}

impl Encoder {
    fn encode(&self, event: Event<Cached>) -> Bytes {
        let (kind, cached, revision) = match event {
            Event::Added(c, r) => ("ADDED", c, r),
            Event::Modified(c, r) => ("MODIFIED", c, r),
            Event::Deleted(c, r) => ("DELETED", c, r),
            Event::Bookmark(r) => return event_line("BOOKMARK", &self.bookmark(r, false)),
            Event::InitialEventsEnd(r) => return event_line("BOOKMARK", &self.bookmark(r, true)),
        };
        match self.output {
            Output::Table { .. } => {
                let first = self.first.swap(false, std::sync::atomic::Ordering::Relaxed);
                let mut obj = cached.object(self.resource);
                if cached.resource_version != revision {
                    object::meta_mut(&mut obj).insert(
                        "resourceVersion".into(),
                        Value::String(revision.to_string()),
                    );
                }
                let table = table::table(
                    self.resource,
                    std::slice::from_ref(&obj),
                    revision,
                    None,
                    self.include_object,
                    first,
                );
                event_line(kind, &table)
            }
            _ if cached.resource_version == revision => {
                // The common case: splice the cached bytes into the event line.
                let object = cached.typed_json(self.resource);
                let mut line = Vec::with_capacity(object.len() + 32);
                line.extend_from_slice(b"{\"type\":\"");
                line.extend_from_slice(kind.as_bytes());
                line.extend_from_slice(b"\",\"object\":");
                line.extend_from_slice(&object);
                line.extend_from_slice(b"}\n");
                Bytes::from(line)
            }
            _ => {
                // A delete (or a selector transition) carries the event's revision: encoded once
                // per (object, revision) and shared by every watcher.
                let encoded = cached.at_revision.get_or_init(|| {
                    let mut obj = cached.object(self.resource);
                    object::meta_mut(&mut obj).insert(
                        "resourceVersion".into(),
                        Value::String(revision.to_string()),
                    );
                    (
                        revision,
                        Bytes::from(serde_json::to_vec(&obj).unwrap_or_default()),
                    )
                });
                let object = if encoded.0 == revision {
                    encoded.1.clone()
                } else {
                    let mut obj = cached.object(self.resource);
                    object::meta_mut(&mut obj).insert(
                        "resourceVersion".into(),
                        Value::String(revision.to_string()),
                    );
                    Bytes::from(serde_json::to_vec(&obj).unwrap_or_default())
                };
                let mut line = Vec::with_capacity(object.len() + 32);
                line.extend_from_slice(b"{\"type\":\"");
                line.extend_from_slice(kind.as_bytes());
                line.extend_from_slice(b"\",\"object\":");
                line.extend_from_slice(&object);
                line.extend_from_slice(b"}\n");
                Bytes::from(line)
            }
        }
    }

    fn bookmark(&self, revision: u64, initial_events_end: bool) -> Value {
        let mut metadata =
            json!({"resourceVersion": revision.to_string(), "creationTimestamp": null});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({
            "kind": self.resource.kind,
            "apiVersion": self.resource.group_version(),
            "metadata": metadata,
        })
    }
}
