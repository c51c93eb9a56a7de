//! The `switchboard` command: `serve` runs the server, `config` prints the
//! effective configuration. Configuration layers, later winning: built-in
//! defaults, `--config FILE` (TOML), `SWITCHBOARD_*` environment variables,
//! flags.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use switchboard::config::{ClusterOverrides, Config, Durability, IoDriver};
use switchboard::server::signals;

/// mimalloc unless built with `--features system-allocator` (glibc malloc),
/// which exists to measure the difference (tuning/process.md).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// switchboard: a thread-per-core, io_uring real-time message server with
/// the shape of Signal's WebSocket interface.
#[derive(Parser)]
#[command(version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct Cli {
    /// With no command, these flags run `serve`.
    #[command(flatten)]
    serve: ConfigArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve(ConfigArgs),
    /// Print the effective configuration as TOML (a starting point for a file).
    Config(ConfigArgs),
    /// Inspect a cluster through its NATS servers, or move its partitions.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Print the map epoch and each node: live or down, partitions owned,
    /// last heartbeat, client and internal addresses.
    Status(ClusterQuery),
    /// Print a map for HAProxy (`map_beg`): the login's first hex digits ->
    /// the client address of the node owning its partition.
    HaproxyMap(ClusterQuery),
    /// Move one partition to another node (run by its owner: copy, brief
    /// freeze with 503s, map flip, old copy dropped).
    Move(MoveArgs),
    /// Move partitions, one at a time, until the live nodes hold an even
    /// share (the fewest moves; down nodes keep theirs).
    Rebalance(RebalanceArgs),
    /// Replicated durability: snapshot partitions now (all, or one) and
    /// purge their logs up to the snapshots.
    Snapshot(SnapshotArgs),
}

/// `cluster snapshot`.
#[derive(Args)]
struct SnapshotArgs {
    #[command(flatten)]
    query: ClusterQuery,
    /// The partition (default: every partition).
    #[arg(long)]
    partition: Option<u32>,
}

/// `cluster move`.
#[derive(Args)]
struct MoveArgs {
    #[command(flatten)]
    query: ClusterQuery,
    /// The partition (0 to P-1; `cluster status` shows P).
    #[arg(long)]
    partition: u32,
    /// The node to move it to.
    #[arg(long, value_name = "NODE")]
    to: String,
}

/// `cluster rebalance`.
#[derive(Args)]
struct RebalanceArgs {
    #[command(flatten)]
    query: ClusterQuery,
    /// Print the planned moves without running them.
    #[arg(long)]
    dry_run: bool,
}

/// Where a cluster is.
#[derive(Args)]
struct ClusterQuery {
    /// The cluster's NATS servers, comma-separated.
    #[arg(
        long,
        env = "SWITCHBOARD_CLUSTER_NATS",
        value_name = "URL,...",
        value_delimiter = ',',
        required = true
    )]
    cluster_nats: Vec<String>,
    /// The cluster's name (`[cluster] name`).
    #[arg(long, env = "SWITCHBOARD_CLUSTER_NAME", default_value = "switchboard")]
    cluster_name: String,
}

/// Runs `cluster move` or `cluster rebalance`: a line per move, or one
/// line and exit 1.
fn cluster_change(command: ClusterCommand) -> anyhow::Result<()> {
    use switchboard::cluster::operate::Operator;
    let connect = |query: ClusterQuery| {
        Operator::connect(query.cluster_nats, &query.cluster_name)
            .map_err(|reason| anyhow::anyhow!("cannot reach the cluster: {reason}"))
    };
    let (operator, moves, dry_run) = match command {
        ClusterCommand::Move(args) => {
            let operator = connect(args.query)?;
            let epoch = operator.move_partition(args.partition, &args.to).map_err(|reason| {
                anyhow::anyhow!("partition {} not moved: {reason}", args.partition)
            })?;
            println!("partition {} is on node {} (map epoch {epoch})", args.partition, args.to);
            return Ok(());
        }
        ClusterCommand::Snapshot(args) => {
            let operator = connect(args.query)?;
            let count = operator.map().map_err(anyhow::Error::msg)?.partition_count().get();
            for partition in args.partition.map_or(0..count, |p| p..p.saturating_add(1)) {
                let seq = operator.snapshot_partition(partition).map_err(|reason| {
                    anyhow::anyhow!("partition {partition}: no snapshot: {reason}")
                })?;
                println!("partition {partition}: snapshot at log sequence {seq}");
            }
            return Ok(());
        }
        ClusterCommand::Rebalance(args) => {
            let operator = connect(args.query)?;
            let moves = operator.plan().map_err(|reason| anyhow::anyhow!("no plan: {reason}"))?;
            (operator, moves, args.dry_run)
        }
        _ => unreachable!("only move, snapshot and rebalance change the cluster"),
    };
    println!("{} move(s) for an even spread", moves.len());
    for step in moves {
        let line =
            format!("partition {} from {} to {}", step.partition.index(), step.from, step.to);
        if dry_run {
            println!("{line} (dry run)");
            continue;
        }
        let epoch = operator
            .move_partition(step.partition.index(), step.to.as_str())
            .map_err(|reason| anyhow::anyhow!("{line}: failed: {reason}"))?;
        println!("{line}: done (map epoch {epoch})");
    }
    Ok(())
}

/// Runs a `cluster` command: its text on stdout, or one line and exit 1.
fn cluster_command(command: ClusterCommand) -> anyhow::Result<()> {
    use switchboard::cluster::report;
    let (query, haproxy) = match command {
        ClusterCommand::Status(query) => (query, false),
        ClusterCommand::HaproxyMap(query) => (query, true),
        change => return cluster_change(change),
    };
    let snapshot = report::read_snapshot(query.cluster_nats, &query.cluster_name)
        .map_err(|reason| anyhow::anyhow!("cannot read the cluster's buckets: {reason}"))?;
    let text = if haproxy {
        report::haproxy_map_text(snapshot.map.as_ref(), &snapshot.nodes)?
    } else {
        let now_ms = switchboard::clock::Clock::system().now_ms();
        report::status_text(snapshot.map.as_ref(), &snapshot.nodes, now_ms)
    };
    print!("{text}");
    Ok(())
}

/// Flags that override the config file; each also reads a SWITCHBOARD_* variable.
#[derive(Args, Default)]
struct ConfigArgs {
    /// TOML configuration file; fields it omits keep their defaults.
    #[arg(long, env = "SWITCHBOARD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (every shard binds it with SO_REUSEPORT); port 0 picks one.
    /// [default: 127.0.0.1:8080]
    #[arg(long, env = "SWITCHBOARD_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Admin listener for GET /metrics and GET /health (readiness), or `off`.
    /// [default: 127.0.0.1:9090]
    #[arg(long, env = "SWITCHBOARD_ADMIN_LISTEN", value_name = "ADDR|off")]
    admin_listen: Option<String>,
    /// PEM certificate chain: serve https/wss on the listener (with --tls-key).
    /// Reloaded on SIGHUP.
    #[arg(long, env = "SWITCHBOARD_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "SWITCHBOARD_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Number of shards (one pinned thread each); 0 = one per core. Must match
    /// the count the data directory was created with. [default: 0]
    #[arg(long, env = "SWITCHBOARD_SHARDS", value_name = "N")]
    shards: Option<usize>,
    /// Directory for the RocksDB database. [default: ./data]
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// When writes are durable before the sender's 200: sync (fsync each),
    /// group (batched fsync), none (benchmarks only), replicated (cluster
    /// mode: in the partition's JetStream log on a quorum of 3 replicas;
    /// a lost node's partitions are taken over). [default: group]
    #[arg(long, env = "SWITCHBOARD_DURABILITY", value_name = "MODE")]
    durability: Option<Durability>,
    /// Require this token in X-Registration-Token to register accounts.
    #[arg(long, env = "SWITCHBOARD_REGISTRATION_TOKEN", value_name = "TOKEN")]
    registration_token: Option<String>,
    /// Log filter, e.g. info or switchboard=debug. [default: info]
    #[arg(long, env = "SWITCHBOARD_LOG", value_name = "FILTER")]
    log: Option<String>,
    /// I/O driver: auto (io_uring, else epoll), io_uring, epoll. [default: auto]
    #[arg(long, env = "SWITCHBOARD_IO_DRIVER", value_name = "DRIVER")]
    io_driver: Option<IoDriver>,
    /// Do not pin shard threads to cores.
    #[arg(long, env = "SWITCHBOARD_NO_PIN")]
    no_pin: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Cluster mode. Off unless --cluster-nats
/// or the file's [cluster] section turns it on; the other flags need it.
#[derive(Args, Default)]
#[command(next_help_heading = "Cluster mode (off unless --cluster-nats is given)")]
struct ClusterArgs {
    /// NATS servers to join a cluster through, comma-separated
    /// (nats://host:port or tls://host:port); turns cluster mode on.
    #[arg(long, env = "SWITCHBOARD_CLUSTER_NATS", value_name = "URL,...", value_delimiter = ',')]
    cluster_nats: Option<Vec<String>>,
    /// This node's id in the cluster: 1 to 64 of a-z, 0-9, '-'. Required in cluster mode.
    #[arg(long, env = "SWITCHBOARD_NODE_ID", value_name = "ID")]
    node_id: Option<String>,
    /// Internal listener other nodes forward connections to. Required in cluster mode.
    #[arg(long, env = "SWITCHBOARD_CLUSTER_LISTEN", value_name = "ADDR")]
    cluster_listen: Option<SocketAddr>,
    /// Client address other nodes and `cluster status` print. [default: --listen]
    #[arg(long, env = "SWITCHBOARD_CLUSTER_ADVERTISE", value_name = "HOST:PORT")]
    cluster_advertise: Option<String>,
    /// Partitions (a power of two, 1 to 4096); used only when the cluster is
    /// created. [default: 64]
    #[arg(long, env = "SWITCHBOARD_PARTITIONS", value_name = "P")]
    partitions: Option<u32>,
    /// Nodes a new cluster's first map spreads its partitions over, once all
    /// are registered. [default: this node]
    #[arg(
        long,
        env = "SWITCHBOARD_CLUSTER_INITIAL_NODES",
        value_name = "ID,...",
        value_delimiter = ','
    )]
    cluster_initial_nodes: Option<Vec<String>>,
}

impl ClusterArgs {
    fn overrides(self) -> ClusterOverrides {
        ClusterOverrides {
            nats: self.cluster_nats,
            node_id: self.node_id,
            listen: self.cluster_listen,
            advertise: self.cluster_advertise,
            partitions: self.partitions,
            initial_nodes: self.cluster_initial_nodes,
        }
    }
}

impl ConfigArgs {
    fn resolve(self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(admin_listen) = self.admin_listen {
            config.admin_listen = admin_listen;
        }
        if let Some(cert) = self.tls_cert {
            config.tls_cert = Some(cert);
        }
        if let Some(key) = self.tls_key {
            config.tls_key = Some(key);
        }
        if let Some(shards) = self.shards {
            config.shards = shards;
        }
        if let Some(data_dir) = self.data_dir {
            config.data_dir = data_dir;
        }
        if let Some(durability) = self.durability {
            config.durability = durability;
        }
        if let Some(token) = self.registration_token {
            config.registration_token = Some(token);
        }
        if let Some(log) = self.log {
            config.log = log;
        }
        if let Some(driver) = self.io_driver {
            config.io_driver = driver;
        }
        if self.no_pin {
            config.pin_cores = false;
        }
        self.cluster.overrides().apply(&mut config.cluster)?;
        config.validate()?;
        Ok(config)
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Config(args) => {
            print!("{}", args.resolve()?.to_toml());
            Ok(())
        }
        Command::Serve(args) => serve(args.resolve()?),
        Command::Cluster(command) => cluster_command(command),
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log))
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in files or journald.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let data_dir = config.data_dir.clone();
    let drain_timeout = std::time::Duration::from_millis(config.drain_timeout_ms);
    // Before the shard threads start, so they inherit the blocked mask.
    signals::block_stop_signals().context("cannot block SIGTERM and SIGINT")?;
    let running = switchboard::server::start(config)
        .with_context(|| format!("cannot start with data directory {}", data_dir.display()))?;
    tracing::info!(shards = running.shard_count, addr = %running.local_addr, "switchboard started");
    if let Some(admin) = running.admin_addr {
        tracing::info!(%admin, "admin listener (GET /metrics, GET /health)");
    }
    // Tests and scripts read this line to learn the port.
    println!("switchboard listening on {}", running.local_addr);
    std::io::stdout().flush()?;
    switchboard::server::notify::ready();
    let signal = loop {
        match signals::wait_stop_or_reload() {
            signals::Asked::Stop(signal) => break signal,
            signals::Asked::Reload => running.reload_tls(),
        }
    };
    tracing::info!(signal, "draining: no new connections, WebSockets close with 1001");
    drain(running, drain_timeout);
    Ok(())
}

/// Drains every shard, waiting at most `drain_timeout`; a second stop
/// signal exits at once.
fn drain(running: switchboard::server::Running, drain_timeout: std::time::Duration) {
    switchboard::server::notify::stopping();
    running.begin_drain();
    std::thread::spawn(|| {
        let signal = signals::wait_stop_signal();
        tracing::warn!(signal, "second stop signal: exiting without waiting");
        std::process::exit(1);
    });
    let (done, drained) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        running.wait();
        let _ = done.send(());
    });
    match drained.recv_timeout(drain_timeout) {
        Ok(()) => tracing::info!("drained; exiting"),
        Err(_) => tracing::warn!(?drain_timeout, "drain timeout passed; exiting"),
    }
}
