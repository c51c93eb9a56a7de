//! The edges of Signal's protobuf framing (issue 20), on the test's own
//! codec (`common/pb.rs`): which framing an upgrade gets (query, header,
//! User-Agent, configuration) and the 400 for a bad or contradictory
//! choice, `X-Signal-Timestamp` on the 101, the close codes for frames that
//! are not valid messages, and the provisioning socket in protobuf.

mod common;
#[path = "common/pb.rs"]
mod pb;
#[path = "common/pb_client.rs"]
mod pb_client;

use common::{expect_close, Server, ServerOptions, Ws};
use pb::{put_bytes, put_uint, Request, Response, WsMessage};
use pb_client::{call, framing_chosen, next_request, open, respond};
use switchboard::protocol::base64;
use tungstenite::Message;
use uuid::Uuid;

const ANDROID: &str = "Signal-Android/7.30.1 Android/34";

/// An upgrade's query, its headers, and the framing it should get.
type FramingCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

#[test]
fn framing_follows_query_then_header_then_user_agent_then_the_default() {
    let server = Server::start();
    let account = server.register();
    let agent = |agent| ("User-Agent", agent);
    let header = |framing| ("X-Switchboard-Framing", framing);
    let cases: Vec<FramingCase> = vec![
        ("", vec![], "json"),
        ("?framing=protobuf", vec![], "protobuf"),
        ("?framing=json", vec![], "json"),
        ("", vec![header("protobuf")], "protobuf"),
        ("", vec![header("json")], "json"),
        ("", vec![agent(ANDROID)], "protobuf"),
        ("", vec![agent("libsignal/0.58.0")], "protobuf"),
        ("", vec![agent("Signal-Desktop/7.40.0 Linux")], "protobuf"),
        ("", vec![agent("Signal-iOS/7.30 iOS/17.5")], "protobuf"),
        ("", vec![agent("Mozilla/5.0 (X11; Linux x86_64)")], "json"),
        ("?framing=json", vec![agent(ANDROID)], "json"),
        ("", vec![agent(ANDROID), header("json")], "json"),
        ("?framing=protobuf", vec![header("protobuf")], "protobuf"),
        ("?framing=json", vec![header("json")], "json"),
    ];
    for (query, headers, expected) in cases {
        let chosen = framing_chosen(&server, &account, query, &headers);
        assert_eq!(chosen, expected, "query {query:?}, headers {headers:?}");
    }
    // The query form of the credentials works in protobuf too.
    let query = format!(
        "/v1/websocket/?login={}.{}&password={}&framing=protobuf",
        account.uuid, account.device_id, account.password
    );
    let (mut ws, _) = open(&server, &query, &[]).expect("query credentials");
    let response = call(&mut ws, Request::new(1, "GET", "/v1/keepalive", None));
    assert_eq!(response.status, Some(200));
}

#[test]
fn the_configured_framing_applies_when_the_upgrade_names_none() {
    let config = format!("websocket_framing = \"protobuf\"\n{}", common::TEST_LIMITS);
    let server = Server::start_with(ServerOptions { config_toml: config, ..Default::default() });
    let account = server.register();
    assert_eq!(framing_chosen(&server, &account, "", &[]), "protobuf");
    assert_eq!(framing_chosen(&server, &account, "?framing=json", &[]), "json");
    let json_header = [("X-Switchboard-Framing", "json")];
    assert_eq!(framing_chosen(&server, &account, "", &json_header), "json");
    let browser = [("User-Agent", "Mozilla/5.0")];
    assert_eq!(framing_chosen(&server, &account, "", &browser), "protobuf");
}

#[test]
fn a_bad_or_contradictory_framing_is_400_at_the_upgrade() {
    let server = Server::start();
    let account = server.register();
    let basic = account.basic();
    let auth = ("Authorization", basic.as_str());
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/v1/websocket/?framing=xml", vec![auth]),
        ("/v1/websocket/?framing=", vec![auth]),
        ("/v1/websocket/", vec![auth, ("X-Switchboard-Framing", "xml")]),
        ("/v1/websocket/?framing=protobuf", vec![auth, ("X-Switchboard-Framing", "json")]),
        ("/v1/websocket/?framing=json", vec![auth, ("X-Switchboard-Framing", "protobuf")]),
        ("/v1/websocket/provisioning/?framing=xml", vec![]),
        ("/v1/websocket/provisioning/?framing=json", vec![("X-Switchboard-Framing", "protobuf")]),
    ];
    for (path, headers) in cases {
        match open(&server, path, &headers) {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400, "{path} {headers:?}");
            }
            other => panic!("{path} {headers:?}: expected 400, got {:?}", other.map(|_| "101")),
        }
    }
    server.assert_serving();
}

#[test]
fn the_101_carries_the_server_clock_in_both_framings() {
    let server = Server::start();
    let account = server.register();
    let basic = account.basic();
    let now_ms = || switchboard::clock::Clock::system().now_ms();
    let paths = [
        "/v1/websocket/?framing=protobuf",
        "/v1/websocket/?framing=json",
        "/v1/websocket/provisioning/?framing=protobuf",
        "/v1/websocket/provisioning/?framing=json",
    ];
    for path in paths {
        let before_ms = now_ms();
        let (_ws, head) = open(&server, path, &[("Authorization", basic.as_str())]).unwrap();
        let after_ms = now_ms();
        let stamp = head.get("X-Signal-Timestamp").unwrap_or_else(|| panic!("{path}: {head:?}"));
        let stamp_ms: u64 = stamp.to_str().unwrap().parse().expect("milliseconds");
        assert!((before_ms..=after_ms).contains(&stamp_ms), "{path}: {stamp_ms}");
    }
}

/// A `WebSocketMessage` of `kind` around request or response fields
/// already encoded (`None`: no embedded message).
fn message(kind: Option<u64>, field: u32, inner: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    kind.iter().for_each(|&kind| put_uint(&mut out, 1, kind));
    inner.iter().for_each(|inner| put_bytes(&mut out, field, inner));
    out
}

/// The binary frames that must close a protobuf connection with 1007.
fn invalid_messages() -> Vec<(&'static str, Vec<u8>)> {
    let keepalive = Request::new(1, "GET", "/v1/keepalive", None);
    let without = |strip: fn(&mut Request)| {
        let mut request = keepalive.clone();
        strip(&mut request);
        message(Some(pb::TYPE_REQUEST), 2, Some(request.encode()))
    };
    let answer = |strip: fn(&mut Response)| {
        let mut response = Response::new(1, 200);
        strip(&mut response);
        message(Some(pb::TYPE_RESPONSE), 3, Some(response.encode()))
    };
    vec![
        ("truncated varint", vec![0xff, 0xff, 0xff]),
        ("wire type 7", vec![0x0f, 0x01]),
        ("truncated length", vec![0x12, 0x05, 0x01]),
        ("type as bytes", vec![0x0a, 0x01, 0x01]),
        ("garbage request", vec![0x08, 0x01, 0x12, 0x03, 0xff, 0xff, 0xff]),
        ("empty", vec![]),
        ("type UNKNOWN", message(Some(pb::TYPE_UNKNOWN), 2, Some(keepalive.encode()))),
        ("no type", message(None, 2, Some(keepalive.encode()))),
        ("type 3", message(Some(3), 2, Some(keepalive.encode()))),
        ("REQUEST without verb", without(|r| r.verb = None)),
        ("REQUEST without path", without(|r| r.path = None)),
        ("REQUEST without request", message(Some(pb::TYPE_REQUEST), 2, None)),
        ("RESPONSE without id", answer(|r| r.id = None)),
        ("RESPONSE without status", answer(|r| r.status = None)),
        ("RESPONSE without response", message(Some(pb::TYPE_RESPONSE), 3, None)),
    ]
}

#[test]
fn frames_that_are_not_valid_messages_close_with_their_code() {
    let server = Server::start();
    let account = server.register();
    for (what, frame) in invalid_messages() {
        let mut ws = pb_client::connect(&server, &account, &[]);
        ws.send(Message::binary(frame)).unwrap();
        assert_eq!(expect_close(&mut ws), Some(1007), "{what}");
    }
    let mut ws = pb_client::connect(&server, &account, &[]);
    ws.send(Message::text("{\"type\":\"REQUEST\"}")).unwrap();
    assert_eq!(expect_close(&mut ws), Some(1003), "a text frame on a protobuf connection");
    let mut ws = pb_client::connect(&server, &account, &[]);
    let keepalive = WsMessage::request(Request::new(1, "GET", "/v1/keepalive", Some(&[7; 40_000])));
    let _ = ws.send(Message::binary(keepalive.encode()));
    assert_eq!(expect_close(&mut ws), Some(1009), "a frame over frame_bytes_max");
    let mut ws = server.connect(&account).unwrap();
    ws.send(Message::binary(
        WsMessage::request(Request::new(1, "GET", "/v1/keepalive", None)).encode(),
    ))
    .unwrap();
    assert_eq!(expect_close(&mut ws), Some(1003), "a binary frame on a JSON connection");
    server.assert_serving();
    let mut ws = pb_client::connect(&server, &account, &[]);
    let response = call(&mut ws, Request::new(2, "GET", "/v1/keepalive", None));
    assert_eq!(response.status, Some(200), "protobuf still served");
}

/// Opens a protobuf provisioning socket and reads (acks) its address.
fn open_provisioning(server: &Server, headers: &[(&str, &str)]) -> (Ws, Uuid) {
    let (mut ws, _) = open(server, "/v1/websocket/provisioning/", headers).unwrap();
    let request = next_request(&mut ws);
    assert_eq!(
        (request.verb.as_deref(), request.path.as_deref()),
        (Some("PUT"), Some("/v1/address"))
    );
    let body = request.body.as_deref().expect("an address body");
    let address = pb::provisioning_address(body).expect("a ProvisioningAddress");
    respond(&mut ws, request.id.unwrap(), 200);
    (ws, Uuid::parse_str(&address).expect("the address is a UUID"))
}

/// `PUT /v1/provisioning/{address}` from `primary` with `message`.
fn provision(server: &Server, primary: &common::Account, address: &Uuid, message: &[u8]) -> u16 {
    let body = serde_json::json!({"body": base64::encode(message)}).to_string();
    let path = format!("/v1/provisioning/{address}");
    server.request("PUT", &path, Some(primary), body.as_bytes()).0
}

#[test]
fn a_new_device_is_provisioned_over_a_protobuf_provisioning_socket() {
    let server = Server::start();
    let primary = server.register();
    let (mut ws, address) = open_provisioning(&server, &[("X-Switchboard-Framing", "protobuf")]);
    let response = call(&mut ws, Request::new(0, "GET", "/v1/keepalive/provisioning", None));
    assert_eq!((response.id, response.status), (Some(0), Some(200)));
    let message = b"\x0a\x20provisioning\x00\xff envelope bytes";
    assert_eq!(provision(&server, &primary, &address, message), 204, "answered right away");
    let request = next_request(&mut ws);
    assert_eq!(
        (request.verb.as_deref(), request.path.as_deref()),
        (Some("PUT"), Some("/v1/message"))
    );
    assert_eq!(request.body.as_deref(), Some(&message[..]), "the bytes the primary put, unwrapped");
    respond(&mut ws, request.id.unwrap(), 200);
    assert_eq!(expect_close(&mut ws), Some(1000));
    assert_eq!(provision(&server, &primary, &address, b"again"), 404, "single use");
    assert_eq!(provision(&server, &primary, &Uuid::new_v4(), b"x"), 404, "no socket waits");
    // A stock client's User-Agent gets protobuf here too; text closes it.
    let (mut ws, _) = open_provisioning(&server, &[("User-Agent", "Signal-Desktop/7.40.0")]);
    ws.send(Message::text("{}")).unwrap();
    assert_eq!(expect_close(&mut ws), Some(1003));
}

#[test]
fn the_json_provisioning_socket_answers_its_keepalive() {
    let server = Server::start();
    let (mut ws, _) = open(&server, "/v1/websocket/provisioning/", &[]).unwrap();
    let response = common::ws_call(&mut ws, 4, "GET", "/v1/keepalive/provisioning", None);
    assert_eq!(response.status, 200);
}
