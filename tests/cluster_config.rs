//! Cluster mode's settings on the real command line: the flags and their
//! `SWITCHBOARD_*` variables, `switchboard config` printing the `[cluster]`
//! section only when cluster mode is on, and every bad value refused with
//! one line naming the field or flag, before anything starts.
//!
//! Exit codes follow the rest of the command line: 2 when `clap` cannot
//! parse a value (not a number, not an address), 1 when a parsed value is
//! refused by validation (`Error: invalid config field ...`).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use switchboard::config::{ClusterConfig, Config};

const CLUSTER_FLAGS: [(&str, &str); 5] = [
    ("--cluster-nats", "SWITCHBOARD_CLUSTER_NATS"),
    ("--node-id", "SWITCHBOARD_NODE_ID"),
    ("--cluster-listen", "SWITCHBOARD_CLUSTER_LISTEN"),
    ("--cluster-advertise", "SWITCHBOARD_CLUSTER_ADVERTISE"),
    ("--partitions", "SWITCHBOARD_PARTITIONS"),
];

/// The three settings cluster mode cannot run without.
const ON: [&str; 7] = [
    "config",
    "--cluster-nats",
    "nats://127.0.0.1:4222",
    "--node-id",
    "a",
    "--cluster-listen",
    "127.0.0.1:7001",
];

/// How a run ended: exit code, stdout, stderr.
type Outcome = (Option<i32>, String, String);

/// Runs the binary with `args` and only the `SWITCHBOARD_*` variables in
/// `env`, in a scratch directory; kills it and fails after 20 s.
fn run(args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let cwd = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.args(args).current_dir(cwd.path()).stdin(Stdio::null());
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("SWITCHBOARD_")) {
        command.env_remove(name);
    }
    command.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE").envs(env.iter().copied());
    let mut child = command.spawn().expect("start switchboard");
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().unwrap()));
    let stderr = read_all(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("switchboard {args:?} still running after 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), stdout.join().unwrap(), stderr.join().unwrap())
}

/// The cluster section `switchboard config` printed (it must succeed).
fn printed_cluster(args: &[&str], env: &[(&str, &str)]) -> ClusterConfig {
    let (code, stdout, stderr) = run(args, env);
    assert_eq!(code, Some(0), "{args:?}: {stderr}");
    assert!(stdout.contains("\n[cluster]\n"), "{stdout}");
    let config = Config::from_toml(&stdout).expect("printed TOML parses");
    config.validate().expect("printed config validates");
    config.cluster.expect("cluster section")
}

#[test]
fn help_lists_every_cluster_flag_and_its_variable() {
    for args in [&["--help"][..], &["serve", "--help"], &["config", "--help"]] {
        let (code, stdout, _) = run(args, &[]);
        assert_eq!(code, Some(0), "{args:?}");
        for (flag, variable) in CLUSTER_FLAGS {
            assert!(stdout.contains(flag), "{args:?} lacks {flag}: {stdout}");
            assert!(stdout.contains(variable), "{args:?} lacks {variable}: {stdout}");
        }
    }
}

#[test]
fn config_prints_the_cluster_section_only_when_on() {
    let (code, stdout, _) = run(&["config"], &[]);
    assert_eq!(code, Some(0));
    assert!(!stdout.contains("cluster"), "cluster mode is off by default: {stdout}");

    let cluster = printed_cluster(&ON, &[]);
    assert_eq!(cluster.nats, ["nats://127.0.0.1:4222"]);
    assert_eq!((cluster.node_id.as_str(), cluster.partitions), ("a", 64));
    assert_eq!(cluster.listen, Some("127.0.0.1:7001".parse().unwrap()));
    assert_eq!((cluster.name.as_str(), cluster.advertise), ("switchboard", None));
}

#[test]
fn cluster_settings_come_from_the_environment_and_the_file() {
    let env = [
        ("SWITCHBOARD_CLUSTER_NATS", "nats://10.0.0.1:4222,tls://n2.example:4443"),
        ("SWITCHBOARD_NODE_ID", "node-2"),
        ("SWITCHBOARD_CLUSTER_LISTEN", "10.0.0.2:7001"),
        ("SWITCHBOARD_CLUSTER_ADVERTISE", "chat2.example:443"),
        ("SWITCHBOARD_PARTITIONS", "16"),
    ];
    let cluster = printed_cluster(&["config"], &env);
    assert_eq!(cluster.nats, ["nats://10.0.0.1:4222", "tls://n2.example:4443"]);
    assert_eq!((cluster.node_id.as_str(), cluster.partitions), ("node-2", 16));
    assert_eq!(cluster.advertise.as_deref(), Some("chat2.example:443"));

    // A file shared by every node; each node's id and listener from its flags.
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("cluster.toml");
    let shared =
        "[cluster]\nnats = [\"nats://127.0.0.1:4222\"]\nname = \"prod\"\npartitions = 256\n";
    std::fs::write(&file, shared).unwrap();
    let args = ["config", "--config", file.to_str().unwrap(), "--node-id", "c"];
    let cluster = printed_cluster(&args, &[("SWITCHBOARD_CLUSTER_LISTEN", "127.0.0.1:7003")]);
    assert_eq!((cluster.name.as_str(), cluster.node_id.as_str()), ("prod", "c"));
    assert_eq!(cluster.partitions, 256);
}

#[test]
fn bad_cluster_values_are_refused_in_one_line_naming_the_field() {
    let seventeen: Vec<String> = (1..=17).map(|n| format!("nats://127.0.0.1:{n}")).collect();
    let seventeen = seventeen.join(",");
    let huge_id = "a".repeat(100_000);
    let cases: [(&[&str], &[&str]); 12] = [
        (&["--node-id", "a"], &["`cluster.node_id`", "--node-id", "needs --cluster-nats"]),
        (&["--partitions", "16"], &["`cluster.partitions`", "needs --cluster-nats"]),
        (&["--cluster-nats", "nats://127.0.0.1:4222"], &["`cluster.node_id`", "required"]),
        (&[&ON[1..5], &["--cluster-listen", "127.0.0.1:8080"]].concat(), &["must differ"]),
        (&[&ON[1..5]].concat(), &["`cluster.listen`", "--cluster-listen"]),
        (&[&["--cluster-nats", "http://x:1"], &ON[3..]].concat(), &["nats:// or tls://"]),
        (&[&["--cluster-nats", "nats://a:1,nats://a:1"], &ON[3..]].concat(), &["listed twice"]),
        (&[&["--cluster-nats", seventeen.as_str()], &ON[3..]].concat(), &["1 to 16 NATS URLs"]),
        (
            &[&ON[1..3], &["--node-id", "N\u{f6}de_1"], &ON[5..]].concat(),
            &["`cluster.node_id`", "a-z"],
        ),
        (
            &[&ON[1..3], &["--node-id", huge_id.as_str()], &ON[5..]].concat(),
            &["`cluster.node_id`", "1 to 64"],
        ),
        (&[&ON[1..], &["--partitions", "100"]].concat(), &["`cluster.partitions`", "power"]),
        (&[&ON[1..], &["--partitions", "0"]].concat(), &["`cluster.partitions`", "power"]),
    ];
    for (flags, needles) in cases {
        let args: Vec<&str> = ["config"].iter().chain(flags).copied().collect();
        let (code, stdout, stderr) = run(&args, &[]);
        let shown: Vec<&str> = args.iter().take(8).map(|a| a.get(..40).unwrap_or(a)).collect();
        assert_eq!(code, Some(1), "{shown:?}: {stderr}");
        assert!(stdout.is_empty(), "{shown:?} printed a config: {stdout}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{shown:?}: one line: {stderr}");
        assert!(stderr.starts_with("Error: invalid config field `cluster."), "{stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "{shown:?}: no {needle:?} in {stderr}");
        }
    }
}

#[test]
fn unparseable_cluster_values_are_usage_errors() {
    let cases: [(&[&str], &str); 4] = [
        (&[&ON[..], &["--partitions", "abc"]].concat(), "--partitions"),
        (&[&ON[..], &["--partitions", "-1"]].concat(), "-1"),
        (&[&ON[..], &["--partitions", "99999999999"]].concat(), "--partitions"),
        (&[&ON[..5], &["--cluster-listen", "nowhere"]].concat(), "--cluster-listen"),
    ];
    for (args, needle) in cases {
        let (code, stdout, stderr) = run(args, &[]);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stdout.is_empty() && stderr.contains(needle), "{args:?}: {stderr}");
    }
    let (code, _, stderr) = run(&["config"], &[("SWITCHBOARD_PARTITIONS", "many")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("many"), "{stderr}");
}

#[test]
fn serve_refuses_bad_cluster_settings_before_touching_the_data_dir() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let data = data_dir.to_str().unwrap();
    let args = ["serve", "--listen", "127.0.0.1:0", "--no-pin", "--data-dir", data];
    let args = [&args[..], &ON[1..5]].concat();
    let (code, stdout, stderr) = run(&args, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stdout.contains("listening"), "it started: {stdout}");
    assert!(stderr.contains("`cluster.listen`"), "{stderr}");
    assert!(!data_dir.exists(), "data directory created by a refused start");

    let temp_file = temp.path().join("c.toml");
    std::fs::write(&temp_file, "[cluster]\nheartbeat_interval_ms = 8000\n").unwrap();
    let args = ["config", "--config", temp_file.to_str().unwrap()];
    let (code, _, stderr) = run(&[&args[..], &ON[1..]].concat(), &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("`cluster.heartbeat_interval_ms`"), "{stderr}");
}

#[test]
fn serve_without_its_nats_fails_clearly_and_a_cluster_directory_is_not_served_alone() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let data = data_dir.to_str().unwrap();
    let args = ["serve", "--listen", "127.0.0.1:0", "--no-pin", "--data-dir", data];
    // Nothing listens on the NATS port (a free one): start-up retries for
    // its bound, then exits 1 naming the URL, before touching the data dir.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("nats://{free}");
    let on = ["--cluster-nats", url.as_str(), "--node-id", "a", "--cluster-listen", "127.0.0.1:0"];
    let (code, stdout, stderr) = run(&[&args[..], &on[..]].concat(), &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stdout.contains("listening"), "it started: {stdout}");
    assert!(stderr.contains(&url), "{stderr}");
    assert!(!data_dir.exists(), "data directory created by a failed join");

    // A directory made for a cluster node is not served as a single box.
    std::fs::create_dir_all(&data_dir).unwrap();
    let identity = switchboard::cluster::identity::DataDirIdentity {
        cluster: "prod".into(),
        node_id: "node-a".parse().unwrap(),
        partitions: switchboard::cluster::partition::PartitionCount::DEFAULT,
    };
    switchboard::cluster::identity::check_or_create(&data_dir, &identity).unwrap();
    let (code, stdout, stderr) = run(&args, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stdout.contains("listening"), "it started: {stdout}");
    assert!(stderr.contains("node-a") && stderr.contains("prod"), "{stderr}");
}
