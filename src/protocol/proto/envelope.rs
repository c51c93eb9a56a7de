//! Envelopes in Signal's protobuf form, built from the shared stored form
//! (the spec's JSON), and the two numberings of the envelope type.
//!
//! The store keeps one form for every device: the JSON a JSON-framed
//! device receives. A protobuf-framed device receives the same envelope as
//! a protobuf `Envelope` with the content as raw bytes, the sender and
//! recipient as binary service ids and the type in Signal's numbering.
//!
//! | meaning        | spec JSON `type` | Signal `Envelope.Type` |
//! |----------------|------------------|------------------------|
//! | ciphertext     | 1                | 1 CIPHERTEXT           |
//! | prekey bundle  | 3                | 3 PREKEY_BUNDLE        |
//! | plaintext      | 6                | 8 PLAINTEXT_CONTENT    |
//! | sealed sender  | 7                | 6 UNIDENTIFIED_SENDER  |
//! | server receipt | (a receipt item) | 5 SERVER_DELIVERY_RECEIPT |
//!
//! Invariants: the conversions never panic on any stored bytes (a value
//! that does not parse is a [`ConvertError`]); the retired field numbers
//! 2, 9, 11, 13 and 15 are never written; content bytes are exactly the
//! Base64-decoded stored content.

use crate::protocol::base64;
use crate::protocol::envelope::signal_type_of_spec;
use crate::protocol::json_in;
use crate::protocol::proto::messages::{Envelope, EnvelopeType};
use bytes::Bytes;
use serde::Deserialize;
use simd_json::prelude::*;
use uuid::Uuid;

/// Why a stored item could not be turned into an `Envelope`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored item cannot be sent as an Envelope: {0}")]
pub struct ConvertError(&'static str);

/// An ACI's binary service id: its 16 UUID bytes.
pub fn aci_bytes(account: &Uuid) -> Bytes {
    Bytes::copy_from_slice(account.as_bytes())
}

fn uuid_bytes(text: &str) -> Result<Bytes, ConvertError> {
    let uuid = Uuid::try_parse(text).map_err(|_| ConvertError("a UUID field is not a UUID"))?;
    Ok(aci_bytes(&uuid))
}

fn content_bytes(text: &str) -> Result<Bytes, ConvertError> {
    let bytes = base64::decode(text.as_bytes()).map_err(|_| ConvertError("content not Base64"))?;
    Ok(Bytes::from(bytes))
}

/// The `Envelope` of a stored (or online-only, `ephemeral`) envelope's JSON.
///
/// Read off simd-json's tape (with the thread's reused buffers) from a copy
/// of the stored bytes: serde_json's typed decode of the same fields took
/// 464 ns against this path's time in `benches/proto.rs`.
pub fn from_envelope_json(json: &[u8], ephemeral: bool) -> Result<Envelope, ConvertError> {
    let mut text = json.to_vec();
    let tape = json_in::to_tape(&mut text).map_err(|_| ConvertError("not an envelope"))?;
    let value = tape.as_value();
    let object = value.as_object().ok_or(ConvertError("not an envelope"))?;
    let number = |name| object.get(name).and_then(|value| value.as_u64());
    // A string field made into bytes by `convert` while its value is held.
    let bytes_of = |name, convert: fn(&str) -> Result<Bytes, ConvertError>| {
        let value = object.get(name);
        value.as_ref().and_then(|value| value.as_str()).map(convert).transpose()
    };
    let flag = |name| object.get(name).and_then(|value| value.as_bool());
    let missing = ConvertError("an envelope field is missing");
    let spec_type =
        number("type").and_then(|kind| u8::try_from(kind).ok()).ok_or(missing.clone())?;
    let kind = signal_type_of_spec(spec_type).ok_or(ConvertError("unknown envelope type"))?;
    let source_device = match number("sourceDevice") {
        Some(device) => Some(u32::try_from(device).map_err(|_| missing.clone())?),
        None => None,
    };
    Ok(Envelope {
        r#type: Some(kind as i32),
        client_timestamp: Some(number("timestamp").ok_or(missing.clone())?),
        source_device,
        content: Some(bytes_of("content", content_bytes)?.ok_or(missing.clone())?),
        server_timestamp: Some(number("serverTimestamp").ok_or(missing.clone())?),
        ephemeral: ephemeral.then_some(true),
        urgent: Some(flag("urgent").ok_or(missing.clone())?),
        story: flag("story").ok_or(missing.clone())?.then_some(true),
        source_service_id: bytes_of("sourceUuid", uuid_bytes)?,
        destination_service_id: Some(
            bytes_of("destinationUuid", uuid_bytes)?.ok_or(missing.clone())?,
        ),
        server_guid: Some(bytes_of("serverGuid", uuid_bytes)?.ok_or(missing)?),
        ..Envelope::default()
    })
}

/// The stored JSON of a story (`PUT /api/v1/story` in the JSON framing).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredStory {
    content: String,
    timestamp: u64,
    source_uuid: String,
    server_guid: String,
}

/// The `Envelope` (`story = true`, not urgent) of a stored story for
/// `destination`, accepted at `server_ms`. Stories travel sealed in Signal,
/// so the type is UNIDENTIFIED_SENDER; the author is named as well.
pub fn from_story_json(
    json: &[u8],
    destination: &Uuid,
    server_ms: u64,
) -> Result<Envelope, ConvertError> {
    let story: StoredStory =
        serde_json::from_slice(json).map_err(|_| ConvertError("not a story"))?;
    Ok(Envelope {
        r#type: Some(EnvelopeType::UnidentifiedSender as i32),
        client_timestamp: Some(story.timestamp),
        content: Some(content_bytes(&story.content)?),
        server_timestamp: Some(server_ms),
        urgent: Some(false),
        story: Some(true),
        source_service_id: Some(uuid_bytes(&story.source_uuid)?),
        destination_service_id: Some(aci_bytes(destination)),
        server_guid: Some(uuid_bytes(&story.server_guid)?),
        ..Envelope::default()
    })
}

/// The stored JSON of a receipt (`PUT /api/v1/receipt` in the JSON framing).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredReceipt {
    #[serde(rename = "type")]
    kind: String,
    timestamps: Vec<u64>,
    source_uuid: String,
    source_device: u32,
}

/// A stored receipt's `SERVER_DELIVERY_RECEIPT` envelopes, one per
/// acknowledged message as Signal sends them (not urgent; the source is
/// the acknowledging device), or `None` for a receipt that is not a
/// `DELIVERY` receipt (it keeps its JSON request). Each gets a GUID derived
/// from the stored item's `guid` and its place, so a redelivery repeats it.
pub fn delivery_receipt_envelopes(
    json: &[u8],
    guid: &Uuid,
    destination: &Uuid,
    server_ms: u64,
) -> Result<Option<Vec<Envelope>>, ConvertError> {
    let receipt: StoredReceipt =
        serde_json::from_slice(json).map_err(|_| ConvertError("not a receipt"))?;
    if receipt.kind != "DELIVERY" {
        return Ok(None);
    }
    let source = uuid_bytes(&receipt.source_uuid)?;
    let envelopes = receipt.timestamps.iter().enumerate().map(|(index, timestamp)| Envelope {
        r#type: Some(EnvelopeType::ServerDeliveryReceipt as i32),
        client_timestamp: Some(*timestamp),
        source_device: Some(receipt.source_device),
        server_timestamp: Some(server_ms),
        urgent: Some(false),
        source_service_id: Some(source.clone()),
        destination_service_id: Some(aci_bytes(destination)),
        server_guid: Some(aci_bytes(&part_guid(guid, index))),
        ..Envelope::default()
    });
    Ok(Some(envelopes.collect()))
}

/// A stable version-4 GUID for part `index` of the item `guid`.
fn part_guid(guid: &Uuid, index: usize) -> Uuid {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    hash.update(guid.as_bytes());
    hash.update((index as u64).to_be_bytes());
    let digest = hash.finalize();
    let bytes: [u8; 16] = digest[..16].try_into().expect("32-byte digest");
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}
