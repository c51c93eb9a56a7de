//! Brute force (issue 12, point 8): failed logins are limited per claimed
//! account and per source address. Over a limit the answer is 429 with
//! `Retry-After`, counted in `switchboard_rate_limited_total`, and the
//! password is not even checked; valid logins take nothing from either
//! bucket. One shard, so every login from 127.0.0.1 meets the same
//! per-address bucket (buckets are per shard).

mod common;

use common::{error_body, header_value, request_head_at, Account, Server, ServerOptions};

fn server_with(per_account: u32, per_ip: u32) -> Server {
    let config = format!(
        "{}\n[rate_limits.auth_failures_per_account]\npermits = {per_account}\nperiod_ms = 86400000\n\
         \n[rate_limits.auth_failures_per_ip]\npermits = {per_ip}\nperiod_ms = 86400000\n",
        common::TEST_LIMITS
    );
    Server::start_with(ServerOptions { shards: 1, config_toml: config, ..Default::default() })
}

fn with_password(account: &Account, password: &str) -> Account {
    Account { password: password.into(), ..account.clone() }
}

/// `GET /v1/devices` as `account`: (status, `Retry-After` header).
fn login(server: &Server, account: &Account) -> (u16, Option<String>) {
    let (status, head, body) =
        request_head_at(&server.addr(), "GET", "/v1/devices", Some(account), b"");
    if status >= 400 {
        assert_eq!(error_body(&body).0, u64::from(status), "JSON error body");
    }
    (status, header_value(&head, "retry-after"))
}

#[test]
fn an_account_is_refused_after_its_failures_without_checking_the_password() {
    let server = server_with(3, 1000);
    let victim = server.register();
    let wrong = with_password(&victim, "guess");
    for _ in 0..3 {
        assert_eq!(login(&server, &wrong), (401, None));
    }
    let (status, retry_after) = login(&server, &wrong);
    assert_eq!(status, 429);
    let seconds: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=86_400).contains(&seconds), "{seconds}");
    assert_eq!(login(&server, &victim).0, 429, "the password is not checked while spent");
    // Other accounts, from the same address, are untouched.
    let other = server.register();
    assert_eq!(login(&server, &other).0, 200);
    // The WebSocket upgrade is refused the same way.
    let upgrade = server.connect(&victim).unwrap_err();
    match upgrade {
        tungstenite::Error::Http(response) => assert_eq!(response.status().as_u16(), 429),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
    assert_eq!(server.metric("auth_failures_total"), 3);
    assert_eq!(server.metric("rate_limited_total"), 3);
    server.assert_serving();
}

#[test]
fn an_address_is_refused_after_its_failures_across_accounts() {
    let server = server_with(1000, 3);
    let accounts: Vec<Account> = (0..4).map(|_| server.register()).collect();
    for account in &accounts[..3] {
        assert_eq!(login(&server, &with_password(account, "nope")).0, 401);
    }
    let (status, retry_after) = login(&server, &with_password(&accounts[3], "nope"));
    assert_eq!(status, 429);
    assert!(retry_after.is_some());
    assert_eq!(login(&server, &accounts[3]).0, 429, "the address is spent for every account");
    // Registration needs no login and is not affected.
    server.register();
}

#[test]
fn valid_logins_take_nothing_and_malformed_credentials_count_as_failures() {
    let server = server_with(2, 3);
    let account = server.register();
    for _ in 0..50 {
        assert_eq!(login(&server, &account).0, 200);
    }
    // No credentials at all is not a failed login (just a 401 route answer).
    for _ in 0..5 {
        assert_eq!(server.request("GET", "/v1/devices", None, b"").0, 401);
    }
    assert_eq!(login(&server, &account).0, 200);
    // Malformed credentials claim no account: the address pays for them.
    let malformed = [("Authorization", "Basic !!!")];
    for _ in 0..3 {
        assert_eq!(server.request_with("GET", "/v1/devices", None, &malformed, b"").0, 401);
    }
    assert_eq!(login(&server, &account).0, 429, "the address's failures are spent");
    assert_eq!(server.metric("auth_failures_total"), 3);
}

#[test]
fn a_limit_of_zero_permits_is_off() {
    let server = server_with(0, 0);
    let account = server.register();
    let wrong = with_password(&account, "guess");
    for _ in 0..40 {
        assert_eq!(login(&server, &wrong).0, 401);
    }
    assert_eq!(login(&server, &account).0, 200);
    assert_eq!(server.metric("rate_limited_total"), 0);
}

#[test]
fn registrations_are_limited_per_address() {
    let config = format!(
        "{}\n[rate_limits.registrations_per_ip]\npermits = 3\nperiod_ms = 86400000\n",
        common::TEST_LIMITS
    );
    let server =
        Server::start_with(ServerOptions { shards: 1, config_toml: config, ..Default::default() });
    for _ in 0..3 {
        server.register();
    }
    let body = br#"{"password":"pw-12345678","registrationId":4242}"#;
    let (status, head, answer) = request_head_at(&server.addr(), "PUT", "/v1/accounts", None, body);
    assert_eq!((status, error_body(&answer).0), (429, 429));
    assert!(header_value(&head, "retry-after").is_some());
    assert_eq!(server.metric("rate_limited_total"), 1);
}
