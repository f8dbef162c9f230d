//! ReplicaSet and ReplicationController controllers (being written).

use crate::framework::ControllerContext;

pub fn start_replicaset(_ctx: &ControllerContext) -> anyhow::Result<()> {
    Ok(())
}

pub fn start_replication_controller(_ctx: &ControllerContext) -> anyhow::Result<()> {
    Ok(())
}
