//! Delivery: from an accepted send to an acknowledged, deleted envelope.
//!
//! - [`ingest`]: the owner shard accepts a send (judged by the account),
//!   persists it and wakes the recipient's sessions.
//! - [`fanout`]: typing indicators (live), receipts and stories (stored) to
//!   every device of the destination.
//! - [`enqueue`]: storing items and offering live ones, shared by the above.
//! - [`form`]: the bodies a device receives, in its connection's form (JSON or
//!   Signal's protobuf `Envelope`), from the one stored form.
//! - [`outbox`]: a connection's delivery: pages read from the store, the
//!   in-flight window, acks and their batched deletes.
//! - [`cursor`]: the outbox's position in the queue, backlog then live, and
//!   `queue/empty` (pure).
//! - [`window`]: the in-flight window of server requests (pure).
//! - [`queue`]: the queue over REST: first page, delete by GUID.
//! - [`push`]: what stored items, connects and closes mean for pushes.
//! - [`receipts`]: the server's `DELIVERY` receipts owed for acknowledged
//!   envelopes, one per sender per batch (pure).
//! - [`retention`]: the per-device cap and the retention sweep.
//! - [`unlink`]: removing a device with its queue and closing its session.
//!
//! Owns: the rules of DESIGN.md section 4 from "stored" to "deleted". Never
//! frames or writes a socket: the session (in `http`) asks the outbox what to
//! send. Imports: `clock`, `config`, `protocol`, `metrics`, `store`,
//! `accounts`, `shard`.

pub mod cursor;
pub mod enqueue;
pub mod fanout;
pub mod form;
pub mod ingest;
pub mod outbox;
pub mod push;
pub mod queue;
pub mod receipts;
pub mod retention;
pub mod unlink;
pub mod window;
