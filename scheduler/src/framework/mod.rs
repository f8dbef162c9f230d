//! The scheduling framework (upstream's `pkg/scheduler/framework`): extension points, cycle
//! state, status codes, the cluster types plugins read, the runtime that runs a profile's
//! plugins, and the pods Permit plugins hold.

pub mod cycle_state;
pub mod interface;
pub mod runtime;
pub mod snapshot;
pub mod status;
pub mod types;
pub mod waiting;

pub use cycle_state::CycleState;
pub use interface::*;
pub use runtime::{Framework, Point};
pub use snapshot::Snapshot;
pub use status::{Code, Status};
pub use types::*;
pub use waiting::{WaitingPod, WaitingPods};
