//! `PUT`/`DELETE /v1/accounts/apn` and `/v1/accounts/gcm`: the calling
//! device's push token. 204 on success (also for a `DELETE` with nothing to
//! remove); 400 for a malformed body; 422 for a token of the wrong shape
//! (see `protocol::push`). A device has one channel: registering a token of
//! one kind drops a token of the other.

use crate::accounts::push_tokens::PushTokenChange;
use crate::accounts::AuthedDevice;
use crate::http::request::Request;
use crate::http::response::{HttpError, Response};
use crate::protocol::payloads::{parse_json, PayloadError};
use crate::protocol::push::{ApnRegistration, GcmRegistration};
use crate::shard::ShardCtx;
use crate::store::accounts::{PushProvider, PushToken};

/// `PUT /v1/accounts/{apn,gcm}`: registers the caller's token.
pub async fn set(
    ctx: &ShardCtx,
    caller: AuthedDevice,
    provider: PushProvider,
    mut request: Request,
) -> Result<Response, HttpError> {
    let invalid = |error: PayloadError| HttpError::new(422, error.0);
    let token = match provider {
        PushProvider::Apn => parse_json::<ApnRegistration>(&mut request.body)
            .map_err(|error| HttpError::bad_request(error.0))?
            .validate()
            .map_err(invalid)?,
        PushProvider::Fcm => parse_json::<GcmRegistration>(&mut request.body)
            .map_err(|error| HttpError::bad_request(error.0))?
            .validate()
            .map_err(invalid)?,
    };
    let token = PushToken { provider, token, registered_ms: ctx.clock.now_ms() };
    ctx.accounts.set_push_token(&ctx.writer, caller, PushTokenChange::Set(token)).await?;
    Ok(Response::empty(204))
}

/// `DELETE /v1/accounts/{apn,gcm}`: drops the caller's token of that kind.
pub async fn clear(
    ctx: &ShardCtx,
    caller: AuthedDevice,
    provider: PushProvider,
) -> Result<Response, HttpError> {
    ctx.accounts.set_push_token(&ctx.writer, caller, PushTokenChange::Clear(provider)).await?;
    Ok(Response::empty(204))
}
