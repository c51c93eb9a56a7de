//! The rows of a verify run's table, from the predictions, the server's
//! samples, the load generator's timeline and the end state (see
//! [`super::compare`] for how each quantity is compared).

use super::compare::{peak_window, rates, window_mean, Predicted, Provision, Row};
use super::sampler::Sample;
use crate::capacity::plan::Plan;
use crate::day::stats::TimelinePoint;

/// What was measured once the day was over.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct End {
    /// Items stored, by the server's counters, after the last session.
    pub stored_items: f64,
    /// The stopped server's directory after a full compaction, bytes.
    pub disk_at_rest_bytes: f64,
    /// What the model says the directory should hold then.
    pub disk_at_rest_predicted: f64,
    /// Items the model says are stored then.
    pub stored_predicted: f64,
}

/// Everything measured that a row reads.
pub struct Measured<'a> {
    pub samples: &'a [Sample],
    pub timeline: &'a [TimelinePoint],
    pub end: End,
}

/// The largest of `f` over `samples` (0 without samples).
fn max_of(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    samples.iter().map(f).fold(0.0, f64::max)
}

/// The measured series a row reads, `(t, value)` each.
struct Series {
    sends: Vec<(f64, f64)>,
    latency: Vec<(f64, f64)>,
    connections: Vec<(f64, f64)>,
    cpu: Vec<(f64, f64)>,
    pushes: Vec<(f64, f64)>,
}

impl Series {
    fn of(measured: &Measured) -> Self {
        let offered: Vec<(f64, f64)> =
            measured.timeline.iter().map(|p| (p.t_secs, p.sends_offered as f64)).collect();
        Series {
            sends: offered
                .windows(2)
                .map(|w| (w[1].0, (w[1].1 - w[0].1) / (w[1].0 - w[0].0)))
                .collect(),
            latency: measured
                .timeline
                .iter()
                .filter(|p| p.latency_us_p99 > 0)
                .map(|p| (p.t_secs, p.latency_us_p99 as f64))
                .collect(),
            connections: measured.samples.iter().map(|s| (s.t_secs, s.websockets_open)).collect(),
            cpu: rates(measured.samples, |s| s.cpu_secs),
            pushes: rates(measured.samples, |s| s.pushes_total),
        }
    }
}

/// The comparison rows.
pub fn rows(predicted: &[Predicted], measured: &Measured) -> Vec<Row> {
    let window = peak_window(predicted);
    let mean = |f: fn(&Predicted) -> f64| {
        window_mean(&predicted.iter().map(|p| (p.t_secs, f(p))).collect::<Vec<_>>(), &window)
    };
    let most = |f: fn(&Predicted) -> f64| predicted.iter().map(f).fold(0.0, f64::max);
    let (series, samples, end) = (Series::of(measured), measured.samples, measured.end);
    let measured_mean = |values: &[(f64, f64)]| window_mean(values, &window);
    let peak = "peak-window mean";
    vec![
        Row::new(
            "sends offered/s",
            peak,
            mean(|p| p.load.sends_per_sec),
            measured_mean(&series.sends),
            true,
        ),
        Row::new(
            "connections",
            peak,
            mean(|p| p.load.connections),
            measured_mean(&series.connections),
            true,
        ),
        Row::new("CPU, cores busy", peak, mean(|p| p.cpu_cores), measured_mean(&series.cpu), true),
        Row::new(
            "RSS, bytes",
            "run maximum",
            most(|p| p.rss_bytes),
            max_of(samples, |s| s.rss_bytes),
            true,
        ),
        Row::new(
            "open files",
            "run maximum",
            most(|p| p.open_files),
            max_of(samples, |s| s.open_files),
            true,
        ),
        Row::new("stored items", "end of the day", end.stored_predicted, end.stored_items, true),
        Row::new(
            "disk at rest, bytes",
            "compacted after",
            end.disk_at_rest_predicted,
            end.disk_at_rest_bytes,
            true,
        ),
        Row::new(
            "pushes/s",
            peak,
            mean(|p| p.load.pushes_per_sec()),
            measured_mean(&series.pushes),
            true,
        ),
        Row::new(
            "latency p99, us",
            "peak-window mean (curve; not planned)",
            mean(|p| p.latency_p99_us),
            measured_mean(&series.latency),
            false,
        ),
    ]
}

/// The plan's provisions against the run's maxima.
pub fn provisions(
    plan: &Plan,
    push_per_sec: f64,
    predicted: &[Predicted],
    samples: &[Sample],
) -> Vec<Provision> {
    let window = peak_window(predicted);
    let cpu = window_mean(&rates(samples, |s| s.cpu_secs), &window);
    let pushes =
        rates(samples, |s| s.pushes_total).iter().map(|(_, rate)| *rate).fold(0.0, f64::max);
    vec![
        Provision::new("shard cores", plan.shards as f64, cpu),
        Provision::new("RAM", plan.ram_bytes, max_of(samples, |s| s.rss_bytes)),
        Provision::new("disk", plan.disk_bytes, max_of(samples, |s| s.disk_bytes)),
        Provision::new("open files", plan.open_files, max_of(samples, |s| s.open_files)),
        Provision::new("push worker, pushes/s", push_per_sec, pushes),
    ]
}
