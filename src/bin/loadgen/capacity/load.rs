//! What a population ([`Traffic`]) asks of a server at one hour of the
//! day: rates per second of the day and the state they hold (connections,
//! stored envelopes). Pure arithmetic from the model of
//! [`crate::day::model`], the same model the `day` scenario draws from, so
//! a plan and the run that checks it agree on what the traffic is.
//!
//! Items are what the server delivers or stores for one device: a
//! recipient's copy of a message, a sync copy, a READ receipt's copy for
//! each device of the sender's account. A message-equivalent is one item
//! or one typing indicator: the unit CPU per message was measured in (one
//! send to one device, delivered, acknowledged, its DELIVERY receipt
//! windowed). That typing, sync copies and READ receipts cost what a
//! message costs is a guess the verify run checks, not a measurement.
//!
//! Pushes follow the server's rules (`src/push/schedule.rs`): an alert for
//! an urgent envelope stored for an offline device with a token, at most
//! one per alert window, the window reopened by a connect; a background
//! push for a non-urgent item (receipts, sync copies), at most one per
//! background interval. Arrivals are taken as Poisson and offline gaps as
//! exponential (as the `day` scenario draws them); after-close pushes are
//! left out (sessions end with their queues drained).

use crate::day::model::{DailyCurve, Traffic, DAY_SECS};

/// Windows of the push rules, in seconds of the day.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PushWindows {
    /// One alert per device per this (`push.alert_coalesce_ms`).
    pub alert_secs: f64,
    /// One background push per device per this (`push.background_interval_ms`).
    pub background_secs: f64,
}

impl PushWindows {
    /// The server's defaults (`switchboard config`).
    pub const DEFAULT: PushWindows = PushWindows { alert_secs: 60.0, background_secs: 1200.0 };
}

/// The traffic at one hour, per second of the day.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Load {
    pub hour: f64,
    /// Devices connected.
    pub connections: f64,
    /// Sends (one to each device of the recipient's account).
    pub sends_per_sec: f64,
    /// Items of every kind for devices (recipients', sync and receipt copies).
    pub items_per_sec: f64,
    /// Of those, READ receipt copies (no content).
    pub receipt_items_per_sec: f64,
    pub typing_per_sec: f64,
    /// Items and typing indicators: what CPU per message is read for.
    pub message_equivalents_per_sec: f64,
    /// Items stored because their device was offline.
    pub stored_per_sec: f64,
    /// Sessions opened (and as many closed).
    pub connects_per_sec: f64,
    pub alert_pushes_per_sec: f64,
    pub background_pushes_per_sec: f64,
}

impl Load {
    /// Pushes of both kinds.
    pub fn pushes_per_sec(&self) -> f64 {
        self.alert_pushes_per_sec + self.background_pushes_per_sec
    }
}

/// The traffic of `traffic` at `hour` on `curve`, with the push `windows`.
pub fn at(traffic: &Traffic, curve: &DailyCurve, hour: f64, windows: PushWindows) -> Load {
    let (accounts, devices) = (traffic.accounts as f64, traffic.devices() as f64);
    let linked_devices = 2.0 * traffic.linked_accounts() as f64;
    let online = traffic.online_share(curve, hour);
    let sends = traffic.sends_per_sec(curve, hour);
    // Each send reaches every device of a random account: 1 + linked share.
    let recipient_copies = sends * devices / accounts;
    // A sender in a linked account sends its other device a sync copy.
    let sync = sends * linked_devices / devices;
    // Present primaries read a share; the receipt reaches every device of
    // the sender's account.
    let receipts = sends * traffic.read_receipt_share * (1.0 - traffic.away_share);
    let receipt_items = receipts * (1.0 + linked_devices / devices);
    let items = recipient_copies + sync + receipt_items;
    let typing = sends * traffic.typing_share;
    let hazard = traffic.connect_hazard(curve, hour);
    let present_online = traffic.online_share_of_present(curve, hour);
    let pushes = Pushes {
        token_primaries: accounts * traffic.push_share,
        away_share: traffic.away_share,
        present_offline: 1.0 - present_online,
        gap_secs: 1.0 / hazard,
        urgent_per_device: sends / accounts,
        quiet_per_device: (sync + receipt_items) / devices,
    };
    Load {
        hour,
        connections: devices * online,
        sends_per_sec: sends,
        items_per_sec: items,
        receipt_items_per_sec: receipt_items,
        typing_per_sec: typing,
        message_equivalents_per_sec: items + typing,
        stored_per_sec: items * (1.0 - online),
        connects_per_sec: devices * online / traffic.session_secs(),
        alert_pushes_per_sec: pushes.alerts(windows.alert_secs),
        background_pushes_per_sec: pushes.background(windows.background_secs),
    }
}

/// What the push rates are read from.
struct Pushes {
    /// Primary devices with a token (linked devices have none).
    token_primaries: f64,
    away_share: f64,
    /// Share of present devices offline now.
    present_offline: f64,
    /// Mean offline gap of a present device, seconds.
    gap_secs: f64,
    /// Urgent envelopes per device per second, and non-urgent items.
    urgent_per_device: f64,
    quiet_per_device: f64,
}

impl Pushes {
    /// Alerts per second: present devices offline (each gap opens with the
    /// window reopened by the last connect) and away devices (stationary).
    fn alerts(&self, window_secs: f64) -> f64 {
        let present = self.token_primaries * (1.0 - self.away_share) * self.present_offline;
        let away = self.token_primaries * self.away_share;
        let per_gap = alerts_per_gap(self.urgent_per_device, window_secs, self.gap_secs);
        present * per_gap / self.gap_secs
            + away * stationary_rate(self.urgent_per_device, window_secs)
    }

    /// Background pushes per second: the window is not reopened by a
    /// connect, so each device's offline arrivals are a thinned stream.
    fn background(&self, window_secs: f64) -> f64 {
        let present = self.token_primaries * (1.0 - self.away_share);
        let away = self.token_primaries * self.away_share;
        let offline_rate = self.quiet_per_device * self.present_offline;
        present * stationary_rate(offline_rate, window_secs)
            + away * stationary_rate(self.quiet_per_device, window_secs)
    }
}

/// Pushes per second of one device receiving Poisson arrivals at `rate`
/// with at most one push per `window_secs`: a renewal of the window plus
/// the wait for the next arrival.
pub fn stationary_rate(rate: f64, window_secs: f64) -> f64 {
    if rate <= 0.0 {
        return 0.0;
    }
    1.0 / (window_secs + 1.0 / rate)
}

/// Expected alerts in one offline gap of exponential length (mean
/// `gap_secs`) that starts with the window open, arrivals Poisson at
/// `rate`: the k-th alert comes at `(k - 1) * window + Gamma(k, rate)`,
/// before the gap ends with probability `a^k * b^(k - 1)` where
/// `a = rate * gap / (rate * gap + 1)` and `b = exp(-window / gap)`; the
/// sum is `a / (1 - a * b)`.
pub fn alerts_per_gap(rate: f64, window_secs: f64, gap_secs: f64) -> f64 {
    if rate <= 0.0 || gap_secs <= 0.0 {
        return 0.0;
    }
    let a = rate * gap_secs / (rate * gap_secs + 1.0);
    let b = (-window_secs / gap_secs).exp();
    a / (1.0 - a * b)
}

/// Items stored for devices away since `elapsed_secs` of the day ago, at
/// the mean activity: what an away device's queue holds after that long.
pub fn away_backlog(
    traffic: &Traffic,
    curve: &DailyCurve,
    away_secs: f64,
    windows: PushWindows,
) -> f64 {
    let mean = at(traffic, curve, traffic.peak_hour, windows).items_per_sec / curve.peak_factor();
    let devices = traffic.devices() as f64;
    devices * traffic.away_share * (mean / devices) * away_secs
}

/// Items stored for present devices that are offline at `hour`: each holds
/// what arrived since its gap began (a mean gap, for exponential gaps).
pub fn present_backlog(
    traffic: &Traffic,
    curve: &DailyCurve,
    hour: f64,
    windows: PushWindows,
) -> f64 {
    let load = at(traffic, curve, hour, windows);
    let devices = traffic.devices() as f64;
    let offline_present = devices * (1.0 - traffic.away_share) - load.connections;
    let gap_secs = 1.0 / traffic.connect_hazard(curve, hour);
    offline_present * (load.items_per_sec / devices) * gap_secs
}

/// Seconds in a day, for callers converting rates.
pub const SECS_PER_DAY: f64 = DAY_SECS;

#[cfg(test)]
#[path = "load_tests.rs"]
pub mod tests;
