//! Token-bucket rate limiting, one bucket per key, for any route to use.
//!
//! Each [`RateLimiter`] enforces one [`RateLimit`]: a bucket of `permits`
//! that refills evenly over `period_ms`. It is kept as the generic cell rate
//! algorithm: per key one "theoretical arrival time" (`tat_us`), the moment
//! the bucket would be full again. Taking `cost` permits moves it
//! `cost * interval` later; a take that would move it more than `period`
//! past now is refused with the wait until it fits. This is exactly a token
//! bucket, with one `u64` of state per key and no timer.
//!
//! Invariants:
//! - a refused take changes nothing (a caller over its budget pays nothing
//!   for being told so);
//! - the limiter holds at most `keys_max` keys. Keys whose bucket is full
//!   again hold no information and are swept when the table is full; if it
//!   is still full, a new key is refused (fail closed, counted by the
//!   caller) rather than evicting a key that is being limited;
//! - time comes from the caller (`now_ms`), so tests step a manual clock.
//!
//! Owns: the buckets, and [`Limiters`], a shard's set of them. Imports:
//! `config` (the limits' shape) only.

use crate::config::{RateLimit, RateLimits};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use uuid::Uuid;

/// One shard's limiters, one per configured limit.
pub struct Limiters {
    /// Identifier hashes looked up, per account.
    pub directory_lookup: RefCell<RateLimiter<Uuid>>,
    /// Failed logins, per claimed account.
    pub auth_failures_per_account: RefCell<RateLimiter<Uuid>>,
    /// Failed logins, per source address.
    pub auth_failures_per_ip: RefCell<RateLimiter<IpAddr>>,
    /// Identified messages, per (sender, recipient) account pair.
    pub messages_per_pair: RefCell<RateLimiter<(Uuid, Uuid)>>,
    /// Registrations, per source address.
    pub registrations_per_ip: RefCell<RateLimiter<IpAddr>>,
}

impl Limiters {
    /// Empty buckets for every limit of `config`.
    pub fn new(config: &RateLimits) -> Self {
        let keys_max = config.keys_per_shard_max;
        Self {
            directory_lookup: bucket(config.directory_lookup, keys_max),
            auth_failures_per_account: bucket(config.auth_failures_per_account, keys_max),
            auth_failures_per_ip: bucket(config.auth_failures_per_ip, keys_max),
            messages_per_pair: bucket(config.messages_per_pair, keys_max),
            registrations_per_ip: bucket(config.registrations_per_ip, keys_max),
        }
    }
}

fn bucket<K: Hash + Eq + Clone>(limit: RateLimit, keys_max: usize) -> RefCell<RateLimiter<K>> {
    RefCell::new(RateLimiter::new(limit, keys_max))
}

/// A refused take: how long until it would fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Milliseconds until the same take would succeed (at least 1).
    pub retry_after_ms: u64,
}

impl Limited {
    /// The wait in whole seconds, rounded up (for `Retry-After`), at least 1.
    pub fn retry_after_s(&self) -> u64 {
        self.retry_after_ms.div_ceil(1000).max(1)
    }
}

/// Buckets for one limit, keyed by whatever the limit is per.
pub struct RateLimiter<K> {
    /// Microseconds one permit takes to refill; 0 when the limit is off.
    interval_us: u64,
    /// Microseconds a full bucket spans (`permits * interval_us`).
    period_us: u64,
    /// Largest cost one take may have (the bucket's size).
    permits: u64,
    keys_max: usize,
    /// Per key: when its bucket is full again, in microseconds since the epoch.
    tat_us: HashMap<K, u64>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter enforcing `limit` for at most `keys_max` keys at once.
    pub fn new(limit: RateLimit, keys_max: usize) -> Self {
        let permits = u64::from(limit.permits);
        let interval_us =
            limit.period_ms.saturating_mul(1000).checked_div(permits).map_or(0, |us| us.max(1));
        Self {
            interval_us,
            period_us: interval_us.saturating_mul(permits),
            permits,
            keys_max,
            tat_us: HashMap::new(),
        }
    }

    /// True when the limit is configured off (`permits = 0`).
    pub fn is_off(&self) -> bool {
        self.interval_us == 0
    }

    /// Takes `cost` permits from `key`'s bucket, or says how long to wait.
    /// A cost larger than the whole bucket is refused with the wait for a
    /// full bucket (it can never fit in one take).
    pub fn take(&mut self, key: &K, cost: u64, now_ms: u64) -> Result<(), Limited> {
        let Some(new_tat_us) = self.fits(key, cost, now_ms)? else { return Ok(()) };
        if !self.tat_us.contains_key(key) && !self.make_room(now_ms.saturating_mul(1000)) {
            return Err(Limited { retry_after_ms: self.interval_us.div_ceil(1000).max(1) });
        }
        self.tat_us.insert(key.clone(), new_tat_us);
        Ok(())
    }

    /// Whether a take of `cost` from `key`'s bucket would succeed now,
    /// without taking anything.
    pub fn peek(&self, key: &K, cost: u64, now_ms: u64) -> Result<(), Limited> {
        self.fits(key, cost, now_ms).map(|_| ())
    }

    /// The bucket's new state after taking `cost` (`None`: nothing to
    /// record, the limit is off or the cost zero), or the wait.
    fn fits(&self, key: &K, cost: u64, now_ms: u64) -> Result<Option<u64>, Limited> {
        if self.is_off() || cost == 0 {
            return Ok(None);
        }
        let now_us = now_ms.saturating_mul(1000);
        let tat_us = self.tat_us.get(key).copied().unwrap_or(now_us).max(now_us);
        let new_tat_us = tat_us.saturating_add(cost.saturating_mul(self.interval_us));
        let allowed_until_us = now_us.saturating_add(self.period_us);
        if cost > self.permits || new_tat_us > allowed_until_us {
            let wait_us = new_tat_us.saturating_sub(allowed_until_us).max(1);
            return Err(Limited { retry_after_ms: wait_us.div_ceil(1000).max(1) });
        }
        Ok(Some(new_tat_us))
    }

    /// Forgets `key`'s bucket: its next take starts from a full bucket.
    pub fn clear(&mut self, key: &K) {
        self.tat_us.remove(key);
    }

    /// Forgets every bucket whose key `matches` (e.g. all of one sender's pairs).
    pub fn clear_where(&mut self, matches: impl Fn(&K) -> bool) {
        self.tat_us.retain(|key, _| !matches(key));
    }

    /// Number of keys with a partly spent bucket (or swept lazily).
    pub fn len(&self) -> usize {
        self.tat_us.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.tat_us.is_empty()
    }

    /// Ensures room for one more key: sweeps full buckets when at the cap.
    fn make_room(&mut self, now_us: u64) -> bool {
        if self.tat_us.len() < self.keys_max {
            return true;
        }
        self.tat_us.retain(|_, tat_us| *tat_us > now_us);
        self.tat_us.len() < self.keys_max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(permits: u32, period_ms: u64) -> RateLimiter<u32> {
        RateLimiter::new(RateLimit { permits, period_ms }, 4)
    }

    #[test]
    fn a_full_bucket_allows_its_permits_then_refuses() {
        let mut limits = limiter(3, 3000);
        for _ in 0..3 {
            assert_eq!(limits.take(&1, 1, 10_000), Ok(()));
        }
        assert_eq!(limits.take(&1, 1, 10_000), Err(Limited { retry_after_ms: 1000 }));
        assert_eq!(limits.take(&2, 1, 10_000), Ok(()), "keys are independent");
    }

    #[test]
    fn permits_refill_evenly_over_the_period() {
        let mut limits = limiter(3, 3000);
        assert_eq!(limits.take(&1, 3, 0), Ok(()));
        assert_eq!(limits.take(&1, 1, 999), Err(Limited { retry_after_ms: 1 }));
        assert_eq!(limits.take(&1, 1, 1000), Ok(()));
        assert_eq!(limits.take(&1, 2, 1000).unwrap_err().retry_after_ms, 2000);
        assert_eq!(limits.take(&1, 2, 3000), Ok(()));
    }

    #[test]
    fn peek_says_what_take_would_without_taking() {
        let mut limits = limiter(2, 2000);
        assert_eq!(limits.peek(&1, 2, 0), Ok(()));
        assert_eq!(limits.peek(&1, 2, 0), Ok(()), "a peek takes nothing");
        assert_eq!(limits.take(&1, 2, 0), Ok(()));
        assert_eq!(limits.peek(&1, 1, 0), Err(Limited { retry_after_ms: 1000 }));
        assert_eq!(limits.peek(&1, 1, 1000), Ok(()));
    }

    #[test]
    fn a_refused_take_costs_nothing() {
        let mut limits = limiter(10, 10_000);
        assert_eq!(limits.take(&1, 8, 0), Ok(()));
        assert!(limits.take(&1, 5, 0).is_err());
        assert_eq!(limits.take(&1, 2, 0), Ok(()), "the refused 5 took nothing");
        assert!(limits.take(&1, 1, 0).is_err());
    }

    #[test]
    fn a_cost_over_the_bucket_is_refused_and_zero_cost_is_free() {
        let mut limits = limiter(5, 5000);
        assert!(limits.take(&1, 6, 0).is_err());
        assert_eq!(limits.take(&1, 0, 0), Ok(()));
        assert_eq!(limits.take(&1, 5, 0), Ok(()));
    }

    #[test]
    fn zero_permits_means_off() {
        let mut limits = limiter(0, 1000);
        assert!(limits.is_off());
        for _ in 0..1000 {
            assert_eq!(limits.take(&1, 1_000_000, 0), Ok(()));
        }
        assert!(limits.is_empty());
    }

    #[test]
    fn clear_restores_a_full_bucket() {
        let mut limits = limiter(1, 60_000);
        assert_eq!(limits.take(&1, 1, 0), Ok(()));
        assert!(limits.take(&1, 1, 0).is_err());
        limits.clear(&1);
        assert_eq!(limits.take(&1, 1, 0), Ok(()));
        assert!(limits.take(&1, 1, 0).is_err());
        limits.clear_where(|key| *key == 1);
        assert_eq!(limits.take(&1, 1, 0), Ok(()));
    }

    #[test]
    fn keys_are_bounded_sweeping_full_buckets_first() {
        let mut limits = limiter(2, 2000);
        for key in 0..4 {
            assert_eq!(limits.take(&key, 1, 0), Ok(()));
        }
        // Full table, nobody refilled yet: a new key is refused, old ones work.
        assert!(limits.take(&9, 1, 0).is_err());
        assert_eq!(limits.take(&0, 1, 0), Ok(()));
        // Once buckets are full again they are swept to make room.
        assert_eq!(limits.take(&9, 1, 5000), Ok(()));
        assert!(limits.len() <= 4);
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(Limited { retry_after_ms: 1 }.retry_after_s(), 1);
        assert_eq!(Limited { retry_after_ms: 1000 }.retry_after_s(), 1);
        assert_eq!(Limited { retry_after_ms: 1001 }.retry_after_s(), 2);
    }

    #[test]
    fn huge_times_and_costs_do_not_overflow() {
        let mut limits =
            RateLimiter::new(RateLimit { permits: u32::MAX, period_ms: u64::MAX / 2000 }, 2);
        assert!(limits.take(&1, u64::MAX, u64::MAX).is_err());
        assert_eq!(limits.take(&1, 1, u64::MAX), Ok(()));
    }
}
