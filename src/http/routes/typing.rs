//! `PUT /v1/typing/{uuid}`: a typing indicator, live to the destination's
//! connected devices as `PUT /api/v1/typing`; never stored, pushed or
//! redelivered. 200 whether or not any device was connected; 404 for an
//! unknown account; 400 for a malformed body.

use crate::accounts::AuthedDevice;
use crate::http::request::Request;
use crate::http::response::{HttpError, Response};
use crate::protocol::items::{FanoutItem, TypingRequest};
use crate::protocol::payloads::parse_json;
use crate::shard::ShardCtx;
use std::rc::Rc;
use uuid::Uuid;

/// Sends the caller's typing indicator to `destination`.
pub async fn handle(
    ctx: &Rc<ShardCtx>,
    caller: AuthedDevice,
    destination: Uuid,
    mut request: Request,
) -> Result<Response, HttpError> {
    let event = parse_json::<TypingRequest>(&mut request.body)
        .and_then(TypingRequest::validate)
        .map_err(|error| HttpError::bad_request(error.0))?;
    crate::calls::fan_out(ctx, destination, caller, FanoutItem::Typing(event)).await??;
    Ok(Response::empty(200))
}
