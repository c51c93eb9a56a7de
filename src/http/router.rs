//! One router for plain HTTP and WebSocket-framed requests.
//!
//! [`resolve`] maps a method and path to a [`Route`] (404 for an unknown
//! path, 405 for a known path with the wrong method); [`dispatch`] runs the
//! route's handler with the caller's identity and turns any [`HttpError`]
//! into its JSON error response. Handlers live one per file in
//! [`crate::http::routes`].

use crate::accounts::AuthedDevice;
use crate::http::request::Request;
use crate::http::response::{HttpError, Response};
use crate::http::routes;
use crate::metrics::ShardMetrics;
use crate::shard::ShardCtx;
use crate::store::accounts::PushProvider;
use std::rc::Rc;
use uuid::Uuid;

/// Every route this server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /health`
    Health,
    /// `GET /v1/keepalive`
    Keepalive,
    /// `PUT /v1/accounts`
    RegisterAccount,
    /// `GET /v1/devices`
    ListDevices,
    /// `PUT /v1/messages/{uuid}`
    SendMessage(Uuid),
    /// `GET /v1/messages`
    FetchMessages,
    /// `GET /v1/devices/provisioning/code`
    LinkCode,
    /// `PUT /v1/devices/link`
    LinkDevice,
    /// `DELETE /v1/messages/uuid/{serverGuid}`
    DeleteMessage(String),
    /// `PUT /v1/typing/{uuid}`
    Typing(Uuid),
    /// `PUT /v1/receipts/{uuid}`
    Receipt(Uuid),
    /// `PUT /v1/stories`
    Stories,
    /// `PUT /v1/provisioning/{uuid}`
    Provision(Uuid),
    /// `DELETE /v1/devices/{id}`
    UnlinkDevice(u32),
    /// `PUT /v1/accounts/discoverable`
    SetDiscoverable,
    /// `DELETE /v1/accounts/discoverable`
    ClearDiscoverable,
    /// `PUT /v1/directory/lookup`
    DirectoryLookup,
    /// `PUT /v1/accounts/apn` or `/gcm`
    SetPushToken(PushProvider),
    /// `DELETE /v1/accounts/apn` or `/gcm`
    ClearPushToken(PushProvider),
    /// `POST /v1/challenge/push`
    RequestChallengePush,
    /// `PUT /v1/challenge`
    AnswerChallenge,
    /// `POST /v1/verification/session`
    CreateVerificationSession,
    /// `PATCH /v1/verification/session/{id}`
    UpdateVerificationSession(Uuid),
}

/// Maps a request line to its route.
pub fn resolve(method: &str, path: &str) -> Result<Route, HttpError> {
    let trimmed = if path.len() > 1 { path.trim_end_matches('/') } else { path };
    let (route, allowed) = match trimmed {
        "/health" => (Route::Health, "GET"),
        "/v1/keepalive" => (Route::Keepalive, "GET"),
        "/v1/accounts" => (Route::RegisterAccount, "PUT"),
        "/v1/devices" => (Route::ListDevices, "GET"),
        "/v1/messages" => (Route::FetchMessages, "GET"),
        "/v1/devices/provisioning/code" => (Route::LinkCode, "GET"),
        "/v1/devices/link" => (Route::LinkDevice, "PUT"),
        "/v1/stories" => (Route::Stories, "PUT"),
        "/v1/directory/lookup" => (Route::DirectoryLookup, "PUT"),
        "/v1/challenge/push" => (Route::RequestChallengePush, "POST"),
        "/v1/challenge" => (Route::AnswerChallenge, "PUT"),
        "/v1/verification/session" => (Route::CreateVerificationSession, "POST"),
        other if other.starts_with("/v1/verification/session/") => {
            let id = Uuid::try_parse(&other["/v1/verification/session/".len()..]);
            let id = id.map_err(|_| HttpError::not_found(format!("no route for {path}")))?;
            (Route::UpdateVerificationSession(id), "PATCH")
        }
        "/v1/accounts/discoverable" => match method {
            "DELETE" => (Route::ClearDiscoverable, "DELETE"),
            _ => (Route::SetDiscoverable, "PUT"),
        },
        "/v1/accounts/apn" | "/v1/accounts/gcm" => {
            let provider =
                if trimmed.ends_with("apn") { PushProvider::Apn } else { PushProvider::Fcm };
            match method {
                "DELETE" => (Route::ClearPushToken(provider), "DELETE"),
                _ => (Route::SetPushToken(provider), "PUT"),
            }
        }
        other
            if other.starts_with("/v1/typing/")
                || other.starts_with("/v1/receipts/")
                || other.starts_with("/v1/provisioning/") =>
        {
            resolve_to_account(other, path)?
        }
        other if other.starts_with("/v1/devices/") => {
            let id = other["/v1/devices/".len()..].parse::<u32>();
            let id = id.map_err(|_| HttpError::not_found(format!("no route for {path}")))?;
            (Route::UnlinkDevice(id), "DELETE")
        }
        other => match other.strip_prefix("/v1/messages/") {
            Some(rest) => match rest.strip_prefix("uuid/") {
                Some(guid) if !guid.contains('/') => {
                    (Route::DeleteMessage(guid.to_string()), "DELETE")
                }
                _ => {
                    let uuid = Uuid::try_parse(rest)
                        .map_err(|_| HttpError::new(404, format!("no route for {path}")))?;
                    (Route::SendMessage(uuid), "PUT")
                }
            },
            None => return Err(HttpError::new(404, format!("no route for {path}"))),
        },
    };
    if method != allowed {
        return Err(HttpError::new(405, format!("{path} takes {allowed}, not {method}")));
    }
    Ok(route)
}

/// The `PUT` routes that end in a UUID (404 for a bad UUID).
fn resolve_to_account(trimmed: &str, path: &str) -> Result<(Route, &'static str), HttpError> {
    let not_found = || HttpError::not_found(format!("no route for {path}"));
    type MakeRoute = fn(Uuid) -> Route;
    let routes: [(&str, MakeRoute); 3] = [
        ("/v1/typing/", Route::Typing),
        ("/v1/receipts/", Route::Receipt),
        ("/v1/provisioning/", Route::Provision),
    ];
    let (route, rest) = routes
        .iter()
        .find_map(|(prefix, route)| Some((route, trimmed.strip_prefix(prefix)?)))
        .ok_or_else(not_found)?;
    let uuid = Uuid::try_parse(rest).map_err(|_| not_found())?;
    Ok((route(uuid), "PUT"))
}

/// The authenticated caller, or 401.
pub fn require_caller(caller: Option<AuthedDevice>) -> Result<AuthedDevice, HttpError> {
    caller.ok_or_else(|| HttpError::unauthorized("authentication required"))
}

/// Routes and handles one request.
pub async fn dispatch(
    ctx: &Rc<ShardCtx>,
    caller: Option<AuthedDevice>,
    request: Request,
) -> Response {
    ShardMetrics::inc(&ctx.stats().requests_total);
    let started = std::time::Instant::now();
    let resolved = resolve(&request.method, &request.path);
    let is_send = matches!(resolved, Ok(Route::SendMessage(_)));
    let result = match resolved {
        Ok(route) => handle(ctx, caller, route, request).await,
        Err(error) => Err(error),
    };
    let response = result.unwrap_or_else(Response::from);
    let stats = ctx.stats();
    if response.status >= 400 {
        ShardMetrics::inc(&stats.requests_failed_total);
    }
    let elapsed_us = started.elapsed().as_micros() as u64;
    stats.histograms.request_seconds.record_us(elapsed_us);
    if is_send {
        stats.histograms.send_request_seconds.record_us(elapsed_us);
    }
    response
}

/// Every route's future but the send's is boxed: `handle` holds only the
/// largest inline, and the rare routes' kilobytes of state no longer ride
/// along in every request's task.
async fn handle(
    ctx: &Rc<ShardCtx>,
    caller: Option<AuthedDevice>,
    route: Route,
    request: Request,
) -> Result<Response, HttpError> {
    match route {
        Route::Health => Ok(routes::health::handle(ctx)),
        Route::Keepalive => Ok(routes::keepalive::handle()),
        Route::RegisterAccount => Box::pin(routes::accounts::handle(ctx, request)).await,
        Route::ListDevices => routes::devices::handle(ctx, require_caller(caller)?),
        Route::SendMessage(destination) => {
            routes::messages::send(ctx, caller, destination, request).await
        }
        Route::FetchMessages => routes::messages::fetch(ctx, require_caller(caller)?),
        Route::LinkCode => routes::link::code(ctx, require_caller(caller)?),
        Route::LinkDevice => Box::pin(routes::link::link(ctx, request)).await,
        Route::DeleteMessage(guid) => {
            Box::pin(routes::messages::delete(ctx, require_caller(caller)?, &guid)).await
        }
        Route::Typing(destination) => {
            Box::pin(routes::typing::handle(ctx, require_caller(caller)?, destination, request))
                .await
        }
        Route::Receipt(destination) => {
            Box::pin(routes::receipts::handle(ctx, require_caller(caller)?, destination, request))
                .await
        }
        Route::Stories => {
            Box::pin(routes::stories::handle(ctx, require_caller(caller)?, request)).await
        }
        Route::UnlinkDevice(id) => {
            Box::pin(routes::devices::unlink(ctx, require_caller(caller)?, id)).await
        }
        Route::Provision(address) => {
            Box::pin(routes::provisioning::handle(ctx, require_caller(caller)?, address, request))
                .await
        }
        Route::SetDiscoverable => {
            Box::pin(routes::directory::set(ctx, require_caller(caller)?, request)).await
        }
        Route::ClearDiscoverable => {
            Box::pin(routes::directory::clear(ctx, require_caller(caller)?)).await
        }
        Route::DirectoryLookup => {
            Box::pin(routes::directory::lookup(ctx, require_caller(caller)?, request)).await
        }
        Route::SetPushToken(provider) => {
            Box::pin(routes::push_tokens::set(ctx, require_caller(caller)?, provider, request))
                .await
        }
        Route::ClearPushToken(provider) => {
            Box::pin(routes::push_tokens::clear(ctx, require_caller(caller)?, provider)).await
        }
        Route::RequestChallengePush => {
            routes::challenge::request_push(ctx, require_caller(caller)?)
        }
        Route::AnswerChallenge => routes::challenge::answer(ctx, require_caller(caller)?, request),
        Route::CreateVerificationSession => {
            Box::pin(routes::verification::create(ctx, request)).await
        }
        Route::UpdateVerificationSession(id) => {
            Box::pin(routes::verification::update(ctx, id, request)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_resolve_with_or_without_trailing_slash() {
        assert_eq!(resolve("GET", "/health"), Ok(Route::Health));
        assert_eq!(resolve("PUT", "/v1/accounts/"), Ok(Route::RegisterAccount));
        assert_eq!(resolve("GET", "/v1/devices"), Ok(Route::ListDevices));
    }

    #[test]
    fn unknown_path_is_404_and_wrong_verb_is_405() {
        assert_eq!(resolve("GET", "/nope").unwrap_err().status, 404);
        assert_eq!(resolve("GET", "/").unwrap_err().status, 404);
        assert_eq!(resolve("DELETE", "/v1/accounts").unwrap_err().status, 405);
        assert_eq!(resolve("get", "/health").unwrap_err().status, 405);
    }

    #[test]
    fn message_routes_carry_their_parameters() {
        let id = Uuid::new_v4();
        assert_eq!(resolve("PUT", &format!("/v1/messages/{id}")), Ok(Route::SendMessage(id)));
        assert_eq!(resolve("GET", "/v1/messages"), Ok(Route::FetchMessages));
        assert_eq!(
            resolve("DELETE", "/v1/messages/uuid/abc"),
            Ok(Route::DeleteMessage("abc".into()))
        );
        assert_eq!(resolve("PUT", "/v1/messages/not-a-uuid").unwrap_err().status, 404);
        assert_eq!(resolve("GET", &format!("/v1/messages/{id}")).unwrap_err().status, 405);
    }

    #[test]
    fn typing_receipt_and_story_routes() {
        let id = Uuid::new_v4();
        assert_eq!(resolve("PUT", &format!("/v1/typing/{id}")), Ok(Route::Typing(id)));
        assert_eq!(resolve("PUT", &format!("/v1/receipts/{id}/")), Ok(Route::Receipt(id)));
        assert_eq!(resolve("PUT", "/v1/stories"), Ok(Route::Stories));
        assert_eq!(resolve("PUT", "/v1/typing/nope").unwrap_err().status, 404);
        assert_eq!(resolve("GET", &format!("/v1/receipts/{id}")).unwrap_err().status, 405);
        assert_eq!(resolve("POST", "/v1/stories").unwrap_err().status, 405);
        assert_eq!(resolve("DELETE", "/v1/devices/2"), Ok(Route::UnlinkDevice(2)));
        assert_eq!(resolve("DELETE", "/v1/devices/two").unwrap_err().status, 404);
        assert_eq!(resolve("PUT", "/v1/devices/2").unwrap_err().status, 405);
        assert_eq!(resolve("PUT", "/v1/devices/link"), Ok(Route::LinkDevice));
    }

    #[test]
    fn discovery_routes() {
        assert_eq!(resolve("PUT", "/v1/accounts/discoverable"), Ok(Route::SetDiscoverable));
        assert_eq!(resolve("DELETE", "/v1/accounts/discoverable/"), Ok(Route::ClearDiscoverable));
        assert_eq!(resolve("POST", "/v1/accounts/discoverable").unwrap_err().status, 405);
        assert_eq!(resolve("PUT", "/v1/directory/lookup"), Ok(Route::DirectoryLookup));
        assert_eq!(resolve("GET", "/v1/directory/lookup").unwrap_err().status, 405);
        assert_eq!(resolve("PUT", "/v1/accounts/apn"), Ok(Route::SetPushToken(PushProvider::Apn)));
        let clear = Route::ClearPushToken(PushProvider::Fcm);
        assert_eq!(resolve("DELETE", "/v1/accounts/gcm"), Ok(clear));
        assert_eq!(resolve("GET", "/v1/accounts/gcm").unwrap_err().status, 405);
    }
}

#[cfg(test)]
mod future_size_tests {
    fn size_of_future<A, B, C, F: std::future::Future>(_: fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every client request's task holds this future; it was 4,096 bytes
    /// before the rare routes and the shard calls were boxed, and moving
    /// it cost 6 % of the relay's CPU. Guard against regrowth.
    #[test]
    fn a_request_future_stays_small() {
        let bytes = size_of_future(super::dispatch);
        assert!(bytes <= 2_048, "dispatch future is {bytes} bytes");
    }
}
