//! `PUT /v1/accounts`: register an account with its primary device (id 1).
//!
//! Parse: the per-address limit (429 with `Retry-After`), then either a
//! verified verification session (`sessionId`, used up here; 403 if it is
//! not verified) or the registration token (when configured, compared in
//! constant time; 403 otherwise), then the JSON body (400). Apply: pick a random UUID
//! and have its owner shard make the account durable
//! ([`crate::calls::create_account`]). Encode: `{"uuid", "deviceId": 1}`.

use crate::http::request::Request;
use crate::http::response::{HttpError, Response};
use crate::metrics::ShardMetrics;
use crate::protocol::payloads::{parse_json, RegistrationRequest, RegistrationResponse};
use crate::shard::mesh::CallError;
use crate::shard::msg::Call;
use crate::shard::ShardCtx;
use std::rc::Rc;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// UUIDs a registration tries when the owner of the first is unavailable.
const CREATE_TRIES: u32 = 3;

/// Handles the registration request.
pub async fn handle(ctx: &Rc<ShardCtx>, mut request: Request) -> Result<Response, HttpError> {
    let parsed = parse_json::<RegistrationRequest>(&mut request.body);
    match parsed.as_ref().ok().and_then(|parsed| parsed.session_id.as_deref()) {
        Some(session_id) => {
            let id = Uuid::try_parse(session_id)
                .map_err(|_| HttpError::forbidden("no such verification session"))?;
            let call = Call::ConsumeVerification { id };
            let consumed = crate::calls::verification(ctx, id, call).await?;
            consumed.map_err(|refused| HttpError::forbidden(refused.to_string()))?;
        }
        None => check_registration_token(ctx, &request)?,
    }
    if let Some(ip) = request.peer {
        let taken = ctx.limiters.registrations_per_ip.borrow_mut().take(&ip, 1, ctx.clock.now_ms());
        if let Err(limited) = taken {
            ShardMetrics::inc(&ctx.stats().rate_limited_total);
            let message = "too many registrations from this address; retry later";
            return Err(HttpError::too_many_requests(message, limited.retry_after_s()));
        }
    }
    let registration = parsed
        .and_then(RegistrationRequest::validate)
        .map_err(|error| HttpError::bad_request(error.0))?;
    // In cluster mode a new account may land in any partition: one whose
    // node is down (nothing was created there) is skipped for another UUID.
    let mut tries = CREATE_TRIES;
    let uuid = loop {
        let uuid = Uuid::new_v4();
        match crate::calls::create_account(ctx, uuid, registration.clone()).await {
            Err(CallError::NodeUnavailable) if tries > 1 => tries -= 1,
            created => break created.map(|created| created.map(|()| uuid))??,
        }
    };
    Ok(Response::json(200, &RegistrationResponse { uuid: uuid.to_string(), device_id: 1 }))
}

/// The registration token rule: when one is configured, it must be offered
/// (compared in constant time); 403 otherwise.
fn check_registration_token(ctx: &ShardCtx, request: &Request) -> Result<(), HttpError> {
    let Some(expected) = &ctx.config.registration_token else { return Ok(()) };
    let offered = request.header("x-registration-token").unwrap_or("");
    let matches: bool = offered.as_bytes().ct_eq(expected.as_bytes()).into();
    if !matches {
        return Err(HttpError::forbidden("registration token missing or wrong"));
    }
    Ok(())
}
