//! Push challenges: a random single-use token sent to a device by push and
//! handed back by the client, proving it holds a real, registered device.
//!
//! Pure: the caller passes `now_ms`. Invariants: one live challenge per key
//! (a new one replaces the old); a token is accepted once, within
//! `ttl_ms`, for the key it was issued to, and compared in constant time;
//! at most `keys_max` challenges are held (the oldest is dropped first).

use std::collections::HashMap;
use std::hash::Hash;
use subtle::ConstantTimeEq;

/// Why a challenge answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeRefused {
    /// No challenge was issued, or the token is not the one issued.
    #[error("wrong or unknown push challenge")]
    Wrong,
    /// The challenge is older than its time to live.
    #[error("the push challenge expired; request a new one")]
    Expired,
}

/// Live challenges by key.
#[derive(Debug)]
pub struct Challenges<K> {
    ttl_ms: u64,
    keys_max: usize,
    /// Per key: the token and when it was issued.
    issued: HashMap<K, (String, u64)>,
}

impl<K: Hash + Eq + Clone> Challenges<K> {
    /// No challenges; each will live `ttl_ms`.
    pub fn new(ttl_ms: u64, keys_max: usize) -> Self {
        Self { ttl_ms, keys_max, issued: HashMap::new() }
    }

    /// Issues a fresh token for `key` (replacing any earlier one).
    pub fn issue(&mut self, key: K, now_ms: u64) -> String {
        if self.issued.len() >= self.keys_max && !self.issued.contains_key(&key) {
            let ttl_ms = self.ttl_ms;
            self.issued.retain(|_, (_, issued_ms)| now_ms.saturating_sub(*issued_ms) < ttl_ms);
            if self.issued.len() >= self.keys_max {
                let oldest =
                    self.issued.iter().min_by_key(|(_, (_, ms))| *ms).map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    self.issued.remove(&oldest);
                }
            }
        }
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS random source works");
        let token: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        self.issued.insert(key, (token.clone(), now_ms));
        token
    }

    /// Accepts `token` for `key` once, if it is the live one.
    pub fn answer(&mut self, key: &K, token: &str, now_ms: u64) -> Result<(), ChallengeRefused> {
        let Some((issued, issued_ms)) = self.issued.get(key) else {
            return Err(ChallengeRefused::Wrong);
        };
        if !bool::from(issued.as_bytes().ct_eq(token.as_bytes())) {
            return Err(ChallengeRefused::Wrong);
        }
        let expired = now_ms.saturating_sub(*issued_ms) >= self.ttl_ms;
        self.issued.remove(key);
        if expired {
            return Err(ChallengeRefused::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_accepted_once_for_its_key() {
        let mut challenges = Challenges::new(1000, 10);
        let token = challenges.issue(1u8, 0);
        assert_eq!(token.len(), 32);
        assert_eq!(challenges.answer(&2, &token, 1), Err(ChallengeRefused::Wrong));
        assert_eq!(challenges.answer(&1, "nope", 1), Err(ChallengeRefused::Wrong));
        assert_eq!(challenges.answer(&1, &token, 1), Ok(()));
        assert_eq!(challenges.answer(&1, &token, 2), Err(ChallengeRefused::Wrong), "single use");
    }

    #[test]
    fn tokens_expire_and_a_new_one_replaces_the_old() {
        let mut challenges = Challenges::new(1000, 10);
        let old = challenges.issue(1u8, 0);
        let new = challenges.issue(1u8, 10);
        assert_ne!(old, new);
        assert_eq!(challenges.answer(&1, &old, 20), Err(ChallengeRefused::Wrong));
        assert_eq!(challenges.answer(&1, &new, 1010), Err(ChallengeRefused::Expired));
    }

    #[test]
    fn the_number_held_is_bounded() {
        let mut challenges = Challenges::new(1000, 2);
        let first = challenges.issue(1u8, 0);
        challenges.issue(2u8, 1);
        let third = challenges.issue(3u8, 2);
        assert_eq!(
            challenges.answer(&1, &first, 3),
            Err(ChallengeRefused::Wrong),
            "oldest dropped"
        );
        assert_eq!(challenges.answer(&3, &third, 3), Ok(()));
    }
}
