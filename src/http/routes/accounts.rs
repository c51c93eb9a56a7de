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
use crate::shard::msg::{Call, Reply};
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
    let reply = if owner == ctx.id {
        create_on_owner(ctx, uuid, registration).await
    } else {
        match ctx
            .call(owner, Call::CreateAccount { uuid, registration })
            .await
        {
            Ok(reply) => reply,
            Err(CallError::Busy(_)) => return Err(HttpError::new(503, "server busy, retry")),
            Err(CallError::NoAnswer(_)) => return Err(HttpError::new(503, "shard unavailable")),
        }
    };
    match reply {
        Reply::AccountCreated => Ok(Response::json(
            200,
            &RegistrationResponse {
                uuid: uuid.to_string(),
                device_id: 1,
            },
        )),
        Reply::Failed { status, message } => Err(HttpError::new(status, message)),
    }
}

/// Creates account `uuid` on its owner shard (this one): durable first, then
/// visible to logins.
pub async fn create_on_owner(ctx: &Rc<ShardCtx>, uuid: Uuid, registration: Registration) -> Reply {
    debug_assert_eq!(ctx.owner_of(&uuid), ctx.id);
    if ctx.accounts.borrow().get(&uuid).is_some() {
        return Reply::Failed {
            status: 409,
            message: "account exists".into(),
        };
    }
    let record = new_account_record(&registration, now_ms());
    let op = Op::Put {
        family: Family::Accounts,
        key: uuid.as_bytes().to_vec(),
        value: record.encode(),
    };
    match ctx.writer.write(vec![op]).await {
        Ok(()) => {
            ctx.accounts.borrow_mut().insert(uuid, record);
            ShardMetrics::inc(&ctx.stats().accounts);
            Reply::AccountCreated
        }
        Err(error) => {
            tracing::error!(shard = ctx.id, %error, "account write failed");
            Reply::Failed {
                status: 503,
                message: "storage unavailable".into(),
            }
        }
    }
}
