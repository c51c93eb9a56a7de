//! A device's stored queue read and acknowledged over REST (for clients
//! without a socket): `GET /v1/messages` pages and
//! `DELETE /v1/messages/uuid/{serverGuid}`.
//!
//! Invariants: a page holds at most `message_page_len_max` envelopes, oldest
//! first; deleting an envelope that is already gone succeeds (deletes are
//! idempotent) and the queue length is only decremented for a real delete.

use crate::accounts::AuthedDevice;
use crate::shard::ShardCtx;
use crate::store::messages::{find_by_guid, read_page, ReceiptTo, StoredKind, StoredMessage};
use crate::store::writer::{Family, Op};
use crate::store::StoreError;
use uuid::Uuid;

/// One page of a queue and whether more follows.
#[derive(Debug)]
pub struct Page {
    /// The envelopes, oldest first.
    pub messages: Vec<StoredMessage>,
    /// True when the queue holds more after this page.
    pub more: bool,
}

/// The oldest page of `device`'s queue.
pub fn first_page(ctx: &ShardCtx, device: AuthedDevice) -> Result<Page, StoreError> {
    let limit = ctx.config.limits.message_page_len_max;
    let (mut messages, more) =
        read_page(&ctx.store, ctx.id, &device.account, device.device_id, None, limit)?;
    // Acknowledged already; their deletes are being retried.
    messages.retain(|message| !ctx.owed_deletes.contains(&message.key));
    Ok(Page { messages, more })
}

/// Deletes `device`'s envelope `guid` if it is still queued; the delivery
/// receipt it owes its sender, if any.
pub async fn delete_by_guid(
    ctx: &ShardCtx,
    device: AuthedDevice,
    guid: &Uuid,
) -> Result<Option<ReceiptTo>, StoreError> {
    let found = find_by_guid(&ctx.store, ctx.id, &device.account, device.device_id, guid)?;
    let Some(message) = found else { return Ok(None) };
    let key = message.key;
    ctx.writer.write_lazy(vec![Op::Delete { family: Family::Messages, key }]).await?;
    ctx.queue_lens.remove(device, 1);
    match message.kind {
        StoredKind::IdentifiedEnvelope(to) => Ok(Some(to)),
        _ => Ok(None),
    }
}
