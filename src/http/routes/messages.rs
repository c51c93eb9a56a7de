//! The message routes (DESIGN.md sections 2 and 4):
//!
//! - `PUT /v1/messages/{uuid}`: send to every device of an account. Parse
//!   the body (400) and the sealed-sender key (401); apply on the
//!   recipient's owner shard ([`crate::delivery::ingest`]), through the ring
//!   when that is another shard; encode `{"needsSync"}`.
//! - `GET /v1/messages`: one page of the caller's stored envelopes, oldest
//!   first, with `more`.
//! - `DELETE /v1/messages/uuid/{serverGuid}`: acknowledge one envelope (204,
//!   also when it was already gone: deletes are idempotent).

use crate::accounts::AuthedDevice;
use crate::delivery::ingest::accept_on_owner;
use crate::delivery::retention::count_removed;
use crate::http::request::Request;
use crate::http::response::{HttpError, Response};
use crate::http::routes::accounts::call_error;
use crate::protocol::base64;
use crate::protocol::envelope::{SendRequest, SendResponse};
use crate::protocol::payloads::parse_json;
use crate::shard::msg::Call;
use crate::shard::runtime::ShardCtx;
use crate::store::messages::{find_by_guid, read_page};
use crate::store::writer::{Family, Op};
use std::rc::Rc;
use uuid::Uuid;

/// Sends to `destination`.
pub async fn send(
    ctx: &Rc<ShardCtx>,
    caller: Option<AuthedDevice>,
    destination: Uuid,
    mut request: Request,
) -> Result<Response, HttpError> {
    let access_key = match request.header("unidentified-access-key") {
        Some(text) => Some(
            base64::decode(text.as_bytes())
                .map_err(|_| HttpError::new(401, "Unidentified-Access-Key is not Base64"))?,
        ),
        None => None,
    };
    if access_key.is_none() && caller.is_none() {
        return Err(HttpError::new(401, "authentication or Unidentified-Access-Key required"));
    }
    let send = parse_json::<SendRequest>(&mut request.body)
        .and_then(SendRequest::validate)
        .map_err(|error| HttpError::new(400, error.0))?;
    let sender = if access_key.is_some() { None } else { caller };
    // Signal's rule: a sender with other devices must send them a sync copy,
    // unless this send is itself to the sender's own account.
    let needs_sync = sender.is_some_and(|sender| {
        sender.account != destination
            && ctx.accounts.borrow().get(&sender.account).is_some_and(|a| a.devices.len() > 1)
    });
    let owner = ctx.owner_of(&destination);
    let response = if owner == ctx.id {
        accept_on_owner(ctx, destination, sender, access_key, send).await
    } else {
        let call = Call::SendMessage { destination, sender, access_key, send };
        ctx.call(owner, call).await.map_err(call_error)?
    };
    if response.status == 200 {
        Ok(Response::json(200, &SendResponse { needs_sync }))
    } else {
        Ok(response)
    }
}

/// Returns one page of the caller's queue.
pub fn fetch(ctx: &ShardCtx, caller: AuthedDevice) -> Result<Response, HttpError> {
    let limit = ctx.config.limits.message_page_len_max;
    let (page, more) =
        read_page(&ctx.store, ctx.id, &caller.account, caller.device_id, None, limit)
            .map_err(|error| HttpError::new(503, error.to_string()))?;
    let mut body = Vec::with_capacity(32 + page.iter().map(|m| m.json.len() + 1).sum::<usize>());
    body.extend_from_slice(b"{\"messages\":[");
    for (index, message) in page.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&message.json);
    }
    body.extend_from_slice(format!("],\"more\":{more}}}").as_bytes());
    Ok(Response { status: 200, content_type: "application/json", body })
}

/// Deletes the caller's envelope `guid`.
pub async fn delete(
    ctx: &ShardCtx,
    caller: AuthedDevice,
    guid: &str,
) -> Result<Response, HttpError> {
    let guid =
        Uuid::try_parse(guid).map_err(|_| HttpError::new(400, "serverGuid is not a UUID"))?;
    let found = find_by_guid(&ctx.store, ctx.id, &caller.account, caller.device_id, &guid)
        .map_err(|error| HttpError::new(503, error.to_string()))?;
    if let Some(key) = found {
        ctx.writer
            .write_lazy(vec![Op::Delete { family: Family::Messages, key }])
            .await
            .map_err(|error| HttpError::new(503, error.to_string()))?;
        count_removed(ctx, caller, 1);
    }
    Ok(Response::empty(204))
}
