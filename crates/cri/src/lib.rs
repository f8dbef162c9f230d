//! The Container Runtime Interface (CRI, `runtime.v1`): what the kubelet speaks to a container
//! runtime.
//!
//! - [`v1`]: the messages and gRPC stubs generated from `proto/cri/api.proto` (wire-compatible
//!   with upstream's `k8s.io/cri-api` `runtime.v1`).
//! - [`RuntimeService`] and [`ImageService`]: the two services as object-safe async traits,
//!   one method per RPC. The kubelet holds `Arc<dyn RuntimeService>` / `Arc<dyn ImageService>`
//!   (or one `Arc<dyn ContainerRuntime>`, both at once).
//! - [`RemoteRuntime`]: both traits over gRPC to a runtime's unix socket (containerd), with
//!   upstream's timeouts and gRPC codes mapped to [`CriError`].
//! - [`serve_unix`]: both traits served as a real CRI endpoint on a unix socket.

mod error;
mod remote;
mod server;
mod service;

pub use error::CriError;
pub use remote::{
    parse_endpoint, RemoteRuntime, DEFAULT_IMAGE_PULL_TIMEOUT, DEFAULT_RUNTIME_REQUEST_TIMEOUT,
    MAX_MESSAGE_SIZE,
};
pub use server::{serve_unix, CriServer};
pub use service::{ContainerRuntime, ImageService, RuntimeService};

/// The CRI `runtime.v1` messages, enums and gRPC client/server stubs.
#[allow(clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("runtime.v1");

    impl std::fmt::Debug for AuthConfig {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let redacted = |secret: &str| if secret.is_empty() { "" } else { "<redacted>" };
            f.debug_struct("AuthConfig")
                .field("username", &self.username)
                .field("password", &redacted(&self.password))
                .field("auth", &redacted(&self.auth))
                .field("server_address", &self.server_address)
                .field("identity_token", &redacted(&self.identity_token))
                .field("registry_token", &redacted(&self.registry_token))
                .finish()
        }
    }
}
