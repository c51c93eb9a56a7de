//! `DELETE /v1/devices/{id}` (DESIGN.md section 2): the device, its
//! credentials and its queue are gone (nothing left in RocksDB), its live
//! session is closed, and sends that still name it answer 409.

mod common;
#[path = "common/messaging.rs"]
mod messaging;

use common::{error_body, expect_close, Account, Server};
use messaging::{link_device, send, send_body, REGISTRATION_ID};
use std::time::Duration;

#[test]
fn a_removed_device_loses_its_login_queue_and_session_and_sends_naming_it_are_409() {
    let mut server = Server::start();
    let primary = server.register_on_shard(1, 2);
    let linked = link_device(&server, &primary);
    let sender = server.register_on_shard(0, 2);
    let both = [(1, REGISTRATION_ID), (linked.device_id, REGISTRATION_ID)];
    for timestamp in 0..3 {
        let body = send_body(&both, b"queued", false, timestamp);
        assert_eq!(send(&server, Some(&sender), &primary.uuid, &body, &[]).0, 200);
    }
    let mut live = server.connect(&linked).unwrap();
    let path = format!("/v1/devices/{}", linked.device_id);
    let (status, body) = server.request("DELETE", &path, Some(&primary), b"");
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    assert_eq!(expect_close(&mut live), Some(4401), "the live session is closed");
    assert!(server.connect(&linked).is_err(), "its credentials are gone");
    let (status, body) = server.request("GET", "/v1/devices", Some(&primary), b"");
    assert_eq!(status, 200);
    let devices: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(devices["devices"].as_array().unwrap().len(), 1);
    let (status, body) =
        send(&server, Some(&sender), &primary.uuid, &send_body(&both, b"x", false, 9), &[]);
    assert_eq!(status, 409);
    let mismatch: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(mismatch["extraDevices"], serde_json::json!([linked.device_id]));
    assert_eq!(server.request("DELETE", &path, Some(&primary), b"").0, 404, "already gone");

    // Nothing of the device is left on disk.
    let data_dir = server.data_dir.clone();
    server.kill();
    let store = switchboard::store::Store::open(&data_dir, 2).unwrap();
    let shard = switchboard::shard::owner(&primary.uuid, 2);
    let (queue, _) = switchboard::store::messages::read_page(
        &store,
        shard,
        &primary.uuid,
        linked.device_id,
        None,
        100,
    )
    .unwrap();
    assert!(queue.is_empty(), "{} items left in the removed device's queue", queue.len());
    let (primary_queue, _) =
        switchboard::store::messages::read_page(&store, shard, &primary.uuid, 1, None, 100)
            .unwrap();
    assert_eq!(primary_queue.len(), 3, "the primary's queue is untouched");
    let records = switchboard::store::accounts::load(&store, shard).unwrap();
    let (_, record) = records.iter().find(|(uuid, _)| *uuid == primary.uuid).unwrap();
    assert_eq!(record.devices.iter().map(|d| d.id).collect::<Vec<_>>(), vec![1]);
}

#[test]
fn a_device_may_remove_itself_but_not_others_and_the_primary_stays() {
    let server = Server::start();
    let primary = server.register();
    let second = link_device(&server, &primary);
    let third = link_device(&server, &primary);
    let other_account = server.register();
    let cases: Vec<(&str, String, Option<&Account>, u16)> = vec![
        ("DELETE", format!("/v1/devices/{}", third.device_id), None, 401),
        ("DELETE", format!("/v1/devices/{}", third.device_id), Some(&second), 403),
        ("DELETE", "/v1/devices/1".into(), Some(&primary), 403),
        ("DELETE", "/v1/devices/1".into(), Some(&second), 403),
        ("DELETE", "/v1/devices/9".into(), Some(&primary), 404),
        ("DELETE", format!("/v1/devices/{}", second.device_id), Some(&other_account), 404),
        ("DELETE", "/v1/devices/x".into(), Some(&primary), 404),
        ("DELETE", "/v1/devices/-1".into(), Some(&primary), 404),
        ("DELETE", "/v1/devices/99999999999".into(), Some(&primary), 404),
        ("PUT", "/v1/devices/2".into(), Some(&primary), 405),
    ];
    for (method, path, caller, expected) in cases {
        let (status, body) = server.request(method, &path, caller, b"");
        assert_eq!(status, expected, "{method} {path}");
        assert_eq!(error_body(&body).0, u64::from(expected), "{method} {path}");
    }
    let path = format!("/v1/devices/{}", third.device_id);
    assert_eq!(server.request("DELETE", &path, Some(&third), b"").0, 204, "itself");
    common::wait_until("the login to fail", Duration::from_secs(5), || {
        server.request("GET", "/v1/devices", Some(&third), b"").0 == 401
    });
    assert_eq!(server.request("GET", "/v1/devices", Some(&second), b"").0, 200);
    server.assert_serving();
}
