//! Parsing an HTTP/1.1 request head (request line and headers).
//!
//! Invariants: a head longer than `header_bytes_max` or with more than
//! `header_count_max` headers is refused (431) without being buffered
//! further; header values must be UTF-8; a body is framed only by one
//! consistent `Content-Length` (chunked bodies are refused with 501, since
//! no Signal client sends them).

use crate::config::Limits;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Method, as sent (upper case by convention).
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Query string without the `?` (empty if none).
    pub query: String,
    /// Headers with lower-cased names, in order.
    pub headers: Vec<(String, String)>,
    /// Body length from `Content-Length` (0 if absent).
    pub content_length: usize,
    /// HTTP/1.0, or `Connection: close`: close after answering.
    pub close_after: bool,
}

/// Why a head was refused; each maps to one status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// 431: too long or too many headers.
    #[error("request header fields too large")]
    TooLarge,
    /// 400: not HTTP.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// 501: a body framing we do not support.
    #[error("transfer-encoding is not supported; send Content-Length")]
    UnsupportedFraming,
}

impl HeadError {
    /// The HTTP status answering this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::TooLarge => 431,
            Self::Malformed(_) => 400,
            Self::UnsupportedFraming => 501,
        }
    }
}

impl Head {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// True for a WebSocket upgrade request.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.header("upgrade").is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
    }
}

/// Parses the head at the start of `buf`. `Ok(None)`: incomplete, read more.
/// `Ok(Some((head, len)))`: the head took `len` bytes.
pub fn parse(buf: &[u8], limits: &Limits) -> Result<Option<(Head, usize)>, HeadError> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.header_count_max];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= limits.header_bytes_max {
                Err(HeadError::TooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed("not an HTTP/1.1 request")),
    };
    if len > limits.header_bytes_max {
        return Err(HeadError::TooLarge);
    }
    let method = request.method.ok_or(HeadError::Malformed("no method"))?.to_string();
    let target = request.path.ok_or(HeadError::Malformed("no path"))?;
    if !target.starts_with('/') {
        return Err(HeadError::Malformed("request target must be a path"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let version = request.version.ok_or(HeadError::Malformed("no version"))?;

    let mut parsed = Vec::with_capacity(request.headers.len());
    let mut content_length: Option<usize> = None;
    let mut close_after = version == 0;
    for header in request.headers.iter() {
        let name = header.name.to_ascii_lowercase();
        let value = std::str::from_utf8(header.value)
            .map_err(|_| HeadError::Malformed("header value is not UTF-8"))?
            .trim()
            .to_string();
        match name.as_str() {
            "content-length" => {
                let length: usize =
                    value.parse().map_err(|_| HeadError::Malformed("bad Content-Length"))?;
                if content_length.is_some_and(|seen| seen != length) {
                    return Err(HeadError::Malformed("conflicting Content-Length"));
                }
                content_length = Some(length);
            }
            "transfer-encoding" => return Err(HeadError::UnsupportedFraming),
            "connection"
                if value.split(',').any(|token| token.trim().eq_ignore_ascii_case("close")) =>
            {
                close_after = true;
            }
            _ => {}
        }
        parsed.push((name, value));
    }
    let head = Head {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers: parsed,
        content_length: content_length.unwrap_or(0),
        close_after,
    };
    Ok(Some((head, len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { header_bytes_max: 512, header_count_max: 8, ..Limits::default() }
    }

    #[test]
    fn parses_a_request_with_query_and_body_length() {
        let text = b"PUT /v1/accounts?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\nrest";
        let (head, len) = parse(text, &limits()).unwrap().unwrap();
        assert_eq!(head.method, "PUT");
        assert_eq!(head.path, "/v1/accounts");
        assert_eq!(head.query, "x=1");
        assert_eq!(head.content_length, 12);
        assert_eq!(&text[len..], b"rest");
        assert!(!head.close_after);
    }

    #[test]
    fn partial_head_asks_for_more() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost:", &limits()), Ok(None));
    }

    #[test]
    fn hostile_heads_are_refused_with_the_right_status() {
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(600));
        let many: String = (0..20).map(|i| format!("H{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (long.into_bytes(), 431),
            (many.into_bytes(), 431),
            (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n".to_vec(), 400),
            (b"GET http://x/ HTTP/1.1\r\n\r\n".to_vec(), 400),
            (b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(), 400),
            (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec(), 400),
            (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), 501),
            (b"GET / HTTP/1.1\r\nX: \xff\xfe\r\n\r\n".to_vec(), 400),
            (b"GET / HTTP/2.0\r\n\r\n".to_vec(), 400),
        ];
        for (text, status) in cases {
            let error = parse(&text, &limits()).unwrap_err();
            assert_eq!(error.status(), status, "{:?}", String::from_utf8_lossy(&text));
        }
    }

    #[test]
    fn http10_and_connection_close_close_after() {
        let (head, _) = parse(b"GET / HTTP/1.0\r\n\r\n", &limits()).unwrap().unwrap();
        assert!(head.close_after);
        let (head, _) =
            parse(b"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n", &limits())
                .unwrap()
                .unwrap();
        assert!(head.close_after);
    }
}
