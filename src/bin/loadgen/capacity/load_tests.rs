use super::*;
pub use crate::day::model::tests::example;

fn close(value: f64, expected: f64, what: &str) {
    assert!(
        (value - expected).abs() <= expected.abs() * 1e-6 + 1e-9,
        "{what}: {value} against {expected}"
    );
}

#[test]
fn hand_computed_peak_of_the_worked_example() {
    let traffic = example();
    let curve = DailyCurve::new(4.0, 20.0);
    let load = at(&traffic, &curve, 20.0, PushWindows::DEFAULT);
    // S = 1.6 M x 100 x 4 / 86,400 = 7,407.407 sends/s.
    close(load.sends_per_sec, 7_407.407_407, "sends");
    // Items: recipients' copies S x 2 M / 1.6 M = 9,259.259; sync copies
    // S x 800 k / 2 M = 2,962.963; READ receipts S x 0.5 x 0.95 = 3,518.519,
    // each to 1 + 800 k / 2 M = 1.4 devices = 4,925.926. Sum 17,148.148.
    close(load.items_per_sec, 17_148.148_148, "items");
    // With typing (S x 0.3 = 2,222.222): 19,370.370 message-equivalents.
    close(load.message_equivalents_per_sec, 19_370.370_370, "message-equivalents");
    // 70 % of devices are offline at the peak: 12,003.704 stored per second.
    close(load.stored_per_sec, 12_003.703_704, "stored");
    close(load.connections, 600_000.0, "connections");
    // 600,000 sessions of 600 s: 1,000 connects per second.
    close(load.connects_per_sec, 1_000.0, "connects");
    // Alerts: 1.04 M present offline primaries, gaps of 1,300 s, 4.7335
    // alerts per gap; 80,000 away primaries at 1 / (60 + 216) s.
    close(load.alert_pushes_per_sec, 4_076.679_535, "alerts");
    close(load.background_pushes_per_sec, 1_022.864_367, "background");
}

#[test]
fn push_renewals_reach_their_limits() {
    // No window: every arrival is pushed.
    close(alerts_per_gap(0.01, 0.0, 500.0), 5.0, "no window");
    close(stationary_rate(0.01, 0.0), 0.01, "no window, stationary");
    // An endless window: at most one alert per gap, if anything arrives
    // (probability rate x gap / (rate x gap + 1) = 5 / 6).
    close(alerts_per_gap(0.01, 1e12, 500.0), 5.0 / 6.0, "endless window");
    // Hand-computed: rate 0.1/s, window 60 s, gap 100 s: a = 10/11,
    // b = e^-0.6 = 0.548812; a / (1 - a b) = 0.909091 / 0.501080 = 1.814262.
    close(alerts_per_gap(0.1, 60.0, 100.0), 1.814_262, "hand-computed");
    assert_eq!(alerts_per_gap(0.0, 60.0, 100.0), 0.0);
    assert_eq!(stationary_rate(0.0, 60.0), 0.0);
}

#[test]
fn backlogs_are_what_away_and_offline_devices_accumulate() {
    let traffic = example();
    let curve = DailyCurve::new(4.0, 20.0);
    // Away devices (100,000) each hold the mean item rate per device
    // (17,148.148 / 4 / 2 M = 0.00214352/s, 185.2 items a day: messages,
    // sync copies and receipts) for two days: 37,040,000.
    let two_days = away_backlog(&traffic, &curve, 2.0 * 86_400.0, PushWindows::DEFAULT);
    close(two_days, 37_040_000.0, "away backlog");
    // Present offline devices at the peak: 1.9 M - 600 k = 1.3 M, each
    // with 17,148.148 / 2 M per second over a 1,300 s gap: 14,490,185.
    let present = present_backlog(&traffic, &curve, 20.0, PushWindows::DEFAULT);
    close(present, 14_490_185.19, "present backlog");
}
