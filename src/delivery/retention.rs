//! Bounding stored queues: a per-device length cap applied at insert, and a
//! periodic sweep that deletes envelopes older than the retention period.
//!
//! Both count what they delete (`messages_trimmed_total`,
//! `messages_expired_total`) and log it: nothing is dropped silently.
//!
//! Queue lengths are the shard's [`QueueLens`](crate::shard::queue_lens::QueueLens);
//! the retention cut-off is read from the shard's clock.

use crate::accounts::AuthedDevice;
use crate::metrics::ShardMetrics;
use crate::shard::ShardCtx;
use crate::store::messages::{expired_keys, parse_key, read_page};
use crate::store::writer::{Family, Op};
use std::rc::Rc;
use std::time::Duration;

/// Most keys deleted in one sweep batch.
const SWEEP_BATCH_LEN_MAX: usize = 1000;

/// Records one envelope stored for `device`, trimming its oldest envelopes
/// when the queue goes over `queue_len_max`.
pub async fn count_stored(ctx: &Rc<ShardCtx>, device: AuthedDevice) {
    let cap = ctx.config.limits.queue_len_max;
    let len = ctx.queue_lens.add_one(device);
    if len <= cap {
        return;
    }
    let excess = (len - cap) as usize;
    let oldest =
        match read_page(&ctx.store, ctx.id, &device.account, device.device_id, None, excess) {
            Ok((page, _)) => page,
            Err(error) => {
                tracing::error!(shard = ctx.id, %error, "cannot read a queue to trim it");
                return;
            }
        };
    let ops: Vec<Op> = oldest
        .iter()
        .map(|m| Op::Delete { family: Family::Messages, key: m.key.clone() })
        .collect();
    let trimmed = ops.len();
    if ctx.writer.write_lazy(ops).await.is_ok() {
        ctx.queue_lens.remove(device, trimmed as u32);
        ShardMetrics::add(&ctx.stats().messages_trimmed_total, trimmed as u64);
        if let Some(summary) = ctx.queue_trim_warning.note(ctx.clock.now_ms(), trimmed as u64) {
            tracing::warn!(
                shard = ctx.id, account = %device.account, device = device.device_id, cap,
                trims = summary.occurrences, trimmed = summary.amount,
                "queues over their cap: oldest envelopes deleted (this line sums every trim \
                 since the last one; at most one line per 10 s per shard)"
            );
        }
    }
}

/// Every `retention_sweep_interval_ms`, deletes this shard's envelopes older
/// than `message_retention_ms`. Runs for the life of the shard.
pub async fn sweep_loop(ctx: Rc<ShardCtx>) {
    let interval = Duration::from_millis(ctx.config.retention_sweep_interval_ms);
    loop {
        monoio::time::sleep(interval).await;
        let before_ms = ctx.clock.now_ms().saturating_sub(ctx.config.message_retention_ms);
        sweep_before(&ctx, before_ms).await;
    }
}

/// Deletes this shard's envelopes stored before `before_ms`, in batches;
/// returns how many were deleted.
pub async fn sweep_before(ctx: &ShardCtx, before_ms: u64) -> usize {
    let mut expired_total = 0;
    loop {
        let keys = match expired_keys(&ctx.store, ctx.id, before_ms, SWEEP_BATCH_LEN_MAX) {
            Ok(keys) => keys,
            Err(error) => {
                tracing::error!(shard = ctx.id, %error, "retention sweep failed");
                break;
            }
        };
        if keys.is_empty() {
            break;
        }
        let batch_len = keys.len();
        let devices: Vec<AuthedDevice> = keys
            .iter()
            .filter_map(|key| parse_key(key))
            .map(|(account, device_id, _, _)| AuthedDevice { account, device_id })
            .collect();
        let ops =
            keys.into_iter().map(|key| Op::Delete { family: Family::Messages, key }).collect();
        if ctx.writer.write_lazy(ops).await.is_err() {
            break;
        }
        for device in devices {
            ctx.queue_lens.remove(device, 1);
        }
        expired_total += batch_len;
        if batch_len < SWEEP_BATCH_LEN_MAX {
            break;
        }
    }
    if expired_total > 0 {
        ShardMetrics::add(&ctx.stats().messages_expired_total, expired_total as u64);
        tracing::info!(
            shard = ctx.id,
            expired = expired_total,
            "retention sweep deleted expired envelopes"
        );
    }
    expired_total
}
