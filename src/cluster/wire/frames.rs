//! The wire schema: hand-written prost messages, one per call, payload and
//! answer kind. They are the `.proto` of format version 1 written as Rust
//! (no build script, no protoc); conversions to and from the domain types
//! live in `call`, `payload`, `outcome` and `refusal`.
//!
//! Rules that keep old and new nodes able to read each other within one
//! format version: a tag, once used, keeps its type and meaning forever; new
//! fields get new tags and a zero default that means "as before". Anything
//! else (a field's type changes, a meaning changes) is a new format version.
//!
//! Field conventions: a UUID is `bytes` of exactly 16; an identifier hash is
//! `bytes` of exactly 10; a domain enum is a `uint32` code starting at 1, so
//! a missing field (0) is refused as an unknown value rather than read as a
//! default; an `Option` of the domain is an `optional` field (presence kept).

/// A call: the header, then exactly one of the call kinds.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct CallFrame {
    /// The map epoch the caller routed by (at least 1).
    #[prost(uint64, tag = "1")]
    pub(super) epoch: u64,
    /// The caller's request id, 16 bytes big-endian: a retry carries the same.
    #[prost(bytes = "vec", tag = "2")]
    pub(super) request_id: Vec<u8>,
    /// What to do.
    #[prost(oneof = "CallKind", tags = "3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13")]
    pub(super) call: Option<CallKind>,
}

/// One variant per `Call` variant, in its declaration order.
#[derive(Clone, PartialEq, prost::Oneof)]
pub(super) enum CallKind {
    /// `Call::CreateAccount`.
    #[prost(message, tag = "3")]
    CreateAccount(CreateAccount),
    /// `Call::LinkDevice`.
    #[prost(message, tag = "4")]
    LinkDevice(LinkDevice),
    /// `Call::SendMessage`.
    #[prost(message, tag = "5")]
    SendMessage(SendMessage),
    /// `Call::FanOut`.
    #[prost(message, tag = "6")]
    FanOut(FanOut),
    /// `Call::Provision`.
    #[prost(message, tag = "7")]
    Provision(Provision),
    /// `Call::ClaimHash`.
    #[prost(message, tag = "8")]
    ClaimHash(HashChange),
    /// `Call::ReleaseHash`.
    #[prost(message, tag = "9")]
    ReleaseHash(HashChange),
    /// `Call::FindHashes`: the hashes concatenated, 10 bytes each.
    #[prost(bytes = "vec", tag = "10")]
    FindHashes(Vec<u8>),
    /// `Call::CreateVerification`.
    #[prost(message, tag = "11")]
    CreateVerification(CreateVerification),
    /// `Call::AnswerVerification`.
    #[prost(message, tag = "12")]
    AnswerVerification(AnswerVerification),
    /// `Call::ConsumeVerification`: the session id.
    #[prost(bytes = "vec", tag = "13")]
    ConsumeVerification(Vec<u8>),
}

/// `Registration`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Registration {
    /// 1 to `PASSWORD_BYTES_MAX` bytes.
    #[prost(string, tag = "1")]
    pub(super) password: String,
    /// 1 to `REGISTRATION_ID_MAX`.
    #[prost(uint32, tag = "2")]
    pub(super) registration_id: u32,
    /// Exactly `ACCESS_KEY_BYTES` when present.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub(super) unidentified_access_key: Option<Vec<u8>>,
    /// Anyone may send sealed sender.
    #[prost(bool, tag = "4")]
    pub(super) unrestricted_unidentified_access: bool,
    /// At most `NAME_BYTES_MAX` bytes when present.
    #[prost(string, optional, tag = "5")]
    pub(super) name: Option<String>,
}

/// `Call::CreateAccount`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct CreateAccount {
    /// The new account.
    #[prost(bytes = "vec", tag = "1")]
    pub(super) uuid: Vec<u8>,
    /// Required.
    #[prost(message, optional, tag = "2")]
    pub(super) registration: Option<Registration>,
}

/// `Call::LinkDevice`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct LinkDevice {
    /// The account.
    #[prost(bytes = "vec", tag = "1")]
    pub(super) account: Vec<u8>,
    /// 1 to `LINK_CODE_BYTES_MAX` bytes.
    #[prost(string, tag = "2")]
    pub(super) code: String,
    /// Required.
    #[prost(message, optional, tag = "3")]
    pub(super) registration: Option<Registration>,
}

/// `AuthedDevice`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Device {
    /// The account.
    #[prost(bytes = "vec", tag = "1")]
    pub(super) account: Vec<u8>,
    /// 1 to `DEVICE_ID_MAX`.
    #[prost(uint32, tag = "2")]
    pub(super) device_id: u32,
}

/// `Call::SendMessage`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct SendMessage {
    /// The recipient account.
    #[prost(bytes = "vec", tag = "1")]
    pub(super) destination: Vec<u8>,
    /// Absent for sealed sender.
    #[prost(message, optional, tag = "2")]
    pub(super) sender: Option<Device>,
    /// The decoded `Unidentified-Access-Key`, when presented.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub(super) access_key: Option<Vec<u8>>,
    /// Required.
    #[prost(message, optional, tag = "4")]
    pub(super) send: Option<Send>,
}

/// `Send`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Send {
    /// 1 to `DEVICE_ID_MAX` entries, each device at most once.
    #[prost(message, repeated, tag = "1")]
    pub(super) messages: Vec<OutgoingMessage>,
    /// Deliver only to connected devices.
    #[prost(bool, tag = "2")]
    pub(super) online: bool,
    /// Urgent.
    #[prost(bool, tag = "3")]
    pub(super) urgent: bool,
    /// Client timestamp, ms.
    #[prost(uint64, tag = "4")]
    pub(super) timestamp: u64,
}

/// `OutgoingMessage`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct OutgoingMessage {
    /// One of `ENVELOPE_TYPES` (the spec's numbering, as stored).
    #[prost(uint32, tag = "1")]
    pub(super) kind: u32,
    /// 1 to `DEVICE_ID_MAX`.
    #[prost(uint32, tag = "2")]
    pub(super) device_id: u32,
    /// Any.
    #[prost(uint32, tag = "3")]
    pub(super) registration_id: u32,
    /// Padded standard Base64.
    #[prost(string, tag = "4")]
    pub(super) content: String,
}

/// `Call::FanOut`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct FanOut {
    /// The destination account.
    #[prost(bytes = "vec", tag = "1")]
    pub(super) destination: Vec<u8>,
    /// Required.
    #[prost(message, optional, tag = "2")]
    pub(super) sender: Option<Device>,
    /// Required: one of the `FanoutItem` variants.
    #[prost(oneof = "Item", tags = "3, 4, 5")]
    pub(super) item: Option<Item>,
}

/// `FanoutItem`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub(super) enum Item {
    /// `FanoutItem::Typing`.
    #[prost(message, tag = "3")]
    Typing(Typing),
    /// `FanoutItem::Receipt`.
    #[prost(message, tag = "4")]
    Receipt(Receipt),
    /// `FanoutItem::Story`.
    #[prost(message, tag = "5")]
    Story(Story),
}

/// `TypingEvent`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Typing {
    /// 1 `STARTED`, 2 `STOPPED`.
    #[prost(uint32, tag = "1")]
    pub(super) action: u32,
    /// Client timestamp, ms.
    #[prost(uint64, tag = "2")]
    pub(super) timestamp: u64,
    /// Base64, at most `GROUP_ID_BYTES_MAX` bytes, when present.
    #[prost(string, optional, tag = "3")]
    pub(super) group_id: Option<String>,
}

/// `Receipt`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Receipt {
    /// 1 `DELIVERY`, 2 `READ`.
    #[prost(uint32, tag = "1")]
    pub(super) kind: u32,
    /// At least one.
    #[prost(uint64, repeated, tag = "2")]
    pub(super) timestamps: Vec<u64>,
}

/// `FanoutItem::Story`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Story {
    /// Non-empty Base64.
    #[prost(string, tag = "1")]
    pub(super) content: String,
    /// Client timestamp, ms.
    #[prost(uint64, tag = "2")]
    pub(super) timestamp: u64,
    /// Whether replies are allowed.
    #[prost(bool, tag = "3")]
    pub(super) allows_replies: bool,
}

/// `Call::Provision`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Provision {
    /// The provisioning address.
    #[prost(bytes = "vec", tag = "1")]
    pub(super) address: Vec<u8>,
    /// The message, Base64-decoded.
    #[prost(bytes = "vec", tag = "2")]
    pub(super) body: Vec<u8>,
}

/// `Call::ClaimHash` and `Call::ReleaseHash`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct HashChange {
    /// The identifier hash.
    #[prost(bytes = "vec", tag = "1")]
    pub(super) hash: Vec<u8>,
    /// The account claiming or releasing it.
    #[prost(bytes = "vec", tag = "2")]
    pub(super) account: Vec<u8>,
}

/// `Call::CreateVerification`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct CreateVerification {
    /// The session id.
    #[prost(bytes = "vec", tag = "1")]
    pub(super) id: Vec<u8>,
    /// `PushProvider`: 1 APNs, 2 FCM.
    #[prost(uint32, tag = "2")]
    pub(super) provider: u32,
    /// A token valid for the provider (as `PUT /v1/accounts/apn|gcm` checks).
    #[prost(string, tag = "3")]
    pub(super) token: String,
}

/// `Call::AnswerVerification`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct AnswerVerification {
    /// The session id.
    #[prost(bytes = "vec", tag = "1")]
    pub(super) id: Vec<u8>,
    /// The token the push carried, as the client sent it.
    #[prost(string, tag = "2")]
    pub(super) challenge: String,
}
