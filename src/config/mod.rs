//! One typed configuration for the whole server.
//!
//! Layers, later ones winning: built-in defaults (which run with no file at
//! all), an optional TOML file, `SWITCHBOARD_*` environment variables, and
//! command-line flags. The last two are merged by `clap` in `main`; this module
//! owns the defaults, the file format and validation.
//!
//! Owns: the configuration's shape, defaults and validation. Imports nothing
//! of this crate: it sits below everything that reads a setting.
//!
//! Invariants: a [`Config`] that passed [`Config::validate`] has every limit
//! non-zero and related limits ordered (see the `const` assertions in [`limits`]), so
//! the rest of the server may rely on them without re-checking.

pub mod cluster;
mod cluster_addrs;
pub mod error;
pub mod limits;
pub mod push;
pub mod rate_limits;

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// How much of a write must reach the disk before a sender gets its 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync every write before answering.
    Sync,
    /// Batch the WAL sync of many writes (bounded wait), still before answering.
    Group,
    /// No sync at all: benchmarks only; a crash loses recent writes.
    None,
    /// Cluster mode only: every batch is appended to its partitions'
    /// replicated JetStream logs (3 replicas) and acknowledged by their
    /// quorum before it is applied here and answered; a node's loss loses
    /// nothing acknowledged and its partitions are taken over.
    Replicated,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "sync" => Ok(Self::Sync),
            "group" => Ok(Self::Group),
            "none" => Ok(Self::None),
            "replicated" => Ok(Self::Replicated),
            other => Err(format!("unknown durability '{other}' (sync, group, none, replicated)")),
        }
    }
}

/// How a device's WebSocket frames its requests and responses (chosen at
/// the upgrade, fixed for the connection's life).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// Text frames of JSON (the spec's framing), envelopes as JSON.
    Json,
    /// Binary frames of Signal's protobuf `WebSocketMessage`, envelopes as
    /// protobuf `Envelope` (what stock Signal clients speak).
    Protobuf,
}

impl std::str::FromStr for Framing {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "json" => Ok(Self::Json),
            "protobuf" => Ok(Self::Protobuf),
            other => Err(format!("unknown framing '{other}' (json, protobuf)")),
        }
    }
}

/// Which I/O driver the shards run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IoDriver {
    /// io_uring where the kernel allows it, else epoll.
    Auto,
    /// io_uring; refuse to start where it is unavailable.
    IoUring,
    /// epoll (monoio's legacy driver), even where io_uring works.
    Epoll,
}

impl std::str::FromStr for IoDriver {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(Self::Auto),
            "io_uring" => Ok(Self::IoUring),
            "epoll" => Ok(Self::Epoll),
            other => Err(format!("unknown io driver '{other}' (auto, io_uring, epoll)")),
        }
    }
}

/// Most io_uring submission queue entries per shard.
pub const IO_URING_ENTRIES_MAX: u32 = 32_768;

pub use cluster::{ClusterConfig, ClusterOverrides};
pub use error::ConfigError;
pub use limits::Limits;
pub use push::{ApnsConfig, FcmConfig, PushConfig};
pub use rate_limits::{RateLimit, RateLimits};

/// The whole server configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address every shard listens on (with `SO_REUSEPORT`). Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Address of the admin listener (`GET /metrics`, `GET /health`), or
    /// `off`. Keep it on loopback or a management network.
    pub admin_listen: String,
    /// PEM certificate chain for TLS on the public listener (`https`,
    /// `wss`); set with `tls_key`, or neither for plain TCP.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Number of shards (threads pinned to cores). 0 means one per core.
    pub shards: usize,
    /// Directory holding the RocksDB database.
    pub data_dir: PathBuf,
    /// When set, `PUT /v1/accounts` requires this value in `X-Registration-Token`.
    pub registration_token: Option<String>,
    /// How durable a write is before its sender is answered.
    pub durability: Durability,
    /// Pin shard threads to cores.
    pub pin_cores: bool,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `switchboard=debug`.
    pub log: String,
    /// I/O driver: `auto` (io_uring, else epoll), `io_uring` or `epoll`.
    pub io_driver: IoDriver,
    /// io_uring submission queue entries per shard (a power of two, 256 to 32768).
    pub io_uring_entries: u32,
    /// When non-zero, each shard's ring gets a kernel thread polling its
    /// submission queue (SQPOLL), which sleeps after this many idle ms.
    /// It spends CPU to save syscalls: see tuning/io_uring.md.
    pub io_uring_sqpoll_idle_ms: u32,
    /// Envelopes older than this are deleted (counted in metrics, logged). 30 days.
    pub message_retention_ms: u64,
    /// How often each shard sweeps its queues for expired envelopes.
    pub retention_sweep_interval_ms: u64,
    /// How long a write batch holding items already on their way to
    /// connected devices may wait for their acknowledgements before it is
    /// written (an item acknowledged meanwhile is never written; Signal's
    /// `persistDelay`). Adds at most this much to a sender's 200 when the
    /// device does not acknowledge in time. 0 writes as soon as the writer
    /// is free.
    pub persist_delay_ms: u64,
    /// How long a shard gathers the delivery receipts its acknowledgements
    /// owe before sending them: one stored receipt per (device, sender)
    /// per window. 0 sends them on the shard's next turn.
    pub receipt_window_ms: u64,
    /// The framing of a WebSocket whose upgrade names none (no explicit
    /// choice, no stock Signal client's User-Agent).
    pub websocket_framing: Framing,
    /// After SIGTERM or SIGINT, the longest the server waits for its
    /// WebSockets to close before it exits anyway.
    pub drain_timeout_ms: u64,
    /// Limits on everything that grows.
    pub limits: Limits,
    /// Rate limits (token buckets) per account, address or pair.
    pub rate_limits: RateLimits,
    /// Push notifications: when, how, and the providers.
    pub push: PushConfig,
    /// Cluster mode; `None` (no `[cluster]` section, no `--cluster-nats`)
    /// runs one node alone, exactly as without cluster support.
    pub cluster: Option<ClusterConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: ADMIN_LISTEN_DEFAULT.to_string(),
            tls_cert: None,
            tls_key: None,
            shards: 0,
            data_dir: PathBuf::from("./data"),
            registration_token: None,
            durability: Durability::Group,
            pin_cores: true,
            log: "info".to_string(),
            io_driver: IoDriver::Auto,
            io_uring_entries: 4096,
            io_uring_sqpoll_idle_ms: 0,
            message_retention_ms: 30 * 24 * 3600 * 1000,
            retention_sweep_interval_ms: 3600 * 1000,
            receipt_window_ms: 5,
            persist_delay_ms: 2,
            websocket_framing: Framing::Json,
            drain_timeout_ms: 10_000,
            limits: Limits::default(),
            rate_limits: RateLimits::default(),
            push: PushConfig::default(),
            cluster: None,
        }
    }
}

/// The admin listener's address unless configured.
pub const ADMIN_LISTEN_DEFAULT: &str = "127.0.0.1:9090";

/// Longest hold of a write batch for acknowledgements: each held
/// millisecond is one more on a sender's 200 when the device is slow.
pub const PERSIST_DELAY_MS_MAX: u64 = 10_000;

/// Longest receipt window: a receipt held longer tells its sender late.
pub const RECEIPT_WINDOW_MS_MAX: u64 = 10_000;

/// Most shards one process may run; the ring mesh is N x N.
pub const SHARDS_MAX: usize = 256;

impl Config {
    /// Reads a TOML file; fields it does not name keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Self::from_toml(&text)
            .map_err(|message| ConfigError::Parse { path: path.to_path_buf(), message })
    }

    /// Parses TOML text; unknown fields are refused so a typo is not ignored.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|error| error.to_string().trim_end().to_string())
    }

    /// The number of shards to run: `shards`, or the core count when 0.
    pub fn shard_count(&self) -> usize {
        if self.shards == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.shards
        }
    }

    /// The admin listener's address; `None` when `admin_listen = "off"`.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        match self.admin_listen.as_str() {
            "off" => None,
            addr => addr.parse().ok(),
        }
    }

    /// Checks every field; the error names the first one at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: &str| {
            Err(ConfigError::Invalid { field, reason: reason.to_string() })
        };
        if self.shards > SHARDS_MAX {
            return invalid("shards", &format!("must be at most {SHARDS_MAX} (0 = one per core)"));
        }
        if self.admin_listen != "off" && self.admin_listen.parse::<SocketAddr>().is_err() {
            return invalid("admin_listen", "must be an address like 127.0.0.1:9090, or off");
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return invalid("tls_key", "must be set with tls_cert"),
            (None, Some(_)) => return invalid("tls_cert", "must be set with tls_key"),
            _ => {}
        }
        if self.data_dir.as_os_str().is_empty() {
            return invalid("data_dir", "must not be empty");
        }
        if self.durability == Durability::Replicated && self.cluster.is_none() {
            return invalid(
                "durability",
                "replicated needs cluster mode ([cluster], --cluster-nats)",
            );
        }
        if let Some(token) = &self.registration_token {
            if token.is_empty() {
                return invalid("registration_token", "must not be empty when set");
            }
        }
        if !self.io_uring_entries.is_power_of_two()
            || !(256..=IO_URING_ENTRIES_MAX).contains(&self.io_uring_entries)
        {
            return invalid(
                "io_uring_entries",
                &format!("must be a power of two from 256 to {IO_URING_ENTRIES_MAX}"),
            );
        }
        if self.persist_delay_ms > PERSIST_DELAY_MS_MAX {
            return invalid(
                "persist_delay_ms",
                &format!("must be at most {PERSIST_DELAY_MS_MAX} (0 = write at once)"),
            );
        }
        if self.receipt_window_ms > RECEIPT_WINDOW_MS_MAX {
            return invalid(
                "receipt_window_ms",
                &format!("must be at most {RECEIPT_WINDOW_MS_MAX} (0 = the shard's next turn)"),
            );
        }
        if self.io_uring_sqpoll_idle_ms > 60_000 {
            return invalid("io_uring_sqpoll_idle_ms", "must be at most 60000 (0 = no SQPOLL)");
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log).is_err() {
            return invalid("log", "is not a valid log filter (e.g. `info`)");
        }
        self.validate_limits()?;
        match &self.cluster {
            Some(cluster) => cluster.validate(self.listen, self.admin_addr()),
            None => Ok(()),
        }
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let limits = &self.limits;
        let positive: [(&'static str, u64); 26] = [
            ("limits.directory_lookup_hashes_max", limits.directory_lookup_hashes_max as u64),
            (
                "limits.provisioning_sockets_per_shard_max",
                limits.provisioning_sockets_per_shard_max as u64,
            ),
            ("limits.provisioning_timeout_ms", limits.provisioning_timeout_ms),
            ("limits.queue_len_max", limits.queue_len_max as u64),
            ("limits.receipt_timestamps_max", limits.receipt_timestamps_max as u64),
            ("limits.story_recipients_max", limits.story_recipients_max as u64),
            ("limits.message_page_len_max", limits.message_page_len_max as u64),
            ("message_retention_ms", self.message_retention_ms),
            ("retention_sweep_interval_ms", self.retention_sweep_interval_ms),
            ("drain_timeout_ms", self.drain_timeout_ms),
            ("limits.header_bytes_max", limits.header_bytes_max as u64),
            ("limits.header_count_max", limits.header_count_max as u64),
            ("limits.body_bytes_max", limits.body_bytes_max as u64),
            ("limits.frame_bytes_max", limits.frame_bytes_max as u64),
            ("limits.connections_per_shard_max", limits.connections_per_shard_max as u64),
            ("limits.inflight_requests_max", limits.inflight_requests_max as u64),
            ("limits.client_requests_inflight_max", limits.client_requests_inflight_max as u64),
            ("limits.handshake_timeout_ms", limits.handshake_timeout_ms),
            ("limits.http_idle_timeout_ms", limits.http_idle_timeout_ms),
            ("limits.idle_timeout_ms", limits.idle_timeout_ms),
            ("limits.ping_interval_ms", limits.ping_interval_ms),
            ("limits.request_timeout_ms", limits.request_timeout_ms),
            ("limits.ring_slots", limits.ring_slots as u64),
            ("limits.ring_full_wait_ms", limits.ring_full_wait_ms),
            ("limits.read_buffer_bytes", limits.read_buffer_bytes as u64),
            ("limits.devices_per_account_max", limits.devices_per_account_max as u64),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    field,
                    reason: "must be greater than 0".into(),
                });
            }
        }
        if limits.header_bytes_max < 256 {
            return Err(ConfigError::Invalid {
                field: "limits.header_bytes_max",
                reason: "must be at least 256 bytes to hold a WebSocket upgrade".into(),
            });
        }
        if limits.frame_bytes_max < limits.body_bytes_max / 3 * 4 {
            return Err(ConfigError::Invalid {
                field: "limits.frame_bytes_max",
                reason: "must hold a Base64 body of limits.body_bytes_max (x 4/3)".into(),
            });
        }
        if limits.ping_interval_ms >= limits.idle_timeout_ms {
            return Err(ConfigError::Invalid {
                field: "limits.ping_interval_ms",
                reason: "must be shorter than limits.idle_timeout_ms".into(),
            });
        }
        if limits.devices_per_account_max > 127 {
            return Err(ConfigError::Invalid {
                field: "limits.devices_per_account_max",
                reason: "must be at most 127".into(),
            });
        }
        self.rate_limits
            .validate()
            .and_then(|()| self.push.validate())
            .map_err(|(field, reason)| ConfigError::Invalid { field, reason: reason.into() })
    }

    /// The configuration as TOML, e.g. to start a config file from.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
