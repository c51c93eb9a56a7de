//! Messages: the `PUT /v1/messages/{uuid}` body and the `Envelope` JSON.
//!
//! An envelope is encoded once, when it is accepted, as the exact JSON the
//! device will receive minus `serverDeliveredTimestamp`; delivery splices
//! that field in before the closing brace ([`with_delivered_timestamp`]),
//! so the hot path never re-parses stored JSON.
//!
//! Invariants: [`SendRequest::validate`] accepts only types 1, 3, 6, 7
//! (Signal's 1, 3, 6, 8 with [`TypeNumbering::Signal`], stored as the spec's),
//! device ids 1..=127, each device at most once, and Base64 content; the
//! content is opaque and never inspected beyond checking it is Base64.

use crate::protocol::base64;
use crate::protocol::payloads::PayloadError;
use crate::protocol::proto::messages::EnvelopeType;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Envelope types clients may send (spec: 1 ciphertext, 3 prekey bundle,
/// 6 plaintext content, 7 unidentified sender).
pub const ENVELOPE_TYPES: [u8; 4] = [1, 3, 6, 7];
/// The envelope type of a sealed-sender envelope.
pub const SEALED_SENDER_TYPE: u8 = 7;

/// One per-device entry of a send request, as sent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutgoingMessageJson {
    /// Envelope type.
    #[serde(rename = "type")]
    pub kind: i64,
    /// Device the entry is for.
    pub destination_device_id: i64,
    /// That device's registration id, as the sender believes it.
    pub destination_registration_id: i64,
    /// Base64 of the encrypted content.
    pub content: String,
}

/// `PUT /v1/messages/{uuid}` body, as sent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SendRequest {
    /// One entry per destination device.
    pub messages: Vec<OutgoingMessageJson>,
    /// Deliver only to connected devices; never store or push.
    #[serde(default)]
    pub online: bool,
    /// Urgent (affects push priority).
    #[serde(default = "default_true")]
    pub urgent: bool,
    /// Client timestamp, ms.
    #[serde(default)]
    pub timestamp: u64,
}

fn default_true() -> bool {
    true
}

/// One validated per-device entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// Envelope type (one of [`ENVELOPE_TYPES`]).
    pub kind: u8,
    /// Destination device.
    pub device_id: u32,
    /// Registration id the sender expects.
    pub registration_id: u32,
    /// Content as the sender sent it: checked Base64, padded (the server
    /// never decodes it: it is stored and delivered in this form).
    pub content: String,
}

/// A validated send request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Send {
    /// Entries, one per device, in the order sent.
    pub messages: Vec<OutgoingMessage>,
    /// Deliver only to connected devices.
    pub online: bool,
    /// Urgent.
    pub urgent: bool,
    /// Client timestamp, ms.
    pub timestamp: u64,
}

/// Signal's `Envelope.Type` for the spec's JSON type (`None` for a type
/// the spec does not have).
pub fn signal_type_of_spec(spec_type: u8) -> Option<EnvelopeType> {
    match spec_type {
        1 => Some(EnvelopeType::Ciphertext),
        3 => Some(EnvelopeType::PrekeyBundle),
        6 => Some(EnvelopeType::PlaintextContent),
        7 => Some(EnvelopeType::UnidentifiedSender),
        _ => None,
    }
}

/// The spec's JSON type for a type a Signal client sends (`None` for the
/// types a client may not send: 2, 4, 5, 7 and anything unknown).
pub fn spec_type_of_signal(signal_type: i64) -> Option<u8> {
    match signal_type {
        1 => Some(1),
        3 => Some(3),
        6 => Some(7),
        8 => Some(6),
        _ => None,
    }
}

/// Which numbering a send request's `type` fields use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeNumbering {
    /// The spec's JSON numbering: 1, 3, 6 plaintext, 7 sealed sender.
    Spec,
    /// Signal's `Envelope.Type` (protobuf connections and stock clients):
    /// 1, 3, 6 sealed sender, 8 plaintext.
    Signal,
}

impl TypeNumbering {
    /// The spec's type of a request's `type` in this numbering.
    fn spec_type(self, kind: i64) -> Result<u8, PayloadError> {
        match self {
            TypeNumbering::Spec => u8::try_from(kind)
                .ok()
                .filter(|kind| ENVELOPE_TYPES.contains(kind))
                .ok_or_else(|| PayloadError(format!("type {kind} is not one of 1, 3, 6, 7"))),
            TypeNumbering::Signal => spec_type_of_signal(kind).ok_or_else(|| {
                PayloadError(format!("type {kind} is not one of Signal's 1, 3, 6, 8"))
            }),
        }
    }
}

impl SendRequest {
    /// Checks every field, types in the spec's numbering (400 on failure).
    pub fn validate(self) -> Result<Send, PayloadError> {
        self.validate_as(TypeNumbering::Spec)
    }

    /// Checks every field, reading `type` in `numbering`; the result holds
    /// the spec's numbering (the stored form).
    pub fn validate_as(self, numbering: TypeNumbering) -> Result<Send, PayloadError> {
        if self.messages.is_empty() {
            return Err(PayloadError("messages must not be empty".into()));
        }
        let mut seen = [false; 128];
        let mut messages = Vec::with_capacity(self.messages.len());
        for message in self.messages {
            let kind = numbering.spec_type(message.kind)?;
            let device_id = u32::try_from(message.destination_device_id)
                .ok()
                .filter(|id| (1..=127).contains(id))
                .ok_or_else(|| PayloadError("destinationDeviceId must be 1 to 127".into()))?;
            if std::mem::replace(&mut seen[device_id as usize], true) {
                return Err(PayloadError(format!("device {device_id} named twice")));
            }
            let registration_id = u32::try_from(message.destination_registration_id)
                .map_err(|_| PayloadError("destinationRegistrationId out of range".into()))?;
            let content = base64::checked_padded(message.content)
                .map_err(|_| PayloadError("content is not Base64".into()))?;
            messages.push(OutgoingMessage { kind, device_id, registration_id, content });
        }
        Ok(Send { messages, online: self.online, urgent: self.urgent, timestamp: self.timestamp })
    }
}

/// 409 body: the request did not name exactly the account's devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MismatchedDevices {
    /// Devices the account has that the request did not name.
    pub missing_devices: Vec<u32>,
    /// Devices the request named that the account does not have.
    pub extra_devices: Vec<u32>,
}

/// 410 body: registration ids that no longer match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaleDevices {
    /// Devices whose registration id differs from the request's.
    pub stale_devices: Vec<u32>,
}

/// 200 body of a send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendResponse {
    /// The sender has other devices that should get a sync copy.
    pub needs_sync: bool,
}

/// The fields of one envelope as the server fills them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Envelope type.
    #[serde(rename = "type")]
    pub kind: u8,
    /// Sender account; absent for sealed sender.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source_uuid: Option<String>,
    /// Sender device; absent for sealed sender.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source_device: Option<u32>,
    /// Client timestamp, ms.
    pub timestamp: u64,
    /// When the server accepted it, ms.
    pub server_timestamp: u64,
    /// Base64 content.
    pub content: String,
    /// Server-assigned id (UUID v4).
    pub server_guid: String,
    /// Recipient account.
    pub destination_uuid: String,
    /// Urgent.
    pub urgent: bool,
    /// A story.
    pub story: bool,
    /// Set when delivered, ms.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub server_delivered_timestamp: Option<u64>,
}

impl Envelope {
    /// The JSON stored and later delivered (without the delivered timestamp).
    pub fn to_json(&self) -> Vec<u8> {
        debug_assert!(self.server_delivered_timestamp.is_none());
        serde_json::to_vec(self).expect("envelope encodes")
    }
}

/// `json` (an object) with `"serverDeliveredTimestamp":ms` added.
pub fn with_delivered_timestamp(json: &[u8], delivered_ms: u64) -> Vec<u8> {
    assert!(json.last() == Some(&b'}'), "stored envelope is a JSON object");
    let mut out = Vec::with_capacity(json.len() + 40);
    out.extend_from_slice(&json[..json.len() - 1]);
    out.extend_from_slice(b",\"serverDeliveredTimestamp\":");
    out.extend_from_slice(delivered_ms.to_string().as_bytes());
    out.push(b'}');
    out
}

/// A new random server GUID.
pub fn new_server_guid() -> Uuid {
    Uuid::new_v4()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::payloads::parse_json;

    fn parse(text: &str) -> Result<Send, PayloadError> {
        parse_json::<SendRequest>(&mut text.as_bytes().to_vec())?.validate()
    }

    #[test]
    fn valid_request_parses() {
        let send = parse(
            r#"{"messages":[{"type":1,"destinationDeviceId":1,"destinationRegistrationId":5,"content":"aGk="}],"online":false,"urgent":true,"timestamp":99}"#,
        )
        .unwrap();
        assert_eq!(send.messages[0].content, "aGk=");
        assert_eq!(send.timestamp, 99);
    }

    #[test]
    fn hostile_requests_are_refused() {
        let entry = |kind: i64, device: i64, content: &str| {
            format!(
                r#"{{"type":{kind},"destinationDeviceId":{device},"destinationRegistrationId":1,"content":"{content}"}}"#
            )
        };
        for body in [
            r#"{"messages":[]}"#.to_string(),
            r#"{"messages":{}}"#.to_string(),
            format!(r#"{{"messages":[{}]}}"#, entry(2, 1, "aGk=")),
            format!(r#"{{"messages":[{}]}}"#, entry(-1, 1, "aGk=")),
            format!(r#"{{"messages":[{}]}}"#, entry(1, 0, "aGk=")),
            format!(r#"{{"messages":[{}]}}"#, entry(1, 128, "aGk=")),
            format!(r#"{{"messages":[{}]}}"#, entry(1, 1, "***")),
            format!(r#"{{"messages":[{},{}]}}"#, entry(1, 1, "aGk="), entry(1, 1, "aGk=")),
            r#"{"messages":[{"type":1}]}"#.to_string(),
        ] {
            assert!(parse(&body).is_err(), "{body}");
        }
    }

    #[test]
    fn delivered_timestamp_is_spliced_into_valid_json() {
        let envelope = Envelope {
            kind: 1,
            source_uuid: Some(Uuid::nil().to_string()),
            source_device: Some(1),
            timestamp: 1,
            server_timestamp: 2,
            content: "aGk=".into(),
            server_guid: Uuid::nil().to_string(),
            destination_uuid: Uuid::nil().to_string(),
            urgent: true,
            story: false,
            server_delivered_timestamp: None,
        };
        let delivered = with_delivered_timestamp(&envelope.to_json(), 3);
        let back: Envelope = serde_json::from_slice(&delivered).unwrap();
        assert_eq!(back.server_delivered_timestamp, Some(3));
        assert_eq!(Envelope { server_delivered_timestamp: None, ..back }, envelope);
    }

    #[test]
    fn sealed_envelope_omits_source() {
        let envelope = Envelope {
            kind: SEALED_SENDER_TYPE,
            source_uuid: None,
            source_device: None,
            timestamp: 1,
            server_timestamp: 2,
            content: String::new(),
            server_guid: Uuid::nil().to_string(),
            destination_uuid: Uuid::nil().to_string(),
            urgent: false,
            story: false,
            server_delivered_timestamp: None,
        };
        let text = String::from_utf8(envelope.to_json()).unwrap();
        assert!(!text.contains("sourceUuid") && !text.contains("sourceDevice"));
    }
}
