//! Push notification settings: when to push (Signal's rules, each a value
//! here), how the push worker behaves, and the two providers. A provider
//! without a section is off: tokens of its kind are still stored, and the
//! pushes they would get are dropped and counted.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Apple Push Notification service: token-based auth (a `.p8` key, its id
/// and the team id) or certificate auth (a client certificate and its key),
/// exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsConfig {
    /// Gateway base URL: `https://api.push.apple.com` (production) or
    /// `https://api.sandbox.push.apple.com`; `http://` (HTTP/2 cleartext) for tests.
    #[serde(default = "ApnsConfig::default_base_url")]
    pub base_url: String,
    /// The app's bundle id (`apns-topic`).
    pub topic: String,
    /// Token auth: the `.p8` signing key (PKCS#8 PEM) from the Apple developer account.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Token auth: the key's id (JWT `kid`).
    #[serde(default)]
    pub key_id: Option<String>,
    /// Token auth: the developer team id (JWT `iss`).
    #[serde(default)]
    pub team_id: Option<String>,
    /// Certificate auth: the client certificate (PEM, the chain Apple issued).
    #[serde(default)]
    pub certificate_file: Option<PathBuf>,
    /// Certificate auth: the certificate's private key (PEM).
    #[serde(default)]
    pub certificate_key_file: Option<PathBuf>,
    /// Extra trusted CA certificates (PEM) for the gateway, beside the
    /// public web roots (a private relay, or a test stand-in).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl Default for ApnsConfig {
    /// Production APNs, no topic and no credentials yet (not valid as is).
    fn default() -> Self {
        Self {
            base_url: Self::default_base_url(),
            topic: String::new(),
            key_file: None,
            key_id: None,
            team_id: None,
            certificate_file: None,
            certificate_key_file: None,
            ca_file: None,
        }
    }
}

impl ApnsConfig {
    fn default_base_url() -> String {
        "https://api.push.apple.com".into()
    }

    /// Exactly one complete way to authenticate.
    fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        let token = [self.key_file.is_some(), self.key_id.is_some(), self.team_id.is_some()];
        let certificate = [self.certificate_file.is_some(), self.certificate_key_file.is_some()];
        let complete_token = token.iter().all(|set| *set);
        let complete_certificate = certificate.iter().all(|set| *set);
        let any_token = token.iter().any(|set| *set);
        let any_certificate = certificate.iter().any(|set| *set);
        let one_complete =
            (complete_token && !any_certificate) || (complete_certificate && !any_token);
        if !one_complete {
            return Err((
                "push.apns",
                "set key_file, key_id and team_id (token auth) or certificate_file and \
                 certificate_key_file (certificate auth), not both",
            ));
        }
        Ok(())
    }
}

/// Firebase Cloud Messaging, HTTP v1 API, with a service account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmConfig {
    /// API base URL: `https://fcm.googleapis.com`; `http://` for tests.
    #[serde(default = "FcmConfig::default_base_url")]
    pub base_url: String,
    /// The service account JSON (`project_id`, `client_email`, `private_key`,
    /// `token_uri`) downloaded from the Firebase console.
    pub service_account_file: PathBuf,
}

impl FcmConfig {
    fn default_base_url() -> String {
        "https://fcm.googleapis.com".into()
    }
}

/// Push settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// At most one alert push per device per window; later urgent envelopes
    /// in the window are coalesced (counted). A connect resets it.
    pub alert_coalesce_ms: u64,
    /// At most one background push (non-urgent envelope) per device per interval.
    pub background_interval_ms: u64,
    /// A session closing with envelopes queued gets an alert push this long
    /// after, unless the device reconnects first.
    pub after_close_delay_ms: u64,
    /// Slots of each shard's ring of jobs to the push worker; a full ring
    /// drops the push (counted), never the envelope.
    pub jobs_queue_len_max: usize,
    /// Most pushes in flight at once in the worker (HTTP/2 streams).
    pub inflight_max: usize,
    /// Retries of one push after a 429, a 5xx or a connection error.
    pub retries_max: u32,
    /// Wait before the first retry, doubled for each next one (a longer
    /// `Retry-After` from the provider wins).
    pub retry_backoff_ms: u64,
    /// Longest wait for one provider answer.
    pub request_timeout_ms: u64,
    /// A push challenge (rate limit or verification) must be answered within this.
    pub challenge_ttl_ms: u64,
    /// A verification session (`POST /v1/verification/session`) can be
    /// verified and used to register within this.
    pub verification_session_ttl_ms: u64,
    /// APNs; none: APNs pushes are dropped (counted).
    pub apns: Option<ApnsConfig>,
    /// FCM; none: FCM pushes are dropped (counted).
    pub fcm: Option<FcmConfig>,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            alert_coalesce_ms: 60_000,
            background_interval_ms: 20 * 60_000,
            after_close_delay_ms: 60_000,
            jobs_queue_len_max: 4096,
            inflight_max: 1000,
            retries_max: 3,
            retry_backoff_ms: 1000,
            request_timeout_ms: 10_000,
            challenge_ttl_ms: 300_000,
            verification_session_ttl_ms: 600_000,
            apns: None,
            fcm: None,
        }
    }
}

/// Longest retry backoff or delay accepted (an hour).
const DELAY_MS_MAX: u64 = 3_600_000;

impl PushConfig {
    /// Checks every value: the field at fault and why.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        let positive = [
            ("push.background_interval_ms", self.background_interval_ms),
            ("push.jobs_queue_len_max", self.jobs_queue_len_max as u64),
            ("push.inflight_max", self.inflight_max as u64),
            ("push.retry_backoff_ms", self.retry_backoff_ms),
            ("push.request_timeout_ms", self.request_timeout_ms),
            ("push.challenge_ttl_ms", self.challenge_ttl_ms),
            ("push.verification_session_ttl_ms", self.verification_session_ttl_ms),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err((field, "must be greater than 0"));
        }
        if self.retry_backoff_ms > DELAY_MS_MAX || self.request_timeout_ms > DELAY_MS_MAX {
            return Err((
                "push.retry_backoff_ms",
                "retry_backoff_ms and request_timeout_ms must be at most an hour",
            ));
        }
        if let Some(apns) = &self.apns {
            apns.validate()?;
        }
        if self.retries_max > 10 {
            return Err(("push.retries_max", "must be at most 10"));
        }
        let urls = [
            ("push.apns.base_url", self.apns.as_ref().map(|apns| apns.base_url.as_str())),
            ("push.fcm.base_url", self.fcm.as_ref().map(|fcm| fcm.base_url.as_str())),
        ];
        for (field, url) in urls {
            if let Some(url) = url {
                if !(url.starts_with("https://") || url.starts_with("http://"))
                    || url.ends_with('/')
                {
                    return Err((
                        field,
                        "must be an http:// or https:// URL without a trailing slash",
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_signals_rules_and_valid() {
        let push = PushConfig::default();
        assert_eq!((push.alert_coalesce_ms, push.after_close_delay_ms), (60_000, 60_000));
        assert_eq!(push.background_interval_ms, 1_200_000);
        assert_eq!(push.validate(), Ok(()));
    }

    #[test]
    fn bad_values_name_their_field() {
        let push = PushConfig { inflight_max: 0, ..PushConfig::default() };
        assert_eq!(push.validate().unwrap_err().0, "push.inflight_max");
        let fcm = FcmConfig { base_url: "ftp://x".into(), service_account_file: "sa.json".into() };
        let push = PushConfig { fcm: Some(fcm), ..PushConfig::default() };
        assert_eq!(push.validate().unwrap_err().0, "push.fcm.base_url");
        let push = PushConfig { retries_max: 11, ..PushConfig::default() };
        assert_eq!(push.validate().unwrap_err().0, "push.retries_max");
    }

    #[test]
    fn a_provider_section_reads_from_toml_with_a_default_url() {
        let text =
            "topic = \"org.example\"\nkey_file = \"k.p8\"\nkey_id = \"K\"\nteam_id = \"T\"\n";
        let apns: ApnsConfig = toml::from_str(text).unwrap();
        assert_eq!(apns.base_url, "https://api.push.apple.com");
        assert_eq!(apns.validate(), Ok(()));
        assert!(toml::from_str::<ApnsConfig>("key_id = \"x\"").is_err(), "the topic is required");
    }

    #[test]
    fn apns_takes_exactly_one_way_to_authenticate() {
        let token = ApnsConfig {
            topic: "t".into(),
            key_file: Some("k.p8".into()),
            key_id: Some("K".into()),
            team_id: Some("T".into()),
            ..ApnsConfig::default()
        };
        let certificate = ApnsConfig {
            topic: "t".into(),
            certificate_file: Some("c.pem".into()),
            certificate_key_file: Some("k.pem".into()),
            ..ApnsConfig::default()
        };
        assert_eq!(token.validate(), Ok(()));
        assert_eq!(certificate.validate(), Ok(()));
        let both = ApnsConfig { certificate_file: Some("c.pem".into()), ..token.clone() };
        let half = ApnsConfig { key_id: None, ..token };
        let neither = ApnsConfig { topic: "t".into(), ..ApnsConfig::default() };
        for bad in [both, half, neither] {
            assert_eq!(bad.validate().unwrap_err().0, "push.apns");
        }
    }
}
