//! One shard's thread: a pinned OS thread running a monoio runtime
//! (io_uring, or the legacy epoll driver where io_uring is unavailable), the
//! loading of its state into a [`ShardCtx`], its accept loop, its ring pump
//! (hand-offs in, calls applied through [`crate::calls::apply`], replies
//! completing pending calls) and its periodic tasks (session timers,
//! retention sweep, lag probe).
//!
//! Invariants: every call from another shard is answered exactly once (its
//! outcome, or, when the ring back stays full, the reply is dropped and
//! logged so the caller sees `NoAnswer`); a connection over
//! `connections_per_shard_max` is closed at accept.
//!
//! Sits at the top with `server`: it may import every layer below.

use crate::accounts::{AccountTable, Accounts, AuthedDevice};
use crate::clock::Clock;
use crate::config::{Config, IoDriver};
use crate::directory::Directory;
use crate::http::conn::Origin;
use crate::metrics::Metrics;
use crate::metrics::ShardMetrics;
use crate::shard::ctx::ShardParts;
use crate::shard::mailbox::SessionEvent;
use crate::shard::mesh::Mesh;
use crate::shard::msg::ShardMsg;
use crate::shard::queue_lens::QueueLens;
use crate::shard::ring::{Inboxes, Outboxes};
use crate::shard::ShardCtx;
use crate::store::writer::WriterThread;
use crate::store::{self, Store};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What a shard thread is started with.
pub struct ShardSetup {
    /// This shard's index.
    pub id: usize,
    /// Number of shards.
    pub shard_count: usize,
    /// Configuration.
    pub config: Arc<Config>,
    /// The public listener's TLS, when configured.
    pub tls: Option<crate::tls::ServerTls>,
    /// The opened store.
    pub store: Store,
    /// Metrics of all shards.
    pub metrics: Metrics,
    /// Sending ends of this shard's rings.
    pub outboxes: Outboxes,
    /// Receiving ends of this shard's rings.
    pub inboxes: Inboxes,
    /// This shard's `SO_REUSEPORT` listener, already bound.
    pub listener: std::net::TcpListener,
    /// Core to pin the thread to, if pinning.
    pub core: Option<core_affinity::CoreId>,
    /// Where wall-clock time comes from.
    pub clock: Clock,
    /// Set once when the server starts draining (SIGTERM or SIGINT).
    pub draining: Arc<AtomicBool>,
    /// Counts shards that have loaded their state (readiness).
    pub ready: Arc<AtomicUsize>,
    /// The shard's writer thread, started by the (unpinned) main thread: a
    /// thread inherits its creator's CPU affinity, so a writer started by a
    /// pinned shard would be confined to the shard's core.
    pub writer: WriterThread,
    /// The shard's end of the push worker's rings.
    pub push_link: crate::push::link::PushLink,
    /// Cluster mode: the node this shard belongs to, and the shard's
    /// `SO_REUSEPORT` internal listener (connections other nodes forward).
    pub cluster: Option<(Arc<crate::cluster::node::Node>, std::net::TcpListener)>,
}

/// Starts the shard's thread.
pub fn spawn(setup: ShardSetup) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(format!("shard-{}", setup.id)).spawn(move || run(setup))
}

type Runtime = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;

fn build_runtime(shard: usize, config: &Config) -> std::io::Result<Runtime> {
    let uring = match config.io_driver {
        IoDriver::Epoll => false,
        IoDriver::IoUring | IoDriver::Auto if monoio::utils::detect_uring() => true,
        IoDriver::IoUring => {
            return Err(std::io::Error::other(
                "io_driver = io_uring, but io_uring is unavailable on this kernel",
            ))
        }
        IoDriver::Auto => {
            tracing::warn!(shard, "io driver: epoll (io_uring is unavailable on this kernel)");
            false
        }
    };
    if !uring {
        tracing::info!(shard, "io driver: epoll");
        return Ok(monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()?
            .into());
    }
    let mut ring = io_uring::IoUring::builder();
    if config.io_uring_sqpoll_idle_ms > 0 {
        ring.setup_sqpoll(config.io_uring_sqpoll_idle_ms);
    }
    tracing::info!(
        shard,
        entries = config.io_uring_entries,
        sqpoll_idle_ms = config.io_uring_sqpoll_idle_ms,
        "io driver: io_uring"
    );
    Ok(monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .with_entries(config.io_uring_entries)
        .uring_builder(ring)
        .enable_timer()
        .build()?
        .into())
}

fn run(setup: ShardSetup) {
    if let Some(core) = setup.core {
        if !core_affinity::set_for_current(core) {
            tracing::warn!(shard = setup.id, "could not pin to core {}", core.id);
        }
    }
    let mut runtime = match build_runtime(setup.id, &setup.config) {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(shard = setup.id, %error, "cannot start the io runtime");
            std::process::exit(1);
        }
    };
    runtime.block_on(serve(setup));
}

/// Exits the process when a shard cannot load its state: serving part of
/// the accounts would answer 401 for the rest.
fn or_exit<T, E: std::fmt::Display>(shard: usize, what: &str, result: Result<T, E>) -> T {
    result.unwrap_or_else(|error| {
        tracing::error!(shard, %error, "cannot load {what}");
        std::process::exit(1);
    })
}

/// Loads this shard's accounts and queue lengths into its context.
fn load(
    setup: ShardSetup,
    cluster: Option<Rc<dyn crate::shard::place::ClusterLink>>,
) -> (Rc<ShardCtx>, Inboxes, std::net::TcpListener, Arc<AtomicBool>) {
    let id = setup.id;
    let ready = setup.ready.clone();
    let records = or_exit(id, "accounts", store::accounts::load(&setup.store, id));
    let counts = or_exit(id, "queue lengths", store::messages::count_per_device(&setup.store, id));
    let queue_lens = counts
        .into_iter()
        .map(|((account, device_id), len)| (AuthedDevice { account, device_id }, len))
        .collect();
    let accounts = Accounts::new(AccountTable::from_records(records));
    let entries = or_exit(id, "directory", store::directory::load(&setup.store, id));
    let directory = Directory::new(entries);
    let stats = &setup.metrics[id];
    stats.accounts.store(accounts.len() as u64, Ordering::Relaxed);
    stats.directory_entries.store(directory.len() as u64, Ordering::Relaxed);
    let wait_ms = setup.config.limits.ring_full_wait_ms;
    let ctx = ShardCtx::new(ShardParts {
        id,
        shard_count: setup.shard_count,
        mesh: Mesh::new(id, setup.outboxes, wait_ms, setup.metrics.clone()),
        config: setup.config,
        tls: setup.tls,
        clock: setup.clock,
        accounts,
        directory,
        push_link: setup.push_link,
        queue_lens: QueueLens::new(queue_lens),
        writer: setup.writer,
        store: setup.store,
        metrics: setup.metrics,
        cluster,
    });
    // Release pairs with the admin listener's Acquire load.
    ready.fetch_add(1, Ordering::Release);
    (Rc::new(ctx), setup.inboxes, setup.listener, setup.draining)
}

async fn serve(mut setup: ShardSetup) {
    let cluster = setup.cluster.take();
    let link = cluster.as_ref().map(|(node, _)| {
        let link = crate::cluster::link::ShardLink::new(node.clone(), setup.shard_count);
        Rc::new(link) as Rc<dyn crate::shard::place::ClusterLink>
    });
    let (ctx, inboxes, listener, draining) = load(setup, link);
    if let Some((node, internal)) = cluster {
        monoio::spawn(accept_loop(ctx.clone(), internal, Origin::Forwarded));
        let intake = node.intake.lock().expect("intake lock").take();
        if let Some(intake) = intake {
            monoio::spawn(crate::server::cluster_calls::serve_calls(ctx.clone(), intake));
        }
        let admin = node.admin_intake.lock().expect("admin intake lock").take();
        if let Some(admin) = admin {
            monoio::spawn(crate::cluster::moves::admin::serve(ctx.clone(), node.clone(), admin));
            monoio::spawn(crate::cluster::replica::tasks::run(ctx.clone(), node.clone()));
        }
    }
    let committer = ctx.clone();
    monoio::spawn(async move { committer.writer.run().await });
    monoio::spawn(pump(ctx.clone(), inboxes));
    monoio::spawn(crate::delivery::retention::sweep_loop(ctx.clone()));
    monoio::spawn(crate::server::lag::probe_loop(ctx.clone()));
    monoio::spawn(timer_loop(ctx.clone()));
    monoio::select! {
        _ = accept_loop(ctx.clone(), listener, Origin::Client) => {}
        _ = until_draining(&draining) => {}
    }
    // The listener is closed with the accept loop: drain what is open.
    drain(&ctx).await;
}

/// How often a shard looks at the drain flag (and, draining, at its sessions).
const DRAIN_POLL_MS: u64 = 20;

/// Resolves once the server starts draining.
async fn until_draining(draining: &AtomicBool) {
    // Acquire pairs with the signal thread's Release store.
    while !draining.load(Ordering::Acquire) {
        monoio::time::sleep(Duration::from_millis(DRAIN_POLL_MS)).await;
    }
}

/// Tells every WebSocket session to close (1001) and waits until they have
/// unregistered; their acknowledged deletes are handed to the writer on the
/// way out. Every 200 already sent was durable before it was sent.
async fn drain(ctx: &ShardCtx) {
    let sessions = ctx.sessions.borrow().len();
    tracing::info!(shard = ctx.id, sessions, "draining: closing sessions");
    for handle in ctx.sessions.borrow().handles() {
        handle.mailbox.push(SessionEvent::Shutdown);
    }
    while !ctx.sessions.borrow().is_empty() {
        monoio::time::sleep(Duration::from_millis(DRAIN_POLL_MS)).await;
    }
    tracing::info!(shard = ctx.id, "drained");
}

/// Pause after a failed accept (out of descriptors stays failed until one frees).
const ACCEPT_BACKOFF_MS: u64 = 10;

/// Fires session deadlines every tick.
async fn timer_loop(ctx: Rc<ShardCtx>) {
    let tick = Duration::from_millis(ctx.timers.tick_ms());
    loop {
        monoio::time::sleep(tick).await;
        ctx.timers.fire_due(ctx.clock.now_ms());
        crate::delivery::push::tick(&ctx).await;
    }
}

async fn accept_loop(ctx: Rc<ShardCtx>, listener: std::net::TcpListener, origin: Origin) {
    let listener = match monoio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(shard = ctx.id, %error, "cannot register the listener");
            std::process::exit(1);
        }
    };
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                ShardMetrics::inc(&ctx.stats().connections_accepted_total);
                let Some(guard) = ctx.admit_connection() else {
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let serving = crate::http::conn::serve_accepted(ctx.clone(), stream, guard, origin);
                monoio::spawn(serving);
            }
            Err(error) => {
                // Out of descriptors (EMFILE, ENFILE) or a transient network
                // error: back off instead of spinning, keep serving the open
                // connections, and accept again once descriptors free up.
                ShardMetrics::inc(&ctx.stats().accept_errors_total);
                if let Some(summary) = ctx.accept_error_warning.note(ctx.clock.now_ms(), 1) {
                    tracing::warn!(
                        shard = ctx.id, %error, failures = summary.occurrences,
                        "accept failed; backing off (one line per 10 s sums the failures)"
                    );
                }
                monoio::time::sleep(Duration::from_millis(ACCEPT_BACKOFF_MS)).await;
            }
        }
    }
}

/// Serves the inbound rings: hand-offs become local connections, calls are
/// applied (each in its own task, so a slow one does not hold up the rest)
/// and replies complete the pending call.
async fn pump(ctx: Rc<ShardCtx>, mut inboxes: Inboxes) {
    loop {
        inboxes.ready().await;
        inboxes.drain(|from, msg| match msg {
            ShardMsg::Handoff { stream, tls, buffered } => {
                accept_handoff(&ctx, stream, tls, buffered)
            }
            ShardMsg::Call { from: caller, token, call } => {
                debug_assert_eq!(caller, from);
                let ctx = ctx.clone();
                monoio::spawn(async move {
                    let outcome = crate::calls::apply(&ctx, call).await;
                    let msg = ShardMsg::Reply { token, outcome };
                    if ctx.mesh.send_to(caller, msg).await.is_err() {
                        tracing::warn!(
                            shard = ctx.id,
                            to = caller,
                            "ring full: a reply was dropped"
                        );
                    }
                });
            }
            ShardMsg::Reply { token, outcome } => ctx.mesh.complete(token, outcome),
            ShardMsg::Unit { unit, op, done } => {
                let _ = done.send(crate::cluster::moves::memory::apply(&ctx, unit, op));
            }
        });
    }
}

fn accept_handoff(
    ctx: &Rc<ShardCtx>,
    stream: std::net::TcpStream,
    tls: Option<Box<rustls::ServerConnection>>,
    buffered: Vec<u8>,
) {
    ShardMetrics::inc(&ctx.stats().handoffs_received_total);
    let Some(guard) = ctx.admit_connection() else {
        return;
    };
    match monoio::net::TcpStream::from_std(stream) {
        Ok(stream) => {
            let transport = crate::http::transport::Transport::with_tls(stream, tls);
            let serving =
                crate::http::conn::serve(ctx.clone(), transport, buffered, guard, Origin::Client);
            monoio::spawn(serving);
        }
        Err(error) => {
            tracing::warn!(shard = ctx.id, %error, "cannot adopt a handed-off connection")
        }
    }
}
