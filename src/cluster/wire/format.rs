//! The format's version byte, its length limit, and why bytes are not a
//! call or an answer ([`WireError`], one typed error for every check).

/// The format version written in the first byte of every call and answer.
pub const WIRE_VERSION: u8 = 1;

/// The longest call or answer accepted, in bytes. The largest call is a
/// send of `body_bytes_max` (default 256 KiB) of content plus per-device
/// overhead; NATS's `max_payload` must be at least what a node sends.
pub const WIRE_BYTES_MAX: usize = 8 << 20;

/// Why bytes are not a call or an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// No bytes at all.
    #[error("empty message")]
    Empty,
    /// The input's length `.0` is over [`WIRE_BYTES_MAX`].
    #[error("message of {0} bytes is longer than {WIRE_BYTES_MAX}")]
    TooLong(usize),
    /// The first byte `.0` is not [`WIRE_VERSION`].
    #[error("wire format version {0} is not supported (this build reads {WIRE_VERSION})")]
    UnsupportedVersion(u8),
    /// The bytes after the version are not a protobuf message of the schema.
    #[error("malformed message: {0}")]
    Malformed(#[from] prost::DecodeError),
    /// An epoch that must name a map (a call's, a wrong owner's current
    /// one) is 0, which no map has.
    #[error("epoch 0 where a map's epoch is required")]
    ZeroEpoch,
    /// A required field is absent.
    #[error("field {0} is missing")]
    Missing(&'static str),
    /// A field of fixed length has another length.
    #[error("field {field} is {len} bytes, not {expected}")]
    BadLength {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The length it must have.
        expected: usize,
    },
    /// A field is outside its bounds (a length, an id, a count).
    #[error("field {field} is {value}, outside {min} to {max}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// Its value (or length).
        value: u64,
        /// The least allowed.
        min: u64,
        /// The most allowed.
        max: u64,
    },
    /// An enum field holds a code this build does not know.
    #[error("field {field} has unknown value {value}")]
    UnknownValue {
        /// The field.
        field: &'static str,
        /// The code.
        value: u64,
    },
    /// A field breaks a rule of its domain type (Base64, repeats, order).
    #[error("field {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// The rule broken.
        reason: &'static str,
    },
}
