//! FCM HTTP v1 with a service account: an RS256 JWT assertion (`iss` =
//! client email, `scope` = firebase.messaging, `aud` = token URI) is traded
//! at the token URI for an access token, which is cached until five minutes
//! before it expires and renewed at once when FCM answers 401.
//!
//! Request: `POST {base}/v1/projects/{project}/messages:send` with
//! `authorization: Bearer {access token}` and the body from
//! [`PushPayload::fcm_body`](crate::protocol::push::PushPayload::fcm_body).
//! Answers: 200 sent; 404 (or 400) with error code `UNREGISTERED` dead; 401
//! renew the token; 429 and 5xx retried.

use crate::config::FcmConfig;
use crate::push::client::{self, Answer, PushClient};
use crate::push::{retry_after_ms, PushJob, Verdict};
use bytes::Bytes;
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::Mutex;

/// OAuth scope for sending messages.
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// An access token is renewed this long before it expires.
const RENEW_EARLY_S: u64 = 300;

/// The parts of a service-account file used here.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceAccount {
    /// The Firebase project.
    pub project_id: String,
    /// The account's email (JWT `iss`).
    pub client_email: String,
    /// The RSA signing key, PKCS#8 PEM.
    pub private_key: String,
    /// Where assertions are traded for access tokens.
    pub token_uri: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

/// Builds FCM requests and keeps the access token.
pub struct Fcm {
    base_url: String,
    account: ServiceAccount,
    key: EncodingKey,
    /// The access token and when it must be renewed (unix seconds).
    access: Mutex<Option<(String, u64)>>,
}

impl Fcm {
    /// Reads the service account named in `config`.
    pub fn new(config: FcmConfig) -> Result<Self, String> {
        let path = config.service_account_file.display().to_string();
        let text = std::fs::read(&config.service_account_file)
            .map_err(|error| format!("cannot read FCM service account {path}: {error}"))?;
        let account: ServiceAccount = serde_json::from_slice(&text)
            .map_err(|error| format!("FCM service account {path} is not valid: {error}"))?;
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|error| format!("FCM service account {path}: private_key: {error}"))?;
        Ok(Self { base_url: config.base_url, account, key, access: Mutex::new(None) })
    }

    /// The cached access token, fetched (or renewed) when needed.
    pub async fn access_token(
        &self,
        http: &PushClient,
        now_s: u64,
        timeout: Duration,
    ) -> Result<String, String> {
        let mut access = self.access.lock().await;
        if let Some((token, renew_at_s)) = access.as_ref() {
            if now_s < *renew_at_s {
                return Ok(token.clone());
            }
        }
        let claims = serde_json::json!({"iss": self.account.client_email, "scope": SCOPE,
            "aud": self.account.token_uri, "iat": now_s, "exp": now_s + 3600});
        let assertion = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|error| format!("cannot sign the FCM assertion: {error}"))?;
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        let request = http::Request::post(&self.account.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form)))
            .map_err(|error| error.to_string())?;
        let answer = client::send(http, request, timeout).await?;
        if answer.status != 200 {
            return Err(format!("the FCM token endpoint answered {}", answer.status));
        }
        let token: TokenAnswer = serde_json::from_slice(&answer.body)
            .map_err(|error| format!("the FCM token endpoint's answer: {error}"))?;
        let renew_at_s = now_s + token.expires_in.saturating_sub(RENEW_EARLY_S).max(1);
        *access = Some((token.access_token.clone(), renew_at_s));
        Ok(token.access_token)
    }

    /// Forgets the access token (FCM refused it).
    pub async fn forget_access_token(&self) {
        *self.access.lock().await = None;
    }

    /// The request for `job` with `access_token`.
    pub fn request(
        &self,
        job: &PushJob,
        access_token: &str,
    ) -> Result<http::Request<Full<Bytes>>, String> {
        let uri =
            format!("{}/v1/projects/{}/messages:send", self.base_url, self.account.project_id);
        http::Request::post(uri)
            .header("authorization", format!("Bearer {access_token}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(job.payload.fcm_body(&job.token))))
            .map_err(|error| error.to_string())
    }
}

/// What an FCM answer means.
pub fn judge(answer: &Answer) -> Verdict {
    if answer.status == 200 {
        return Verdict::Sent;
    }
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    let unregistered = body["error"]["details"]
        .as_array()
        .is_some_and(|details| details.iter().any(|detail| detail["errorCode"] == "UNREGISTERED"));
    match answer.status {
        400 | 404 if unregistered => Verdict::Dead { invalidated_ms: None },
        401 => Verdict::Reauthenticate,
        429 | 500..=599 => Verdict::Retry { after_ms: retry_after_ms(&answer.headers) },
        status => Verdict::Failed(format!("FCM answered {status} {}", body["error"]["status"])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer { status, headers: http::HeaderMap::new(), body: body.as_bytes().to_vec() }
    }

    #[test]
    fn answers_are_judged_like_google_documents_them() {
        assert_eq!(judge(&answer(200, "{}")), Verdict::Sent);
        let gone = r#"{"error":{"code":404,"status":"NOT_FOUND","details":[
            {"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#;
        assert_eq!(judge(&answer(404, gone)), Verdict::Dead { invalidated_ms: None });
        assert_eq!(judge(&answer(401, "{}")), Verdict::Reauthenticate);
        assert_eq!(judge(&answer(503, "")), Verdict::Retry { after_ms: None });
        assert!(matches!(
            judge(&answer(400, r#"{"error":{"status":"INVALID_ARGUMENT"}}"#)),
            Verdict::Failed(_)
        ));
    }
}
