//! `loadgen`: drives a running switchboard with real WebSocket clients and
//! reports machine-readable results (one JSON object on stdout) plus a human
//! summary on stderr.
//!
//! - `idle`: hold C authenticated connections; server RSS per connection.
//! - `messaging`: sender/recipient pairs; throughput and send->deliver latency;
//!   against a cluster's nodes with `--cluster-map` and `--placement`.
//! - `mqtt`: the same load against an MQTT 3.1.1 broker over WebSocket
//!   (QoS 1, persistent sessions): the baseline.
//! - `nats`: the same load against NATS JetStream (durable consumer per
//!   device, explicit acks): the second baseline.
//! - `reconnect-storm`: every connection drops at once and reconnects.
//! - `backlog`: offline devices accumulate envelopes, then reconnect together:
//!   drain rate and disk bytes per stored envelope; with `--push`, the
//!   pushes the backlog caused (one per device per window).
//! - `apns-standin`: a loopback APNs stand-in for the push benchmark.

mod accounts;
mod backlog;
mod client;
mod conn;
mod cores;
mod fair_yield;
mod framing;
mod idle;
mod measure;
mod memstream;
mod messaging;
mod mqtt;
mod nats;
mod placement;
mod push;
mod report;
mod schedule;
mod sender;
mod storm;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use switchboard::config::Framing;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load generator for switchboard: real WebSocket clients over loopback.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The server to drive (loopback only).
    #[arg(long, default_value = "127.0.0.1:8080", global = true)]
    server: SocketAddr,
    /// Load-generator threads (each a monoio runtime with many connections).
    #[arg(long, default_value_t = 1, global = true)]
    threads: usize,
    /// Spread connections over this many loopback source addresses
    /// (127.0.0.2, ...), to exceed ~64k connections; 0 uses the default.
    #[arg(long, default_value_t = 0, global = true)]
    source_ips: usize,
    /// The server's admin listener (`/metrics`), for scenarios that read
    /// its counters (`backlog --push`).
    #[arg(long, default_value = "127.0.0.1:9090", global = true)]
    admin: SocketAddr,
    /// Speak TLS (https, wss) to the server, trusting the PEM
    /// certificates in this file (e.g. the server's own self-signed one).
    #[arg(long, global = true, value_name = "FILE")]
    tls_ca: Option<std::path::PathBuf>,
    /// Reuse the accounts saved in this file (`uuid password` per line),
    /// registering and appending only the ones missing (for repeated runs
    /// against one server, e.g. the soak).
    #[arg(long, global = true)]
    accounts_file: Option<std::path::PathBuf>,
    /// Pin the load generator's threads to these cores (comma-separated),
    /// thread t on the t-th listed core, in turn; the main thread and the
    /// threads not pinned by their scenario run on the first.
    #[arg(long, global = true, value_name = "LIST", value_delimiter = ',')]
    pin_cores: Vec<usize>,
    /// The WebSocket framing of `messaging`: the spec's JSON text frames, or
    /// Signal's protobuf binary frames (asked for with `?framing=protobuf`).
    #[arg(long, global = true, default_value = "json", value_name = "json|protobuf")]
    framing: Framing,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
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
struct LoadShape {
    /// Sender/recipient pairs.
    #[arg(long, default_value_t = 64)]
    pairs: usize,
    /// Sends awaiting their acknowledgement per sender.
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Content bytes per message (at least 16: the two send stamps).
    #[arg(long, default_value_t = 64)]
    content_bytes: usize,
    /// Open loop at this many messages/s in total; closed loop when absent.
    #[arg(long)]
    rate: Option<u64>,
    /// In an open loop, wait for each send's due time by busy polling
    /// instead of on 1 ms timers: sends go out within microseconds of due,
    /// and each thread keeps its core busy (give it one: `--pin-cores`).
    #[arg(long)]
    busy_poll: bool,
}

impl LoadShape {
    fn args(
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

/// The human summary of a messaging-shaped result.
fn summarize(label: &str, result: &measure::MessagingResult) {
    eprintln!(
        "{label}: {:.0} sends/s acknowledged, {:.0} deliveries/s; latency p50 {} us, p99 {} us, p99.9 {} us, max {} us \
         (from the write instead of the due time: p50 {} us, p99 {} us, p99.9 {} us); \
         sends written after due: p50 {} us, p99 {} us, max {} us",
        result.sent_per_sec,
        result.delivered_per_sec,
        result.latency_us_p50,
        result.latency_us_p99,
        result.latency_us_p999,
        result.latency_us_max,
        result.from_write_latency_us_p50,
        result.from_write_latency_us_p99,
        result.from_write_latency_us_p999,
        result.send_lateness_us_p50,
        result.send_lateness_us_p99,
        result.send_lateness_us_max
    );
}

/// Runs a future on a fresh monoio runtime on this thread.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    fair_yield::forget_relay();
    let mut runtime = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()
        .expect("monoio runtime");
    runtime.block_on(future)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !cli.server.ip().is_loopback() {
        anyhow::bail!("loadgen drives loopback servers only (got {})", cli.server);
    }
    if let Some(ca_file) = &cli.tls_ca {
        conn::use_tls(ca_file)?;
    }
    if let Some(path) = &cli.accounts_file {
        accounts::reuse_accounts_from(path.clone());
    }
    if !cli.pin_cores.is_empty() {
        cores::set_pin_cores(cli.pin_cores.clone())?;
    }
    let threads = cli.threads.max(1);
    let machine = report::machine();
    let (scenario, result) = run_scenario(&cli, threads)?;
    let output = serde_json::json!({
        "scenario": scenario,
        "machine": machine,
        "threads": threads,
        "pin_cores": cli.pin_cores,
        "result": result
    });
    println!("{output}");
    // Connection tasks still hold sockets; exiting closes them all.
    std::process::exit(0);
}

/// Runs the chosen scenario and prints its human summary: (the scenario's
/// name, its result as JSON).
fn run_scenario(cli: &Cli, threads: usize) -> anyhow::Result<(&'static str, serde_json::Value)> {
    let (server, source_ips) = (cli.server, cli.source_ips);
    if cli.framing != Framing::Json && !matches!(cli.scenario, Scenario::Messaging { .. }) {
        anyhow::bail!("--framing protobuf is for the messaging scenario only");
    }
    Ok(match cli.scenario {
        Scenario::Idle { connections, server_pid, hold_secs, connect_concurrency } => {
            let result = idle::run(idle::IdleArgs {
                server,
                connections,
                threads,
                source_ips,
                server_pid,
                hold_secs,
                connect_concurrency,
            })?;
            report::summarize_idle(&result);
            ("idle", serde_json::json!(result))
        }
        Scenario::ReconnectStorm { connections, concurrency } => {
            let result =
                storm::run(storm::StormArgs { server, connections, concurrency, source_ips })?;
            report::summarize_storm(&result);
            ("reconnect-storm", serde_json::json!(result))
        }
        Scenario::ApnsStandin { listen, delay_ms, status } => {
            push::run_standin(listen, delay_ms, status)?;
            ("apns-standin", serde_json::json!({}))
        }
        Scenario::Backlog {
            pairs,
            messages_per_device,
            window,
            content_bytes,
            ref data_dir,
            push,
        } => {
            let result = backlog::run(backlog::BacklogArgs {
                server,
                admin: cli.admin,
                pairs,
                messages_per_device,
                window,
                content_bytes,
                data_dir: data_dir.clone(),
                source_ips,
                push,
            })?;
            report::summarize_backlog(&result);
            ("backlog", serde_json::json!(result))
        }
        Scenario::Mqtt { ref shape } => {
            let result = mqtt::run(shape.args(cli, threads, false, None))?;
            summarize("mqtt", &result);
            ("mqtt", serde_json::json!(result))
        }
        Scenario::Nats { ref shape } => {
            let result = nats::run(shape.args(cli, threads, false, None))?;
            summarize("nats", &result);
            ("nats", serde_json::json!(result))
        }
        Scenario::Messaging { ref shape, online, ref cluster_map, placement } => {
            let mut args = shape.args(cli, threads, online, Some(cli.framing));
            args.cluster = placement::target(cluster_map.as_deref(), placement)?;
            ("messaging", run_messaging(args)?)
        }
    })
}

/// Runs `messaging` and prints its human summary: its result as JSON.
fn run_messaging(args: measure::MessagingArgs) -> anyhow::Result<serde_json::Value> {
    let cluster = args.cluster.as_ref().map(|c| (c.placement, c.map.nodes.len()));
    let result = messaging::run(args)?;
    match cluster {
        Some((placement, nodes)) => {
            summarize(&format!("messaging ({placement:?} on {nodes} nodes)"), &result)
        }
        None => summarize("messaging", &result),
    }
    Ok(serde_json::json!(result))
}
