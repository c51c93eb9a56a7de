//! The form in which a connection receives its items: the spec's JSON
//! bodies, or Signal's protobuf `Envelope`s for a protobuf-framed device,
//! built from the one stored form (the JSON).
//!
//! | stored item           | JSON form                   | protobuf form |
//! |-----------------------|-----------------------------|---------------|
//! | envelope              | `/api/v1/message` JSON      | `/api/v1/message` `Envelope` |
//! | story                 | `/api/v1/story` JSON        | `/api/v1/message` `Envelope`, `story = true` |
//! | `DELIVERY` receipt    | `/api/v1/receipt` JSON      | one `/api/v1/message` `SERVER_DELIVERY_RECEIPT` `Envelope` per timestamp |
//! | `READ` receipt        | `/api/v1/receipt` JSON      | `/api/v1/receipt` JSON |
//! | typing (live only)    | `/api/v1/typing` JSON       | `/api/v1/typing` JSON |
//!
//! Invariants: every stored item becomes at least one request (a receipt
//! with N timestamps becomes N, at most `receipt_timestamps_max`); the
//! content bytes a protobuf device receives are the stored content
//! decoded; a JSON device's bodies are exactly what they were before the
//! protobuf form existed.

use crate::protocol::envelope::with_delivered_timestamp;
use crate::protocol::proto::envelope::{self as proto, ConvertError};
use crate::store::messages::{parse_key, StoredKind, StoredMessage};
use prost::Message;

/// Path of a stored or online-only envelope sent to the client.
pub const MESSAGE_PATH: &str = "/api/v1/message";
/// Path of a receipt sent to the client.
pub const RECEIPT_PATH: &str = "/api/v1/receipt";
/// Path of a story sent to the client.
pub const STORY_PATH: &str = "/api/v1/story";
/// Path of a typing indicator sent to the client (live only).
pub const TYPING_PATH: &str = "/api/v1/typing";

/// How a connection receives its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryForm {
    /// Envelopes, stories and server delivery receipts as protobuf
    /// `Envelope`s (a protobuf-framed connection); else the JSON bodies.
    pub protobuf: bool,
    /// Whether stories are delivered; if not, they are acknowledged for the
    /// device unseen (`X-Signal-Receive-Stories: false`).
    pub stories: bool,
}

impl DeliveryForm {
    /// The JSON form, stories included (the spec's clients).
    pub const JSON: DeliveryForm = DeliveryForm { protobuf: false, stories: true };
}

/// Where a device receives a stored item of `kind` in the JSON form.
fn json_path_of(kind: StoredKind) -> &'static str {
    match kind {
        StoredKind::Envelope | StoredKind::IdentifiedEnvelope(_) => MESSAGE_PATH,
        StoredKind::Receipt => RECEIPT_PATH,
        StoredKind::Story => STORY_PATH,
    }
}

/// The JSON body a device receives: envelopes get `serverDeliveredTimestamp`.
fn json_body(path: &'static str, json: &[u8], now_ms: u64) -> Vec<u8> {
    if path == MESSAGE_PATH {
        with_delivered_timestamp(json, now_ms)
    } else {
        json.to_vec()
    }
}

/// The requests (path, body) that deliver `message` to `device_account`'s
/// device in `form`, in order.
pub fn requests_for(
    form: DeliveryForm,
    message: &StoredMessage,
    device_account: &uuid::Uuid,
    now_ms: u64,
) -> Result<Vec<(&'static str, Vec<u8>)>, ConvertError> {
    if !form.protobuf {
        let path = json_path_of(message.kind);
        return Ok(vec![(path, json_body(path, &message.json, now_ms))]);
    }
    let server_ms = parse_key(&message.key).map_or(now_ms, |(_, _, server_ms, _)| server_ms);
    let envelopes = match message.kind {
        StoredKind::Envelope | StoredKind::IdentifiedEnvelope(_) => {
            vec![proto::from_envelope_json(&message.json, false)?]
        }
        StoredKind::Story => {
            vec![proto::from_story_json(&message.json, device_account, server_ms)?]
        }
        StoredKind::Receipt => {
            let guid = &message.guid;
            match proto::delivery_receipt_envelopes(&message.json, guid, device_account, server_ms)?
            {
                Some(envelopes) => envelopes,
                None => return Ok(vec![(RECEIPT_PATH, message.json.clone())]),
            }
        }
    };
    Ok(envelopes.into_iter().map(|envelope| (MESSAGE_PATH, envelope.encode_to_vec())).collect())
}

/// The body of a live-only item at `path` in `form`.
pub fn ephemeral_body(
    form: DeliveryForm,
    path: &'static str,
    json: &[u8],
    now_ms: u64,
) -> Result<Vec<u8>, ConvertError> {
    if form.protobuf && path == MESSAGE_PATH {
        Ok(proto::from_envelope_json(json, true)?.encode_to_vec())
    } else {
        Ok(json_body(path, json, now_ms))
    }
}
