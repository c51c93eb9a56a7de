//! `PUT /v1/provisioning/{uuid}` `{"body": base64}`: a primary device hands
//! a provisioning message to the new device's socket waiting at `uuid`
//! (through the rings when another shard owns the address). 204 as soon as
//! the message is handed to the waiting socket (as Signal answers; the new
//! device's own answer is not waited for); 404 when no socket waits there (gone, timed
//! out, used, never existed); 413 over 256 KiB; 400 malformed; 401 without
//! credentials.

use crate::accounts::AuthedDevice;
use crate::http::request::Request;
use crate::http::response::{HttpError, Response};
use crate::protocol::base64;
use crate::protocol::items::ProvisioningMessage;
use crate::protocol::payloads::parse_json;
use crate::provisioning::PROVISIONING_MESSAGE_BYTES_MAX;
use crate::shard::ShardCtx;
use std::rc::Rc;
use uuid::Uuid;

/// Delivers the caller's provisioning message to `address`.
pub async fn handle(
    ctx: &Rc<ShardCtx>,
    _caller: AuthedDevice,
    address: Uuid,
    mut request: Request,
) -> Result<Response, HttpError> {
    let message = parse_json::<ProvisioningMessage>(&mut request.body)
        .map_err(|error| HttpError::bad_request(error.0))?;
    if base64::decoded_len_max(message.body.len()) > PROVISIONING_MESSAGE_BYTES_MAX + 2 {
        return Err(HttpError::new(413, "provisioning message over 256 KiB"));
    }
    let body = base64::decode(message.body.as_bytes())
        .map_err(|_| HttpError::bad_request("body is not Base64"))?;
    if body.len() > PROVISIONING_MESSAGE_BYTES_MAX {
        return Err(HttpError::new(413, "provisioning message over 256 KiB"));
    }
    crate::calls::provision(ctx, address, body).await??;
    Ok(Response::empty(204))
}
