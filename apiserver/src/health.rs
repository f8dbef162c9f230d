//! `/healthz`, `/livez` and `/readyz` with named checks, in upstream's text format
//! (`[+]etcd ok` lines with `?verbose`, `?exclude=<check>`, and `/readyz/<check>`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use storage::Storage;

use crate::errors::{self, ApiResult};
use crate::handlers::Query;
use crate::negotiation::bytes_response;
use crate::server::Body;

/// The checks behind the health endpoints.
pub struct Health {
    store: Arc<dyn Storage>,
    /// Set once the built-in namespaces and the `kubernetes` Service exist.
    pub bootstrapped: AtomicBool,
    /// Set when the server starts shutting down: readiness fails first, as upstream does.
    pub shutting_down: AtomicBool,
}

const STORAGE_TIMEOUT: Duration = Duration::from_secs(2);

impl Health {
    pub fn new(store: Arc<dyn Storage>) -> Health {
        Health {
            store,
            bootstrapped: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
        }
    }

    async fn check(&self, name: &str) -> Result<(), String> {
        match name {
            "ping" | "log" => Ok(()),
            "etcd" => {
                match tokio::time::timeout(STORAGE_TIMEOUT, self.store.current_revision()).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(err)) => Err(err.to_string()),
                    Err(_) => Err("storage did not answer in time".into()),
                }
            }
            "poststarthook/bootstrap-controller" => {
                if self.bootstrapped.load(Ordering::Acquire) {
                    Ok(())
                } else {
                    Err("not finished".into())
                }
            }
            "shutdown" => {
                if self.shutting_down.load(Ordering::Acquire) {
                    Err("process is shutting down".into())
                } else {
                    Ok(())
                }
            }
            _ => Err("unknown check".into()),
        }
    }

    fn checks(endpoint: &str) -> &'static [&'static str] {
        match endpoint {
            "readyz" => &[
                "ping",
                "log",
                "etcd",
                "poststarthook/bootstrap-controller",
                "shutdown",
            ],
            _ => &["ping", "log", "etcd", "poststarthook/bootstrap-controller"],
        }
    }

    /// Serves `/healthz`, `/livez`, `/readyz` and their `/<check>` sub-paths.
    pub async fn serve(&self, path: &str, query: &Query) -> ApiResult<http::Response<Body>> {
        let path = path.trim_start_matches('/');
        let (endpoint, single) = match path.split_once('/') {
            Some((endpoint, check)) => (endpoint, Some(check)),
            None => (path, None),
        };
        let checks = Self::checks(endpoint);
        if let Some(check) = single {
            if !checks.contains(&check) {
                return Err(errors::route_not_found());
            }
            return Ok(match self.check(check).await {
                Ok(()) => text(StatusCode::OK, "ok".into()),
                Err(reason) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("internal server error: {reason}\n"),
                ),
            });
        }
        let verbose = query.contains_key("verbose");
        let excluded: Vec<&str> = query
            .get("exclude")
            .map(|e| e.split(',').collect())
            .unwrap_or_default();
        let mut lines = String::new();
        let mut failed = false;
        for check in checks {
            if excluded.contains(check) {
                lines.push_str(&format!("[+]{check} excluded: ok\n"));
                continue;
            }
            match self.check(check).await {
                Ok(()) => lines.push_str(&format!("[+]{check} ok\n")),
                Err(reason) => {
                    failed = true;
                    tracing::warn!(check, %reason, "{endpoint} check failed");
                    lines.push_str(&format!("[-]{check} failed: reason withheld\n"));
                }
            }
        }
        if failed {
            lines.push_str(&format!("{endpoint} check failed\n"));
            return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, lines));
        }
        if verbose {
            lines.push_str(&format!("{endpoint} check passed\n"));
            return Ok(text(StatusCode::OK, lines));
        }
        Ok(text(StatusCode::OK, "ok".into()))
    }
}

fn text(code: StatusCode, body: String) -> http::Response<Body> {
    bytes_response(code, "text/plain; charset=utf-8", body.into_bytes())
}
