//! Removing a device from its account (`DELETE /v1/devices/{id}`): its
//! entry in the account record, its whole queue, and its live session.
//!
//! Invariants: the record change and the queue deletes are one atomic
//! write, so a crash leaves either the device with its queue or neither;
//! after it, sends that still name the device are refused (409
//! `extraDevices`) because the record no longer lists it. An envelope whose
//! write was already queued behind the writer when the keys were read is
//! caught by a second pass once the record is durable (no new one can be
//! accepted after it). The live session is closed with 4401.

use crate::accounts::{AuthedDevice, UnlinkRefused};
use crate::shard::mailbox::SessionEvent;
use crate::shard::ShardCtx;
use crate::store::messages::walk_queue;
use crate::store::writer::{Family, Op};
use crate::store::StoreError;
use std::ops::ControlFlow;
use std::rc::Rc;

/// Removes `device_id` from `caller`'s account (the caller is its primary
/// or the device itself).
pub async fn unlink(
    ctx: &Rc<ShardCtx>,
    caller: AuthedDevice,
    device_id: u32,
) -> Result<(), UnlinkRefused> {
    let device = AuthedDevice { account: caller.account, device_id };
    // Refused before the queue is read, not only inside the removal.
    crate::accounts::may_remove(caller, device)?;
    let deletes = queue_deletes(ctx, device).map_err(UnlinkRefused::Storage)?;
    ctx.accounts.remove_device(&ctx.writer, caller, device, deletes).await?;
    if let Ok(stragglers) = queue_deletes(ctx, device) {
        if !stragglers.is_empty() && ctx.writer.write_lazy(stragglers).await.is_err() {
            tracing::warn!(shard = ctx.id, "a removed device's last envelopes were not deleted");
        }
    }
    ctx.queue_lens.remove(device, u32::MAX);
    if let Some(session) = ctx.sessions.borrow().get(&device) {
        session.mailbox.push(SessionEvent::Unlinked);
    }
    Ok(())
}

/// Deletes of every item queued for `device`.
fn queue_deletes(ctx: &ShardCtx, device: AuthedDevice) -> Result<Vec<Op>, StoreError> {
    let mut deletes = Vec::new();
    walk_queue::<()>(&ctx.store, ctx.id, &device.account, device.device_id, |item| {
        deletes.push(Op::Delete { family: Family::Messages, key: item.key });
        ControlFlow::Continue(())
    })?;
    Ok(deletes)
}
