//! `GET /v1/keepalive`: a client's liveness probe, answered 200 with no body
//! (over a WebSocket it also counts as traffic for the idle timeout).

use crate::http::response::Response;

/// Answers the keepalive.
pub fn handle() -> Response {
    Response::empty(200)
}
