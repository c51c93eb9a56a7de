//! The cluster thread against a real 3-server NATS JetStream cluster on
//! loopback (issue 21, items 1-2): the buckets, membership with expiring
//! heartbeats, the map's create and compare-and-swap, the map watch, the
//! map surviving `kill -9` of its stream leader, and a request/reply round
//! trip measured for scale.
//!
//! The handle is driven from a monoio runtime, as a shard drives it: its
//! futures need no tokio runtime on the waiting side. Waits are bounded
//! polls with a deadline, never a sleep-then-assert.

#[path = "common/nats.rs"]
mod nats;

use bytes::Bytes;
use nats::NatsCluster;
use std::future::Future;
use std::time::{Duration, Instant};
use switchboard::cluster::nats::error::NatsError;
use switchboard::cluster::nats::handle::NatsHandle;
use switchboard::cluster::nats::options::NatsOptions;
use switchboard::cluster::nats::thread;

/// The node TTL the tests use (the default is 15 s).
const TEST_NODE_TTL_MS: u64 = 2_000;

/// The longest any single wait in these tests may take.
const WAIT_MAX: Duration = Duration::from_secs(30);

/// Runs `future` to completion on a monoio runtime, as a shard would.
fn on_shard<F: Future>(future: F) -> F::Output {
    let mut runtime =
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().build().expect("a monoio runtime");
    runtime.block_on(future)
}

/// Options for node `node` of `cluster` with the short test TTL.
fn options(nats: &NatsCluster, cluster: &str, node: &str) -> NatsOptions {
    let mut options = NatsOptions::new(nats.urls(), cluster, node);
    options.node_ttl_ms = TEST_NODE_TTL_MS;
    options.heartbeat_interval_ms = 250;
    options
}

fn start_node(
    nats: &NatsCluster,
    cluster: &str,
    node: &str,
) -> (NatsHandle, std::thread::JoinHandle<()>) {
    thread::spawn(options(nats, cluster, node))
        .unwrap_or_else(|e| panic!("node {node}: {e}\n{}", nats.log_tails()))
}

/// Calls `attempt` until it yields a value, failing after [`WAIT_MAX`]
/// with `what` and the last state `attempt` reported.
fn poll_until<T>(what: &str, mut attempt: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + WAIT_MAX;
    loop {
        match attempt() {
            Ok(value) => return value,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(state) => panic!("{what}: not within {WAIT_MAX:?}; last: {state}"),
        }
    }
}

/// Swaps the map to `value` through failures, as an operator's tool
/// would: a swap whose answer was lost may have happened, so each attempt
/// rereads first. Returns the revision holding `value`.
fn swap_until_done(node: &NatsHandle, value: &'static [u8]) -> u64 {
    poll_until("the map is swappable", || {
        let current = on_shard(node.read_map()).map_err(|e| e.to_string())?.ok_or("no map")?;
        if current.bytes.as_ref() == value {
            return Ok(current.revision);
        }
        on_shard(node.swap_map(Bytes::from_static(value), current.revision))
            .map_err(|e| e.to_string())
    })
}

#[test]
fn buckets_are_made_once_and_opened_by_later_nodes() {
    let nats = NatsCluster::start(3);
    let (a, _a_thread) = start_node(&nats, "one", "a");
    let (b, _b_thread) = start_node(&nats, "one", "b");
    assert_eq!(nats.stream_names(), ["KV_switchboard_map_one", "KV_switchboard_nodes_one"]);
    assert_eq!(on_shard(a.read_map()), Ok(None));
    assert_eq!(on_shard(b.nodes()), Ok(vec![]));

    // More replicas than servers is refused with JetStream's reason.
    let mut too_many = options(&nats, "five", "a");
    too_many.replicas = 5;
    too_many.startup_timeout_ms = 10_000;
    match thread::spawn(too_many) {
        Err(NatsError::Bucket { bucket, reason }) => {
            assert_eq!(bucket, "switchboard_map_five");
            eprintln!("replicas 5 on 3 servers: {reason}");
        }
        other => panic!("replicas 5 on 3 servers: {:?}", other.map(|_| ())),
    }
}

#[test]
fn no_reachable_server_fails_the_start_with_the_urls() {
    let mut options = NatsOptions::new(vec!["nats://127.0.0.1:1".into()], "none", "a");
    options.startup_timeout_ms = 1_000;
    match thread::spawn(options) {
        Err(NatsError::Connect { urls, .. }) => assert_eq!(urls, "nats://127.0.0.1:1"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn registered_nodes_are_listed_and_a_silent_one_expires() {
    let nats = NatsCluster::start(3);
    let (a, _a_thread) = start_node(&nats, "members", "a");
    let (b, b_thread) = start_node(&nats, "members", "b");
    // A bucket another node has just made may not have its stream on every
    // server yet: a transient error is tried again (as a node's join does),
    // any other fails the test at once.
    for (node, name, addrs) in [
        (&a, "a", ("127.0.0.1:8001", "127.0.0.1:9001")),
        (&b, "b", ("127.0.0.1:8002", "127.0.0.1:9002")),
    ] {
        poll_until(&format!("register {name}"), || {
            match on_shard(node.register_node(addrs.0, addrs.1)) {
                Err(error) if error.is_transient() => Err(error.to_string()),
                Err(error) => panic!("register {name}: {error}"),
                Ok(()) => Ok(()),
            }
        });
    }
    let nodes = on_shard(a.nodes()).expect("list nodes");
    let ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(
        (nodes[1].client_addr.as_str(), nodes[1].internal_addr.as_str()),
        ("127.0.0.1:8002", "127.0.0.1:9002")
    );
    assert!(nodes.iter().all(|n| n.last_seen_ms > 0), "{nodes:?}");

    // b stops (its handle dropped, its thread ended): its key expires.
    drop(b);
    b_thread.join().expect("b's thread ends once its handle is dropped");
    let started = Instant::now();
    poll_until("b expires", || {
        let nodes = on_shard(a.nodes()).map_err(|e| e.to_string())?;
        let ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
        (ids == ["a"]).then_some(()).ok_or(format!("{ids:?}"))
    });
    eprintln!("b gone {:?} after it stopped (TTL {TEST_NODE_TTL_MS} ms)", started.elapsed());
}

#[test]
fn the_map_is_created_once_and_swapped_only_at_its_revision() {
    let nats = NatsCluster::start(3);
    let (a, _a_thread) = start_node(&nats, "map", "a");
    let (b, _b_thread) = start_node(&nats, "map", "b");
    let mut watch = b.watch_map();
    assert_eq!(watch.current(), None);

    let first = on_shard(a.create_map(Bytes::from_static(b"epoch 1"))).expect("create");
    assert_eq!(on_shard(b.create_map(Bytes::from_static(b"other"))), Err(NatsError::MapExists));
    let read = on_shard(b.read_map()).expect("read").expect("a map");
    assert_eq!((read.bytes.as_ref(), read.revision), (&b"epoch 1"[..], first));

    let second = on_shard(b.swap_map(Bytes::from_static(b"epoch 2"), first)).expect("swap");
    assert!(second > first);
    let stale = on_shard(a.swap_map(Bytes::from_static(b"lost"), first));
    assert_eq!(stale, Err(NatsError::Conflict { expected: first }));

    let seen = on_shard(async {
        loop {
            let version = watch.changed().await.expect("the thread runs");
            if version.revision == second {
                return version;
            }
        }
    });
    assert_eq!(seen.bytes.as_ref(), b"epoch 2");
    let mut a_watch = a.watch_map();
    poll_until("a's watch shows epoch 2", || {
        let current = a_watch.current().map(|v| v.revision);
        (current == Some(second)).then_some(()).ok_or(format!("{current:?}"))
    });
}

#[test]
fn the_map_survives_kill_9_of_its_stream_leader() {
    let mut nats = NatsCluster::start(3);
    let (a, _a_thread) = start_node(&nats, "r3", "a");
    let first = on_shard(a.create_map(Bytes::from_static(b"before"))).expect("create");
    let leader = poll_until("the map stream has a leader", || {
        nats.stream_leader("KV_switchboard_map_r3").ok_or_else(|| "none".to_string())
    });
    let leader = nats.index_of(&leader).expect("a server of the cluster");
    nats.kill9(leader);
    let killed_at = Instant::now();

    let read = poll_until("the map is readable", || {
        on_shard(a.read_map()).map_err(|e| e.to_string())?.ok_or("no map".to_string())
    });
    assert_eq!((read.bytes.as_ref(), read.revision), (&b"before"[..], first));
    eprintln!("map readable {:?} after kill -9 of its leader", killed_at.elapsed());

    let swapped = swap_until_done(&a, b"after");
    assert!(swapped > first);
    eprintln!("map swapped {:?} after kill -9 of its leader", killed_at.elapsed());
    let mut watch = a.watch_map();
    poll_until("the watch shows the swap", || {
        let current = watch.current().map(|v| v.revision);
        (current == Some(swapped)).then_some(()).ok_or(format!("{current:?}"))
    });

    // The killed server comes back on its store and the cluster is whole.
    nats.restart(leader);
    let read = on_shard(a.read_map()).expect("read after the restart").expect("a map");
    assert_eq!(read.revision, swapped);
}

#[test]
fn a_frozen_nats_server_is_left_for_another() {
    let nats = NatsCluster::start(3);
    // Told of server 0 only: the node learns the others from it.
    let mut on_server_0 = options(&nats, "frozen", "a");
    on_server_0.urls = vec![nats.url(0)];
    let (a, _a_thread) = thread::spawn(on_server_0).expect("node a");
    let first = on_shard(a.create_map(Bytes::from_static(b"before"))).expect("create");
    nats.pause(0);
    let paused_at = Instant::now();
    let swapped = swap_until_done(&a, b"after");
    assert!(swapped > first);
    eprintln!("map swapped {:?} after SIGSTOP of the node's server", paused_at.elapsed());
    nats.resume(0);
    nats.wait_ready(nats::READY_TIMEOUT);
}

#[test]
fn request_reply_round_trip_over_loopback() {
    const CALLS: usize = 1_000;
    let nats = NatsCluster::start(3);
    // The node and the baseline client use server 0, the responder server
    // 1: every call crosses a route, as a call to another node does.
    let mut on_server_0 = options(&nats, "rt", "a");
    on_server_0.urls = vec![nats.url(0)];
    let (a, _a_thread) = thread::spawn(on_server_0).expect("node a");
    let responder = Responder::start(&nats.url(1), "rt.echo");
    let payload = Bytes::from(vec![7u8; 64]);
    poll_until("the responder is reachable", || {
        on_shard(a.request("rt.echo", payload.clone())).map_err(|e| e.to_string())
    });
    let via_thread = on_shard(async {
        let mut samples = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            let started = Instant::now();
            let reply = a.request("rt.echo", payload.clone()).await.expect("a reply");
            samples.push(started.elapsed());
            assert_eq!(reply, payload);
        }
        samples
    });
    let direct = direct_round_trips(&nats.url(0), "rt.echo", &payload, CALLS);
    eprintln!("request/reply, {CALLS} calls of {} bytes over loopback:", payload.len());
    eprintln!("  shard -> cluster thread -> NATS: {}", percentiles(via_thread));
    eprintln!("  baseline, async-nats on its own runtime: {}", percentiles(direct));
    drop(responder);
}

/// p50 and p99 of `samples`, in microseconds.
fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: usize| samples[(samples.len() * q / 100).min(samples.len() - 1)].as_micros();
    format!("p50 {} us, p99 {} us", at(50), at(99))
}

/// `calls` requests from a plain async-nats client on a tokio runtime.
fn direct_round_trips(url: &str, subject: &str, payload: &Bytes, calls: usize) -> Vec<Duration> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(url).await.expect("connect the baseline client");
        let mut samples = Vec::with_capacity(calls);
        for _ in 0..calls {
            let started = Instant::now();
            client.request(subject.to_string(), payload.clone()).await.expect("a reply");
            samples.push(started.elapsed());
        }
        samples
    })
}

/// An echo service on its own thread and tokio runtime, stopped on drop.
struct Responder {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responder {
    fn start(url: &str, subject: &str) -> Self {
        let (url, subject) = (url.to_string(), subject.to_string());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, is_ready) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            runtime.unwrap().block_on(echo(url, subject, stopped, ready));
        });
        is_ready.recv_timeout(WAIT_MAX).expect("the responder subscribes");
        Self { stop: Some(stop), thread: Some(thread) }
    }
}

async fn echo(
    url: String,
    subject: String,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<()>,
) {
    use futures_util::StreamExt;
    let client = async_nats::connect(url).await.expect("connect the responder");
    let mut requests = client.subscribe(subject).await.expect("subscribe");
    client.flush().await.expect("flush the subscription");
    ready.send(()).expect("the test waits");
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            request = requests.next() => {
                let Some(request) = request else { return };
                let Some(reply) = request.reply else { continue };
                client.publish(reply, request.payload).await.expect("reply");
            }
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
