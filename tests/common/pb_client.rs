//! A device's WebSocket client in Signal's protobuf framing, on the
//! hand-written codec of `pb.rs`: open a socket asking for a framing (query,
//! header or User-Agent), send requests and responses as binary frames,
//! read what the server sends, and collect a device's arrivals.
#![allow(dead_code)]

use crate::common::{Account, Server, Ws};
use crate::pb::{Envelope, Request, Response, WsMessage, TYPE_REQUEST, TYPE_RESPONSE};
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::{HeaderMap, HeaderName, HeaderValue};
use tungstenite::Message;

/// How long any read waits before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens `ws://server/{path_and_query}` with `headers`; the socket and the
/// headers of the 101 answer.
pub fn open(
    server: &Server,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<(Ws, HeaderMap), tungstenite::Error> {
    let url = format!("ws://{}{path_and_query}", server.addr());
    let mut request = url.into_client_request()?;
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("header name");
        request.headers_mut().append(name, HeaderValue::from_str(value).expect("header value"));
    }
    let (mut ws, response) = tungstenite::connect(request)?;
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = ws.get_mut() {
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    }
    Ok((ws, response.headers().clone()))
}

/// A device's socket asking for protobuf with `?framing=protobuf`, Basic
/// auth in a header, and `headers` besides.
pub fn connect(server: &Server, account: &Account, headers: &[(&str, &str)]) -> Ws {
    let basic = account.basic();
    let mut all = vec![("Authorization", basic.as_str())];
    all.extend_from_slice(headers);
    open(server, "/v1/websocket/?framing=protobuf", &all).expect("protobuf websocket").0
}

/// The next binary frame, decoded (pings and pongs skipped; any other kind
/// of message fails the test).
pub fn next(ws: &mut Ws) -> WsMessage {
    loop {
        match ws.read().expect("read frame") {
            Message::Binary(wire) => {
                return WsMessage::decode(&wire)
                    .unwrap_or_else(|error| panic!("server frame does not decode: {error}"))
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?} on a protobuf connection"),
        }
    }
}

/// The next server request (fails on anything else).
pub fn next_request(ws: &mut Ws) -> Request {
    let message = next(ws);
    assert_eq!(message.kind, Some(TYPE_REQUEST), "expected a request: {message:?}");
    assert!(message.response.is_none(), "a request carries no response: {message:?}");
    let request = message.request.expect("REQUEST has a request");
    assert!(request.id.is_some(), "server requests carry an id: {request:?}");
    request
}

pub fn send(ws: &mut Ws, message: &WsMessage) {
    ws.send(Message::binary(message.encode())).expect("send frame");
}

/// Answers server request `id` with `status`.
pub fn respond(ws: &mut Ws, id: u64, status: u32) {
    send(ws, &WsMessage::response(Response::new(id, status)));
}

/// Sends `request` (which has an id) and waits for its response; server
/// requests that come first are answered 200 and returned as arrivals.
pub fn call_seeing(ws: &mut Ws, request: Request) -> (Response, Vec<Arrival>) {
    let id = request.id.expect("a call has an id");
    send(ws, &WsMessage::request(request));
    let mut arrivals = Vec::new();
    loop {
        let message = next(ws);
        match message.kind {
            Some(TYPE_RESPONSE) => {
                let response = message.response.expect("RESPONSE has a response");
                assert_eq!(response.id, Some(id), "response to another request");
                return (response, arrivals);
            }
            Some(TYPE_REQUEST) => {
                let request = message.request.expect("REQUEST has a request");
                respond(ws, request.id.expect("server requests carry an id"), 200);
                arrivals.push(arrival_of(request));
            }
            other => panic!("message of type {other:?} from the server"),
        }
    }
}

/// [`call_seeing`] without the arrivals.
pub fn call(ws: &mut Ws, request: Request) -> Response {
    call_seeing(ws, request).0
}

/// `verb path` with a JSON `body` as a request with `id`.
pub fn call_json(
    ws: &mut Ws,
    id: u64,
    verb: &str,
    path: &str,
    body: &serde_json::Value,
) -> Response {
    let body = serde_json::to_vec(body).unwrap();
    let mut request = Request::new(id, verb, path, Some(&body));
    request.headers.push("Content-Type:application/json".into());
    call(ws, request)
}

/// What arrived on a protobuf socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrival {
    /// `PUT /api/v1/message`: an `Envelope` (a story or server receipt too).
    Envelope(Envelope),
    /// `PUT /api/v1/receipt`, JSON.
    Receipt(serde_json::Value),
    /// `PUT /api/v1/typing`, JSON.
    Typing(serde_json::Value),
    QueueEmpty,
}

/// What server request `request` delivers; checks the verb, and that an
/// envelope comes with `X-Signal-Timestamp:<ms>`.
pub fn arrival_of(request: Request) -> Arrival {
    assert_eq!(request.verb.as_deref(), Some("PUT"), "{request:?}");
    let json = |body: Option<Vec<u8>>| -> serde_json::Value {
        serde_json::from_slice(&body.expect("a body")).expect("a JSON body")
    };
    match request.path.as_deref() {
        Some("/api/v1/message") => {
            let stamp = request.header("X-Signal-Timestamp").expect("X-Signal-Timestamp");
            stamp.parse::<u64>().unwrap_or_else(|_| panic!("X-Signal-Timestamp:{stamp}"));
            let body = request.body.expect("an envelope body");
            Arrival::Envelope(Envelope::decode(&body).expect("Envelope decodes"))
        }
        Some("/api/v1/receipt") => Arrival::Receipt(json(request.body)),
        Some("/api/v1/typing") => Arrival::Typing(json(request.body)),
        Some("/api/v1/queue/empty") => Arrival::QueueEmpty,
        other => panic!("unexpected server request to {other:?}"),
    }
}

/// Reads server requests until `done` says stop, answering each with
/// `status`; returns what arrived, in order.
pub fn receive_until(
    ws: &mut Ws,
    status: u32,
    mut done: impl FnMut(&[Arrival]) -> bool,
) -> Vec<Arrival> {
    let mut arrivals = Vec::new();
    while !done(&arrivals) {
        let request = next_request(ws);
        respond(ws, request.id.unwrap(), status);
        arrivals.push(arrival_of(request));
    }
    arrivals
}

/// Reads (acking with 200) the backlog up to and including `queue/empty`.
pub fn drain(ws: &mut Ws) -> Vec<Arrival> {
    let mut arrivals = receive_until(ws, 200, |a| a.last() == Some(&Arrival::QueueEmpty));
    arrivals.pop();
    arrivals
}

/// Reads (acking with 200) until `count` envelopes have come.
pub fn receive_envelopes(ws: &mut Ws, count: usize) -> Vec<Envelope> {
    envelopes(&receive_until(ws, 200, |a| envelopes(a).len() == count))
}

pub fn envelopes(arrivals: &[Arrival]) -> Vec<Envelope> {
    arrivals
        .iter()
        .filter_map(|arrival| match arrival {
            Arrival::Envelope(envelope) => Some(envelope.clone()),
            _ => None,
        })
        .collect()
}

/// Opens a device socket with `query` and `headers` and tells its framing
/// from the first message (the backlog's `queue/empty`): "protobuf" for a
/// binary frame, "json" for text.
pub fn framing_chosen(
    server: &Server,
    account: &Account,
    query: &str,
    headers: &[(&str, &str)],
) -> &'static str {
    let basic = account.basic();
    let mut all = vec![("Authorization", basic.as_str())];
    all.extend_from_slice(headers);
    let (mut ws, _) = open(server, &format!("/v1/websocket/{query}"), &all).expect("upgrade");
    loop {
        match ws.read().expect("read the first frame") {
            Message::Binary(_) => return "protobuf",
            Message::Text(_) => return "json",
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected first message {other:?}"),
        }
    }
}
