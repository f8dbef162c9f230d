//! CertificateSigningRequest signing and approving controllers (being written).

use crate::framework::ControllerContext;

pub fn start_signing(_ctx: &ControllerContext) -> anyhow::Result<()> {
    Ok(())
}

pub fn start_approving(_ctx: &ControllerContext) -> anyhow::Result<()> {
    Ok(())
}
