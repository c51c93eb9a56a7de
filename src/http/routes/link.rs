//! Device linking: `GET /v1/devices/provisioning/code` (primary device
//! only) issues a single-use code (see [`crate::accounts::link_codes`]);
//! `PUT /v1/devices/link` presents it with the new device's credentials and
//! gets the next free device id from the account's owner shard
//! ([`crate::calls::link_device`]).

use crate::accounts::link_codes::LinkCodes;
use crate::accounts::{AuthedDevice, LinkRefused};
use crate::http::request::Request;
use crate::http::response::{HttpError, Response};
use crate::protocol::payloads::{
    parse_json, LinkDeviceRequest, RegistrationResponse, VerificationCode,
};
use crate::shard::ShardCtx;
use std::rc::Rc;

/// Issues a link code to the caller's account (primary device only).
pub fn code(ctx: &ShardCtx, caller: AuthedDevice) -> Result<Response, HttpError> {
    let code = ctx.accounts.issue_link_code(caller, ctx.clock.now_ms())?;
    Ok(Response::json(200, &VerificationCode { verification_code: code }))
}

/// Links a new device with a code.
pub async fn link(ctx: &Rc<ShardCtx>, mut request: Request) -> Result<Response, HttpError> {
    let (code, registration) = parse_json::<LinkDeviceRequest>(&mut request.body)
        .and_then(LinkDeviceRequest::validate)
        .map_err(|error| HttpError::bad_request(error.0))?;
    let account = LinkCodes::account_of(&code).ok_or(LinkRefused::InvalidCode)?;
    let device_id = crate::calls::link_device(ctx, account, code, registration).await??;
    Ok(Response::json(200, &RegistrationResponse { uuid: account.to_string(), device_id }))
}
