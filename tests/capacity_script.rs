//! `scripts/capacity`: the worked example of tuning/CAPACITY.md planned
//! from round figures (`tests/fixtures/capacity-figures.json`), hostile
//! arguments refused with one line and exit code 2, and a tiny `--verify`
//! (a few seconds of a compressed day against a real server on loopback)
//! that must produce its comparison with sane numbers. No timing is
//! asserted: whether this box meets the plan is the committed run's
//! question, not CI's.

use std::path::Path;
use std::process::{Command, Output};

const FIGURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/capacity-figures.json");

/// Runs `scripts/capacity` with the test build's binaries.
fn capacity(args: &[&str]) -> Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/capacity");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_loadgen")).parent().expect("binary directory");
    Command::new("bash")
        .arg(script)
        .args(args)
        .env("SWITCHBOARD_BIN_DIR", bin_dir)
        .output()
        .expect("run scripts/capacity")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn worked_example_is_planned_from_the_figures() {
    let output = capacity(&["--figures", FIGURES]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    // The hand-computed values of the planner's unit tests
    // (src/bin/loadgen/capacity/plan_tests.rs), as printed: each line by
    // its first word, then the values it must hold, in order.
    for (first, values) in [
        ("connections", &["600,000"][..]),
        ("message-equivalents", &["19,370"]),
        ("connects", &["1,000"]),
        ("pushes", &["5,100"]),
        ("shards", &["1", "1", "24,370/s per shard"]),
        ("cores", &["0.84 busy", "2"]),
        ("RAM", &["3.5 GB", "7.1 GB (x2)"]),
        ("stored", &["51,530,185"]),
        ("disk", &["42.9 GB", "86.1 GB (x2 + WAL)", "833 B per item"]),
        ("open", &["600,660", "ulimit -n 601,660"]),
        ("push", &["5,100/s", "64 % of one"]),
    ] {
        let line = stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(first) && line.contains(values[0]))
            .unwrap_or_else(|| panic!("no {first} line with {:?} in\n{stdout}", values[0]));
        let mut rest = line;
        for value in values {
            let at =
                rest.find(value).unwrap_or_else(|| panic!("{value:?} not in order in {line:?}"));
            rest = &rest[at + value.len()..];
        }
    }
    // Every resource line names the figure behind it.
    for figure in [
        "closed_loop",
        "server_cpu_us_per_reconnect",
        "idle/server_rss_start_bytes",
        "backlog_kept",
        "push/result/push/per_sec",
    ] {
        assert!(stdout.contains(figure), "no {figure} in\n{stdout}");
    }
}

#[test]
fn hostile_arguments_get_one_line_and_exit_2() {
    let missing = "/nonexistent/capacity.json";
    for (args, message) in [
        (vec!["--concurrent", "2"], "--concurrent must be a fraction from 0 to 1"),
        (vec!["--linked-share", "1.5"], "--linked-share must be a fraction from 0 to 1"),
        (vec!["--away-share", "-0.1"], "--away-share must be a fraction from 0 to 1"),
        (vec!["--messages-per-day", "-3"], "--messages-per-day must be above 0"),
        (vec!["--accounts", "-5"], "invalid value '-5' for '--accounts"),
        (vec!["--headroom", "0"], "--headroom must be a fraction above 0"),
        (vec!["--peak-factor", "40"], "--peak-factor must be from 1 to 16"),
        (vec!["--verify-load", "2"], "--verify-load must be a fraction"),
        (vec!["--bogus", "1"], "unexpected argument '--bogus'"),
        (vec!["--figures", missing], "figures file /nonexistent/capacity.json"),
        (vec!["--figures", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")], "is not JSON"),
        (
            vec!["--figures", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schemas.json")],
            "has no usable",
        ),
    ] {
        let mut full = args.clone();
        if !full.contains(&"--figures") {
            full.extend(["--figures", FIGURES]);
        }
        let output = capacity(&full);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: one line: {stderr}");
    }
}

#[test]
fn a_tiny_verify_produces_a_sane_comparison() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("verify.json");
    let output = capacity(&[
        "--figures",
        FIGURES,
        "--verify",
        "--verify-secs",
        "8",
        "--verify-accounts",
        "40",
        "--away-share",
        "0.2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    // 0: within the targets, 1: not; either way the comparison is there.
    assert!(matches!(output.status.code(), Some(0 | 1)), "{stdout}\n{stderr}");
    for quantity in [
        "sends offered/s",
        "connections",
        "CPU, cores busy",
        "RSS, bytes",
        "open files",
        "stored items",
        "disk at rest, bytes",
        "pushes/s",
        "verdict:",
    ] {
        assert!(stdout.contains(quantity), "no {quantity:?} in\n{stdout}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("--out written")).expect("JSON");
    let verify = &json["verify"];
    assert_eq!(verify["traffic"]["accounts"], 40);
    let rows = verify["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 9);
    for row in rows {
        for key in ["predicted", "measured"] {
            let value = row[key].as_f64().unwrap_or(f64::NAN);
            assert!(value.is_finite() && value >= 0.0, "{key} of {row}");
        }
        if row["gated"] == true {
            assert!(
                row["predicted"].as_f64().unwrap() > 0.0,
                "a planned quantity is predicted: {row}"
            );
        }
    }
    let measured = |quantity: &str| {
        rows.iter().find(|row| row["quantity"] == quantity).expect(quantity)["measured"]
            .as_f64()
            .unwrap()
    };
    for quantity in
        ["sends offered/s", "CPU, cores busy", "RSS, bytes", "open files", "disk at rest, bytes"]
    {
        assert!(measured(quantity) > 0.0, "{quantity} was measured");
    }
    assert!(verify["samples"].as_array().expect("samples").len() >= 4, "sampled every second");
    assert_eq!(verify["passed"].as_bool(), Some(output.status.code() == Some(0)));
    assert!(dir.path().join("verify.dat").exists(), "plot data beside --out");
}
