//! The in-tree plugins, one module each, and the registry profiles pick them from.
//!
//! Every plugin module has `pub const NAME: &str` (the name profiles use) and
//! `pub fn new(args: Option<&serde_json::Value>, handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>>`.

pub mod defaultbinder;
pub mod defaultpreemption;
pub mod helper;
pub mod imagelocality;
pub mod interpodaffinity;
pub mod nodeaffinity;
pub mod nodename;
pub mod nodeports;
pub mod noderesources;
pub mod nodeunschedulable;
pub mod nodevolumelimits;
pub mod podtopologyspread;
pub mod prioritysort;
pub mod schedulinggates;
pub mod tainttoleration;
pub mod volumebinding;
pub mod volumerestrictions;
pub mod volumezone;
