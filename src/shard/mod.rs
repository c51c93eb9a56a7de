//! Thread-per-core shards.
//!
//! - [`owner`]: which shard owns an account (a fixed range partition of the
//!   UUID space).
//! - [`msg`]: the small typed messages that cross between shards.
//! - [`ring`]: the N x N mesh of bounded lock-free SPSC rings carrying them,
//!   with a cross-thread wake per shard.
//! - [`runtime`]: one pinned OS thread per shard running a monoio io_uring
//!   runtime, its listener, its state, and the ring pump.
//!
//! Invariant: state a shard owns lives in its [`runtime::ShardCtx`] on its own
//! thread; nothing mutable is shared between shards, only messages on rings.

pub mod msg;
pub mod owner;
pub mod ring;
pub mod runtime;

pub use owner::owner;
