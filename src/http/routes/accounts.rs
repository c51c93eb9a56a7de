//! `PUT /v1/accounts`: register an account with its primary device (id 1).
//!
//! Parse: the registration token (when configured, compared in constant
//! time; 403 otherwise) and the JSON body (400). Apply: pick a random UUID,
//! and have its owner shard make the account durable, through the ring when
//! the owner is another shard. Encode: `{"uuid", "deviceId": 1}`.

use crate::accounts::new_account_record;
use crate::http::conn::now_ms;
use crate::http::request::Request;
use crate::http::response::{HttpError, Response};
use crate::metrics::ShardMetrics;
use crate::protocol::payloads::{
    parse_json, Registration, RegistrationRequest, RegistrationResponse,
};
use crate::shard::msg::Call;
use crate::shard::runtime::{CallError, ShardCtx};
use crate::store::writer::{Family, Op};
use std::rc::Rc;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// Handles the registration request.
pub async fn handle(ctx: &Rc<ShardCtx>, mut request: Request) -> Result<Response, HttpError> {
    if let Some(expected) = &ctx.config.registration_token {
        let offered = request.header("x-registration-token").unwrap_or("");
        let matches: bool = offered.as_bytes().ct_eq(expected.as_bytes()).into();
        if !matches {
            return Err(HttpError::new(403, "registration token missing or wrong"));
        }
    }
    let registration = parse_json::<RegistrationRequest>(&mut request.body)
        .and_then(RegistrationRequest::validate)
        .map_err(|error| HttpError::new(400, error.0))?;
    let uuid = Uuid::new_v4();
    let owner = ctx.owner_of(&uuid);
    if owner == ctx.id {
        Ok(create_on_owner(ctx, uuid, registration).await)
    } else {
        let call = Call::CreateAccount { uuid, registration };
        ctx.call(owner, call).await.map_err(call_error)
    }
}

/// The answer when another shard could not be reached.
pub fn call_error(error: CallError) -> HttpError {
    match error {
        CallError::Busy(_) => HttpError::new(503, "server busy, retry"),
        CallError::NoAnswer(_) => HttpError::new(503, "shard unavailable"),
    }
}

/// Creates account `uuid` on its owner shard (this one): durable first, then
/// visible to logins.
pub async fn create_on_owner(
    ctx: &Rc<ShardCtx>,
    uuid: Uuid,
    registration: Registration,
) -> Response {
    debug_assert_eq!(ctx.owner_of(&uuid), ctx.id);
    if ctx.accounts.borrow().get(&uuid).is_some() {
        return Response::error(409, "account exists");
    }
    let record = new_account_record(&registration, now_ms());
    let op =
        Op::Put { family: Family::Accounts, key: uuid.as_bytes().to_vec(), value: record.encode() };
    match ctx.writer.write(vec![op]).await {
        Ok(()) => {
            ctx.accounts.borrow_mut().insert(uuid, record);
            ShardMetrics::inc(&ctx.stats().accounts);
            Response::json(200, &RegistrationResponse { uuid: uuid.to_string(), device_id: 1 })
        }
        Err(error) => {
            tracing::error!(shard = ctx.id, %error, "account write failed");
            Response::error(503, "storage unavailable")
        }
    }
}
