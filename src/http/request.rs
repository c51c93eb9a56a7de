//! The request every handler sees, from plain HTTP or a WebSocket frame.
//!
//! Invariant: `body` is at most `limits.body_bytes_max` bytes (enforced by
//! whoever built the request) and header names are lower case.

use crate::http::head::Head;
use crate::protocol::envelope::TypeNumbering;
use std::net::IpAddr;

/// User-Agent parts of the stock Signal clients (the apps and libsignal).
const STOCK_CLIENT_AGENTS: [&str; 4] =
    ["libsignal/", "Signal-Android/", "Signal-Desktop/", "Signal-iOS/"];

/// True when `user_agent` names a stock Signal client.
pub fn is_stock_client(user_agent: Option<&str>) -> bool {
    user_agent.is_some_and(|agent| STOCK_CLIENT_AGENTS.iter().any(|part| agent.contains(part)))
}

/// One request to the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method, upper case.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Query string without `?`.
    pub query: String,
    /// Headers, names lower case.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// The client's address (plain HTTP only; `None` for framed requests,
    /// whose connection was authenticated as a device).
    pub peer: Option<IpAddr>,
    /// Envelope types in the body use Signal's numbering (a request from a
    /// protobuf-framed connection or a stock Signal client), not the spec's.
    pub signal_numbering: bool,
}

impl Request {
    /// A request from a parsed HTTP head and its body.
    pub fn from_head(head: Head, body: Vec<u8>, peer: Option<IpAddr>) -> Self {
        let signal_numbering = is_stock_client(head.header("user-agent"));
        Self {
            signal_numbering,
            method: head.method,
            path: head.path,
            query: head.query,
            headers: head.headers,
            body,
            peer,
        }
    }

    /// The numbering of the envelope types in a send's body.
    pub fn type_numbering(&self) -> TypeNumbering {
        if self.signal_numbering {
            TypeNumbering::Signal
        } else {
            TypeNumbering::Spec
        }
    }

    /// A request from a WebSocket frame's fields (`path` may carry a query);
    /// `signal_numbering` for a protobuf-framed connection.
    pub fn from_frame(
        verb: String,
        path: &str,
        headers: &[String],
        body: Vec<u8>,
        signal_numbering: bool,
    ) -> Self {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let headers = headers
            .iter()
            .filter_map(|header| header.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
            .collect();
        let (path, query) = (path.to_string(), query.to_string());
        Self { method: verb, path, query, headers, body, peer: None, signal_numbering }
    }

    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_request_splits_query_and_lowercases_headers() {
        let request = Request::from_frame(
            "GET".into(),
            "/v1/messages?limit=3",
            &["X-Thing: Value ".to_string(), "garbage".to_string()],
            vec![],
            false,
        );
        assert_eq!(request.path, "/v1/messages");
        assert_eq!(request.query, "limit=3");
        assert_eq!(request.header("x-thing"), Some("Value"));
        assert_eq!(request.headers.len(), 1);
    }
}
