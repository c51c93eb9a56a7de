//! Crash safety: nothing acknowledged to a sender is lost.
//!
//! Each round starts the server as a child process, has several senders
//! pipeline framed sends over their WebSockets to recipients on both shards,
//! records every send answered 200, kills the server with SIGKILL while the
//! sends are in full flow, restarts it on the same data directory, and
//! drains every recipient's queue: each acknowledged envelope must be there,
//! byte for byte.
//!
//! In the rounds with connected recipients, each recipient's first device is
//! online during the sends and answers every delivered envelope with 200, so
//! envelopes reach it before their batch is synced and some are acknowledged
//! while their put is still in the shard's open batch (elided: never
//! written). Half of those recipients also have a second device, away, so a
//! send's 200 needs one envelope acknowledged and the other durable. There
//! the promise is DESIGN.md section 4's: each envelope of a send answered
//! 200 was acknowledged by its device before the kill, or is queued for it
//! after the restart (duplicates allowed, loss never). A device keeps an
//! envelope as acknowledged before it writes the 200 (the server may act on
//! it and die before the device hears more); one it reads only after the
//! kill is not acknowledged, so it must be queued after the restart. Those
//! rounds also check, on `switchboard_messages_elided_total`, that some
//! envelope was elided in each mode, or they would not test what they are for.
//!
//! Rounds run in `sync` and `group` durability. Bounded: a fixed number of
//! rounds, each with a time limit.

mod common;
#[path = "common/flow.rs"]
mod flow;
#[path = "common/messaging.rs"]
mod messaging;

use common::{Account, Server, ServerOptions};
use flow::Flow;
use std::time::Duration;

const SENDERS: usize = 4;
const RECIPIENTS: usize = 4;
const ACKED_BEFORE_KILL: usize = 3000;
const ROUNDS_PER_MODE: usize = 3;
const CONNECTED_ROUNDS_PER_MODE: usize = 2;
/// The longest a round sends before the kill, however few sends got a 200.
const SENDING_TIME_MAX: Duration = Duration::from_secs(20);

/// One round; returns `switchboard_messages_elided_total` just before the kill.
fn crash_round(mode: &str, round: usize, connected: bool) -> u64 {
    let label = match connected {
        true => format!("{mode} round {round}, recipients connected"),
        false => format!("{mode} round {round}"),
    };
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let options = || ServerOptions {
        data_dir: Some(data_dir.clone()),
        extra_args: vec!["--durability".into(), mode.into()],
        ..ServerOptions::default()
    };
    let mut server = Server::start_with(options());
    let second_device_from = if connected { RECIPIENTS / 2 } else { RECIPIENTS };
    let recipients = flow::register_recipients(&server, RECIPIENTS, second_device_from);
    let senders: Vec<Account> = (0..SENDERS).map(|_| server.register()).collect();

    let flow = Flow::start(&server, &recipients, senders, connected);
    flow.wait_for_sends(ACKED_BEFORE_KILL, SENDING_TIME_MAX);
    let elided = server.metric("messages_elided_total");
    // SIGKILL while the senders are still sending.
    server.kill();
    let outcome = flow.join_after_kill();
    assert!(
        outcome.sends_ok >= ACKED_BEFORE_KILL.min(100),
        "{label}: only {} sends were acknowledged",
        outcome.sends_ok
    );
    assert!(
        !connected || !outcome.seen.acked.is_empty(),
        "{label}: the connected devices acknowledged nothing before the kill"
    );

    let server = Server::start_with(options());
    let drained = flow::drain_all(&server, &recipients);
    let tally = flow::check_nothing_lost(&label, &outcome, &drained);
    eprintln!("crash {label}: {tally}; {elided} elided before SIGKILL");
    elided
}

/// The rounds with connected recipients; asserts some envelope was elided.
fn connected_rounds(mode: &str) {
    let elided: u64 =
        (0..CONNECTED_ROUNDS_PER_MODE).map(|round| crash_round(mode, round, true)).sum();
    assert!(elided > 0, "{mode}: nothing was elided, so no round acknowledged before a write");
}

#[test]
fn sigkill_loses_nothing_acknowledged_in_sync_mode() {
    for round in 0..ROUNDS_PER_MODE {
        crash_round("sync", round, false);
    }
}

#[test]
fn sigkill_loses_nothing_acknowledged_in_group_mode() {
    for round in 0..ROUNDS_PER_MODE {
        crash_round("group", round, false);
    }
}

#[test]
fn sigkill_with_connected_recipients_loses_nothing_acknowledged_in_sync_mode() {
    connected_rounds("sync");
}

#[test]
fn sigkill_with_connected_recipients_loses_nothing_acknowledged_in_group_mode() {
    connected_rounds("group");
}

#[test]
fn restart_with_another_shard_count_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let mut server = Server::start_with(ServerOptions {
        data_dir: Some(data_dir.clone()),
        ..ServerOptions::default()
    });
    server.register();
    server.kill();
    let output = std::process::Command::new(common::binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--shards", "3", "--no-pin", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("created with 2 shards"), "{stderr}");
}
