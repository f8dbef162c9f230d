//! Job and TTL-after-finished controllers (being written).

use crate::framework::ControllerContext;

pub fn start(_ctx: &ControllerContext) -> anyhow::Result<()> {
    Ok(())
}

pub fn start_ttl_after_finished(_ctx: &ControllerContext) -> anyhow::Result<()> {
    Ok(())
}
