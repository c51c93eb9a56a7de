//! Responses and the one typed error every handler returns.
//!
//! Errors are answered as JSON `{"code", "message"}` with their status
//! (DESIGN.md section 2); [`HttpError`] is the single place a failure becomes
//! a status code.

use crate::protocol::payloads::{to_json, ErrorBody};
use serde::Serialize;

/// A response to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` of `body` (ignored when the body is empty).
    pub content_type: &'static str,
    /// Body bytes.
    pub body: Vec<u8>,
    /// `Retry-After` in seconds (429 and 503 answers that know when).
    pub retry_after_s: Option<u64>,
}

/// A failed request: its status and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct HttpError {
    /// HTTP status.
    pub status: u16,
    /// Message for the client.
    pub message: String,
    /// A JSON body the contract prescribes instead of `{"code", "message"}`
    /// (e.g. 409 `{missingDevices, extraDevices}`).
    pub body: Option<Vec<u8>>,
    /// `Retry-After` in seconds, when the client should wait that long.
    pub retry_after_s: Option<u64>,
}

impl HttpError {
    /// An error with `status` and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), body: None, retry_after_s: None }
    }

    /// An error answered with the JSON of `body` instead of the error body.
    pub fn with_body<T: Serialize>(status: u16, message: impl Into<String>, body: &T) -> Self {
        Self { status, message: message.into(), body: Some(to_json(body)), retry_after_s: None }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 401: credentials missing or wrong.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }

    /// 403: the caller may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    /// 404: nothing at this path.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// 429: over a rate limit; the client may retry after `retry_after_s`.
    pub fn too_many_requests(message: impl Into<String>, retry_after_s: u64) -> Self {
        Self { retry_after_s: Some(retry_after_s), ..Self::new(429, message) }
    }

    /// 503: busy or storage unavailable; the client retries.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, message)
    }
}

impl From<HttpError> for Response {
    fn from(error: HttpError) -> Self {
        let response = match error.body {
            Some(body) => Response::json_bytes(error.status, body),
            None => Response::error(error.status, &error.message),
        };
        Response { retry_after_s: error.retry_after_s, ..response }
    }
}

impl Response {
    /// A JSON body.
    pub fn json<T: Serialize>(status: u16, value: &T) -> Self {
        Self::json_bytes(status, to_json(value))
    }

    /// A body that is already JSON.
    pub fn json_bytes(status: u16, body: Vec<u8>) -> Self {
        Self { status, content_type: "application/json", body, retry_after_s: None }
    }

    /// No body.
    pub fn empty(status: u16) -> Self {
        Self::json_bytes(status, Vec::new())
    }

    /// The response's headers for a WebSocket frame, as (name, value).
    pub fn frame_header_pairs(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![("Content-Type", self.content_type.to_string())];
        if let Some(seconds) = self.retry_after_s {
            headers.push(("Retry-After", seconds.to_string()));
        }
        headers
    }

    /// The JSON error body `{"code", "message"}`.
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(status, &ErrorBody { code: status, message: message.to_string() })
    }

    /// Serializes as an HTTP/1.1 response.
    pub fn to_http(&self, close: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.body.len());
        out.extend_from_slice(
            format!(
                "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
                self.status,
                reason(self.status),
                self.body.len()
            )
            .as_bytes(),
        );
        if !self.body.is_empty() {
            out.extend_from_slice(format!("Content-Type: {}\r\n", self.content_type).as_bytes());
        }
        if let Some(seconds) = self.retry_after_s {
            out.extend_from_slice(format!("Retry-After: {seconds}\r\n").as_bytes());
        }
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// The reason phrase of a status.
pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_is_json_with_code_and_message() {
        let response = Response::from(HttpError::new(413, "too big"));
        assert_eq!(response.status, 413);
        assert_eq!(response.body, br#"{"code":413,"message":"too big"}"#);
        let http = String::from_utf8(response.to_http(true)).unwrap();
        assert!(http.starts_with("HTTP/1.1 413 Payload Too Large\r\n"));
        assert!(http.contains("Connection: close\r\n"));
        assert!(!http.contains("Retry-After"));
    }

    #[test]
    fn a_rate_limited_answer_says_when_to_retry() {
        let response = Response::from(HttpError::too_many_requests("slow down", 7));
        assert_eq!((response.status, response.retry_after_s), (429, Some(7)));
        let http = String::from_utf8(response.to_http(false)).unwrap();
        assert!(http.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
        assert!(http.contains("Retry-After: 7\r\n"));
        assert!(response.frame_header_pairs().contains(&("Retry-After", "7".to_string())));
    }
}
