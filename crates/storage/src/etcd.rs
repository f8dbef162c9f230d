//! The etcd v3 backend: [`EtcdStore`] implements [`Storage`] on a real etcd cluster through
//! `etcd-client`, the way upstream's `storage/etcd3` does.
//!
//! What this module owns:
//!
//! - Connecting: one connection per endpoint with failover between members (see `Member`
//!   for why not etcd-client's balanced channel), optional TLS from upstream's
//!   `--etcd-cafile/--etcd-certfile/--etcd-keyfile`, and a start-up probe that keeps retrying an
//!   unreachable etcd with backoff (logging why) until [`EtcdConfig::connect_timeout`].
//! - The key layout: every key is stored as `<prefix><key>` and handed back without the prefix.
//! - Compare-and-swap: create, update and delete are single transactions comparing the key's
//!   create or mod revision, whose `else` branch reads the key so that a failure says whether the
//!   key was missing or which revision it had moved to.
//! - Translating etcd's answers into the shared contract: `i64` revisions into `u64`, etcd's
//!   "compacted" / "future revision" / "too large" errors into the typed [`Error`]s, gRPC
//!   unavailability into [`Error::Unavailable`] (transient, worth retrying), and watch responses
//!   (with `prev_kv` and progress notifications) into [`WatchEvent`]s.

use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity, KvClient,
    TlsOptions, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchClient, WatchOptions, WatchResponse,
};

use crate::continuation::resolve_page;
use crate::{
    check_value_size, prefix_end, ContinueToken, Error, KeyValue, ListOptions, ListResult,
    Precondition, Result, Storage, WatchEvent, WatchStream, MAX_VALUE_BYTES,
};

/// How long one unary request may take before it is abandoned as unavailable (a watch is cut
/// only by keep-alive). Longer than etcd's own request timeout (5s + 2 election timeouts, 7s
/// by default), so that a write stuck behind a dead leader gets etcd's precise "request timed
/// out" rather than ours; short enough that a caller retrying a transient failure is not stuck
/// behind a dead connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP connect timeout for one endpoint: a dead member is skipped quickly.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 keep-alive, as upstream's apiserver configures its etcd client (30s / 10s): finds
/// dead connections, including idle watch streams, without waiting for TCP to notice.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// etcd-client's default 4 MiB would refuse a list of a few large objects; etcd's own Go
/// client accepts up to `i32::MAX` bytes.
const MAX_RESPONSE_BYTES: usize = i32::MAX as usize;
/// Start-up probe backoff.
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long to wait for etcd to say which revision it has compacted (see
/// [`EtcdStore::compacted_revision`]).
const COMPACTED_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// gRPC status codes (`tonic::Code` is not re-exported by etcd-client).
mod grpc_code {
    pub const CANCELLED: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const UNAVAILABLE: i32 = 14;
}

/// How to reach etcd; the flags are upstream's `--etcd-servers`, `--etcd-prefix`,
/// `--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    pub endpoints: Vec<String>,
    /// Prepended to every key; upstream's default is `/registry`.
    pub prefix: String,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// How long `connect` keeps retrying an unreachable etcd before it gives up.
    pub connect_timeout: Duration,
}

impl EtcdConfig {
    pub fn new(endpoints: Vec<String>) -> Self {
        EtcdConfig {
            endpoints,
            prefix: "/registry".to_string(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// A [`Storage`] backed by an etcd v3 cluster.
pub struct EtcdStore {
    members: Vec<Member>,
    /// The member requests go to first; moved on when it is unavailable.
    preferred: AtomicUsize,
    keys: KeyLayout,
    /// The configured endpoints, joined, for error messages.
    endpoints: String,
    /// How the store authenticates, for the start-up log: when etcd refuses the TLS handshake,
    /// the connection error alone does not always say it was about certificates.
    tls_mode: &'static str,
    /// The newest compaction this store has seen, a fallback for error reports when etcd
    /// cannot be asked.
    compacted: AtomicU64,
}

/// One etcd endpoint with its own connection.
///
/// Why not one etcd-client `Client` over all endpoints: its balanced channel (tower's p2c)
/// keeps treating a dead member as ready, because tonic's reconnecting service reports ready
/// and fails the call instead; a dead member has no requests in flight, so it even looks the
/// least loaded, and a large share of requests keep failing for as long as it is down. With
/// one connection per member, the store itself fails over (see [`EtcdStore::call`]).
struct Member {
    endpoint: String,
    kv: KvClient,
    watch: WatchClient,
    // Held so the channel's endpoint list lives as long as the store.
    _client: Client,
}

/// Which failures a request may be repeated on another member after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    /// Reads: any unavailability.
    Read,
    /// Writes: only failures that prove the request was never applied (no connection, or a
    /// member without a leader that refused it). After a timeout or a connection lost
    /// mid-request the write may have been applied, so the caller gets the error instead.
    Write,
}

impl EtcdStore {
    /// Connects to etcd and checks that it answers, retrying with backoff until
    /// `config.connect_timeout`; then fails with [`Error::Unavailable`].
    pub async fn connect(config: EtcdConfig) -> Result<EtcdStore> {
        let endpoints = config.endpoints.join(",");
        if config.endpoints.is_empty() {
            return Err(Error::Etcd(etcd_client::Error::InvalidArgs(
                "no etcd endpoints configured".to_string(),
            )));
        }
        let mut options = ConnectOptions::new()
            .with_timeout(REQUEST_TIMEOUT)
            .with_connect_timeout(DIAL_TIMEOUT.min(config.connect_timeout))
            .with_keep_alive(KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT)
            .with_keep_alive_while_idle(true)
            // As upstream does for watches: a member that lost its leader refuses requests
            // (and ends watches) instead of serving stale data or hanging.
            .with_require_leader(true);
        if let Some(tls) = tls_options(&config)? {
            options = options.with_tls(tls);
        }
        let mut members = Vec::with_capacity(config.endpoints.len());
        for endpoint in &config.endpoints {
            // Connecting is lazy: this only fails for a malformed endpoint.
            let client = Client::connect([endpoint], Some(options.clone()))
                .await
                .map_err(|source| classify_error(endpoint, source))?;
            members.push(Member {
                endpoint: endpoint.clone(),
                kv: client
                    .kv_client()
                    .max_decoding_message_size(MAX_RESPONSE_BYTES),
                watch: client
                    .watch_client()
                    .max_decoding_message_size(MAX_RESPONSE_BYTES),
                _client: client,
            });
        }
        let store = EtcdStore {
            members,
            preferred: AtomicUsize::new(0),
            keys: KeyLayout::new(&config.prefix),
            endpoints,
            tls_mode: match (&config.ca_file, &config.cert_file) {
                (_, Some(_)) => "client certificate",
                (Some(_), None) => "server certificate only, no client certificate",
                (None, None) => "none",
            },
            compacted: AtomicU64::new(0),
        };
        store.wait_until_reachable(config.connect_timeout).await?;
        Ok(store)
    }

    /// The start-up probe: a linearizable count of the prefix, which needs a leader and a
    /// quorum, retried while etcd is unreachable.
    async fn wait_until_reachable(&self, connect_timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + connect_timeout;
        let mut backoff = INITIAL_BACKOFF;
        let mut last_err: Option<Error> = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let err = match tokio::time::timeout(remaining, self.current_revision()).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(err)) if err.is_transient() => err,
                Ok(Err(err)) => return Err(err),
                // Cut short by the deadline: the previous attempt's error says more.
                Err(_elapsed) => last_err.unwrap_or_else(|| Error::Unavailable {
                    endpoints: self.endpoints.clone(),
                    source: etcd_client::Error::EndpointError(format!(
                        "no answer within {connect_timeout:?}"
                    )),
                }),
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(err);
            }
            let delay = backoff.min(remaining);
            tracing::warn!(
                endpoints = %self.endpoints,
                tls = self.tls_mode,
                error = %err,
                retry_in = ?delay,
                "cannot reach etcd yet; retrying"
            );
            last_err = Some(err);
            tokio::time::sleep(delay).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Runs `request` on the preferred member and, when `retry` allows, on each other member
    /// in turn. A member that answered "unavailable" stops being preferred.
    async fn call<T, F, Fut>(&self, retry: Retry, request: F) -> Result<T, etcd_client::Error>
    where
        F: Fn(&Member) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let n = self.members.len();
        let first = self.preferred.load(Ordering::Relaxed) % n;
        let mut attempt = 0;
        loop {
            let i = (first + attempt) % n;
            let err = match request(&self.members[i]).await {
                Ok(value) => {
                    if attempt > 0 {
                        self.preferred.store(i, Ordering::Relaxed);
                    }
                    return Ok(value);
                }
                Err(err) => err,
            };
            if classify(&err) != Failure::Unavailable {
                return Err(err);
            }
            // Whatever happens next, start elsewhere next time.
            let _ = self.preferred.compare_exchange(
                i,
                (i + 1) % n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            attempt += 1;
            let may_retry = match retry {
                Retry::Read => true,
                Retry::Write => never_applied(&err),
            };
            if attempt >= n || !may_retry {
                return Err(err);
            }
            tracing::debug!(
                endpoint = %self.members[i].endpoint,
                error = %err,
                "etcd member failed; trying the next one"
            );
        }
    }

    async fn read<T, F, Fut>(&self, request: F) -> Result<T, etcd_client::Error>
    where
        F: Fn(KvClient) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.call(Retry::Read, |m| request(m.kv.clone())).await
    }

    async fn write<T, F, Fut>(&self, request: F) -> Result<T, etcd_client::Error>
    where
        F: Fn(KvClient) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.call(Retry::Write, |m| request(m.kv.clone())).await
    }

    /// Maps an etcd error for a request that did not read at a chosen revision.
    fn error(&self, source: etcd_client::Error) -> Error {
        classify_error(&self.endpoints, source)
    }

    /// Maps an etcd error for a read or compaction at `revision`, filling in what etcd's
    /// error leaves out: the oldest revision still available, or the current one.
    async fn error_at(&self, source: etcd_client::Error, revision: u64) -> Error {
        match classify_error(&self.endpoints, source) {
            Error::Compacted { .. } => Error::Compacted {
                requested: revision,
                compacted: self.compacted_revision(revision).await,
            },
            Error::FutureRevision { .. } => Error::FutureRevision {
                requested: revision,
                current: self.current_revision().await.unwrap_or(0),
            },
            other => other,
        }
    }

    /// The revision etcd has compacted to. etcd's "compacted" error does not say it and 3.4's
    /// status does not report it, but a watch from revision 1 is cancelled at once with it.
    /// (Only called after etcd said a revision was compacted, so the watch never has to replay
    /// history.) Falls back to the newest compaction this store knows of.
    async fn compacted_revision(&self, requested: u64) -> u64 {
        let fallback = self
            .compacted
            .load(Ordering::Relaxed)
            .max(requested.saturating_add(1));
        let probe = async {
            let key = self.keys.compaction_probe_key();
            let mut stream = self
                .call(Retry::Read, |m| {
                    let mut watch = m.watch.clone();
                    let key = key.clone();
                    async move {
                        let options = WatchOptions::new().with_start_revision(1);
                        watch.watch(key, Some(options)).await
                    }
                })
                .await
                .ok()?;
            while let Ok(Some(response)) = stream.message().await {
                if response.compact_revision() > 0 {
                    return Some(to_u64(response.compact_revision()));
                }
                if response.canceled() {
                    return None;
                }
            }
            None
        };
        match tokio::time::timeout(COMPACTED_PROBE_TIMEOUT, probe).await {
            Ok(Some(revision)) => {
                self.compacted.fetch_max(revision, Ordering::Relaxed);
                revision
            }
            _ => fallback,
        }
    }

    /// Runs a compare-and-swap transaction (as a write: repeated on another member only when
    /// it certainly was not applied).
    async fn cas(&self, txn: Txn) -> Result<TxnResponse> {
        self.write(|mut kv| {
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        })
        .await
        .map_err(|e| self.error(e))
    }
}

/// The key read by a transaction's `get` op, if the key exists.
fn read_back(responses: &[TxnOpResponse]) -> Option<&etcd_client::KeyValue> {
    responses.iter().find_map(|r| match r {
        TxnOpResponse::Get(get) => get.kvs().first(),
        _ => None,
    })
}

/// Why a conditional write failed, from the key its `else` branch read: missing, or at which
/// mod revision.
fn refused(key: &str, precondition: Precondition, responses: &[TxnOpResponse]) -> Error {
    match read_back(responses) {
        Some(kv) => precondition_failure(key, precondition, to_u64(kv.mod_revision())),
        None => Error::NotFound {
            key: key.to_string(),
        },
    }
}

/// etcd's own "too large" error knows neither the key nor the size; the caller does.
fn too_large_or(key: &str, size: usize, err: Error) -> Error {
    if let Error::TooLarge { .. } = err {
        Error::TooLarge {
            key: key.to_string(),
            size,
            limit: MAX_VALUE_BYTES,
        }
    } else {
        err
    }
}

#[async_trait]
impl Storage for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let full = self.keys.full(key);
        let response = self
            .read(|mut kv| {
                let full = full.clone();
                async move { kv.get(full, None).await }
            })
            .await
            .map_err(|e| self.error(e))?;
        response
            .kvs()
            .first()
            .map(|kv| self.keys.key_value(kv))
            .transpose()
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        let page = resolve_page(prefix, &options)?;
        let (snapshot, start) = (page.revision, page.start);
        let limit = options.limit.filter(|l| *l > 0);
        let range_start = self.keys.range_start(start.as_deref().unwrap_or(prefix));
        let mut get = GetOptions::new().with_range(self.keys.range_end(prefix));
        if let Some(limit) = limit {
            get = get.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        if let Some(revision) = snapshot {
            get = get.with_revision(to_i64(revision));
        }
        let result = self
            .read(|mut kv| {
                let (range_start, get) = (range_start.clone(), get.clone());
                async move { kv.get(range_start, Some(get)).await }
            })
            .await;
        let response = match result {
            Ok(response) => response,
            Err(e) => {
                return Err(match snapshot {
                    Some(revision) => self.error_at(e, revision).await,
                    None => self.error(e),
                })
            }
        };
        let revision = match snapshot {
            Some(revision) => revision,
            None => header_revision(response.header())?,
        };
        let items = response
            .kvs()
            .iter()
            .map(|kv| self.keys.key_value(kv))
            .collect::<Result<Vec<_>>>()?;
        let continue_token = match (limit, items.last()) {
            (Some(_), Some(last)) if response.more() => {
                Some(ContinueToken::after(prefix, &last.key, revision).encode())
            }
            _ => None,
        };
        // etcd counts every key in the requested range, this page included.
        let remaining = continue_token.as_ref().map(|_| {
            u64::try_from(response.count())
                .unwrap_or(0)
                .saturating_sub(items.len() as u64)
        });
        Ok(ListResult {
            items,
            revision,
            continue_token,
            remaining,
        })
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        let full = self.keys.full(key);
        let size = value.len();
        let txn = Txn::new()
            .when([Compare::create_revision(full.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(full, value.clone(), None)]);
        let response = self
            .cas(txn)
            .await
            .map_err(|e| too_large_or(key, size, e))?;
        if !response.succeeded() {
            return Err(Error::AlreadyExists {
                key: key.to_string(),
            });
        }
        let revision = header_revision(response.header())?;
        Ok(KeyValue {
            key: key.to_string(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        precondition: Precondition,
    ) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        let full = self.keys.full(key);
        let size = value.len();
        let txn = Txn::new()
            .when(preconditions(&full, precondition))
            // Reading the key back after the put gives its create revision along with the
            // new mod revision, in the same atomic step.
            .and_then([
                TxnOp::put(full.clone(), value, None),
                TxnOp::get(full.clone(), None),
            ])
            .or_else([TxnOp::get(full, None)]);
        let response = self
            .cas(txn)
            .await
            .map_err(|e| too_large_or(key, size, e))?;
        let responses = response.op_responses();
        if !response.succeeded() {
            return Err(refused(key, precondition, &responses));
        }
        let kv = read_back(&responses).ok_or_else(|| Error::Malformed {
            key: key.to_string(),
            reason: "etcd did not return the key it just wrote".to_string(),
        })?;
        self.keys.key_value(kv)
    }

    async fn delete(&self, key: &str, precondition: Precondition) -> Result<KeyValue> {
        let full = self.keys.full(key);
        let txn = Txn::new()
            .when(preconditions(&full, precondition))
            .and_then([TxnOp::delete(
                full.clone(),
                Some(etcd_client::DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(full, None)]);
        let response = self.cas(txn).await?;
        let responses = response.op_responses();
        if !response.succeeded() {
            return Err(refused(key, precondition, &responses));
        }
        let prev = responses.iter().find_map(|r| match r {
            TxnOpResponse::Delete(delete) => delete.prev_kvs().first().cloned(),
            _ => None,
        });
        match prev {
            Some(prev) => self.keys.key_value(&prev),
            None => Err(Error::NotFound {
                key: key.to_string(),
            }),
        }
    }

    async fn watch(&self, prefix: &str, after_revision: u64) -> Result<WatchStream> {
        let mut options = WatchOptions::new()
            .with_range(self.keys.range_end(prefix))
            .with_prev_key()
            .with_progress_notify();
        if after_revision > 0 {
            options = options.with_start_revision(to_i64(after_revision.saturating_add(1)));
        }
        let start = self.keys.range_start(prefix);
        // Opening the stream and waiting for etcd to confirm the watcher is one attempt: only
        // once it is registered does "from now on" (after_revision = 0) include every write
        // the caller makes after this returns.
        let (stream, first) = self
            .call(Retry::Read, |m| {
                let mut watch = m.watch.clone();
                let (start, options) = (start.clone(), options.clone());
                async move {
                    let mut stream = watch.watch(start, Some(options)).await?;
                    let first = tokio::time::timeout(REQUEST_TIMEOUT, stream.message())
                        .await
                        .map_err(|_| {
                            etcd_client::Error::WatchError(format!(
                                "etcd did not confirm the watch within {REQUEST_TIMEOUT:?}"
                            ))
                        })??;
                    match first {
                        Some(first) => Ok((stream, first)),
                        None => Err(etcd_client::Error::WatchError(
                            "etcd ended the watch before confirming it".to_string(),
                        )),
                    }
                }
            })
            .await
            .map_err(|e| self.error(e))?;
        let next_revision = if after_revision > 0 {
            after_revision.saturating_add(1)
        } else {
            header_revision(first.header())?.saturating_add(1)
        };
        let mut state = WatchState {
            stream,
            keys: self.keys.clone(),
            next_revision,
            pending: VecDeque::new(),
            done: false,
        };
        // The first response is normally only the confirmation, but it may already be a
        // cancellation (or, in principle, carry events).
        state.absorb(first);
        Ok(Box::pin(futures::stream::unfold(state, WatchState::next)))
    }

    async fn current_revision(&self) -> Result<u64> {
        let key = self.keys.range_start("");
        let response = self
            .read(|mut kv| {
                let key = key.clone();
                async move { kv.get(key, Some(GetOptions::new().with_count_only())).await }
            })
            .await
            .map_err(|e| self.error(e))?;
        header_revision(response.header())
    }

    async fn compact(&self, revision: u64) -> Result<()> {
        // Compaction is idempotent, so it may be retried on another member like a read.
        let result = self
            .read(|mut kv| async move { kv.compact(to_i64(revision), None).await })
            .await;
        match result {
            Ok(_) => {
                self.compacted.fetch_max(revision, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => match self.error_at(e, revision).await {
                // Compacting to a revision that is already compacted is a no-op.
                Error::Compacted { .. } => Ok(()),
                other => Err(other),
            },
        }
    }
}

/// One live etcd watch, turned into [`WatchEvent`]s. Owns the etcd stream: dropping the state
/// drops the request sender, which ends the gRPC stream and cancels the watcher in etcd.
struct WatchState {
    stream: etcd_client::WatchStream,
    keys: KeyLayout,
    /// The first revision not yet delivered: what a compaction cancels us at.
    next_revision: u64,
    pending: VecDeque<Result<WatchEvent>>,
    done: bool,
}

impl WatchState {
    async fn next(mut self) -> Option<(Result<WatchEvent>, WatchState)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some((item, self));
            }
            if self.done {
                return None;
            }
            match self.stream.message().await {
                Ok(Some(response)) => self.absorb(response),
                Ok(None) => self.fail(Error::WatchClosed(
                    "etcd ended the watch stream".to_string(),
                )),
                Err(e) => self.fail(Error::WatchClosed(e.to_string())),
            }
        }
    }

    /// Queues what one watch response means.
    fn absorb(&mut self, response: WatchResponse) {
        if response.canceled() {
            let compacted = response.compact_revision();
            let err = if compacted > 0 {
                Error::Compacted {
                    requested: self.next_revision,
                    compacted: to_u64(compacted),
                }
            } else {
                let reason = response.cancel_reason();
                Error::WatchClosed(if reason.is_empty() {
                    "etcd cancelled the watch".to_string()
                } else {
                    format!("etcd cancelled the watch: {reason}")
                })
            };
            self.fail(err);
            return;
        }
        if response.events().is_empty() {
            // Created confirmations carry nothing to report; any other empty response is a
            // progress notification: everything up to the header's revision has been sent.
            if !response.created() {
                match response.header().map(|h| to_u64(h.revision())) {
                    Some(revision) if revision > 0 => {
                        self.pending
                            .push_back(Ok(WatchEvent::Progress { revision }));
                    }
                    _ => {}
                }
            }
            return;
        }
        for event in response.events() {
            match self.convert(event) {
                Ok(event) => {
                    self.next_revision = event.revision().saturating_add(1);
                    self.pending.push_back(Ok(event));
                }
                Err(err) => {
                    self.fail(err);
                    return;
                }
            }
        }
    }

    fn convert(&self, event: &etcd_client::Event) -> Result<WatchEvent> {
        let kv = event.kv().ok_or_else(|| Error::Malformed {
            key: String::new(),
            reason: "etcd sent a watch event without a key".to_string(),
        })?;
        let prev = event
            .prev_kv()
            .map(|prev| self.keys.key_value(prev))
            .transpose()?;
        Ok(match event.event_type() {
            etcd_client::EventType::Put => {
                let current = self.keys.key_value(kv)?;
                if current.create_revision == current.mod_revision {
                    WatchEvent::Created(current)
                } else {
                    WatchEvent::Modified { current, prev }
                }
            }
            etcd_client::EventType::Delete => WatchEvent::Deleted {
                key: self.keys.strip(kv.key())?,
                // etcd reports a delete's own revision as the tombstone's mod revision.
                revision: to_u64(kv.mod_revision()),
                prev,
            },
        })
    }

    /// Queues `err` as the stream's last item.
    fn fail(&mut self, err: Error) {
        self.pending.push_back(Err(err));
        self.done = true;
    }
}

/// Where the store's keys live in etcd: `<prefix><key>`, with the prefix's trailing `/`
/// dropped so that `/registry` + `/pods/a` gives upstream's `/registry/pods/a`.
#[derive(Clone, Debug)]
struct KeyLayout {
    prefix: String,
}

impl KeyLayout {
    fn new(prefix: &str) -> Self {
        KeyLayout {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The first etcd key of a range starting at `key`; never empty, as etcd refuses that.
    fn range_start(&self, key: &str) -> Vec<u8> {
        let full = self.full(key);
        if full.is_empty() {
            vec![0]
        } else {
            full.into_bytes()
        }
    }

    /// The etcd key just past everything under `prefix`.
    fn range_end(&self, prefix: &str) -> Vec<u8> {
        prefix_end(&self.full(prefix))
    }

    /// A key nobody writes (NUL cannot appear in a path), for watches that only probe.
    fn compaction_probe_key(&self) -> String {
        format!("{}\0compaction-probe", self.prefix)
    }

    fn key_value(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue> {
        Ok(KeyValue {
            key: self.strip(kv.key())?,
            value: kv.value().to_vec(),
            create_revision: to_u64(kv.create_revision()),
            mod_revision: to_u64(kv.mod_revision()),
        })
    }

    fn strip(&self, full: &[u8]) -> Result<String> {
        let malformed = |reason: &str| Error::Malformed {
            key: String::from_utf8_lossy(full).into_owned(),
            reason: reason.to_string(),
        };
        let key = std::str::from_utf8(full).map_err(|_| malformed("key is not UTF-8"))?;
        key.strip_prefix(&self.prefix)
            .map(str::to_string)
            .ok_or_else(|| malformed("key is outside the configured prefix"))
    }
}

/// The comparisons a conditional write needs. Every branch also requires the key to exist:
/// etcd compares a missing key as if all its revisions were 0.
fn preconditions(full: &str, precondition: Precondition) -> Vec<Compare> {
    let exists = Compare::create_revision(full, CompareOp::Greater, 0);
    match precondition {
        Precondition::None => vec![exists],
        Precondition::ModRevision(revision) => vec![
            exists,
            Compare::mod_revision(full, CompareOp::Equal, to_i64(revision)),
        ],
    }
}

/// Why a conditional write whose key exists (at mod revision `actual`) failed.
fn precondition_failure(key: &str, precondition: Precondition, actual: u64) -> Error {
    match precondition {
        Precondition::ModRevision(expected) => Error::Conflict {
            key: key.to_string(),
            expected,
            actual,
        },
        // The only comparison was existence, and the key exists now: it was created between
        // the comparison and the read, which cannot happen inside one transaction.
        Precondition::None => Error::NotFound {
            key: key.to_string(),
        },
    }
}

/// Reads the TLS material named in the config. `None` when no file is given.
fn tls_options(config: &EtcdConfig) -> Result<Option<TlsOptions>> {
    let invalid = |reason: String| Err(Error::Etcd(etcd_client::Error::InvalidArgs(reason)));
    let https = config.endpoints.iter().find(|e| e.starts_with("https://"));
    let plain = config.endpoints.iter().find(|e| e.starts_with("http://"));
    let any_file =
        config.ca_file.is_some() || config.cert_file.is_some() || config.key_file.is_some();
    if !any_file {
        if let Some(endpoint) = https {
            return invalid(format!(
                "endpoint {endpoint} uses https but no CA file (--etcd-cafile) is configured"
            ));
        }
        return Ok(None);
    }
    if let Some(endpoint) = plain {
        return invalid(format!(
            "TLS files are configured but endpoint {endpoint} uses plain http; use https://"
        ));
    }
    let mut tls = TlsOptions::new();
    if let Some(ca) = &config.ca_file {
        tls = tls.ca_certificate(Certificate::from_pem(read_tls_file(ca)?));
    }
    match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => {
            tls = tls.identity(Identity::from_pem(
                read_tls_file(cert)?,
                read_tls_file(key)?,
            ));
        }
        (None, None) => {}
        _ => {
            return invalid(
                "a client certificate needs both --etcd-certfile and --etcd-keyfile".to_string(),
            )
        }
    }
    Ok(Some(tls))
}

fn read_tls_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::TlsFile {
        path: path.to_path_buf(),
        source,
    })
}

/// What an etcd error means for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// Worth retrying: no connection, no leader, timeout, overload.
    Unavailable,
    Compacted,
    FutureRevision,
    TooLarge,
    Other,
}

/// Classifies a gRPC status by its code and etcd's message (etcd's typed errors arrive as
/// fixed message strings, e.g. `etcdserver: mvcc: required revision has been compacted`).
fn classify_status(code: i32, message: &str) -> Failure {
    if message.contains("required revision has been compacted") {
        return Failure::Compacted;
    }
    if message.contains("required revision is a future revision") {
        return Failure::FutureRevision;
    }
    if message.contains("request is too large") {
        return Failure::TooLarge;
    }
    match code {
        grpc_code::UNAVAILABLE
        | grpc_code::DEADLINE_EXCEEDED
        | grpc_code::CANCELLED
        | grpc_code::RESOURCE_EXHAUSTED => Failure::Unavailable,
        // tonic reports broken connections it cannot classify as Unknown; etcd's own errors
        // all start with "etcdserver:".
        grpc_code::UNKNOWN if !message.starts_with("etcdserver:") => Failure::Unavailable,
        _ => Failure::Other,
    }
}

fn classify(err: &etcd_client::Error) -> Failure {
    match err {
        etcd_client::Error::GRpcStatus(status) => {
            classify_status(i32::from(status.code()), status.message())
        }
        etcd_client::Error::TransportError(_)
        | etcd_client::Error::IoError(_)
        | etcd_client::Error::WatchError(_) => Failure::Unavailable,
        _ => Failure::Other,
    }
}

/// True when a failed write certainly was not applied: the connection was never made, or a
/// member without a leader refused it up front.
fn never_applied(err: &etcd_client::Error) -> bool {
    match err {
        etcd_client::Error::GRpcStatus(status) => {
            never_applied_status(i32::from(status.code()), status.message())
        }
        _ => false,
    }
}

fn never_applied_status(code: i32, message: &str) -> bool {
    // tonic reports a failed TCP connect (refused, or timed out) as Unavailable with hyper's
    // "tcp connect error"; "no leader" is etcd refusing under require-leader.
    code == grpc_code::UNAVAILABLE
        && (message.starts_with("tcp connect error") || message == "etcdserver: no leader")
}

/// Maps an etcd error without request context; `Compacted`/`FutureRevision` carry zeros that
/// [`EtcdStore::error_at`] fills in.
fn classify_error(endpoints: &str, source: etcd_client::Error) -> Error {
    match classify(&source) {
        Failure::Unavailable => Error::Unavailable {
            endpoints: endpoints.to_string(),
            source,
        },
        Failure::Compacted => Error::Compacted {
            requested: 0,
            compacted: 0,
        },
        Failure::FutureRevision => Error::FutureRevision {
            requested: 0,
            current: 0,
        },
        Failure::TooLarge => Error::TooLarge {
            key: String::new(),
            size: 0,
            limit: MAX_VALUE_BYTES,
        },
        Failure::Other => Error::Etcd(source),
    }
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<u64> {
    header.map(|h| to_u64(h.revision())).ok_or_else(|| {
        Error::Etcd(etcd_client::Error::Internal(
            "response without a header".into(),
        ))
    })
}

/// etcd revisions are non-negative `i64`s.
fn to_u64(revision: i64) -> u64 {
    u64::try_from(revision).unwrap_or(0)
}

/// A revision past `i64::MAX` is in the future for etcd, which is what it then says.
fn to_i64(revision: u64) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_get_the_prefix_on_the_way_in_and_lose_it_on_the_way_out() {
        let keys = KeyLayout::new("/registry/");
        assert_eq!(keys.full("/pods/default/a"), "/registry/pods/default/a");
        assert_eq!(
            keys.strip(b"/registry/pods/default/a").unwrap(),
            "/pods/default/a"
        );
        assert!(matches!(
            keys.strip(b"/other/pods/a"),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(
            keys.strip(b"/registry/\xff"),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn ranges_cover_exactly_the_prefix() {
        let keys = KeyLayout::new("/registry");
        assert_eq!(keys.range_start("/pods/"), b"/registry/pods/".to_vec());
        assert_eq!(keys.range_end("/pods/"), b"/registry/pods0".to_vec());
        // An empty store prefix and list prefix cover the whole keyspace.
        let everything = KeyLayout::new("");
        assert_eq!(everything.range_start(""), vec![0]);
        assert_eq!(everything.range_end(""), vec![0]);
    }

    #[test]
    fn compaction_probe_key_is_outside_every_listed_prefix() {
        let keys = KeyLayout::new("/registry");
        let probe = keys.compaction_probe_key();
        assert!(probe.as_bytes() < keys.range_start("/").as_slice());
    }

    #[test]
    fn etcd_errors_are_classified_by_code_and_message() {
        use grpc_code::*;
        let out_of_range = 11;
        let invalid_argument = 3;
        assert_eq!(
            classify_status(
                out_of_range,
                "etcdserver: mvcc: required revision has been compacted"
            ),
            Failure::Compacted
        );
        assert_eq!(
            classify_status(
                out_of_range,
                "etcdserver: mvcc: required revision is a future revision"
            ),
            Failure::FutureRevision
        );
        assert_eq!(
            classify_status(invalid_argument, "etcdserver: request is too large"),
            Failure::TooLarge
        );
        assert_eq!(
            classify_status(UNAVAILABLE, "etcdserver: no leader"),
            Failure::Unavailable
        );
        assert_eq!(
            classify_status(UNKNOWN, "transport error"),
            Failure::Unavailable
        );
        assert_eq!(
            classify_status(UNKNOWN, "etcdserver: something else"),
            Failure::Other
        );
        assert_eq!(
            classify_status(invalid_argument, "etcdserver: key is not provided"),
            Failure::Other
        );
    }

    #[test]
    fn only_writes_that_never_reached_etcd_are_retried_elsewhere() {
        use grpc_code::*;
        assert!(never_applied_status(UNAVAILABLE, "tcp connect error"));
        assert!(never_applied_status(UNAVAILABLE, "etcdserver: no leader"));
        // The member may have proposed the write before timing out.
        assert!(!never_applied_status(
            UNAVAILABLE,
            "etcdserver: request timed out"
        ));
        assert!(!never_applied_status(UNKNOWN, "transport error"));
        assert!(!never_applied_status(CANCELLED, "Timeout expired"));
    }

    #[test]
    fn a_failed_precondition_reports_the_actual_revision() {
        let err = precondition_failure("/a", Precondition::ModRevision(3), 5);
        assert!(matches!(
            err,
            Error::Conflict {
                expected: 3,
                actual: 5,
                ..
            }
        ));
    }

    #[test]
    fn tls_settings_are_checked_before_connecting() {
        let mut config = EtcdConfig::new(vec!["https://127.0.0.1:2379".to_string()]);
        assert!(matches!(tls_options(&config), Err(Error::Etcd(_))));

        config.ca_file = Some(PathBuf::from("/nonexistent/ca.crt"));
        match tls_options(&config) {
            Err(Error::TlsFile { path, .. }) => {
                assert_eq!(path, PathBuf::from("/nonexistent/ca.crt"))
            }
            other => panic!("expected TlsFile, got {:?}", other.map(|_| ())),
        }

        config.endpoints = vec!["http://127.0.0.1:2379".to_string()];
        assert!(matches!(tls_options(&config), Err(Error::Etcd(_))));

        let plain = EtcdConfig::new(vec!["http://127.0.0.1:2379".to_string()]);
        assert!(matches!(tls_options(&plain), Ok(None)));
    }

    #[test]
    fn revisions_convert_without_wrapping() {
        assert_eq!(to_u64(-1), 0);
        assert_eq!(to_u64(7), 7);
        assert_eq!(to_i64(u64::MAX), i64::MAX);
    }
}
