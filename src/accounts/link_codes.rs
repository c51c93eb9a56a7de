//! Pending device-link codes, one per account.
//!
//! A code is `{account uuid}.{32 hex digits of randomness}`: the account
//! part routes the unauthenticated link request to the owner shard, the
//! random part is the secret (compared in constant time). Invariants: an
//! account has at most one code (issuing replaces the old one); a code is
//! valid until `expires_ms` (exclusive) and consumed by its first use.
//!
//! Pure state: the caller passes `now_ms`.

use std::collections::HashMap;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// How long a link code stays valid.
pub const LINK_CODE_TTL_MS: u64 = 10 * 60 * 1000;

/// Codes by account: (code, expiry ms).
#[derive(Debug, Default)]
pub struct LinkCodes {
    by_account: HashMap<Uuid, (String, u64)>,
}

impl LinkCodes {
    /// Issues a fresh code for `account`, replacing any earlier one.
    pub fn issue(&mut self, account: Uuid, now_ms: u64) -> String {
        let secret: String =
            crate::accounts::table::new_salt().iter().map(|b| format!("{b:02x}")).collect();
        let code = format!("{account}.{secret}");
        self.by_account.insert(account, (code.clone(), now_ms + LINK_CODE_TTL_MS));
        code
    }

    /// The account a code names (not proof that the code is valid).
    pub fn account_of(code: &str) -> Option<Uuid> {
        code.split_once('.').and_then(|(account, _)| Uuid::try_parse(account).ok())
    }

    /// True when `code` is `account`'s live code.
    pub fn is_valid(&self, account: &Uuid, code: &str, now_ms: u64) -> bool {
        self.by_account.get(account).is_some_and(|(expected, expires_ms)| {
            *expires_ms > now_ms && bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
        })
    }

    /// Forgets `account`'s code (used, or the account is gone).
    pub fn consume(&mut self, account: &Uuid) {
        self.by_account.remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    #[test]
    fn a_code_expires_after_its_ttl_on_a_stepped_clock() {
        let clock = Clock::manual(1_000_000);
        let account = Uuid::new_v4();
        let mut codes = LinkCodes::default();
        let code = codes.issue(account, clock.now_ms());
        assert_eq!(LinkCodes::account_of(&code), Some(account));
        clock.advance_ms(LINK_CODE_TTL_MS - 1);
        assert!(codes.is_valid(&account, &code, clock.now_ms()));
        clock.advance_ms(1);
        assert!(!codes.is_valid(&account, &code, clock.now_ms()), "expired at its TTL");
    }

    #[test]
    fn a_new_code_replaces_the_old_and_a_used_code_is_gone() {
        let account = Uuid::new_v4();
        let mut codes = LinkCodes::default();
        let first = codes.issue(account, 0);
        let second = codes.issue(account, 0);
        assert!(!codes.is_valid(&account, &first, 1));
        assert!(codes.is_valid(&account, &second, 1));
        assert!(!codes.is_valid(&Uuid::new_v4(), &second, 1), "another account's code");
        codes.consume(&account);
        assert!(!codes.is_valid(&account, &second, 1));
        assert_eq!(LinkCodes::account_of("not-a-uuid.abc"), None);
    }
}
