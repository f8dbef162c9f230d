//! The node resources plugins (upstream's `noderesources`):
//!
//! - [`fit`]: NodeResourcesFit, which filters out nodes without room for the pod's requests and
//!   scores the rest by one of three strategies (`LeastAllocated`, the default;
//!   `MostAllocated`; `RequestedToCapacityRatio`);
//! - [`balanced_allocation`]: NodeResourcesBalancedAllocation, which favours nodes whose
//!   resources would be used evenly.
//!
//! Both score through [`resource_allocation`]; the strategies live one per module.

pub mod balanced_allocation;
pub mod fit;
mod least_allocated;
mod most_allocated;
mod requested_to_capacity_ratio;
pub mod resource_allocation;

pub use balanced_allocation::{
    new as new_balanced_allocation, BalancedAllocation, NAME as BALANCED_ALLOCATION_NAME,
};
pub use fit::{fits, new as new_fit, Fit, InsufficientResource, NAME as FIT_NAME};
pub use resource_allocation::ResourceSpec;
