//! `PUT /v1/accounts`: register an account with its primary device (id 1).
//!
//! Parse: the registration token (when configured, compared in constant
//! time; 403 otherwise), the per-address limit (429 with `Retry-After`)
//! and the JSON body (400). Apply: pick a random UUID
//! and have its owner shard make the account durable
//! ([`crate::calls::create_account`]). Encode: `{"uuid", "deviceId": 1}`.

use crate::http::request::Request;
use crate::http::response::{HttpError, Response};
use crate::metrics::ShardMetrics;
use crate::protocol::payloads::{parse_json, RegistrationRequest, RegistrationResponse};
use crate::shard::ShardCtx;
use std::rc::Rc;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// Handles the registration request.
pub async fn handle(ctx: &Rc<ShardCtx>, mut request: Request) -> Result<Response, HttpError> {
    if let Some(expected) = &ctx.config.registration_token {
        let offered = request.header("x-registration-token").unwrap_or("");
        let matches: bool = offered.as_bytes().ct_eq(expected.as_bytes()).into();
        if !matches {
            return Err(HttpError::forbidden("registration token missing or wrong"));
        }
    }
    if let Some(ip) = request.peer {
        let taken = ctx.limiters.registrations_per_ip.borrow_mut().take(&ip, 1, ctx.clock.now_ms());
        if let Err(limited) = taken {
            ShardMetrics::inc(&ctx.stats().rate_limited_total);
            let message = "too many registrations from this address; retry later";
            return Err(HttpError::too_many_requests(message, limited.retry_after_s()));
        }
    }
    let registration = parse_json::<RegistrationRequest>(&mut request.body)
        .and_then(RegistrationRequest::validate)
        .map_err(|error| HttpError::bad_request(error.0))?;
    let uuid = Uuid::new_v4();
    crate::calls::create_account(ctx, uuid, registration).await??;
    Ok(Response::json(200, &RegistrationResponse { uuid: uuid.to_string(), device_id: 1 }))
}
