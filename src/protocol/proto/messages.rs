//! The protobuf messages of `proto/*.proto`, as prost types (proto2: every
//! scalar is optional, so presence is kept).
//!
//! The server encodes `Envelope` and `ProvisioningAddress` with these types;
//! incoming frames are read by the borrowing decoder in
//! [`super::frame`], and the `WebSocket*` types here serve clients (the load
//! generator) and tests.
//!
//! Invariant: field numbers and types match `proto/*.proto` exactly (a test
//! checks the encodings against `protoc` when it is installed).

use bytes::Bytes;

/// `WebSocketMessage.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MessageType {
    /// Not a valid frame.
    Unknown = 0,
    /// Carries `request`.
    Request = 1,
    /// Carries `response`.
    Response = 2,
}

/// `WebSocketMessage`: one binary frame.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WebSocketMessage {
    /// [`MessageType`].
    #[prost(enumeration = "MessageType", optional, tag = "1")]
    pub r#type: Option<i32>,
    /// Set when `type` is REQUEST.
    #[prost(message, optional, tag = "2")]
    pub request: Option<WebSocketRequestMessage>,
    /// Set when `type` is RESPONSE.
    #[prost(message, optional, tag = "3")]
    pub response: Option<WebSocketResponseMessage>,
}

/// `WebSocketRequestMessage`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WebSocketRequestMessage {
    /// HTTP method.
    #[prost(string, optional, tag = "1")]
    pub verb: Option<String>,
    /// Path, possibly with a query.
    #[prost(string, optional, tag = "2")]
    pub path: Option<String>,
    /// Raw body.
    #[prost(bytes = "bytes", optional, tag = "3")]
    pub body: Option<Bytes>,
    /// Request id; a request without one is not answered.
    #[prost(uint64, optional, tag = "4")]
    pub id: Option<u64>,
    /// `"Name:value"` strings.
    #[prost(string, repeated, tag = "5")]
    pub headers: Vec<String>,
}

/// `WebSocketResponseMessage`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WebSocketResponseMessage {
    /// The id of the request answered.
    #[prost(uint64, optional, tag = "1")]
    pub id: Option<u64>,
    /// HTTP status.
    #[prost(uint32, optional, tag = "2")]
    pub status: Option<u32>,
    /// Status text.
    #[prost(string, optional, tag = "3")]
    pub message: Option<String>,
    /// Raw body.
    #[prost(bytes = "bytes", optional, tag = "4")]
    pub body: Option<Bytes>,
    /// `"Name:value"` strings.
    #[prost(string, repeated, tag = "5")]
    pub headers: Vec<String>,
}

/// `Envelope.Type` (Signal's numbering, not the JSON spec's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum EnvelopeType {
    /// Not sent.
    Unknown = 0,
    /// A Signal-protocol message.
    Ciphertext = 1,
    /// A message that starts a session.
    PrekeyBundle = 3,
    /// The server's delivery receipt.
    ServerDeliveryReceipt = 5,
    /// Sealed sender.
    UnidentifiedSender = 6,
    /// Unencrypted content (decryption error reports).
    PlaintextContent = 8,
}

/// `Envelope`: what a device receives as `PUT /api/v1/message`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    /// [`EnvelopeType`].
    #[prost(enumeration = "EnvelopeType", optional, tag = "1")]
    pub r#type: Option<i32>,
    /// The sender's timestamp, ms.
    #[prost(uint64, optional, tag = "5")]
    pub client_timestamp: Option<u64>,
    /// The sending device (absent for sealed sender).
    #[prost(uint32, optional, tag = "7")]
    pub source_device: Option<u32>,
    /// The encrypted content, raw.
    #[prost(bytes = "bytes", optional, tag = "8")]
    pub content: Option<Bytes>,
    /// When the server accepted it, ms.
    #[prost(uint64, optional, tag = "10")]
    pub server_timestamp: Option<u64>,
    /// Online-only: never stored.
    #[prost(bool, optional, tag = "12")]
    pub ephemeral: Option<bool>,
    /// Urgent (absent means true).
    #[prost(bool, optional, tag = "14", default = "true")]
    pub urgent: Option<bool>,
    /// A story.
    #[prost(bool, optional, tag = "16")]
    pub story: Option<bool>,
    /// Not used by this server.
    #[prost(bytes = "bytes", optional, tag = "17")]
    pub report_spam_token: Option<Bytes>,
    /// Not used by this server.
    #[prost(bytes = "bytes", optional, tag = "18")]
    pub shared_mrm_key: Option<Bytes>,
    /// The sender's service id (absent for sealed sender).
    #[prost(bytes = "bytes", optional, tag = "19")]
    pub source_service_id: Option<Bytes>,
    /// The recipient's service id.
    #[prost(bytes = "bytes", optional, tag = "20")]
    pub destination_service_id: Option<Bytes>,
    /// The server's id of this envelope, 16 bytes.
    #[prost(bytes = "bytes", optional, tag = "21")]
    pub server_guid: Option<Bytes>,
    /// Not used by this server.
    #[prost(bytes = "bytes", optional, tag = "22")]
    pub updated_pni: Option<Bytes>,
}

/// `ProvisioningAddress`: the body of the provisioning socket's `PUT /v1/address`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProvisioningAddress {
    /// The address a primary device sends the provisioning message to.
    #[prost(string, optional, tag = "1")]
    pub address: Option<String>,
}
