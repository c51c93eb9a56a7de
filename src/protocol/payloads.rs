//! JSON bodies of the REST routes: what clients send and what we answer.
//!
//! Invariants: [`parse_json`] turns any byte string into either a typed value
//! or a [`PayloadError`] whose text is safe to show the client; validation of
//! ranges lives next to each type (`validate`), so handlers receive only
//! values that are in range.

use crate::protocol::base64;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A body that is not what the route expects (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PayloadError(pub String);

/// Parses a JSON body into `T` with simd-json (the buffer is parsed in place).
pub fn parse_json<T: DeserializeOwned>(body: &mut [u8]) -> Result<T, PayloadError> {
    if body.is_empty() {
        return Err(PayloadError("request body is empty; JSON expected".into()));
    }
    crate::protocol::json_in::from_slice(body)
        .map_err(|error| PayloadError(format!("invalid JSON: {error}")))
}

/// Encodes a response body.
pub fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Our response types hold only strings, numbers and lists: cannot fail.
    serde_json::to_vec(value).expect("response encodes")
}

/// The error body of every non-2xx answer: `{"code", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// HTTP status.
    pub code: u16,
    /// Human-readable reason.
    pub message: String,
}

/// Largest registration id a device may hold (14 bits, as Signal's clients).
pub const REGISTRATION_ID_MAX: u32 = 0x3FFF;
/// Longest device password accepted, in bytes.
pub const PASSWORD_BYTES_MAX: usize = 512;
/// Longest device name accepted, in bytes.
pub const NAME_BYTES_MAX: usize = 256;
/// Length of an unidentified-access key, in bytes.
pub const ACCESS_KEY_BYTES: usize = 16;

/// `PUT /v1/accounts` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationRequest {
    /// The primary device's secret.
    pub password: String,
    /// The primary device's registration id.
    pub registration_id: u32,
    /// Base64 of the 16-byte key that lets senders send sealed-sender messages.
    #[serde(default)]
    pub unidentified_access_key: Option<String>,
    /// Anyone may send sealed-sender messages without a key.
    #[serde(default)]
    pub unrestricted_unidentified_access: bool,
    /// The device's (encrypted) name.
    #[serde(default)]
    pub name: Option<String>,
    /// A verified verification session, in place of the registration token.
    #[serde(default)]
    pub session_id: Option<String>,
}

/// A [`RegistrationRequest`] whose fields are in range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The primary device's secret.
    pub password: String,
    /// The primary device's registration id.
    pub registration_id: u32,
    /// The decoded access key.
    pub unidentified_access_key: Option<[u8; ACCESS_KEY_BYTES]>,
    /// Anyone may send sealed-sender messages without a key.
    pub unrestricted_unidentified_access: bool,
    /// The device's name.
    pub name: Option<String>,
}

impl RegistrationRequest {
    /// Checks ranges and decodes the access key.
    pub fn validate(self) -> Result<Registration, PayloadError> {
        if self.password.is_empty() || self.password.len() > PASSWORD_BYTES_MAX {
            return Err(PayloadError(format!("password must be 1 to {PASSWORD_BYTES_MAX} bytes")));
        }
        if self.registration_id == 0 || self.registration_id > REGISTRATION_ID_MAX {
            return Err(PayloadError(format!("registrationId must be 1 to {REGISTRATION_ID_MAX}")));
        }
        if self.name.as_ref().is_some_and(|name| name.len() > NAME_BYTES_MAX) {
            return Err(PayloadError(format!("name must be at most {NAME_BYTES_MAX} bytes")));
        }
        let unidentified_access_key = match self.unidentified_access_key {
            None => None,
            Some(text) => {
                let bytes = base64::decode(text.as_bytes())
                    .map_err(|_| PayloadError("unidentifiedAccessKey is not Base64".into()))?;
                let key: [u8; ACCESS_KEY_BYTES] = bytes.try_into().map_err(|_| {
                    PayloadError(format!("unidentifiedAccessKey must be {ACCESS_KEY_BYTES} bytes"))
                })?;
                Some(key)
            }
        };
        Ok(Registration {
            password: self.password,
            registration_id: self.registration_id,
            unidentified_access_key,
            unrestricted_unidentified_access: self.unrestricted_unidentified_access,
            name: self.name,
        })
    }
}

/// `PUT /v1/devices/link` body: a new device joins the account whose
/// primary issued `verificationCode`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkDeviceRequest {
    /// The code from `GET /v1/devices/provisioning/code`.
    pub verification_code: String,
    /// The new device's secret.
    pub password: String,
    /// The new device's registration id.
    pub registration_id: u32,
    /// The new device's (encrypted) name.
    #[serde(default)]
    pub name: Option<String>,
}

impl LinkDeviceRequest {
    /// Checks ranges; returns the code and the device's credentials.
    pub fn validate(self) -> Result<(String, Registration), PayloadError> {
        let registration = RegistrationRequest {
            password: self.password,
            registration_id: self.registration_id,
            unidentified_access_key: None,
            unrestricted_unidentified_access: false,
            name: self.name,
            session_id: None,
        }
        .validate()?;
        if self.verification_code.is_empty() || self.verification_code.len() > 128 {
            return Err(PayloadError("verificationCode must be 1 to 128 bytes".into()));
        }
        Ok((self.verification_code, registration))
    }
}

/// `GET /v1/devices/provisioning/code` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationCode {
    /// Single-use code a new device presents to `PUT /v1/devices/link`.
    pub verification_code: String,
}

/// `PUT /v1/accounts` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationResponse {
    /// The new account's UUID.
    pub uuid: String,
    /// Always 1: the primary device.
    pub device_id: u32,
}

/// One entry of `GET /v1/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    /// Device id, 1 for the primary.
    pub id: u32,
    /// The device's name, if it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Registration time, ms since the epoch.
    pub created: u64,
    /// Last authentication, ms since the epoch (day precision in Signal; exact here).
    pub last_seen: u64,
}

/// `GET /v1/devices` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfoList {
    /// Every device of the caller's account.
    pub devices: Vec<DeviceInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Registration, PayloadError> {
        parse_json::<RegistrationRequest>(&mut text.as_bytes().to_vec())?.validate()
    }

    #[test]
    fn minimal_registration_parses() {
        let registration = parse(r#"{"password":"pw","registrationId":42}"#).unwrap();
        assert_eq!(registration.registration_id, 42);
        assert_eq!(registration.unidentified_access_key, None);
    }

    #[test]
    fn access_key_must_be_16_bytes() {
        let key = base64::encode(&[1u8; 16]);
        let ok = parse(&format!(
            r#"{{"password":"pw","registrationId":1,"unidentifiedAccessKey":"{key}"}}"#
        ))
        .unwrap();
        assert_eq!(ok.unidentified_access_key, Some([1u8; 16]));
        let short = base64::encode(&[1u8; 15]);
        let error = parse(&format!(
            r#"{{"password":"pw","registrationId":1,"unidentifiedAccessKey":"{short}"}}"#
        ))
        .unwrap_err();
        assert!(error.0.contains("16 bytes"));
    }

    #[test]
    fn hostile_registrations_are_refused() {
        for text in [
            "",
            "null",
            "[]",
            "{",
            r#"{"password":"pw"}"#,
            r#"{"password":"","registrationId":1}"#,
            r#"{"password":"pw","registrationId":0}"#,
            r#"{"password":"pw","registrationId":99999}"#,
            r#"{"password":"pw","registrationId":-1}"#,
            r#"{"password":7,"registrationId":1}"#,
            r#"{"password":"pw","registrationId":1,"unidentifiedAccessKey":"!!"}"#,
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
        let long = "x".repeat(PASSWORD_BYTES_MAX + 1);
        assert!(parse(&format!(r#"{{"password":"{long}","registrationId":1}}"#)).is_err());
    }
}
