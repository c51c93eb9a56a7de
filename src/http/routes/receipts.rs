//! `PUT /v1/receipts/{uuid}`: a delivery or read receipt, stored for every
//! device of the destination and delivered in order with its envelopes as
//! `PUT /api/v1/receipt` (with `sourceUuid`, `sourceDevice`). 200 once
//! durable; 404 unknown account; 400 malformed or over
//! `receipt_timestamps_max` timestamps.

use crate::accounts::AuthedDevice;
use crate::http::request::Request;
use crate::http::response::{HttpError, Response};
use crate::protocol::items::{FanoutItem, ReceiptRequest};
use crate::protocol::payloads::parse_json;
use crate::shard::ShardCtx;
use std::rc::Rc;
use uuid::Uuid;

/// Stores the caller's receipt for `destination`.
pub async fn handle(
    ctx: &Rc<ShardCtx>,
    caller: AuthedDevice,
    destination: Uuid,
    mut request: Request,
) -> Result<Response, HttpError> {
    let timestamps_max = ctx.config.limits.receipt_timestamps_max;
    let receipt = parse_json::<ReceiptRequest>(&mut request.body)
        .and_then(|receipt| receipt.validate(timestamps_max))
        .map_err(|error| HttpError::bad_request(error.0))?;
    crate::calls::fan_out(ctx, destination, caller, FanoutItem::Receipt(receipt)).await??;
    Ok(Response::empty(200))
}
