//! Per-shard state and the mesh between shards: what a shard owns, not what
//! it does (operations live in `accounts` and `delivery`, the loop that runs
//! a shard in `server`).
//!
//! - [`owner`]: which shard owns an account (a fixed range partition of the
//!   UUID space).
//! - [`place`]: routing units (shards, or a cluster's partitions) and
//!   where each is served ([`ClusterLink`](place::ClusterLink), which the
//!   cluster layer implements).
//! - [`msg`]: the small typed messages that cross between shards (calls and
//!   their typed outcomes, hand-offs).
//! - [`ring`]: the N x N mesh of bounded lock-free SPSC rings carrying them,
//!   with a cross-thread wake per shard.
//! - [`mesh`]: this shard's end of the mesh: send, call and await, hand off.
//! - [`timers`]: a coarse deadline wheel that knows nothing of its entries.
//! - [`mailbox`]: how other tasks on the shard reach a session.
//! - [`tail`]: a session's in-memory queue tail (what was just stored).
//! - [`sessions`]: which connection is live for each device.
//! - [`queue_lens`]: stored envelopes per device.
//! - [`owed_deletes`]: acknowledged envelopes whose deletes are retried.
//! - [`receipt_window`]: delivery receipts owed, gathered over a short window.
//! - [`provisioning`]: provisioning sockets waiting for their message.
//! - [`warnings`]: folding a repeated warning into one line per interval.
//! - [`ctx`]: [`ShardCtx`], the components above put together.
//!
//! Invariant: state a shard owns lives in its [`ShardCtx`] on its own
//! thread; nothing mutable is shared between shards, only messages on rings.
//!
//! Imports: `clock`, `config`, `protocol`, `metrics`, `store`, `accounts`.

pub mod ctx;
pub mod mailbox;
pub mod mesh;
pub mod msg;
pub mod owed_deletes;
pub mod owner;
pub mod place;
pub mod provisioning;
pub mod queue_lens;
pub mod receipt_window;
pub mod ring;
pub mod sessions;
pub mod tail;
pub mod timers;
pub mod warnings;

pub use ctx::{ConnectionGuard, ShardCtx};
pub use owner::owner;
