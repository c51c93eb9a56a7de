//! The `[cluster]` section: defaults, merging flags over the file, and
//! every validation with hostile input, each error naming its field.

use super::*;
use crate::config::Config;

fn listen() -> SocketAddr {
    "127.0.0.1:8080".parse().unwrap()
}

fn admin() -> Option<SocketAddr> {
    Some("127.0.0.1:9090".parse().unwrap())
}

/// A valid section: one NATS server, node `a`, internal listener 7001.
fn valid() -> ClusterConfig {
    ClusterConfig {
        nats: vec!["nats://127.0.0.1:4222".into()],
        node_id: "a".into(),
        listen: Some("127.0.0.1:7001".parse().unwrap()),
        ..ClusterConfig::default()
    }
}

/// The field `cluster` names when refused (panics when accepted).
fn refused_field(cluster: &ClusterConfig) -> &'static str {
    match cluster.validate(listen(), admin()) {
        Err(ConfigError::Invalid { field, .. }) => field,
        other => panic!("{cluster:?} was not refused: {other:?}"),
    }
}

#[test]
fn off_by_default_and_the_printed_config_is_unchanged() {
    let config = Config::default();
    assert_eq!(config.cluster, None);
    assert!(!config.to_toml().contains("cluster"), "{}", config.to_toml());
    assert_eq!(Config::from_toml("").unwrap().cluster, None);
}

#[test]
fn a_valid_section_round_trips_with_its_defaults() {
    let config = Config { cluster: Some(valid()), ..Config::default() };
    config.validate().expect("valid");
    let text = config.to_toml();
    assert!(text.contains("[cluster]\n"), "{text}");
    assert!(text.contains("partitions = 64\n"), "{text}");
    assert_eq!(Config::from_toml(&text).unwrap(), config);
    let cluster = valid();
    assert_eq!((cluster.name.as_str(), cluster.heartbeat_ttl_ms), ("switchboard", 10_000));
    assert_eq!((cluster.heartbeat_interval_ms, cluster.call_timeout_ms), (2000, 2000));
    assert_eq!(cluster.map_replicas, 3);
    assert_eq!(cluster.client_addr(listen()), "127.0.0.1:8080");
    let advertised = ClusterConfig { advertise: Some("chat.example:443".into()), ..valid() };
    assert_eq!(advertised.client_addr(listen()), "chat.example:443");
}

#[test]
fn an_empty_section_is_cluster_mode_missing_its_required_fields() {
    let config = Config::from_toml("[cluster]\n").unwrap();
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("`cluster.nats`") && error.contains("--cluster-nats"), "{error}");
    let cluster = ClusterConfig { node_id: String::new(), ..valid() };
    assert_eq!(refused_field(&cluster), "cluster.node_id");
    let cluster = ClusterConfig { listen: None, ..valid() };
    assert_eq!(refused_field(&cluster), "cluster.listen");
}

#[test]
fn file_errors_name_the_field() {
    let cases = [
        ("[cluster]\nnode = \"a\"\n", "node"),
        ("[cluster]\npartitions = -1\n", "partitions"),
        ("[cluster]\npartitions = 99999999999\n", "partitions"),
        ("[cluster]\nheartbeat_ttl_ms = -15000\n", "heartbeat_ttl_ms"),
        ("[cluster]\nnats = \"nats://a:1\"\n", "nats"),
        ("[cluster]\nlisten = \"nowhere\"\n", "listen"),
    ];
    for (text, field) in cases {
        let error = Config::from_toml(text).unwrap_err();
        assert!(error.contains(field), "{text:?}: {error}");
    }
}

#[test]
fn hostile_node_ids_and_names_are_refused() {
    let long = "a".repeat(NAME_LEN_MAX + 1);
    let huge = "a".repeat(1 << 20);
    let bad = ["", "-a", "A", "node_1", "node 1", "n\u{f6}de", "\u{1F600}", "a.b", "a\n", &long];
    for id in bad.iter().copied().chain([huge.as_str()]) {
        let cluster = ClusterConfig { node_id: id.into(), ..valid() };
        assert_eq!(refused_field(&cluster), "cluster.node_id", "{:?}", id.get(..20));
        let cluster = ClusterConfig { name: id.into(), ..valid() };
        assert_eq!(refused_field(&cluster), "cluster.name", "{:?}", id.get(..20));
    }
    for good in ["a", "0", "node-1", "a-", &"z".repeat(NAME_LEN_MAX)] {
        let cluster = ClusterConfig { node_id: good.into(), name: good.into(), ..valid() };
        assert!(cluster.validate(listen(), admin()).is_ok(), "{good}");
    }
}

#[test]
fn hostile_nats_urls_are_refused() {
    let huge = format!("nats://{}:4222", "a".repeat(URL_BYTES_MAX));
    let bad = [
        "",
        "127.0.0.1:4222",
        "http://127.0.0.1:4222",
        "NATS://127.0.0.1:4222",
        "nats://",
        "nats://127.0.0.1",
        "nats://:4222",
        "nats://127.0.0.1:0",
        "nats://127.0.0.1:65536",
        "nats://127.0.0.1:-1",
        "nats://127.0.0.1:+4222",
        "nats://127.0.0.1:4222/path",
        "nats://h\u{f6}st:4222",
        "nats://a b:4222",
        " nats://127.0.0.1:4222",
        "nats://[::1:4222",
        "nats://[zz]:4222",
        &huge,
    ];
    for url in bad {
        let cluster = ClusterConfig { nats: vec![url.into()], ..valid() };
        assert_eq!(refused_field(&cluster), "cluster.nats", "{:?}", url.get(..40));
    }
    let good =
        ["nats://n1.example:4222", "tls://10.0.0.1:4443", "nats://u:p@h:1", "nats://[::1]:4222"];
    let cluster = ClusterConfig { nats: good.map(String::from).to_vec(), ..valid() };
    assert!(cluster.validate(listen(), admin()).is_ok());
}

#[test]
fn nats_lists_are_bounded_and_distinct() {
    let url = |port: usize| format!("nats://127.0.0.1:{}", 4000 + port);
    let cluster = ClusterConfig { nats: Vec::new(), ..valid() };
    assert_eq!(refused_field(&cluster), "cluster.nats");
    let cluster = ClusterConfig { nats: (0..NATS_URLS_MAX).map(url).collect(), ..valid() };
    assert!(cluster.validate(listen(), admin()).is_ok());
    let cluster = ClusterConfig { nats: (0..=NATS_URLS_MAX).map(url).collect(), ..valid() };
    assert_eq!(refused_field(&cluster), "cluster.nats");
    let cluster = ClusterConfig { nats: vec![url(1), url(2), url(1)], ..valid() };
    let error = cluster.validate(listen(), admin()).unwrap_err().to_string();
    assert!(error.contains("listed twice") && error.contains(&url(1)), "{error}");
}

#[test]
fn a_password_in_a_nats_url_stays_out_of_errors() {
    let cluster = ClusterConfig { nats: vec!["nats://me:s3cret@host".into()], ..valid() };
    let error = cluster.validate(listen(), admin()).unwrap_err().to_string();
    assert!(!error.contains("s3cret") && error.contains("host"), "{error}");
}

#[test]
fn partitions_must_be_a_power_of_two_up_to_the_maximum() {
    for partitions in [0, 3, 6, 63, 65, 100, 1000, PARTITIONS_MAX * 2, u32::MAX] {
        let cluster = ClusterConfig { partitions, ..valid() };
        assert_eq!(refused_field(&cluster), "cluster.partitions", "{partitions}");
    }
    for partitions in [1, 2, 16, 64, PARTITIONS_MAX] {
        let cluster = ClusterConfig { partitions, ..valid() };
        assert!(cluster.validate(listen(), admin()).is_ok(), "{partitions}");
    }
}

#[test]
fn timings_and_replicas_are_bounded() {
    let ttl_bad = [0, 999, HEARTBEAT_TTL_MS_MAX + 1, u64::MAX];
    for heartbeat_ttl_ms in ttl_bad {
        let cluster = ClusterConfig { heartbeat_ttl_ms, ..valid() };
        assert_eq!(refused_field(&cluster), "cluster.heartbeat_ttl_ms", "{heartbeat_ttl_ms}");
    }
    for heartbeat_interval_ms in [0, 99, 7500, 15_000, u64::MAX] {
        let cluster = ClusterConfig { heartbeat_interval_ms, ..valid() };
        let field = refused_field(&cluster);
        assert_eq!(field, "cluster.heartbeat_interval_ms", "{heartbeat_interval_ms}");
    }
    let edge = ClusterConfig { heartbeat_ttl_ms: 1000, heartbeat_interval_ms: 499, ..valid() };
    assert!(edge.validate(listen(), admin()).is_ok());
    for call_timeout_ms in [0, 9, 60_001, u64::MAX] {
        let cluster = ClusterConfig { call_timeout_ms, ..valid() };
        assert_eq!(refused_field(&cluster), "cluster.call_timeout_ms", "{call_timeout_ms}");
    }
    for map_replicas in [0, 6, u32::MAX] {
        let cluster = ClusterConfig { map_replicas, ..valid() };
        assert_eq!(refused_field(&cluster), "cluster.map_replicas", "{map_replicas}");
    }
}

#[test]
fn the_internal_listener_must_not_take_another_listeners_port() {
    for clash in ["127.0.0.1:8080", "0.0.0.0:8080", "127.0.0.1:9090"] {
        let cluster = ClusterConfig { listen: Some(clash.parse().unwrap()), ..valid() };
        assert_eq!(refused_field(&cluster), "cluster.listen", "{clash}");
    }
    // Port 0 picks a free port for each, so two of them never clash.
    let cluster = ClusterConfig { listen: Some("127.0.0.1:0".parse().unwrap()), ..valid() };
    assert!(cluster.validate("127.0.0.1:0".parse().unwrap(), None).is_ok());
    // With the admin listener off its port is free.
    let cluster = ClusterConfig { listen: Some("127.0.0.1:9090".parse().unwrap()), ..valid() };
    assert!(cluster.validate(listen(), None).is_ok());
}

#[test]
fn a_bad_advertised_address_is_refused() {
    for advertise in ["", "host", "host:0", "host:http", "h\u{f6}st:1", "a/b:1", ":443"] {
        let cluster = ClusterConfig { advertise: Some(advertise.into()), ..valid() };
        assert_eq!(refused_field(&cluster), "cluster.advertise", "{advertise}");
    }
}

#[test]
fn flags_turn_cluster_mode_on_and_win_over_the_file() {
    let mut cluster = None;
    ClusterOverrides::default().apply(&mut cluster).unwrap();
    assert_eq!(cluster, None, "no flags and no section: still off");
    let overrides = ClusterOverrides {
        nats: Some(valid().nats),
        node_id: Some("a".into()),
        listen: valid().listen,
        ..ClusterOverrides::default()
    };
    overrides.apply(&mut cluster).unwrap();
    assert_eq!(cluster, Some(valid()));
    let mut from_file = Some(ClusterConfig { node_id: "file".into(), partitions: 16, ..valid() });
    let node_only = ClusterOverrides { node_id: Some("b".into()), ..ClusterOverrides::default() };
    node_only.apply(&mut from_file).unwrap();
    let merged = from_file.unwrap();
    assert_eq!((merged.node_id.as_str(), merged.partitions), ("b", 16));
}

#[test]
fn cluster_flags_without_cluster_nats_are_refused_by_name() {
    let cases = [
        (ClusterOverrides { node_id: Some("a".into()), ..Default::default() }, "--node-id"),
        (ClusterOverrides { listen: valid().listen, ..Default::default() }, "--cluster-listen"),
        (ClusterOverrides { partitions: Some(16), ..Default::default() }, "--partitions"),
        (
            ClusterOverrides { advertise: Some("h:1".into()), ..Default::default() },
            "--cluster-advertise",
        ),
    ];
    for (overrides, flag) in cases {
        let mut cluster = None;
        let error = overrides.apply(&mut cluster).unwrap_err().to_string();
        assert!(error.contains(&format!("{flag} (")), "{error}");
        assert!(error.contains("needs --cluster-nats"), "{error}");
        assert_eq!(cluster, None);
    }
}

#[test]
fn the_move_throttle_is_bounded() {
    let slow = ClusterConfig { move_chunk_pause_ms: MOVE_CHUNK_PAUSE_MS_MAX, ..valid() };
    assert!(slow.validate(listen(), admin()).is_ok());
    let too_slow = ClusterConfig { move_chunk_pause_ms: MOVE_CHUNK_PAUSE_MS_MAX + 1, ..valid() };
    assert_eq!(refused_field(&too_slow), "cluster.move_chunk_pause_ms");
}

#[test]
fn initial_nodes_default_to_this_node_and_hostile_lists_are_refused() {
    assert_eq!(valid().initial_node_ids(), vec!["a".to_string()]);
    let listed = ClusterConfig { initial_nodes: vec!["b".into(), "a".into()], ..valid() };
    assert!(listed.validate(listen(), admin()).is_ok());
    assert_eq!(listed.initial_node_ids(), vec!["b".to_string(), "a".to_string()]);
    let too_many = (0..=INITIAL_NODES_MAX).map(|i| format!("n{i}")).collect();
    for bad in [
        vec!["ok".to_string(), "Bad Name".into()],
        vec!["".into()],
        vec!["-lead".into()],
        vec!["x".repeat(NAME_LEN_MAX + 1)],
        vec!["twice".into(), "twice".into()],
        too_many,
    ] {
        let cluster = ClusterConfig { initial_nodes: bad, ..valid() };
        assert_eq!(refused_field(&cluster), "cluster.initial_nodes");
    }
    let from_file = Config::from_toml(
        "[cluster]\nnats = [\"nats://127.0.0.1:4222\"]\nnode_id = \"a\"\n\
         listen = \"127.0.0.1:7001\"\ninitial_nodes = [\"a\", \"b\"]\n",
    )
    .unwrap();
    assert_eq!(from_file.cluster.unwrap().initial_nodes, vec!["a", "b"]);
    let flags_only =
        ClusterOverrides { initial_nodes: Some(vec!["a".into()]), ..Default::default() };
    let mut none = None;
    assert!(flags_only.apply(&mut none).is_err(), "initial nodes need cluster mode");
}

#[test]
fn snapshot_settings_are_bounded() {
    let (min, max) = SNAPSHOT_INTERVAL_MS_RANGE;
    for ok in [min, 60_000, max] {
        assert!(ClusterConfig { snapshot_interval_ms: ok, ..valid() }
            .validate(listen(), admin())
            .is_ok());
    }
    for bad in [0, min - 1, max + 1, u64::MAX] {
        let config = ClusterConfig { snapshot_interval_ms: bad, ..valid() };
        assert_eq!(refused_field(&config), "cluster.snapshot_interval_ms");
    }
    for bad in [0, SNAPSHOT_ENTRIES_MIN_MAX + 1] {
        let config = ClusterConfig { snapshot_entries_min: bad, ..valid() };
        assert_eq!(refused_field(&config), "cluster.snapshot_entries_min");
    }
}
