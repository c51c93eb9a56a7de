//! Putting items in devices' queues on the owner shard, and offering
//! live-only items to connected devices: the two ends every kind of traffic
//! shares (envelopes, receipts, stories; online-only envelopes, typing).
//!
//! Invariants: [`persist`] stages all of its items in one batch, with keys
//! that grow with the batch numbers; a serving session tail gets them at
//! once, and the store's readers (sessions without a serving tail, the
//! push schedule) hear of them only after the batch is durable (so a
//! session reading after its cursor never misses or reorders one); an item
//! elided by an early acknowledgement is neither counted nor pushed;
//! [`offer_live`] never stores or queues beyond a session's bounded
//! mailbox (a full one drops, counted).

use crate::accounts::AuthedDevice;
use crate::delivery::retention;
use crate::metrics::ShardMetrics;
use crate::shard::mailbox::{Mailbox, SessionEvent};
use crate::shard::tail::Appended;
use crate::shard::ShardCtx;
use crate::store::batch::OpRef;
use crate::store::commit::Pending;
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

/// Stores `items` for `destination`'s devices, durably per the mode (or
/// not at all, for an item its device acknowledged before its batch was
/// written), then counts the stored ones against the queue cap and tells
/// the devices' sessions (and, for devices away, the push schedule).
///
/// Keys are assigned in the same poll that stages the write (after waiting
/// for room), so keys grow with batch numbers on the shard: the order the
/// store makes items durable is key order. A connected device's item also
/// goes into its session's in-memory tail, and a serving tail delivers it
/// at once, before the write (DESIGN.md section 4).
pub async fn persist(
    ctx: &Rc<ShardCtx>,
    destination: Uuid,
    items: &[Queued],
) -> Result<(), StoreError> {
    let staged = match stage(ctx, destination, items).await {
        Ok((pending, tails)) => pending.done().await.map(|elided| (elided, tails)),
        Err(error) => Err(error),
    };
    let (elided, tails) = match staged {
        Ok(staged) => staged,
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
    ShardMetrics::add(&ctx.stats().messages_stored_total, (items.len() - elided.len()) as u64);
    let mut stored = Vec::with_capacity(items.len());
    for (index, (item, tail)) in items.iter().zip(tails).enumerate() {
        if elided.binary_search(&(index as u32)).is_ok() {
            continue;
        }
        let device = AuthedDevice { account: destination, device_id: item.device_id };
        retention::count_stored(ctx, device).await;
        if let Some(session) = ctx.sessions.borrow().get(&device) {
            match tail {
                // A serving tail has delivered it (or will): the store has nothing new.
                Some(mailbox) if Rc::ptr_eq(&mailbox, &session.mailbox) => {
                    if !mailbox.tail().is_serving() {
                        mailbox.notify_tail();
                    }
                }
                _ => session.mailbox.notify_stored(),
            }
        }
        stored.push((device, item.urgent));
    }
    crate::delivery::push::on_stored(ctx, stored);
    Ok(())
}

/// Waits for room in the open batch, then (in the same poll) assigns keys,
/// stages the puts and appends each item to its device's session tail
/// (waking a serving tail's session). Returns the staged write and, per
/// item, the mailbox whose tail holds it.
async fn stage(
    ctx: &Rc<ShardCtx>,
    destination: Uuid,
    items: &[Queued],
) -> Result<(Pending, Vec<Option<Rc<Mailbox>>>), StoreError> {
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
    let pending = ctx.writer.stage(ops, true);
    let first = pending.first;
    let tails: Vec<Option<Rc<Mailbox>>> = {
        let sessions = ctx.sessions.borrow();
        items
            .iter()
            .zip(messages)
            .enumerate()
            .map(|(index, (item, message))| {
                let device = AuthedDevice { account: destination, device_id: item.device_id };
                let mailbox = &sessions.get(&device)?.mailbox;
                let at = OpRef { index: first.index + index as u32, ..first };
                if mailbox.tail().append(at, failures_before, message) == Appended::NotInTail {
                    return None;
                }
                if mailbox.tail().is_serving() {
                    // Delivered now: its acknowledgement may beat the write.
                    ctx.writer.mark_elidable(at);
                    mailbox.notify_tail();
                }
                Some(mailbox.clone())
            })
            .collect()
    };
    Ok((pending, tails))
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
