//! Predicted against measured, pure: the plan's model evaluated at each
//! sample of the run (the compressed traffic at that hour of the day, the
//! backlogs integrated over the run so far) beside what the box measured,
//! and the verdict.
//!
//! Each planned quantity is compared where it is defined: rates (CPU,
//! connections, pushes, sends) as means over the peak window (the samples
//! where the predicted load is at least [`PEAK_WINDOW_SHARE`] of its
//! highest), sizes (RSS, open files) as the run's maximum, the stored
//! backlog at the end of the day, and disk at rest after a full compaction
//! of the stopped server's directory. A quantity fails when measured is
//! more than [`ERROR_MAX`] away from predicted; the plan under-provisions
//! when a measured maximum exceeds what the plan provisions by more than
//! [`UNDER_MAX`].

use super::sampler::Sample;
use crate::capacity::figures::Figures;
use crate::capacity::load::{self, Load, PushWindows};
use crate::capacity::plan;
use crate::day::model::{DailyCurve, Traffic};
use serde::Serialize;

/// Samples at or above this share of the highest predicted load make the
/// peak window.
pub const PEAK_WINDOW_SHARE: f64 = 0.8;
/// The largest relative error accepted.
pub const ERROR_MAX: f64 = 0.20;
/// The largest share by which a measured maximum may exceed the provision.
pub const UNDER_MAX: f64 = 0.10;

/// The run as the model sees it: the compressed traffic, the day's curve,
/// where the run starts in the day and how fast it goes.
pub struct Model<'a> {
    pub traffic: &'a Traffic,
    pub curve: DailyCurve,
    pub windows: PushWindows,
    pub figures: &'a Figures,
    pub start_hour: f64,
    /// Hours of the day per real second.
    pub hours_per_sec: f64,
}

/// The model's prediction at one sample.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Predicted {
    pub t_secs: f64,
    pub hour: f64,
    pub load: Load,
    pub cpu_cores: f64,
    pub rss_bytes: f64,
    pub open_files: f64,
    pub stored_items: f64,
    /// Items written to the store so far (the memtable's share of RSS).
    pub written_items: f64,
    /// Latency from the write the curve gives at this load (not planned).
    pub latency_p99_us: f64,
}

impl Model<'_> {
    /// Predictions at each of `times` (seconds since the day started,
    /// rising), integrating the backlogs between them from an empty store.
    pub fn predict(&self, times: &[f64]) -> Vec<Predicted> {
        let mut backlogs = Backlogs::default();
        let mut last = None::<(f64, Load)>;
        times
            .iter()
            .map(|&t_secs| {
                let hour = (self.start_hour + t_secs * self.hours_per_sec).rem_euclid(24.0);
                let load = load::at(self.traffic, &self.curve, hour, self.windows);
                if let Some((t0, before)) = last {
                    backlogs.step(self, (&before, &load), hour, t_secs - t0);
                }
                last = Some((t_secs, load));
                self.at(t_secs, hour, load, &backlogs)
            })
            .collect()
    }

    /// The prediction at `t_secs` with the backlogs so far.
    fn at(&self, t_secs: f64, hour: f64, load: Load, backlogs: &Backlogs) -> Predicted {
        let f = self.figures;
        let ram = plan::ram_at(f, self.traffic, 1.0, &load);
        let per_item = plan::memtable_bytes_per_item(f, self.traffic.content_bytes, &load);
        let memtable = (backlogs.written * per_item).min(f.rss_store_high_water_bytes.value);
        Predicted {
            t_secs,
            hour,
            cpu_cores: plan::cpu_busy(f, 1.0, &load).0,
            rss_bytes: ram.total() + memtable,
            open_files: f.fds_start.value + load.connections,
            stored_items: backlogs.away + backlogs.present,
            written_items: backlogs.written,
            latency_p99_us: f.curve.latency_us(load.message_equivalents_per_sec).1,
            load,
        }
    }
}

/// The stored items as the run goes, from an empty store.
#[derive(Debug, Default)]
struct Backlogs {
    /// Held by away devices: everything they were sent.
    away: f64,
    /// Held by present devices offline: filled at their share of the items,
    /// drained as they connect (hazard `h`): `dB/dt = in - h B`.
    present: f64,
    /// Written to the store so far (stored items, drained or not).
    written: f64,
}

impl Backlogs {
    /// Advances `dt` seconds from load `before` to `after` (at `hour`).
    fn step(&mut self, model: &Model, (before, after): (&Load, &Load), hour: f64, dt: f64) {
        let traffic = model.traffic;
        let devices = traffic.devices() as f64;
        let mean = |f: fn(&Load) -> f64| (f(before) + f(after)) / 2.0;
        self.away += traffic.away_share * mean(|l| l.items_per_sec) * dt;
        self.written += mean(|l| l.stored_per_sec) * dt;
        let offline_present = devices * (1.0 - traffic.away_share) - mean(|l| l.connections);
        let inflow = mean(|l| l.items_per_sec) / devices * offline_present.max(0.0);
        let hazard = traffic.connect_hazard(&model.curve, hour);
        let decay = (-hazard * dt).exp();
        self.present = match hazard * dt > 1e-12 {
            true => self.present * decay + inflow / hazard * (1.0 - decay),
            false => self.present + inflow * dt,
        };
    }
}

/// One row of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub quantity: &'static str,
    /// How it is compared (peak-window mean, run maximum, ...).
    pub how: &'static str,
    pub predicted: f64,
    pub measured: f64,
    /// (measured - predicted) / predicted.
    pub error: f64,
    /// Whether the error counts towards the verdict.
    pub gated: bool,
}

impl Row {
    pub fn new(
        quantity: &'static str,
        how: &'static str,
        predicted: f64,
        measured: f64,
        gated: bool,
    ) -> Self {
        let error =
            if predicted.abs() > 0.0 { (measured - predicted) / predicted } else { f64::NAN };
        Row { quantity, how, predicted, measured, error, gated }
    }

    /// Within [`ERROR_MAX`] (a quantity not gated always is).
    pub fn passes(&self) -> bool {
        !self.gated || self.error.abs() <= ERROR_MAX
    }
}

/// One provisioned resource against the measured maximum.
#[derive(Debug, Clone, Serialize)]
pub struct Provision {
    pub resource: &'static str,
    pub provisioned: f64,
    pub measured_max: f64,
    /// measured / provisioned - 1 (positive: short).
    pub short: f64,
}

impl Provision {
    pub fn new(resource: &'static str, provisioned: f64, measured_max: f64) -> Self {
        Provision { resource, provisioned, measured_max, short: measured_max / provisioned - 1.0 }
    }

    /// The plan provisioned enough (within [`UNDER_MAX`]).
    pub fn passes(&self) -> bool {
        self.short <= UNDER_MAX
    }
}

/// Per-second rates between consecutive samples: `(t, rate of f)` at each
/// later sample.
pub fn rates(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> Vec<(f64, f64)> {
    samples
        .windows(2)
        .filter(|w| w[1].t_secs > w[0].t_secs)
        .map(|w| (w[1].t_secs, (f(&w[1]) - f(&w[0])) / (w[1].t_secs - w[0].t_secs)))
        .collect()
}

/// The times of the peak window among `predicted`.
pub fn peak_window(predicted: &[Predicted]) -> Vec<f64> {
    let highest = predicted.iter().map(|p| p.load.message_equivalents_per_sec).fold(0.0, f64::max);
    predicted
        .iter()
        .filter(|p| p.load.message_equivalents_per_sec >= PEAK_WINDOW_SHARE * highest)
        .map(|p| p.t_secs)
        .collect()
}

/// The mean of the values at times in `window` (within half a second).
pub fn window_mean(values: &[(f64, f64)], window: &[f64]) -> f64 {
    let picked: Vec<f64> = values
        .iter()
        .filter(|(t, _)| window.iter().any(|w| (w - t).abs() < 0.5))
        .map(|(_, value)| *value)
        .collect();
    picked.iter().sum::<f64>() / picked.len().max(1) as f64
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
