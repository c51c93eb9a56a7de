//! Verification sessions: proving, before an account exists, that the
//! registering client holds a real device. The session sends a `challenge`
//! push to the token the client names; the client hands the token back;
//! the verified session then stands in for the registration token in
//! `PUT /v1/accounts`, once.
//!
//! Pure: the caller passes `now_ms`. Invariants: a session lives
//! `session_ttl_ms` from its creation, its challenge can be answered within
//! `challenge_ttl_ms`, a verified session is consumed by one registration;
//! at most `sessions_max` sessions are held (expired ones are swept first,
//! then new sessions are refused).

use crate::push::challenge::ChallengeRefused;
use std::collections::HashMap;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// Why a session step was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyRefused {
    /// No such session (never created, expired, or already used).
    #[error("no such verification session")]
    NoSuchSession,
    /// The challenge answer was wrong or late.
    #[error(transparent)]
    Challenge(#[from] ChallengeRefused),
    /// The session's challenge has not been answered.
    #[error("the verification session is not verified")]
    NotVerified,
    /// Too many sessions are open; the client retries later.
    #[error("too many verification sessions; retry later")]
    Full,
}

#[derive(Debug)]
struct Session {
    challenge: String,
    created_ms: u64,
    verified: bool,
}

/// The sessions one shard owns.
#[derive(Debug)]
pub struct VerificationSessions {
    session_ttl_ms: u64,
    challenge_ttl_ms: u64,
    sessions_max: usize,
    sessions: HashMap<Uuid, Session>,
}

impl VerificationSessions {
    /// No sessions yet.
    pub fn new(session_ttl_ms: u64, challenge_ttl_ms: u64, sessions_max: usize) -> Self {
        Self { session_ttl_ms, challenge_ttl_ms, sessions_max, sessions: HashMap::new() }
    }

    /// Opens session `id`; the challenge token to push.
    pub fn create(&mut self, id: Uuid, now_ms: u64) -> Result<String, VerifyRefused> {
        if self.sessions.len() >= self.sessions_max {
            let ttl_ms = self.session_ttl_ms;
            self.sessions.retain(|_, session| now_ms.saturating_sub(session.created_ms) < ttl_ms);
            if self.sessions.len() >= self.sessions_max {
                return Err(VerifyRefused::Full);
            }
        }
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS random source works");
        let challenge: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        let session = Session { challenge: challenge.clone(), created_ms: now_ms, verified: false };
        self.sessions.insert(id, session);
        Ok(challenge)
    }

    /// Answers session `id`'s challenge.
    pub fn answer(&mut self, id: &Uuid, challenge: &str, now_ms: u64) -> Result<(), VerifyRefused> {
        let challenge_ttl_ms = self.challenge_ttl_ms;
        let session = self.live(id, now_ms)?;
        if !bool::from(session.challenge.as_bytes().ct_eq(challenge.as_bytes())) {
            return Err(ChallengeRefused::Wrong.into());
        }
        if now_ms.saturating_sub(session.created_ms) >= challenge_ttl_ms {
            return Err(ChallengeRefused::Expired.into());
        }
        session.verified = true;
        Ok(())
    }

    /// Uses up verified session `id` (one registration per session).
    pub fn consume(&mut self, id: &Uuid, now_ms: u64) -> Result<(), VerifyRefused> {
        if !self.live(id, now_ms)?.verified {
            return Err(VerifyRefused::NotVerified);
        }
        self.sessions.remove(id);
        Ok(())
    }

    /// Whether session `id` is verified (for its metadata).
    pub fn is_verified(&self, id: &Uuid) -> bool {
        self.sessions.get(id).is_some_and(|session| session.verified)
    }

    fn live(&mut self, id: &Uuid, now_ms: u64) -> Result<&mut Session, VerifyRefused> {
        let created_ms = self.sessions.get(id).ok_or(VerifyRefused::NoSuchSession)?.created_ms;
        if now_ms.saturating_sub(created_ms) >= self.session_ttl_ms {
            self.sessions.remove(id);
            return Err(VerifyRefused::NoSuchSession);
        }
        self.sessions.get_mut(id).ok_or(VerifyRefused::NoSuchSession)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> VerificationSessions {
        VerificationSessions::new(600_000, 300_000, 2)
    }

    #[test]
    fn a_verified_session_registers_once() {
        let mut sessions = sessions();
        let id = Uuid::new_v4();
        let challenge = sessions.create(id, 0).unwrap();
        assert_eq!(sessions.consume(&id, 1), Err(VerifyRefused::NotVerified));
        assert_eq!(sessions.answer(&id, "nope", 1), Err(ChallengeRefused::Wrong.into()));
        assert_eq!(sessions.answer(&id, &challenge, 2), Ok(()));
        assert!(sessions.is_verified(&id));
        assert_eq!(sessions.consume(&id, 3), Ok(()));
        assert_eq!(sessions.consume(&id, 4), Err(VerifyRefused::NoSuchSession));
    }

    #[test]
    fn late_answers_and_old_sessions_are_refused() {
        let mut sessions = sessions();
        let id = Uuid::new_v4();
        let challenge = sessions.create(id, 0).unwrap();
        assert_eq!(
            sessions.answer(&id, &challenge, 300_000),
            Err(ChallengeRefused::Expired.into())
        );
        let other = Uuid::new_v4();
        let challenge = sessions.create(other, 0).unwrap();
        sessions.answer(&other, &challenge, 1).unwrap();
        assert_eq!(sessions.consume(&other, 600_000), Err(VerifyRefused::NoSuchSession));
    }

    #[test]
    fn sessions_are_bounded_and_expired_ones_make_room() {
        let mut sessions = sessions();
        sessions.create(Uuid::new_v4(), 0).unwrap();
        sessions.create(Uuid::new_v4(), 0).unwrap();
        assert_eq!(sessions.create(Uuid::new_v4(), 1), Err(VerifyRefused::Full));
        assert!(sessions.create(Uuid::new_v4(), 600_000).is_ok());
    }
}
