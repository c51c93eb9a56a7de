//! Push decisions on the owner shard: what a stored item, a connect or a
//! closing session means for the device's pushes ([`PushSchedule`] decides,
//! this module looks up tokens and queues jobs), and the shard's push tick
//! (after-close pushes now due, dead tokens from the worker).
//!
//! Invariants: a device with a live session, or without a token, is never
//! pushed; jobs queued by one call go to the worker as one batch; an
//! after-close push goes out only if the device is still away and its queue
//! still holds something when it is due.
//!
//! [`PushSchedule`]: crate::push::schedule::PushSchedule

use crate::accounts::AuthedDevice;
use crate::metrics::ShardMetrics;
use crate::protocol::push::{PushKind, PushPayload};
use crate::push::schedule::Decision;
use crate::push::verification::VerifyRefused;
use crate::push::PushJob;
use crate::shard::ShardCtx;
use crate::store::accounts::{PushProvider, PushToken};
use uuid::Uuid;

/// Items were stored for these `(device, urgent)` pairs: push the ones away.
pub fn on_stored(ctx: &ShardCtx, stored: impl IntoIterator<Item = (AuthedDevice, bool)>) {
    let now_ms = ctx.clock.now_ms();
    for (device, urgent) in stored {
        if ctx.sessions.borrow().get(&device).is_some() {
            continue;
        }
        let Some(token) = ctx.accounts.push_token(&device) else { continue };
        let decision = ctx.push.schedule.borrow_mut().on_stored(device, urgent, now_ms);
        match decision {
            Decision::Alert => queue(ctx, device, token, true, now_ms),
            Decision::Background => queue(ctx, device, token, false, now_ms),
            Decision::Coalesced => ShardMetrics::inc(&ctx.stats().push_coalesced_total),
        }
    }
    ctx.push.link.flush(ctx.stats());
}

/// `device` connected or fetched its queue: nothing pending stays pending.
pub fn on_connected(ctx: &ShardCtx, device: AuthedDevice) {
    ctx.push.schedule.borrow_mut().on_connected(device);
}

/// `device`'s session ended: if it has a token, an alert is due after the
/// delay (sent then only if the queue still holds something).
pub fn on_session_closed(ctx: &ShardCtx, device: AuthedDevice) {
    if ctx.accounts.push_token(&device).is_some() {
        ctx.push.schedule.borrow_mut().on_closed_with_queue(device, ctx.clock.now_ms());
    }
}

/// The shard's push tick: after-close pushes due, dead tokens reported.
pub async fn tick(ctx: &ShardCtx) {
    let now_ms = ctx.clock.now_ms();
    let due = ctx.push.schedule.borrow_mut().take_due(now_ms);
    for device in due {
        let away = ctx.sessions.borrow().get(&device).is_none();
        if away && ctx.queue_lens.len_of(&device) > 0 {
            if let Some(token) = ctx.accounts.push_token(&device) {
                queue(ctx, device, token, true, now_ms);
                ctx.push.schedule.borrow_mut().alerted(device, now_ms);
            }
        }
    }
    ctx.push.link.flush(ctx.stats());
    ctx.push.schedule.borrow_mut().forget_settled(now_ms);
    for dead in ctx.push.link.take_dead_tokens() {
        let removed = ctx
            .accounts
            .remove_dead_push_token(&ctx.writer, dead.device, &dead.token, dead.invalidated_ms)
            .await;
        match removed {
            Ok(true) => {
                ShardMetrics::inc(&ctx.stats().push_tokens_removed_total);
                tracing::info!(account = %dead.device.account, device = dead.device.device_id,
                    "push token removed: the provider says it is dead");
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "dead push token not removed"),
        }
    }
}

/// Opens verification session `id` (owned here) and pushes its challenge
/// to `token`.
pub fn open_verification(
    ctx: &ShardCtx,
    id: Uuid,
    provider: PushProvider,
    token: String,
) -> Result<(), VerifyRefused> {
    let now_ms = ctx.clock.now_ms();
    let challenge = ctx.push.verification_sessions.borrow_mut().create(id, now_ms)?;
    let payload = PushPayload::challenge(PushKind::Challenge, challenge);
    ctx.push.link.queue(PushJob::new(ctx.id, None, provider, token, payload, now_ms));
    ctx.push.link.flush(ctx.stats());
    Ok(())
}

/// Queues a notification push for `device` to its `token`.
fn queue(ctx: &ShardCtx, device: AuthedDevice, token: PushToken, urgent: bool, now_ms: u64) {
    let payload = PushPayload::notification(urgent);
    let job = PushJob::new(ctx.id, Some(device), token.provider, token.token, payload, now_ms);
    ctx.push.link.queue(job);
}
