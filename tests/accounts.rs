//! Registration, the registration token, device listing and every way a
//! login can fail, against the real server with 2 shards.

mod common;

use common::{error_body, Server, ServerOptions, TEST_LIMITS};
use uuid::Uuid;

#[test]
fn registration_returns_uuid_and_primary_device() {
    let server = Server::start();
    let account = server.register();
    let (status, body) = server.request("GET", "/v1/devices", Some(&account), b"");
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let devices = json["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["id"], 1);
}

#[test]
fn accounts_land_on_both_shards_and_each_authenticates() {
    let server = Server::start();
    for shard in 0..2 {
        let account = server.register_on_shard(shard, 2);
        let (status, _) = server.request("GET", "/v1/devices", Some(&account), b"");
        assert_eq!(status, 200, "account on shard {shard}");
    }
}

#[test]
fn registration_token_is_required_when_configured() {
    let server = Server::start_with(ServerOptions {
        config_toml: format!("registration_token = \"let-me-in\"\n{TEST_LIMITS}"),
        ..ServerOptions::default()
    });
    let (status, body) = server.register_with_token(None).unwrap_err();
    assert_eq!(status, 403);
    assert_eq!(error_body(&body).0, 403);
    let (status, _) = server.register_with_token(Some("let-me-out")).unwrap_err();
    assert_eq!(status, 403);
    let (status, _) = server.register_with_token(Some("let-me-i")).unwrap_err();
    assert_eq!(status, 403);
    let account = server.register_with_token(Some("let-me-in")).expect("right token registers");
    let (status, _) = server.request("GET", "/v1/devices", Some(&account), b"");
    assert_eq!(status, 200);
}

#[test]
fn accounts_survive_a_restart() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let options = || ServerOptions { data_dir: Some(data_dir.clone()), ..ServerOptions::default() };
    let mut server = Server::start_with(options());
    let accounts: Vec<_> = (0..6).map(|_| server.register()).collect();
    server.kill();
    let server = Server::start_with(options());
    for account in &accounts {
        let (status, _) = server.request("GET", "/v1/devices", Some(account), b"");
        assert_eq!(status, 200);
    }
}

#[test]
fn every_login_failure_is_the_same_401() {
    let server = Server::start();
    let account = server.register();
    let mut wrong_password = account.clone();
    wrong_password.password.push('x');
    let mut unknown_account = account.clone();
    unknown_account.uuid = Uuid::new_v4();
    let mut unknown_device = account.clone();
    unknown_device.device_id = 2;
    let mut bodies = Vec::new();
    for bad in [&wrong_password, &unknown_account, &unknown_device] {
        let (status, body) = server.request("GET", "/v1/devices", Some(bad), b"");
        assert_eq!(status, 401);
        bodies.push(body);
        let error = server.connect(bad).unwrap_err();
        match error {
            tungstenite::Error::Http(response) => assert_eq!(response.status(), 401),
            other => panic!("expected HTTP 401, got {other:?}"),
        }
    }
    assert!(bodies.windows(2).all(|pair| pair[0] == pair[1]), "401 bodies differ: {bodies:?}");
    for header in ["Basic", "Basic !!!", "Bearer abc", "Basic bm9jb2xvbg=="] {
        let (status, _) =
            server.request_with("GET", "/v1/devices", None, &[("Authorization", header)], b"");
        assert_eq!(status, 401, "{header}");
    }
    let (status, _) = server.request("GET", "/v1/devices", None, b"");
    assert_eq!(status, 401, "no credentials");
    for query in [
        "",
        "?login=nope&password=x",
        &format!("?login={}", account.uuid),
        &format!("?login={}.0&password={}", account.uuid, account.password),
    ] {
        let url = format!("ws://{}/v1/websocket/{query}", server.addr());
        match common::connect_url(&url).unwrap_err() {
            tungstenite::Error::Http(response) => assert_eq!(response.status(), 401, "{query}"),
            other => panic!("{query}: {other:?}"),
        }
    }
    server.assert_serving();
}

#[test]
fn websocket_accepts_basic_auth_header() {
    let server = Server::start();
    let account = server.register();
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{}/v1/websocket/",
        server.addr()
    ))
    .unwrap();
    request.headers_mut().insert("Authorization", account.basic().parse().unwrap());
    let (mut ws, response) = tungstenite::connect(request).expect("upgrade with header auth");
    assert_eq!(response.status(), 101);
    let reply = common::ws_call(&mut ws, 1, "GET", "/v1/devices", None);
    assert_eq!(reply.status, 200);
}
