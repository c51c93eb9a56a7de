//! The payloads calls carry, to and from their frames: [`Registration`],
//! [`AuthedDevice`], [`Send`] and [`FanoutItem`]. Decoding checks what the
//! HTTP layer's `validate` checked on the calling node, so the owner never
//! sees a payload its own clients could not have sent.

use super::field::{self, DEVICE_ID_MAX};
use super::format::WireError;
use super::frames;
use crate::accounts::AuthedDevice;
use crate::protocol::base64;
use crate::protocol::envelope::{OutgoingMessage, Send, ENVELOPE_TYPES};
use crate::protocol::items::{FanoutItem, Receipt, TypingEvent, GROUP_ID_BYTES_MAX};
use crate::protocol::payloads::{
    Registration, ACCESS_KEY_BYTES, NAME_BYTES_MAX, PASSWORD_BYTES_MAX, REGISTRATION_ID_MAX,
};

/// Typing actions by code (position + 1).
const TYPING_ACTIONS: [&str; 2] = ["STARTED", "STOPPED"];
/// Receipt kinds by code (position + 1).
const RECEIPT_KINDS: [&str; 2] = ["DELIVERY", "READ"];

pub(super) fn registration_to_frame(registration: &Registration) -> frames::Registration {
    frames::Registration {
        password: registration.password.clone(),
        registration_id: registration.registration_id,
        unidentified_access_key: registration.unidentified_access_key.map(|key| key.to_vec()),
        unrestricted_unidentified_access: registration.unrestricted_unidentified_access,
        name: registration.name.clone(),
    }
}

pub(super) fn registration_from_frame(
    frame: Option<frames::Registration>,
) -> Result<Registration, WireError> {
    let frame = field::required("registration", frame)?;
    field::text_len("registration.password", &frame.password, 1, PASSWORD_BYTES_MAX)?;
    let id = u64::from(frame.registration_id);
    field::in_range("registration.registration_id", id, 1, REGISTRATION_ID_MAX.into())?;
    if let Some(name) = &frame.name {
        field::text_len("registration.name", name, 0, NAME_BYTES_MAX)?;
    }
    let key = frame.unidentified_access_key.as_deref();
    let key = key.map(|key| field::fixed::<ACCESS_KEY_BYTES>("registration.access_key", key));
    Ok(Registration {
        password: frame.password,
        registration_id: frame.registration_id,
        unidentified_access_key: key.transpose()?,
        unrestricted_unidentified_access: frame.unrestricted_unidentified_access,
        name: frame.name,
    })
}

pub(super) fn device_to_frame(device: &AuthedDevice) -> frames::Device {
    frames::Device { account: field::uuid_bytes(&device.account), device_id: device.device_id }
}

pub(super) fn device_from_frame(frame: frames::Device) -> Result<AuthedDevice, WireError> {
    Ok(AuthedDevice {
        account: field::uuid("sender.account", &frame.account)?,
        device_id: field::device_id("sender.device_id", frame.device_id)?,
    })
}

pub(super) fn send_to_frame(send: &Send) -> frames::Send {
    let messages = send.messages.iter().map(|message| frames::OutgoingMessage {
        kind: message.kind.into(),
        device_id: message.device_id,
        registration_id: message.registration_id,
        content: message.content.clone(),
    });
    frames::Send {
        messages: messages.collect(),
        online: send.online,
        urgent: send.urgent,
        timestamp: send.timestamp,
    }
}

pub(super) fn send_from_frame(frame: Option<frames::Send>) -> Result<Send, WireError> {
    let frame = field::required("send", frame)?;
    let count = frame.messages.len() as u64;
    field::in_range("send.messages", count, 1, DEVICE_ID_MAX.into())?;
    let mut seen = [false; DEVICE_ID_MAX as usize + 1];
    let mut messages = Vec::with_capacity(frame.messages.len());
    for message in frame.messages {
        let message = outgoing_from_frame(message)?;
        if std::mem::replace(&mut seen[message.device_id as usize], true) {
            return Err(WireError::Invalid {
                field: "send.messages",
                reason: "device named twice",
            });
        }
        messages.push(message);
    }
    Ok(Send { messages, online: frame.online, urgent: frame.urgent, timestamp: frame.timestamp })
}

fn outgoing_from_frame(frame: frames::OutgoingMessage) -> Result<OutgoingMessage, WireError> {
    let kind = u8::try_from(frame.kind).ok().filter(|kind| ENVELOPE_TYPES.contains(kind));
    let unknown = WireError::UnknownValue { field: "message.kind", value: frame.kind.into() };
    let kind = kind.ok_or(unknown)?;
    let device_id = field::device_id("message.device_id", frame.device_id)?;
    // Stored and delivered as received: it must already be the padded form
    // `SendRequest::validate` produces.
    let padded = frame.content.len().is_multiple_of(4);
    let content = base64::checked_padded(frame.content).ok().filter(|_| padded);
    let invalid = WireError::Invalid { field: "message.content", reason: "not padded Base64" };
    let content = content.ok_or(invalid)?;
    Ok(OutgoingMessage { kind, device_id, registration_id: frame.registration_id, content })
}

/// An action or kind outside the tables (never built by `validate`) is
/// written as code 0, which the peer refuses with a typed error.
pub(super) fn item_to_frame(item: &FanoutItem) -> frames::Item {
    match item {
        FanoutItem::Typing(event) => frames::Item::Typing(frames::Typing {
            action: field::code_of(&TYPING_ACTIONS, &event.action).unwrap_or(0),
            timestamp: event.timestamp,
            group_id: event.group_id.clone(),
        }),
        FanoutItem::Receipt(receipt) => frames::Item::Receipt(frames::Receipt {
            kind: field::code_of(&RECEIPT_KINDS, &receipt.kind).unwrap_or(0),
            timestamps: receipt.timestamps.clone(),
        }),
        FanoutItem::Story { content, timestamp, allows_replies } => {
            frames::Item::Story(frames::Story {
                content: content.clone(),
                timestamp: *timestamp,
                allows_replies: *allows_replies,
            })
        }
    }
}

pub(super) fn item_from_frame(frame: Option<frames::Item>) -> Result<FanoutItem, WireError> {
    match field::required("item", frame)? {
        frames::Item::Typing(typing) => {
            let action = field::of_code("typing.action", &TYPING_ACTIONS, typing.action)?;
            if let Some(group_id) = &typing.group_id {
                field::text_len("typing.group_id", group_id, 0, GROUP_ID_BYTES_MAX)?;
                is_base64("typing.group_id", group_id)?;
            }
            let timestamp = typing.timestamp;
            Ok(FanoutItem::Typing(TypingEvent { action, timestamp, group_id: typing.group_id }))
        }
        frames::Item::Receipt(receipt) => {
            let kind = field::of_code("receipt.kind", &RECEIPT_KINDS, receipt.kind)?;
            if receipt.timestamps.is_empty() {
                return Err(WireError::Missing("receipt.timestamps"));
            }
            Ok(FanoutItem::Receipt(Receipt { kind, timestamps: receipt.timestamps }))
        }
        frames::Item::Story(story) => {
            field::text_len("story.content", &story.content, 1, usize::MAX)?;
            is_base64("story.content", &story.content)?;
            let (content, timestamp) = (story.content, story.timestamp);
            Ok(FanoutItem::Story { content, timestamp, allows_replies: story.allows_replies })
        }
    }
}

/// Checks `text` is Base64 (padded or not), as `validate` did.
fn is_base64(field: &'static str, text: &str) -> Result<(), WireError> {
    match base64::decode(text.as_bytes()) {
        Ok(_) => Ok(()),
        Err(_) => Err(WireError::Invalid { field, reason: "not Base64" }),
    }
}
