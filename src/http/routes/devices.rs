//! `GET /v1/devices`: the caller's account's devices.
//! `DELETE /v1/devices/{id}`: remove a device (by the primary, or the device
//! itself), with its credentials and queue; its live session is closed.
//! 204; 403 not allowed or the primary; 404 no such device.

use crate::accounts::AuthedDevice;
use crate::http::response::{HttpError, Response};
use crate::protocol::payloads::DeviceInfoList;
use crate::shard::ShardCtx;
use std::rc::Rc;

/// Lists the caller's devices (the caller is on its owner shard).
pub fn handle(ctx: &ShardCtx, caller: AuthedDevice) -> Result<Response, HttpError> {
    let devices = ctx
        .accounts
        .device_list(&caller.account)
        .ok_or_else(|| HttpError::unauthorized("account no longer exists"))?;
    Ok(Response::json(200, &DeviceInfoList { devices }))
}

/// Removes the caller's account's device `device_id`.
pub async fn unlink(
    ctx: &Rc<ShardCtx>,
    caller: AuthedDevice,
    device_id: u32,
) -> Result<Response, HttpError> {
    crate::delivery::unlink::unlink(ctx, caller, device_id).await?;
    Ok(Response::empty(204))
}
