//! Leader election on `coordination.k8s.io/v1` Leases, as client-go's `leaderelection` package:
//! candidates try to acquire the Lease every `retry_period`; the holder renews it and gives up
//! leadership when it could not renew for `renew_deadline`; others may take it once they have
//! seen the same record unchanged for `lease_duration` (measured on their own monotonic clock, so
//! clock skew between machines does not matter).
//!
//! A lease is not a mutex. Every Lease write carries the resourceVersion it read, so two
//! candidates cannot both win one round; but a leader that was paused (SIGSTOP, a long GC, a
//! frozen VM) may wake up after another took over. [`Leadership::is_leading`] therefore answers
//! from the time of the last successful renew, not from a flag the renew loop has not had the
//! chance to clear yet: work must check it before each action.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{ArgAction, Args};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::client::{Api, Client};
use crate::error::{Error, Result};

/// client-go's `JitterFactor`: waits between tries are up to 20% longer than `retry_period`.
const JITTER: f64 = 1.2;

/// The upstream flags (`--leader-elect`, `--leader-elect-lease-duration`, ...).
#[derive(Args, Clone, Debug)]
pub struct LeaderElectionArgs {
    /// Start a leader election client and gain leadership before executing the main loop.
    #[arg(long = "leader-elect", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,
    /// How long non-leader candidates wait after observing a leadership renewal before trying
    /// to acquire leadership.
    #[arg(long = "leader-elect-lease-duration", default_value = "15s", value_parser = apimachinery::duration::parse_duration)]
    pub lease_duration: Duration,
    /// How long the acting leader keeps trying to renew before it stops leading.
    #[arg(long = "leader-elect-renew-deadline", default_value = "10s", value_parser = apimachinery::duration::parse_duration)]
    pub renew_deadline: Duration,
    /// How long clients wait between attempts of acquisition and renewal.
    #[arg(long = "leader-elect-retry-period", default_value = "2s", value_parser = apimachinery::duration::parse_duration)]
    pub retry_period: Duration,
    /// The type of resource object used for locking (only `leases`).
    #[arg(long = "leader-elect-resource-lock", default_value = "leases")]
    pub resource_lock: String,
    /// The name of the resource object used for locking.
    #[arg(long = "leader-elect-resource-name")]
    pub resource_name: Option<String>,
    /// The namespace of the resource object used for locking.
    #[arg(
        long = "leader-elect-resource-namespace",
        default_value = "kube-system"
    )]
    pub resource_namespace: String,
}

impl LeaderElectionArgs {
    /// The election these flags describe; `default_name` is the component's Lease name
    /// (`kube-controller-manager`).
    pub fn config(&self, default_name: &str, identity: String) -> Result<LeaderElectionConfig> {
        if self.resource_lock != "leases" {
            return Err(Error::Config(format!(
                "--leader-elect-resource-lock={:?} is not supported: only \"leases\" is",
                self.resource_lock
            )));
        }
        let config = LeaderElectionConfig {
            namespace: self.resource_namespace.clone(),
            name: self
                .resource_name
                .clone()
                .unwrap_or_else(|| default_name.to_string()),
            identity,
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
            release_on_cancel: true,
        };
        config.validate()?;
        Ok(config)
    }
}

/// An election's parameters.
#[derive(Clone, Debug)]
pub struct LeaderElectionConfig {
    pub namespace: String,
    pub name: String,
    /// This candidate's name in `holderIdentity`; unique per process.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
    /// Clear the holder on clean shutdown so the next leader need not wait a lease duration.
    pub release_on_cancel: bool,
}

impl LeaderElectionConfig {
    /// The defaults of upstream's flags: 15 s, 10 s, 2 s.
    pub fn new(namespace: &str, name: &str, identity: String) -> LeaderElectionConfig {
        LeaderElectionConfig {
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            release_on_cancel: true,
        }
    }

    /// Upstream's checks, with its messages.
    pub fn validate(&self) -> Result<()> {
        if self.lease_duration <= self.renew_deadline {
            return Err(Error::Config(
                "leaseDuration must be greater than renewDeadline".into(),
            ));
        }
        if self.renew_deadline <= self.retry_period.mul_f64(JITTER) {
            return Err(Error::Config(
                "renewDeadline must be greater than retryPeriod*JitterFactor".into(),
            ));
        }
        if self.lease_duration.is_zero() || self.retry_period.is_zero() {
            return Err(Error::Config(
                "leaseDuration and retryPeriod must be greater than zero".into(),
            ));
        }
        if self.identity.is_empty() {
            return Err(Error::Config("Lock identity is empty".into()));
        }
        if self.name.is_empty() || self.namespace.is_empty() {
            return Err(Error::Config(
                "the lease needs a name and a namespace".into(),
            ));
        }
        Ok(())
    }
}

/// upstream's identity: the hostname and a unique suffix.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

/// Held by the leader's work while it leads.
#[derive(Clone)]
pub struct Leadership {
    leading: watch::Receiver<bool>,
    last_renew: Arc<Mutex<Instant>>,
    renew_deadline: Duration,
}

impl Leadership {
    /// Whether this process may act as leader now: the renew loop has not given up, and the last
    /// successful renew is younger than the renew deadline (a paused process that just woke up is
    /// not leading, whatever its flags say).
    pub fn is_leading(&self) -> bool {
        let recent = self
            .last_renew
            .lock()
            .map(|t| t.elapsed() < self.renew_deadline)
            .unwrap_or(false);
        *self.leading.borrow() && recent
    }

    /// Resolves once leadership is lost.
    pub async fn lost(&mut self) {
        let _ = self.leading.wait_for(|leading| !*leading).await;
    }
}

/// How [`LeaderElector::run`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Shut down before ever leading.
    NeverLed,
    /// Led, then could not renew within the renew deadline: the process must stop acting
    /// (upstream daemons exit).
    Lost,
    /// Led until shutdown or until the work ended, then released the lease.
    Released,
}

/// What this candidate last saw of the Lease, and when (on the local monotonic clock).
struct Observed {
    spec: Option<LeaseSpec>,
    at: Instant,
}

pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    observed: Mutex<Observed>,
    status: metrics::Gauge,
}

impl LeaderElector {
    pub fn new(client: &Client, config: LeaderElectionConfig) -> Result<LeaderElector> {
        config.validate()?;
        let status = metrics::global()
            .gauge_vec(
                "leader_election_master_status",
                "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease.",
                &["name"],
            )
            .with(&[&config.name]);
        Ok(LeaderElector {
            api: client.api(Some(&config.namespace)),
            config,
            observed: Mutex::new(Observed {
                spec: None,
                at: Instant::now(),
            }),
            status,
        })
    }

    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    /// Campaigns until leading, runs `work` while leading, and returns when leadership is lost,
    /// `work` ends, or `shutdown` resolves. `work` is dropped (cancelled) as soon as leadership
    /// is lost; it should also check [`Leadership::is_leading`] before each action.
    pub async fn run<F, Fut, S>(&self, shutdown: S, work: F) -> Outcome
    where
        F: FnOnce(Leadership) -> Fut,
        Fut: Future<Output = ()>,
        S: Future<Output = ()>,
    {
        let mut shutdown = std::pin::pin!(shutdown);
        tokio::select! {
            _ = self.acquire() => {}
            _ = &mut shutdown => return Outcome::NeverLed,
        }
        tracing::info!(lease = %format!("{}/{}", self.config.namespace, self.config.name), identity = %self.config.identity, "successfully acquired lease");
        self.status.set(1.0);
        let (tx, rx) = watch::channel(true);
        let last_renew = Arc::new(Mutex::new(Instant::now()));
        let leadership = Leadership {
            leading: rx,
            last_renew: last_renew.clone(),
            renew_deadline: self.config.renew_deadline,
        };
        let outcome = tokio::select! {
            _ = self.renew(&last_renew) => {
                tx.send_replace(false);
                tracing::error!(lease = %self.config.name, identity = %self.config.identity, "leaderelection lost");
                Outcome::Lost
            }
            _ = work(leadership) => Outcome::Released,
            _ = &mut shutdown => Outcome::Released,
        };
        tx.send_replace(false);
        self.status.set(0.0);
        if outcome == Outcome::Released && self.config.release_on_cancel {
            // Bounded: on shutdown the apiserver may already be gone, and then the lease just
            // expires as it would after a crash.
            match tokio::time::timeout(self.config.retry_period, self.release()).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(error = %err, "releasing the lease failed"),
                Err(_) => tracing::warn!("releasing the lease timed out"),
            }
        }
        outcome
    }

    /// Tries every retry period (with jitter) until this candidate holds the lease.
    async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(error = %err, lease = %self.config.name, "error retrieving or updating the lease")
                }
            }
            tokio::time::sleep(jittered(self.config.retry_period)).await;
        }
    }

    /// Renews every retry period; returns when it has not renewed for the renew deadline.
    async fn renew(&self, last_renew: &Mutex<Instant>) {
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            loop {
                let since = last_renew
                    .lock()
                    .map(|t| t.elapsed())
                    .unwrap_or(Duration::MAX);
                let Some(left) = self.config.renew_deadline.checked_sub(since) else {
                    return;
                };
                if left.is_zero() {
                    return;
                }
                match tokio::time::timeout(left, self.try_acquire_or_renew()).await {
                    Ok(Ok(true)) => {
                        if let Ok(mut t) = last_renew.lock() {
                            *t = Instant::now();
                        }
                        break;
                    }
                    Ok(Ok(false)) => {
                        // Someone else holds it: we are not the leader any more.
                        return;
                    }
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, "failed to renew the lease; retrying");
                    }
                    Err(_) => return,
                }
                tokio::time::sleep(self.config.retry_period).await;
            }
        }
    }

    /// One round of client-go's `tryAcquireOrRenew`: `Ok(true)` when this candidate holds the
    /// lease after it.
    pub async fn try_acquire_or_renew(&self) -> Result<bool> {
        let now = MicroTime(Timestamp::now());
        let duration_secs = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let spec = LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(duration_secs),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            };
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec.clone()),
            };
            return match self.api.create(&lease).await {
                Ok(_) => {
                    self.observe(Some(spec));
                    Ok(true)
                }
                Err(err) if err.is_already_exists() => Ok(false),
                Err(err) => Err(err),
            };
        };
        let old = lease.spec.clone().unwrap_or_default();
        let observed_at = self.observe(Some(old.clone()));
        let holder = old.holder_identity.clone().unwrap_or_default();
        let held_by_me = holder == self.config.identity;
        let old_duration = Duration::from_secs(
            u64::try_from(old.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        );
        if !holder.is_empty() && !held_by_me && observed_at.elapsed() < old_duration {
            return Ok(false);
        }
        let spec = LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(duration_secs),
            acquire_time: if held_by_me {
                old.acquire_time.clone()
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(if held_by_me {
                old.lease_transitions.unwrap_or(0)
            } else {
                old.lease_transitions.unwrap_or(0).saturating_add(1)
            }),
            ..old
        };
        lease.spec = Some(spec.clone());
        // The resourceVersion read above fences the write: a concurrent winner makes it conflict.
        match self.api.replace(&self.config.name, &lease).await {
            Ok(_) => {
                self.observe(Some(spec));
                Ok(true)
            }
            Err(err) if err.is_conflict() => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Records what was seen; returns when the record last changed.
    fn observe(&self, spec: Option<LeaseSpec>) -> Instant {
        let Ok(mut observed) = self.observed.lock() else {
            return Instant::now();
        };
        if observed.spec != spec {
            observed.spec = spec;
            observed.at = Instant::now();
        }
        observed.at
    }

    /// Clears the holder when this candidate holds the lease, as client-go's `release`.
    pub async fn release(&self) -> Result<()> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let old = lease.spec.clone().unwrap_or_default();
        if old.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        let now = MicroTime(Timestamp::now());
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(String::new()),
            lease_duration_seconds: Some(1),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            ..old
        });
        self.api
            .replace(&self.config.name, &lease)
            .await
            .map(|_| ())
    }
}

fn jittered(period: Duration) -> Duration {
    period.mul_f64(1.0 + rand::random::<f64>() * (JITTER - 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        election: LeaderElectionArgs,
    }

    #[test]
    fn flags_have_upstream_defaults_and_checks() {
        let Ok(flags) = Flags::try_parse_from(["x"]) else {
            panic!("defaults parse");
        };
        assert!(flags.election.leader_elect);
        assert_eq!(flags.election.lease_duration, Duration::from_secs(15));
        assert_eq!(flags.election.renew_deadline, Duration::from_secs(10));
        assert_eq!(flags.election.retry_period, Duration::from_secs(2));
        let config = match flags.election.config("kube-scheduler", "me".into()) {
            Ok(config) => config,
            Err(err) => panic!("{err}"),
        };
        assert_eq!(
            (config.namespace.as_str(), config.name.as_str()),
            ("kube-system", "kube-scheduler")
        );

        let Ok(off) = Flags::try_parse_from(["x", "--leader-elect=false"]) else {
            panic!("--leader-elect=false parses");
        };
        assert!(!off.election.leader_elect);

        let Ok(bad) = Flags::try_parse_from([
            "x",
            "--leader-elect-lease-duration=5s",
            "--leader-elect-renew-deadline=10s",
        ]) else {
            panic!("durations parse");
        };
        let err = bad
            .election
            .config("x", "me".into())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("leaseDuration must be greater than renewDeadline"),
            "{err}"
        );

        let Ok(bad) = Flags::try_parse_from(["x", "--leader-elect-retry-period=9s"]) else {
            panic!("durations parse");
        };
        let err = bad
            .election
            .config("x", "me".into())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("renewDeadline must be greater than retryPeriod*JitterFactor"),
            "{err}"
        );
        assert!(Flags::try_parse_from(["x", "--leader-elect-lease-duration=15"]).is_err());
    }
}
