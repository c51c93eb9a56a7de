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
//! - `capacity`: a capacity plan from measured figures, `--verify` on this box.
//! - `compact-dir`: a stopped server's directory compacted: data at rest.
//! - `day`: a population's day of traffic compressed into minutes: sessions
//!   that come and go, linked devices, sealed sends, receipts, typing,
//!   pushes to away devices.

mod accounts;
mod backlog;
mod capacity;
mod cli;
mod client;
mod compact;
mod conn;
mod cores;
mod day;
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

use clap::Parser;
use cli::{Cli, Scenario};
use switchboard::config::Framing;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Refuses a hostile input: one line on stderr, exit code 2.
pub fn refuse(message: &str) -> ! {
    eprintln!("loadgen: {message}");
    std::process::exit(2)
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
    let cli = Cli::try_parse().unwrap_or_else(|error| match error.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
            error.exit()
        }
        // One line, as every refusal: clap's own first line, without its hints.
        _ => refuse(
            error
                .to_string()
                .lines()
                .next()
                .unwrap_or("bad arguments")
                .trim_start_matches("error: "),
        ),
    });
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
    if let Scenario::Capacity { options } = &cli.scenario {
        std::process::exit(capacity::run(options)?);
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
        Scenario::ReconnectStorm { connections, concurrency, server_pid } => {
            let args =
                storm::StormArgs { server, connections, concurrency, source_ips, server_pid };
            let result = storm::run(args)?;
            report::summarize_storm(&result);
            ("reconnect-storm", serde_json::json!(result))
        }
        Scenario::ApnsStandin { listen, delay_ms, status } => {
            push::run_standin(listen, delay_ms, status)?;
            ("apns-standin", serde_json::json!({}))
        }
        Scenario::Backlog { .. } => ("backlog", run_backlog(cli)?),
        Scenario::Capacity { .. } => unreachable!("run before the scenarios"),
        Scenario::CompactDir { ref data_dir } => {
            ("compact-dir", serde_json::json!(compact::compact(data_dir)?))
        }
        Scenario::Day { ref options } => ("day", run_day(cli, threads, options)?),
        Scenario::Mqtt { ref shape } => {
            let result = mqtt::run(shape.args(cli, threads, false, None))?;
            report::summarize_messaging("mqtt", &result);
            ("mqtt", serde_json::json!(result))
        }
        Scenario::Nats { ref shape } => {
            let result = nats::run(shape.args(cli, threads, false, None))?;
            report::summarize_messaging("nats", &result);
            ("nats", serde_json::json!(result))
        }
        Scenario::Messaging { ref shape, online, ref cluster_map, placement } => {
            let mut args = shape.args(cli, threads, online, Some(cli.framing));
            args.cluster = placement::target(cluster_map.as_deref(), placement)?;
            ("messaging", run_messaging(args)?)
        }
    })
}

/// Runs `backlog` and prints its human summary: its result as JSON.
fn run_backlog(cli: &Cli) -> anyhow::Result<serde_json::Value> {
    let Scenario::Backlog {
        pairs,
        messages_per_device,
        window,
        content_bytes,
        ref data_dir,
        push,
        server_pid,
        keep,
    } = cli.scenario
    else {
        unreachable!("called for backlog only")
    };
    let result = backlog::run(backlog::BacklogArgs {
        server: cli.server,
        admin: cli.admin,
        pairs,
        messages_per_device,
        window,
        content_bytes,
        data_dir: data_dir.clone(),
        source_ips: cli.source_ips,
        push,
        server_pid,
        keep,
    })?;
    report::summarize_backlog(&result);
    Ok(serde_json::json!(result))
}

/// Runs `day` (a hostile option exits 2) and prints its human summary:
/// its result as JSON.
fn run_day(
    cli: &Cli,
    threads: usize,
    options: &day::options::DayOptions,
) -> anyhow::Result<serde_json::Value> {
    let traffic = options.validate().unwrap_or_else(|error| refuse(&error));
    let result = day::run(day::DayArgs {
        server: cli.server,
        admin: cli.admin,
        threads,
        traffic,
        duration_secs: options.duration_secs,
        day_start_hour: options.day_start_hour,
        day_hours: options.day_hours,
        seed: options.seed,
        server_pid: options.server_pid,
        started: Default::default(),
    })?;
    day::summarize(&result);
    Ok(serde_json::json!(result))
}

/// Runs `messaging` and prints its human summary: its result as JSON.
fn run_messaging(args: measure::MessagingArgs) -> anyhow::Result<serde_json::Value> {
    let cluster = args.cluster.as_ref().map(|c| (c.placement, c.map.nodes.len()));
    let result = messaging::run(args)?;
    match cluster {
        Some((placement, nodes)) => report::summarize_messaging(
            &format!("messaging ({placement:?} on {nodes} nodes)"),
            &result,
        ),
        None => report::summarize_messaging("messaging", &result),
    }
    Ok(serde_json::json!(result))
}
