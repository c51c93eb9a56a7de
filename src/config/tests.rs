use super::*;

#[test]
fn defaults_are_valid_and_round_trip() {
    let config = Config::default();
    config.validate().expect("defaults validate");
    let text = config.to_toml();
    assert_eq!(Config::from_toml(&text).expect("round trip"), config);
}

#[test]
fn unknown_field_is_refused_by_name() {
    let error = Config::from_toml("listne = \"127.0.0.1:1\"").unwrap_err();
    assert!(error.contains("listne"), "{error}");
}

#[test]
fn wrong_type_names_the_field() {
    let error = Config::from_toml("[limits]\nframe_bytes_max = \"big\"").unwrap_err();
    assert!(error.contains("frame_bytes_max"), "{error}");
}

#[test]
fn zero_limit_names_the_field() {
    let mut config = Config::default();
    config.limits.ring_slots = 0;
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("limits.ring_slots"), "{error}");
}

#[test]
fn ping_must_be_shorter_than_idle() {
    let mut config = Config::default();
    config.limits.ping_interval_ms = config.limits.idle_timeout_ms;
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("ping_interval_ms"), "{error}");
}

#[test]
fn io_settings_are_checked_and_parsed() {
    for entries in [0, 100, 255, 1000, 65_536] {
        let config = Config { io_uring_entries: entries, ..Config::default() };
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("`io_uring_entries`"), "{entries}: {error}");
    }
    let config = Config { io_uring_sqpoll_idle_ms: 60_001, ..Config::default() };
    assert!(config.validate().unwrap_err().to_string().contains("`io_uring_sqpoll_idle_ms`"));
    let config = Config::from_toml("io_driver = \"epoll\"\nio_uring_entries = 256").unwrap();
    assert_eq!(config.io_driver, IoDriver::Epoll);
    assert!(config.validate().is_ok());
    assert!(Config::from_toml("io_driver = \"kqueue\"").unwrap_err().contains("io_driver"));
    assert!("uring".parse::<IoDriver>().unwrap_err().contains("auto, io_uring, epoll"));
}

#[test]
fn too_many_shards_is_refused() {
    let config = Config { shards: SHARDS_MAX + 1, ..Config::default() };
    assert!(config.validate().unwrap_err().to_string().contains("`shards`"));
}

#[test]
fn durability_parses() {
    assert_eq!("group".parse::<Durability>(), Ok(Durability::Group));
    assert!("fast".parse::<Durability>().is_err());
}
