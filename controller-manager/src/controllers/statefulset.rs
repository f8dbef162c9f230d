//! statefulset controller (being written).

use crate::framework::ControllerContext;

pub fn start(_ctx: &ControllerContext) -> anyhow::Result<()> {
    Ok(())
}
