//! Pure codecs: no sockets, no clocks, no storage.
//!
//! - [`base64`]: the standard alphabet used for every body on the wire.
//! - [`frame`]: the JSON `WebSocketRequest` / `WebSocketResponse` framing of
//!   DESIGN.md section 3, both directions.
//! - [`envelope`]: the send request body and the `Envelope` JSON.
//! - [`payloads`]: JSON bodies of the REST routes (registration, devices, errors).
//! - [`json_in`]: simd-json's parse buffers, reused per thread (per shard).
//! - [`items`]: typing indicators, receipts and stories, in and out.
//! - [`discovery`]: contact discovery requests (identifiers, hashes) and answers.
//! - [`push`]: push-token bodies and the push payloads (APNs, FCM).
//! - [`proto`]: Signal's protobuf framing and `Envelope` (binary frames).
//!
//! Owns: the wire formats. Imports: nothing of this crate outside `protocol`
//! (limits are passed in as numbers); never a socket, the store or shard state.
//!
//! Invariant: every decoder here returns a typed error for any input and never
//! panics; each has unit tests and a fuzz target under `fuzz/`.

pub mod base64;
pub mod discovery;
pub mod envelope;
pub mod frame;
pub mod items;
pub mod json_in;
pub mod json_out;
pub mod payloads;
pub mod proto;
pub mod push;
pub mod ws_frames;
