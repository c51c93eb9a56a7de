use super::*;
use crate::capacity::plan::tests::round_figures;
use crate::day::model::tests::example;

fn sample(t_secs: f64, cpu_secs: f64, pushes_total: f64) -> Sample {
    Sample { t_secs, cpu_secs, pushes_total, ..Sample::default() }
}

#[test]
fn errors_are_relative_to_the_prediction_and_gate_at_twenty_percent() {
    let row = Row::new("CPU, cores busy", "peak", 0.5, 0.59, true);
    assert!((row.error - 0.18).abs() < 1e-12);
    assert!(row.passes());
    let off = Row::new("CPU, cores busy", "peak", 0.5, 0.61, true);
    assert!(!off.passes(), "22 % off");
    let low = Row::new("pushes/s", "peak", 100.0, 79.0, true);
    assert!(!low.passes(), "21 % under counts too");
    assert!(Row::new("latency", "peak", 1.0, 5.0, false).passes(), "not gated");
    assert!(Row::new("x", "y", 0.0, 1.0, true).error.is_nan());
    assert!(!Row::new("x", "y", 0.0, 1.0, true).passes(), "nothing predicted is no pass");
}

#[test]
fn a_provision_fails_only_when_short_by_more_than_ten_percent() {
    assert!(Provision::new("RAM", 100.0, 109.0).passes());
    assert!(!Provision::new("RAM", 100.0, 111.0).passes());
    assert!((Provision::new("disk", 200.0, 50.0).short + 0.75).abs() < 1e-12);
}

#[test]
fn rates_and_windows_are_read_between_samples() {
    let samples = [sample(0.0, 10.0, 0.0), sample(1.0, 10.5, 40.0), sample(2.0, 11.25, 100.0)];
    assert_eq!(rates(&samples, |s| s.cpu_secs), vec![(1.0, 0.5), (2.0, 0.75)]);
    assert_eq!(rates(&samples, |s| s.pushes_total), vec![(1.0, 40.0), (2.0, 60.0)]);
    let values = [(1.0, 2.0), (2.0, 4.0), (3.0, 9.0)];
    assert_eq!(window_mean(&values, &[2.0, 3.0]), 6.5);
    assert_eq!(window_mean(&values, &[]), 0.0);
}

#[test]
fn a_flat_day_is_predicted_by_hand() {
    // Peak factor 1: the load is the same at every hour, so the backlogs
    // grow linearly. 1,000 accounts, 100 messages a day each, compressed
    // 864x (the day in 100 s): messages per day become 86,400 per account.
    let traffic = Traffic { accounts: 1_000, peak_factor: 1.0, ..example() };
    let compressed = super::super::compressed(&traffic, 864.0);
    let figures = round_figures();
    let model = Model {
        traffic: &compressed,
        curve: DailyCurve::new(1.0, 20.0),
        windows: PushWindows { alert_secs: 60.0 / 864.0, background_secs: 1200.0 / 864.0 },
        figures: &figures,
        start_hour: 0.0,
        hours_per_sec: 864.0 / 3600.0,
    };
    let predicted = model.predict(&[0.0, 10.0, 20.0]);
    // Sends: 1,000 x 86,400 / 86,400 = 1,000/s; items: 1,000 x 1,250/1,000
    // = 1,250 copies + 1,000 x 500/1,250 = 400 sync + 1,000 x 0.475 x 1.4
    // = 665 receipt items: 2,315/s. Away devices (5 %) keep 115.75/s.
    let load = predicted[1].load;
    assert!((load.sends_per_sec - 1_000.0).abs() < 1e-6);
    assert!((load.items_per_sec - 2_315.0).abs() < 1e-6, "{}", load.items_per_sec);
    let away_after_20_s = 0.05 * 2_315.0 * 20.0;
    // Present offline devices: 1,250 x 0.95 - 375 = 812.5, each filled at
    // 2,315 / 1,250 per second and drained at the connect hazard
    // h = (0.3 / 0.95) / (0.6842 x 600 / 864 s) = 0.66462/s: after 20 s
    // from empty, B = 1,504.75 / h x (1 - e^(-20 h)) = 2,264.088.
    let present = predicted[2].stored_items - away_after_20_s;
    assert!((present - 2_264.088).abs() < 0.01, "{present}");
    let steady = load::present_backlog(&compressed, &model.curve, predicted[2].hour, model.windows);
    assert!((present - steady).abs() / steady < 1e-4, "20 s is many gaps: at the steady state");
    // Written: 70 % of items are stored (offline devices) for 20 s.
    assert!((predicted[2].written_items - 0.7 * 2_315.0 * 20.0).abs() < 1e-6);
    // Connections: 1,250 devices x 0.3; open files add the 20 at start.
    assert!((predicted[0].load.connections - 375.0).abs() < 1e-9);
    assert!((predicted[0].open_files - 395.0).abs() < 1e-9);
    assert_eq!(peak_window(&predicted).len(), 3, "a flat day is all peak");
}
