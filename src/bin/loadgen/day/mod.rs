//! `day`: a day of traffic from a population, compressed into a run of
//! minutes (see [`model`] for what the population does, [`population`]
//! for how it is registered, [`device`] for one device's day).
//!
//! The run maps `duration_secs` of real time onto `day_hours` of the
//! simulated day starting at `day_start_hour`: every rate of the model is
//! multiplied by the compression (`day_hours * 3600 / duration_secs`), and
//! so are session lengths divided by it. Seeded: one seed offers the same
//! schedule of sessions and sends twice (what the server answers, and when,
//! is the run's).
//!
//! Reports what it offered and what it saw (totals, latency from the write
//! of live deliveries, the server's push counters) and a timeline of one
//! point per second, with a progress line while it runs.

pub mod device;
pub mod frames;
pub mod model;
pub mod options;
pub mod population;
pub mod stats;

use model::{hour_of, DailyCurve, Traffic};
use population::Population;
use serde::Serialize;
use stats::{DayStats, Percentiles, TimelinePoint, Totals};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// What a `day` run is asked to do.
pub struct DayArgs {
    pub server: SocketAddr,
    /// The server's admin listener (push counters), read at the end.
    pub admin: SocketAddr,
    pub threads: usize,
    pub traffic: Traffic,
    /// Real seconds the simulated span lasts.
    pub duration_secs: f64,
    /// Hour of the day the run starts at.
    pub day_start_hour: f64,
    /// Hours of the day the run covers.
    pub day_hours: f64,
    pub seed: u64,
    /// The server's process id, to read its RSS after registration.
    pub server_pid: Option<u32>,
    /// Set to the instant the simulated day starts (after registration),
    /// for a caller that samples the server beside the run.
    pub started: Arc<OnceLock<Instant>>,
}

/// How real time maps onto the simulated day.
#[derive(Debug, Clone, Copy)]
pub struct DayClock {
    /// The real instant of the run's start.
    pub start: Instant,
    /// Day-second at the start, and at the end.
    pub start_s: f64,
    pub end_s: f64,
    /// Day-seconds per real second.
    pub compression: f64,
}

impl DayClock {
    /// A run starting at `start`, covering `day_hours` from `start_hour`
    /// in `duration_secs`.
    pub fn new(start: Instant, start_hour: f64, day_hours: f64, duration_secs: f64) -> Self {
        assert!(duration_secs > 0.0 && day_hours > 0.0);
        let start_s = start_hour * 3600.0;
        let compression = day_hours * 3600.0 / duration_secs;
        Self { start, start_s, end_s: start_s + day_hours * 3600.0, compression }
    }

    /// The day-second `t_secs` real seconds into the run.
    pub fn day_s_at(&self, t_secs: f64) -> f64 {
        self.start_s + t_secs * self.compression
    }

    /// The day-second now.
    pub fn day_now_s(&self) -> f64 {
        self.day_s_at(self.start.elapsed().as_secs_f64())
    }

    /// The real instant of day-second `day_s` (the start, if earlier).
    pub fn instant_at(&self, day_s: f64) -> Instant {
        self.start + Duration::from_secs_f64(((day_s - self.start_s) / self.compression).max(0.0))
    }
}

/// What every device task of a run shares.
pub struct DayShared {
    pub server: SocketAddr,
    pub population: Population,
    pub traffic: Traffic,
    pub curve: DailyCurve,
    pub clock: DayClock,
    pub seed: u64,
    pub stats: DayStats,
}

/// The population as registered.
#[derive(Debug, Clone, Serialize)]
pub struct PopulationSummary {
    pub accounts: usize,
    pub devices: usize,
    pub linked_devices: usize,
    pub away_devices: usize,
    pub push_tokens: usize,
}

/// The server's push counters at the end of the run.
#[derive(Debug, Clone, Serialize)]
pub struct ServerPushes {
    pub sent: u64,
    pub failed: u64,
    pub coalesced: u64,
}

/// What a `day` run offered and saw.
#[derive(Debug, Serialize)]
pub struct DayResult {
    pub traffic: Traffic,
    pub seed: u64,
    pub duration_secs: f64,
    pub day_start_hour: f64,
    pub day_hours: f64,
    pub compression: f64,
    pub population: PopulationSummary,
    /// The server's RSS once the population was registered (with `server_pid`).
    pub server_rss_registered_bytes: Option<u64>,
    pub totals: Totals,
    /// Live deliveries, from the write.
    pub latency_from_write_us: Percentiles,
    /// Deliveries of queues drained after a reconnect (time away included).
    pub drained_latency_us: Percentiles,
    pub pushes: Option<ServerPushes>,
    pub timeline: Vec<TimelinePoint>,
}

/// How long after the day's end device tasks may take to finish.
const FINISH_GRACE: Duration = Duration::from_secs(15);

pub fn run(args: DayArgs) -> anyhow::Result<DayResult> {
    args.traffic.validate()?;
    crate::schedule::init_stamp_base();
    let population = crate::block_on(population::register(args.server, &args.traffic, args.seed))?;
    let summary = summarize_population(&population);
    let server_rss_registered_bytes = args.server_pid.and_then(crate::report::rss_bytes);
    eprintln!(
        "day: {} accounts, {} devices ({} linked, {} away, {} with push tokens)",
        summary.accounts,
        summary.devices,
        summary.linked_devices,
        summary.away_devices,
        summary.push_tokens
    );
    let start = Instant::now() + Duration::from_millis(200);
    let clock = DayClock::new(start, args.day_start_hour, args.day_hours, args.duration_secs);
    let curve = DailyCurve::new(args.traffic.peak_factor, args.traffic.peak_hour);
    let shared = Arc::new(DayShared {
        server: args.server,
        population,
        traffic: args.traffic.clone(),
        curve,
        clock,
        seed: args.seed,
        stats: DayStats::default(),
    });
    let _ = args.started.set(start);
    let finished = spawn_device_threads(&shared, args.threads.max(1));
    let timeline = follow(&shared, args.duration_secs);
    let deadline = Instant::now() + FINISH_GRACE;
    while finished.load(Ordering::Relaxed) < args.threads.max(1) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(DayResult {
        traffic: args.traffic,
        seed: args.seed,
        duration_secs: args.duration_secs,
        day_start_hour: args.day_start_hour,
        day_hours: args.day_hours,
        compression: clock.compression,
        population: summary,
        server_rss_registered_bytes,
        totals: shared.stats.totals(),
        latency_from_write_us: stats::percentiles(&shared.stats.live_latency),
        drained_latency_us: stats::percentiles(&shared.stats.drained_latency),
        pushes: crate::block_on(server_pushes(args.admin)).ok(),
        timeline,
    })
}

/// The population's shape.
fn summarize_population(population: &Population) -> PopulationSummary {
    let count = |keep: fn(&population::Device) -> bool| {
        population.devices.iter().filter(|d| keep(d)).count()
    };
    PopulationSummary {
        accounts: population.accounts.len(),
        devices: population.devices.len(),
        linked_devices: count(|d| d.device_id != 1),
        away_devices: count(|d| d.away),
        push_tokens: count(|d| d.token),
    }
}

/// One thread per `threads`, each running the device tasks whose index is
/// its number modulo `threads`; the counter returned counts finished threads.
fn spawn_device_threads(shared: &Arc<DayShared>, threads: usize) -> Arc<AtomicUsize> {
    let finished = Arc::new(AtomicUsize::new(0));
    for thread in 0..threads {
        let (shared, finished) = (shared.clone(), finished.clone());
        std::thread::spawn(move || {
            crate::cores::pin_thread(thread);
            crate::block_on(async move {
                let devices = shared.population.devices.len();
                let tasks: Vec<_> = (thread..devices)
                    .step_by(threads)
                    .map(|index| monoio::spawn(device::run_device(shared.clone(), index)))
                    .collect();
                for task in tasks {
                    task.await;
                }
            });
            finished.fetch_add(1, Ordering::Relaxed);
        });
    }
    finished
}

/// Takes a timeline point every second until the day ends, with a
/// progress line.
fn follow(shared: &DayShared, duration_secs: f64) -> Vec<TimelinePoint> {
    let clock = &shared.clock;
    let mut progress = crate::report::Progress::new("day", duration_secs.ceil() as u64);
    let mut timeline = Vec::new();
    let mut next = clock.start + Duration::from_secs(1);
    loop {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        let t_secs = clock.start.elapsed().as_secs_f64();
        let (latency_us_p50, latency_us_p99) = shared.stats.take_interval_latency();
        let stats = &shared.stats;
        timeline.push(TimelinePoint {
            t_secs,
            day_hour: hour_of(clock.day_s_at(t_secs)),
            connected: DayStats::get(&stats.connected),
            sends_offered: DayStats::get(&stats.sends_offered),
            sends_ok: DayStats::get(&stats.sends_ok),
            deliveries_live: DayStats::get(&stats.deliveries_live),
            deliveries_drained: DayStats::get(&stats.deliveries_drained),
            latency_us_p50,
            latency_us_p99,
        });
        progress.set((t_secs.floor() as u64).min(duration_secs.ceil() as u64));
        if t_secs >= duration_secs {
            progress.finish(duration_secs.ceil() as u64);
            return timeline;
        }
        next += Duration::from_secs(1);
    }
}

/// The server's push counters (`/metrics` on the admin listener).
async fn server_pushes(admin: SocketAddr) -> std::io::Result<ServerPushes> {
    let mut conn = crate::client::HttpConn::connect_plain(admin)?;
    let (_, body) = conn.request("GET", "/metrics", b"").await?;
    let text = String::from_utf8_lossy(&body);
    Ok(ServerPushes {
        sent: crate::push::metric(&text, "push_apns_sent_total"),
        failed: crate::push::metric(&text, "push_failed_total"),
        coalesced: crate::push::metric(&text, "push_coalesced_total"),
    })
}

/// The human summary of a day result.
pub fn summarize(result: &DayResult) {
    let t = &result.totals;
    let l = &result.latency_from_write_us;
    eprintln!(
        "day: {:.0} h of the day in {:.0} s ({:.0}x); offered {} sends ({} sealed), {} sync copies, \
         {} typing, {} READ receipts; answered ok {} sends, {} sync, {} typing, {} receipts; \
         {} failed, {} skipped, {} unanswered at close",
        result.day_hours, result.duration_secs, result.compression, t.sends_offered, t.sealed_offered,
        t.sync_offered, t.typing_offered, t.read_receipts_offered, t.sends_ok, t.sync_ok, t.typing_ok,
        t.read_receipts_ok, t.requests_failed, t.requests_skipped, t.unanswered_at_close
    );
    eprintln!(
        "day: saw {} live and {} drained deliveries of {} addressed, {} DELIVERY and {} READ receipts, \
         {} typing; {} connects ({} failed, at most {} at once); live latency from the write \
         p50 {} us, p99 {} us, p99.9 {} us, max {} us",
        t.deliveries_live, t.deliveries_drained, t.envelopes_addressed, t.delivery_receipts_seen,
        t.read_receipts_seen, t.typing_seen, t.connects, t.connect_failures, t.connected_max,
        l.p50, l.p99, l.p999, l.max
    );
    if let Some(pushes) = &result.pushes {
        eprintln!(
            "day: the server pushed {} ({} failed, {} coalesced)",
            pushes.sent, pushes.failed, pushes.coalesced
        );
    }
}
