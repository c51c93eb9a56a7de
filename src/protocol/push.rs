//! Push payloads and the push-token routes' bodies.
//!
//! - `PUT /v1/accounts/apn` `{"apnRegistrationId"}` (hex, at most
//!   [`APN_TOKEN_LEN_MAX`] characters) and `PUT /v1/accounts/gcm`
//!   `{"gcmRegistrationId"}` (at most [`FCM_TOKEN_LEN_MAX`] characters of
//!   `[A-Za-z0-9_:.-]`, the alphabet FCM tokens are made of);
//! - [`PushPayload`]: the spec's `PushNotificationPayload`
//!   `{"type", "data": {"urgent"}}` every push carries, and the APNs and FCM
//!   bodies around it (a challenge's token beside it, under Signal's key).
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PushKind {
    /// New envelopes: connect and drain.
    Notification,
    /// A verification session's proof-of-device challenge.
    Challenge,
    /// A rate-limited device's challenge.
    RateLimitChallenge,
}

impl PushKind {
    /// Signal's key for this kind: the FCM data field that says what the
    /// push is for, and for a challenge also the top-level APNs field; a
    /// challenge's token is its value (Signal-Server's `FcmSender` and
    /// `APNSender`, which Signal's clients read).
    pub fn signal_key(self) -> &'static str {
        match self {
            PushKind::Notification => "newMessageAlert",
            PushKind::Challenge => "challenge",
            PushKind::RateLimitChallenge => "rateLimitChallenge",
        }
    }
}

/// The spec's `PushNotificationPayload`, and the challenge token a
/// challenge push carries beside it.
///
/// Invariant: `challenge` is `Some` exactly for the challenge kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushPayload {
    /// What the push is for.
    #[serde(rename = "type")]
    pub kind: PushKind,
    /// `{"urgent": bool}`.
    pub data: PushData,
    /// The challenge token, for the challenge kinds. Not part of the spec's
    /// payload: it travels under [`PushKind::signal_key`], where Signal's
    /// clients look for it.
    #[serde(skip)]
    pub challenge: Option<String>,
}

/// A payload's `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushData {
    /// An urgent push is sent at once with high priority (FCM HIGH); of the
    /// new-message pushes only an urgent one alerts the user.
    pub urgent: bool,
}

impl PushPayload {
    /// A push carrying a challenge `token`: urgent, the user is waiting
    /// (FCM HIGH), yet a silent background push on APNs (see
    /// [`PushPayload::is_message_alert`]).
    pub fn challenge(kind: PushKind, token: String) -> Self {
        assert!(kind != PushKind::Notification, "a challenge push is of a challenge kind");
        Self { kind, data: PushData { urgent: true }, challenge: Some(token) }
    }

    /// A new-messages push.
    pub fn notification(urgent: bool) -> Self {
        Self { kind: PushKind::Notification, data: PushData { urgent }, challenge: None }
    }

    /// True for an urgent new-message push, the one push shown to the user:
    /// an APNs `alert` at priority 10 with the `incoming-message` collapse id,
    /// so a later alert replaces it on the phone. Every other push, the
    /// challenges included, is a background push without a collapse id, so
    /// it never replaces an alert (Signal-Server's `APNSender`).
    pub fn is_message_alert(&self) -> bool {
        self.kind == PushKind::Notification && self.data.urgent
    }

    /// The APNs body: Signal's `aps` (an alert with `loc-key` `APN_Message`
    /// for a message alert, `content-available` otherwise), a challenge's
    /// token under its kind's key (`challenge` / `rateLimitChallenge`), and
    /// the spec's payload (`type`, `data`).
    pub fn apns_body(&self) -> Vec<u8> {
        let aps = if self.is_message_alert() {
            json!({"alert": {"loc-key": "APN_Message"}, "mutable-content": 1})
        } else {
            json!({"content-available": 1})
        };
        let mut body = json!({"aps": aps, "type": self.kind, "data": self.data});
        if let Some(token) = &self.challenge {
            body[self.kind.signal_key()] = json!(token);
        }
        serde_json::to_vec(&body).expect("a push body encodes")
    }

    /// The FCM HTTP v1 body for `token`: a data-only message holding the
    /// kind's Signal key (`newMessageAlert` empty, a challenge's token under
    /// `challenge` / `rateLimitChallenge`) and the spec's payload fields as
    /// strings; priority HIGH only when urgent, a 28-day time to live.
    pub fn fcm_body(&self, token: &str) -> Vec<u8> {
        let kind = serde_json::to_value(self.kind).expect("a kind encodes");
        let mut data: Value = json!({
            "type": kind,
            "data": serde_json::to_string(&self.data).expect("data encodes"),
        });
        data[self.kind.signal_key()] = json!(self.challenge.as_deref().unwrap_or(""));
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

    #[test]
    fn challenges_are_silent_background_pushes_carrying_the_token_under_signals_key() {
        for (kind, key) in [
            (PushKind::Challenge, "challenge"),
            (PushKind::RateLimitChallenge, "rateLimitChallenge"),
        ] {
            let payload = PushPayload::challenge(kind, "c0ffee".into());
            assert!(!payload.is_message_alert(), "{key}");
            let apns: Value = serde_json::from_slice(&payload.apns_body()).unwrap();
            assert_eq!(
                apns,
                json!({"aps": {"content-available": 1}, key: "c0ffee",
                       "type": key, "data": {"urgent": true}})
            );
            let fcm: Value = serde_json::from_slice(&payload.fcm_body("T")).unwrap();
            assert_eq!(
                fcm,
                json!({"message": {"token": "T",
                    "data": {key: "c0ffee", "type": key, "data": "{\"urgent\":true}"},
                    "android": {"priority": "HIGH", "ttl": "2419200s"}}})
            );
            // The spec's payload alone: the token is not part of it.
            let spec = serde_json::to_value(&payload).unwrap();
            assert_eq!(spec, json!({"type": key, "data": {"urgent": true}}));
        }
        assert!(PushPayload::notification(true).is_message_alert());
        assert!(!PushPayload::notification(false).is_message_alert());
    }
}
