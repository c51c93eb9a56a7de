//! The population model of the `day` scenario and of the capacity planner:
//! what a day of traffic is, as numbers both read the same way. Pure: no
//! clock and no socket; every draw comes from a seeded [`Rng`], so one seed
//! offers the same day twice.
//!
//! - **The day.** Activity over the hours follows a von Mises curve
//!   `a(h) = exp(k cos(2 pi (h - peak_hour) / 24)) / I0(k)`: its mean over a
//!   day is 1 and its maximum is the peak factor `p` (`k` solved from `p`),
//!   with quiet nights, as messaging traffic has.
//! - **Sessions.** A device is away all day (share `away_share`: its queue
//!   only grows, and it is pushed), or it alternates: online for a drawn
//!   time (exponential, mean `session_minutes`), then offline until a
//!   drawn connect. The connect hazard is set so the share of all devices
//!   online at hour `h` is `concurrent * a(h) / p`: `concurrent` at the peak.
//! - **Sends.** An online device sends at a constant Poisson rate, chosen
//!   so the day holds `messages_per_day` sends per account: each send goes
//!   to every device of a random other account, so every device receives
//!   `messages_per_day` a day on average. A sender whose account has a
//!   linked device also sends a sync copy to it (Signal's rule).
//!
//! Invariants (checked by [`Traffic::validate`]): shares in [0, 1],
//! `concurrent + away_share < 1` (someone must be offline to come back),
//! `1 <= peak_factor <= PEAK_FACTOR_MAX`, positive counts and rates.

use std::f64::consts::PI;

/// Seconds in a day.
pub const DAY_SECS: f64 = 86_400.0;

/// The largest peak factor the curve can have with `k <= 50` (about 17.7).
pub const PEAK_FACTOR_MAX: f64 = 16.0;

/// Content bytes every message carries at least: the send stamps (16), the
/// sender's account index (4) and a kind byte, rounded up.
pub const CONTENT_BYTES_MIN: usize = 24;

/// The largest content a drawn size may reach (the tail is cut here).
pub const CONTENT_BYTES_MAX: usize = 64 * 1024;

/// What a day of traffic is: the population and what it does.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Traffic {
    /// Registered accounts.
    pub accounts: u64,
    /// Share of accounts with a linked second device (a desktop).
    pub linked_share: f64,
    /// Share of all devices connected at the peak.
    pub concurrent: f64,
    /// Share of devices away the whole day (their queues grow; pushed).
    pub away_share: f64,
    /// Messages each device receives per day, on average.
    pub messages_per_day: f64,
    /// Peak rate over the day's average rate.
    pub peak_factor: f64,
    /// Mean content bytes of a message.
    pub content_bytes: f64,
    /// Share of sends that are sealed sender (no sender identity).
    pub sealed_share: f64,
    /// Share of received messages a primary device answers with a READ receipt.
    pub read_receipt_share: f64,
    /// Share of sends preceded by a typing indicator.
    pub typing_share: f64,
    /// Share of primary devices with a push token (linked devices have none).
    pub push_share: f64,
    /// Mean length of an online session, in minutes of the day.
    pub session_minutes: f64,
    /// Hour of the day of the peak (0 to 24).
    pub peak_hour: f64,
}

/// A [`Traffic`] field out of range: which, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct TrafficError {
    /// The option name, e.g. `--concurrent`.
    pub field: &'static str,
    /// Why it was refused.
    pub reason: &'static str,
}

impl Traffic {
    /// Checks every field (see the module invariants).
    pub fn validate(&self) -> Result<(), TrafficError> {
        let refuse = |field, reason| Err(TrafficError { field, reason });
        let shares = [
            ("--linked-share", self.linked_share),
            ("--concurrent", self.concurrent),
            ("--away-share", self.away_share),
            ("--sealed-share", self.sealed_share),
            ("--read-receipt-share", self.read_receipt_share),
            ("--typing-share", self.typing_share),
            ("--push-share", self.push_share),
        ];
        for (field, share) in shares {
            if !(0.0..=1.0).contains(&share) {
                return refuse(field, "must be a fraction from 0 to 1");
            }
        }
        if self.accounts < 2 {
            return refuse("--accounts", "must be at least 2");
        }
        if self.concurrent <= 0.0 || self.concurrent + self.away_share >= 1.0 {
            return refuse("--concurrent", "must be above 0, and with --away-share below 1");
        }
        if !(1.0..=PEAK_FACTOR_MAX).contains(&self.peak_factor) {
            return refuse("--peak-factor", "must be from 1 to 16");
        }
        if !(self.messages_per_day > 0.0 && self.messages_per_day <= 1e6) {
            return refuse("--messages-per-day", "must be above 0 and at most 1000000");
        }
        let content = CONTENT_BYTES_MIN as f64..=(CONTENT_BYTES_MAX / 2) as f64;
        if !content.contains(&self.content_bytes) {
            return refuse("--content-bytes", "must be from 24 to 32768");
        }
        if !(self.session_minutes > 0.0 && self.session_minutes <= 1440.0) {
            return refuse("--session-minutes", "must be above 0 and at most 1440");
        }
        if !(0.0..=24.0).contains(&self.peak_hour) {
            return refuse("--peak-hour", "must be from 0 to 24");
        }
        Ok(())
    }

    /// Accounts with a linked second device.
    pub fn linked_accounts(&self) -> u64 {
        (self.accounts as f64 * self.linked_share).round() as u64
    }

    /// Registered devices: one per account, two for linked accounts.
    pub fn devices(&self) -> u64 {
        self.accounts + self.linked_accounts()
    }

    /// Share of all devices online at `hour`.
    pub fn online_share(&self, curve: &DailyCurve, hour: f64) -> f64 {
        self.concurrent * curve.activity(hour) / curve.peak_factor()
    }

    /// Share of the devices that are not away online at `hour`.
    pub fn online_share_of_present(&self, curve: &DailyCurve, hour: f64) -> f64 {
        self.online_share(curve, hour) / (1.0 - self.away_share)
    }

    /// Sends per second of the day at `hour` (every device's, in total).
    pub fn sends_per_sec(&self, curve: &DailyCurve, hour: f64) -> f64 {
        self.accounts as f64 * self.messages_per_day * curve.activity(hour) / DAY_SECS
    }

    /// Sends per second of the day by one online device: the same at every
    /// hour, since the online population follows the curve too.
    pub fn sends_per_online_device_sec(&self) -> f64 {
        let online_at_peak = self.devices() as f64 * self.concurrent;
        self.accounts as f64 * self.messages_per_day * self.peak_factor
            / (DAY_SECS * online_at_peak)
    }

    /// Mean session length in seconds of the day.
    pub fn session_secs(&self) -> f64 {
        self.session_minutes * 60.0
    }

    /// The connect hazard of an offline present device at `hour`, per
    /// second of the day: `share / ((1 - share) * session)` keeps the
    /// online share at `share` (on/off rates in balance).
    pub fn connect_hazard(&self, curve: &DailyCurve, hour: f64) -> f64 {
        let share = self.online_share_of_present(curve, hour);
        share / ((1.0 - share) * self.session_secs())
    }

    /// Draws the day-second of the next connect of a device offline since
    /// `from_s` (thinning against the hazard at the peak); `None` when it
    /// would be at or after `until_s`.
    pub fn next_connect_s(
        &self,
        curve: &DailyCurve,
        from_s: f64,
        until_s: f64,
        rng: &mut Rng,
    ) -> Option<f64> {
        let hazard_max = self.connect_hazard(curve, self.peak_hour);
        debug_assert!(hazard_max > 0.0 && hazard_max.is_finite());
        let mut at_s = from_s;
        loop {
            at_s += rng.exponential(1.0 / hazard_max);
            if at_s >= until_s {
                return None;
            }
            let hazard = self.connect_hazard(curve, hour_of(at_s));
            if rng.unit() * hazard_max < hazard {
                return Some(at_s);
            }
        }
    }
}

/// The hour of the day (0 to 24) of day-second `at_s` (which may run past
/// one day: it wraps).
pub fn hour_of(at_s: f64) -> f64 {
    (at_s / 3600.0).rem_euclid(24.0)
}

/// The daily activity curve (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DailyCurve {
    /// Concentration: 0 is flat (peak factor 1).
    k: f64,
    /// `I0(k)`: divides the curve to a mean of 1.
    norm: f64,
    /// Hour of the peak.
    peak_hour: f64,
}

impl DailyCurve {
    /// The curve whose peak over its mean is `peak_factor` (1 to
    /// [`PEAK_FACTOR_MAX`]), peaking at `peak_hour`.
    pub fn new(peak_factor: f64, peak_hour: f64) -> Self {
        assert!((1.0..=PEAK_FACTOR_MAX).contains(&peak_factor), "peak factor {peak_factor}");
        let ratio = |k: f64| k.exp() / bessel_i0(k);
        let (mut low, mut high) = (0.0f64, 50.0f64);
        for _ in 0..200 {
            let mid = (low + high) / 2.0;
            if ratio(mid) < peak_factor {
                low = mid;
            } else {
                high = mid;
            }
        }
        let k = (low + high) / 2.0;
        Self { k, norm: bessel_i0(k), peak_hour }
    }

    /// Activity at `hour` relative to the day's mean.
    pub fn activity(&self, hour: f64) -> f64 {
        (self.k * (2.0 * PI * (hour - self.peak_hour) / 24.0).cos()).exp() / self.norm
    }

    /// The curve's maximum over its mean.
    pub fn peak_factor(&self) -> f64 {
        self.k.exp() / self.norm
    }
}

/// The modified Bessel function of the first kind, order 0, by its series
/// (converges for every `x`; `x` here is at most 50).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term) = (1.0, 1.0);
    for j in 1..500 {
        let factor = x / (2.0 * j as f64);
        term *= factor * factor;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// A small seeded generator (SplitMix64): fast, and the same sequence for
/// the same seed on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` mixed with `stream` (e.g. a device index), so
    /// each device draws its own sequence.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut rng = Self(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        rng.next_u64();
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `share`.
    pub fn chance(&mut self, share: f64) -> bool {
        self.unit() < share
    }

    /// Uniform in `0..count` (`count` at least 1).
    pub fn below(&mut self, count: usize) -> usize {
        debug_assert!(count > 0);
        ((self.unit() * count as f64) as usize).min(count - 1)
    }

    /// Exponential with mean `mean`.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// A content size with mean `mean_bytes`: [`CONTENT_BYTES_MIN`] plus an
    /// exponential tail, cut at [`CONTENT_BYTES_MAX`] (which moves the mean
    /// by less than 1e-20 of itself at the largest mean allowed).
    pub fn content_bytes(&mut self, mean_bytes: f64) -> usize {
        let min = CONTENT_BYTES_MIN as f64;
        let drawn = min + self.exponential((mean_bytes - min).max(0.0));
        (drawn.round() as usize).clamp(CONTENT_BYTES_MIN, CONTENT_BYTES_MAX)
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
pub mod tests;
