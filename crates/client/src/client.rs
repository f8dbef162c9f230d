//! The REST client every component uses: one [`Client`] per process (cheap to clone), built on
//! the `kube` crate's HTTP stack (TLS, kubeconfig auth, exec plugins), with what this project
//! guarantees on top:
//!
//! - a client-side token bucket (`--kube-api-qps` / `--kube-api-burst`) in front of every request;
//! - retries with backoff: 429 for every verb (the server did nothing), 5xx with `Retry-After`
//!   for every verb and 502/503/504 for reads, connection refused for every verb (nothing was
//!   sent) and any transport failure for reads; at most `max_retries` times;
//! - a user agent naming the component;
//! - Prometheus metrics by verb and code (`rest_client_requests_total`, request latency, rate
//!   limiter latency, retries) and the number of open watches.
//!
//! [`Api`] is the typed handle for one resource (k8s-openapi types, or `DynamicObject` with an
//! `ApiResource` from [`crate::discovery`]); its watch yields [`WatchEvent`]s.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::Stream;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::core::{ObjectList, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{chain, ApiError, Error, Result};
use crate::ratelimit::TokenBucket;

pub use kube::core::params::{
    DeleteParams, GetParams, ListParams, Patch, PatchParams, PostParams, Preconditions,
    PropagationPolicy, WatchParams,
};

/// The Kubernetes version this client speaks, for the user agent.
pub const KUBERNETES_VERSION: &str = "v1.33.0";

/// How a [`Client`] behaves beyond where it connects.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The component's name, first in the user agent (`kube-controller-manager`).
    pub component: String,
    /// Requests per second; `<= 0` disables the limiter.
    pub qps: f32,
    pub burst: u32,
    /// Retries after the first attempt, for retriable failures.
    pub max_retries: u32,
    /// First backoff after a transport failure; doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl ClientOptions {
    /// client-go's defaults (5 qps, burst 10, 10 retries) under the component's name.
    pub fn new(component: &str) -> ClientOptions {
        ClientOptions {
            component: component.to_string(),
            qps: 5.0,
            burst: 10,
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }

    pub fn rate(mut self, qps: f32, burst: u32) -> ClientOptions {
        self.qps = qps;
        self.burst = burst;
        self
    }

    pub fn max_retries(mut self, retries: u32) -> ClientOptions {
        self.max_retries = retries;
        self
    }
}

/// A handle on the apiserver; clones share the connection pool, limiter and metrics.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    kube: kube::Client,
    server: String,
    default_namespace: String,
    user_agent: String,
    limiter: Option<TokenBucket>,
    options: ClientOptions,
    metrics: ClientMetrics,
}

struct ClientMetrics {
    requests: metrics::CounterVec,
    latency: metrics::HistogramVec,
    limiter_latency: metrics::HistogramVec,
    retries: metrics::CounterVec,
    watches: metrics::GaugeVec,
}

impl ClientMetrics {
    fn new(registry: &metrics::Registry) -> ClientMetrics {
        let buckets = [
            0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0,
        ];
        ClientMetrics {
            requests: registry.counter_vec(
                "rest_client_requests_total",
                "Number of HTTP requests, partitioned by status code, method, and host.",
                &["code", "host", "method"],
            ),
            latency: registry.histogram_vec(
                "rest_client_request_duration_seconds",
                "Request latency in seconds. Broken down by verb, and host.",
                &["host", "verb"],
                &buckets,
            ),
            limiter_latency: registry.histogram_vec(
                "rest_client_rate_limiter_duration_seconds",
                "Client side rate limiter latency in seconds. Broken down by verb, and host.",
                &["host", "verb"],
                &buckets,
            ),
            retries: registry.counter_vec(
                "rest_client_request_retries_total",
                "Number of request retries, partitioned by status code, verb, and host.",
                &["code", "host", "verb"],
            ),
            watches: registry.gauge_vec(
                "rest_client_open_watches",
                "Number of watch streams open to the apiserver, by resource.",
                &["resource"],
            ),
        }
    }
}

/// What a failed attempt allows.
enum Retry {
    No,
    After(Duration),
}

impl Client {
    /// Builds the client from a loaded configuration; metrics go to the process's registry.
    pub fn new(config: kube::Config, options: ClientOptions) -> Result<Client> {
        Self::with_registry(config, options, metrics::global())
    }

    pub fn with_registry(
        mut config: kube::Config,
        options: ClientOptions,
        registry: &metrics::Registry,
    ) -> Result<Client> {
        // Our own retries replace kube's, so each retry is counted and limited.
        config.default_retry = false;
        let user_agent = format!(
            "{}/{KUBERNETES_VERSION} ({}/{}) kubernetes/{}",
            options.component,
            std::env::consts::OS,
            go_arch(),
            env!("CARGO_PKG_VERSION")
        );
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        let default_namespace = config.default_namespace.clone();
        let kube = kube::Client::try_from(config).map_err(|err| {
            Error::Config(format!("building a client for {server}: {}", chain(&err)))
        })?;
        Ok(Client {
            inner: Arc::new(Inner {
                kube,
                limiter: TokenBucket::new(options.qps, options.burst),
                server,
                default_namespace,
                user_agent,
                options,
                metrics: ClientMetrics::new(registry),
            }),
        })
    }

    /// Loads `args` and builds a client for `component` with the daemon's default rate.
    pub async fn from_args(
        args: &crate::config::ClientArgs,
        component: &str,
        default_qps: f32,
        default_burst: u32,
    ) -> Result<Client> {
        let config = args.load().await?;
        Client::new(
            config,
            ClientOptions::new(component)
                .rate(args.qps_or(default_qps), args.burst_or(default_burst)),
        )
    }

    /// The server's base URL, as errors name it.
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    pub fn user_agent(&self) -> &str {
        &self.inner.user_agent
    }

    /// The kubeconfig context's namespace (`default` when none).
    pub fn default_namespace(&self) -> &str {
        &self.inner.default_namespace
    }

    /// A typed handle on `K` in `namespace` (`None`: all namespaces, or a cluster-scoped kind).
    pub fn api<K>(&self, namespace: Option<&str>) -> Api<K>
    where
        K: Resource,
        K::DynamicType: Default,
    {
        self.api_with(namespace, &K::DynamicType::default())
    }

    /// A handle for a kind known only at run time (`DynamicObject` + `ApiResource`).
    pub fn api_with<K: Resource>(
        &self,
        namespace: Option<&str>,
        dyntype: &K::DynamicType,
    ) -> Api<K> {
        let path = K::url_path(dyntype, namespace);
        Api {
            client: self.clone(),
            request: kube::core::Request::new(path.clone()),
            path,
            resource: K::plural(dyntype).into_owned(),
            api_version: K::api_version(dyntype).into_owned(),
            kind: K::kind(dyntype).into_owned(),
            _k: std::marker::PhantomData,
        }
    }

    /// Sends `request` under the limiter, retrying what may be retried; returns the response with
    /// a 2xx status and its body unread, or the server's error.
    pub async fn send(&self, request: Request<Vec<u8>>) -> Result<Response<kube::client::Body>> {
        let verb = verb_of(&request);
        let host = self.inner.server.as_str();
        let mut attempt: u32 = 0;
        let mut backoff = self.inner.options.initial_backoff;
        loop {
            attempt += 1;
            if let Some(limiter) = &self.inner.limiter {
                let waited = limiter.acquire().await;
                self.inner
                    .metrics
                    .limiter_latency
                    .with(&[host, verb])
                    .observe(waited.as_secs_f64());
            }
            let started = Instant::now();
            let outcome = self.inner.kube.send(self.prepare(&request)).await;
            self.inner
                .metrics
                .latency
                .with(&[host, verb])
                .observe(started.elapsed().as_secs_f64());
            let can_retry = attempt <= self.inner.options.max_retries;
            match outcome {
                Ok(response) => {
                    let status = response.status();
                    self.inner
                        .metrics
                        .requests
                        .with(&[status.as_str(), host, request.method().as_str()])
                        .inc();
                    if status.is_success() || status == StatusCode::SWITCHING_PROTOCOLS {
                        return Ok(response);
                    }
                    let retry_after = retry_after(&response);
                    let body = response
                        .into_body()
                        .collect_bytes()
                        .await
                        .unwrap_or_default();
                    let err = ApiError::from_response(status.as_u16(), &body, retry_after);
                    match (
                        can_retry,
                        retry_for_status(request.method(), status, retry_after),
                    ) {
                        (true, Retry::After(wait)) => {
                            let wait = if wait.is_zero() { backoff } else { wait };
                            tracing::debug!(%verb, url = %request.uri(), code = status.as_u16(), ?wait, "retrying");
                            self.inner
                                .metrics
                                .retries
                                .with(&[status.as_str(), host, verb])
                                .inc();
                            tokio::time::sleep(wait).await;
                            backoff = (backoff * 2).min(self.inner.options.max_backoff);
                        }
                        _ => return Err(err.into()),
                    }
                }
                Err(err) => {
                    let reason = chain(&err);
                    self.inner
                        .metrics
                        .requests
                        .with(&["<error>", host, request.method().as_str()])
                        .inc();
                    let retriable = !is_certificate_failure(&reason)
                        && (is_read(request.method()) || not_sent(&err));
                    if can_retry && retriable {
                        tracing::debug!(%verb, url = %request.uri(), %reason, ?backoff, "transport failure, retrying");
                        self.inner
                            .metrics
                            .retries
                            .with(&["<error>", host, verb])
                            .inc();
                        tokio::time::sleep(jitter(backoff)).await;
                        backoff = (backoff * 2).min(self.inner.options.max_backoff);
                        continue;
                    }
                    return Err(Error::Unreachable {
                        url: format!("{}{}", self.inner.server, request.uri()),
                        attempts: attempt,
                        reason,
                    });
                }
            }
        }
    }

    /// Sends and reads the whole body.
    pub async fn send_bytes(&self, request: Request<Vec<u8>>) -> Result<Bytes> {
        let url = request.uri().to_string();
        let response = self.send(request).await?;
        response
            .into_body()
            .collect_bytes()
            .await
            .map_err(|err| Error::Unreachable {
                url: format!("{}{url}", self.inner.server),
                attempts: 1,
                reason: format!("reading the response: {}", chain(&err)),
            })
    }

    /// Sends and decodes a JSON answer.
    pub async fn send_json<T: DeserializeOwned>(&self, request: Request<Vec<u8>>) -> Result<T> {
        let what = format!("{} {}", request.method(), request.uri());
        let body = self.send_bytes(request).await?;
        serde_json::from_slice(&body).map_err(|err| Error::Decode {
            what,
            error: err.to_string(),
        })
    }

    /// GET of any path (discovery documents, `/version`, `/metrics`).
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let request = Request::get(path)
            .body(Vec::new())
            .map_err(|err| Error::Request(err.to_string()))?;
        self.send_json(request).await
    }

    fn prepare(&self, request: &Request<Vec<u8>>) -> Request<kube::client::Body> {
        let mut builder = Request::builder()
            .method(request.method().clone())
            .uri(request.uri().clone())
            .version(request.version());
        if let Some(headers) = builder.headers_mut() {
            headers.extend(
                request
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            if let Ok(value) = http::HeaderValue::from_str(&self.inner.user_agent) {
                headers.insert(http::header::USER_AGENT, value);
            }
            if !headers.contains_key(http::header::ACCEPT) {
                headers.insert(
                    http::header::ACCEPT,
                    http::HeaderValue::from_static("application/json"),
                );
            }
        }
        match builder.body(kube::client::Body::from(request.body().clone())) {
            Ok(prepared) => prepared,
            // Every part came from a request that was already valid.
            Err(_) => Request::new(kube::client::Body::from(request.body().clone())),
        }
    }

    fn watch_gauge(&self, resource: &str) -> metrics::Gauge {
        self.inner.metrics.watches.with(&[resource])
    }
}

/// Go's names for the architecture, as upstream user agents carry them.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn verb_of(request: &Request<Vec<u8>>) -> &'static str {
    match *request.method() {
        Method::GET => {
            let watch = request
                .uri()
                .query()
                .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
            if watch {
                "WATCH"
            } else {
                "GET"
            }
        }
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        _ => "OTHER",
    }
}

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

fn retry_after(response: &Response<kube::client::Body>) -> Option<u64> {
    response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

fn retry_for_status(method: &Method, status: StatusCode, retry_after: Option<u64>) -> Retry {
    // Capped so a hostile or confused server cannot park a client for hours.
    let wait = Duration::from_secs(retry_after.unwrap_or(0).min(10));
    let code = status.as_u16();
    if code == 429 || (status.is_server_error() && retry_after.is_some()) {
        return Retry::After(wait);
    }
    if is_read(method) && matches!(code, 502..=504) {
        return Retry::After(wait);
    }
    Retry::No
}

/// A failure before the request left: connection refused or no route. Safe to retry for any
/// verb.
fn not_sent(err: &kube::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::AddrNotAvailable
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
            ) {
                return true;
            }
        }
        source = e.source();
    }
    let text = chain(err).to_lowercase();
    text.contains("connection refused") || text.contains("error trying to connect")
}

/// A TLS verification failure: the same certificate will fail again, so it is not retried.
fn is_certificate_failure(reason: &str) -> bool {
    let lower = reason.to_lowercase();
    lower.contains("certificate") || lower.contains("unknownissuer")
}

fn jitter(wait: Duration) -> Duration {
    // Up to 20% more, so many clients restarted together do not retry in step.
    let extra = rand::random::<f64>() * 0.2;
    wait.mul_f64(1.0 + extra)
}

/// A typed handle on one resource in one namespace (or all).
pub struct Api<K> {
    client: Client,
    request: kube::core::Request,
    path: String,
    resource: String,
    api_version: String,
    kind: String,
    _k: std::marker::PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Api {
            client: self.client.clone(),
            request: kube::core::Request::new(self.path.clone()),
            path: self.path.clone(),
            resource: self.resource.clone(),
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            _k: std::marker::PhantomData,
        }
    }
}

fn build(result: Result<Request<Vec<u8>>, kube::core::request::Error>) -> Result<Request<Vec<u8>>> {
    result.map_err(|err| Error::Request(chain(&err)))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|err| Error::Request(format!("encoding the body: {err}")))
}

impl<K> Api<K>
where
    K: Clone + DeserializeOwned + Serialize + Debug,
{
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The collection's URL path (`/api/v1/namespaces/x/pods`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The plural resource name (`pods`), as metrics label it.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    pub async fn get(&self, name: &str) -> Result<K> {
        let request = build(self.request.get(name, &GetParams::default()))?;
        self.client.send_json(request).await
    }

    /// `None` for NotFound.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>> {
        match self.get(name).await {
            Ok(obj) => Ok(Some(obj)),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    pub async fn list(&self, params: &ListParams) -> Result<ObjectList<K>> {
        let request = build(self.request.list(params))?;
        self.client.send_json(request).await
    }

    pub async fn create(&self, obj: &K) -> Result<K> {
        let request = build(self.request.create(&PostParams::default(), encode(obj)?))?;
        self.client.send_json(request).await
    }

    /// PUT; a stale `metadata.resourceVersion` fails with a Conflict.
    pub async fn replace(&self, name: &str, obj: &K) -> Result<K> {
        let request = build(
            self.request
                .replace(name, &PostParams::default(), encode(obj)?),
        )?;
        self.client.send_json(request).await
    }

    pub async fn replace_status(&self, name: &str, obj: &K) -> Result<K> {
        let request = build(self.request.replace_subresource(
            "status",
            name,
            &PostParams::default(),
            encode(obj)?,
        ))?;
        self.client.send_json(request).await
    }

    pub async fn patch<P: Serialize + Debug>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K> {
        let request = build(self.request.patch(name, params, patch))?;
        self.client.send_json(request).await
    }

    pub async fn patch_status<P: Serialize + Debug>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K> {
        let request = build(
            self.request
                .patch_subresource("status", name, params, patch),
        )?;
        self.client.send_json(request).await
    }

    /// DELETE; the object (with its deletionTimestamp, when finalizers hold it) or the server's
    /// success `Status` is not returned: callers watch for the outcome.
    pub async fn delete(&self, name: &str, params: &DeleteParams) -> Result<()> {
        let request = build(self.request.delete(name, params))?;
        self.client.send_bytes(request).await.map(|_| ())
    }

    /// POST to a subresource (`binding`, `eviction`, `token`), decoding the answer as `R`.
    pub async fn create_subresource<B: Serialize, R: DeserializeOwned>(
        &self,
        subresource: &str,
        name: &str,
        body: &B,
    ) -> Result<R> {
        let request = build(self.request.create_subresource(
            subresource,
            name,
            &PostParams::default(),
            encode(body)?,
        ))?;
        self.client.send_json(request).await
    }

    /// Every object, in pages of `page_size`, and the list's resourceVersion. A continue token
    /// that expired mid-way (410) restarts the list once from a fresh consistent read, as
    /// client-go's pager does.
    pub async fn list_all(&self, params: &ListParams, page_size: u32) -> Result<(Vec<K>, String)> {
        self.list_all_map(params, page_size, |obj| obj).await
    }

    /// [`Api::list_all`], turning each object into a `T` as its page arrives, so a large list
    /// never holds every object twice (the informer strips and wraps objects here).
    pub async fn list_all_map<T>(
        &self,
        params: &ListParams,
        page_size: u32,
        mut map: impl FnMut(K) -> T,
    ) -> Result<(Vec<T>, String)> {
        let mut restarted = false;
        'outer: loop {
            let mut items = Vec::new();
            let mut params = params.clone();
            params.limit = (page_size > 0).then_some(page_size);
            params.continue_token = None;
            loop {
                let page = match self.list(&params).await {
                    Ok(page) => page,
                    Err(err) if err.is_gone() && params.continue_token.is_some() && !restarted => {
                        restarted = true;
                        continue 'outer;
                    }
                    Err(err) => return Err(err),
                };
                let rv = page.metadata.resource_version.clone().unwrap_or_default();
                let remaining = page
                    .metadata
                    .remaining_item_count
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(0);
                items.reserve(page.items.len() + remaining);
                items.extend(page.items.into_iter().map(&mut map));
                match page.metadata.continue_.filter(|c| !c.is_empty()) {
                    Some(token) => {
                        params.continue_token = Some(token);
                        // A continued list carries its revision in the token.
                        params.resource_version = None;
                        params.version_match = None;
                    }
                    None => return Ok((items, rv)),
                }
            }
        }
    }

    /// Opens a watch from `resource_version`; the stream ends when the server closes it.
    pub async fn watch(
        &self,
        params: &WatchParams,
        resource_version: &str,
    ) -> Result<impl Stream<Item = Result<WatchEvent<K>>> + Send + use<K>>
    where
        K: Send + 'static,
    {
        let request = build(self.request.watch(params, resource_version))?;
        let what = format!("{} {}", request.method(), request.uri());
        let response = self.client.send(request).await?;
        let gauge = self.client.watch_gauge(&self.resource);
        gauge.inc();
        let state = WatchState {
            body: response.into_body(),
            buffer: BytesMut::new(),
            what,
            guard: WatchGuard(gauge),
            done: false,
        };
        Ok(futures::stream::unfold(state, |mut state| async move {
            let item = state.next_event::<K>().await?;
            Some((item, state))
        }))
    }
}

/// One event of a watch, as upstream's `watch.Event`.
#[derive(Clone, Debug)]
pub enum WatchEvent<K> {
    Added(K),
    Modified(K),
    Deleted(K),
    /// Progress: everything up to `resource_version` has been delivered.
    Bookmark {
        resource_version: String,
    },
    /// The server ended the watch with a `Status` (410 Gone when the start is too old).
    Error(Box<ApiError>),
}

/// Decrements the open-watches gauge when the stream is dropped.
struct WatchGuard(metrics::Gauge);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

struct WatchState {
    body: kube::client::Body,
    buffer: BytesMut,
    what: String,
    #[allow(dead_code)]
    guard: WatchGuard,
    done: bool,
}

#[derive(serde::Deserialize)]
struct RawEvent<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    object: &'a serde_json::value::RawValue,
}

#[derive(serde::Deserialize)]
struct BookmarkObject {
    #[serde(default)]
    metadata: BookmarkMeta,
}

#[derive(serde::Deserialize, Default)]
struct BookmarkMeta {
    #[serde(default, rename = "resourceVersion")]
    resource_version: Option<String>,
}

impl WatchState {
    async fn next_event<K: DeserializeOwned>(&mut self) -> Option<Result<WatchEvent<K>>> {
        loop {
            if let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
                let line = self.buffer.split_to(pos + 1);
                let line = line.get(..pos).unwrap_or_default();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(decode_event(line, &self.what));
            }
            if self.done {
                if self.buffer.iter().all(u8::is_ascii_whitespace) {
                    return None;
                }
                let rest = self.buffer.split();
                return Some(decode_event(&rest, &self.what));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                Some(Err(err)) => {
                    self.done = true;
                    self.buffer.clear();
                    return Some(Err(Error::Unreachable {
                        url: self.what.clone(),
                        attempts: 1,
                        reason: format!("watch stream broken: {}", chain(&err)),
                    }));
                }
                None => self.done = true,
            }
        }
    }
}

fn decode_event<K: DeserializeOwned>(line: &[u8], what: &str) -> Result<WatchEvent<K>> {
    let decode_err = |error: String| Error::Decode {
        what: format!("watch event of {what}"),
        error,
    };
    let raw: RawEvent<'_> = serde_json::from_slice(line).map_err(|e| decode_err(e.to_string()))?;
    let object = || -> Result<K> {
        serde_json::from_str(raw.object.get()).map_err(|e| decode_err(e.to_string()))
    };
    match raw.kind {
        "ADDED" => Ok(WatchEvent::Added(object()?)),
        "MODIFIED" => Ok(WatchEvent::Modified(object()?)),
        "DELETED" => Ok(WatchEvent::Deleted(object()?)),
        "BOOKMARK" => {
            let obj: BookmarkObject =
                serde_json::from_str(raw.object.get()).map_err(|e| decode_err(e.to_string()))?;
            Ok(WatchEvent::Bookmark {
                resource_version: obj.metadata.resource_version.unwrap_or_default(),
            })
        }
        "ERROR" => {
            let status: Status =
                serde_json::from_str(raw.object.get()).map_err(|e| decode_err(e.to_string()))?;
            Ok(WatchEvent::Error(Box::new(ApiError::from_status(status))))
        }
        other => Err(decode_err(format!("unknown event type {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn watch_lines_decode_to_events() {
        let added = br#"{"type":"ADDED","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"5"}}}"#;
        match decode_event::<ConfigMap>(added, "w") {
            Ok(WatchEvent::Added(cm)) => assert_eq!(cm.metadata.name.as_deref(), Some("a")),
            other => panic!("{other:?}"),
        }
        let bookmark = br#"{"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"12"}}}"#;
        match decode_event::<ConfigMap>(bookmark, "w") {
            Ok(WatchEvent::Bookmark { resource_version }) => assert_eq!(resource_version, "12"),
            other => panic!("{other:?}"),
        }
        let gone = br#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"#;
        match decode_event::<ConfigMap>(gone, "w") {
            Ok(WatchEvent::Error(err)) => {
                assert_eq!(err.code, 410);
                assert!(Error::Api(err).is_gone());
            }
            other => panic!("{other:?}"),
        }
        assert!(decode_event::<ConfigMap>(b"{\"type\":\"BOGUS\",\"object\":{}}", "w").is_err());
        assert!(decode_event::<ConfigMap>(b"not json", "w").is_err());
    }

    #[test]
    fn retry_policy_follows_client_go() {
        let get = Method::GET;
        let post = Method::POST;
        assert!(matches!(
            retry_for_status(&post, StatusCode::TOO_MANY_REQUESTS, Some(1)),
            Retry::After(d) if d == Duration::from_secs(1)
        ));
        assert!(matches!(
            retry_for_status(&post, StatusCode::SERVICE_UNAVAILABLE, None),
            Retry::No
        ));
        assert!(matches!(
            retry_for_status(&get, StatusCode::SERVICE_UNAVAILABLE, None),
            Retry::After(_)
        ));
        assert!(matches!(
            retry_for_status(&get, StatusCode::INTERNAL_SERVER_ERROR, None),
            Retry::No
        ));
        assert!(matches!(
            retry_for_status(&get, StatusCode::NOT_FOUND, None),
            Retry::No
        ));
        // A huge Retry-After is capped.
        assert!(matches!(
            retry_for_status(&get, StatusCode::TOO_MANY_REQUESTS, Some(86400)),
            Retry::After(d) if d == Duration::from_secs(10)
        ));
    }
}
