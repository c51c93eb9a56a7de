//! Delivery: from an accepted send to an acknowledged envelope.
//!
//! - [`ingest`]: the owner shard checks a send, persists it and wakes the
//!   recipient's sessions.
//! - [`outbox`]: a session's delivery state: the cursor through the stored
//!   queue, the backlog-then-live order, and `queue/empty`.
//! - [`window`]: the per-connection window of server-initiated requests
//!   awaiting the client's answer.
//! - [`retention`]: the per-device cap and the retention sweep.
//! - [`lag`]: the event-loop lag probe that measures stalls.

pub mod ingest;
pub mod lag;
pub mod outbox;
pub mod retention;
pub mod window;
