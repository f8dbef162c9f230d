//! The HTTP edge of the resource API: turns a request into a registry call and its answer into
//! the JSON (or Table, or YAML) upstream would send. Every failure leaves as a `metav1.Status`.
//!
//! The request chain runs in stages, in upstream's order: authentication -> authorization ->
//! mutating admission -> validation -> validating admission -> storage (see `chain.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Map, Value};

use crate::chain::{Attributes, Operation};
use crate::errors::{self, bad_request, ApiError, ApiResult};
use crate::negotiation::{self, Output};
use crate::object::{self, meta_mut};
use crate::registry::{DeleteRequest, ListRequest};
use crate::request::ResourceRequest;
use crate::resources::{self, Resource};
use crate::server::{Body, State};
use crate::strategy::Part;
use crate::{selectors, table, watch};

/// Bodies over this size are refused with 413, as upstream does.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

pub type Query = HashMap<String, String>;

/// A boolean query parameter as Go's `strconv.ParseBool` reads it (clients send `true`, `True`,
/// `1`, ...); `None` when absent or not a boolean.
pub fn query_bool(query: &Query, name: &str) -> Option<bool> {
    match query.get(name).map(String::as_str)? {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

pub fn parse_query(query: Option<&str>) -> Query {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Serves one resource request.
pub async fn serve(
    state: Arc<State>,
    request: ResourceRequest,
    connection: crate::authn::Connection,
    headers: HeaderMap,
    query: Query,
    body: RequestBody,
) -> ApiResult<Response<Body>> {
    let resource = resources::find(&request.group, &request.version, &request.resource)
        .ok_or_else(errors::route_not_found)?;
    if !resource.namespaced && !request.namespace.is_empty() && resource.plural != "namespaces" {
        return Err(errors::route_not_found());
    }
    // Subresources that are not a view of the object itself have their own handlers.
    let special = match request.subresource.as_str() {
        "scale" => resource.subresource("scale").is_some(),
        "token" => {
            resource.group.is_empty()
                && resource.kind == "ServiceAccount"
                && request.verb == "create"
        }
        "binding" | "eviction" => {
            resource.group.is_empty() && resource.kind == "Pod" && request.verb == "create"
        }
        _ => false,
    };
    if request.subresource == "log"
        && resource.group.is_empty()
        && resource.kind == "Pod"
        && request.verb == "get"
        && request.rest.is_empty()
    {
        return crate::podlogs::serve(&state, &request, resource, &connection, &headers, &query)
            .await;
    }
    if special && request.rest.is_empty() {
        let output = negotiation::output(&headers)?;
        let mut attributes = Attributes::for_request(&request, resource, None);
        attributes.user = Some(
            state
                .chain
                .authorize(&connection.credentials(&headers), &attributes)?,
        );
        let dry_run = dry_run(&query)?;
        let namespace = request.namespace.as_str();
        if request.subresource == "token" {
            let content_type = content_type(&headers);
            let bytes = read_body(body).await?;
            let input = if bytes.is_empty() {
                json!({})
            } else {
                negotiation::parse_body(&content_type, &bytes)?
            };
            let answer = crate::serviceaccounts::token_request(
                state.token_issuer.as_ref(),
                &state.caches,
                namespace,
                &request.name,
                &input,
            )?;
            return negotiation::respond(StatusCode::CREATED, &answer, &output);
        }
        return if request.subresource == "scale" {
            crate::scale::serve(
                &state,
                resource,
                &attributes,
                namespace,
                &headers,
                body,
                dry_run,
                &output,
            )
            .await
        } else {
            crate::pods::serve(
                &state,
                resource,
                &attributes,
                namespace,
                &headers,
                &query,
                body,
                dry_run,
                &output,
            )
            .await
        };
    }
    let part = match request.subresource.as_str() {
        "" => Part::Main,
        "status" if resource.has_status() => Part::Status,
        "finalize" if resource.plural == "namespaces" => Part::Finalize,
        "approval" if resource.kind == "CertificateSigningRequest" => Part::Approval,
        other => {
            if resource.subresource(other).is_some() {
                return Err(errors::method_not_allowed());
            }
            return Err(errors::route_not_found());
        }
    };
    if request.verb.is_empty() {
        return Err(errors::method_not_allowed());
    }
    if !request.rest.is_empty() {
        return Err(errors::route_not_found());
    }
    let allowed = match part {
        Part::Main => resource.supports(request.verb),
        _ => resource
            .subresource(&request.subresource)
            .is_some_and(|s| s.verbs.contains(&request.verb)),
    };
    if !allowed {
        return Err(errors::method_not_supported(resource, request.verb));
    }
    let output = negotiation::output(&headers)?;
    let mut attributes =
        Attributes::for_request(&request, resource, query.get("fieldSelector").cloned());
    let user = state
        .chain
        .authorize(&connection.credentials(&headers), &attributes)?;
    attributes.user = Some(user.clone());
    if !resource.is_stored() {
        let content_type = content_type(&headers);
        let bytes = read_body(body).await?;
        let review = if bytes.is_empty() {
            json!({})
        } else {
            negotiation::parse_body(&content_type, &bytes)?
        };
        let answer = crate::reviews::answer(
            &state.chain,
            state.rbac.as_deref(),
            resource,
            &user,
            &request.namespace,
            &review,
        )?;
        return negotiation::respond(StatusCode::CREATED, &answer, &output);
    }
    let namespace = if resource.namespaced {
        request.namespace.as_str()
    } else {
        ""
    };
    let dry_run = dry_run(&query)?;
    let manager = crate::fieldmanager::manager(&headers, &query)?;
    match request.verb {
        "get" => {
            let obj = state
                .registry
                .get(resource, namespace, &request.name)
                .await?;
            respond_object(resource, StatusCode::OK, obj, &output, &query)
        }
        "list" => list(&state, resource, namespace, &query, &output).await,
        "watch" => watch::serve(state.clone(), resource, &request, &query, output).await,
        "create" => {
            let content_type = content_type(&headers);
            let bytes = read_body(body).await?;
            let mut warnings = Vec::new();
            let obj = decode_body(resource, &content_type, &bytes, &query, &mut warnings)?;
            let mut obj = prepare_create(resource, namespace, obj)?;
            if resource.kind == "CertificateSigningRequest" {
                // The requestor is whoever created the request, never what the body claims.
                obj["spec"]["username"] = json!(user.name);
                obj["spec"]["groups"] = json!(user.groups);
            }
            let lifecycle_off = state
                .config
                .disable_admission_plugins
                .iter()
                .any(|p| p == "NamespaceLifecycle");
            if !lifecycle_off {
                crate::admission::namespace_lifecycle(&state, resource, namespace).await?;
            }
            let is_service = resource.group.is_empty() && resource.kind == "Service";
            let claimed = if is_service {
                Some(crate::services::allocate(&state, &mut obj, dry_run).await?)
            } else {
                None
            };
            // Field ownership is recorded on the defaulted request, before the server sets its
            // own fields (upstream runs the field manager before PrepareForCreate).
            builtin::default(resource.group, resource.version, resource.kind, &mut obj);
            let obj = crate::fieldmanager::track(resource, &manager, "", obj, None);
            let chain = &state.chain;
            let attrs = &attributes;
            let created = state
                .registry
                .create(resource, obj, dry_run, &|new, _| {
                    chain.admit(Operation::Create, attrs, new, None)
                })
                .await;
            let created = match (created, claimed) {
                (Ok(created), claimed) => {
                    if dry_run {
                        if let Some(claimed) = claimed {
                            crate::services::release(&state, claimed).await;
                        }
                    }
                    created
                }
                (Err(err), Some(claimed)) => {
                    crate::services::release(&state, claimed).await;
                    return Err(err);
                }
                (Err(err), None) => return Err(err),
            };
            let mut response =
                respond_object(resource, StatusCode::CREATED, created, &output, &query)?;
            add_warnings(&mut response, &warnings);
            Ok(response)
        }
        "update" => {
            let content_type = content_type(&headers);
            let bytes = read_body(body).await?;
            let mut warnings = Vec::new();
            let obj = decode_body(resource, &content_type, &bytes, &query, &mut warnings)?;
            let obj = prepare_update(resource, namespace, &request.name, obj)?;
            let chain = &state.chain;
            let attrs = &attributes;
            let updated = state
                .registry
                .update(
                    resource,
                    namespace,
                    &request.name,
                    part,
                    obj,
                    dry_run,
                    &|new, old| {
                        crate::fieldmanager::track(
                            resource,
                            &manager,
                            &request.subresource,
                            new,
                            old,
                        )
                    },
                    &|new, old| chain.admit(Operation::Update, attrs, new, old),
                )
                .await?;
            let code = if updated.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut response = respond_object(resource, code, updated.object, &output, &query)?;
            add_warnings(&mut response, &warnings);
            Ok(response)
        }
        "patch" => {
            crate::patching::serve(
                &state,
                resource,
                &attributes,
                part,
                namespace,
                &headers,
                &query,
                body,
                dry_run,
                &output,
            )
            .await
        }
        "delete" => {
            let bytes = read_body(body).await?;
            let options = delete_options(&bytes, &query, dry_run)?;
            crate::admission::namespace_deletable(resource, &request.name)?;
            let deleted = state
                .registry
                .delete(resource, namespace, &request.name, &options)
                .await?;
            after_delete(&state, resource, &deleted).await;
            let code = if deleted.gone {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            // Upstream answers 202 only for deletes that wait on finalizers of dependents; a
            // graceful delete still answers 200 with the object.
            let code = if code == StatusCode::ACCEPTED
                && !object::finalizers(&deleted.object).is_empty()
            {
                StatusCode::OK
            } else {
                code
            };
            respond_object(resource, code, deleted.object, &output, &query)
        }
        "deletecollection" => {
            let bytes = read_body(body).await?;
            let options = delete_options(&bytes, &query, dry_run)?;
            let filter = selectors::Filter::from_query(resource, &query)?;
            let page = state
                .registry
                .list(
                    resource,
                    ListRequest {
                        namespace: (!namespace.is_empty()).then_some(namespace),
                        filter: Some(&|obj: &Value| filter.matches(obj)),
                        ..ListRequest::default()
                    },
                )
                .await?;
            let mut items = Vec::new();
            for obj in page.items {
                let ns = object::namespace(&obj).to_string();
                let name = object::name(&obj).to_string();
                match state.registry.delete(resource, &ns, &name, &options).await {
                    Ok(deleted) => {
                        after_delete(&state, resource, &deleted).await;
                        items.push(deleted.object)
                    }
                    Err(err) if err.code == 404 => {}
                    Err(err) => return Err(err),
                }
            }
            let list = list_object(resource, items, page.revision, None);
            negotiation::respond(StatusCode::OK, &list, &output)
        }
        _ => Err(errors::method_not_allowed()),
    }
}

/// What a delete that removed the object gives back (a Service's IP and ports).
async fn after_delete(state: &State, resource: &Resource, deleted: &crate::registry::Deleted) {
    if deleted.gone && !deleted.dry_run && resource.group.is_empty() && resource.kind == "Service" {
        crate::services::release_for(state, &deleted.object).await;
    }
}

async fn list(
    state: &State,
    resource: &'static Resource,
    namespace: &str,
    query: &Query,
    output: &Output,
) -> ApiResult<Response<Body>> {
    let filter = selectors::Filter::from_query(resource, query)?;
    let limit = match query.get("limit").map(String::as_str) {
        None | Some("") => None,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if n > 0 => Some(n as usize),
            Ok(_) => None,
            Err(_) => return Err(bad_request(format!("invalid limit: {text:?}"))),
        },
    };
    let continue_token = query.get("continue").filter(|c| !c.is_empty()).cloned();
    let rv = query
        .get("resourceVersion")
        .map(String::as_str)
        .unwrap_or("");
    let rv_match = query
        .get("resourceVersionMatch")
        .map(String::as_str)
        .unwrap_or("");
    let revision = match (rv_match, object::parse_resource_version(rv)?) {
        ("", _) | ("NotOlderThan", _) => None,
        ("Exact", Some(rv)) if continue_token.is_none() => Some(rv),
        ("Exact", None) => {
            return Err(bad_request(
                "resourceVersionMatch \"Exact\" requires a resourceVersion",
            ))
        }
        ("Exact", Some(_)) => {
            return Err(bad_request(
                "specifying resourceVersion is not allowed when using continue",
            ))
        }
        (other, _) => {
            return Err(bad_request(format!(
                "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
            )))
        }
    };
    if continue_token.is_some() && !rv.is_empty() && rv != "0" {
        return Err(bad_request(
            "specifying resourceVersion is not allowed when using continue",
        ));
    }
    let matches = |obj: &Value| filter.matches(obj);
    // Served from the watch cache, as upstream's cacher does: `resourceVersion=0` (any state is
    // fine), "not older than N" once the cache has reached N, and consistent reads when the
    // cache already reflects the store's latest revision. Exact revisions and pages read
    // storage.
    let cache = state.caches.get(resource);
    let from_cache = continue_token.is_none()
        && rv_match != "Exact"
        && match (cache, object::parse_resource_version(rv)?) {
            (Some(_), Some(0)) => true,
            (Some(c), Some(n)) => c.revision() >= n,
            (Some(c), None) if limit.is_none() => state
                .registry
                .store()
                .current_revision()
                .await
                .is_ok_and(|current| c.revision() >= current),
            _ => false,
        };
    if let (Some(cache), Some(limit)) = (cache, limit) {
        if let Some(response) = cached_page(
            state,
            resource,
            cache,
            query,
            namespace,
            limit,
            &continue_token,
            rv,
            rv_match,
            &filter,
            output,
        )
        .await?
        {
            return Ok(response);
        }
    }
    let page = match cache.filter(|_| from_cache) {
        Some(cache) => {
            let prefix = resource.list_prefix((!namespace.is_empty()).then_some(namespace));
            let (items, revision) = cache.list(&prefix, &|c: &crate::cache::Cached| {
                filter.matches_cached(c)
            });
            if *output == Output::Json {
                return Ok(negotiation::bytes_response(
                    StatusCode::OK,
                    "application/json",
                    list_bytes(resource, &items, revision),
                ));
            }
            crate::registry::ListPage {
                items: items.iter().map(|c| c.object(resource)).collect(),
                revision,
                continue_token: None,
                remaining: None,
            }
        }
        None => {
            state
                .registry
                .list(
                    resource,
                    ListRequest {
                        namespace: (!namespace.is_empty()).then_some(namespace),
                        limit,
                        continue_token,
                        revision,
                        filter: if filter.is_empty() {
                            None
                        } else {
                            Some(&matches)
                        },
                    },
                )
                .await?
        }
    };
    match output {
        Output::Table { include_object } => {
            let table = table::table(
                resource,
                &page.items,
                page.revision,
                page.continue_token.as_deref(),
                include_object.resolve(query),
                true,
            );
            negotiation::respond(StatusCode::OK, &table, output)
        }
        _ => {
            let mut list = list_object(resource, page.items, page.revision, page.continue_token);
            if let Some(remaining) = page.remaining {
                list["metadata"]["remainingItemCount"] = remaining.into();
            }
            negotiation::respond(StatusCode::OK, &list, output)
        }
    }
}

/// A page of a paginated list from the watch cache, as upstream 1.33 serves consistent and
/// continued lists from its cache: the first page of a consistent list once the cache has caught
/// up with storage, and each continued page while nothing under the list's prefix changed since
/// the first page's revision. `None`: storage answers. Tokens are storage's own, so a list may
/// move between the two mid-way.
#[allow(clippy::too_many_arguments)]
async fn cached_page(
    state: &State,
    resource: &'static Resource,
    cache: &watch_cache::WatchCache<crate::cache::Cached>,
    query: &Query,
    namespace: &str,
    limit: usize,
    continue_token: &Option<String>,
    rv: &str,
    rv_match: &str,
    filter: &selectors::Filter,
    output: &Output,
) -> ApiResult<Option<Response<Body>>> {
    let prefix = resource.list_prefix((!namespace.is_empty()).then_some(namespace));
    let (at, start) = match continue_token {
        Some(token) => match storage::ContinueToken::decode(token) {
            Ok(token) => (Some(token.revision), Some(token.start_key(&prefix))),
            // A broken token gets storage's error.
            Err(_) => return Ok(None),
        },
        None if rv.is_empty() && rv_match.is_empty() => {
            let current = state.registry.store().current_revision().await;
            if !current.is_ok_and(|current| cache.revision() >= current) {
                return Ok(None);
            }
            (None, None)
        }
        None => return Ok(None),
    };
    let unfiltered = filter.is_empty();
    let Some(page) = cache.list_page(
        &prefix,
        start.as_deref(),
        at,
        limit,
        &|c: &crate::cache::Cached| filter.matches_cached(c),
        unfiltered,
    ) else {
        return Ok(None);
    };
    let token = match (page.remaining, &page.last_key) {
        (Some(rest), Some(last)) => {
            let token = storage::ContinueToken::after(&prefix, last, page.revision);
            Some(
                if unfiltered {
                    token.with_left(rest)
                } else {
                    token
                }
                .encode(),
            )
        }
        _ => None,
    };
    // Upstream reports remainingItemCount only for unfiltered lists.
    let remaining = page.remaining.filter(|_| unfiltered && token.is_some());
    if *output == Output::Json {
        return Ok(Some(negotiation::bytes_response(
            StatusCode::OK,
            "application/json",
            page_bytes(
                resource,
                &page.items,
                page.revision,
                token.as_deref(),
                remaining,
            ),
        )));
    }
    let items: Vec<Value> = page.items.iter().map(|c| c.object(resource)).collect();
    let response = match output {
        Output::Table { include_object } => {
            let table = table::table(
                resource,
                &items,
                page.revision,
                token.as_deref(),
                include_object.resolve(query),
                true,
            );
            negotiation::respond(StatusCode::OK, &table, output)?
        }
        _ => {
            let mut list = list_object(resource, items, page.revision, token);
            if let Some(remaining) = remaining {
                list["metadata"]["remainingItemCount"] = remaining.into();
            }
            negotiation::respond(StatusCode::OK, &list, output)?
        }
    };
    Ok(Some(response))
}

/// A `<Kind>List` made of cached items, by concatenation.
fn list_bytes(resource: &Resource, items: &[Arc<crate::cache::Cached>], revision: u64) -> Vec<u8> {
    page_bytes(resource, items, revision, None, None)
}

/// [`list_bytes`] with a continue token and remaining count in the list's metadata.
fn page_bytes(
    resource: &Resource,
    items: &[Arc<crate::cache::Cached>],
    revision: u64,
    continue_token: Option<&str>,
    remaining: Option<u64>,
) -> Vec<u8> {
    let size: usize = items.iter().map(|c| c.item.len() + 1).sum();
    let mut out = Vec::with_capacity(size + 256);
    let mut metadata = format!("{{\"resourceVersion\":\"{revision}\"");
    if let Some(token) = continue_token {
        // Tokens are URL-safe base64: nothing to escape.
        metadata.push_str(&format!(",\"continue\":\"{token}\""));
    }
    if let Some(remaining) = remaining {
        metadata.push_str(&format!(",\"remainingItemCount\":{remaining}"));
    }
    metadata.push('}');
    out.extend_from_slice(
        format!(
            "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{metadata},\"items\":[",
            resource.kind,
            resource.group_version()
        )
        .as_bytes(),
    );
    for (i, cached) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&cached.item);
    }
    out.extend_from_slice(b"]}");
    out
}

/// `<Kind>List` with items stripped of kind/apiVersion, as upstream's typed lists serialize.
pub fn list_object(
    resource: &Resource,
    items: Vec<Value>,
    revision: u64,
    continue_token: Option<String>,
) -> Value {
    let items: Vec<Value> = items
        .into_iter()
        .map(|mut obj| {
            if let Some(map) = obj.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
            obj
        })
        .collect();
    let mut metadata = Map::new();
    metadata.insert(
        "resourceVersion".into(),
        Value::String(revision.to_string()),
    );
    if let Some(token) = continue_token {
        metadata.insert("continue".into(), Value::String(token));
    }
    json!({
        "kind": format!("{}List", resource.kind),
        "apiVersion": resource.group_version(),
        "metadata": metadata,
        "items": items,
    })
}

/// An object answer, as JSON, YAML or a one-row Table.
pub fn respond_object(
    resource: &Resource,
    code: StatusCode,
    obj: Value,
    output: &Output,
    query: &Query,
) -> ApiResult<Response<Body>> {
    let obj = with_type(resource, obj);
    match output {
        Output::Table { include_object } => {
            let table = table::table(
                resource,
                std::slice::from_ref(&obj),
                object::parse_resource_version(object::resource_version(&obj))?.unwrap_or(0),
                None,
                include_object.resolve(query),
                true,
            );
            negotiation::respond(code, &table, output)
        }
        _ => negotiation::respond(code, &obj, output),
    }
}

/// Objects leave with their kind and apiVersion set.
pub fn with_type(resource: &Resource, mut obj: Value) -> Value {
    if let Some(map) = obj.as_object_mut() {
        map.insert("kind".into(), Value::String(resource.kind.into()));
        map.insert("apiVersion".into(), Value::String(resource.group_version()));
    }
    obj
}

fn dry_run(query: &Query) -> ApiResult<bool> {
    match query.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(bad_request(format!(
            "Invalid dry run value: dryRun: Unsupported value: {other:?}: supported values: \"All\""
        ))),
    }
}

pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string()
}

/// A request's body: still on the wire, or already read (when the audit log records it).
pub enum RequestBody {
    Incoming(hyper::body::Incoming),
    Buffered(ApiResult<Bytes>),
}

/// Reads a request body, refusing more than [`MAX_BODY_BYTES`].
pub async fn read_body(body: RequestBody) -> ApiResult<Bytes> {
    match body {
        RequestBody::Incoming(body) => read_incoming(body).await,
        RequestBody::Buffered(bytes) => bytes,
    }
}

pub async fn read_incoming(body: hyper::body::Incoming) -> ApiResult<Bytes> {
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(errors::too_large()),
        Err(err) => Err(bad_request(format!(
            "error reading the request body: {err}"
        ))),
    }
}

/// Parses a create/update body (JSON or YAML) and checks that it is an object of this
/// resource's kind and version. Unknown fields are handled by `fieldValidation`.
pub fn decode_body(
    resource: &Resource,
    content_type: &str,
    bytes: &[u8],
    query: &Query,
    warnings: &mut Vec<String>,
) -> ApiResult<Value> {
    let obj = negotiation::parse_body(content_type, bytes)?;
    if !obj.is_object() {
        return Err(bad_request(format!(
            "the body of the request was not a JSON object: {}",
            type_name(&obj)
        )));
    }
    // Upstream decodes with the URL's group, version and kind as defaults: a body without
    // them (as the Python client's models send) takes them from the URL.
    let mut obj = obj;
    if obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        obj["kind"] = Value::String(resource.kind.into());
    }
    if obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        obj["apiVersion"] = Value::String(resource.group_version());
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if api_version != resource.group_version() {
        return Err(bad_request(format!(
            "the API version in the data ({}) does not match the expected API version ({})",
            api_version,
            resource.group_version()
        )));
    }
    if kind != resource.kind {
        return Err(bad_request(format!(
            "the kind in the data ({}) does not match the expected kind ({})",
            kind, resource.kind
        )));
    }
    if let Some(meta) = obj.get("metadata") {
        if !meta.is_object() && !meta.is_null() {
            return Err(bad_request(
                "metadata: expected an object, got ".to_string() + type_name(meta),
            ));
        }
    }
    let is_json = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json");
    crate::fieldvalidation::check(resource, &obj, is_json.then_some(bytes), query, warnings)?;
    Ok(obj)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Reconciles the object's namespace with the URL's and checks that it has a name to use.
fn prepare_create(resource: &Resource, url_namespace: &str, mut obj: Value) -> ApiResult<Value> {
    reconcile_namespace(resource, url_namespace, &mut obj)?;
    Ok(obj)
}

fn prepare_update(
    resource: &Resource,
    url_namespace: &str,
    url_name: &str,
    mut obj: Value,
) -> ApiResult<Value> {
    reconcile_namespace(resource, url_namespace, &mut obj)?;
    let name = object::name(&obj);
    if name.is_empty() {
        meta_mut(&mut obj).insert("name".into(), Value::String(url_name.into()));
    } else if name != url_name {
        return Err(bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({url_name})"
        )));
    }
    Ok(obj)
}

pub fn reconcile_namespace(
    resource: &Resource,
    url_namespace: &str,
    obj: &mut Value,
) -> ApiResult<()> {
    let body_namespace = object::namespace(obj).to_string();
    if resource.namespaced {
        if body_namespace.is_empty() {
            meta_mut(obj).insert("namespace".into(), Value::String(url_namespace.into()));
        } else if body_namespace != url_namespace {
            return Err(bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    } else if !body_namespace.is_empty() {
        // Upstream clears a namespace given for a cluster-scoped object.
        meta_mut(obj).remove("namespace");
    }
    Ok(())
}

fn delete_options(bytes: &[u8], query: &Query, dry_run: bool) -> ApiResult<DeleteRequest> {
    let mut options = DeleteRequest {
        dry_run,
        ..DeleteRequest::default()
    };
    if !bytes.is_empty() {
        let body: Value = serde_json::from_slice(bytes)
            .map_err(|err| bad_request(format!("couldn't decode DeleteOptions: {err}")))?;
        options.grace_period_seconds = body.get("gracePeriodSeconds").and_then(Value::as_i64);
        options.propagation_policy = body
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string);
        if body.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
            options.propagation_policy = Some("Orphan".into());
        }
        if let Some(pre) = body.get("preconditions") {
            options.precondition_uid = pre.get("uid").and_then(Value::as_str).map(str::to_string);
            options.precondition_resource_version = pre
                .get("resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        if let Some(Value::Array(modes)) = body.get("dryRun") {
            options.dry_run = options.dry_run || modes.iter().any(|m| m == "All");
        }
    }
    if let Some(grace) = query.get("gracePeriodSeconds") {
        options.grace_period_seconds = Some(
            grace
                .parse()
                .map_err(|_| bad_request(format!("invalid gracePeriodSeconds: {grace:?}")))?,
        );
    }
    if let Some(policy) = query.get("propagationPolicy") {
        options.propagation_policy = Some(policy.clone());
    }
    if let Some(policy) = &options.propagation_policy {
        if !matches!(policy.as_str(), "Orphan" | "Background" | "Foreground") {
            return Err(bad_request(format!(
                "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: {policy:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
            )));
        }
    }
    Ok(options)
}

/// `Warning: 299 - "..."` headers, as upstream sends field-validation warnings.
pub fn add_warnings(response: &mut Response<Body>, warnings: &[String]) {
    for warning in warnings {
        let text = format!("299 - \"{}\"", warning.replace('"', "'"));
        if let Ok(value) = http::HeaderValue::from_str(&text) {
            response.headers_mut().append("Warning", value);
        }
    }
}

/// The answer for an error.
pub fn error_response(err: &ApiError) -> Response<Body> {
    negotiation::json_response(
        StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &err.status,
    )
}
