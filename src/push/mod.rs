//! Push notifications: waking an offline device so it connects and drains
//! its queue (DESIGN.md section 4).
//!
//! - [`schedule`]: when to push, per device (pure).
//! - [`challenge`]: single-use tokens sent by push to prove a real device.
//! - [`verification`]: verification sessions (a push challenge before
//!   registration).
//! - [`link`]: a shard's end of the push worker: the jobs it batches per
//!   loop turn onto its ring, and the dead tokens coming back.
//! - [`worker`]: the push thread: a small tokio runtime, HTTP/2 to the
//!   providers, bounded concurrency, retries with backoff.
//! - [`apns`], [`fcm`]: each provider's auth, request and answer.
//! - [`client`]: the pooled HTTP/2 client both share.
//!
//! Shards never wait on the network: a job is a few dozen bytes on an SPSC
//! ring, and a full ring drops the push (counted), never the envelope. A
//! provider that is down or slow costs a send nothing; envelopes stay
//! queued, only the push is retried or dropped.
//!
//! `a2` (the design card's APNs client) hard-codes Apple's hosts and keeps
//! its JWT signer private, so it cannot be pointed at a test server; the
//! APNs payload is a few fixed JSON shapes (`protocol::push`). So APNs goes
//! through the same HTTP/2 client as FCM, its base URL from config, and the
//! path the tests exercise is the production path.
//!
//! Imports: `clock`, `config`, `protocol`, `metrics`, `store`, `accounts`.

pub mod apns;
pub mod challenge;
pub mod client;
pub mod fcm;
pub mod link;
pub mod schedule;
pub mod verification;
pub mod worker;

use crate::accounts::AuthedDevice;
use crate::protocol::push::PushPayload;
use crate::store::accounts::PushProvider;

/// One push for the worker to send.
#[derive(Debug, Clone)]
pub struct PushJob {
    /// The shard that queued it (dead tokens go back there; its metrics count it).
    pub shard: usize,
    /// The device to wake (`None` for a verification challenge, which is
    /// sent to a token before any account exists).
    pub device: Option<AuthedDevice>,
    /// Which provider.
    pub provider: PushProvider,
    /// The device's token.
    pub token: String,
    /// What to send.
    pub payload: PushPayload,
    /// The shard's clock when queued, ms (APNs expiration counts from it).
    pub queued_ms: u64,
    /// When it was queued, for the send latency histogram.
    pub queued_at: std::time::Instant,
}

impl PushJob {
    /// A job queued now by `shard` (the latency clock starts here).
    pub fn new(
        shard: usize,
        device: Option<AuthedDevice>,
        provider: PushProvider,
        token: String,
        payload: PushPayload,
        queued_ms: u64,
    ) -> Self {
        let queued_at = std::time::Instant::now();
        Self { shard, device, provider, token, payload, queued_ms, queued_at }
    }
}

/// A provider said a token is dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadToken {
    /// The device it belonged to.
    pub device: AuthedDevice,
    /// The token that failed.
    pub token: String,
    /// When the provider says it became invalid, ms (now, if it did not say).
    pub invalidated_ms: u64,
}

/// How a provider answered one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted.
    Sent,
    /// Busy or failing (429, 5xx, connection error): try again, after the
    /// provider's `Retry-After` if it gave one.
    Retry {
        /// The provider's wait, ms.
        after_ms: Option<u64>,
    },
    /// Our credentials were refused (FCM 401): renew them and try again once.
    Reauthenticate,
    /// The token is dead: remove it.
    Dead {
        /// When it became invalid, ms since the epoch, if the provider said.
        invalidated_ms: Option<u64>,
    },
    /// Refused for good (a malformed request, a wrong topic): drop, log.
    Failed(String),
}

/// The `Retry-After` of an answer in ms (seconds form only).
pub fn retry_after_ms(headers: &http::HeaderMap) -> Option<u64> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(|seconds| seconds.saturating_mul(1000))
}
