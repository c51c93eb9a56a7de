//! Push notifications to offline devices, against loopback stand-ins for
//! APNs, FCM and Google's token endpoint (tests/common/standins.rs), with an
//! in-process server whose clock the test steps.
//!
//! Covered: `PUT`/`DELETE /v1/accounts/apn` and `/v1/accounts/gcm` (exact
//! statuses, over HTTP and framed over the WebSocket, one channel per
//! device); which events push (urgent envelopes at once, coalesced per
//! window; non-urgent and stories in the background at most once per
//! interval; a session closed with unacknowledged envelopes a minute later
//! unless the device comes back) and which never do (connected devices,
//! typing, online-only sends); the exact APNs and FCM requests, their JWTs
//! (verified against the committed test keys) and the cached FCM access
//! token; retries, giving up, dead tokens; providers that are down; the
//! metrics.

mod common;
#[path = "common/messaging.rs"]
mod messaging;
#[path = "common/schema.rs"]
mod schema;
#[path = "common/standins.rs"]
mod standins;

use common::{error_body, next_frame, request_at, ws_call, Account, Ws};
use jsonwebtoken::Algorithm;
use messaging::{drain_backlog, receive_envelopes, send_body, REGISTRATION_ID};
use serde_json::{json, Value};
use standins::{Kind, Recorded, StandIn};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use switchboard::clock::Clock;
use switchboard::config::{ApnsConfig, Config, FcmConfig};
use switchboard::protocol::frame::Frame;
use switchboard::server::Running;
use uuid::Uuid;

const APN: &str = "/v1/accounts/apn";
const GCM: &str = "/v1/accounts/gcm";
const START_MS: u64 = 1_700_000_000_000;
const COALESCE_MS: u64 = 60_000;
const BACKGROUND_INTERVAL_MS: u64 = 20 * 60 * 1000;
const AFTER_CLOSE_MS: u64 = 60_000;
const THIRTY_DAYS_S: u64 = 30 * 24 * 3600;
const TOPIC: &str = "org.example.switchboard";
const KEY_ID: &str = "KEYID12345";
const TEAM_ID: &str = "TEAMID1234";
const CLIENT_EMAIL: &str = "push@test-project.iam.gserviceaccount.com";
const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const FCM_SEND_PATH: &str = "/v1/projects/test-project/messages:send";
const GRANT: &str = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
const APNS_KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apns-test-auth-key.p8");
const FCM_KEY: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fcm-test-service-account-key.pem");
/// How long a push that is due may take to reach a stand-in.
const DUE: Duration = Duration::from_secs(5);
/// How long a retried push (after `retry-after: 1`) may take.
const RETRIED: Duration = Duration::from_secs(10);
/// The short fixed wait of a "nothing more happens" check.
const QUIET: Duration = Duration::from_millis(500);

/// The three provider stand-ins.
struct Providers {
    apns: StandIn,
    fcm: StandIn,
    token: StandIn,
}

impl Providers {
    fn start() -> Self {
        Self {
            apns: StandIn::start(Kind::Apns),
            fcm: StandIn::start(Kind::Fcm),
            token: StandIn::start(Kind::Token),
        }
    }
}

/// An in-process server on a manual clock; drained and joined on drop.
struct TestServer {
    addr: String,
    /// The admin listener (`/metrics`).
    admin: String,
    clock: Clock,
    token_uri: String,
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

fn start(providers: &Providers) -> TestServer {
    start_with(providers, |_| {})
}

/// Starts a server pushing to `providers`, after `tweak` edits its config.
fn start_with(providers: &Providers, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let token_uri = format!("{}/token", providers.token.base_url());
    let account_file = dir.path().join("fcm-service-account.json");
    let service_account = json!({
        "type": "service_account", "project_id": "test-project", "private_key_id": "k1",
        "private_key": std::fs::read_to_string(FCM_KEY).unwrap(),
        "client_email": CLIENT_EMAIL, "token_uri": token_uri,
    });
    std::fs::write(&account_file, serde_json::to_vec_pretty(&service_account).unwrap()).unwrap();
    let mut config = common::in_process_config(dir.path().join("data"), 2);
    config.push.apns = Some(ApnsConfig {
        base_url: providers.apns.base_url(),
        topic: TOPIC.into(),
        key_file: Some(APNS_KEY.into()),
        key_id: Some(KEY_ID.into()),
        team_id: Some(TEAM_ID.into()),
        ..ApnsConfig::default()
    });
    config.push.fcm = Some(FcmConfig {
        base_url: providers.fcm.base_url(),
        service_account_file: account_file.to_str().unwrap().into(),
    });
    config.push.alert_coalesce_ms = COALESCE_MS;
    config.push.background_interval_ms = BACKGROUND_INTERVAL_MS;
    config.push.after_close_delay_ms = AFTER_CLOSE_MS;
    tweak(&mut config);
    let clock = Clock::manual(START_MS);
    let running =
        switchboard::server::start_with_clock(config, clock.clone()).expect("start the server");
    let addr = running.local_addr.to_string();
    let admin = running.admin_addr.expect("the admin listener runs").to_string();
    TestServer { addr, admin, clock, token_uri, running: Some(running), _dir: dir }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.begin_drain();
            running.wait();
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A 64-character lowercase hex APNs device token.
fn apn_token() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// An FCM registration token (characters from `[A-Za-z0-9_:.-]`).
fn fcm_token() -> String {
    format!("f{}:APA91b_{}-x.y", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

fn token_body(route: &str, token: &str) -> String {
    match route {
        APN => json!({ "apnRegistrationId": token }).to_string(),
        _ => json!({ "gcmRegistrationId": token }).to_string(),
    }
}

impl TestServer {
    fn register(&self) -> Account {
        let password = format!("pw-{}", Uuid::new_v4());
        let body = json!({"password": password, "registrationId": REGISTRATION_ID}).to_string();
        let (status, answer) =
            request_at(&self.addr, "PUT", "/v1/accounts", None, &[], body.as_bytes());
        assert_eq!(status, 200, "register: {}", text(&answer));
        let json: Value = serde_json::from_slice(&answer).unwrap();
        Account { uuid: json["uuid"].as_str().unwrap().parse().unwrap(), device_id: 1, password }
    }

    /// `PUT {route}` with `token`; asserts 204 and an empty body.
    fn put_token(&self, account: &Account, route: &str, token: &str) {
        let body = token_body(route, token);
        let (status, answer) =
            request_at(&self.addr, "PUT", route, Some(account), &[], body.as_bytes());
        assert_eq!((status, text(&answer)), (204, String::new()), "PUT {route}");
    }

    /// Sends one envelope to device 1 of `to`; asserts 200.
    fn send(&self, sender: &Account, to: &Account, urgent: bool, timestamp: u64) {
        let body = send_body(&[(1, REGISTRATION_ID)], b"hello", false, timestamp);
        let mut body: Value = serde_json::from_slice(&body).unwrap();
        body["urgent"] = json!(urgent);
        self.put_json(sender, &format!("/v1/messages/{}", to.uuid), &body);
    }

    /// `PUT path` with a JSON body; asserts 200.
    fn put_json(&self, caller: &Account, path: &str, body: &Value) {
        let body = serde_json::to_vec(body).unwrap();
        let (status, answer) = request_at(&self.addr, "PUT", path, Some(caller), &[], &body);
        assert_eq!(status, 200, "PUT {path}: {}", text(&answer));
    }

    /// A metric summed over the shards; panics when the server has none
    /// of that name.
    fn metric(&self, name: &str) -> u64 {
        let (status, body) = request_at(&self.admin, "GET", "/metrics", None, &[], b"");
        assert_eq!(status, 200);
        let prefix = format!("switchboard_{name}{{");
        let values: Vec<u64> = text(&body)
            .lines()
            .filter(|line| line.starts_with(&prefix))
            .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(!values.is_empty(), "no metric switchboard_{name}");
        values.iter().sum()
    }

    /// Waits (bounded) until metric `name` is exactly `value`.
    fn wait_metric(&self, name: &str, value: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.metric(name);
            if now == value {
                return;
            }
            assert!(Instant::now() < deadline, "{name} is {now}, expected {value}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn connect(&self, device: &Account) -> Ws {
        let url = format!(
            "ws://{}/v1/websocket/?login={}.{}&password={}",
            self.addr, device.uuid, device.device_id, device.password
        );
        common::connect_url(&url).expect("connect the device")
    }

    /// Closes `ws` cleanly and waits until the server has no session open.
    fn close(&self, mut ws: Ws) {
        let _ = ws.close(None);
        while ws.read().is_ok() {}
        self.wait_metric("websockets_open", 0);
    }

    /// Connects `device` (nothing queued), has `sender` send it an urgent
    /// envelope, reads it without acknowledging, and closes the session.
    fn close_with_unacknowledged(&self, sender: &Account, device: &Account, timestamp: u64) {
        let mut ws = self.connect(device);
        assert!(drain_backlog(&mut ws).is_empty());
        self.send(sender, device, true, timestamp);
        match next_frame(&mut ws) {
            Frame::Request(request) => assert_eq!(request.path, "/api/v1/message"),
            Frame::Response(response) => panic!("unexpected response {response:?}"),
        }
        self.close(ws);
    }

    /// Steps the server's clock past one alert coalescing window.
    fn next_window(&self) {
        self.clock.advance_ms(COALESCE_MS + 1_000);
    }
}

/// The credentials of a `Bearer` authorization (the scheme is
/// case-insensitive).
fn bearer(request: &Recorded) -> String {
    let value = request.header("authorization").expect("an authorization header");
    let (scheme, credentials) = value.split_once(' ').expect("scheme and credentials");
    assert!(scheme.eq_ignore_ascii_case("bearer"), "authorization {value:?}");
    credentials.to_string()
}

/// A JWT `iat`: whole seconds, near the server's clock or the system's
/// (within an hour: providers accept a signed token that long).
fn assert_issued_at(iat: &Value, clock: &Clock) {
    let iat = iat.as_u64().unwrap_or_else(|| panic!("iat is whole seconds: {iat}"));
    let system = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let manual = clock.now_ms() / 1000;
    let near = |reference: u64| iat.abs_diff(reference) <= 3600;
    assert!(near(manual) || near(system), "iat {iat}: server clock {manual}, system {system}");
}

/// The delivery headers of an APNs message alert: `apns-push-type`,
/// `apns-priority`, `apns-collapse-id`.
const APNS_ALERT: (&str, &str, Option<&str>) = ("alert", "10", Some("incoming-message"));
/// The delivery headers of every other APNs push (challenges included).
const APNS_BACKGROUND: (&str, &str, Option<&str>) = ("background", "5", None);

/// Asserts `request` is one APNs request to `token` with `delivery`
/// (`apns-push-type`, `apns-priority`, `apns-collapse-id`, see
/// [`APNS_ALERT`]); signed with the test key; expiring 30 days after the
/// server clock's now.
fn assert_apns_request(
    server: &TestServer,
    request: &Recorded,
    token: &str,
    delivery: (&str, &str, Option<&str>),
) {
    assert_eq!(
        (request.method.as_str(), request.path.clone()),
        ("POST", format!("/3/device/{token}"))
    );
    let (push_type, priority, collapse_id) = delivery;
    assert_eq!(request.header("apns-topic"), Some(TOPIC));
    assert_eq!(request.header("apns-push-type"), Some(push_type));
    assert_eq!(request.header("apns-priority"), Some(priority));
    assert_eq!(request.header("apns-collapse-id"), collapse_id);
    let expiration: u64 =
        request.header("apns-expiration").expect("apns-expiration").parse().unwrap();
    let expected = server.clock.now_ms() / 1000 + THIRTY_DAYS_S;
    assert!(expiration.abs_diff(expected) <= 5, "apns-expiration {expiration}, not {expected}");
    let key = standins::ec_public_key(APNS_KEY);
    let (header, claims) = standins::verified_jwt(&bearer(request), &key, Algorithm::ES256);
    assert_eq!((&header["alg"], &header["kid"]), (&json!("ES256"), &json!(KEY_ID)));
    assert_eq!(claims["iss"], TEAM_ID);
    assert_issued_at(&claims["iat"], &server.clock);
}

/// Asserts `request` is one APNs new-message push to `token`: an alert
/// (with the `incoming-message` collapse id) when `urgent`, else a
/// background push.
fn assert_apns_push(server: &TestServer, request: &Recorded, token: &str, urgent: bool) {
    assert_apns_request(server, request, token, if urgent { APNS_ALERT } else { APNS_BACKGROUND });
    let body = request.json();
    let expected = if urgent {
        json!({"aps": {"alert": {"loc-key": "APN_Message"}, "mutable-content": 1},
               "type": "notification", "data": {"urgent": true}})
    } else {
        json!({"aps": {"content-available": 1}, "type": "notification", "data": {"urgent": false}})
    };
    assert_eq!(body, expected);
    let payload = json!({"type": body["type"], "data": body["data"]});
    schema::assert_matches("PushNotificationPayload", &payload);
}

/// Asserts `request` is one FCM push to `token` carrying `access_token`.
fn assert_fcm_push(request: &Recorded, token: &str, urgent: bool, access_token: &str) {
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", FCM_SEND_PATH));
    assert_eq!(bearer(request), access_token);
    let priority = if urgent { "HIGH" } else { "NORMAL" };
    let data = if urgent { r#"{"urgent":true}"# } else { r#"{"urgent":false}"# };
    let body = request.json();
    assert_eq!(
        body,
        json!({"message": {"token": token,
            "data": {"newMessageAlert": "", "type": "notification", "data": data},
            "android": {"priority": priority, "ttl": "2419200s"}}})
    );
    let inner: Value = serde_json::from_str(data).unwrap();
    let payload = json!({"type": body["message"]["data"]["type"], "data": inner});
    schema::assert_matches("PushNotificationPayload", &payload);
}

/// A challenge token: 16 random bytes in hex.
fn assert_challenge_token(challenge: &Value, kind: &str) -> String {
    let challenge = challenge.as_str().unwrap_or_else(|| panic!("no {kind} token: {challenge}"));
    assert_eq!(challenge.len(), 32, "{kind} {challenge:?}");
    assert!(challenge.bytes().all(|byte| byte.is_ascii_hexdigit()), "{kind} {challenge:?}");
    challenge.to_string()
}

/// Asserts `request` is one APNs challenge push of `kind` (`challenge` or
/// `rateLimitChallenge`) to `token` as Signal sends it: a silent background
/// push at priority 5 without the `incoming-message` collapse id (it must
/// never replace a message alert), the token at the top level under `kind`,
/// beside the spec's payload. Returns the token.
fn assert_apns_challenge(
    server: &TestServer,
    request: &Recorded,
    token: &str,
    kind: &str,
) -> String {
    assert_apns_request(server, request, token, APNS_BACKGROUND);
    let body = request.json();
    let challenge = assert_challenge_token(&body[kind], kind);
    assert_eq!(
        body,
        json!({"aps": {"content-available": 1}, kind: challenge,
               "type": kind, "data": {"urgent": true}})
    );
    schema::assert_matches(
        "PushNotificationPayload",
        &json!({"type": body["type"], "data": body["data"]}),
    );
    challenge
}

/// Asserts `request` is one FCM challenge push of `kind` to `token`
/// carrying `access_token`, as Signal sends it: priority HIGH (the user is
/// waiting), the token as the data field `kind` in place of
/// `newMessageAlert`, beside the spec's payload. Returns the token.
fn assert_fcm_challenge(request: &Recorded, token: &str, kind: &str, access_token: &str) -> String {
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", FCM_SEND_PATH));
    assert_eq!(bearer(request), access_token);
    let body = request.json();
    let challenge = assert_challenge_token(&body["message"]["data"][kind], kind);
    assert_eq!(
        body,
        json!({"message": {"token": token,
            "data": {kind: challenge, "type": kind, "data": r#"{"urgent":true}"#},
            "android": {"priority": "HIGH", "ttl": "2419200s"}}})
    );
    schema::assert_matches(
        "PushNotificationPayload",
        &json!({"type": kind, "data": {"urgent": true}}),
    );
    challenge
}

/// Asserts `request` is a JWT-bearer grant signed with the service
/// account's key, for the FCM scope, addressed to the token URI.
fn assert_token_request(server: &TestServer, request: &Recorded) {
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/token"));
    assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
    let body = request.text();
    let jwt = body.strip_prefix(GRANT).unwrap_or_else(|| panic!("token request body {body:?}"));
    let key = standins::rsa_public_key(FCM_KEY);
    let (header, claims) = standins::verified_jwt(jwt, &key, Algorithm::RS256);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["iss"], CLIENT_EMAIL);
    assert_eq!(claims["scope"], FCM_SCOPE);
    assert_eq!(claims["aud"], server.token_uri.as_str());
    assert_issued_at(&claims["iat"], &server.clock);
}

#[test]
fn the_token_routes_answer_204_and_refuse_bad_tokens_with_exact_statuses() {
    let providers = Providers::start();
    let server = start(&providers);
    let account = server.register();
    let wrong = Account { password: "not-the-password".into(), ..account.clone() };
    let unknown = |field: &str| format!(r#"{{"{field}":"ab","bogus":1}}"#);
    let voip = json!({"apnRegistrationId": apn_token(), "voipRegistrationId": "ignored"});
    let cases: Vec<(&str, &str, Option<&Account>, String, u16)> = vec![
        ("PUT", APN, Some(&account), token_body(APN, &apn_token()), 204),
        ("PUT", APN, Some(&account), voip.to_string(), 204),
        ("PUT", APN, Some(&account), token_body(APN, &"ab".repeat(100)), 204),
        ("PUT", APN, Some(&account), "{not json".into(), 400),
        ("PUT", APN, Some(&account), "{}".into(), 400),
        ("PUT", APN, Some(&account), unknown("apnRegistrationId"), 400),
        ("PUT", APN, Some(&account), token_body(APN, ""), 422),
        ("PUT", APN, Some(&account), token_body(APN, "abcdefg0"), 422),
        ("PUT", APN, Some(&account), token_body(APN, &format!("{}a", "ab".repeat(100))), 422),
        ("PUT", GCM, Some(&account), token_body(GCM, &fcm_token()), 204),
        ("PUT", GCM, Some(&account), token_body(GCM, &"A".repeat(4096)), 204),
        ("PUT", GCM, Some(&account), token_body(GCM, "Az09_:.-"), 204),
        ("PUT", GCM, Some(&account), "{not json".into(), 400),
        ("PUT", GCM, Some(&account), "{}".into(), 400),
        ("PUT", GCM, Some(&account), unknown("gcmRegistrationId"), 400),
        ("PUT", GCM, Some(&account), token_body(GCM, ""), 422),
        ("PUT", GCM, Some(&account), token_body(GCM, &"A".repeat(4097)), 422),
        ("PUT", GCM, Some(&account), token_body(GCM, "with space"), 422),
        ("PUT", GCM, Some(&account), token_body(GCM, "slash/y"), 422),
        ("DELETE", APN, Some(&account), String::new(), 204),
        ("DELETE", APN, Some(&account), String::new(), 204),
        ("DELETE", GCM, Some(&account), String::new(), 204),
        ("DELETE", GCM, Some(&account), String::new(), 204),
        ("PUT", APN, None, token_body(APN, &apn_token()), 401),
        ("PUT", GCM, Some(&wrong), token_body(GCM, &fcm_token()), 401),
        ("DELETE", APN, None, String::new(), 401),
        ("DELETE", GCM, None, String::new(), 401),
        ("GET", APN, Some(&account), String::new(), 405),
        ("POST", APN, Some(&account), token_body(APN, &apn_token()), 405),
        ("GET", GCM, Some(&account), String::new(), 405),
        ("POST", GCM, Some(&account), token_body(GCM, &fcm_token()), 405),
    ];
    for (method, path, caller, body, expected) in &cases {
        let (status, answer) =
            request_at(&server.addr, method, path, *caller, &[], body.as_bytes());
        let what = format!("{method} {path} {body:.80}");
        assert_eq!(status, *expected, "{what}: {}", text(&answer));
        if *expected == 204 {
            assert!(answer.is_empty(), "{what}: {}", text(&answer));
        } else {
            assert_eq!(error_body(&answer).0, u64::from(*expected), "{what}");
        }
    }
}

#[test]
fn the_token_routes_work_framed_over_the_websocket() {
    let providers = Providers::start();
    let server = start(&providers);
    let (sender, device) = (server.register(), server.register());
    let token = apn_token();
    let mut ws = server.connect(&device);
    assert!(drain_backlog(&mut ws).is_empty());
    let (gcm, apn) = (token_body(GCM, &fcm_token()), token_body(APN, &token));
    let not_hex = token_body(APN, "xyz");
    let calls: [(&str, &str, Option<&[u8]>, u16); 6] = [
        ("PUT", GCM, Some(gcm.as_bytes()), 204),
        ("DELETE", GCM, None, 204),
        ("PUT", APN, Some(apn.as_bytes()), 204),
        ("PUT", APN, Some(&b"{}"[..]), 400),
        ("PUT", APN, Some(not_hex.as_bytes()), 422),
        ("GET", APN, None, 405),
    ];
    for (id, (verb, path, body, expected)) in calls.into_iter().enumerate() {
        let response = ws_call(&mut ws, id as u64 + 1, verb, path, body);
        assert_eq!(response.status, expected, "{verb} {path}");
        if expected == 204 {
            assert!(response.body.unwrap_or_default().is_empty(), "{verb} {path}");
        }
    }
    server.close(ws);
    server.send(&sender, &device, true, 1);
    let pushes = providers.apns.wait_for(1, DUE);
    assert_apns_push(&server, &pushes[0], &token, true);
    providers.apns.assert_count_after(QUIET, 1);
    assert_eq!(providers.fcm.requests().len(), 0, "the gcm token was deleted");
}

#[test]
fn an_urgent_envelope_to_an_offline_device_sends_one_apns_alert() {
    let providers = Providers::start();
    let server = start(&providers);
    let (sender, device) = (server.register(), server.register());
    let token = apn_token();
    server.put_token(&device, APN, &token);
    server.send(&sender, &device, true, 1);
    let pushes = providers.apns.wait_for(1, DUE);
    assert_apns_push(&server, &pushes[0], &token, true);
    server.wait_metric("push_apns_sent_total", 1);
    assert_eq!(server.metric("push_send_seconds_count"), 1, "the send latency histogram");
    // A device without a token is not pushed.
    server.send(&device, &sender, true, 2);
    providers.apns.assert_count_after(QUIET, 1);
    for name in [
        "push_fcm_sent_total",
        "push_failed_total",
        "push_retried_total",
        "push_coalesced_total",
        "push_dropped_total",
        "push_tokens_removed_total",
    ] {
        assert_eq!(server.metric(name), 0, "{name}");
    }
    assert_eq!((providers.fcm.requests().len(), providers.token.requests().len()), (0, 0));
    // The push only wakes the device; the envelope waits for it.
    let mut ws = server.connect(&device);
    let backlog = drain_backlog(&mut ws);
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0]["timestamp"], 1);
}

#[test]
fn a_burst_makes_one_alert_per_device_per_coalescing_window() {
    let providers = Providers::start();
    let server = start(&providers);
    let (sender, first, second) = (server.register(), server.register(), server.register());
    let (first_token, second_token) = (apn_token(), apn_token());
    server.put_token(&first, APN, &first_token);
    server.put_token(&second, APN, &second_token);
    for timestamp in 1..=5 {
        server.send(&sender, &first, true, timestamp);
        server.send(&sender, &second, true, timestamp);
    }
    providers.apns.wait_for(2, DUE);
    server.wait_metric("push_coalesced_total", 8);
    let pushes = providers.apns.assert_count_after(QUIET, 2);
    let mut paths: Vec<String> = pushes.iter().map(|push| push.path.clone()).collect();
    paths.sort();
    let mut expected =
        vec![format!("/3/device/{first_token}"), format!("/3/device/{second_token}")];
    expected.sort();
    assert_eq!(paths, expected, "one push per device");
    for push in &pushes {
        assert_eq!(push.header("apns-push-type"), Some("alert"));
    }
    // The next window pushes again, once.
    server.next_window();
    server.send(&sender, &first, true, 6);
    let pushes = providers.apns.wait_for(3, DUE);
    assert_apns_push(&server, &pushes[2], &first_token, true);
    providers.apns.assert_count_after(QUIET, 3);
    server.wait_metric("push_apns_sent_total", 3);
    assert_eq!(server.metric("push_coalesced_total"), 8);
}

#[test]
fn non_urgent_envelopes_push_in_the_background_at_most_once_per_interval() {
    let providers = Providers::start();
    let server = start(&providers);
    let (sender, device) = (server.register(), server.register());
    let token = apn_token();
    server.put_token(&device, APN, &token);
    server.send(&sender, &device, false, 1);
    let pushes = providers.apns.wait_for(1, DUE);
    assert_apns_push(&server, &pushes[0], &token, false);
    server.send(&sender, &device, false, 2);
    providers.apns.assert_count_after(QUIET, 1);
    // 19 minutes on: still inside the interval.
    server.clock.advance_ms(BACKGROUND_INTERVAL_MS - 60_000);
    server.send(&sender, &device, false, 3);
    providers.apns.assert_count_after(QUIET, 1);
    // 20 minutes on: the next non-urgent envelope pushes again.
    server.clock.advance_ms(60_000);
    server.send(&sender, &device, false, 4);
    let pushes = providers.apns.wait_for(2, DUE);
    assert_apns_push(&server, &pushes[1], &token, false);
    providers.apns.assert_count_after(QUIET, 2);
    server.wait_metric("push_apns_sent_total", 2);
}

#[test]
fn connected_devices_typing_and_online_sends_are_never_pushed_and_stories_push_in_the_background() {
    let providers = Providers::start();
    let server = start(&providers);
    let (sender, device) = (server.register(), server.register());
    let token = apn_token();
    server.put_token(&device, APN, &token);
    let mut ws = server.connect(&device);
    assert!(drain_backlog(&mut ws).is_empty());
    server.send(&sender, &device, true, 1);
    assert_eq!(receive_envelopes(&mut ws, 1)[0]["timestamp"], 1);
    assert_eq!(ws_call(&mut ws, 99, "GET", "/v1/keepalive", None).status, 200);
    server.close(ws);
    // Nothing was left unacknowledged: no push after the close either.
    server.clock.advance_ms(AFTER_CLOSE_MS + 1_000);
    let typing = json!({"action": "STARTED", "timestamp": 2});
    server.put_json(&sender, &format!("/v1/typing/{}", device.uuid), &typing);
    let online = send_body(&[(1, REGISTRATION_ID)], b"live", true, 3);
    let online: Value = serde_json::from_slice(&online).unwrap();
    server.put_json(&sender, &format!("/v1/messages/{}", device.uuid), &online);
    providers.apns.assert_count_after(QUIET, 0);
    let story = json!({"recipients": [device.uuid.to_string()], "content": "c3Rvcnk=",
                       "timestamp": 4, "allowsReplies": true});
    server.put_json(&sender, "/v1/stories", &story);
    let pushes = providers.apns.wait_for(1, DUE);
    assert_apns_push(&server, &pushes[0], &token, false);
    providers.apns.assert_count_after(QUIET, 1);
    server.wait_metric("push_apns_sent_total", 1);
}

#[test]
fn a_session_closed_with_unacknowledged_envelopes_gets_one_alert_a_minute_later() {
    let providers = Providers::start();
    let server = start(&providers);
    let (sender, device) = (server.register(), server.register());
    let token = apn_token();
    server.put_token(&device, APN, &token);
    server.close_with_unacknowledged(&sender, &device, 1);
    providers.apns.assert_count_after(QUIET, 0);
    server.clock.advance_ms(AFTER_CLOSE_MS - 1_000);
    providers.apns.assert_count_after(QUIET, 0);
    server.clock.advance_ms(2_000);
    let pushes = providers.apns.wait_for(1, DUE);
    assert_apns_push(&server, &pushes[0], &token, true);
    providers.apns.assert_count_after(QUIET, 1);
    server.wait_metric("push_apns_sent_total", 1);
    let mut ws = server.connect(&device);
    let backlog = drain_backlog(&mut ws);
    assert_eq!(backlog.len(), 1, "the unacknowledged envelope is still queued");
}

#[test]
fn reconnecting_or_fetching_messages_cancels_the_push_after_close() {
    let providers = Providers::start();
    let server = start(&providers);
    let sender = server.register();
    let (reconnects, fetches, control) = (server.register(), server.register(), server.register());
    let control_token = apn_token();
    server.put_token(&reconnects, APN, &apn_token());
    server.put_token(&fetches, APN, &apn_token());
    server.put_token(&control, APN, &control_token);
    server.close_with_unacknowledged(&sender, &reconnects, 1);
    let mut ws = server.connect(&reconnects);
    assert_eq!(drain_backlog(&mut ws).len(), 1, "the unacknowledged envelope is redelivered");
    assert_eq!(ws_call(&mut ws, 99, "GET", "/v1/keepalive", None).status, 200);
    server.close(ws);
    server.close_with_unacknowledged(&sender, &fetches, 2);
    let (status, page) = request_at(&server.addr, "GET", "/v1/messages", Some(&fetches), &[], b"");
    assert_eq!(status, 200, "{}", text(&page));
    let page: Value = serde_json::from_slice(&page).unwrap();
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    server.close_with_unacknowledged(&sender, &control, 3);
    providers.apns.assert_count_after(QUIET, 0);
    server.clock.advance_ms(AFTER_CLOSE_MS + 1_000);
    let pushes = providers.apns.wait_for(1, DUE);
    assert_apns_push(&server, &pushes[0], &control_token, true);
    providers.apns.assert_count_after(QUIET, 1);
}

#[test]
fn fcm_pushes_carry_a_cached_access_token_from_the_token_endpoint() {
    let providers = Providers::start();
    let server = start(&providers);
    let (sender, first, second) = (server.register(), server.register(), server.register());
    let (first_token, second_token) = (fcm_token(), fcm_token());
    server.put_token(&first, GCM, &first_token);
    server.put_token(&second, GCM, &second_token);
    server.send(&sender, &first, true, 1);
    let pushes = providers.fcm.wait_for(1, DUE);
    assert_fcm_push(&pushes[0], &first_token, true, "test-access-token-1");
    server.send(&sender, &second, false, 2);
    let pushes = providers.fcm.wait_for(2, DUE);
    assert_fcm_push(&pushes[1], &second_token, false, "test-access-token-1");
    let grants = providers.token.assert_count_after(QUIET, 1);
    assert_token_request(&server, &grants[0]);
    assert!(grants[0].at <= pushes[0].at, "the access token came before the first push");
    providers.fcm.assert_count_after(Duration::ZERO, 2);
    server.wait_metric("push_fcm_sent_total", 2);
    assert_eq!(server.metric("push_apns_sent_total"), 0);
    assert_eq!(providers.apns.requests().len(), 0);
}

#[test]
fn an_fcm_401_fetches_a_new_access_token_and_retries() {
    let providers = Providers::start();
    let server = start(&providers);
    let (sender, device) = (server.register(), server.register());
    let token = fcm_token();
    server.put_token(&device, GCM, &token);
    let unauthenticated = json!({"error": {"code": 401, "status": "UNAUTHENTICATED",
        "message": "Request had invalid authentication credentials."}});
    providers.fcm.push_answer(401, &[], unauthenticated.to_string().as_bytes());
    server.send(&sender, &device, true, 1);
    let pushes = providers.fcm.wait_for(2, RETRIED);
    assert_fcm_push(&pushes[0], &token, true, "test-access-token-1");
    assert_fcm_push(&pushes[1], &token, true, "test-access-token-2");
    let grants = providers.token.assert_count_after(QUIET, 2);
    assert_token_request(&server, &grants[1]);
    assert!(grants[1].at <= pushes[1].at, "the new token came before the retry");
    providers.fcm.assert_count_after(Duration::ZERO, 2);
    server.wait_metric("push_fcm_sent_total", 1);
    assert_eq!(server.metric("push_tokens_removed_total"), 0);
}

#[test]
fn a_device_has_one_push_channel_the_last_one_set() {
    let providers = Providers::start();
    let server = start(&providers);
    let (sender, device) = (server.register(), server.register());
    let (apn_first, gcm, apn_second) = (apn_token(), fcm_token(), apn_token());
    server.put_token(&device, APN, &apn_first);
    server.put_token(&device, GCM, &gcm);
    server.send(&sender, &device, true, 1);
    let pushes = providers.fcm.wait_for(1, DUE);
    assert_fcm_push(&pushes[0], &gcm, true, "test-access-token-1");
    providers.apns.assert_count_after(QUIET, 0);
    // Setting an APNs token clears the FCM one.
    server.put_token(&device, APN, &apn_second);
    server.next_window();
    server.send(&sender, &device, true, 2);
    let pushes = providers.apns.wait_for(1, DUE);
    assert_apns_push(&server, &pushes[0], &apn_second, true);
    providers.fcm.assert_count_after(QUIET, 1);
    // Deleting it leaves the device without a channel.
    let (status, body) = request_at(&server.addr, "DELETE", APN, Some(&device), &[], b"");
    assert_eq!((status, text(&body)), (204, String::new()));
    server.next_window();
    server.send(&sender, &device, true, 3);
    providers.apns.assert_count_after(QUIET, 1);
    providers.fcm.assert_count_after(Duration::ZERO, 1);
    server.wait_metric("push_apns_sent_total", 1);
    server.wait_metric("push_fcm_sent_total", 1);
}

#[test]
fn apns_429_and_503_with_retry_after_are_retried_a_second_later() {
    let providers = Providers::start();
    let server = start(&providers);
    let sender = server.register();
    let devices = [(server.register(), apn_token()), (server.register(), apn_token())];
    let answers = [(429, "TooManyRequests"), (503, "ServiceUnavailable")];
    for (index, ((device, token), (status, reason))) in devices.iter().zip(answers).enumerate() {
        server.put_token(device, APN, token);
        let body = json!({ "reason": reason }).to_string();
        providers.apns.push_answer(status, &[("retry-after", "1")], body.as_bytes());
        server.send(&sender, device, true, index as u64 + 1);
        let pushes = providers.apns.wait_for(2 * index + 2, RETRIED);
        let (first_try, retry) = (&pushes[2 * index], &pushes[2 * index + 1]);
        assert_apns_push(&server, first_try, token, true);
        assert_apns_push(&server, retry, token, true);
        let gap = retry.at.duration_since(first_try.at);
        assert!(gap >= Duration::from_millis(900), "{status}: retried after {gap:?}");
        server.wait_metric("push_apns_sent_total", index as u64 + 1);
        assert_eq!(server.metric("push_retried_total"), index as u64 + 1, "{status}");
    }
    providers.apns.assert_count_after(QUIET, 4);
    assert_eq!(server.metric("push_failed_total"), 0);
    assert_eq!(server.metric("push_tokens_removed_total"), 0);
}

#[test]
fn a_push_gives_up_after_retries_max_retries_and_keeps_the_token() {
    let providers = Providers::start();
    let server = start_with(&providers, |config| {
        config.push.retries_max = 2;
        config.push.retry_backoff_ms = 100;
    });
    let (sender, device) = (server.register(), server.register());
    let token = apn_token();
    server.put_token(&device, APN, &token);
    for _ in 0..3 {
        let body = br#"{"reason":"InternalServerError"}"#;
        providers.apns.push_answer(500, &[("retry-after", "1")], body);
    }
    server.send(&sender, &device, true, 1);
    let pushes = providers.apns.wait_for(3, RETRIED);
    for push in &pushes {
        assert_apns_push(&server, push, &token, true);
    }
    server.wait_metric("push_failed_total", 1);
    assert_eq!(server.metric("push_retried_total"), 2);
    assert_eq!(server.metric("push_apns_sent_total"), 0);
    providers.apns.assert_count_after(QUIET, 3);
    // A failure is not a dead token: the next window pushes again.
    server.next_window();
    server.send(&sender, &device, true, 2);
    let pushes = providers.apns.wait_for(4, DUE);
    assert_apns_push(&server, &pushes[3], &token, true);
    server.wait_metric("push_apns_sent_total", 1);
    assert_eq!(server.metric("push_tokens_removed_total"), 0);
}

#[test]
fn apns_410_removes_the_token_only_when_unregistered_after_its_registration() {
    let providers = Providers::start();
    let server = start(&providers);
    let (sender, gone, kept) = (server.register(), server.register(), server.register());
    let (gone_token, kept_token) = (apn_token(), apn_token());
    // Both tokens are registered at START_MS on the server's clock.
    server.put_token(&gone, APN, &gone_token);
    server.put_token(&kept, APN, &kept_token);
    let unregistered = |timestamp: u64| {
        json!({"reason": "Unregistered", "timestamp": timestamp}).to_string().into_bytes()
    };
    providers.apns.push_answer(410, &[], &unregistered(START_MS + 1_000));
    server.send(&sender, &gone, true, 1);
    let pushes = providers.apns.wait_for(1, DUE);
    assert_apns_push(&server, &pushes[0], &gone_token, true);
    server.wait_metric("push_tokens_removed_total", 1);
    providers.apns.push_answer(410, &[], &unregistered(START_MS - 1_000));
    server.send(&sender, &kept, true, 2);
    let pushes = providers.apns.wait_for(2, DUE);
    assert_apns_push(&server, &pushes[1], &kept_token, true);
    providers.apns.assert_count_after(QUIET, 2);
    assert_eq!(server.metric("push_tokens_removed_total"), 1, "the older 410 keeps the token");
    server.next_window();
    server.send(&sender, &gone, true, 3);
    server.send(&sender, &kept, true, 4);
    let pushes = providers.apns.wait_for(3, DUE);
    assert_apns_push(&server, &pushes[2], &kept_token, true);
    providers.apns.assert_count_after(QUIET, 3);
    server.wait_metric("push_apns_sent_total", 1);
}

#[test]
fn bad_device_token_and_fcm_unregistered_remove_the_token() {
    let providers = Providers::start();
    let server = start(&providers);
    let (sender, iphone, android) = (server.register(), server.register(), server.register());
    let (apn, gcm) = (apn_token(), fcm_token());
    server.put_token(&iphone, APN, &apn);
    server.put_token(&android, GCM, &gcm);
    providers.apns.push_answer(400, &[], br#"{"reason":"BadDeviceToken"}"#);
    let unregistered = json!({"error": {"code": 404, "status": "NOT_FOUND", "details": [{
        "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
        "errorCode": "UNREGISTERED"}]}});
    providers.fcm.push_answer(404, &[], unregistered.to_string().as_bytes());
    server.send(&sender, &iphone, true, 1);
    server.send(&sender, &android, true, 2);
    assert_apns_push(&server, &providers.apns.wait_for(1, DUE)[0], &apn, true);
    assert_fcm_push(&providers.fcm.wait_for(1, DUE)[0], &gcm, true, "test-access-token-1");
    server.wait_metric("push_tokens_removed_total", 2);
    server.next_window();
    server.send(&sender, &iphone, true, 3);
    server.send(&sender, &android, true, 4);
    providers.apns.assert_count_after(QUIET, 1);
    providers.fcm.assert_count_after(Duration::ZERO, 1);
    assert_eq!(server.metric("push_tokens_removed_total"), 2);
}

#[test]
fn a_provider_that_is_down_never_fails_or_slows_a_send() {
    let providers = Providers::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    // Accepts connections (in the kernel's backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let server = start_with(&providers, |config| {
        config.push.apns.as_mut().unwrap().base_url = format!("http://{closed}");
        config.push.fcm.as_mut().unwrap().base_url = silent_url;
        config.push.retry_backoff_ms = 100;
        config.push.request_timeout_ms = 1_000;
    });
    let (sender, iphone, android) = (server.register(), server.register(), server.register());
    server.put_token(&iphone, APN, &apn_token());
    server.put_token(&android, GCM, &fcm_token());
    for timestamp in 1..=10 {
        let started = Instant::now();
        server.send(&sender, &iphone, true, timestamp);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "send {timestamp} took {:?}",
            started.elapsed()
        );
    }
    server.wait_metric("push_failed_total", 1);
    assert_eq!(server.metric("push_apns_sent_total"), 0);
    for timestamp in 11..=20 {
        let started = Instant::now();
        server.send(&sender, &android, true, timestamp);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "send {timestamp} took {:?}",
            started.elapsed()
        );
    }
    for (device, timestamps) in [(&iphone, 1..=10), (&android, 11..=20)] {
        let mut ws = server.connect(device);
        let backlog: Vec<u64> =
            drain_backlog(&mut ws).iter().map(|e| e["timestamp"].as_u64().unwrap()).collect();
        assert_eq!(backlog, timestamps.collect::<Vec<u64>>());
        server.close(ws);
    }
}

/// `PUT /v1/messages/{to}` from `sender`: (status, `Retry-After`).
fn try_send(
    server: &TestServer,
    sender: &Account,
    to: &Account,
    timestamp: u64,
) -> (u16, Option<String>) {
    let body = send_body(&[(1, REGISTRATION_ID)], b"hi", false, timestamp);
    let path = format!("/v1/messages/{}", to.uuid);
    let (status, head, _) =
        common::request_head_at(&server.addr, "PUT", &path, Some(sender), &body);
    (status, common::header_value(&head, "retry-after"))
}

#[test]
fn a_rate_limited_sender_lifts_its_limit_with_a_push_challenge() {
    let providers = Providers::start();
    let server = start_with(&providers, |config| {
        config.rate_limits.messages_per_pair.permits = 2;
        config.rate_limits.messages_per_pair.period_ms = 86_400_000;
    });
    let (sender, recipient) = (server.register(), server.register());
    let token = apn_token();
    server.put_token(&sender, APN, &token);
    assert_eq!(try_send(&server, &sender, &recipient, 1).0, 200);
    assert_eq!(try_send(&server, &sender, &recipient, 2).0, 200);
    let (status, retry_after) = try_send(&server, &sender, &recipient, 3);
    assert_eq!(status, 429);
    assert!(retry_after.unwrap().parse::<u64>().unwrap() >= 1);
    // A wrong answer is refused and counted; a malformed one is 400.
    let answer = |challenge: &str| {
        let body = json!({"type": "rateLimitPushChallenge", "challenge": challenge}).to_string();
        request_at(&server.addr, "PUT", "/v1/challenge", Some(&sender), &[], body.as_bytes())
    };
    let (status, body) = answer("0123");
    assert_eq!((status, error_body(&body).0), (428, 428));
    assert_eq!(server.metric("push_challenges_failed_total"), 1);
    let captcha = json!({"type": "captcha", "challenge": "x"}).to_string();
    let put =
        |body: &[u8]| request_at(&server.addr, "PUT", "/v1/challenge", Some(&sender), &[], body);
    assert_eq!(put(captcha.as_bytes()).0, 400);
    assert_eq!(put(b"{not json").0, 400);
    assert_eq!(put(br#"{"type":"rateLimitPushChallenge"}"#).0, 400);
    // The challenge push carries the token to the device.
    let (status, _) =
        request_at(&server.addr, "POST", "/v1/challenge/push", Some(&sender), &[], b"");
    assert_eq!(status, 200);
    let push = providers.apns.wait_for(1, DUE).remove(0);
    let challenge = assert_apns_challenge(&server, &push, &token, "rateLimitChallenge");
    assert_eq!(answer(&challenge).0, 200);
    assert_eq!(try_send(&server, &sender, &recipient, 4).0, 200, "the limit is lifted");
    assert_eq!(answer(&challenge).0, 428, "a challenge is single use");
}

#[test]
fn challenge_pushes_need_a_push_token_and_credentials() {
    let providers = Providers::start();
    let server = start(&providers);
    let device = server.register();
    let (status, body) =
        request_at(&server.addr, "POST", "/v1/challenge/push", Some(&device), &[], b"");
    assert_eq!((status, error_body(&body).0), (404, 404));
    assert_eq!(request_at(&server.addr, "POST", "/v1/challenge/push", None, &[], b"").0, 401);
    assert_eq!(
        request_at(&server.addr, "GET", "/v1/challenge/push", Some(&device), &[], b"").0,
        405
    );
    assert_eq!(request_at(&server.addr, "POST", "/v1/challenge", Some(&device), &[], b"").0, 405);
    // An expired challenge is refused.
    let token = apn_token();
    server.put_token(&device, APN, &token);
    assert_eq!(
        request_at(&server.addr, "POST", "/v1/challenge/push", Some(&device), &[], b"").0,
        200
    );
    let push = providers.apns.wait_for(1, DUE).remove(0);
    let challenge = assert_apns_challenge(&server, &push, &token, "rateLimitChallenge");
    server.clock.advance_ms(300_000);
    let body = json!({"type": "rateLimitPushChallenge", "challenge": challenge}).to_string();
    let (status, _) =
        request_at(&server.addr, "PUT", "/v1/challenge", Some(&device), &[], body.as_bytes());
    assert_eq!(status, 428);
}

/// `POST /v1/verification/session` for `token` of `kind`: (status, JSON).
fn open_session(server: &TestServer, token: &str, kind: &str) -> (u16, Value) {
    let body = json!({"pushToken": token, "pushTokenType": kind}).to_string();
    let path = "/v1/verification/session";
    let (status, answer) = request_at(&server.addr, "POST", path, None, &[], body.as_bytes());
    (status, serde_json::from_slice(&answer).unwrap_or(Value::Null))
}

/// `PUT /v1/accounts` with `sessionId` and no registration token: the status.
fn register_with_session(server: &TestServer, session_id: &str) -> u16 {
    let body = json!({"password": "pw-session-1", "registrationId": REGISTRATION_ID,
                      "sessionId": session_id})
    .to_string();
    request_at(&server.addr, "PUT", "/v1/accounts", None, &[], body.as_bytes()).0
}

#[test]
fn a_verification_session_proves_a_device_by_push_and_registers_once() {
    let providers = Providers::start();
    let server = start_with(&providers, |config| {
        config.registration_token = Some("shared-secret".into());
    });
    let token = apn_token();
    let (status, state) = open_session(&server, &token, "apn");
    assert_eq!(status, 200, "{state}");
    let id = state["id"].as_str().expect("a session id").to_string();
    assert_eq!(
        state,
        json!({"id": id, "requestedInformation": ["pushChallenge"], "verified": false})
    );
    let push = providers.apns.wait_for(1, DUE).remove(0);
    let challenge = assert_apns_challenge(&server, &push, &token, "challenge");
    assert_eq!(register_with_session(&server, &id), 403, "not verified yet");
    let patch = |answer: &str| {
        let body = json!({ "pushChallenge": answer }).to_string();
        let path = format!("/v1/verification/session/{id}");
        request_at(&server.addr, "PATCH", &path, None, &[], body.as_bytes())
    };
    let (status, answer) = patch("0000");
    assert_eq!((status, error_body(&answer).0), (428, 428));
    let (status, answer) = patch(&challenge);
    assert_eq!(status, 200);
    let state: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(state, json!({"id": id, "requestedInformation": [], "verified": true}));
    assert_eq!(register_with_session(&server, &id), 200, "in place of the registration token");
    assert_eq!(register_with_session(&server, &id), 403, "a session registers once");
    let plain = json!({"password": "pw-plain-1", "registrationId": REGISTRATION_ID}).to_string();
    assert_eq!(request_at(&server.addr, "PUT", "/v1/accounts", None, &[], plain.as_bytes()).0, 403);
    assert_eq!(server.metric("push_challenges_failed_total"), 1);
}

#[test]
fn verification_sessions_refuse_hostile_input() {
    let providers = Providers::start();
    let server = start(&providers);
    assert_eq!(open_session(&server, &apn_token(), "sms").0, 400);
    assert_eq!(open_session(&server, "not-hex!", "apn").0, 422);
    assert_eq!(open_session(&server, "bad/token", "fcm").0, 422);
    let post =
        |body: &[u8]| request_at(&server.addr, "POST", "/v1/verification/session", None, &[], body);
    assert_eq!(post(b"{nope").0, 400);
    assert_eq!(post(br#"{"pushToken":"ab"}"#).0, 400);
    assert_eq!(post(br#"{"pushToken":"ab","pushTokenType":"apn","extra":1}"#).0, 400);
    let unknown = format!("/v1/verification/session/{}", Uuid::new_v4());
    let body = br#"{"pushChallenge":"x"}"#;
    assert_eq!(request_at(&server.addr, "PATCH", &unknown, None, &[], body).0, 404);
    assert_eq!(
        request_at(&server.addr, "PATCH", "/v1/verification/session/nope", None, &[], body).0,
        404
    );
    assert_eq!(request_at(&server.addr, "GET", &unknown, None, &[], b"").0, 405);
    assert_eq!(request_at(&server.addr, "GET", "/v1/verification/session", None, &[], b"").0, 405);
    assert_eq!(register_with_session(&server, "not-a-uuid"), 403);
    // An FCM token gets its challenge through FCM.
    let token = fcm_token();
    let (status, state) = open_session(&server, &token, "fcm");
    assert_eq!(status, 200);
    let push = providers.fcm.wait_for(1, DUE).remove(0);
    let challenge = assert_fcm_challenge(&push, &token, "challenge", "test-access-token-1");
    let path = format!("/v1/verification/session/{}", state["id"].as_str().unwrap());
    assert_eq!(request_at(&server.addr, "PATCH", &path, None, &[], b"[]").0, 400);
    server.clock.advance_ms(300_000);
    let late = json!({ "pushChallenge": challenge }).to_string();
    assert_eq!(request_at(&server.addr, "PATCH", &path, None, &[], late.as_bytes()).0, 428);
}

/// Issue 20, item 8: a challenge push used to be an APNs alert with the
/// `incoming-message` collapse id, so it replaced the message alert on the
/// phone. Now, as in Signal, it is a silent background push on APNs (HIGH
/// on FCM, its token under Signal's key), and only message alerts collapse.
#[test]
fn issue_20_challenge_pushes_are_silent_and_never_replace_a_message_alert() {
    let providers = Providers::start();
    let server = start(&providers);
    let (sender, iphone, android) = (server.register(), server.register(), server.register());
    let (apns_token, fcm_token) = (apn_token(), fcm_token());
    server.put_token(&iphone, APN, &apns_token);
    server.put_token(&android, GCM, &fcm_token);
    let push_challenge = |device: &Account| {
        let path = "/v1/challenge/push";
        assert_eq!(request_at(&server.addr, "POST", path, Some(device), &[], b"").0, 200);
    };
    push_challenge(&iphone);
    let pushes = providers.apns.wait_for(1, DUE);
    let challenge = assert_apns_challenge(&server, &pushes[0], &apns_token, "rateLimitChallenge");
    server.send(&sender, &iphone, true, 1);
    let pushes = providers.apns.wait_for(2, DUE);
    assert_apns_push(&server, &pushes[1], &apns_token, true);
    push_challenge(&android);
    let pushes = providers.fcm.wait_for(1, DUE);
    let token = "test-access-token-1";
    let fcm_challenge = assert_fcm_challenge(&pushes[0], &fcm_token, "rateLimitChallenge", token);
    server.send(&sender, &android, true, 2);
    let pushes = providers.fcm.wait_for(2, DUE);
    assert_fcm_push(&pushes[1], &fcm_token, true, token);
    // Each token answers its device's challenge.
    for (device, challenge) in [(&iphone, challenge), (&android, fcm_challenge)] {
        let body = json!({"type": "rateLimitPushChallenge", "challenge": challenge}).to_string();
        let (status, _) =
            request_at(&server.addr, "PUT", "/v1/challenge", Some(device), &[], body.as_bytes());
        assert_eq!(status, 200);
    }
    providers.apns.assert_count_after(QUIET, 2);
    providers.fcm.assert_count_after(Duration::ZERO, 2);
    server.wait_metric("push_apns_sent_total", 2);
    server.wait_metric("push_fcm_sent_total", 2);
}
