//! `GET /v1/devices`: the caller's account's devices.

use crate::accounts::AuthedDevice;
use crate::http::response::{HttpError, Response};
use crate::protocol::payloads::{DeviceInfo, DeviceInfoList};
use crate::shard::runtime::ShardCtx;

/// Lists the caller's devices (the caller is on its owner shard).
pub fn handle(ctx: &ShardCtx, caller: AuthedDevice) -> Result<Response, HttpError> {
    let accounts = ctx.accounts.borrow();
    let account = accounts
        .get(&caller.account)
        .ok_or_else(|| HttpError::new(401, "account no longer exists"))?;
    let devices = account
        .devices
        .iter()
        .map(|device| DeviceInfo {
            id: device.id,
            name: device.name.clone(),
            created: device.created_ms,
            last_seen: accounts.last_seen_ms(&caller.account, device),
        })
        .collect();
    Ok(Response::json(200, &DeviceInfoList { devices }))
}
