//! The N x N mesh of bounded lock-free SPSC rings between shards.
//!
//! Ring `(a, b)` carries messages from shard `a` to shard `b`; only `a`'s
//! thread pushes and only `b`'s pops (rtrb's producer and consumer are each
//! owned by one thread). Every shard has one [`AtomicWaker`]: a producer wakes
//! the consumer's after each push, and the consumer registers before its last
//! emptiness check, so a push is never missed. Waking a monoio task from
//! another thread goes through monoio's `sync` feature (the task is queued on
//! its own thread and that thread unparked).
//!
//! Invariant: a push onto a full ring fails and hands the message back
//! ([`Outboxes::try_send`]); the caller decides to wait or answer 503.

use crate::shard::msg::ShardMsg;
use futures_util::task::AtomicWaker;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

/// The sending ends of one shard: one producer per other shard.
pub struct Outboxes {
    shard: usize,
    producers: Vec<Option<rtrb::Producer<ShardMsg>>>,
    wakers: Arc<[AtomicWaker]>,
}

/// The receiving ends of one shard: one consumer per other shard.
pub struct Inboxes {
    shard: usize,
    consumers: Vec<Option<rtrb::Consumer<ShardMsg>>>,
    wakers: Arc<[AtomicWaker]>,
}

/// Builds the mesh for `shard_count` shards with `slots` slots per ring; the
/// `i`-th pair belongs to shard `i`.
pub fn build_mesh(shard_count: usize, slots: usize) -> Vec<(Outboxes, Inboxes)> {
    assert!(shard_count >= 1 && slots >= 1);
    let wakers: Arc<[AtomicWaker]> = (0..shard_count).map(|_| AtomicWaker::new()).collect();
    let mut producers: Vec<Vec<Option<rtrb::Producer<ShardMsg>>>> =
        (0..shard_count).map(|_| (0..shard_count).map(|_| None).collect()).collect();
    let mut consumers: Vec<Vec<Option<rtrb::Consumer<ShardMsg>>>> =
        (0..shard_count).map(|_| (0..shard_count).map(|_| None).collect()).collect();
    for from in 0..shard_count {
        for to in 0..shard_count {
            if from != to {
                let (producer, consumer) = rtrb::RingBuffer::new(slots);
                producers[from][to] = Some(producer);
                consumers[to][from] = Some(consumer);
            }
        }
    }
    producers
        .into_iter()
        .zip(consumers)
        .enumerate()
        .map(|(shard, (producers, consumers))| {
            (
                Outboxes { shard, producers, wakers: wakers.clone() },
                Inboxes { shard, consumers, wakers: wakers.clone() },
            )
        })
        .collect()
}

impl Outboxes {
    /// Pushes `msg` to shard `to` and wakes it; gives the message back when
    /// the ring is full.
    // The error is the message itself, handed back by value so that a full
    // ring never loses it; boxing it would cost an allocation per send.
    #[allow(clippy::result_large_err)]
    pub fn try_send(&mut self, to: usize, msg: ShardMsg) -> Result<(), ShardMsg> {
        assert_ne!(to, self.shard, "a shard does not send to itself");
        let producer = self.producers[to].as_mut().expect("ring exists for every other shard");
        match producer.push(msg) {
            Ok(()) => {
                self.wakers[to].wake();
                Ok(())
            }
            Err(rtrb::PushError::Full(msg)) => Err(msg),
        }
    }
}

impl Inboxes {
    /// Pops every message waiting on any inbound ring, calling `each(from, msg)`.
    /// Returns how many were handled.
    pub fn drain(&mut self, mut each: impl FnMut(usize, ShardMsg)) -> usize {
        let mut handled = 0;
        for (from, consumer) in self.consumers.iter_mut().enumerate() {
            let Some(consumer) = consumer else { continue };
            while let Ok(msg) = consumer.pop() {
                each(from, msg);
                handled += 1;
            }
        }
        handled
    }

    fn any_waiting(&self) -> bool {
        self.consumers.iter().flatten().any(|consumer| !consumer.is_empty())
    }

    /// Resolves once some inbound ring holds a message.
    pub async fn ready(&self) {
        poll_fn(|cx| {
            if self.any_waiting() {
                return Poll::Ready(());
            }
            self.wakers[self.shard].register(cx.waker());
            // Check again after registering: a push between the first check
            // and the registration would otherwise go unnoticed.
            if self.any_waiting() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::msg::Outcome;

    fn reply(token: u64) -> ShardMsg {
        ShardMsg::Reply { token, outcome: Outcome::AccountCreated(Ok(())) }
    }

    #[test]
    fn messages_arrive_in_order_from_each_sender() {
        let mut mesh = build_mesh(3, 8);
        let (_, mut inbox2) = mesh.pop().unwrap();
        let (mut out1, _) = mesh.pop().unwrap();
        let (mut out0, _) = mesh.pop().unwrap();
        for token in 0..4 {
            out0.try_send(2, reply(token)).unwrap();
            out1.try_send(2, reply(100 + token)).unwrap();
        }
        let mut seen = Vec::new();
        inbox2.drain(|from, msg| {
            if let ShardMsg::Reply { token, .. } = msg {
                seen.push((from, token));
            }
        });
        let from0: Vec<u64> = seen.iter().filter(|(f, _)| *f == 0).map(|(_, t)| *t).collect();
        let from1: Vec<u64> = seen.iter().filter(|(f, _)| *f == 1).map(|(_, t)| *t).collect();
        assert_eq!(from0, vec![0, 1, 2, 3]);
        assert_eq!(from1, vec![100, 101, 102, 103]);
    }

    #[test]
    fn full_ring_hands_the_message_back() {
        let mut mesh = build_mesh(2, 2);
        let (mut out0, _) = mesh.remove(0);
        out0.try_send(1, reply(1)).unwrap();
        out0.try_send(1, reply(2)).unwrap();
        match out0.try_send(1, reply(3)) {
            Err(ShardMsg::Reply { token: 3, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cross_thread_push_wakes_a_parked_monoio_task() {
        let mut mesh = build_mesh(2, 16);
        let (_, inbox1) = mesh.remove(1);
        let (mut out0, _) = mesh.remove(0);
        let consumer = std::thread::spawn(move || {
            let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut inbox = inbox1;
                let mut got = 0;
                while got < 100 {
                    inbox.ready().await;
                    got += inbox.drain(|_, _| {});
                }
                got
            })
        });
        for token in 0..100 {
            let mut msg = reply(token);
            while let Err(back) = out0.try_send(1, msg) {
                msg = back;
                std::thread::yield_now();
            }
            if token % 10 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        assert_eq!(consumer.join().unwrap(), 100);
    }
}
