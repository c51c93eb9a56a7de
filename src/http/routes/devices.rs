//! `GET /v1/devices`: the caller's account's devices.

use crate::accounts::AuthedDevice;
use crate::http::response::{HttpError, Response};
use crate::protocol::payloads::DeviceInfoList;
use crate::shard::ShardCtx;

/// Lists the caller's devices (the caller is on its owner shard).
pub fn handle(ctx: &ShardCtx, caller: AuthedDevice) -> Result<Response, HttpError> {
    let devices = ctx
        .accounts
        .device_list(&caller.account)
        .ok_or_else(|| HttpError::unauthorized("account no longer exists"))?;
    Ok(Response::json(200, &DeviceInfoList { devices }))
}
