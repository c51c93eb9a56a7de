//! The rate limits, each a token bucket of `permits` refilled evenly over
//! `period_ms` (see [`crate::ratelimit`]); `permits = 0` turns one off.
//!
//! Defaults are meant to stop abuse without ever touching a real client or
//! a benchmark run from one address: an operator tightens them for a public
//! deployment (tuning/capacity.md).

use serde::{Deserialize, Serialize};

/// One limit: a bucket of `permits` refilled evenly over `period_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Bucket size: what may be taken at once from a full bucket. 0 = no limit.
    pub permits: u32,
    /// Time for an empty bucket to refill completely.
    pub period_ms: u64,
}

/// Longest refill period accepted (a year): keeps the arithmetic in range.
pub const RATE_LIMIT_PERIOD_MS_MAX: u64 = 366 * 24 * 3600 * 1000;

/// Every rate limit of the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Hashes one account may look up in `PUT /v1/directory/lookup` (each
    /// hash costs one permit). Default: 100,000 per day.
    pub directory_lookup: RateLimit,
    /// Failed logins per claimed account (wrong password or unknown
    /// account). Default: 100 per minute. While spent, logins to the account
    /// are answered 429 without checking the password.
    pub auth_failures_per_account: RateLimit,
    /// Failed logins per source address, on each shard. Default: 1000 per
    /// minute.
    pub auth_failures_per_ip: RateLimit,
    /// Messages one account sends to one other account (identified sends;
    /// a push challenge lifts it). Default: a burst of 50,000, then 5,000/s
    /// (a client pipelining tens of thousands of sends is slowed by
    /// back-pressure, not refused; this only stops a runaway sender).
    pub messages_per_pair: RateLimit,
    /// Accounts registered from one source address, per shard. Default:
    /// 100,000 per hour (a deployment gates registration with a token or a
    /// verification session; this only bounds a flood).
    pub registrations_per_ip: RateLimit,
    /// Most keys (accounts, addresses, pairs) each shard tracks per limit;
    /// past it new keys are refused until buckets refill (fail closed).
    pub keys_per_shard_max: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            directory_lookup: RateLimit { permits: 100_000, period_ms: 24 * 3600 * 1000 },
            auth_failures_per_account: RateLimit { permits: 100, period_ms: 60_000 },
            auth_failures_per_ip: RateLimit { permits: 1000, period_ms: 60_000 },
            messages_per_pair: RateLimit { permits: 50_000, period_ms: 10_000 },
            registrations_per_ip: RateLimit { permits: 100_000, period_ms: 3_600_000 },
            keys_per_shard_max: 1_000_000,
        }
    }
}

impl RateLimits {
    /// Each limit with its config name, for validation.
    pub fn named(&self) -> [(&'static str, RateLimit); 5] {
        [
            ("rate_limits.directory_lookup", self.directory_lookup),
            ("rate_limits.messages_per_pair", self.messages_per_pair),
            ("rate_limits.registrations_per_ip", self.registrations_per_ip),
            ("rate_limits.auth_failures_per_account", self.auth_failures_per_account),
            ("rate_limits.auth_failures_per_ip", self.auth_failures_per_ip),
        ]
    }
}

impl RateLimits {
    /// Checks every limit: the field at fault and why.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.keys_per_shard_max == 0 {
            return Err(("rate_limits.keys_per_shard_max", "must be greater than 0"));
        }
        for (field, limit) in self.named() {
            if limit.permits > 0 && !(1..=RATE_LIMIT_PERIOD_MS_MAX).contains(&limit.period_ms) {
                return Err((field, "period_ms must be from 1 to 31622400000 (a year)"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_periods_are_named() {
        assert_eq!(RateLimits::default().validate(), Ok(()));
        let mut limits = RateLimits::default();
        limits.directory_lookup.period_ms = 0;
        assert_eq!(limits.validate().unwrap_err().0, "rate_limits.directory_lookup");
        limits.directory_lookup.permits = 0;
        assert_eq!(limits.validate(), Ok(()), "an unused period does not matter when off");
        limits.keys_per_shard_max = 0;
        assert_eq!(limits.validate().unwrap_err().0, "rate_limits.keys_per_shard_max");
    }
}
