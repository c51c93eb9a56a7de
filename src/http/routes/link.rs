//! Device linking: `GET /v1/devices/provisioning/code` (primary device
//! only) issues a single-use code, valid for [`LINK_CODE_TTL_MS`];
//! `PUT /v1/devices/link` presents it with the new device's credentials and
//! gets the next free device id.
//!
//! The code is `{account uuid}.{32 hex digits of randomness}`: the account
//! part routes the unauthenticated link request to the owner shard, the
//! random part is the secret (compared in constant time). A code is consumed
//! by its first successful use; asking for a new code replaces the old one.

use crate::accounts::{new_device_record, AuthedDevice};
use crate::http::conn::now_ms;
use crate::http::request::Request;
use crate::http::response::{HttpError, Response};
use crate::http::routes::accounts::call_error;
use crate::protocol::payloads::{
    parse_json, LinkDeviceRequest, Registration, RegistrationResponse, VerificationCode,
};
use crate::shard::msg::Call;
use crate::shard::runtime::ShardCtx;
use crate::store::writer::{Family, Op};
use std::rc::Rc;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// How long a link code stays valid.
pub const LINK_CODE_TTL_MS: u64 = 10 * 60 * 1000;

/// Issues a link code to the caller's account (primary device only).
pub fn code(ctx: &ShardCtx, caller: AuthedDevice) -> Result<Response, HttpError> {
    if caller.device_id != 1 {
        return Err(HttpError::new(403, "only the primary device can link devices"));
    }
    let secret: String = crate::accounts::new_salt().iter().map(|b| format!("{b:02x}")).collect();
    let code = format!("{}.{secret}", caller.account);
    ctx.link_codes.borrow_mut().insert(caller.account, (code.clone(), now_ms() + LINK_CODE_TTL_MS));
    Ok(Response::json(200, &VerificationCode { verification_code: code }))
}

/// Links a new device with a code.
pub async fn link(ctx: &Rc<ShardCtx>, mut request: Request) -> Result<Response, HttpError> {
    let (code, registration) = parse_json::<LinkDeviceRequest>(&mut request.body)
        .and_then(LinkDeviceRequest::validate)
        .map_err(|error| HttpError::new(400, error.0))?;
    let account = code
        .split_once('.')
        .and_then(|(account, _)| Uuid::try_parse(account).ok())
        .ok_or_else(|| HttpError::new(403, "invalid verification code"))?;
    let owner = ctx.owner_of(&account);
    if owner == ctx.id {
        Ok(link_on_owner(ctx, account, &code, registration).await)
    } else {
        ctx.call(owner, Call::LinkDevice { account, code, registration }).await.map_err(call_error)
    }
}

/// Adds the device on the account's owner shard (this one).
pub async fn link_on_owner(
    ctx: &Rc<ShardCtx>,
    account: Uuid,
    code: &str,
    registration: Registration,
) -> Response {
    let valid = ctx.link_codes.borrow().get(&account).is_some_and(|(expected, expires_ms)| {
        *expires_ms > now_ms() && bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
    });
    if !valid {
        return Response::error(403, "invalid verification code");
    }
    let Some(mut record) = ctx.accounts.borrow().get(&account).cloned() else {
        return Response::error(403, "invalid verification code");
    };
    // One change per account at a time: two links racing over one write
    // would otherwise both take the same device id.
    if !ctx.accounts_changing.borrow_mut().insert(account) {
        return Response::error(409, "the account is being changed; retry");
    }
    if record.devices.len() >= ctx.config.limits.devices_per_account_max as usize {
        ctx.accounts_changing.borrow_mut().remove(&account);
        return Response::error(411, "too many devices on this account");
    }
    let device_id = record.devices.iter().map(|device| device.id).max().unwrap_or(0) + 1;
    record.devices.push(new_device_record(&registration, device_id, now_ms()));
    // Consume the code before the write: a concurrent second use must fail.
    ctx.link_codes.borrow_mut().remove(&account);
    let op = Op::Put {
        family: Family::Accounts,
        key: account.as_bytes().to_vec(),
        value: record.encode(),
    };
    let written = ctx.writer.write(vec![op]).await;
    ctx.accounts_changing.borrow_mut().remove(&account);
    if let Err(error) = written {
        tracing::error!(shard = ctx.id, %error, "device link write failed");
        return Response::error(503, "storage unavailable");
    }
    ctx.accounts.borrow_mut().insert(account, record);
    Response::json(200, &RegistrationResponse { uuid: account.to_string(), device_id })
}
