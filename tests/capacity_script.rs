//! `scripts/capacity`: the worked example of tuning/CAPACITY.md, and
//! hostile arguments refused with exit code 2 and a message.

use std::process::Command;

fn capacity(args: &[&str]) -> (Option<i32>, String, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/capacity");
    let output =
        Command::new("bash").arg(script).args(args).output().expect("run scripts/capacity");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[test]
fn worked_example_matches_the_guide() {
    let (code, stdout, stderr) = capacity(&[
        "--devices",
        "2000000",
        "--concurrent",
        "0.30",
        "--messages-per-day",
        "100",
        "--peak-factor",
        "4",
        "--content-bytes",
        "512",
        "--offline-share",
        "0.5",
        "--offline-days",
        "2",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    for expected in [
        "connections at peak     600000",
        "peak messages/s         9259",
        "cores                   2",
        "RAM (2x headroom)       10.2 GB",
        "stored envelopes        200000000",
        "410.4 GB",
        ">= 601000",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in\n{stdout}");
    }
}

#[test]
fn hostile_arguments_are_refused() {
    for (args, message) in [
        (vec!["--devices", "abc"], "needs a non-negative number"),
        (vec!["--devices", "-5"], "needs a non-negative number"),
        (vec!["--concurrent", "2"], "fractions must be at most 1"),
        (vec!["--offline-share", "1.5"], "fractions must be at most 1"),
        (vec!["--bogus", "1"], "unknown option --bogus"),
        (vec!["--devices"], "needs a value"),
        (vec!["--devices", "1e9"], "needs a non-negative number"),
    ] {
        let (code, _, stderr) = capacity(&args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
