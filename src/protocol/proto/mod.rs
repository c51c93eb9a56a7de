//! Signal's protobuf wire (`proto/*.proto`): the binary WebSocket framing
//! and the `Envelope` a protobuf-framed device receives.
//!
//! - [`messages`]: the prost types of every message.
//! - [`frame`]: decoding a binary frame (borrowing) and encoding one.
//! - [`envelope`]: envelopes built from the shared stored form, and the
//!   two numberings of the envelope type.
//!
//! Invariant (as for every codec here): decoders return typed errors for
//! any input and never panic; `fuzz/fuzz_targets/proto_frame.rs` drives
//! [`frame::decode`].

pub mod envelope;
pub mod frame;
pub mod messages;

#[cfg(test)]
mod tests;
