//! A connection's delivery: reading its device's stored queue in pages,
//! the in-flight window of server requests, acknowledgements, and the
//! batched deletes of acknowledged envelopes.
//!
//! The session (transport) asks the outbox what to send and tells it what the
//! client answered; the outbox never touches the socket or the framing. Every
//! server request it opens is an [`Outgoing`] the session writes as a
//! `PUT {path}` frame with the outbox's id.
//!
//! Invariants: at most `inflight_requests_max` requests are open (plus the
//! one `queue/empty`, due once per connection); envelopes are sent in store
//! key order, backlog and live traffic as one stream (see
//! [`QueueCursor`]); only a 200 to a stored envelope's request deletes it,
//! and the deletes of one loop turn are one write; the delete need not be
//! synced (if a crash loses it, the envelope is delivered again:
//! at-least-once); until a delete is applied its keys are owed
//! (`shard::owed_deletes`) and never delivered again by this shard (a
//! reconnecting device reads the store before the delete lands), and a
//! delete whose write fails is retried for about a minute. An envelope acknowledged while its put is still in the
//! shard's open write batch is elided instead (neither put nor delete is
//! written, counted in `switchboard_messages_elided_total`). The delivery
//! receipts the acknowledgements of one loop turn owe are handed back
//! together. Live traffic comes from the session's in-memory
//! [`tail`](crate::shard::tail) once a store read has caught up with
//! everything older, before its batch is written; the store is read again
//! whenever the tail cannot vouch for what follows the cursor.

use crate::accounts::AuthedDevice;
use crate::clock::thread_cpu_us;
use crate::delivery::cursor::QueueCursor;
use crate::delivery::form::{ephemeral_body, requests_for};
pub use crate::delivery::form::{
    DeliveryForm, MESSAGE_PATH, RECEIPT_PATH, STORY_PATH, TYPING_PATH,
};
use crate::delivery::window::{Inflight, InflightWindow};
use crate::metrics::ShardMetrics;
use crate::shard::mailbox::QueueNews;
use crate::shard::tail::TailSlot;
use crate::shard::ShardCtx;
use crate::store::batch::OpRef;
use crate::store::messages::{parse_key, read_page, ReceiptTo, StoredKind, StoredMessage};
use crate::store::writer::{Family, Op};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::Ordering;

/// Path of the "backlog drained" request.
pub const QUEUE_EMPTY_PATH: &str = "/api/v1/queue/empty";

/// `(done_through, failed_batches)` of the shard's writer.
fn writer_progress(ctx: &ShardCtx) -> (u64, u64) {
    (ctx.writer.done_through(), ctx.writer.failed_batches())
}

/// What an open server request was for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    /// `PUT /api/v1/queue/empty`.
    QueueEmpty,
    /// A stored item: a 200 deletes the key.
    Stored {
        /// Its store key.
        key: Vec<u8>,
        /// The sender owed a delivery receipt once it is acknowledged.
        receipt_to: Option<ReceiptTo>,
        /// Where its put was staged, when it came from the tail (it may
        /// still be in the open batch, to be elided).
        staged: Option<OpRef>,
        /// For an item sent as several requests (a delivery receipt to a
        /// protobuf device, one envelope per timestamp): the parts not yet
        /// acknowledged, shared by them; the last acknowledgement counts.
        parts_left: Option<Rc<Cell<usize>>>,
    },
    /// An online-only envelope: nothing to delete.
    Ephemeral,
}

/// A server request for the session to write (always a `PUT`).
#[derive(Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The request id (the server's own id space).
    pub id: u64,
    /// Path of the `PUT`.
    pub path: &'static str,
    /// Body bytes (in the connection's form), if any.
    pub body: Option<Vec<u8>>,
}

/// One connection's delivery state.
#[derive(Debug)]
pub struct Outbox {
    device: AuthedDevice,
    cursor: QueueCursor,
    window: InflightWindow<Pending>,
    /// Keys acknowledged since the last [`Outbox::delete_acked`].
    acked: Vec<Vec<u8>>,
    /// Delivery receipts owed for those acknowledgements.
    receipts_due: Vec<ReceiptTo>,
    form: DeliveryForm,
}

impl Outbox {
    /// Delivery for `device`'s connection in `form`, with at most
    /// `window_len_max` items open (an item sent as several requests opens
    /// its further parts beyond the window: at most
    /// `receipt_timestamps_max - 1` more each).
    pub fn new(device: AuthedDevice, window_len_max: usize, form: DeliveryForm) -> Self {
        Self {
            device,
            cursor: QueueCursor::default(),
            window: InflightWindow::new(window_len_max),
            acked: Vec::new(),
            receipts_due: Vec::new(),
            form,
        }
    }

    /// Sends stored envelopes while the window has room and the queue may
    /// hold unsent ones (`news` says what was stored since the last call),
    /// from the store or, once it vouches for what follows, from `tail`;
    /// sends `queue/empty` the first time the queue runs dry. `send` writes
    /// one request and returns false when the connection can take no more;
    /// then this returns false too.
    pub fn pump(
        &mut self,
        ctx: &ShardCtx,
        news: QueueNews,
        tail: &TailSlot,
        send: &mut impl FnMut(Outgoing) -> bool,
    ) -> bool {
        if news.stored || (news.tail && !tail.is_serving()) {
            self.cursor.on_stored();
        }
        while !self.window.is_full() {
            let free = self.window.capacity() - self.window.len();
            if self.cursor.wants_read() {
                let progress_before = writer_progress(ctx);
                let Some((page, more)) = self.read_page(ctx, free) else { return true };
                if !more {
                    let open_batch = ctx.writer.open_batch();
                    tail.on_store_caught_up(
                        progress_before,
                        open_batch,
                        ctx.writer.failed_batches(),
                    );
                }
                let last_key = page.last().map(|message| message.key.clone());
                let page = page.into_iter().map(|message| (message, None));
                if !self.deliver(ctx, page, send) {
                    return false;
                }
                if self.cursor.on_page(last_key.as_deref(), more) {
                    // Outside the window: it is due exactly once per connection.
                    let now_ms = ctx.clock.now_ms();
                    let id = self.window.open_unbounded(Pending::QueueEmpty, now_ms);
                    if !send(Outgoing { id, path: QUEUE_EMPTY_PATH, body: None }) {
                        return false;
                    }
                }
                continue;
            }
            let failures = ctx.writer.failed_batches();
            let page = match tail.take_ready(failures, self.cursor.cursor(), free) {
                Ok(page) => page,
                Err(invalid) => {
                    tracing::debug!(?invalid, "queue tail dropped: reading the store");
                    self.cursor.on_stored();
                    continue;
                }
            };
            let Some(last_key) = page.last().map(|(message, _)| message.key.clone()) else { break };
            ShardMetrics::add(&ctx.stats().messages_delivered_from_tail_total, page.len() as u64);
            let page = page.into_iter().map(|(message, at)| (message, Some(at)));
            if !self.deliver(ctx, page, send) {
                return false;
            }
            self.cursor.advance(last_key);
        }
        true
    }

    /// Opens a request for each of `page`'s items (with where its put is
    /// staged, if it may still be unwritten) and sends it; false once the
    /// connection can take no more.
    fn deliver(
        &mut self,
        ctx: &ShardCtx,
        page: impl Iterator<Item = (StoredMessage, Option<OpRef>)>,
        send: &mut impl FnMut(Outgoing) -> bool,
    ) -> bool {
        let now_ms = ctx.clock.now_ms();
        for (message, staged) in page {
            if ctx.owed_deletes.contains(&message.key) {
                continue; // acknowledged; its delete is being retried
            }
            if let Some((_, _, stored_ms, _)) = parse_key(&message.key) {
                let waited_us = now_ms.saturating_sub(stored_ms).saturating_mul(1000);
                ctx.stats().histograms.deliver_seconds.record_us(waited_us);
            }
            let receipt_to = match message.kind {
                StoredKind::IdentifiedEnvelope(to) => Some(to),
                _ => None,
            };
            if message.kind == StoredKind::Story && !self.form.stories {
                // The device does not take stories: acknowledged unseen.
                self.acknowledge(ctx, message.key, receipt_to, staged);
                continue;
            }
            let requests = match requests_for(self.form, &message, &self.device.account, now_ms) {
                Ok(requests) => requests,
                Err(error) => {
                    tracing::error!(shard = ctx.id, %error, "a stored item is left undelivered");
                    continue;
                }
            };
            let count = requests.len();
            let parts_left = (count > 1).then(|| Rc::new(Cell::new(count)));
            let mut key = Some(message.key);
            for (index, (path, body)) in requests.into_iter().enumerate() {
                let key = if index + 1 == count { key.take() } else { key.clone() };
                let key = key.expect("one key per part");
                let parts_left = parts_left.clone();
                let pending = Pending::Stored { key, receipt_to, staged, parts_left };
                // A page fits the free slots; further parts go beyond them.
                let opened = self.window.open(pending, now_ms);
                let id =
                    opened.unwrap_or_else(|pending| self.window.open_unbounded(pending, now_ms));
                if !send(Outgoing { id, path, body: Some(body) }) {
                    return false;
                }
            }
            ShardMetrics::inc(&ctx.stats().messages_delivered_total);
        }
        true
    }

    /// Deletes (or elides, while its put is in the open batch) the
    /// acknowledged item `key`, owing its sender `receipt_to`.
    fn acknowledge(
        &mut self,
        ctx: &ShardCtx,
        key: Vec<u8>,
        receipt_to: Option<ReceiptTo>,
        staged: Option<OpRef>,
    ) {
        if staged.is_some_and(|at| ctx.writer.elide(at, &key)) {
            ShardMetrics::inc(&ctx.stats().messages_elided_total);
            ShardMetrics::inc(&ctx.stats().messages_acked_total);
        } else {
            self.acked.push(key);
        }
        self.receipts_due.extend(receipt_to);
    }

    /// Reads up to `limit` envelopes after the cursor, timing the read.
    fn read_page(&self, ctx: &ShardCtx, limit: usize) -> Option<(Vec<StoredMessage>, bool)> {
        let read_started = std::time::Instant::now();
        let read_cpu_started_us = thread_cpu_us();
        let device = &self.device;
        let page = read_page(
            &ctx.store,
            ctx.id,
            &device.account,
            device.device_id,
            self.cursor.cursor(),
            limit,
        );
        let stats = ctx.stats();
        let read_us = read_started.elapsed().as_micros() as u64;
        stats.store_read_max_us.fetch_max(read_us, Ordering::Relaxed);
        let read_cpu_us = thread_cpu_us().saturating_sub(read_cpu_started_us);
        stats.store_read_cpu_max_us.fetch_max(read_cpu_us, Ordering::Relaxed);
        page.map_err(|error| tracing::error!(shard = ctx.id, %error, "cannot read a queue")).ok()
    }

    /// Opens a request for a live-only item at `path`; `None` (counted as
    /// dropped) when the window is full.
    pub fn offer_ephemeral(
        &mut self,
        ctx: &ShardCtx,
        path: &'static str,
        json: &[u8],
    ) -> Option<Outgoing> {
        let now_ms = ctx.clock.now_ms();
        let body = match ephemeral_body(self.form, path, json, now_ms) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(shard = ctx.id, %error, "a live item is dropped");
                return None;
            }
        };
        let Ok(id) = self.window.open(Pending::Ephemeral, now_ms) else {
            ShardMetrics::inc(&ctx.stats().ephemeral_dropped_total);
            return None;
        };
        Some(Outgoing { id, path, body: Some(body) })
    }

    /// The client answered request `id`; `acked` when its status
    /// acknowledges (the session's framing decides). An acknowledged item
    /// still in the open batch is elided; any other is deleted with the
    /// turn's other acknowledgements.
    pub fn on_response(&mut self, ctx: &ShardCtx, id: u64, acked: bool) {
        match self.window.complete(id) {
            Some(Inflight {
                kind: Pending::Stored { key, receipt_to, staged, parts_left },
                ..
            }) if acked => {
                if let Some(left) = parts_left {
                    left.set(left.get() - 1);
                    if left.get() > 0 {
                        return;
                    }
                }
                self.acknowledge(ctx, key, receipt_to, staged);
            }
            Some(inflight) => {
                if !acked {
                    tracing::debug!(kind = ?inflight.kind, "client refused a server request");
                }
            }
            None => tracing::debug!(id, "response to no open request"),
        }
    }

    /// Closes requests open longer than `timeout_ms` (their envelopes stay
    /// queued for the next connection); returns how many.
    pub fn expire(&mut self, now_ms: u64, timeout_ms: u64) -> usize {
        let expired = self.window.expire(now_ms, timeout_ms);
        for (id, _) in &expired {
            tracing::debug!(id, "server request timed out");
        }
        expired.len()
    }

    /// Deletes the envelopes acknowledged since the last call, as one write
    /// in its own task (retried when it fails); counts them once the delete
    /// is applied. Returns the
    /// delivery receipts those acknowledgements owe their senders.
    pub fn delete_acked(&mut self, ctx: &Rc<ShardCtx>) -> Vec<ReceiptTo> {
        if self.acked.is_empty() {
            // Elided acknowledgements owe receipts too.
            return std::mem::take(&mut self.receipts_due);
        }
        let keys = std::mem::take(&mut self.acked);
        // Owed until applied: a new connection of the device reading the
        // store meanwhile must not get them again.
        ctx.owed_deletes.insert(&keys);
        let ctx = ctx.clone();
        let device = self.device;
        monoio::spawn(async move { delete_retrying(&ctx, device, keys).await });
        std::mem::take(&mut self.receipts_due)
    }
}

/// Attempts at deleting acknowledged envelopes before giving up (with
/// pauses doubling from 50 ms to 2 s: about a minute in all).
const DELETE_ATTEMPTS_MAX: u32 = 36;

/// Deletes `device`'s acknowledged envelopes `keys` (owed meanwhile: never
/// delivered again by this shard), retrying a failed write (a partition
/// log not ready, a full disk).
async fn delete_retrying(ctx: &ShardCtx, device: AuthedDevice, keys: Vec<Vec<u8>>) {
    let count = keys.len() as u32;
    let mut pause_ms = 50;
    for attempt in 1..=DELETE_ATTEMPTS_MAX {
        let ops = keys.iter().map(|key| Op::Delete { family: Family::Messages, key: key.clone() });
        match ctx.writer.write_lazy(ops.collect()).await {
            Ok(()) => {
                ShardMetrics::add(&ctx.stats().messages_acked_total, u64::from(count));
                ctx.queue_lens.remove(device, count);
                break;
            }
            Err(error) if attempt < DELETE_ATTEMPTS_MAX => {
                if attempt == 1 {
                    tracing::warn!(shard = ctx.id, %error, "acked envelopes not deleted yet: retrying");
                }
                monoio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
                pause_ms = (pause_ms * 2).min(2_000);
            }
            Err(error) => tracing::error!(shard = ctx.id, %error, "acked envelopes not deleted"),
        }
    }
    ctx.owed_deletes.remove(&keys);
}
