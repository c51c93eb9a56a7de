//! Verification sessions: registering with a real device instead of a
//! shared registration token.
//!
//! - `POST /v1/verification/session` `{"pushToken", "pushTokenType": "apn"|"fcm"}`
//!   (no credentials): opens a session on the shard owning its id and
//!   pushes a `challenge` to the token; answers 200 with the session state
//!   `{"id", "requestedInformation": ["pushChallenge"], "verified": false}`.
//!   400 for a malformed body or an unknown token type, 422 for a token of
//!   the wrong shape, 503 when the shard holds too many sessions.
//! - `PATCH /v1/verification/session/{id}` `{"pushChallenge"}`: 200 with
//!   `"verified": true` for the pushed token; 428 for a wrong or late one
//!   (counted); 404 for an unknown or expired session.
//!
//! A verified session id is then accepted once by `PUT /v1/accounts` as
//! `sessionId`, in place of the registration token.

use crate::http::request::Request;
use crate::http::response::{HttpError, Response};
use crate::metrics::ShardMetrics;
use crate::protocol::payloads::parse_json;
use crate::protocol::push::{
    ApnRegistration, GcmRegistration, VerificationSessionRequest, VerificationSessionState,
    VerificationSessionUpdate,
};
use crate::push::verification::VerifyRefused;
use crate::shard::msg::Call;
use crate::shard::ShardCtx;
use crate::store::accounts::PushProvider;
use std::rc::Rc;
use uuid::Uuid;

/// `POST /v1/verification/session`.
pub async fn create(ctx: &Rc<ShardCtx>, mut request: Request) -> Result<Response, HttpError> {
    let session = parse_json::<VerificationSessionRequest>(&mut request.body)
        .map_err(|error| HttpError::bad_request(error.0))?;
    let invalid = |error: crate::protocol::payloads::PayloadError| HttpError::new(422, error.0);
    let (provider, token) = match session.push_token_type.as_str() {
        "apn" => {
            let registration = ApnRegistration {
                apn_registration_id: session.push_token,
                voip_registration_id: None,
            };
            (PushProvider::Apn, registration.validate().map_err(invalid)?)
        }
        "fcm" => {
            let registration = GcmRegistration { gcm_registration_id: session.push_token };
            (PushProvider::Fcm, registration.validate().map_err(invalid)?)
        }
        _ => return Err(HttpError::bad_request("pushTokenType must be apn or fcm")),
    };
    let id = Uuid::new_v4();
    let call = Call::CreateVerification { id, provider, token };
    crate::calls::verification(ctx, id, call).await?.map_err(refused)?;
    Ok(Response::json(200, &VerificationSessionState::new(id.to_string(), false)))
}

/// `PATCH /v1/verification/session/{id}`.
pub async fn update(
    ctx: &Rc<ShardCtx>,
    id: Uuid,
    mut request: Request,
) -> Result<Response, HttpError> {
    let update = parse_json::<VerificationSessionUpdate>(&mut request.body)
        .map_err(|error| HttpError::bad_request(error.0))?;
    let call = Call::AnswerVerification { id, challenge: update.push_challenge };
    if let Err(error) = crate::calls::verification(ctx, id, call).await? {
        if matches!(error, VerifyRefused::Challenge(_)) {
            ShardMetrics::inc(&ctx.stats().push_challenges_failed_total);
        }
        return Err(refused(error));
    }
    Ok(Response::json(200, &VerificationSessionState::new(id.to_string(), true)))
}

/// The status of a refused session step.
pub fn refused(error: VerifyRefused) -> HttpError {
    let message = error.to_string();
    match error {
        VerifyRefused::NoSuchSession => HttpError::not_found(message),
        VerifyRefused::Challenge(_) => HttpError::new(428, message),
        VerifyRefused::NotVerified => HttpError::forbidden(message),
        VerifyRefused::Full => HttpError::unavailable(message),
    }
}
