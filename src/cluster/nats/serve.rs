//! The serving side of requests between nodes: a node subscribes to its
//! call subject and takes each request from a bounded [`CallIntake`]; the
//! shard that handles an [`IncomingCall`] answers it with
//! [`IncomingCall::reply`], and the cluster thread publishes the answer to
//! the asker's reply subject.
//!
//! Invariants: at most the intake's `slots` requests wait for a shard; a
//! request arriving when they are all taken is answered at once with an
//! empty payload (the "busy" answer: the asker treats it like a timeout,
//! and the wire encoding never produces an empty answer); a request whose
//! handler drops it unanswered, or does not answer within the request
//! timeout, gets no reply (the asker times out); a request without a reply
//! subject is dropped (nothing could be answered).

use super::error::NatsError;
use async_nats::{Client, Subject};
use bytes::Bytes;
use futures_util::StreamExt;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most requests one intake may hold for its shards.
pub const INTAKE_SLOTS_MAX: usize = 65_536;

/// One request from another node, to answer once.
pub struct IncomingCall {
    /// What the asker sent.
    pub payload: Bytes,
    answer: oneshot::Sender<Bytes>,
}

impl IncomingCall {
    /// Answers the request (the cluster thread publishes it).
    pub fn reply(self, payload: Bytes) {
        // The thread stopped waiting (timeout): the asker has given up too.
        let _ = self.answer.send(payload);
    }
}

/// The requests arriving on one subject, for the shards to take.
pub struct CallIntake {
    calls: mpsc::Receiver<IncomingCall>,
}

impl CallIntake {
    /// The next request; `None` once the subscription or the thread ended.
    pub async fn next(&mut self) -> Option<IncomingCall> {
        self.calls.recv().await
    }
}

/// Subscribes to `subject` and forwards its requests into an intake of
/// `slots` (checked by the caller), answering each within `timeout`.
pub(super) async fn subscribe(
    client: &Client,
    subject: String,
    slots: usize,
    timeout: Duration,
) -> Result<CallIntake, NatsError> {
    let mut subscription = client
        .subscribe(subject.clone())
        .await
        .map_err(|e| NatsError::Unavailable(format!("cannot subscribe to {subject}: {e}")))?;
    let (forward, calls) = mpsc::channel(slots);
    let client = client.clone();
    tokio::spawn(async move {
        while let Some(message) = subscription.next().await {
            let Some(reply_to) = message.reply else { continue };
            let (answer, answered) = oneshot::channel();
            let call = IncomingCall { payload: message.payload, answer };
            if let Err(error) = forward.try_send(call) {
                if matches!(error, mpsc::error::TrySendError::Closed(_)) {
                    break; // the intake was dropped: stop serving
                }
                publish(&client, reply_to, Bytes::new()).await;
                continue;
            }
            let client = client.clone();
            tokio::spawn(async move {
                if let Ok(Ok(payload)) = tokio::time::timeout(timeout, answered).await {
                    publish(&client, reply_to, payload).await;
                }
            });
        }
    });
    Ok(CallIntake { calls })
}

async fn publish(client: &Client, subject: Subject, payload: Bytes) {
    if let Err(error) = client.publish(subject, payload).await {
        tracing::warn!(%error, "a reply to another node was not sent");
    }
}
