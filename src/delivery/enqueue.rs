//! Putting items in devices' queues on the owner shard, and offering
//! live-only items to connected devices: the two ends every kind of traffic
//! shares (envelopes, receipts, stories; online-only envelopes, typing).
//!
//! Invariants: [`persist`] writes all of its items in one batch, with keys
//! that grow with the writer's job numbers, and tells sessions (and, for
//! devices away, the push schedule) only after the batch is durable (so a
//! session reading after its cursor never misses or reorders one); [`offer_live`] never stores or
//! queues beyond a session's bounded mailbox (a full one drops, counted).

use crate::accounts::AuthedDevice;
use crate::delivery::retention;
use crate::metrics::ShardMetrics;
use crate::shard::mailbox::{Mailbox, SessionEvent};
use crate::shard::tail::Appended;
use crate::shard::ShardCtx;
use crate::store::messages::{encode_value, message_key, StoredKind, StoredMessage};
use crate::store::writer::{Family, Op};
use crate::store::StoreError;
use std::rc::Rc;
use uuid::Uuid;

/// One item for one device of the destination account.
#[derive(Debug)]
pub struct Queued {
    /// The destination device.
    pub device_id: u32,
    /// The item's server GUID.
    pub guid: Uuid,
    /// What it is.
    pub kind: StoredKind,
    /// Its JSON (an object).
    pub json: Vec<u8>,
    /// Urgent (an alert push) or not (a background push) for a device away.
    pub urgent: bool,
}

/// Stores `items` for `destination`'s devices, durably per the mode, then
/// counts them against the queue cap and wakes the devices' sessions.
///
/// Keys are assigned in the same poll that queues the writer job (after
/// waiting for room), so keys grow with job numbers on the shard: the
/// order the store makes items durable is key order. A connected device's
/// item also goes into its session's in-memory tail.
pub async fn persist(
    ctx: &Rc<ShardCtx>,
    destination: Uuid,
    items: &[Queued],
) -> Result<(), StoreError> {
    let tails = match queue_and_wait(ctx, destination, items).await {
        Ok(tails) => tails,
        Err(error) => {
            ShardMetrics::inc(&ctx.stats().store_write_failures_total);
            if let Some(summary) = ctx.write_error_warning.note(ctx.clock.now_ms(), 1) {
                tracing::error!(
                    shard = ctx.id, %error, failures = summary.occurrences,
                    "queue writes failing: sends are answered 503 until storage recovers (this \
                     line sums every failure since the last one; at most one line per 10 s per shard)"
                );
            }
            return Err(error);
        }
    };
    ShardMetrics::add(&ctx.stats().messages_stored_total, items.len() as u64);
    for (item, tail) in items.iter().zip(tails) {
        let device = AuthedDevice { account: destination, device_id: item.device_id };
        retention::count_stored(ctx, device).await;
        if let Some(session) = ctx.sessions.borrow().get(&device) {
            match tail {
                Some(mailbox) if Rc::ptr_eq(&mailbox, &session.mailbox) => mailbox.notify_tail(),
                _ => session.mailbox.notify_stored(),
            }
        }
    }
    let stored = items.iter().map(|item| {
        (AuthedDevice { account: destination, device_id: item.device_id }, item.urgent)
    });
    crate::delivery::push::on_stored(ctx, stored);
    Ok(())
}

/// Waits for room in the writer's queue, then (in the same poll) assigns
/// keys, queues the write and appends each item to its device's session
/// tail; waits until the write is durable. Returns, per item, the mailbox whose tail holds it.
async fn queue_and_wait(
    ctx: &Rc<ShardCtx>,
    destination: Uuid,
    items: &[Queued],
) -> Result<Vec<Option<Rc<Mailbox>>>, StoreError> {
    ctx.writer.wait_for_room().await?;
    let key_ms = ctx.stamps.next_server_ms(ctx.clock.now_ms());
    let failures_before = ctx.writer.failed_batches();
    let mut ops = Vec::with_capacity(items.len());
    let mut messages = Vec::with_capacity(items.len());
    for item in items {
        let key = message_key(&destination, item.device_id, key_ms, ctx.stamps.next_seq());
        let value = encode_value(&item.guid, item.kind, &item.json);
        let message = StoredMessage {
            key: key.clone(),
            guid: item.guid,
            kind: item.kind,
            json: item.json.clone(),
        };
        messages.push(message);
        ops.push(Op::Put { family: Family::Messages, key, value });
    }
    let pushed = ctx.writer.push(ops, true)?;
    let tails: Vec<Option<Rc<Mailbox>>> = {
        let sessions = ctx.sessions.borrow();
        items
            .iter()
            .zip(messages)
            .map(|(item, message)| {
                let device = AuthedDevice { account: destination, device_id: item.device_id };
                let mailbox = &sessions.get(&device)?.mailbox;
                let appended = mailbox.tail().append(pushed.job, failures_before, message);
                (appended == Appended::InTail).then(|| mailbox.clone())
            })
            .collect()
    };
    pushed.done().await?;
    Ok(tails)
}

/// Offers `json` at `path` to each of `devices` of `destination` that is
/// connected now; the others never get it.
pub fn offer_live(
    ctx: &ShardCtx,
    destination: Uuid,
    path: &'static str,
    items: impl IntoIterator<Item = (u32, Vec<u8>)>,
) {
    let sessions = ctx.sessions.borrow();
    for (device_id, json) in items {
        let device = AuthedDevice { account: destination, device_id };
        if let Some(session) = sessions.get(&device) {
            if !session.mailbox.offer(SessionEvent::Ephemeral { path, json }) {
                ShardMetrics::inc(&ctx.stats().ephemeral_dropped_total);
            }
        }
    }
}
