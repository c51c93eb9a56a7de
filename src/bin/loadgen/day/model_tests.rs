use super::*;

/// The planner's worked example (tuning/CAPACITY.md).
pub fn example() -> Traffic {
    Traffic {
        accounts: 1_600_000,
        linked_share: 0.25,
        concurrent: 0.30,
        away_share: 0.05,
        messages_per_day: 100.0,
        peak_factor: 4.0,
        content_bytes: 512.0,
        sealed_share: 0.5,
        read_receipt_share: 0.5,
        typing_share: 0.3,
        push_share: 1.0,
        session_minutes: 10.0,
        peak_hour: 20.0,
    }
}

#[test]
fn the_daily_curve_has_mean_one_and_the_asked_peak() {
    for peak_factor in [1.0, 1.5, 2.0, 4.0, 8.0, 16.0] {
        let curve = DailyCurve::new(peak_factor, 20.0);
        let steps = 24 * 60;
        let mean =
            (0..steps).map(|step| curve.activity(step as f64 * 24.0 / steps as f64)).sum::<f64>()
                / steps as f64;
        assert!((mean - 1.0).abs() < 1e-9, "p {peak_factor}: mean {mean}");
        assert!((curve.activity(20.0) - peak_factor).abs() < 1e-9, "p {peak_factor}");
        assert!((curve.peak_factor() - peak_factor).abs() < 1e-9);
        assert!(curve.activity(8.0) <= 1.0 + 1e-12, "twelve hours off the peak is quiet");
    }
    // p = 4: k solves e^k / I0(k) = 4 (k = 2.8548..., I0(k) = 4.3427...).
    let curve = DailyCurve::new(4.0, 0.0);
    assert!((curve.k - 2.8548).abs() < 1e-3, "k {}", curve.k);
}

#[test]
fn bessel_i0_matches_tabulated_values() {
    assert_eq!(bessel_i0(0.0), 1.0);
    assert!((bessel_i0(1.0) - 1.266_065_877_752_008).abs() < 1e-12);
    assert!((bessel_i0(5.0) - 27.239_871_823_604_44).abs() < 1e-9);
}

#[test]
fn hand_computed_rates_of_the_worked_example() {
    let traffic = example();
    assert_eq!(traffic.validate(), Ok(()));
    assert_eq!(traffic.linked_accounts(), 400_000);
    assert_eq!(traffic.devices(), 2_000_000);
    let curve = DailyCurve::new(4.0, 20.0);
    // 1.6 M accounts x 100 a day x 4 / 86,400 s = 7,407.4 sends/s at the peak.
    assert!((traffic.sends_per_sec(&curve, 20.0) - 7_407.407).abs() < 1e-2);
    // Online at the peak: 2 M x 0.30 = 600,000 devices, each sending
    // 7,407.4 / 600,000 = 0.012346 per second.
    assert!((traffic.sends_per_online_device_sec() - 0.012_345_68).abs() < 1e-8);
    assert!((traffic.online_share(&curve, 20.0) - 0.30).abs() < 1e-12);
    // Present devices: 95 %, of which 0.30 / 0.95 = 31.6 % online at the peak;
    // hazard = 0.3158 / (0.6842 x 600 s) = 7.692e-4 per second.
    assert!((traffic.connect_hazard(&curve, 20.0) - 7.692_3e-4).abs() < 1e-7);
}

#[test]
fn out_of_range_fields_are_named() {
    type Spoil = fn(&mut Traffic);
    let cases: [(Spoil, &str); 7] = [
        (|t| t.concurrent = 1.5, "--concurrent"),
        (|t| t.linked_share = -0.1, "--linked-share"),
        (|t| t.away_share = 0.8, "--concurrent"),
        (|t| t.peak_factor = 0.5, "--peak-factor"),
        (|t| t.messages_per_day = 0.0, "--messages-per-day"),
        (|t| t.content_bytes = 8.0, "--content-bytes"),
        (|t| t.accounts = 1, "--accounts"),
    ];
    for (spoil, field) in cases {
        let mut traffic = example();
        spoil(&mut traffic);
        assert_eq!(traffic.validate().map_err(|e| e.field), Err(field));
    }
}

#[test]
fn drawn_sessions_keep_the_online_share_on_the_curve() {
    let traffic = Traffic { session_minutes: 20.0, ..example() };
    let curve = DailyCurve::new(traffic.peak_factor, traffic.peak_hour);
    // 4,000 present devices simulated from 0 h to 24 h; the share online at
    // 20 h (peak) and at 8 h (trough) against the model.
    let (devices, mut online_at_peak, mut online_at_trough) = (4_000, 0, 0);
    for device in 0..devices {
        let mut rng = Rng::new(7, device);
        let mut at_s = 0.0;
        let mut online = rng.chance(traffic.online_share_of_present(&curve, 0.0));
        let mut intervals = Vec::new();
        while at_s < DAY_SECS {
            if !online {
                match traffic.next_connect_s(&curve, at_s, DAY_SECS, &mut rng) {
                    Some(next_s) => at_s = next_s,
                    None => break,
                }
            }
            let end_s = at_s + rng.exponential(traffic.session_secs());
            intervals.push((at_s, end_s));
            at_s = end_s;
            online = false;
        }
        let online_at =
            |hour: f64| intervals.iter().any(|(a, b)| *a <= hour * 3600.0 && hour * 3600.0 < *b);
        online_at_peak += online_at(20.0) as u32;
        online_at_trough += online_at(8.0) as u32;
    }
    let peak = online_at_peak as f64 / devices as f64;
    let trough = online_at_trough as f64 / devices as f64;
    let expected_peak = traffic.online_share_of_present(&curve, 20.0);
    let expected_trough = traffic.online_share_of_present(&curve, 8.0);
    assert!((peak - expected_peak).abs() < 0.03, "peak {peak} against {expected_peak}");
    assert!((trough - expected_trough).abs() < 0.02, "trough {trough} against {expected_trough}");
}

#[test]
fn one_seed_draws_one_sequence_and_sizes_keep_their_mean() {
    let (mut a, mut b, mut c) = (Rng::new(42, 3), Rng::new(42, 3), Rng::new(42, 4));
    let first: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
    assert_eq!(first, (0..8).map(|_| b.next_u64()).collect::<Vec<_>>());
    assert_ne!(first, (0..8).map(|_| c.next_u64()).collect::<Vec<_>>());
    let mut rng = Rng::new(1, 0);
    let draws = 200_000;
    let sizes: Vec<usize> = (0..draws).map(|_| rng.content_bytes(512.0)).collect();
    let mean = sizes.iter().sum::<usize>() as f64 / draws as f64;
    assert!((mean - 512.0).abs() < 5.0, "mean {mean}");
    assert!(sizes.iter().all(|size| (CONTENT_BYTES_MIN..=CONTENT_BYTES_MAX).contains(size)));
    assert!((0..1000).all(|_| rng.below(3) < 3));
}
