//! Contact discovery: `PUT`/`DELETE /v1/accounts/discoverable` and
//! `PUT /v1/directory/lookup`.
//!
//! - `PUT /v1/accounts/discoverable` `{"identifier"}` makes the caller's
//!   account discoverable by that identifier only (200, empty); 409 when
//!   another account holds it; 400 for a bad identifier.
//! - `DELETE /v1/accounts/discoverable` makes it discoverable by nothing
//!   (200, also when it was not).
//! - `PUT /v1/directory/lookup` `{"hashes"}` answers
//!   `{"contacts":[{"hash","uuid"}]}` for the discoverable matches, in
//!   request order. At most `limits.directory_lookup_hashes_max` hashes (400
//!   over it); each hash costs one permit of the account's
//!   `rate_limits.directory_lookup` budget (429 with `Retry-After` when spent;
//!   a refused lookup costs nothing).

use crate::accounts::AuthedDevice;
use crate::directory::identifier_hash;
use crate::discovery;
use crate::http::request::Request;
use crate::http::response::{HttpError, Response};
use crate::metrics::ShardMetrics;
use crate::protocol::discovery::{Contact, DiscoverableRequest, LookupRequest, LookupResponse};
use crate::protocol::payloads::parse_json;
use crate::shard::ShardCtx;
use std::rc::Rc;

/// `PUT /v1/accounts/discoverable`.
pub async fn set(
    ctx: &Rc<ShardCtx>,
    caller: AuthedDevice,
    mut request: Request,
) -> Result<Response, HttpError> {
    let identifier = parse_json::<DiscoverableRequest>(&mut request.body)
        .and_then(DiscoverableRequest::validate)
        .map_err(|error| HttpError::bad_request(error.0))?;
    discovery::set_discoverable(ctx, caller, Some(identifier_hash(&identifier))).await?;
    Ok(Response::empty(200))
}

/// `DELETE /v1/accounts/discoverable`.
pub async fn clear(ctx: &Rc<ShardCtx>, caller: AuthedDevice) -> Result<Response, HttpError> {
    discovery::set_discoverable(ctx, caller, None).await?;
    Ok(Response::empty(200))
}

/// `PUT /v1/directory/lookup`.
pub async fn lookup(
    ctx: &Rc<ShardCtx>,
    caller: AuthedDevice,
    mut request: Request,
) -> Result<Response, HttpError> {
    let hashes_max = ctx.config.limits.directory_lookup_hashes_max;
    let hashes = parse_json::<LookupRequest>(&mut request.body)
        .and_then(|lookup| lookup.validate(hashes_max))
        .map_err(|error| HttpError::bad_request(error.0))?;
    let cost = hashes.len() as u64;
    let taken =
        ctx.limiters.directory_lookup.borrow_mut().take(&caller.account, cost, ctx.clock.now_ms());
    if let Err(limited) = taken {
        ShardMetrics::inc(&ctx.stats().rate_limited_total);
        let message = "contact lookup budget spent; retry later";
        return Err(HttpError::too_many_requests(message, limited.retry_after_s()));
    }
    let decoded: Vec<_> = hashes.iter().map(|lookup| lookup.hash).collect();
    let holders = discovery::lookup(ctx, &decoded).await?;
    ShardMetrics::add(&ctx.stats().directory_lookup_hashes_total, cost);
    let contacts = hashes
        .into_iter()
        .zip(holders)
        .filter_map(|(lookup, holder)| {
            Some(Contact { hash: lookup.text, uuid: holder?.to_string() })
        })
        .collect();
    Ok(Response::json(200, &LookupResponse { contacts }))
}
