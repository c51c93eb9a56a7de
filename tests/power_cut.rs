//! Power cut: nothing acknowledged to a sender is lost when every write that
//! was not synced is.
//!
//! SIGKILL alone (`crash.rs`) keeps the kernel's page cache: the restarted
//! server reads back everything the dead one wrote, synced or not, so it
//! cannot catch a 200 answered before its fsync. A power cut drops what was
//! not synced, and this test makes the data directory look like one.
//!
//! How: the server runs with `tests/fixtures/synclog.c` preloaded
//! (`LD_PRELOAD`, built here with `cc`). The shim appends, for each
//! successful `fsync`/`fdatasync`, the file's path and its size when the call
//! began to a log (one `write` per line, so the log survives a SIGKILL and
//! holds a sync before the server can act on it). Senders pipeline sends as
//! in `crash.rs` (in some rounds to connected recipients that acknowledge
//! what they are delivered, so some envelopes are elided). The server is
//! killed with SIGKILL in full flow, at a moment when a WAL is longer than
//! its last logged sync (the kill waits up to 2 s for one), so that some
//! write is not durable yet. Then the power is cut on the data directory:
//! every RocksDB WAL (`NNNNNN.log`) and `MANIFEST-*` is truncated to the last
//! size the shim logged as synced for it. The server restarts on what is
//! left and every device's queue is drained. The promise checked is
//! DESIGN.md section 4's: each envelope of a send answered 200 was
//! acknowledged by its device before the cut or is queued for it after the
//! restart (duplicates allowed, loss never).
//!
//! Why this is what a power cut leaves: both kinds of file are append-only
//! (RocksDB recycles no WAL here), so what a cut can take from them is a tail
//! past the last sync, up to all of it. A file never synced is truncated to
//! zero bytes and kept: its directory entry may or may not survive a real
//! cut (ext4 commits a new entry with the next journal commit, which any
//! fsync on the file system forces, while its delayed-allocated data is not
//! written), and a file RocksDB never synced holds nothing it may rely on
//! either way. A cut may also keep part of an unsynced tail (pages written
//! back before it): the torn rounds keep a random prefix of it, most likely
//! ending inside a record, where RocksDB's point-in-time WAL recovery must
//! stop. Other files are left whole: RocksDB syncs SST, OPTIONS and CURRENT
//! (the last by a rename after the sync) before it relies on them, and its
//! info LOG carries no data. Not modelled: torn or reordered writes inside
//! the synced part, disk caches that lie about flushes, and losing the
//! directory entry of a synced file (RocksDB syncs the directory after
//! creating one).
//!
//! The test also checks that it tested something: the shim logged syncs of
//! a WAL in every round, and in each mode some round dropped unsynced WAL
//! bytes and some envelope was elided (`switchboard_messages_elided_total`).
//! Bounded: three rounds per mode, each with time limits.

mod common;
#[path = "common/flow.rs"]
mod flow;
#[path = "common/messaging.rs"]
mod messaging;

use common::{Account, Server, ServerOptions};
use flow::{Flow, Recipient};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SENDERS: usize = 4;
const RECIPIENTS: usize = 4;
/// Sends answered 200 before the cut, in a round that is not slowed down.
const SENDS_BEFORE_CUT: usize = 1500;
/// The fewest sends answered 200 for a round to count.
const SENDS_BEFORE_CUT_MIN: usize = 100;
/// The longest a round sends before the cut, however few sends got a 200.
const SENDING_TIME_MAX: Duration = Duration::from_secs(15);
/// The longest the kill waits for a WAL to hold unsynced bytes.
const UNSYNCED_WAIT_MAX: Duration = Duration::from_secs(2);
/// Per mode: (recipients connected, tail torn instead of cut at the sync).
const ROUNDS: [(bool, bool); 3] = [(false, false), (true, false), (true, true)];
const SHIM_SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/synclog.c");

/// What cutting the power did to the data directory.
#[derive(Debug, Default)]
struct Cut {
    /// WAL and MANIFEST files found.
    files: usize,
    /// Of those, files that lost bytes.
    files_cut: usize,
    /// WAL bytes dropped (written, never synced).
    wal_bytes_dropped: u64,
    /// MANIFEST bytes dropped.
    manifest_bytes_dropped: u64,
}

/// Compiles the shim into `dir`; returns the library's path.
fn build_shim(dir: &Path) -> PathBuf {
    let library = dir.join("libsynclog.so");
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(SHIM_SOURCE)
        .arg("-ldl")
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed to build {SHIM_SOURCE}");
    library
}

/// The shim log's lines as (path, size), in the order they were synced. A
/// last line still being written (no newline yet) is left out.
fn synced_lines(log: &Path) -> Vec<(PathBuf, u64)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|line| {
            let (path, size) = line.rsplit_once(' ').expect("shim line is `<path> <size>`");
            (PathBuf::from(path), size.parse().expect("shim size is a number"))
        })
        .collect()
}

/// A RocksDB WAL file: digits then `.log` (not the info `LOG`).
fn is_wal(name: &str) -> bool {
    name.strip_suffix(".log")
        .is_some_and(|stem| !stem.is_empty() && stem.bytes().all(|byte| byte.is_ascii_digit()))
}

/// A random length in `0..len` (0 when `len` is 0).
fn random_below(len: u64) -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random bytes");
    u64::from_le_bytes(bytes).checked_rem(len).unwrap_or(0)
}

/// The WAL and MANIFEST files in `data_dir` (canonical): (path, length, is a WAL).
fn wal_and_manifest_files(data_dir: &Path) -> Vec<(PathBuf, u64, bool)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(data_dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let wal = is_wal(&name);
        if wal || name.starts_with("MANIFEST-") {
            // A file RocksDB deletes meanwhile is no longer one to cut.
            let Ok(metadata) = entry.metadata() else { continue };
            files.push((data_dir.join(&name), metadata.len(), wal));
        }
    }
    files
}

/// The last size the shim logged as synced, by path.
fn last_synced(synced: &[(PathBuf, u64)]) -> HashMap<&Path, u64> {
    synced.iter().map(|(path, size)| (path.as_path(), *size)).collect()
}

/// Waits (up to [`UNSYNCED_WAIT_MAX`]) until a WAL holds bytes not logged
/// as synced, so that the kill lands while a write is not durable yet;
/// false when none was seen. The WAL is measured before the log is read, so
/// a sync ending in between cannot make synced bytes look unsynced.
fn wait_for_unsynced_wal(data_dir: &Path, sync_log: &Path) -> bool {
    let deadline = Instant::now() + UNSYNCED_WAIT_MAX;
    while Instant::now() < deadline {
        let wals: Vec<(PathBuf, u64, bool)> =
            wal_and_manifest_files(data_dir).into_iter().filter(|&(_, _, wal)| wal).collect();
        let synced = synced_lines(sync_log);
        let synced = last_synced(&synced);
        let synced_len = |path: &PathBuf| synced.get(path.as_path()).copied().unwrap_or(0);
        if wals.iter().any(|(path, len, _)| *len > synced_len(path)) {
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    false
}

/// Truncates every WAL and MANIFEST in `data_dir` (canonical) to its last
/// synced size (plus, when `torn`, a random part of its unsynced tail).
fn cut_power(data_dir: &Path, synced: &[(PathBuf, u64)], torn: bool) -> Cut {
    let last_synced = last_synced(synced);
    let mut cut = Cut::default();
    for (path, len, wal) in wal_and_manifest_files(data_dir) {
        cut.files += 1;
        let synced = last_synced.get(path.as_path()).copied().unwrap_or(0);
        assert!(synced <= len, "{}: {len} bytes, yet {synced} were synced", path.display());
        let kept = synced + if torn { random_below(len - synced) } else { 0 };
        if kept < len {
            let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            file.set_len(kept).unwrap();
            file.sync_all().unwrap();
            cut.files_cut += 1;
            match wal {
                true => cut.wal_bytes_dropped += len - kept,
                false => cut.manifest_bytes_dropped += len - kept,
            }
        }
    }
    cut
}

/// Starts the server on what the cut left; on failure, panics with its log.
fn restart(options: ServerOptions) -> Server {
    let data_dir = options.data_dir.clone().unwrap();
    let log_path = options.log_path.clone().unwrap();
    let started = std::panic::catch_unwind(|| Server::start_with(options));
    started.unwrap_or_else(|_| {
        let log = std::fs::read_to_string(log_path).unwrap_or_default();
        let rocksdb_log = std::fs::read_to_string(data_dir.join("LOG")).unwrap_or_default();
        let rocksdb_tail: Vec<&str> = rocksdb_log.lines().rev().take(30).collect();
        panic!(
            "the server did not start after the power cut.\nIts log:\n{log}\nRocksDB LOG (last \
             lines, newest first):\n{}",
            rocksdb_tail.join("\n")
        )
    })
}

/// What happened up to the kill.
struct BeforeCut {
    outcome: flow::Outcome,
    /// `switchboard_messages_elided_total` just before the kill.
    elided: u64,
    /// Whether a WAL was seen holding unsynced bytes just before the kill.
    unsynced_at_kill: bool,
}

/// Starts the server under the shim, sends in full flow, and kills it
/// (once a WAL holds unsynced bytes, if that comes soon).
fn send_until_kill(
    options: ServerOptions,
    env: &[(&str, &OsStr); 2],
    sync_log: &Path,
    connected: bool,
) -> (Vec<Recipient>, BeforeCut) {
    let mut server = Server::start_with_env(options, env);
    let data_dir = std::fs::canonicalize(&server.data_dir).unwrap();
    let second_device_from = if connected { RECIPIENTS / 2 } else { RECIPIENTS };
    let recipients = flow::register_recipients(&server, RECIPIENTS, second_device_from);
    let senders: Vec<Account> = (0..SENDERS).map(|_| server.register()).collect();

    let flow = Flow::start(&server, &recipients, senders, connected);
    flow.wait_for_sends(SENDS_BEFORE_CUT, SENDING_TIME_MAX);
    let elided = server.metric("messages_elided_total");
    let unsynced_at_kill = wait_for_unsynced_wal(&data_dir, sync_log);
    server.kill();
    let outcome = flow.join_after_kill();
    (recipients, BeforeCut { outcome, elided, unsynced_at_kill })
}

/// One round; returns what the cut did and `switchboard_messages_elided_total`
/// just before the kill.
fn power_cut_round(mode: &str, round: usize, (connected, torn): (bool, bool)) -> (Cut, u64) {
    let label = format!("{mode} round {round} (connected {connected}, torn {torn})");
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let sync_log = temp.path().join("synclog.txt");
    let options = |log_path: Option<PathBuf>| ServerOptions {
        data_dir: Some(data_dir.clone()),
        extra_args: vec!["--durability".into(), mode.into()],
        log_path,
        ..ServerOptions::default()
    };
    let shim = build_shim(temp.path());
    let env = [("LD_PRELOAD", shim.as_os_str()), ("SYNCLOG_PATH", sync_log.as_os_str())];
    let (recipients, before) = send_until_kill(options(None), &env, &sync_log, connected);
    assert!(
        before.outcome.sends_ok >= SENDS_BEFORE_CUT_MIN,
        "{label}: only {} sends were acknowledged",
        before.outcome.sends_ok
    );

    let synced = synced_lines(&sync_log);
    let wal_syncs = synced.iter().filter(|(path, _)| path_is_wal(path)).count();
    assert!(wal_syncs > 0, "{label}: the shim logged no WAL sync ({} syncs in all)", synced.len());
    let cut = cut_power(&std::fs::canonicalize(&data_dir).unwrap(), &synced, torn);

    let server = restart(options(Some(temp.path().join("restart.log"))));
    let drained = flow::drain_all(&server, &recipients);
    let tally = flow::check_nothing_lost(&label, &before.outcome, &drained);
    eprintln!(
        "power cut {label}: {tally}; {} elided before the cut; {} syncs logged ({wal_syncs} of a \
         WAL); unsynced WAL bytes seen at the kill: {}; {} of {} WAL/MANIFEST files cut, {} WAL \
         and {} MANIFEST bytes dropped",
        before.elided,
        synced.len(),
        before.unsynced_at_kill,
        cut.files_cut,
        cut.files,
        cut.wal_bytes_dropped,
        cut.manifest_bytes_dropped
    );
    (cut, before.elided)
}

fn path_is_wal(path: &Path) -> bool {
    path.file_name().is_some_and(|name| is_wal(&name.to_string_lossy()))
}

/// Runs every round of `mode`; asserts some round dropped unsynced WAL
/// bytes and some envelope was elided.
fn power_cut_rounds(mode: &str) {
    let (mut wal_bytes_dropped, mut elided) = (0, 0);
    for (round, shape) in ROUNDS.into_iter().enumerate() {
        let (cut, round_elided) = power_cut_round(mode, round, shape);
        wal_bytes_dropped += cut.wal_bytes_dropped;
        elided += round_elided;
    }
    assert!(
        wal_bytes_dropped > 0,
        "{mode}: no round dropped an unsynced WAL byte, so no round tested a power cut"
    );
    assert!(elided > 0, "{mode}: nothing was elided, so no round acknowledged before a write");
}

#[test]
fn power_cut_loses_nothing_acknowledged_in_sync_mode() {
    power_cut_rounds("sync");
}

#[test]
fn power_cut_loses_nothing_acknowledged_in_group_mode() {
    power_cut_rounds("group");
}
