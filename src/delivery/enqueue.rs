//! Putting items in devices' queues on the owner shard, and offering
//! live-only items to connected devices: the two ends every kind of traffic
//! shares (envelopes, receipts, stories; online-only envelopes, typing).
//!
//! Invariants: [`persist`] writes all of its items in one batch and tells
//! sessions (and, for devices away, the push schedule) only after the
//! batch is durable (so a session reading after its
//! cursor never misses or reorders one); [`offer_live`] never stores or
//! queues beyond a session's bounded mailbox (a full one drops, counted).

use crate::accounts::AuthedDevice;
use crate::delivery::retention;
use crate::metrics::ShardMetrics;
use crate::shard::mailbox::SessionEvent;
use crate::shard::ShardCtx;
use crate::store::messages::{encode_value, message_key, StoredKind};
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
pub async fn persist(
    ctx: &Rc<ShardCtx>,
    destination: Uuid,
    server_ms: u64,
    items: &[Queued],
) -> Result<(), StoreError> {
    let mut ops = Vec::with_capacity(items.len());
    for item in items {
        let key = message_key(&destination, item.device_id, server_ms, ctx.stamps.next_seq());
        let value = encode_value(&item.guid, item.kind, &item.json);
        ops.push(Op::Put { family: Family::Messages, key, value });
    }
    if let Err(error) = ctx.writer.write(ops).await {
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
    ShardMetrics::add(&ctx.stats().messages_stored_total, items.len() as u64);
    for item in items {
        let device = AuthedDevice { account: destination, device_id: item.device_id };
        retention::count_stored(ctx, device).await;
        if let Some(session) = ctx.sessions.borrow().get(&device) {
            session.mailbox.notify_stored();
        }
    }
    let stored = items.iter().map(|item| {
        (AuthedDevice { account: destination, device_id: item.device_id }, item.urgent)
    });
    crate::delivery::push::on_stored(ctx, stored);
    Ok(())
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
