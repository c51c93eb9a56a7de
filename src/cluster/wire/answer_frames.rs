//! The wire schema of answers (format version 1): the header, then exactly
//! one of the `Outcome` kinds, a wrong owner or unavailable. See `frames` for
//! the rules of the schema.
//!
//! Every `Result<_, Refused>` of an outcome is a [`ResultFrame`]: `refused`
//! 0 is `Ok`; other codes are per refusal type (the tables are in
//! `refusal`), and the other fields carry what that refusal holds.

/// An answer: the header, then exactly one answer kind.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct AnswerFrame {
    /// The serving node's map epoch (0: it has no map yet).
    #[prost(uint64, tag = "1")]
    pub(super) epoch: u64,
    /// The request id of the call answered, 16 bytes big-endian.
    #[prost(bytes = "vec", tag = "2")]
    pub(super) request_id: Vec<u8>,
    /// The answer.
    #[prost(oneof = "AnswerKind", tags = "3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13")]
    pub(super) answer: Option<AnswerKind>,
}

/// One variant per `Outcome` variant, in its declaration order, then the
/// two answers that carry no outcome.
#[derive(Clone, PartialEq, prost::Oneof)]
pub(super) enum AnswerKind {
    /// `Outcome::AccountCreated`.
    #[prost(message, tag = "3")]
    AccountCreated(ResultFrame),
    /// `Outcome::DeviceLinked`: `value` is the new device's id when `Ok`.
    #[prost(message, tag = "4")]
    DeviceLinked(ResultFrame),
    /// `Outcome::MessageAccepted`.
    #[prost(message, tag = "5")]
    MessageAccepted(ResultFrame),
    /// `Outcome::FannedOut`.
    #[prost(message, tag = "6")]
    FannedOut(ResultFrame),
    /// `Outcome::Provisioned`.
    #[prost(message, tag = "7")]
    Provisioned(ResultFrame),
    /// `Outcome::HashClaimed`.
    #[prost(message, tag = "8")]
    HashClaimed(ResultFrame),
    /// `Outcome::HashReleased`.
    #[prost(message, tag = "9")]
    HashReleased(ResultFrame),
    /// `Outcome::HashesFound`.
    #[prost(message, tag = "10")]
    HashesFound(HashesFound),
    /// `Outcome::Verification`.
    #[prost(message, tag = "11")]
    Verification(ResultFrame),
    /// `Answer::WrongOwner`: the serving node's current epoch (at least 1).
    #[prost(uint64, tag = "12")]
    WrongOwner(u64),
    /// `Answer::Unavailable`.
    #[prost(message, tag = "13")]
    Unavailable(Unit),
}

/// A kind that carries nothing.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Unit {}

/// The `Result` of an outcome.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct ResultFrame {
    /// 0 for `Ok`, else the refusal's code in its type's table.
    #[prost(uint32, tag = "1")]
    pub(super) refused: u32,
    /// The `Ok` value where there is one (a linked device's id).
    #[prost(uint32, tag = "2")]
    pub(super) value: u32,
    /// The store error of a `Storage` refusal.
    #[prost(message, optional, tag = "3")]
    pub(super) storage: Option<StoreErrorFrame>,
    /// `SendRefused::MismatchedDevices::missing`, ascending.
    #[prost(uint32, repeated, tag = "4")]
    pub(super) missing: Vec<u32>,
    /// `SendRefused::MismatchedDevices::extra`, ascending.
    #[prost(uint32, repeated, tag = "5")]
    pub(super) extra: Vec<u32>,
    /// `SendRefused::StaleDevices::stale`, ascending.
    #[prost(uint32, repeated, tag = "6")]
    pub(super) stale: Vec<u32>,
}

/// A `StoreError`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct StoreErrorFrame {
    /// Which variant (the table is in `refusal`).
    #[prost(uint32, tag = "1")]
    pub(super) kind: u32,
    /// The variant's text: reason, message or I/O error.
    #[prost(string, tag = "2")]
    pub(super) text: String,
    /// The data directory or the column family.
    #[prost(string, tag = "3")]
    pub(super) place: String,
    /// `ShardCountMismatch::stored`.
    #[prost(uint32, tag = "4")]
    pub(super) stored: u32,
    /// `ShardCountMismatch::wanted`.
    #[prost(uint32, tag = "5")]
    pub(super) wanted: u32,
}

/// `Outcome::HashesFound`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct HashesFound {
    /// One per hash asked, in order: 16 bytes for a holder, empty for none.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub(super) holders: Vec<Vec<u8>>,
}
