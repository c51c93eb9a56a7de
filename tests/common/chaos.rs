//! Test support for the Jepsen-style loss tests (`tests/cluster_chaos.rs`),
//! the part every thread shares: the settings a run reads from the
//! environment, a seeded random source, the fault kinds, the table of nodes
//! that serve at the moment, and the sender threads that record every
//! send's answer. The recipient devices are in `chaos_devices.rs`, the
//! tally and checks of what both recorded in `chaos_check.rs`.
//!
//! Invariants: a [`SendLog`] holds each timestamp at most once (a second
//! record of one panics) and [`SendLog::acked`] is exactly its sends
//! answered 200; a sender never panics on a fault's effect (a refused or
//! reset connection, a silent socket is recorded as status 0, not
//! acknowledged), and ends with an `Err` the test fails on only for what
//! must never happen (a status other than 200, 503 or no answer). Every
//! wait is bounded ([`ANSWER_WAIT`], [`Settings::faults_max`],
//! [`SECS_MAX`]); [`StopOnDrop`] raises every flag, so a failing test
//! never leaves a thread running.
//!
//! Include it with `mod common;`, `#[path = "common/messaging.rs"] mod
//! messaging;`, `#[path = "common/cluster.rs"] mod cluster;` and
//! `#[path = "common/chaos.rs"] mod chaos;` (and the other `chaos_*`
//! modules the same way).
#![allow(dead_code)]

use crate::common::Account;
use crate::messaging::{send_body, REGISTRATION_ID};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Seconds of faults per test (default [`SECS_DEFAULT`]).
pub const SECS_ENV: &str = "SWITCHBOARD_CHAOS_SECS";
/// The seed of every random choice (default: from the clock, printed).
pub const SEED_ENV: &str = "SWITCHBOARD_CHAOS_SEED";
/// Set (to anything), the node logs of every run are kept, not only a
/// failed run's.
pub const KEEP_LOGS_ENV: &str = "SWITCHBOARD_CHAOS_KEEP_LOGS";
/// The fault period of the short run `.ci/run` makes.
pub const SECS_DEFAULT: u64 = 12;
/// The longest fault period the tests accept (a limit on everything).
pub const SECS_MAX: u64 = 3600;
/// Faults a run makes at least, however short its period.
pub const FAULTS_MIN: usize = 2;
/// How long a send waits for its answer (a frozen node answers nothing).
pub const ANSWER_WAIT: Duration = Duration::from_secs(10);
/// A sender's pause after an acknowledged send.
const SEND_PACE: Duration = Duration::from_millis(15);
/// A sender's or device's pause after a refusal, or while no node serves.
pub const REFUSED_PACE: Duration = Duration::from_millis(100);

/// What a run reads from the environment.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The fault period: faults start until it ends (at least [`FAULTS_MIN`]).
    pub secs: u64,
    pub seed: u64,
}

impl Settings {
    /// Reads [`SECS_ENV`] and [`SEED_ENV`]; panics naming a bad value.
    pub fn from_env() -> Self {
        let read = |name: &str| -> Option<u64> {
            let text = std::env::var(name).ok()?;
            Some(text.trim().parse().unwrap_or_else(|_| panic!("{name}={text:?} is not a number")))
        };
        let secs = read(SECS_ENV).unwrap_or(SECS_DEFAULT);
        assert!((1..=SECS_MAX).contains(&secs), "{SECS_ENV}={secs}: 1 to {SECS_MAX} seconds");
        let seed = read(SEED_ENV).unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map(|d| d.as_nanos() as u64).unwrap_or(1) % 1_000_000_000
        });
        Self { secs, seed }
    }

    /// The most faults a run makes: one per 2 s of its period at most.
    pub fn faults_max(&self) -> usize {
        (self.secs as usize / 2).max(FAULTS_MIN)
    }
}

/// A seeded random source (splitmix64): the same seed, the same choices.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "a choice among nothing");
        (self.next_u64() % n as u64) as usize
    }

    /// A duration between `low_ms` and `high_ms`, inclusive.
    pub fn millis(&mut self, low_ms: u64, high_ms: u64) -> Duration {
        assert!(low_ms <= high_ms);
        Duration::from_millis(low_ms + self.next_u64() % (high_ms - low_ms + 1))
    }
}

/// The kind of fault a test makes, one at a time, again and again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `kill -9` of a node, then its restart on its data directory.
    NodeKill,
    /// `kill -9` of the NATS server leading a recipient's partition log
    /// stream, then its restart on its store.
    NatsLeaderKill,
    /// `SIGSTOP` of a node, then `SIGCONT`.
    NodePause,
}

impl Fault {
    /// Its name in the printed lines and the table.
    pub fn name(self) -> &'static str {
        match self {
            Fault::NodeKill => "node-kill",
            Fault::NatsLeaderKill => "nats-leader-kill",
            Fault::NodePause => "node-pause",
        }
    }
}

/// The client address of every node that serves now (`None` while it is
/// killed or frozen), shared by the threads that pick a node to talk to.
#[derive(Default)]
pub struct Serving {
    addrs: Mutex<Vec<Option<String>>>,
}

impl Serving {
    pub fn new(addrs: Vec<String>) -> Arc<Self> {
        Arc::new(Self { addrs: Mutex::new(addrs.into_iter().map(Some).collect()) })
    }

    /// Marks node `i` as serving at `addr`, or not serving (`None`).
    pub fn set(&self, i: usize, addr: Option<String>) {
        self.addrs.lock().unwrap()[i] = addr;
    }

    /// The first serving node from `prefer` on (wrapping): index and address.
    pub fn pick(&self, prefer: usize) -> Option<(usize, String)> {
        let addrs = self.addrs.lock().unwrap();
        let count = addrs.len();
        (0..count)
            .map(|k| (prefer + k) % count)
            .find_map(|i| addrs[i].clone().map(|addr| (i, addr)))
    }
}

/// Flags the test's threads watch; every one is raised on drop, so a
/// failing test never leaves a thread running.
#[derive(Default)]
pub struct Flags {
    /// Senders stop.
    pub stop_sending: AtomicBool,
    /// Devices end their socket, drain to queue-empty once more and stop.
    pub drain: AtomicBool,
    /// Everything stops at once (the test failed).
    pub abort: AtomicBool,
}

/// Raises every flag of [`Flags`] when dropped.
pub struct StopOnDrop(pub Arc<Flags>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop_sending.store(true, Ordering::SeqCst);
        self.0.abort.store(true, Ordering::SeqCst);
    }
}

/// One send: to which recipient, through which node, when it was made
/// and answered (since the run's start) and its status (0: no answer, the
/// connection failed).
#[derive(Debug, Clone, Copy)]
pub struct SendRecord {
    pub recipient: usize,
    pub via: usize,
    pub sent_at: Duration,
    pub answered_at: Duration,
    pub status: u16,
}

/// Every send by timestamp, and which were acknowledged (200).
#[derive(Debug, Default)]
pub struct SendLog {
    pub sends: BTreeMap<u64, SendRecord>,
    pub acked: BTreeSet<u64>,
}

impl SendLog {
    /// Records a send's answer; `Err` for anything but 200, 503 or 0.
    pub fn record(&mut self, timestamp: u64, send: SendRecord, answer: &str) -> Result<(), String> {
        let previous = self.sends.insert(timestamp, send);
        assert!(previous.is_none(), "timestamp {timestamp} sent twice");
        match send.status {
            200 => {
                self.acked.insert(timestamp);
                Ok(())
            }
            503 | 0 => Ok(()),
            other => Err(format!("send {timestamp} through node {}: {other} {answer}", send.via)),
        }
    }

    pub fn merge(&mut self, other: SendLog) {
        for (timestamp, send) in other.sends {
            assert!(self.sends.insert(timestamp, send).is_none(), "timestamp {timestamp} twice");
        }
        self.acked.extend(other.acked);
    }
}

/// One sender thread's part: its account, the node it prefers, the
/// recipients it sends to in turn and its first timestamp.
pub struct SenderPlan {
    pub account: Account,
    pub prefer: usize,
    pub recipients: Vec<Uuid>,
    pub first_timestamp: u64,
}

/// Sends until [`Flags::stop_sending`], through the preferred node or the
/// next serving one, recording every answer; stops at the first answer
/// that is neither 200, 503 nor a failed connection.
pub fn spawn_sender(
    plan: SenderPlan,
    serving: Arc<Serving>,
    flags: Arc<Flags>,
    started: Instant,
) -> JoinHandle<Result<SendLog, String>> {
    std::thread::spawn(move || {
        let mut log = SendLog::default();
        let mut n = 0u64;
        while !flags.stop_sending.load(Ordering::SeqCst) {
            let Some((via, addr)) = serving.pick(plan.prefer) else {
                std::thread::sleep(REFUSED_PACE);
                continue;
            };
            let recipient = n as usize % plan.recipients.len();
            let timestamp = plan.first_timestamp + n;
            let sent_at = started.elapsed();
            let (status, answer) =
                try_send(&addr, &plan.account, &plan.recipients[recipient], timestamp);
            let answered_at = started.elapsed();
            let send = SendRecord { recipient, via, sent_at, answered_at, status };
            log.record(timestamp, send, &answer)?;
            n += 1;
            std::thread::sleep(if status == 200 { SEND_PACE } else { REFUSED_PACE });
        }
        Ok(log)
    })
}

/// `PUT /v1/messages/{dest}` (content `m{timestamp}`, as
/// [`crate::cluster::send_at`]) on a new connection: the status (0 when
/// the connection fails or ends without an answer) and the answer's text.
pub fn try_send(addr: &str, sender: &Account, dest: &Uuid, timestamp: u64) -> (u16, String) {
    let content = crate::cluster::message(timestamp);
    let body = send_body(&[(1, REGISTRATION_ID)], content.as_bytes(), false, timestamp);
    let head = format!(
        "PUT /v1/messages/{dest} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\
         Authorization: {}\r\nConnection: close\r\n\r\n",
        body.len(),
        sender.basic()
    );
    let Ok(socket) = addr.parse::<SocketAddr>() else { return (0, format!("bad address {addr}")) };
    let mut stream = match TcpStream::connect_timeout(&socket, Duration::from_secs(1)) {
        Ok(stream) => stream,
        Err(error) => return (0, format!("connect {addr}: {error}")),
    };
    let _ = stream.set_read_timeout(Some(ANSWER_WAIT));
    let _ = stream.set_write_timeout(Some(ANSWER_WAIT));
    if let Err(error) = stream.write_all(&[head.into_bytes(), body].concat()) {
        return (0, format!("write to {addr}: {error}"));
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}
