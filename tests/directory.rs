//! The contact directory: `PUT`/`DELETE /v1/accounts/discoverable` and
//! `PUT /v1/directory/lookup`. An account makes itself discoverable under
//! an identifier; the server keeps only the first 10 bytes of its SHA-256;
//! lookups by those hashes (standard Base64) answer the holders' UUIDs.
//! Covered: answers in request order, replacement, deletion, 409 on a held
//! identifier, hostile bodies (400), credentials (401), wrong verbs (405),
//! the per-account lookup budget (429 with `Retry-After`, over HTTP and over
//! the WebSocket framing), accounts and hashes on both shards, restarts and
//! the metrics.

mod common;
#[path = "common/messaging.rs"]
mod messaging;

use common::{error_body, header_value, request_head_at, ws_call, Account, Server, ServerOptions};
use messaging::link_device;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use switchboard::protocol::base64;

const DISCOVERABLE: &str = "/v1/accounts/discoverable";
const LOOKUP: &str = "/v1/directory/lookup";

/// The first 10 bytes of SHA-256(identifier): what the server stores.
fn raw_hash(identifier: &str) -> Vec<u8> {
    Sha256::digest(identifier.as_bytes())[..10].to_vec()
}

/// The lookup hash of `identifier`: standard Base64 of its raw hash.
fn hash_of(identifier: &str) -> String {
    let hash = base64::encode(&raw_hash(identifier));
    assert_eq!((hash.len(), hash.ends_with("==")), (16, true), "{hash}");
    hash
}

/// The shard (of 2) owning the directory entry of `identifier`.
fn hash_shard(identifier: &str) -> usize {
    let raw = raw_hash(identifier);
    let prefix = u64::from_be_bytes(raw[..8].try_into().unwrap());
    ((u128::from(prefix) * 2) >> 64) as usize
}

/// `count` identifiers "+1555000NNNN" whose entries shard `shard` owns.
fn identifiers_on_shard(shard: usize, count: usize) -> Vec<String> {
    let found: Vec<String> = (0..10_000)
        .map(|n| format!("+1555000{n:04}"))
        .filter(|identifier| hash_shard(identifier) == shard)
        .take(count)
        .collect();
    assert_eq!(found.len(), count, "identifiers on shard {shard}");
    found
}

/// The test limits with `limits` lines added to the one `[limits]` table,
/// and a directory lookup budget of `(permits, period_ms)` if given.
fn config(limits: &str, budget: Option<(u64, u64)>) -> String {
    let mut toml = common::TEST_LIMITS.replacen("[limits]\n", &format!("[limits]\n{limits}"), 1);
    if let Some((permits, period_ms)) = budget {
        toml.push_str(&format!(
            "\n[rate_limits.directory_lookup]\npermits = {permits}\nperiod_ms = {period_ms}\n"
        ));
    }
    toml
}

fn start(config_toml: String) -> Server {
    Server::start_with(ServerOptions { config_toml, ..ServerOptions::default() })
}

fn discoverable_body(identifier: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "identifier": identifier })).unwrap()
}

/// `PUT /v1/accounts/discoverable` with `identifier` as `account`.
fn discover(server: &Server, account: &Account, identifier: &str) -> (u16, Vec<u8>) {
    server.request("PUT", DISCOVERABLE, Some(account), &discoverable_body(identifier))
}

/// Makes `account` discoverable under `identifier`; asserts 200, empty body.
fn assert_discovered(server: &Server, account: &Account, identifier: &str) {
    let (status, body) = discover(server, account, identifier);
    assert_eq!(status, 200, "{identifier:?}: {}", String::from_utf8_lossy(&body));
    assert!(body.is_empty(), "{identifier:?}: {}", String::from_utf8_lossy(&body));
}

/// `DELETE /v1/accounts/discoverable` as `account`; asserts 200, empty body.
fn assert_forgotten(server: &Server, account: &Account) {
    let (status, body) = server.request("DELETE", DISCOVERABLE, Some(account), b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(body.is_empty(), "{}", String::from_utf8_lossy(&body));
}

/// Asserts `status` and a JSON error body `{"code": status, ...}`.
fn assert_refused(status: u16, body: &[u8], expected: u16, what: &str) {
    assert_eq!(status, expected, "{what}: {}", String::from_utf8_lossy(body));
    assert_eq!(error_body(body).0, u64::from(expected), "{what}");
}

fn lookup_body(hashes: &[String]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "hashes": hashes })).unwrap()
}

fn hashes(identifiers: &[&str]) -> Vec<String> {
    identifiers.iter().map(|identifier| hash_of(identifier)).collect()
}

/// `PUT /v1/directory/lookup` of `hashes` as `asker`.
fn lookup(server: &Server, asker: &Account, hashes: &[String]) -> (u16, Vec<u8>) {
    server.request("PUT", LOOKUP, Some(asker), &lookup_body(hashes))
}

/// Looks up the hashes of `identifiers` as `asker`; asserts 200 and
/// returns the answer.
fn look_up(server: &Server, asker: &Account, identifiers: &[&str]) -> Value {
    let (status, body) = lookup(server, asker, &hashes(identifiers));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("lookup answer is JSON")
}

/// The exact lookup answer listing `found` (identifier, holder) in order.
fn contacts(found: &[(&str, &Account)]) -> Value {
    let list: Vec<Value> = found
        .iter()
        .map(|(identifier, account)| {
            json!({ "hash": hash_of(identifier), "uuid": account.uuid.to_string() })
        })
        .collect();
    json!({ "contacts": list })
}

#[test]
fn discoverable_accounts_are_found_in_request_order_each_hash_once() {
    let server = Server::start();
    let (alice, bob, carol, asker) =
        (server.register(), server.register(), server.register(), server.register());
    assert_discovered(&server, &alice, "+15550001111");
    // Any device of the account may make it discoverable; lookups name the account.
    let bob_linked = link_device(&server, &bob);
    assert_discovered(&server, &bob_linked, "+15550002222");
    // The hash is over the identifier's UTF-8 bytes.
    assert_discovered(&server, &carol, "ünïcødé@example.org");

    let answer = look_up(
        &server,
        &asker,
        &["+15550002222", "+15559999999", "+15550001111", "+15550002222", "ünïcødé@example.org"],
    );
    let expected = contacts(&[
        ("+15550002222", &bob),
        ("+15550001111", &alice),
        ("ünïcødé@example.org", &carol),
    ]);
    assert_eq!(answer, expected, "request order, unknown absent, duplicate answered once");
    assert_eq!(
        look_up(&server, &asker, &["+15559999999", "+15558888888"]),
        json!({"contacts": []})
    );
    assert_eq!(look_up(&server, &asker, &[]), json!({"contacts": []}));
    // A discoverable account may look up too.
    assert_eq!(look_up(&server, &alice, &["+15550002222"]), contacts(&[("+15550002222", &bob)]));
}

#[test]
fn a_held_identifier_is_idempotent_for_its_account_and_409_for_others() {
    let server = Server::start();
    let (alice, bob, asker) = (server.register(), server.register(), server.register());
    assert_discovered(&server, &alice, "+15550001111");
    assert_discovered(&server, &alice, "+15550001111");
    let alice_linked = link_device(&server, &alice);
    assert_discovered(&server, &alice_linked, "+15550001111");

    let (status, body) = discover(&server, &bob, "+15550001111");
    assert_refused(status, &body, 409, "another account's identifier");
    assert_eq!(look_up(&server, &asker, &["+15550001111"]), contacts(&[("+15550001111", &alice)]));

    // A refused claim leaves the claimant's own identifier in place.
    assert_discovered(&server, &bob, "+15550002222");
    let (status, body) = discover(&server, &bob, "+15550001111");
    assert_refused(status, &body, 409, "another account's identifier, again");
    let answer = look_up(&server, &asker, &["+15550001111", "+15550002222"]);
    assert_eq!(answer, contacts(&[("+15550001111", &alice), ("+15550002222", &bob)]));
}

#[test]
fn a_new_identifier_replaces_the_old_one_which_is_then_free() {
    let server = Server::start();
    let (alice, bob, asker) = (server.register(), server.register(), server.register());
    let (old, new) = ("+15550001111", "+15550002222");
    assert_discovered(&server, &alice, old);
    assert_discovered(&server, &alice, new);
    assert_eq!(look_up(&server, &asker, &[old, new]), contacts(&[(new, &alice)]));

    assert_discovered(&server, &bob, old);
    assert_eq!(look_up(&server, &asker, &[old, new]), contacts(&[(old, &bob), (new, &alice)]));
    let (status, body) = discover(&server, &alice, old);
    assert_refused(status, &body, 409, "the old identifier is bob's now");
    assert_eq!(look_up(&server, &asker, &[new]), contacts(&[(new, &alice)]), "409 changed nothing");
}

#[test]
fn delete_hides_the_account_and_frees_its_identifier() {
    let server = Server::start();
    let (alice, bob, asker) = (server.register(), server.register(), server.register());
    assert_forgotten(&server, &alice); // not discoverable yet: still 200
    assert_discovered(&server, &alice, "+15550001111");
    assert_forgotten(&server, &alice);
    assert_eq!(look_up(&server, &asker, &["+15550001111"]), json!({"contacts": []}));
    assert_forgotten(&server, &alice); // again

    assert_discovered(&server, &bob, "+15550001111");
    assert_eq!(look_up(&server, &asker, &["+15550001111"]), contacts(&[("+15550001111", &bob)]));
    // A linked device may delete for its account.
    let bob_linked = link_device(&server, &bob);
    assert_forgotten(&server, &bob_linked);
    assert_eq!(look_up(&server, &asker, &["+15550001111"]), json!({"contacts": []}));
    assert_discovered(&server, &alice, "+15550001111");
    assert_eq!(look_up(&server, &asker, &["+15550001111"]), contacts(&[("+15550001111", &alice)]));
}

#[test]
fn invalid_discoverable_bodies_are_400_and_change_nothing() {
    let server = Server::start();
    let (alice, asker) = (server.register(), server.register());
    let too_long = "1".repeat(129);
    let too_long_multibyte = "é".repeat(65); // 65 characters, 130 bytes
    let nested = format!(r#"{{"identifier":{}{}}}"#, "[".repeat(5000), "]".repeat(5000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"{\"identifier\": ".to_vec()),
        ("empty body", Vec::new()),
        ("a JSON string", b"\"+15550001111\"".to_vec()),
        ("missing identifier", b"{}".to_vec()),
        ("number identifier", br#"{"identifier": 15550001111}"#.to_vec()),
        ("null identifier", br#"{"identifier": null}"#.to_vec()),
        ("array identifier", br#"{"identifier": ["+15550001111"]}"#.to_vec()),
        ("deeply nested identifier", nested.into_bytes()),
        ("unknown field", br#"{"identifier": "+15550001111", "extra": 1}"#.to_vec()),
        ("empty identifier", discoverable_body("")),
        ("129-byte identifier", discoverable_body(&too_long)),
        ("130-byte multibyte identifier", discoverable_body(&too_long_multibyte)),
        ("newline", discoverable_body("+1555\n0001111")),
        ("NUL", discoverable_body("+15550001111\u{0}")),
        ("tab", discoverable_body("\t+15550001111")),
        ("unit separator", discoverable_body("+1555\u{1f}0001111")),
        ("DEL", discoverable_body("+1555\u{7f}0001111")),
    ];
    for (what, body) in &cases {
        let (status, response) = server.request("PUT", DISCOVERABLE, Some(&alice), body);
        assert_refused(status, &response, 400, what);
        server.assert_serving();
    }
    let refused = [too_long.as_str(), too_long_multibyte.as_str(), "+15550001111"];
    assert_eq!(look_up(&server, &asker, &refused), json!({"contacts": []}));

    // The boundary: 128 bytes are accepted, counted in bytes of UTF-8.
    let longest = "1".repeat(128);
    assert_discovered(&server, &alice, &longest);
    let longest = longest.as_str();
    assert_eq!(look_up(&server, &asker, &[longest]), contacts(&[(longest, &alice)]));
    let longest_multibyte = "é".repeat(64);
    let longest_multibyte = longest_multibyte.as_str();
    assert_discovered(&server, &alice, longest_multibyte);
    let answer = look_up(&server, &asker, &[longest_multibyte]);
    assert_eq!(answer, contacts(&[(longest_multibyte, &alice)]));
    server.assert_serving();
}

#[test]
fn credentials_are_required_and_wrong_verbs_are_405() {
    let server = Server::start();
    let (alice, asker) = (server.register(), server.register());
    let wrong = Account { password: "not-the-password".into(), ..alice.clone() };
    let claim = discoverable_body("+15550001111");
    let claim = claim.as_slice();
    let query = lookup_body(&hashes(&["+15550001111"]));
    let query = query.as_slice();
    let empty: &[u8] = &[];
    // (method, path, caller, body, expected status)
    type Case<'a> = (&'a str, &'a str, Option<&'a Account>, &'a [u8], u16);
    let cases: Vec<Case> = vec![
        ("PUT", DISCOVERABLE, None, claim, 401),
        ("PUT", DISCOVERABLE, Some(&wrong), claim, 401),
        ("DELETE", DISCOVERABLE, None, empty, 401),
        ("DELETE", DISCOVERABLE, Some(&wrong), empty, 401),
        ("PUT", LOOKUP, None, query, 401),
        ("PUT", LOOKUP, Some(&wrong), query, 401),
        ("GET", LOOKUP, Some(&alice), empty, 405),
        ("POST", LOOKUP, Some(&alice), query, 405),
        ("DELETE", LOOKUP, Some(&alice), empty, 405),
        ("POST", DISCOVERABLE, Some(&alice), claim, 405),
        ("GET", DISCOVERABLE, Some(&alice), empty, 405),
    ];
    for (method, path, caller, body, expected) in cases {
        let (status, response) = server.request(method, path, caller, body);
        assert_refused(status, &response, expected, &format!("{method} {path}"));
    }
    assert_eq!(look_up(&server, &asker, &["+15550001111"]), json!({"contacts": []}));
    assert_eq!(server.metric("directory_lookup_hashes_total"), 1, "only the accepted lookup");
    server.assert_serving();
}

#[test]
fn invalid_lookup_bodies_are_400_and_are_not_counted() {
    let server = start(config("directory_lookup_hashes_max = 8\n", None));
    let (alice, asker) = (server.register(), server.register());
    assert_discovered(&server, &alice, "+15550001111");
    let good = hash_of("+15550001111");
    let nine: Vec<String> = (0..9).map(|n| hash_of(&format!("+1555000000{n}"))).collect();
    let nested = format!(r#"{{"hashes":{}{}}}"#, "[".repeat(5000), "]".repeat(5000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"{\"hashes\": [".to_vec()),
        ("empty body", Vec::new()),
        ("a JSON array", serde_json::to_vec(&json!([good])).unwrap()),
        ("missing hashes", b"{}".to_vec()),
        ("hashes a string", serde_json::to_vec(&json!({ "hashes": good })).unwrap()),
        ("hashes null", br#"{"hashes": null}"#.to_vec()),
        ("a number in hashes", serde_json::to_vec(&json!({ "hashes": [good, 7] })).unwrap()),
        ("an array in hashes", serde_json::to_vec(&json!({ "hashes": [[good]] })).unwrap()),
        ("deeply nested hashes", nested.into_bytes()),
        ("unknown field", serde_json::to_vec(&json!({ "hashes": [good], "x": 1 })).unwrap()),
        ("not Base64", lookup_body(&["%%%%%%%%%%%%%%==".to_string()])),
        ("9 bytes", lookup_body(&[base64::encode(&[7u8; 9])])),
        ("11 bytes", lookup_body(&[base64::encode(&[7u8; 11])])),
        ("a whole SHA-256", lookup_body(&[base64::encode(&[7u8; 32])])),
        ("empty hash", lookup_body(&[good.clone(), String::new()])),
        ("a 10000-character hash", lookup_body(&["A".repeat(10_000)])),
        ("9 hashes, over the limit of 8", lookup_body(&nine)),
    ];
    for (what, body) in &cases {
        let (status, response) = server.request("PUT", LOOKUP, Some(&asker), body);
        assert_refused(status, &response, 400, what);
        server.assert_serving();
    }
    assert_eq!(server.metric("directory_lookup_hashes_total"), 0, "refused lookups count nothing");

    let mut eight = nine[..7].to_vec();
    eight.push(good.clone());
    let (status, body) = lookup(&server, &asker, &eight);
    assert_eq!(status, 200, "8 hashes, at the limit: {}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer, contacts(&[("+15550001111", &alice)]));
    assert_eq!(server.metric("directory_lookup_hashes_total"), 8);
}

/// `PUT /v1/directory/lookup` of the hashes of `identifiers` as `account`:
/// (status, response head, body).
fn spend(server: &Server, account: &Account, identifiers: &[&str]) -> (u16, String, Vec<u8>) {
    let body = lookup_body(&hashes(identifiers));
    request_head_at(&server.addr(), "PUT", LOOKUP, Some(account), &body)
}

#[test]
fn the_lookup_budget_is_per_account_and_a_refusal_costs_nothing() {
    let budget = Some((5, 86_400_000));
    let server = start(config("directory_lookup_hashes_max = 5\n", budget));
    let (alice, asker, other) = (server.register(), server.register(), server.register());
    assert_discovered(&server, &alice, "+15550000001");
    let three = ["+15550000001", "+15550000002", "+15550000003"];

    let (status, _, body) = spend(&server, &asker, &three);
    assert_eq!(status, 200, "3 of 5: {}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer, contacts(&[("+15550000001", &alice)]));

    let (status, head, body) = spend(&server, &asker, &three);
    assert_refused(status, &body, 429, "3 more with 2 left");
    let retry_after = header_value(&head, "Retry-After").unwrap_or_else(|| panic!("{head}"));
    let seconds: u64 = retry_after.parse().unwrap_or_else(|_| panic!("whole seconds: {head}"));
    assert!((1..=86_400).contains(&seconds), "Retry-After {seconds}");

    // The refusal cost nothing: 2 still fit, then the budget is spent.
    let (status, _, body) = spend(&server, &asker, &["+15550000004", "+15550000001"]);
    assert_eq!(status, 200, "2 of the 2 left: {}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer, contacts(&[("+15550000001", &alice)]));
    let (status, head, body) = spend(&server, &asker, &["+15550000005"]);
    assert_refused(status, &body, 429, "1 more with none left");
    assert!(header_value(&head, "Retry-After").is_some(), "{head}");

    // Another account has its own budget.
    let five = ["+15550000001", "+15550000002", "+15550000003", "+15550000004", "+15550000005"];
    let (status, _, body) = spend(&server, &other, &five);
    assert_eq!(status, 200, "another account: {}", String::from_utf8_lossy(&body));
    assert_eq!(server.metric("rate_limited_total"), 2);
    assert_eq!(server.metric("directory_lookup_hashes_total"), 3 + 2 + 5);
    server.assert_serving();
}

#[test]
fn discoverable_and_lookup_work_over_the_websocket_and_429_carries_retry_after() {
    let budget = Some((5, 86_400_000));
    let server = start(config("directory_lookup_hashes_max = 5\n", budget));
    let (alice, asker) = (server.register(), server.register());
    let mut alice_ws = server.connect(&alice).unwrap();
    let claim = discoverable_body("+15550001111");
    let response = ws_call(&mut alice_ws, 1, "PUT", DISCOVERABLE, Some(&claim));
    assert_eq!(response.status, 200, "{response:?}");
    assert!(response.body.as_deref().unwrap_or_default().is_empty(), "{response:?}");

    let mut ws = server.connect(&asker).unwrap();
    let query = lookup_body(&hashes(&["+15550001111", "+15559999999"]));
    let response = ws_call(&mut ws, 1, "PUT", LOOKUP, Some(&query));
    assert_eq!(response.status, 200, "{response:?}");
    let answer: Value = serde_json::from_slice(response.body.as_deref().unwrap()).unwrap();
    assert_eq!(answer, contacts(&[("+15550001111", &alice)]));

    let four = ["+15550001111", "+15550000002", "+15550000003", "+15550000004"];
    let response = ws_call(&mut ws, 2, "PUT", LOOKUP, Some(&lookup_body(&hashes(&four))));
    assert_refused(response.status, response.body.as_deref().unwrap_or_default(), 429, "ws");
    let retry_after = response
        .headers
        .iter()
        .find_map(|header| header.strip_prefix("Retry-After: "))
        .unwrap_or_else(|| panic!("no Retry-After in {:?}", response.headers));
    let seconds: u64 = retry_after.parse().unwrap_or_else(|_| panic!("{retry_after:?}"));
    assert!(seconds >= 1, "Retry-After {seconds}");

    let three = lookup_body(&hashes(&four[..3]));
    let response = ws_call(&mut ws, 3, "PUT", LOOKUP, Some(&three));
    assert_eq!(response.status, 200, "the refusal cost nothing: {response:?}");
    let answer: Value = serde_json::from_slice(response.body.as_deref().unwrap()).unwrap();
    assert_eq!(answer, contacts(&[("+15550001111", &alice)]));

    let response = ws_call(&mut alice_ws, 2, "DELETE", DISCOVERABLE, None);
    assert_eq!(response.status, 200, "{response:?}");
    assert!(response.body.as_deref().unwrap_or_default().is_empty(), "{response:?}");
    let other = server.register();
    assert_eq!(look_up(&server, &other, &["+15550001111"]), json!({"contacts": []}));
    assert_eq!(server.metric("rate_limited_total"), 1);
    assert_eq!(server.metric("directory_lookup_hashes_total"), 2 + 3 + 1);
}

#[test]
fn accounts_and_hashes_on_both_shards_are_found_from_either_shard() {
    let server = Server::start();
    let (on_zero, on_one) = (identifiers_on_shard(0, 2), identifiers_on_shard(1, 2));
    assert!(on_zero.iter().all(|id| raw_hash(id)[0] < 0x80), "shard 0 holds hashes below 0x80");
    assert!(on_one.iter().all(|id| raw_hash(id)[0] >= 0x80));
    // Each pair of (account shard, hash shard).
    let holders = [
        (server.register_on_shard(0, 2), on_zero[0].as_str()),
        (server.register_on_shard(0, 2), on_one[0].as_str()),
        (server.register_on_shard(1, 2), on_zero[1].as_str()),
        (server.register_on_shard(1, 2), on_one[1].as_str()),
    ];
    for (account, identifier) in &holders {
        assert_discovered(&server, account, identifier);
    }
    let mut asked: Vec<&str> = holders.iter().rev().map(|(_, identifier)| *identifier).collect();
    asked.insert(2, "+15559999999");
    let expected: Vec<(&str, &Account)> =
        holders.iter().rev().map(|(account, identifier)| (*identifier, account)).collect();
    for shard in 0..2 {
        let asker = server.register_on_shard(shard, 2);
        let answer = look_up(&server, &asker, &asked);
        assert_eq!(answer, contacts(&expected), "asked from shard {shard}");
    }
    // A claim of a held identifier is refused from either shard.
    for (shard, (_, identifier)) in holders.iter().enumerate() {
        let claimant = server.register_on_shard(shard % 2, 2);
        let (status, body) = discover(&server, &claimant, identifier);
        assert_refused(status, &body, 409, identifier);
    }
    assert_eq!(server.metric("directory_lookup_hashes_total"), 2 * 5);
}

#[test]
fn the_directory_survives_a_restart() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let options = || ServerOptions { data_dir: Some(data_dir.clone()), ..ServerOptions::default() };
    let mut server = Server::start_with(options());
    let (alice, bob, carol) =
        (server.register_on_shard(0, 2), server.register_on_shard(1, 2), server.register());
    let (on_zero, on_one) = (identifiers_on_shard(0, 2), identifiers_on_shard(1, 2));
    let (alice_id, bob_id) = (on_zero[0].as_str(), on_one[0].as_str());
    let (carol_old, carol_new) = (on_one[1].as_str(), on_zero[1].as_str());
    assert_discovered(&server, &alice, alice_id);
    assert_discovered(&server, &bob, bob_id);
    assert_forgotten(&server, &bob);
    assert_discovered(&server, &carol, carol_old);
    assert_discovered(&server, &carol, carol_new);
    server.kill();

    let server = Server::start_with(options());
    let asker = server.register();
    let answer = look_up(&server, &asker, &[alice_id, bob_id, carol_old, carol_new]);
    assert_eq!(answer, contacts(&[(alice_id, &alice), (carol_new, &carol)]));
    let (status, body) = discover(&server, &asker, alice_id);
    assert_refused(status, &body, 409, "still alice's after the restart");
    let (status, body) = discover(&server, &asker, carol_new);
    assert_refused(status, &body, 409, "still carol's after the restart");
    assert_discovered(&server, &alice, alice_id); // still idempotent for its holder
    assert_discovered(&server, &asker, bob_id); // deleted: free
    let late = server.register();
    assert_discovered(&server, &late, carol_old); // replaced: free
    let answer = look_up(&server, &bob, &[bob_id, carol_old, alice_id]);
    assert_eq!(answer, contacts(&[(bob_id, &asker), (carol_old, &late), (alice_id, &alice)]));
}
