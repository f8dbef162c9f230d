//! The client library every component talks to the apiserver through.
//!
//! - [`Client`] / [`Api`]: typed (k8s-openapi) and dynamic (`DynamicObject` + [`discovery`])
//!   access with rate limiting, retries, a component user agent and metrics;
//! - [`config`]: kubeconfig / `--master` / in-cluster loading and the upstream client flags;
//! - [`informer`]: shared informers with indexers and event handlers;
//! - [`workqueue`]: client-go work queues (re-exported crate);
//! - [`leaderelection`]: Lease-based leader election;
//! - [`events`]: an events.k8s.io/v1 recorder with series aggregation;
//! - [`delegated`]: a daemon's secure port authenticated and authorized by the apiserver
//!   (TokenReview, SubjectAccessReview) with upstream's delegated auth flags.

pub mod client;
pub mod config;
pub mod delegated;
pub mod discovery;
pub mod error;
pub mod events;
pub mod informer;
pub mod leaderelection;
pub mod ratelimit;

pub use client::{Api, Client, ClientOptions, WatchEvent};
pub use config::ClientArgs;
pub use delegated::DelegatedAuthArgs;
pub use error::{ApiError, Error, Result};
pub use informer::{Informer, Scope, SharedInformerFactory};
pub use workqueue;
