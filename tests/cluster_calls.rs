//! Requests between nodes through the cluster thread's serving side
//! (`NatsHandle::serve`), against a real 3-server NATS cluster: a node's
//! intake receives what another node asks and its reply comes back; a full
//! intake answers "busy" (an empty payload) at once; a request its handler
//! drops gets no reply, so the asker times out. Bounded waits only.

#[path = "common/nats.rs"]
mod nats;

use bytes::Bytes;
use nats::NatsCluster;
use std::time::{Duration, Instant};
use switchboard::cluster::nats::error::NatsError;
use switchboard::cluster::nats::handle::NatsHandle;
use switchboard::cluster::nats::options::NatsOptions;
use switchboard::cluster::nats::thread;

fn on_shard<F: std::future::Future>(future: F) -> F::Output {
    let mut runtime =
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().build().expect("a monoio runtime");
    runtime.block_on(future)
}

fn node(nats: &NatsCluster, id: &str) -> NatsHandle {
    let mut options = NatsOptions::new(nats.urls(), "calls", id);
    options.request_timeout_ms = 1_500;
    thread::spawn(options).unwrap_or_else(|e| panic!("node {id}: {e}\n{}", nats.log_tails())).0
}

/// Asks until the subscription is visible to the asker (a fresh
/// subscription reaches the other servers of the cluster shortly after).
fn ask_until_served(node: &NatsHandle, subject: &str, payload: &'static [u8]) -> Bytes {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match on_shard(node.request(subject, Bytes::from_static(payload))) {
            Ok(reply) => return reply,
            Err(NatsError::NoResponders(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(error) => panic!("asking {subject}: {error}"),
        }
    }
}

#[test]
fn a_served_subject_answers_another_node_and_a_full_intake_answers_busy() {
    let nats = NatsCluster::start(3);
    let (a, b) = (node(&nats, "node-a"), node(&nats, "node-b"));
    let mut intake = on_shard(a.serve("sb.calls.node-a", 1)).expect("serve");
    // The server side: answer each request with its payload reversed.
    let server = std::thread::spawn(move || {
        on_shard(async move {
            let mut answered = 0;
            while let Some(call) = intake.next().await {
                let mut reply = call.payload.to_vec();
                reply.reverse();
                call.reply(Bytes::from(reply));
                answered += 1;
                if answered == 3 {
                    break;
                }
            }
            intake
        })
    });
    assert_eq!(&ask_until_served(&b, "sb.calls.node-a", b"abc")[..], b"cba");
    assert_eq!(
        &on_shard(b.request("sb.calls.node-a", Bytes::from_static(b"xy"))).unwrap()[..],
        b"yx"
    );
    assert_eq!(
        &on_shard(b.request("sb.calls.node-a", Bytes::from_static(b"1"))).unwrap()[..],
        b"1"
    );
    let intake = server.join().unwrap();

    // Nobody takes from the intake now: the first of three requests at
    // once fills its one slot and waits (no reply: the asker times out),
    // the other two are answered busy at once.
    let askers: Vec<_> = (0..3)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || {
                on_shard(b.request("sb.calls.node-a", Bytes::from_static(b"w")))
            })
        })
        .collect();
    let mut answers: Vec<_> = askers.into_iter().map(|asker| asker.join().unwrap()).collect();
    answers.sort_by_key(|answer| answer.is_ok());
    assert_eq!(answers[0], Err(NatsError::Timeout), "{answers:?}");
    assert_eq!(answers[1..], [Ok(Bytes::new()), Ok(Bytes::new())], "{answers:?}");
    drop(intake);
}

#[test]
fn serving_refuses_bad_subjects_and_slot_counts() {
    let nats = NatsCluster::start(3);
    let a = node(&nats, "node-a");
    for (subject, slots) in [("", 1), ("has space", 1), ("sb.calls", 0), ("sb.calls", 1 << 20)] {
        let served = on_shard(a.serve(subject, slots));
        assert!(matches!(served, Err(NatsError::InvalidArgument(_))), "{subject:?} {slots}");
    }
}
