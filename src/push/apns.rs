//! APNs over HTTP/2 with token-based auth: an ES256 JWT (`kid` = key id,
//! `iss` = team id, `iat`) signed with the `.p8` key and renewed every 50
//! minutes (Apple refuses tokens older than an hour and throttles renewing
//! more often than every 20); or with certificate auth: the TLS client
//! certificate Apple issued, on a client of APNs's own.
//!
//! Request: `POST {base}/3/device/{token}` with `apns-topic`,
//! `apns-push-type` and `apns-priority` (`alert` and 10 for an urgent
//! new-message alert, `background` and 5 for every other push, challenges
//! included), `apns-expiration` (30 days after queueing) and, for message
//! alerts only, `apns-collapse-id: incoming-message`; the body from
//! [`PushPayload::apns_body`](crate::protocol::push::PushPayload::apns_body).
//! Answers: 200 sent; 410 `Unregistered` (with the invalidation time) or
//! 400 `BadDeviceToken` / 403 `ExpiredToken`... dead; 429 and 5xx retried.

use crate::config::ApnsConfig;
use crate::push::client::{self, Answer, PushClient};
use crate::push::{retry_after_ms, PushJob, Verdict};
use bytes::Bytes;
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::sync::Mutex;

/// A signing token is renewed after this long (Apple's limit is an hour).
const JWT_RENEW_S: u64 = 50 * 60;
/// APNs keeps an undeliverable push this long.
const EXPIRATION_S: u64 = 30 * 24 * 3600;
/// Reasons meaning the device token is dead.
const DEAD_REASONS: [&str; 3] = ["Unregistered", "BadDeviceToken", "ExpiredToken"];

/// How APNs knows us.
enum Auth {
    /// A JWT signed with the `.p8` key, sent as `authorization: bearer`.
    Token {
        key: EncodingKey,
        key_id: String,
        team_id: String,
        /// The current JWT and when it was made (unix seconds).
        jwt: Mutex<Option<(String, u64)>>,
    },
    /// The TLS client certificate of [`Apns::client`]: no header.
    Certificate,
}

/// Builds and signs APNs requests.
pub struct Apns {
    config: ApnsConfig,
    auth: Auth,
    /// Its own client when it needs its own TLS settings (a client
    /// certificate, extra roots); else the worker's shared client is used.
    client: Option<PushClient>,
}

impl Apns {
    /// Reads the key or certificate named in `config`; an error names the
    /// file and the reason.
    pub fn new(config: ApnsConfig) -> Result<Self, String> {
        let extra_roots = match &config.ca_file {
            Some(path) => crate::tls::read_certificates(path)
                .map_err(|error| format!("APNs ca_file: {error}"))?,
            None => Vec::new(),
        };
        let (auth, client_auth) = match (&config.certificate_file, &config.certificate_key_file) {
            (Some(certificate), Some(key)) => {
                let chain = crate::tls::read_certificates(certificate)
                    .map_err(|error| format!("APNs certificate_file: {error}"))?;
                let key = crate::tls::read_private_key(key)
                    .map_err(|error| format!("APNs certificate_key_file: {error}"))?;
                (Auth::Certificate, Some((chain, key)))
            }
            _ => (token_auth(&config)?, None),
        };
        let client = if client_auth.is_some() || !extra_roots.is_empty() {
            let tls = client::tls_config(extra_roots, client_auth)
                .map_err(|error| format!("APNs TLS: {error}"))?;
            Some(client::new_client_with(tls))
        } else {
            None
        };
        Ok(Self { config, auth, client })
    }

    /// The client to send through, if APNs needs its own.
    pub fn client(&self) -> Option<&PushClient> {
        self.client.as_ref()
    }

    /// The JWT to send now (renewed when older than 50 minutes); `None`
    /// with certificate auth.
    fn jwt(&self, now_s: u64) -> Result<Option<String>, String> {
        let Auth::Token { key, key_id, team_id, jwt } = &self.auth else { return Ok(None) };
        let mut cached = jwt.lock().expect("the JWT lock is never poisoned");
        if let Some((made, made_s)) = cached.as_ref() {
            if now_s.saturating_sub(*made_s) < JWT_RENEW_S {
                return Ok(Some(made.clone()));
            }
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key_id.clone());
        let claims = serde_json::json!({"iss": team_id, "iat": now_s});
        let made = jsonwebtoken::encode(&header, &claims, key)
            .map_err(|error| format!("cannot sign the APNs token: {error}"))?;
        *cached = Some((made.clone(), now_s));
        Ok(Some(made))
    }

    /// The request for `job`.
    pub fn request(&self, job: &PushJob, now_s: u64) -> Result<http::Request<Full<Bytes>>, String> {
        // Signal-Server's APNSender: only a message alert alerts and collapses
        // (a challenge collapsed under `incoming-message` would replace the
        // message alert on the phone); Apple wants background pushes at 5.
        let alert = job.payload.is_message_alert();
        let uri = format!("{}/3/device/{}", self.config.base_url, job.token);
        let expiration_s = job.queued_ms / 1000 + EXPIRATION_S;
        let mut builder = http::Request::post(uri)
            .header("apns-topic", &self.config.topic)
            .header("apns-push-type", if alert { "alert" } else { "background" })
            .header("apns-priority", if alert { "10" } else { "5" })
            .header("apns-expiration", expiration_s.to_string())
            .header("content-type", "application/json");
        if alert {
            builder = builder.header("apns-collapse-id", "incoming-message");
        }
        if let Some(jwt) = self.jwt(now_s)? {
            builder = builder.header("authorization", format!("bearer {jwt}"));
        }
        builder
            .body(Full::new(Bytes::from(job.payload.apns_body())))
            .map_err(|error| error.to_string())
    }
}

/// Token auth from `config`: the `.p8` key, its id and the team id.
fn token_auth(config: &ApnsConfig) -> Result<Auth, String> {
    let (Some(path), Some(key_id), Some(team_id)) =
        (&config.key_file, &config.key_id, &config.team_id)
    else {
        return Err("APNs needs key_file, key_id and team_id, or a certificate".into());
    };
    let shown = path.display();
    let pem =
        std::fs::read(path).map_err(|error| format!("cannot read APNs key {shown}: {error}"))?;
    let key = EncodingKey::from_ec_pem(&pem)
        .map_err(|error| format!("APNs key {shown} is not an EC PKCS#8 PEM key: {error}"))?;
    Ok(Auth::Token { key, key_id: key_id.clone(), team_id: team_id.clone(), jwt: Mutex::new(None) })
}

/// What an APNs answer means.
pub fn judge(answer: &Answer) -> Verdict {
    if answer.status == 200 {
        return Verdict::Sent;
    }
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    let reason = body["reason"].as_str().unwrap_or("").to_string();
    if answer.status == 410 || DEAD_REASONS.contains(&reason.as_str()) {
        return Verdict::Dead { invalidated_ms: body["timestamp"].as_u64() };
    }
    if answer.status == 429 || answer.status >= 500 {
        return Verdict::Retry { after_ms: retry_after_ms(&answer.headers) };
    }
    Verdict::Failed(format!("APNs answered {} {reason}", answer.status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::push::{PushKind, PushPayload};
    use crate::store::accounts::PushProvider;

    fn answer(status: u16, body: &str) -> Answer {
        Answer { status, headers: http::HeaderMap::new(), body: body.as_bytes().to_vec() }
    }

    #[test]
    fn answers_are_judged_like_apple_documents_them() {
        assert_eq!(judge(&answer(200, "")), Verdict::Sent);
        let gone = answer(410, r#"{"reason":"Unregistered","timestamp":1700000000000}"#);
        assert_eq!(judge(&gone), Verdict::Dead { invalidated_ms: Some(1_700_000_000_000) });
        let bad = answer(400, r#"{"reason":"BadDeviceToken"}"#);
        assert_eq!(judge(&bad), Verdict::Dead { invalidated_ms: None });
        assert_eq!(judge(&answer(429, "")), Verdict::Retry { after_ms: None });
        assert_eq!(judge(&answer(503, "{}")), Verdict::Retry { after_ms: None });
        assert!(matches!(judge(&answer(400, r#"{"reason":"BadTopic"}"#)), Verdict::Failed(_)));
        let mut busy = answer(429, "");
        busy.headers.insert("retry-after", "3".parse().unwrap());
        assert_eq!(judge(&busy), Verdict::Retry { after_ms: Some(3000) });
    }

    /// The (push type, priority, collapse id) headers of a request for `payload`.
    fn delivery_headers(payload: PushPayload) -> (String, String, Option<String>) {
        let config = ApnsConfig {
            base_url: "http://127.0.0.1:1".into(),
            topic: "org.example.app".into(),
            key_file: Some(
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apns-test-auth-key.p8").into(),
            ),
            key_id: Some("KEYID12345".into()),
            team_id: Some("TEAMID1234".into()),
            ..ApnsConfig::default()
        };
        let apns = Apns::new(config).unwrap();
        let job = PushJob::new(0, None, PushProvider::Apn, "ab".into(), payload, 0);
        let request = apns.request(&job, 1_700_000_000).unwrap();
        let header = |name: &str| request.headers().get(name).map(|v| v.to_str().unwrap().into());
        (
            header("apns-push-type").unwrap(),
            header("apns-priority").unwrap(),
            header("apns-collapse-id"),
        )
    }

    #[test]
    fn only_message_alerts_alert_and_carry_the_collapse_id() {
        let alert = ("alert".into(), "10".into(), Some("incoming-message".into()));
        let background = ("background".into(), "5".into(), None);
        assert_eq!(delivery_headers(PushPayload::notification(true)), alert);
        assert_eq!(delivery_headers(PushPayload::notification(false)), background);
        for kind in [PushKind::Challenge, PushKind::RateLimitChallenge] {
            let challenge = PushPayload::challenge(kind, "c0ffee".into());
            assert_eq!(delivery_headers(challenge), background);
        }
    }
}
