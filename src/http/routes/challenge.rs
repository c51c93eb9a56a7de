//! Rate-limit push challenges: a device whose messages are rate limited
//! proves it is a real device and the limits are lifted.
//!
//! - `POST /v1/challenge/push`: sends the caller's device a
//!   `rateLimitChallenge` push carrying a random single-use token (200);
//!   404 when the device has no push token.
//! - `PUT /v1/challenge` `{"type": "rateLimitPushChallenge", "challenge"}`:
//!   the token from that push lifts the caller's account's message limits
//!   (200); a wrong, used or expired token is 428 (counted in
//!   `push_challenges_failed_total`); another type or a malformed body 400.

use crate::accounts::AuthedDevice;
use crate::http::request::Request;
use crate::http::response::{HttpError, Response};
use crate::metrics::ShardMetrics;
use crate::protocol::payloads::parse_json;
use crate::protocol::push::{ChallengeAnswer, PushKind, PushPayload};
use crate::push::PushJob;
use crate::shard::ShardCtx;

/// `POST /v1/challenge/push`.
pub fn request_push(ctx: &ShardCtx, caller: AuthedDevice) -> Result<Response, HttpError> {
    let Some(token) = ctx.accounts.push_token(&caller) else {
        return Err(HttpError::not_found("this device has no push token"));
    };
    let now_ms = ctx.clock.now_ms();
    let challenge = ctx.push.rate_limit_challenges.borrow_mut().issue(caller, now_ms);
    let payload = PushPayload::challenge(PushKind::RateLimitChallenge, challenge);
    let job = PushJob::new(ctx.id, Some(caller), token.provider, token.token, payload, now_ms);
    ctx.push.link.queue(job);
    ctx.push.link.flush(ctx.stats());
    Ok(Response::empty(200))
}

/// `PUT /v1/challenge`.
pub fn answer(
    ctx: &ShardCtx,
    caller: AuthedDevice,
    mut request: Request,
) -> Result<Response, HttpError> {
    let answer = parse_json::<ChallengeAnswer>(&mut request.body)
        .map_err(|error| HttpError::bad_request(error.0))?;
    if answer.kind != "rateLimitPushChallenge" {
        return Err(HttpError::bad_request("type must be rateLimitPushChallenge"));
    }
    let now_ms = ctx.clock.now_ms();
    let answered =
        ctx.push.rate_limit_challenges.borrow_mut().answer(&caller, &answer.challenge, now_ms);
    if let Err(refused) = answered {
        ShardMetrics::inc(&ctx.stats().push_challenges_failed_total);
        return Err(HttpError::new(428, refused.to_string()));
    }
    let account = caller.account;
    ctx.limiters.messages_per_pair.borrow_mut().clear_where(|(sender, _)| *sender == account);
    Ok(Response::empty(200))
}
