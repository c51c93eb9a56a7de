//! Typing indicators, receipts and stories (DESIGN.md sections 3 and 4):
//! the request bodies clients send, validated, and the JSON the recipient's
//! devices receive (`PUT /api/v1/typing`, `/api/v1/receipt`, `/api/v1/story`).
//!
//! Invariants: [`TypingRequest::validate`], [`ReceiptRequest::validate`] and
//! [`StoryRequest::validate`] accept only bodies within their bounds (unknown
//! fields are refused); the delivered JSON always names its source.

use crate::protocol::base64;
use crate::protocol::payloads::PayloadError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest Base64 `groupId` accepted, in bytes.
pub const GROUP_ID_BYTES_MAX: usize = 256;

/// `PUT /v1/typing/{uuid}` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TypingRequest {
    /// `STARTED` or `STOPPED`.
    pub action: String,
    /// The client's timestamp, ms.
    pub timestamp: u64,
    /// Base64 group id when typing in a group.
    #[serde(default)]
    pub group_id: Option<String>,
}

/// A validated typing event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypingEvent {
    /// `STARTED` or `STOPPED`.
    pub action: &'static str,
    /// The client's timestamp, ms.
    pub timestamp: u64,
    /// Base64 group id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
}

impl TypingRequest {
    /// Checks the action and the group id.
    pub fn validate(self) -> Result<TypingEvent, PayloadError> {
        let action = match self.action.as_str() {
            "STARTED" => "STARTED",
            "STOPPED" => "STOPPED",
            _ => return Err(PayloadError("action must be STARTED or STOPPED".into())),
        };
        if let Some(group_id) = &self.group_id {
            if group_id.len() > GROUP_ID_BYTES_MAX || base64::decode(group_id.as_bytes()).is_err() {
                return Err(PayloadError("groupId must be Base64 of at most 192 bytes".into()));
            }
        }
        Ok(TypingEvent { action, timestamp: self.timestamp, group_id: self.group_id })
    }
}

/// `PUT /v1/receipts/{uuid}` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    /// `DELIVERY` or `READ`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Timestamps of the messages acknowledged.
    pub timestamps: Vec<u64>,
}

/// A validated receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// `DELIVERY` or `READ`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Timestamps of the messages acknowledged.
    pub timestamps: Vec<u64>,
}

impl ReceiptRequest {
    /// Checks the type and that there are 1 to `timestamps_max` timestamps.
    pub fn validate(self, timestamps_max: usize) -> Result<Receipt, PayloadError> {
        let kind = match self.kind.as_str() {
            "DELIVERY" => "DELIVERY",
            "READ" => "READ",
            _ => return Err(PayloadError("type must be DELIVERY or READ".into())),
        };
        if self.timestamps.is_empty() || self.timestamps.len() > timestamps_max {
            let reason = format!("timestamps must hold 1 to {timestamps_max} entries");
            return Err(PayloadError(reason));
        }
        Ok(Receipt { kind, timestamps: self.timestamps })
    }
}

/// `PUT /v1/stories` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StoryRequest {
    /// Accounts to show the story to.
    pub recipients: Vec<String>,
    /// Base64 of the encrypted story.
    pub content: String,
    /// The client's timestamp, ms.
    pub timestamp: u64,
    /// Whether replies are allowed.
    #[serde(default)]
    pub allows_replies: bool,
}

/// A validated story send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Story {
    /// Recipient accounts, without duplicates, in request order.
    pub recipients: Vec<Uuid>,
    /// Base64 content, checked to decode.
    pub content: String,
    /// The client's timestamp, ms.
    pub timestamp: u64,
    /// Whether replies are allowed.
    pub allows_replies: bool,
}

impl StoryRequest {
    /// Checks 1 to `recipients_max` UUID recipients and Base64 content.
    pub fn validate(self, recipients_max: usize) -> Result<Story, PayloadError> {
        if self.recipients.is_empty() || self.recipients.len() > recipients_max {
            let reason = format!("recipients must hold 1 to {recipients_max} accounts");
            return Err(PayloadError(reason));
        }
        let mut recipients = Vec::with_capacity(self.recipients.len());
        for text in &self.recipients {
            let uuid = Uuid::try_parse(text)
                .map_err(|_| PayloadError(format!("recipient {text:?} is not a UUID")))?;
            if !recipients.contains(&uuid) {
                recipients.push(uuid);
            }
        }
        if self.content.is_empty() || base64::decode(self.content.as_bytes()).is_err() {
            return Err(PayloadError("content must be non-empty Base64".into()));
        }
        Ok(Story {
            recipients,
            content: self.content,
            timestamp: self.timestamp,
            allows_replies: self.allows_replies,
        })
    }
}

/// What is fanned out to every device of a destination account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FanoutItem {
    /// A typing indicator (live only).
    Typing(TypingEvent),
    /// A delivery or read receipt (stored).
    Receipt(Receipt),
    /// One story for this destination (stored, non-urgent).
    Story {
        /// Base64 content.
        content: String,
        /// The client's timestamp, ms.
        timestamp: u64,
        /// Whether replies are allowed.
        allows_replies: bool,
    },
}

/// `PUT /api/v1/typing` body: the event and who typed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypingDelivery<'a> {
    /// The event.
    #[serde(flatten)]
    pub event: &'a TypingEvent,
    /// The typing account.
    pub source_uuid: String,
    /// The typing device.
    pub source_device: u32,
}

/// `PUT /api/v1/receipt` body: the receipt and who sent it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptDelivery<'a> {
    /// The receipt.
    #[serde(flatten)]
    pub receipt: &'a Receipt,
    /// The acknowledging account.
    pub source_uuid: String,
    /// The acknowledging device.
    pub source_device: u32,
}

/// `PUT /api/v1/story` body: the story, its author and its server GUID.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoryDelivery<'a> {
    /// Base64 content.
    pub content: &'a str,
    /// The client's timestamp, ms.
    pub timestamp: u64,
    /// Whether replies are allowed.
    pub allows_replies: bool,
    /// The author account.
    pub source_uuid: String,
    /// Server-assigned id of this copy (UUID v4).
    pub server_guid: String,
    /// Always true: a story.
    pub story: bool,
    /// Stories are never urgent.
    pub urgent: bool,
}

/// `PUT /v1/provisioning/{uuid}` body, and the `ProvisioningMessage` the new
/// device receives as `PUT /v1/message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningMessage {
    /// Base64 of the encrypted provisioning message.
    pub body: String,
}

/// `ProvisioningUUID`: the address a new device's socket is given, sent as
/// `PUT /v1/address`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisioningAddress {
    /// The address, a UUID.
    pub uuid: String,
}

/// `PUT /v1/stories` answer: recipients that have no account here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoryResponse {
    /// Recipients without an account (the others got the story).
    pub unknown_recipients: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::payloads::{parse_json, to_json};

    #[test]
    fn typing_accepts_the_two_actions_and_refuses_the_rest() {
        let mut body = br#"{"action":"STARTED","timestamp":5,"groupId":"AAEC"}"#.to_vec();
        let event = parse_json::<TypingRequest>(&mut body).unwrap().validate().unwrap();
        assert_eq!(event.action, "STARTED");
        let mut bad = br#"{"action":"typing","timestamp":5}"#.to_vec();
        assert!(parse_json::<TypingRequest>(&mut bad).unwrap().validate().is_err());
        let mut unknown = br#"{"action":"STOPPED","timestamp":5,"x":1}"#.to_vec();
        assert!(parse_json::<TypingRequest>(&mut unknown).is_err(), "unknown field");
        let mut missing = br#"{"action":"STOPPED"}"#.to_vec();
        assert!(parse_json::<TypingRequest>(&mut missing).is_err(), "missing timestamp");
        let delivered = TypingDelivery { event: &event, source_uuid: "u".into(), source_device: 2 };
        assert_eq!(
            to_json(&delivered),
            br#"{"action":"STARTED","timestamp":5,"groupId":"AAEC","sourceUuid":"u","sourceDevice":2}"#
        );
    }

    #[test]
    fn receipts_are_bounded() {
        let request = |timestamps: Vec<u64>| ReceiptRequest { kind: "READ".into(), timestamps };
        assert!(request(vec![1, 2]).validate(2).is_ok());
        assert!(request(vec![1, 2, 3]).validate(2).is_err());
        assert!(request(vec![]).validate(2).is_err());
        let wrong = ReceiptRequest { kind: "SEEN".into(), timestamps: vec![1] };
        assert!(wrong.validate(2).is_err());
    }

    #[test]
    fn stories_need_uuid_recipients_and_base64_content() {
        let id = Uuid::new_v4().to_string();
        let request = |recipients: Vec<String>, content: &str| StoryRequest {
            recipients,
            content: content.into(),
            timestamp: 1,
            allows_replies: true,
        };
        let story = request(vec![id.clone(), id.clone()], "AAEC").validate(4).unwrap();
        assert_eq!(story.recipients.len(), 1, "duplicates collapse");
        assert!(request(vec!["nope".into()], "AAEC").validate(4).is_err());
        assert!(request(vec![id.clone()], "!!").validate(4).is_err());
        assert!(request(vec![], "AAEC").validate(4).is_err());
        assert!(request(vec![id; 5], "AAEC").validate(4).is_err());
    }
}
