//! `capacity --verify`: checks a plan on this box. The population is
//! scaled down until its peak fits one core of this machine at
//! `--verify-load` of the one-core maximum (every share, rate and size of
//! the traffic kept; only the account count changes) and its day is
//! compressed into `--verify-secs`. A fresh server runs on core 0 with the
//! push windows compressed alike and an in-process APNs stand-in; the
//! `day` scenario drives it from core 1 while [`sampler`] reads the server
//! every second; then the server is stopped and its directory compacted.
//! The plan of the scaled, compressed population is compared with what was
//! measured ([`compare`], [`verdict`]).
//!
//! Time in the compressed run is real seconds; the model reads it as the
//! same population with every rate multiplied by the compression and every
//! duration (sessions, push windows) divided by it.

pub mod compare;
pub mod report;
pub mod sampler;
pub mod server;
pub mod verdict;

use super::figures::Figures;
use super::load::PushWindows;
use super::plan::{self, Plan, PlanInputs};
use crate::day::model::{DailyCurve, Traffic, DAY_SECS};
use compare::{Model, Predicted, Provision, Row};
use sampler::Sample;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The options of a verify run.
#[derive(clap::Args, Debug, Clone)]
pub struct VerifyOptions {
    /// Check the plan on this box (see `scripts/capacity --help`).
    #[arg(long)]
    pub verify: bool,
    /// Real seconds the compressed day lasts.
    #[arg(long, default_value_t = 240.0)]
    pub verify_secs: f64,
    /// The run's peak, as a share of the one-core maximum (default: the
    /// plan's headroom, so the run carries what the plan puts on a shard).
    #[arg(long, allow_negative_numbers = true)]
    pub verify_load: Option<f64>,
    /// Accounts of the run, instead of scaling to `--verify-load`.
    #[arg(long)]
    pub verify_accounts: Option<u64>,
    /// The server binary (default: `switchboard` beside this one).
    #[arg(long)]
    pub switchboard: Option<PathBuf>,
    /// Seed of the day's draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// What a verify run found.
#[derive(Debug, serde::Serialize)]
pub struct Verified {
    pub machine: crate::report::Machine,
    /// The run's population (the accounts scaled to this box).
    pub traffic: Traffic,
    pub verify_secs: f64,
    pub compression: f64,
    /// The plan of the scaled, compressed population.
    pub plan: Plan,
    pub rows: Vec<Row>,
    pub provisions: Vec<Provision>,
    pub passed: bool,
    pub end: verdict::End,
    pub samples: Vec<Sample>,
    pub predicted: Vec<Predicted>,
    pub day: crate::day::DayResult,
}

/// The run's population: `inputs`' traffic with its accounts scaled so its
/// peak is `verify_load` of the one-core maximum once compressed by
/// `compression`, and its peak connections fit `files` open files.
pub fn scaled(
    inputs: &PlanInputs,
    figures: &Figures,
    options: &VerifyOptions,
    compression: f64,
    files: f64,
) -> Traffic {
    let traffic = &inputs.traffic;
    let full = plan::plan(inputs, figures);
    let per_account =
        full.per_shard_rate * full.shards as f64 / traffic.accounts as f64 * compression;
    let load = options.verify_load.unwrap_or(inputs.headroom);
    // Just under the share, so the run's plan is one shard.
    let wanted = 0.98 * load * figures.curve.max_rate() / per_account;
    let fitting = files / (traffic.concurrent * traffic.devices() as f64 / traffic.accounts as f64);
    let accounts = options.verify_accounts.map_or(wanted.min(fitting), |accounts| accounts as f64);
    Traffic { accounts: (accounts.round() as u64).max(2), ..traffic.clone() }
}

/// `traffic` as the model reads the compressed run: rates times
/// `compression`, sessions divided by it.
pub fn compressed(traffic: &Traffic, compression: f64) -> Traffic {
    Traffic {
        messages_per_day: traffic.messages_per_day * compression,
        session_minutes: traffic.session_minutes / compression,
        ..traffic.clone()
    }
}

/// Runs the verify (see the module documentation).
pub fn run(
    inputs: &PlanInputs,
    figures: &Figures,
    options: &VerifyOptions,
) -> anyhow::Result<Verified> {
    let compression = DAY_SECS / options.verify_secs;
    let files = raise_open_files()? - 2_000.0;
    let traffic = scaled(inputs, figures, options, compression, files);
    let model_traffic = compressed(&traffic, compression);
    let windows = PushWindows {
        alert_secs: inputs.push_windows.alert_secs / compression,
        background_secs: inputs.push_windows.background_secs / compression,
    };
    let run_inputs = PlanInputs {
        traffic: model_traffic.clone(),
        away_days: options.verify_secs / DAY_SECS,
        push_windows: windows,
        ..inputs.clone()
    };
    let plan = plan::plan(&run_inputs, figures);
    eprintln!(
        "verify: {} accounts ({} devices), the day in {:.0} s ({:.0}x); plan of the run: {} shard, {:.2} cores busy at the peak",
        traffic.accounts, traffic.devices(), options.verify_secs, compression, plan.shards, plan.cpu_busy_cores
    );
    let measured = measure(&traffic, options, windows)?;
    let model = Model {
        traffic: &model_traffic,
        curve: DailyCurve::new(traffic.peak_factor, traffic.peak_hour),
        windows,
        figures,
        start_hour: 0.0,
        hours_per_sec: compression / 3600.0,
    };
    Ok(judge(traffic, options, compression, plan, figures, &model, measured))
}

/// What the run measured: samples, the end sample, the directory at rest,
/// and the day's own result.
struct Measurement {
    samples: Vec<Sample>,
    end: Sample,
    disk_at_rest_bytes: f64,
    day: crate::day::DayResult,
}

/// Starts the stand-in and the server, runs the day beside the sampler,
/// then stops and compacts.
fn measure(
    traffic: &Traffic,
    options: &VerifyOptions,
    windows: PushWindows,
) -> anyhow::Result<Measurement> {
    let work = WorkDir::create()?;
    let work = &work.0;
    let binary = match &options.switchboard {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("switchboard"),
    };
    let pin = crate::cores::num_cores() >= 2;
    let ms = |secs: f64| (secs * 1000.0).round().max(1.0) as u64;
    let apns = crate::push::spawn_standin()?;
    let mut server = server::Server::start(&server::ServerSpec {
        binary: &binary,
        work_dir: work,
        apns,
        alert_coalesce_ms: ms(windows.alert_secs),
        background_interval_ms: ms(windows.background_secs),
        after_close_delay_ms: ms(windows.alert_secs),
        pin,
    })?;
    if pin {
        let _ = crate::cores::set_pin_cores(vec![1]);
    }
    let (started, stop) = (Arc::new(OnceLock::new()), Arc::new(AtomicBool::new(false)));
    let target = || sampler::Target {
        pid: server.pid,
        admin: server.admin,
        data_dir: server.data_dir.clone(),
    };
    let sampling = sampler::spawn(target(), started.clone(), stop.clone());
    let day = crate::day::run(crate::day::DayArgs {
        server: server.listen,
        admin: server.admin,
        threads: 1,
        traffic: traffic.clone(),
        duration_secs: options.verify_secs,
        day_start_hour: 0.0,
        day_hours: 24.0,
        seed: options.seed,
        server_pid: Some(server.pid),
        started: started.clone(),
    });
    // Sessions closing at the end of the day settle on the server.
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let samples = sampling.join().map_err(|_| anyhow::anyhow!("the sampler panicked"))?;
    let start = *started.get().ok_or_else(|| anyhow::anyhow!("the day never started"))?;
    let end = sampler::read(&target(), start)
        .ok_or_else(|| anyhow::anyhow!("the server was gone at the end"))?;
    let day = day?;
    server.stop();
    let compacted = crate::compact::compact(&server.data_dir)?;
    Ok(Measurement { samples, end, disk_at_rest_bytes: compacted.bytes_after as f64, day })
}

/// The run's temporary directory (config, key, data), removed when
/// dropped, whichever way the run ends.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!("switchboard-verify-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Predictions at every sample and at the end, the rows and the verdict.
fn judge(
    traffic: Traffic,
    options: &VerifyOptions,
    compression: f64,
    plan: Plan,
    figures: &Figures,
    model: &Model,
    measured: Measurement,
) -> Verified {
    let mut times: Vec<f64> = measured.samples.iter().map(|s| s.t_secs).collect();
    times.push(measured.end.t_secs.max(times.last().copied().unwrap_or(0.0) + 0.01));
    let mut predicted = model.predict(&times);
    let at_end = predicted.pop().unwrap_or_default();
    let bytes_per_item = plan::bytes_per_item(figures, traffic.content_bytes, &plan.peak);
    let end = verdict::End {
        stored_items: measured.end.stored_items,
        disk_at_rest_bytes: measured.disk_at_rest_bytes,
        stored_predicted: at_end.stored_items,
        disk_at_rest_predicted: at_end.stored_items * bytes_per_item
            + figures.disk_bytes_empty.value,
    };
    let timeline = &measured.day.timeline;
    let rows =
        verdict::rows(&predicted, &verdict::Measured { samples: &measured.samples, timeline, end });
    let provisions =
        verdict::provisions(&plan, figures.push_per_sec.value, &predicted, &measured.samples);
    let passed = rows.iter().all(Row::passes) && provisions.iter().all(Provision::passes);
    Verified {
        // The cores online, not the ones this pinned process may use.
        machine: crate::report::Machine {
            cores: crate::cores::num_cores(),
            ..crate::report::machine()
        },
        traffic,
        verify_secs: options.verify_secs,
        compression,
        plan,
        rows,
        provisions,
        passed,
        end,
        samples: measured.samples,
        predicted,
        day: measured.day,
    }
}

/// Raises this process's open-file limit to its hard limit (the run's
/// connections are one descriptor each, here and in the server, which
/// inherits it): the limit now.
fn raise_open_files() -> anyhow::Result<f64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit write/read the struct we pass; no other memory.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            anyhow::bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    Ok(limit.rlim_cur as f64)
}
