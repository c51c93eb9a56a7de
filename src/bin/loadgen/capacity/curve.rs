//! Server CPU as a function of load, from the measured points of one core
//! (the open loops at fractions of the one-core maximum, and the closed
//! loop at the maximum itself).
//!
//! CPU per message is not a constant: at low load every frame costs its
//! own syscalls and wake-ups, at high load they batch. What is
//! interpolated is the CPU a core spends (cores busy = rate x CPU per
//! message), linearly in rate between neighbouring points, which is smooth
//! where CPU per message is not. Below the lowest point the lowest point's
//! CPU per message is used (busy grows linearly from zero); above the
//! maximum a core cannot go, and the answer says so.

/// One measured point.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CurvePoint {
    /// Messages per second the core was offered (and held).
    pub rate_per_sec: f64,
    /// Server CPU per acknowledged message, microseconds.
    pub cpu_us_per_message: f64,
    /// Latency from the write at that load, microseconds (p50, p99).
    pub latency_us_p50: f64,
    pub latency_us_p99: f64,
}

/// Where a rate falls on the curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Range {
    /// Between two measured points: interpolated.
    Measured,
    /// Below the lowest measured rate: that point's CPU per message.
    BelowLowest,
    /// Above the one-core maximum: more than one core can hold.
    AboveMaximum,
}

/// The measured points of one core, by rising rate (at least one).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CpuCurve {
    points: Vec<CurvePoint>,
}

impl CpuCurve {
    /// A curve of `points` (any order); `None` without a usable point.
    pub fn new(mut points: Vec<CurvePoint>) -> Option<Self> {
        points.retain(|p| p.rate_per_sec > 0.0 && p.cpu_us_per_message > 0.0);
        points.sort_by(|a, b| a.rate_per_sec.total_cmp(&b.rate_per_sec));
        (!points.is_empty()).then_some(Self { points })
    }

    /// The points, by rising rate.
    pub fn points(&self) -> &[CurvePoint] {
        &self.points
    }

    /// The highest rate measured (the one-core maximum).
    pub fn max_rate(&self) -> f64 {
        self.points.last().expect("at least one point").rate_per_sec
    }

    /// Cores busy at `rate` messages per second on one core, and where the
    /// rate falls.
    pub fn cores_busy(&self, rate: f64) -> (f64, Range) {
        let busy = |p: &CurvePoint| p.rate_per_sec * p.cpu_us_per_message / 1e6;
        let first = self.points[0];
        if rate <= first.rate_per_sec {
            return (
                rate * first.cpu_us_per_message / 1e6,
                Range::BelowLowest.or_measured(rate, &first),
            );
        }
        for pair in self.points.windows(2) {
            let (low, high) = (pair[0], pair[1]);
            if rate <= high.rate_per_sec {
                let share = (rate - low.rate_per_sec) / (high.rate_per_sec - low.rate_per_sec);
                return (busy(&low) + share * (busy(&high) - busy(&low)), Range::Measured);
            }
        }
        let last = self.points[self.points.len() - 1];
        (busy(&last) * rate / last.rate_per_sec, Range::AboveMaximum)
    }

    /// CPU per message at `rate`, microseconds (see [`Self::cores_busy`]).
    pub fn cpu_us_per_message(&self, rate: f64) -> f64 {
        match rate > 0.0 {
            true => self.cores_busy(rate).0 * 1e6 / rate,
            false => self.points[0].cpu_us_per_message,
        }
    }

    /// Latency from the write at `rate` (p50, p99), interpolated the same
    /// way (the nearest end outside the measured range).
    pub fn latency_us(&self, rate: f64) -> (f64, f64) {
        let ends = (self.points[0], self.points[self.points.len() - 1]);
        if rate <= ends.0.rate_per_sec {
            return (ends.0.latency_us_p50, ends.0.latency_us_p99);
        }
        for pair in self.points.windows(2) {
            let (low, high) = (pair[0], pair[1]);
            if rate <= high.rate_per_sec {
                let share = (rate - low.rate_per_sec) / (high.rate_per_sec - low.rate_per_sec);
                let mix = |a: f64, b: f64| a + share * (b - a);
                return (
                    mix(low.latency_us_p50, high.latency_us_p50),
                    mix(low.latency_us_p99, high.latency_us_p99),
                );
            }
        }
        (ends.1.latency_us_p50, ends.1.latency_us_p99)
    }
}

impl Range {
    /// `BelowLowest`, unless `rate` is the point itself.
    fn or_measured(self, rate: f64, point: &CurvePoint) -> Range {
        if rate == point.rate_per_sec {
            Range::Measured
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(rate_per_sec: f64, cpu_us_per_message: f64) -> CurvePoint {
        CurvePoint {
            rate_per_sec,
            cpu_us_per_message,
            latency_us_p50: rate_per_sec / 100.0,
            latency_us_p99: rate_per_sec / 10.0,
        }
    }

    /// The 2026-12-06 AMD points: 8,860/s at 63.77 us, 22,150/s at 42.8 us,
    /// 44,301/s at 22.22 us, 96,840/s at 10.28 us (closed loop).
    fn amd() -> CpuCurve {
        CpuCurve::new(vec![
            point(96_840.0, 10.28),
            point(8_860.0, 63.77),
            point(44_301.0, 22.22),
            point(22_150.0, 42.8),
        ])
        .unwrap()
    }

    #[test]
    fn measured_points_come_back_exactly() {
        let curve = amd();
        assert_eq!(curve.max_rate(), 96_840.0);
        for p in curve.points().to_vec() {
            assert!((curve.cpu_us_per_message(p.rate_per_sec) - p.cpu_us_per_message).abs() < 1e-9);
            assert_eq!(curve.cores_busy(p.rate_per_sec).1, Range::Measured);
        }
    }

    #[test]
    fn between_points_the_busy_share_is_interpolated_by_hand() {
        let curve = amd();
        // Busy at 22,150/s: 0.948020 cores; at 44,301/s: 0.984368. Half
        // way (33,225.5/s): 0.966194 cores, so 29.080 us per message.
        let (busy, range) = curve.cores_busy(33_225.5);
        assert_eq!(range, Range::Measured);
        assert!((busy - 0.966_194).abs() < 1e-6, "{busy}");
        assert!((curve.cpu_us_per_message(33_225.5) - 29.080).abs() < 1e-3);
    }

    #[test]
    fn outside_the_range_the_answer_says_so() {
        let curve = amd();
        // Below 8,860/s: 63.77 us per message, busy linear from zero.
        let (busy, range) = curve.cores_busy(4_430.0);
        assert_eq!(range, Range::BelowLowest);
        assert!((busy - 0.282_501).abs() < 1e-6, "{busy}");
        // Twice the maximum takes twice the maximum's busy share.
        let (busy, range) = curve.cores_busy(193_680.0);
        assert_eq!(range, Range::AboveMaximum);
        assert!((busy - 2.0 * 0.995_515).abs() < 1e-5, "{busy}");
        assert!(CpuCurve::new(vec![point(0.0, 1.0)]).is_none(), "no usable point");
    }

    #[test]
    fn latency_is_read_from_the_nearest_points() {
        let curve = amd();
        assert_eq!(curve.latency_us(1.0), (88.6, 886.0));
        let (p50, p99) = curve.latency_us(15_505.0);
        assert!((p50 - 155.05).abs() < 1e-6 && (p99 - 1_550.5).abs() < 1e-6);
        assert_eq!(curve.latency_us(1e9), (968.4, 9_684.0));
    }
}
