//! The admin subject's messages (a node's `switchboard.<c>.admin.<node>`):
//! an operator's "move partition p to node t" to p's owner, and the steps
//! the owner (the source) asks of the target. Hand-written prost messages,
//! a version byte in front as in `wire`; the same rules of evolution.
//!
//! Invariants: decoding never panics and allocates no more than its input
//! allows (prost checks every length against the bytes left; the input is
//! at most [`ADMIN_BYTES_MAX`]); a step names its move by a 16-byte id.

use prost::Message;

/// The version byte in front of every admin message.
pub const ADMIN_VERSION: u8 = 1;

/// The longest admin message accepted, bytes (under NATS's 1 MiB default).
pub const ADMIN_BYTES_MAX: usize = 1 << 20;

/// Bytes of keys and values one chunk carries, at most (one pair more when
/// a single pair is larger, which the body limit keeps under the maximum).
pub const CHUNK_BYTES_MAX: usize = 512 * 1024;

/// One admin request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AdminRequest {
    /// What to do.
    #[prost(oneof = "Step", tags = "1, 2, 3, 4, 5, 6, 7, 8")]
    pub step: Option<Step>,
}

/// The kinds of admin request.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Step {
    /// Operator to owner: move `partition` to node `to`.
    #[prost(message, tag = "1")]
    Move(MovePartition),
    /// Source to target: a move starts; drop any old copy of the partition.
    #[prost(message, tag = "2")]
    Begin(MoveStep),
    /// Source to target: some of the partition's keys and values.
    #[prost(message, tag = "3")]
    Chunk(Chunk),
    /// Source to target: all sent; load the partition into memory.
    #[prost(message, tag = "4")]
    Load(MoveStep),
    /// Source to target, just before the map flips: is the move still held?
    #[prost(message, tag = "5")]
    Confirm(MoveStep),
    /// Source to target: the move is off; drop the copy.
    #[prost(message, tag = "6")]
    Abort(MoveStep),
    /// Source to target (replicated durability), before the freeze: catch
    /// a copy up from the partition's snapshot and log.
    #[prost(message, tag = "7")]
    Prepare(MoveStep),
    /// Operator to owner (replicated durability): snapshot `partition`
    /// now and purge its log up to the snapshot.
    #[prost(message, tag = "8")]
    Snapshot(SnapshotPartition),
}

/// `Step::Snapshot`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotPartition {
    /// The partition.
    #[prost(uint32, tag = "1")]
    pub partition: u32,
}

/// `Step::Move`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MovePartition {
    /// The partition.
    #[prost(uint32, tag = "1")]
    pub partition: u32,
    /// The node to move it to.
    #[prost(string, tag = "2")]
    pub to: String,
}

/// A step of one move.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MoveStep {
    /// The move's id (16 random bytes chosen by the source).
    #[prost(bytes = "vec", tag = "1")]
    pub move_id: Vec<u8>,
    /// The partition.
    #[prost(uint32, tag = "2")]
    pub partition: u32,
}

/// `Step::Chunk`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Chunk {
    /// The move and partition.
    #[prost(message, optional, tag = "1")]
    pub step: Option<MoveStep>,
    /// The column family (`store::units::Family` code).
    #[prost(uint32, tag = "2")]
    pub family: u32,
    /// Keys, in order.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub keys: Vec<Vec<u8>>,
    /// Values, one per key.
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub values: Vec<Vec<u8>>,
}

/// The answer to every admin request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AdminReply {
    /// Whether the step (or the whole move) succeeded.
    #[prost(bool, tag = "1")]
    pub ok: bool,
    /// Why not, for the operator.
    #[prost(string, tag = "2")]
    pub error: String,
    /// The map epoch after the step.
    #[prost(uint64, tag = "3")]
    pub epoch: u64,
    /// `Step::Snapshot`: the log sequence the snapshot covers.
    #[prost(uint64, tag = "4")]
    pub seq: u64,
}

/// Why bytes are not an admin message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminDecodeError {
    /// Empty, or over [`ADMIN_BYTES_MAX`].
    #[error("admin message of {0} bytes: empty or too long")]
    Length(usize),
    /// Another version byte.
    #[error("admin message version {0} is not supported")]
    Version(u8),
    /// Not a message of the schema.
    #[error("malformed admin message: {0}")]
    Malformed(#[from] prost::DecodeError),
}

/// The version byte, then `message`.
pub fn encode(message: &impl Message) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1 + message.encoded_len());
    bytes.push(ADMIN_VERSION);
    message.encode(&mut bytes).expect("a Vec grows to fit");
    bytes
}

/// Checks the length and version, then decodes.
pub fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, AdminDecodeError> {
    if bytes.is_empty() || bytes.len() > ADMIN_BYTES_MAX {
        return Err(AdminDecodeError::Length(bytes.len()));
    }
    if bytes[0] != ADMIN_VERSION {
        return Err(AdminDecodeError::Version(bytes[0]));
    }
    Ok(M::decode(&bytes[1..])?)
}

/// A reply: success at `epoch`.
pub fn ok(epoch: u64) -> AdminReply {
    AdminReply { ok: true, error: String::new(), epoch, seq: 0 }
}

/// A reply: failure, with why.
pub fn failed(epoch: u64, error: impl Into<String>) -> AdminReply {
    AdminReply { ok: false, error: error.into(), epoch, seq: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_hostile_bytes_are_refused() {
        let chunk = Chunk {
            step: Some(MoveStep { move_id: vec![7; 16], partition: 3 }),
            family: 1,
            keys: vec![vec![1; 24]],
            values: vec![vec![2; 100]],
        };
        let request = AdminRequest { step: Some(Step::Chunk(chunk)) };
        assert_eq!(decode::<AdminRequest>(&encode(&request)).unwrap(), request);
        assert_eq!(decode::<AdminRequest>(&[]), Err(AdminDecodeError::Length(0)));
        assert_eq!(decode::<AdminRequest>(&[2, 0]), Err(AdminDecodeError::Version(2)));
        // A length prefix far past the end, a truncated varint, a wrong wire type.
        for garbage in [&[1u8, 0x1a, 0xff, 0xff, 0xff, 0x7f][..], &[1, 0x08, 0xff], &[1, 0x0d]] {
            assert!(matches!(decode::<AdminRequest>(garbage), Err(AdminDecodeError::Malformed(_))));
        }
        let too_long = vec![ADMIN_VERSION; ADMIN_BYTES_MAX + 1];
        assert_eq!(
            decode::<AdminRequest>(&too_long),
            Err(AdminDecodeError::Length(too_long.len()))
        );
    }
}
