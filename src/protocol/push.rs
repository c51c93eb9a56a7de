//! Push payloads and the push-token routes' bodies.
//!
//! - `PUT /v1/accounts/apn` `{"apnRegistrationId"}` (hex, at most
//!   [`APN_TOKEN_LEN_MAX`] characters) and `PUT /v1/accounts/gcm`
//!   `{"gcmRegistrationId"}` (at most [`FCM_TOKEN_LEN_MAX`] characters of
//!   `[A-Za-z0-9_:.-]`, the alphabet FCM tokens are made of);
//! - [`PushPayload`]: the spec's `PushNotificationPayload`
//!   `{"type", "data": {"urgent"}}` every push carries, and the APNs and FCM
//!   bodies around it.
//!
//! Invariant: a validated token is non-empty, bounded and of its alphabet,
//! so it is safe in a URL path (APNs) and a JSON string (FCM).

use crate::protocol::payloads::PayloadError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Longest APNs device token accepted, in hex characters (tokens are 32
/// bytes today; Apple reserves the right to lengthen them up to 100 bytes).
pub const APN_TOKEN_LEN_MAX: usize = 200;
/// Longest FCM registration token accepted, in characters.
pub const FCM_TOKEN_LEN_MAX: usize = 4096;

/// `PUT /v1/accounts/apn` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApnRegistration {
    /// The device token, hex.
    pub apn_registration_id: String,
    /// A VoIP token (Signal's clients send one); accepted and not used.
    #[serde(default)]
    pub voip_registration_id: Option<String>,
}

/// `PUT /v1/challenge` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeAnswer {
    /// Only `rateLimitPushChallenge` is supported.
    #[serde(rename = "type")]
    pub kind: String,
    /// The token the push carried.
    pub challenge: String,
}

/// `POST /v1/verification/session` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerificationSessionRequest {
    /// Where to push the challenge.
    pub push_token: String,
    /// `apn` or `fcm`.
    pub push_token_type: String,
}

/// `PATCH /v1/verification/session/{id}` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerificationSessionUpdate {
    /// The token the challenge push carried.
    pub push_challenge: String,
}

/// A verification session's state, answered by both session routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationSessionState {
    /// The session id (give it to `PUT /v1/accounts` as `sessionId`).
    pub id: String,
    /// What the client still has to provide: `["pushChallenge"]` until verified.
    pub requested_information: Vec<&'static str>,
    /// True once the push challenge was answered.
    pub verified: bool,
}

impl VerificationSessionState {
    /// The state of session `id`.
    pub fn new(id: String, verified: bool) -> Self {
        let requested_information = if verified { vec![] } else { vec!["pushChallenge"] };
        Self { id, requested_information, verified }
    }
}

/// `PUT /v1/accounts/gcm` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcmRegistration {
    /// The FCM registration token.
    pub gcm_registration_id: String,
}

impl ApnRegistration {
    /// The token, if it is 1 to [`APN_TOKEN_LEN_MAX`] hex characters.
    pub fn validate(self) -> Result<String, PayloadError> {
        let token = self.apn_registration_id;
        if token.is_empty() || token.len() > APN_TOKEN_LEN_MAX {
            return Err(PayloadError(format!(
                "apnRegistrationId must be 1 to {APN_TOKEN_LEN_MAX} hex characters"
            )));
        }
        if !token.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(PayloadError("apnRegistrationId must be hex".into()));
        }
        Ok(token)
    }
}

impl GcmRegistration {
    /// The token, if it is 1 to [`FCM_TOKEN_LEN_MAX`] characters of `[A-Za-z0-9_:.-]`.
    pub fn validate(self) -> Result<String, PayloadError> {
        let token = self.gcm_registration_id;
        let allowed = |byte: u8| byte.is_ascii_alphanumeric() || b"_:.-".contains(&byte);
        if token.is_empty() || token.len() > FCM_TOKEN_LEN_MAX || !token.bytes().all(allowed) {
            return Err(PayloadError(format!(
                "gcmRegistrationId must be 1 to {FCM_TOKEN_LEN_MAX} characters of [A-Za-z0-9_:.-]"
            )));
        }
        Ok(token)
    }
}

/// What a push is for (the payload's `type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PushKind {
    /// New envelopes: connect and drain.
    Notification,
    /// A verification session's proof-of-device challenge.
    Challenge,
    /// A rate-limited device's challenge.
    RateLimitChallenge,
}

/// The spec's `PushNotificationPayload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushPayload {
    /// What the push is for.
    #[serde(rename = "type")]
    pub kind: PushKind,
    /// `{"urgent": bool}`, plus `challenge` for the challenge kinds.
    pub data: PushData,
}

/// A payload's `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushData {
    /// An urgent push wakes the user (alert); a non-urgent one only the app.
    pub urgent: bool,
    /// The challenge token, for the challenge kinds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
}

impl PushPayload {
    /// A push carrying a challenge `token` (urgent: the user is waiting).
    pub fn challenge(kind: PushKind, token: String) -> Self {
        Self { kind, data: PushData { urgent: true, challenge: Some(token) } }
    }

    /// A new-messages push.
    pub fn notification(urgent: bool) -> Self {
        Self { kind: PushKind::Notification, data: PushData { urgent, challenge: None } }
    }

    /// The APNs body: Signal's `aps` (an alert with `loc-key` `APN_Message`
    /// when urgent, `content-available` otherwise) plus `type` and `data`.
    pub fn apns_body(&self) -> Vec<u8> {
        let aps = if self.data.urgent {
            json!({"alert": {"loc-key": "APN_Message"}, "mutable-content": 1})
        } else {
            json!({"content-available": 1})
        };
        let body = json!({"aps": aps, "type": self.kind, "data": self.data});
        serde_json::to_vec(&body).expect("a push body encodes")
    }

    /// The FCM HTTP v1 body for `token`: a data-only message holding
    /// `newMessageAlert` and this payload's fields as strings, priority HIGH
    /// only when urgent, a 28-day time to live.
    pub fn fcm_body(&self, token: &str) -> Vec<u8> {
        let kind = serde_json::to_value(&self.kind).expect("a kind encodes");
        let data: Value = json!({
            "newMessageAlert": "",
            "type": kind,
            "data": serde_json::to_string(&self.data).expect("data encodes"),
        });
        let priority = if self.data.urgent { "HIGH" } else { "NORMAL" };
        let body = json!({"message": {"token": token, "data": data,
            "android": {"priority": priority, "ttl": "2419200s"}}});
        serde_json::to_vec(&body).expect("a push body encodes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apn_tokens_are_bounded_hex() {
        let ok = ApnRegistration { apn_registration_id: "ab12".into(), voip_registration_id: None };
        assert_eq!(ok.validate().unwrap(), "ab12");
        for bad in [String::new(), "xyz".into(), "a".repeat(APN_TOKEN_LEN_MAX + 1), "ab 1".into()] {
            let request = ApnRegistration { apn_registration_id: bad, voip_registration_id: None };
            assert!(request.validate().is_err());
        }
    }

    #[test]
    fn fcm_tokens_are_bounded_and_of_their_alphabet() {
        let token = "dGVzdA:APA91b-x_y.z".to_string();
        let ok = GcmRegistration { gcm_registration_id: token.clone() };
        assert_eq!(ok.validate().unwrap(), token);
        for bad in [String::new(), "a\"b".into(), "a/b".into(), "a".repeat(FCM_TOKEN_LEN_MAX + 1)] {
            assert!(GcmRegistration { gcm_registration_id: bad }.validate().is_err());
        }
    }

    #[test]
    fn apns_bodies_follow_signal() {
        let urgent: Value =
            serde_json::from_slice(&PushPayload::notification(true).apns_body()).unwrap();
        assert_eq!(
            urgent,
            json!({"aps": {"alert": {"loc-key": "APN_Message"}, "mutable-content": 1},
                   "type": "notification", "data": {"urgent": true}})
        );
        let quiet: Value =
            serde_json::from_slice(&PushPayload::notification(false).apns_body()).unwrap();
        assert_eq!(
            quiet,
            json!({"aps": {"content-available": 1}, "type": "notification", "data": {"urgent": false}})
        );
    }

    #[test]
    fn fcm_bodies_are_data_only_with_string_fields() {
        let body: Value =
            serde_json::from_slice(&PushPayload::notification(true).fcm_body("T")).unwrap();
        assert_eq!(
            body,
            json!({"message": {"token": "T",
                "data": {"newMessageAlert": "", "type": "notification", "data": "{\"urgent\":true}"},
                "android": {"priority": "HIGH", "ttl": "2419200s"}}})
        );
        let body: Value =
            serde_json::from_slice(&PushPayload::notification(false).fcm_body("T")).unwrap();
        assert_eq!(body["message"]["android"]["priority"], "NORMAL");
    }
}
