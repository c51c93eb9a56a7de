//! This shard's end of the ring mesh: sending to other shards, calls that
//! await the owner's typed reply, and connection hand-off.
//!
//! Invariants: every call is answered exactly once (the reply, or the
//! caller's pending entry is dropped when the ring refused the call, and the
//! waiter sees [`CallError`]); a full ring is waited on for at most
//! `ring_full_wait_ms`, then the message is given back (back-pressure, never
//! a silent drop or a blocked thread).

use crate::metrics::{Metrics, ShardMetrics};
use crate::shard::msg::{Call, Outcome, ShardMsg};
use crate::shard::ring::Outboxes;
use futures_channel::oneshot;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::time::Duration;

/// Why a call to another shard did not get an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The ring stayed full for `ring_full_wait_ms`: back-pressure.
    #[error("shard {0} is busy")]
    Busy(usize),
    /// The other shard dropped the call (shutting down).
    #[error("shard {0} did not answer")]
    NoAnswer(usize),
    /// Cluster mode: the node owning the partition did not answer (down,
    /// paused, busy or moving), or no node owns it now.
    #[error("the partition's owner node is unavailable")]
    NodeUnavailable,
}

/// The sending side of this shard's rings and its calls awaiting replies.
pub struct Mesh {
    id: usize,
    ring_full_wait_ms: u64,
    metrics: Metrics,
    outboxes: RefCell<Outboxes>,
    /// Calls sent to other shards awaiting their reply, by token.
    pending_calls: RefCell<HashMap<u64, oneshot::Sender<Outcome>>>,
    next_token: Cell<u64>,
}

impl Mesh {
    /// Shard `id`'s end of the mesh.
    pub fn new(id: usize, outboxes: Outboxes, ring_full_wait_ms: u64, metrics: Metrics) -> Self {
        Self {
            id,
            ring_full_wait_ms,
            metrics,
            outboxes: RefCell::new(outboxes),
            pending_calls: RefCell::new(HashMap::new()),
            next_token: Cell::new(0),
        }
    }

    fn stats(&self) -> &ShardMetrics {
        &self.metrics[self.id]
    }

    /// Sends `msg` to shard `to`, waiting up to `ring_full_wait_ms` for room.
    /// Gives the message back if the ring stayed full.
    pub async fn send_to(&self, to: usize, mut msg: ShardMsg) -> Result<(), ShardMsg> {
        let mut waited_ms = 0;
        loop {
            let sent = self.outboxes.borrow_mut().try_send(to, msg);
            match sent {
                Ok(()) => return Ok(()),
                Err(back) => {
                    ShardMetrics::inc(&self.stats().ring_full_total);
                    if waited_ms >= self.ring_full_wait_ms {
                        return Err(back);
                    }
                    msg = back;
                    monoio::time::sleep(Duration::from_millis(1)).await;
                    waited_ms += 1;
                }
            }
        }
    }

    /// Asks shard `to` to do `call` and awaits its outcome.
    pub async fn call(&self, to: usize, call: Call) -> Result<Outcome, CallError> {
        assert_ne!(to, self.id, "local work is done directly, not called");
        let token = self.next_token.get();
        self.next_token.set(token.wrapping_add(1));
        let (reply_sender, reply) = oneshot::channel();
        self.pending_calls.borrow_mut().insert(token, reply_sender);
        let msg = ShardMsg::Call { from: self.id, token, call };
        if self.send_to(to, msg).await.is_err() {
            self.pending_calls.borrow_mut().remove(&token);
            return Err(CallError::Busy(to));
        }
        reply.await.map_err(|_| CallError::NoAnswer(to))
    }

    /// Completes the call `token` with the owner's `outcome` (a reply that
    /// arrived on a ring); a reply to no pending call is dropped.
    pub fn complete(&self, token: u64, outcome: Outcome) {
        if let Some(waiter) = self.pending_calls.borrow_mut().remove(&token) {
            let _ = waiter.send(outcome);
        }
    }

    /// Passes a connection (and the bytes already read from it) to its owner.
    /// On a full ring the connection is closed: the client retries.
    pub async fn hand_off(
        &self,
        to: usize,
        stream: monoio::net::TcpStream,
        tls: Option<Box<rustls::ServerConnection>>,
        buffered: Vec<u8>,
    ) {
        // SAFETY: `into_raw_fd` transfers sole ownership of the descriptor
        // (it panics if an operation still holds it; none does between
        // requests), and `from_raw_fd` takes that ownership over.
        let stream = unsafe { std::net::TcpStream::from_raw_fd(stream.into_raw_fd()) };
        let msg = ShardMsg::Handoff { stream, tls, buffered };
        if self.send_to(to, msg).await.is_ok() {
            ShardMetrics::inc(&self.stats().handoffs_sent_total);
        } else {
            tracing::warn!(
                shard = self.id,
                to,
                "ring full: closing a connection instead of handing it off"
            );
        }
    }
}
