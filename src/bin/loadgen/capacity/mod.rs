//! `capacity`: a capacity plan read from measured figures, and with
//! `--verify` the plan checked on this box (`scripts/capacity` wraps it).
//!
//! - [`figures`]: the figures of a `scripts/bench-capacity` results file;
//! - [`curve`]: server CPU by load, interpolated between measured points;
//! - [`load`]: what a population asks of a server at an hour of the day;
//! - [`plan`]: that load's peak as cores, RAM, disk, open files, pushes;
//! - [`print`]: the plan as text, each line with the figure behind it;
//! - [`verify`]: the scaled-down day run against a fresh server, sampled,
//!   and compared with the plan.
//!
//! Hostile inputs (a share above 1, a negative count, a missing figures
//! file) get one line on stderr and exit code 2; a verify run that misses
//! its targets exits 1.

pub mod curve;
pub mod figures;
pub mod load;
pub mod plan;
pub mod print;
pub mod verify;

use crate::day::options::TrafficOptions;
use load::PushWindows;
use plan::PlanInputs;
use std::path::PathBuf;

/// The `capacity` command's options.
#[derive(clap::Args, Debug, Clone)]
pub struct CapacityOptions {
    /// Registered accounts of the deployment.
    #[arg(long, default_value_t = 1_600_000, allow_negative_numbers = true)]
    pub accounts: u64,
    #[command(flatten)]
    pub traffic: TrafficOptions,
    /// Days an away device stays away, on average (at most the retention).
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
    pub away_days: f64,
    /// Retention of undelivered envelopes, days.
    #[arg(long, default_value_t = 30.0, allow_negative_numbers = true)]
    pub retention_days: f64,
    /// Share of the one-core maximum a shard may carry at the peak (see
    /// tuning/CAPACITY.md for why a quarter).
    #[arg(long, default_value_t = 0.25, allow_negative_numbers = true)]
    pub headroom: f64,
    /// The `scripts/bench-capacity` results file to read the figures from.
    #[arg(long, value_name = "FILE")]
    pub figures: PathBuf,
    /// Write the plan (and the verify run) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the verify run's time series for gnuplot to this file.
    #[arg(long, value_name = "FILE")]
    pub plot_data: Option<PathBuf>,
    #[command(flatten)]
    pub verify: verify::VerifyOptions,
}

impl CapacityOptions {
    /// The plan's inputs, or why they are refused.
    pub fn inputs(&self) -> Result<PlanInputs, String> {
        let traffic = self.traffic.traffic(self.accounts);
        traffic.validate().map_err(|error| error.to_string())?;
        if !(self.away_days >= 0.0 && self.away_days.is_finite()) {
            return Err("--away-days must be a number of days, 0 or more".into());
        }
        if !(self.retention_days > 0.0 && self.retention_days.is_finite()) {
            return Err("--retention-days must be above 0".into());
        }
        if !(self.headroom > 0.0 && self.headroom <= 1.0) {
            return Err("--headroom must be a fraction above 0 and at most 1".into());
        }
        let v = &self.verify;
        if !(5.0..=7_200.0).contains(&v.verify_secs) {
            return Err("--verify-secs must be from 5 to 7200".into());
        }
        if v.verify_load.is_some_and(|load| !(load > 0.0 && load <= 1.0)) {
            return Err("--verify-load must be a fraction above 0 and at most 1".into());
        }
        if v.verify_accounts.is_some_and(|accounts| accounts < 2) {
            return Err("--verify-accounts must be at least 2".into());
        }
        Ok(PlanInputs {
            traffic,
            away_days: self.away_days,
            retention_days: self.retention_days,
            headroom: self.headroom,
            ram_factor: 2.0,
            disk_factor: 2.0,
            push_windows: PushWindows::DEFAULT,
        })
    }
}

/// Plans (and verifies): the process's exit code.
pub fn run(options: &CapacityOptions) -> anyhow::Result<i32> {
    let inputs = options.inputs().unwrap_or_else(|error| crate::refuse(&error));
    let figures = figures::Figures::read(&options.figures)
        .unwrap_or_else(|error| crate::refuse(&error.to_string()));
    let planned = plan::plan(&inputs, &figures);
    print!("{}", print::plan_text(&inputs, &planned, &figures));
    let mut json = serde_json::json!({"inputs": inputs, "figures": figures, "plan": planned});
    let mut code = 0;
    if options.verify.verify {
        let verified = verify::run(&inputs, &figures, &options.verify)?;
        println!();
        print!("{}", verify::report::text(&verified));
        if let Some(path) = &options.plot_data {
            verify::report::write_plot_data(&verified, path)?;
        }
        code = if verified.passed { 0 } else { 1 };
        json["verify"] = serde_json::json!(verified);
    }
    if let Some(path) = &options.out {
        std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
    }
    Ok(code)
}
