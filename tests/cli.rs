//! The `switchboard` command line: help, the `config` subcommand, and every
//! way a bad flag, environment variable or config file makes `serve` refuse
//! to start (non-zero exit, stderr naming the field or file).

mod common;

use common::{Server, ServerOptions, TEST_LIMITS};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FLAGS: [&str; 10] = [
    "--config",
    "--listen",
    "--admin-listen",
    "--shards",
    "--data-dir",
    "--durability",
    "--registration-token",
    "--log",
    "--io-driver",
    "--no-pin",
];

/// How a process ended.
#[derive(Debug)]
struct Outcome {
    /// Exit code (`None` if killed by a signal).
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn failed(&self) -> bool {
        self.code.is_some_and(|code| code != 0)
    }
}

/// Runs the binary with `args` and `env` (all other SWITCHBOARD_* variables
/// removed) in a scratch working directory; waits at most 20 s, killing it
/// and failing the test if it is still running then.
fn run(args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let cwd = tempfile::tempdir().unwrap();
    let mut command = Command::new(common::binary());
    command
        .args(args)
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars() {
        if name.starts_with("SWITCHBOARD_") {
            command.env_remove(name);
        }
    }
    command.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE");
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start switchboard");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    let Some(status) = status else {
        panic!("switchboard {args:?} still running after 20 s\nstdout: {stdout}\nstderr: {stderr}");
    };
    Outcome { code: status.code(), stdout, stderr }
}

/// `serve` on a free port and `data_dir`, plus `extra`.
fn serve(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Outcome {
    let data_dir = data_dir.to_str().unwrap();
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--no-pin", "--data-dir", data_dir];
    args.extend_from_slice(extra);
    run(&args, env)
}

/// `serve` with a config file holding `toml`; must refuse to start.
fn serve_with_config(toml: &str) -> (Outcome, std::path::PathBuf, tempfile::TempDir) {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("switchboard.toml");
    std::fs::write(&path, toml).unwrap();
    let outcome = serve(
        &temp.path().join("data"),
        &["--shards", "2", "--config", path.to_str().unwrap()],
        &[],
    );
    (outcome, path, temp)
}

fn assert_refused(outcome: &Outcome, needles: &[&str]) {
    assert!(outcome.failed(), "expected a non-zero exit: {outcome:?}");
    for needle in needles {
        assert!(
            outcome.stderr.contains(needle),
            "stderr does not mention {needle:?}: {}",
            outcome.stderr
        );
    }
    assert!(!outcome.stdout.contains("listening"), "it started: {}", outcome.stdout);
}

#[test]
fn help_lists_the_commands_and_serve_help_every_flag() {
    let outcome = run(&["--help"], &[]);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    for word in ["serve", "config", "Usage"] {
        assert!(outcome.stdout.contains(word), "--help lacks {word}");
    }
    for command in ["serve", "config"] {
        let outcome = run(&[command, "--help"], &[]);
        assert_eq!(outcome.code, Some(0), "{command} --help: {outcome:?}");
        for flag in FLAGS {
            assert!(
                outcome.stdout.contains(flag),
                "{command} --help does not mention {flag}: {}",
                outcome.stdout
            );
        }
        // Each flag also names its environment variable.
        for variable in ["SWITCHBOARD_LISTEN", "SWITCHBOARD_SHARDS", "SWITCHBOARD_NO_PIN"] {
            assert!(outcome.stdout.contains(variable), "{command} --help lacks {variable}");
        }
    }
}

#[test]
fn top_level_help_mentions_every_flag() {
    let outcome = run(&["--help"], &[]);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    for flag in FLAGS {
        assert!(
            outcome.stdout.contains(flag),
            "--help does not mention {flag}: {}",
            outcome.stdout
        );
    }
}

#[test]
fn config_prints_the_defaults_as_valid_toml() {
    let outcome = run(&["config"], &[]);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    assert!(outcome.stdout.contains("listen = \"127.0.0.1:8080\""), "{}", outcome.stdout);
    let config = switchboard::config::Config::from_toml(&outcome.stdout).expect("valid TOML");
    assert_eq!(config, switchboard::config::Config::default());
    config.validate().expect("printed config validates");
    // Also parses as plain TOML with a [limits] table.
    let value: toml::Table = outcome.stdout.parse().expect("plain TOML");
    assert!(value["limits"].is_table());
}

#[test]
fn config_file_errors_name_the_field_or_the_file() {
    let cases: [(&str, &str, &[&str]); 10] = [
        ("unknown field", "listne = \"127.0.0.1:1\"\n", &["listne"]),
        ("wrong type", "[limits]\nframe_bytes_max = \"big\"\n", &["frame_bytes_max"]),
        ("zero ring slots", "[limits]\nring_slots = 0\n", &["limits.ring_slots"]),
        (
            "ping not shorter than idle",
            "[limits]\nping_interval_ms = 5000\nidle_timeout_ms = 5000\n",
            &["limits.ping_interval_ms"],
        ),
        ("unknown limit", "[limits]\nframe_bytes_maxx = 1\n", &["frame_bytes_maxx"]),
        ("ring size not a power of two", "io_uring_entries = 1000\n", &["io_uring_entries"]),
        ("unknown io driver", "io_driver = \"kqueue\"\n", &["io_driver"]),
        ("receipt window too long", "receipt_window_ms = 10001\n", &["receipt_window_ms"]),
        ("persist delay too long", "persist_delay_ms = 10001\n", &["persist_delay_ms"]),
        ("negative receipt window", "receipt_window_ms = -5\n", &["receipt_window_ms"]),
    ];
    for (what, toml, needles) in cases {
        let (outcome, _path, _temp) = serve_with_config(toml);
        assert!(outcome.failed(), "{what}: {outcome:?}");
        assert_refused(&outcome, needles);
    }
}

#[test]
fn unparseable_or_missing_config_file_is_named() {
    let (outcome, path, _temp) = serve_with_config("this is = = not [toml\n");
    assert_refused(&outcome, &[path.to_str().unwrap()]);

    let temp = tempfile::tempdir().unwrap();
    let missing = temp.path().join("no-such-config.toml");
    let outcome = serve(
        &temp.path().join("data"),
        &["--shards", "2", "--config", missing.to_str().unwrap()],
        &[],
    );
    assert_refused(&outcome, &["no-such-config.toml", "cannot read config file"]);
    assert!(!temp.path().join("data").exists(), "data directory created despite the bad config");
}

#[test]
fn bad_flag_values_are_refused_with_a_clear_message() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let data = data_dir.to_str().unwrap();
    let base = ["serve", "--no-pin", "--data-dir", data];
    let cases: [(&[&str], &[&str]); 5] = [
        (&["--listen", "notanaddress", "--shards", "2"], &["notanaddress", "--listen"]),
        (&["--listen", "127.0.0.1:0", "--shards", "abc"], &["abc", "--shards"]),
        (
            &["--listen", "127.0.0.1:0", "--shards", "2", "--durability", "fast"],
            &["fast", "--durability", "sync, group, none"],
        ),
        (&["--listen", "127.0.0.1:0", "--shards", "1000"], &["shards", "at most 256"]),
        (
            &["--listen", "127.0.0.1:0", "--shards", "2", "--io-driver", "kqueue"],
            &["kqueue", "--io-driver", "auto, io_uring, epoll"],
        ),
    ];
    for (flags, needles) in cases {
        let args: Vec<&str> = base.iter().chain(flags.iter()).copied().collect();
        let outcome = run(&args, &[]);
        assert_refused(&outcome, needles);
    }
    assert!(!data_dir.exists(), "data directory created by a refused start");
}

#[test]
fn bad_environment_value_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let data = data.to_str().unwrap();
    let outcome = run(
        &["serve", "--listen", "127.0.0.1:0", "--no-pin", "--data-dir", data],
        &[("SWITCHBOARD_SHARDS", "abc")],
    );
    assert_refused(&outcome, &["abc", "--shards"]);
    let outcome = run(&["config"], &[("SWITCHBOARD_DURABILITY", "fast")]);
    assert_refused(&outcome, &["fast"]);
    let outcome = run(&["config"], &[("SWITCHBOARD_LISTEN", "nowhere")]);
    assert_refused(&outcome, &["nowhere"]);
}

#[test]
fn flags_win_over_environment_which_wins_over_the_file() {
    let outcome =
        run(&["config", "--listen", "127.0.0.1:10"], &[("SWITCHBOARD_LISTEN", "127.0.0.1:9")]);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    assert!(outcome.stdout.contains("listen = \"127.0.0.1:10\""), "{}", outcome.stdout);
    assert!(!outcome.stdout.contains("127.0.0.1:9\""), "{}", outcome.stdout);

    let outcome = run(&["config"], &[("SWITCHBOARD_LISTEN", "127.0.0.1:9")]);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    assert!(outcome.stdout.contains("listen = \"127.0.0.1:9\""), "{}", outcome.stdout);

    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("c.toml");
    std::fs::write(&file, "shards = 4\nlog = \"warn\"\n").unwrap();
    let file = file.to_str().unwrap();
    let from_file = run(&["config", "--config", file], &[]);
    assert!(from_file.stdout.contains("shards = 4\n"), "{from_file:?}");
    assert!(from_file.stdout.contains("log = \"warn\""), "{from_file:?}");
    let from_env = run(&["config", "--config", file], &[("SWITCHBOARD_SHARDS", "5")]);
    assert!(from_env.stdout.contains("shards = 5\n"), "{from_env:?}");
    assert!(from_env.stdout.contains("log = \"warn\""), "{from_env:?}");
    let from_flag =
        run(&["config", "--config", file, "--shards", "6"], &[("SWITCHBOARD_SHARDS", "5")]);
    assert!(from_flag.stdout.contains("shards = 6\n"), "{from_flag:?}");
    // The config file itself can come from the environment.
    let via_env = run(&["config"], &[("SWITCHBOARD_CONFIG", file)]);
    assert!(via_env.stdout.contains("shards = 4\n"), "{via_env:?}");
}

#[test]
fn data_dir_refuses_a_different_shard_count() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let options = || ServerOptions {
        shards: 2,
        data_dir: Some(data_dir.clone()),
        config_toml: TEST_LIMITS.to_string(),
        ..ServerOptions::default()
    };
    let mut server = Server::start_with(options());
    let account = server.register();
    server.kill();
    assert!(common::data_dir_exists(&data_dir));

    let outcome = serve(&data_dir, &["--shards", "3"], &[]);
    assert_refused(&outcome, &["created with 2 shards", "--shards 2", data_dir.to_str().unwrap()]);

    // The refusal left the data intact: 2 shards still start and know the account.
    let server = Server::start_with(options());
    let (status, _) = server.request("GET", "/v1/devices", Some(&account), b"");
    assert_eq!(status, 200);
}

/// Regression (found by the hostile-input review): flags given with no
/// command must run `serve`, as the help says.
#[test]
fn flags_without_a_command_run_serve() {
    use std::io::BufRead;
    let temp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--listen", "127.0.0.1:0", "--shards", "1", "--no-pin", "--data-dir"])
        .arg(temp.path().join("data"))
        .env("SWITCHBOARD_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("switchboard listening on 127.0.0.1:"), "{line:?}");
}
