//! One shard: a pinned OS thread running a monoio runtime (io_uring, or the
//! legacy epoll driver where io_uring is unavailable), its listener, its
//! state ([`ShardCtx`]) and the pump that serves its inbound rings.
//!
//! Invariants: `ShardCtx` is created on the shard's thread and never leaves
//! it (it is shared between the shard's tasks by `Rc`); every call to another
//! shard is answered exactly once (the reply, or the caller's pending entry
//! is dropped when the ring refused the call); a connection over
//! `connections_per_shard_max` is closed at accept.

use crate::accounts::{AccountTable, AuthedDevice};
use crate::config::{Config, IoDriver};
use crate::http::response::Response;
use crate::http::websocket::registry::SessionRegistry;
use crate::http::websocket::timers::SessionTimers;
use crate::metrics::{Metrics, ShardMetrics};
use crate::shard::msg::{Call, ShardMsg};
use crate::shard::ring::{Inboxes, Outboxes};
use crate::store::writer::Writer;
use crate::store::{self, Store};
use futures_channel::oneshot;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Why a call to another shard did not get an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The ring stayed full for `ring_full_wait_ms`: back-pressure, 503.
    #[error("shard {0} is busy")]
    Busy(usize),
    /// The other shard dropped the call (shutting down).
    #[error("shard {0} did not answer")]
    NoAnswer(usize),
}

/// Everything one shard owns, shared by its tasks.
pub struct ShardCtx {
    /// This shard's index.
    pub id: usize,
    /// Number of shards in the process.
    pub shard_count: usize,
    /// The configuration (read-only).
    pub config: Arc<Config>,
    /// Accounts this shard owns.
    pub accounts: RefCell<AccountTable>,
    /// Authenticated WebSocket sessions on this shard, by device.
    pub sessions: RefCell<SessionRegistry>,
    /// The shard's writer thread.
    pub writer: Writer,
    /// The database (this shard reads only its own families).
    pub store: Store,
    /// All shards' metrics; this shard writes only its own entry.
    pub metrics: Metrics,
    outboxes: RefCell<Outboxes>,
    /// Calls sent to other shards awaiting their reply, by token.
    pending_calls: RefCell<HashMap<u64, oneshot::Sender<Response>>>,
    next_token: Cell<u64>,
    connections_open: Cell<usize>,
    /// Pending device-link codes by account: (code, expiry ms). One per account.
    pub link_codes: RefCell<HashMap<Uuid, (String, u64)>>,
    /// Accounts with a record write in flight (changes are one at a time).
    pub accounts_changing: RefCell<std::collections::HashSet<Uuid>>,
    /// Stored envelopes per device (see `delivery::retention`).
    pub queue_lens: RefCell<HashMap<AuthedDevice, u32>>,
    /// Next envelope sequence number (orders envelopes within a millisecond).
    next_seq: Cell<u64>,
    /// Last server timestamp handed out: timestamps never go backwards.
    last_server_ms: Cell<u64>,
    /// Where sessions read their sockets: one buffer per shard, borrowed only
    /// inside a synchronous read-and-handle step (never across an await).
    pub read_scratch: RefCell<Vec<u8>>,
    /// Sessions' deadlines (see `http::websocket::timers`).
    pub timers: SessionTimers,
}

/// Size of [`ShardCtx::read_scratch`]: bytes one socket read can take.
pub const READ_SCRATCH_BYTES: usize = 64 * 1024;

/// What a shard thread is started with.
pub struct ShardSetup {
    /// This shard's index.
    pub id: usize,
    /// Number of shards.
    pub shard_count: usize,
    /// Configuration.
    pub config: Arc<Config>,
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
    /// The shard's writer thread, started by the (unpinned) main thread: a
    /// thread inherits its creator's CPU affinity, so a writer started by a
    /// pinned shard would be confined to the shard's core.
    pub writer: Writer,
}

impl ShardCtx {
    /// This shard's metrics.
    pub fn stats(&self) -> &ShardMetrics {
        &self.metrics[self.id]
    }

    /// The shard owning `uuid`.
    pub fn owner_of(&self, uuid: &Uuid) -> usize {
        crate::shard::owner(uuid, self.shard_count)
    }

    /// Sends `msg` to shard `to`, waiting up to `ring_full_wait_ms` for room.
    /// Gives the message back if the ring stayed full.
    pub async fn send_to(&self, to: usize, mut msg: ShardMsg) -> Result<(), ShardMsg> {
        let wait_ms = self.config.limits.ring_full_wait_ms;
        let mut waited_ms = 0;
        loop {
            let sent = self.outboxes.borrow_mut().try_send(to, msg);
            match sent {
                Ok(()) => return Ok(()),
                Err(back) => {
                    ShardMetrics::inc(&self.stats().ring_full_total);
                    if waited_ms >= wait_ms {
                        return Err(back);
                    }
                    msg = back;
                    monoio::time::sleep(Duration::from_millis(1)).await;
                    waited_ms += 1;
                }
            }
        }
    }

    /// Asks shard `to` to do `call` and awaits its reply.
    pub async fn call(&self, to: usize, call: Call) -> Result<Response, CallError> {
        assert_ne!(to, self.id, "local work is done directly, not called");
        let token = self.next_token.get();
        self.next_token.set(token.wrapping_add(1));
        let (reply_sender, reply) = oneshot::channel();
        self.pending_calls.borrow_mut().insert(token, reply_sender);
        let msg = ShardMsg::Call { from: self.id, token, call };
        if self.send_to(to, msg).await.is_err() {
            self.pending_calls.borrow_mut().remove(&token);
            return Err(CallError::Busy(to));
        }
        reply.await.map_err(|_| CallError::NoAnswer(to))
    }

    /// Passes a connection (and the bytes already read from it) to its owner.
    /// On a full ring the connection is closed: the client retries.
    pub async fn hand_off(&self, to: usize, stream: monoio::net::TcpStream, buffered: Vec<u8>) {
        // SAFETY: `into_raw_fd` transfers sole ownership of the descriptor
        // (it panics if an operation still holds it; none does between
        // requests), and `from_raw_fd` takes that ownership over.
        let stream = unsafe { std::net::TcpStream::from_raw_fd(stream.into_raw_fd()) };
        let msg = ShardMsg::Handoff { stream, buffered };
        if self.send_to(to, msg).await.is_ok() {
            ShardMetrics::inc(&self.stats().handoffs_sent_total);
        } else {
            tracing::warn!(
                shard = self.id,
                to,
                "ring full: closing a connection instead of handing it off"
            );
        }
    }

    /// The next envelope sequence number on this shard.
    pub fn next_seq(&self) -> u64 {
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        seq
    }

    /// The server timestamp for an envelope accepted now: the wall clock,
    /// but never earlier than one already handed out.
    pub fn next_server_ms(&self) -> u64 {
        let ms = crate::http::conn::now_ms().max(self.last_server_ms.get());
        self.last_server_ms.set(ms);
        ms
    }

    /// Counts an open connection; `None` when the shard is at its limit.
    pub fn admit_connection(self: &Rc<Self>) -> Option<ConnectionGuard> {
        if self.connections_open.get() >= self.config.limits.connections_per_shard_max {
            ShardMetrics::inc(&self.stats().connections_refused_total);
            return None;
        }
        self.connections_open.set(self.connections_open.get() + 1);
        ShardMetrics::inc(&self.stats().connections_open);
        Some(ConnectionGuard { ctx: self.clone() })
    }
}

/// Holds one slot of the shard's connection limit until dropped.
pub struct ConnectionGuard {
    ctx: Rc<ShardCtx>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.ctx.connections_open.set(self.ctx.connections_open.get() - 1);
        ShardMetrics::dec(&self.ctx.stats().connections_open);
    }
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

async fn serve(setup: ShardSetup) {
    let accounts = match store::accounts::load(&setup.store, setup.id) {
        Ok(accounts) => AccountTable::from_records(accounts),
        Err(error) => {
            tracing::error!(shard = setup.id, %error, "cannot load accounts");
            std::process::exit(1);
        }
    };
    let queue_lens = match store::messages::count_per_device(&setup.store, setup.id) {
        Ok(counts) => counts
            .into_iter()
            .map(|((account, device_id), len)| (AuthedDevice { account, device_id }, len))
            .collect(),
        Err(error) => {
            tracing::error!(shard = setup.id, %error, "cannot count stored messages");
            std::process::exit(1);
        }
    };
    let writer = setup.writer;
    setup.metrics[setup.id]
        .accounts
        .store(accounts.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let timers = SessionTimers::new(timer_tick_ms(&setup.config.limits));
    let ctx = Rc::new(ShardCtx {
        id: setup.id,
        shard_count: setup.shard_count,
        config: setup.config,
        accounts: RefCell::new(accounts),
        sessions: RefCell::new(SessionRegistry::default()),
        writer,
        store: setup.store,
        metrics: setup.metrics,
        outboxes: RefCell::new(setup.outboxes),
        pending_calls: RefCell::new(HashMap::new()),
        next_token: Cell::new(0),
        connections_open: Cell::new(0),
        queue_lens: RefCell::new(queue_lens),
        link_codes: RefCell::new(HashMap::new()),
        accounts_changing: RefCell::new(Default::default()),
        next_seq: Cell::new(0),
        last_server_ms: Cell::new(0),
        read_scratch: RefCell::new(vec![0; READ_SCRATCH_BYTES]),
        timers,
    });
    monoio::spawn(pump(ctx.clone(), setup.inboxes));
    monoio::spawn(crate::delivery::retention::sweep_loop(ctx.clone()));
    monoio::spawn(crate::delivery::lag::probe_loop(ctx.clone()));
    monoio::spawn(timer_loop(ctx.clone()));
    accept_loop(ctx, setup.listener).await;
}

/// The session timers' step: an eighth of the shortest session interval,
/// between 10 and 250 ms (deadlines fire at most one step late).
fn timer_tick_ms(limits: &crate::config::Limits) -> u64 {
    (limits.ping_interval_ms.min(limits.idle_timeout_ms) / 8).clamp(10, 250)
}

/// Fires session deadlines every tick.
async fn timer_loop(ctx: Rc<ShardCtx>) {
    let tick = Duration::from_millis(ctx.timers.tick_ms());
    loop {
        monoio::time::sleep(tick).await;
        ctx.timers.fire_due(crate::http::conn::now_ms());
    }
}

async fn accept_loop(ctx: Rc<ShardCtx>, listener: std::net::TcpListener) {
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
                monoio::spawn(crate::http::conn::serve(ctx.clone(), stream, Vec::new(), guard));
            }
            Err(error) => {
                // Out of descriptors or a transient network error: back off
                // briefly instead of spinning, and keep serving.
                tracing::warn!(shard = ctx.id, %error, "accept failed");
                monoio::time::sleep(Duration::from_millis(10)).await;
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
            ShardMsg::Handoff { stream, buffered } => accept_handoff(&ctx, stream, buffered),
            ShardMsg::Call { from: caller, token, call } => {
                debug_assert_eq!(caller, from);
                let ctx = ctx.clone();
                monoio::spawn(async move {
                    let response = apply_call(&ctx, call).await;
                    let msg = ShardMsg::Reply { token, response };
                    if ctx.send_to(caller, msg).await.is_err() {
                        tracing::warn!(
                            shard = ctx.id,
                            to = caller,
                            "ring full: a reply was dropped"
                        );
                    }
                });
            }
            ShardMsg::Reply { token, response } => {
                if let Some(waiter) = ctx.pending_calls.borrow_mut().remove(&token) {
                    let _ = waiter.send(response);
                }
            }
        });
    }
}

fn accept_handoff(ctx: &Rc<ShardCtx>, stream: std::net::TcpStream, buffered: Vec<u8>) {
    ShardMetrics::inc(&ctx.stats().handoffs_received_total);
    let Some(guard) = ctx.admit_connection() else {
        return;
    };
    match monoio::net::TcpStream::from_std(stream) {
        Ok(stream) => {
            monoio::spawn(crate::http::conn::serve(ctx.clone(), stream, buffered, guard));
        }
        Err(error) => {
            tracing::warn!(shard = ctx.id, %error, "cannot adopt a handed-off connection")
        }
    }
}

async fn apply_call(ctx: &Rc<ShardCtx>, call: Call) -> Response {
    match call {
        Call::CreateAccount { uuid, registration } => {
            crate::http::routes::accounts::create_on_owner(ctx, uuid, registration).await
        }
        Call::LinkDevice { account, code, registration } => {
            crate::http::routes::link::link_on_owner(ctx, account, &code, registration).await
        }
        Call::SendMessage { destination, sender, access_key, send } => {
            crate::delivery::ingest::accept_on_owner(ctx, destination, sender, access_key, send)
                .await
        }
    }
}
