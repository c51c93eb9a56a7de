//! The command-line options of a population's traffic, shared by `day`
//! and `capacity` so a plan and the run that checks it read the same
//! flags the same way. `--accounts` is each command's own (its default
//! differs: a run's population against a deployment's).

use super::model::Traffic;

/// What the population does (see [`super::model`]); defaults are the
/// worked example of tuning/CAPACITY.md.
#[derive(clap::Args, Debug, Clone)]
pub struct TrafficOptions {
    /// Share of accounts with a linked second device (a desktop).
    #[arg(long, default_value_t = 0.25, allow_negative_numbers = true)]
    pub linked_share: f64,
    /// Share of all devices connected at the peak.
    #[arg(long, default_value_t = 0.30, allow_negative_numbers = true)]
    pub concurrent: f64,
    /// Share of devices away for days (queues grow; pushed, coalesced).
    #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
    pub away_share: f64,
    /// Messages each device receives per day, on average.
    #[arg(long, default_value_t = 100.0, allow_negative_numbers = true)]
    pub messages_per_day: f64,
    /// Peak rate over the day's average rate (1 to 16).
    #[arg(long, default_value_t = 4.0, allow_negative_numbers = true)]
    pub peak_factor: f64,
    /// Mean content bytes of a message (sizes are drawn around it).
    #[arg(long, default_value_t = 512.0, allow_negative_numbers = true)]
    pub content_bytes: f64,
    /// Share of sends that are sealed sender.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    pub sealed_share: f64,
    /// Share of received messages answered with a READ receipt.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    pub read_receipt_share: f64,
    /// Share of sends preceded by a typing indicator.
    #[arg(long, default_value_t = 0.3, allow_negative_numbers = true)]
    pub typing_share: f64,
    /// Share of primary devices with a push token.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub push_share: f64,
    /// Mean online session, in minutes of the day.
    #[arg(long, default_value_t = 10.0, allow_negative_numbers = true)]
    pub session_minutes: f64,
    /// Hour of the day's peak.
    #[arg(long, default_value_t = 20.0, allow_negative_numbers = true)]
    pub peak_hour: f64,
}

impl TrafficOptions {
    /// The traffic of `accounts` accounts (not yet validated).
    pub fn traffic(&self, accounts: u64) -> Traffic {
        Traffic {
            accounts,
            linked_share: self.linked_share,
            concurrent: self.concurrent,
            away_share: self.away_share,
            messages_per_day: self.messages_per_day,
            peak_factor: self.peak_factor,
            content_bytes: self.content_bytes,
            sealed_share: self.sealed_share,
            read_receipt_share: self.read_receipt_share,
            typing_share: self.typing_share,
            push_share: self.push_share,
            session_minutes: self.session_minutes,
            peak_hour: self.peak_hour,
        }
    }
}

/// The `day` scenario's own options.
#[derive(clap::Args, Debug, Clone)]
pub struct DayOptions {
    /// Registered accounts.
    #[arg(long, default_value_t = 2_000, allow_negative_numbers = true)]
    pub accounts: u64,
    #[command(flatten)]
    pub traffic: TrafficOptions,
    /// Real seconds the simulated span lasts.
    #[arg(long, default_value_t = 120.0)]
    pub duration_secs: f64,
    /// Hour of the day the run starts at.
    #[arg(long, default_value_t = 0.0)]
    pub day_start_hour: f64,
    /// Hours of the day the run covers.
    #[arg(long, default_value_t = 24.0)]
    pub day_hours: f64,
    /// Seed of every draw (sessions, sends, sizes, receipts).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Server process id: its RSS once the population is registered.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

impl DayOptions {
    /// Checks what the traffic model does not: the run's span.
    pub fn validate(&self) -> Result<Traffic, String> {
        let traffic = self.traffic.traffic(self.accounts);
        traffic.validate().map_err(|error| error.to_string())?;
        if !(self.duration_secs >= 1.0 && self.duration_secs <= 86_400.0) {
            return Err("--duration-secs must be from 1 to 86400".into());
        }
        if !(self.day_hours > 0.0 && self.day_hours <= 240.0) {
            return Err("--day-hours must be above 0 and at most 240".into());
        }
        if !(0.0..24.0).contains(&self.day_start_hour) {
            return Err("--day-start-hour must be from 0 to below 24".into());
        }
        Ok(traffic)
    }
}
