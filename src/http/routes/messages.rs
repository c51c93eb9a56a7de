//! The message routes (DESIGN.md sections 2 and 4):
//!
//! - `PUT /v1/messages/{uuid}`: send to every device of an account. Parse
//!   the body (400) and the sealed-sender key (401); apply on the
//!   recipient's owner shard ([`crate::calls::send_message`]); encode
//!   `{"needsSync"}`.
//! - `GET /v1/messages`: one page of the caller's stored envelopes, oldest
//!   first, with `more`.
//! - `DELETE /v1/messages/uuid/{serverGuid}`: acknowledge one envelope (204,
//!   also when it was already gone: deletes are idempotent).

use crate::accounts::AuthedDevice;
use crate::delivery::queue;
use crate::http::request::Request;
use crate::http::response::{HttpError, Response};
use crate::metrics::ShardMetrics;
use crate::protocol::base64;
use crate::protocol::envelope::{SendRequest, SendResponse};
use crate::protocol::payloads::parse_json;
use crate::shard::ShardCtx;
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
                .map_err(|_| HttpError::unauthorized("Unidentified-Access-Key is not Base64"))?,
        ),
        None => None,
    };
    if access_key.is_none() && caller.is_none() {
        return Err(HttpError::unauthorized("authentication or Unidentified-Access-Key required"));
    }
    let numbering = request.type_numbering();
    let send = parse_json::<SendRequest>(&mut request.body)
        .and_then(|send| send.validate_as(numbering))
        .map_err(|error| HttpError::bad_request(error.0))?;
    let sender = if access_key.is_some() { None } else { caller };
    if let Some(sender) = sender {
        let pair = (sender.account, destination);
        let taken = ctx.limiters.messages_per_pair.borrow_mut().take(&pair, 1, ctx.clock.now_ms());
        if let Err(limited) = taken {
            ShardMetrics::inc(&ctx.stats().rate_limited_total);
            let message =
                "too many messages to this account; retry later or answer a push challenge";
            return Err(HttpError::too_many_requests(message, limited.retry_after_s()));
        }
    }
    // Signal's rule: a sender with other devices must send them a sync copy,
    // unless this send is itself to the sender's own account.
    let needs_sync = sender.is_some_and(|sender| {
        sender.account != destination && ctx.accounts.has_linked_devices(&sender.account)
    });
    crate::calls::send_message(ctx, destination, sender, access_key, send).await??;
    Ok(Response::json(200, &SendResponse { needs_sync }))
}

/// Returns one page of the caller's queue.
pub fn fetch(ctx: &ShardCtx, caller: AuthedDevice) -> Result<Response, HttpError> {
    let page = queue::first_page(ctx, caller)?;
    crate::delivery::push::on_connected(ctx, caller);
    let json_bytes = page.messages.iter().map(|m| m.json.len() + 1).sum::<usize>();
    let mut body = Vec::with_capacity(32 + json_bytes);
    body.extend_from_slice(b"{\"messages\":[");
    for (index, message) in page.messages.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&message.json);
    }
    body.extend_from_slice(format!("],\"more\":{}}}", page.more).as_bytes());
    Ok(Response::json_bytes(200, body))
}

/// Deletes the caller's envelope `guid`.
pub async fn delete(
    ctx: &Rc<ShardCtx>,
    caller: AuthedDevice,
    guid: &str,
) -> Result<Response, HttpError> {
    let guid =
        Uuid::try_parse(guid).map_err(|_| HttpError::bad_request("serverGuid is not a UUID"))?;
    if let Some(receipt_to) = queue::delete_by_guid(ctx, caller, &guid).await? {
        crate::calls::send_delivery_receipts(ctx, caller, vec![receipt_to]);
    }
    Ok(Response::empty(204))
}
