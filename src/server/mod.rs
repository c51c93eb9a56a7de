//! Starting the whole server: open the store, bind one `SO_REUSEPORT`
//! listener per shard on the same address, build the ring mesh, and start
//! one pinned thread per shard.
//!
//! - [`shard_loop`]: one shard's thread: runtime, state loading, accept
//!   loop, ring pump and periodic tasks.
//! - [`admin`]: the admin listener (`/metrics`, readiness `/health`).
//! - [`cluster_calls`]: cluster mode: serving calls from other nodes.
//! - [`recent_calls`]: the answers to the last calls, so a repeat is not run.
//! - [`lag`]: the event-loop lag probe.
//! - [`notify`]: systemd readiness (`READY=1`, `STOPPING=1`).
//! - [`signals`]: SIGTERM and SIGINT taken with `sigwait` (graceful drain).
//!
//! The top layer: it may import every module below it, and none imports it.
//!
//! Invariant: every listener is bound before any shard starts, so the
//! address printed at start-up accepts connections at once (the kernel
//! queues them until a shard accepts).

pub mod admin;
pub mod cluster_calls;
pub mod lag;
pub mod notify;
pub mod recent_calls;
pub mod shard_loop;
pub mod signals;

use crate::clock::Clock;
use crate::config::Config;
use crate::shard::ring::build_mesh;
use crate::store::Store;
use shard_loop::ShardSetup;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A started server.
pub struct Running {
    /// The address every shard listens on (the real port when 0 was asked).
    pub local_addr: SocketAddr,
    /// Number of shards.
    pub shard_count: usize,
    /// The admin listener's address, when it runs.
    pub admin_addr: Option<SocketAddr>,
    /// The public listener's TLS, when configured.
    pub tls: Option<crate::tls::ServerTls>,
    metrics: crate::metrics::Metrics,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Set to start draining every shard.
    draining: Arc<AtomicBool>,
}

impl Running {
    /// Starts draining: every shard stops accepting and closes its
    /// WebSockets with 1001, then its thread ends.
    pub fn begin_drain(&self) {
        // Release pairs with each shard's Acquire load.
        self.draining.store(true, Ordering::Release);
    }

    /// Reads the TLS certificate and key files again (SIGHUP): new
    /// handshakes use the new pair, open connections keep theirs. A failure
    /// is logged and counted, and the previous pair stays in use.
    pub fn reload_tls(&self) {
        let Some(tls) = &self.tls else {
            tracing::info!("SIGHUP: no TLS configured, nothing to reload");
            return;
        };
        match tls.reload() {
            Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
            Err(error) => {
                crate::metrics::ShardMetrics::inc(&self.metrics[0].tls_reload_failures_total);
                tracing::error!(%error, "SIGHUP: TLS certificate not reloaded; the previous one stays");
            }
        }
    }

    /// Blocks until every shard thread ends (after [`Running::begin_drain`]).
    pub fn wait(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Backlog of each listener.
const LISTEN_BACKLOG: i32 = 4096;

fn bind_reuseport(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// One `SO_REUSEPORT` listener per shard on `addr` (its port picked by the
/// first when 0).
fn bind_all(addr: SocketAddr, shard_count: usize) -> anyhow::Result<Vec<std::net::TcpListener>> {
    let first = bind_reuseport(addr)
        .map_err(|error| anyhow::anyhow!("cannot listen on {addr}: {error}"))?;
    let local_addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..shard_count {
        listeners.push(bind_reuseport(local_addr)?);
    }
    Ok(listeners)
}

/// What each shard gets in cluster mode: the node, its internal listener.
type ClusterShare = (Arc<crate::cluster::node::Node>, std::net::TcpListener);

/// Opens the store: on a single box after refusing a cluster node's
/// directory; in cluster mode after joining the cluster (which checks the
/// directory's identity), dropping the partitions the map gives others.
fn open_store(
    config: &Config,
    local_addr: SocketAddr,
    shard_count: usize,
) -> anyhow::Result<(Store, Vec<ClusterShare>)> {
    let Some(cluster) = &config.cluster else {
        check_single_box(config)?;
        return Ok((Store::open(&config.data_dir, shard_count)?, vec![]));
    };
    let shares = join_cluster(cluster, config, local_addr, shard_count)?;
    let store = Store::open(&config.data_dir, shard_count)?;
    crate::cluster::node::drop_unowned(&store, &shares[0].0, shard_count)?;
    crate::cluster::replica::adopt_owned(&shares[0].0, &store, shard_count)?;
    Ok((store, shares))
}

/// Cluster mode: binds the internal listeners, joins the cluster (see
/// [`crate::cluster::node`]), and gives each shard the node and its
/// internal listener.
fn join_cluster(
    cluster: &crate::config::cluster::ClusterConfig,
    config: &Config,
    local_addr: SocketAddr,
    shard_count: usize,
) -> anyhow::Result<Vec<ClusterShare>> {
    let internal_listen = cluster.listen.expect("validated: cluster.listen is set");
    let internal = bind_all(internal_listen, shard_count)?;
    let internal_addr = internal[0].local_addr()?;
    let client_addr = cluster.client_addr(local_addr);
    let replicated = config.durability == crate::config::Durability::Replicated;
    let node = crate::cluster::node::join(
        cluster,
        &config.data_dir,
        &client_addr,
        internal_addr,
        replicated,
    )?;
    Ok(internal.into_iter().map(|listener| (node.clone(), listener)).collect())
}

/// Validates the configuration and starts every shard on the system clock.
pub fn start(config: Config) -> anyhow::Result<Running> {
    start_with_clock(config, Clock::system())
}

/// Refuses, on a single box, a data directory made for a cluster node (its
/// accounts are only a share of the cluster's: serving them alone would
/// answer 404 for the rest).
fn check_single_box(config: &Config) -> anyhow::Result<()> {
    if let Some(identity) = crate::cluster::identity::read(&config.data_dir)? {
        anyhow::bail!(
            "data directory {} was made for node {} of cluster {} ({} partitions): it cannot be \
             served as a single box",
            config.data_dir.display(),
            identity.node_id,
            identity.cluster,
            identity.partitions
        );
    }
    Ok(())
}

/// Validates the configuration and starts every shard, reading time from
/// `clock` (tests pass a manual clock they step; the push worker's own
/// waits and provider tokens use real time).
pub fn start_with_clock(config: Config, clock: Clock) -> anyhow::Result<Running> {
    config.validate()?;
    let providers =
        crate::push::worker::Providers::load(&config.push).map_err(anyhow::Error::msg)?;
    let shard_count = config.shard_count();
    if config.durability == crate::config::Durability::None {
        tracing::warn!(
            "durability = none: acknowledged writes can be lost in a crash (benchmarks only)"
        );
    }
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::ServerTls::load(cert, key)?),
        _ => None,
    };
    let listeners = bind_all(config.listen, shard_count)?;
    let local_addr = listeners[0].local_addr()?;
    let (store, mut cluster) = open_store(&config, local_addr, shard_count)?;

    let cores =
        if config.pin_cores { core_affinity::get_core_ids().unwrap_or_default() } else { vec![] };
    let config = Arc::new(config);
    let metrics = crate::metrics::new_metrics(shard_count);
    let draining = Arc::new(AtomicBool::new(false));
    let lifecycle = admin::Lifecycle {
        shards_ready: Arc::new(AtomicUsize::new(0)),
        shard_count,
        draining: draining.clone(),
    };
    let admin_addr = start_admin(&config, &metrics, &lifecycle)?;
    let mesh = build_mesh(shard_count, config.limits.ring_slots);
    let (push_links, worker_links, push_wake) =
        crate::push::link::rings(shard_count, config.push.jobs_queue_len_max);
    crate::push::worker::spawn(&config.push, providers, worker_links, push_wake, metrics.clone())?;
    let mut threads = Vec::with_capacity(shard_count);
    let shards = mesh.into_iter().zip(listeners).zip(push_links).enumerate();
    for (id, (((outboxes, inboxes), listener), push_link)) in shards {
        let writer = crate::store::writer::WriterThread::spawn_replicated(
            store.clone(),
            id,
            config.durability,
            metrics.clone(),
            cluster.first().and_then(|(node, _)| crate::cluster::replica::appender::boxed(node)),
        )?;
        let setup = ShardSetup {
            id,
            shard_count,
            config: config.clone(),
            tls: tls.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
            outboxes,
            inboxes,
            listener,
            core: (!cores.is_empty()).then(|| cores[id % cores.len()]),
            clock: clock.clone(),
            draining: draining.clone(),
            ready: lifecycle.shards_ready.clone(),
            writer,
            push_link,
            cluster: (!cluster.is_empty()).then(|| cluster.remove(0)),
        };
        threads.push(shard_loop::spawn(setup)?);
    }
    Ok(Running { local_addr, shard_count, admin_addr, tls, metrics, threads, draining })
}

/// Starts the admin listener unless it is `off`. The default address being
/// taken (a second server on the box, parallel tests) only warns: the
/// public service does not depend on it. A configured address that cannot
/// be bound stops start-up.
fn start_admin(
    config: &Config,
    metrics: &crate::metrics::Metrics,
    lifecycle: &admin::Lifecycle,
) -> anyhow::Result<Option<SocketAddr>> {
    let Some(addr) = config.admin_addr() else { return Ok(None) };
    match admin::spawn(addr, metrics.clone(), lifecycle.clone()) {
        Ok(bound) => Ok(Some(bound)),
        Err(error) if config.admin_listen == crate::config::ADMIN_LISTEN_DEFAULT => {
            tracing::warn!(%error, "admin listener not started; set admin_listen to another address");
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}
