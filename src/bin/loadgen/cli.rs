//! The load generator's command line: the global options ([`Cli`]) and
//! one subcommand per scenario ([`Scenario`]), with the shape shared by the
//! messaging-shaped scenarios ([`LoadShape`]).

use crate::{capacity, day, measure, placement};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use switchboard::config::Framing;

/// Load generator for switchboard: real WebSocket clients over loopback.
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    /// The server to drive (loopback only).
    #[arg(long, default_value = "127.0.0.1:8080", global = true)]
    pub server: SocketAddr,
    /// Load-generator threads (each a monoio runtime with many connections).
    #[arg(long, default_value_t = 1, global = true)]
    pub threads: usize,
    /// Spread connections over this many loopback source addresses
    /// (127.0.0.2, ...), to exceed ~64k connections; 0 uses the default.
    #[arg(long, default_value_t = 0, global = true)]
    pub source_ips: usize,
    /// The server's admin listener (`/metrics`), for scenarios that read
    /// its counters (`backlog --push`).
    #[arg(long, default_value = "127.0.0.1:9090", global = true)]
    pub admin: SocketAddr,
    /// Speak TLS (https, wss) to the server, trusting the PEM
    /// certificates in this file (e.g. the server's own self-signed one).
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Reuse the accounts saved in this file (`uuid password` per line),
    /// registering and appending only the ones missing (for repeated runs
    /// against one server, e.g. the soak).
    #[arg(long, global = true)]
    pub accounts_file: Option<std::path::PathBuf>,
    /// Pin the load generator's threads to these cores (comma-separated),
    /// thread t on the t-th listed core, in turn; the main thread and the
    /// threads not pinned by their scenario run on the first.
    #[arg(long, global = true, value_name = "LIST", value_delimiter = ',')]
    pub pin_cores: Vec<usize>,
    /// The WebSocket framing of `messaging`: the spec's JSON text frames, or
    /// Signal's protobuf binary frames (asked for with `?framing=protobuf`).
    #[arg(long, global = true, default_value = "json", value_name = "json|protobuf")]
    pub framing: Framing,
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Subcommand)]
pub enum Scenario {
    /// Hold C idle authenticated connections and measure server RSS per connection.
    Idle {
        /// Connections to open.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Server process id, to read its RSS.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Seconds to hold the connections after they are all open.
        #[arg(long, default_value_t = 5)]
        hold_secs: u64,
        /// Connection attempts in flight per thread.
        #[arg(long, default_value_t = 64)]
        connect_concurrency: usize,
    },
    /// C devices connect, all drop at once, all reconnect: time to settle.
    ReconnectStorm {
        /// Devices.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Connection attempts in flight.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        /// Server process id, to measure its CPU per reconnect.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Offline devices accumulate envelopes, then all reconnect: drain rate.
    Backlog {
        /// Sender/recipient pairs (recipients offline while storing).
        #[arg(long, default_value_t = 64)]
        pairs: usize,
        /// Envelopes stored per recipient device.
        #[arg(long, default_value_t = 1000)]
        messages_per_device: usize,
        /// Sends in flight per sender.
        #[arg(long, default_value_t = 16)]
        window: usize,
        /// Content bytes per envelope.
        #[arg(long, default_value_t = 64)]
        content_bytes: usize,
        /// The server's data directory, to measure disk bytes per envelope.
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
        /// Recipients register APNs tokens; report the pushes the server sent
        /// (it must be configured with an APNs base URL, e.g. `apns-standin`).
        #[arg(long)]
        push: bool,
        /// Server process id: its CPU per stored and per drained envelope,
        /// and its RSS growth per stored envelope.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Leave the stored envelopes in place (no drain), for measuring
        /// what they take on disk once compacted (`compact-dir`).
        #[arg(long)]
        keep: bool,
    },
    /// Compacts a stopped server's data directory fully (offline) and
    /// prints its size before and after: what its live data takes.
    CompactDir {
        /// The data directory (the server must be stopped).
        #[arg(long)]
        data_dir: std::path::PathBuf,
    },
    /// A loopback APNs stand-in (HTTP/2 cleartext) for push benchmarks:
    /// answers every push with `status` after `delay_ms`, until killed.
    ApnsStandin {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// Delay before each answer, ms (a slow provider).
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// Status of each answer (503: a failing provider).
        #[arg(long, default_value_t = 200)]
        status: u16,
    },
    /// Baseline: the messaging load against an MQTT broker's WebSocket listener
    /// (QoS 1 publish, persistent subscriber sessions, subscriber PUBACKs).
    Mqtt {
        #[command(flatten)]
        shape: LoadShape,
    },
    /// Baseline: the messaging load against NATS JetStream (file stream, a
    /// durable push consumer per recipient, explicit acks, PubAck per publish).
    Nats {
        #[command(flatten)]
        shape: LoadShape,
    },
    /// A capacity plan from measured figures; with `--verify`, checked on
    /// this box (prints text, not the scenarios' JSON; exit 1 when the run
    /// misses the plan, 2 on a hostile input).
    Capacity {
        #[command(flatten)]
        options: capacity::CapacityOptions,
    },
    /// A population's day of traffic, compressed into a run of minutes.
    Day {
        #[command(flatten)]
        options: day::options::DayOptions,
    },
    /// Pairs of senders and recipients; throughput and latency.
    Messaging {
        #[command(flatten)]
        shape: LoadShape,
        /// Send `online: true`: relay to connected devices without storing
        /// (shows the cost of the protocol without storage).
        #[arg(long)]
        online: bool,
        /// Drive a cluster's nodes instead of `--server`: the map of which
        /// node owns each account, as `switchboard cluster haproxy-map`
        /// prints it (`hex-prefix address` lines).
        #[arg(long, value_name = "FILE")]
        cluster_map: Option<std::path::PathBuf>,
        /// With `--cluster-map`: `local` (sender and recipient owned by one
        /// node and connected to it), `cross` (owned by different nodes,
        /// each connected to its owner) or `edge` (both owned by one node,
        /// connected to another, which forwards them).
        #[arg(long, value_enum, value_name = "local|cross|edge")]
        placement: Option<placement::Placement>,
    },
}

/// The shape of a messaging load, shared by `messaging`, `mqtt` and `nats`
/// (the same closed or open loop against each: see `sender.rs`).
#[derive(clap::Args)]
pub struct LoadShape {
    /// Sender/recipient pairs.
    #[arg(long, default_value_t = 64)]
    pub pairs: usize,
    /// Sends awaiting their acknowledgement per sender.
    #[arg(long, default_value_t = 16)]
    pub window: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Content bytes per message (at least 16: the two send stamps).
    #[arg(long, default_value_t = 64)]
    pub content_bytes: usize,
    /// Open loop at this many messages/s in total; closed loop when absent.
    #[arg(long)]
    pub rate: Option<u64>,
    /// In an open loop, wait for each send's due time by busy polling
    /// instead of on 1 ms timers: sends go out within microseconds of due,
    /// and each thread keeps its core busy (give it one: `--pin-cores`).
    #[arg(long)]
    pub busy_poll: bool,
}

impl LoadShape {
    pub fn args(
        &self,
        cli: &Cli,
        threads: usize,
        online: bool,
        framing: Option<Framing>,
    ) -> measure::MessagingArgs {
        measure::MessagingArgs {
            server: cli.server,
            pairs: self.pairs,
            window: self.window,
            duration_secs: self.duration_secs,
            threads,
            content_bytes: self.content_bytes,
            rate: self.rate,
            online,
            source_ips: cli.source_ips,
            busy_poll: self.busy_poll,
            framing,
            cluster: None,
        }
    }
}
