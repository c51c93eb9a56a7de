//! Owner-side work, wherever it was asked for: run a [`Call`] here when
//! this shard owns its account, otherwise send it through the ring mesh (or
//! in cluster mode to the owning node) and await the owner's typed
//! [`Outcome`]; and apply calls arriving from other shards and nodes.
//! Callers see the same typed results either way.
//!
//! Invariant: a call is answered with the outcome of its own kind (the
//! typed helpers below rely on it, and [`apply`] is the one place that
//! pairs them).
//!
//! Imports: `accounts`, `directory`, `delivery`, `provisioning`, `shard`
//! (and what they carry). The HTTP
//! layer above turns the outcomes into status codes.

use crate::accounts::{
    AuthedDevice, CreateRefused, FanoutRefused, LinkRefused, ProvisionRefused, SendRefused,
};
use crate::directory::ClaimRefused;
use crate::metrics::ShardMetrics;
use crate::protocol::discovery::IdentifierHash;
use crate::protocol::envelope::Send;
use crate::protocol::items::FanoutItem;
use crate::protocol::payloads::Registration;
use crate::push::verification::VerifyRefused;
use crate::shard::mesh::CallError;
use crate::shard::msg::{Call, Outcome};
use crate::shard::place::{Place, RemoteError, UnitGuard};
use crate::shard::receipt_window::Added;
use crate::shard::ShardCtx;
use crate::store::messages::ReceiptTo;
use std::rc::Rc;
use uuid::Uuid;

/// Does `call` on this shard, which owns its account.
pub async fn apply(ctx: &Rc<ShardCtx>, call: Call) -> Outcome {
    let now_ms = ctx.clock.now_ms();
    match call {
        Call::CreateAccount { uuid, registration } => {
            let created =
                ctx.accounts.create(&ctx.writer, ctx.stats(), uuid, &registration, now_ms).await;
            Outcome::AccountCreated(created)
        }
        Call::LinkDevice { account, code, registration } => {
            let devices_max = ctx.config.limits.devices_per_account_max as usize;
            let linked = ctx
                .accounts
                .link(&ctx.writer, account, &code, &registration, devices_max, now_ms)
                .await;
            Outcome::DeviceLinked(linked)
        }
        Call::SendMessage { destination, sender, access_key, send } => {
            let accepted =
                crate::delivery::ingest::accept(ctx, destination, sender, access_key, send).await;
            Outcome::MessageAccepted(accepted)
        }
        Call::FanOut { destination, sender, item } => {
            let fanned = crate::delivery::fanout::fan_out(ctx, destination, sender, item).await;
            Outcome::FannedOut(fanned)
        }
        Call::Provision { address, body } => {
            Outcome::Provisioned(crate::provisioning::deliver(ctx, address, body))
        }
        Call::ClaimHash { hash, account } => {
            Outcome::HashClaimed(ctx.directory.claim(&ctx.writer, hash, account).await)
        }
        Call::ReleaseHash { hash, account } => {
            Outcome::HashReleased(ctx.directory.release(&ctx.writer, hash, account).await)
        }
        Call::FindHashes { hashes } => Outcome::HashesFound(ctx.directory.find(&hashes)),
        Call::CreateVerification { id, provider, token } => Outcome::Verification(
            crate::delivery::push::open_verification(ctx, id, provider, token),
        ),
        Call::AnswerVerification { id, challenge } => {
            let mut sessions = ctx.push.verification_sessions.borrow_mut();
            Outcome::Verification(sessions.answer(&id, &challenge, now_ms))
        }
        Call::ConsumeVerification { id } => {
            let mut sessions = ctx.push.verification_sessions.borrow_mut();
            Outcome::Verification(sessions.consume(&id, now_ms))
        }
    }
}

/// Does a verification call (create, answer, consume) on the owner of
/// its session id.
pub async fn verification(
    ctx: &Rc<ShardCtx>,
    id: Uuid,
    call: Call,
) -> Result<Result<(), VerifyRefused>, CallError> {
    match on_owner(ctx, &id, call).await? {
        Outcome::Verification(result) => Ok(result),
        other => unreachable!("a verification call was answered with {other:?}"),
    }
}

/// Does `call` on the owner of `account`: here, through the mesh, or in
/// cluster mode on the node owning its partition.
async fn on_owner(ctx: &Rc<ShardCtx>, account: &Uuid, call: Call) -> Result<Outcome, CallError> {
    on_unit(ctx, ctx.unit_of(account), call).await
}

/// Does `call` where routing unit `unit` is served. A node that answers
/// "wrong owner" (this node's map is stale) did not run the call: it is
/// routed once more after this node's map reaches the callee's epoch; a
/// second miss, or no owner, is [`CallError::NodeUnavailable`].
pub async fn on_unit(ctx: &Rc<ShardCtx>, unit: usize, call: Call) -> Result<Outcome, CallError> {
    let mut call = call;
    for attempt in 0..2 {
        let (cluster, node) = match ctx.place_of_unit(unit) {
            Place::Shard(shard) => {
                let _running = enter_unit(ctx, unit)?;
                return on_shard(ctx, shard, call).await;
            }
            Place::Unowned => return Err(CallError::NodeUnavailable),
            Place::Node(node) => {
                (ctx.cluster.as_ref().expect("a node place in cluster mode"), node)
            }
        };
        ShardMetrics::inc(&ctx.stats().cluster_calls_sent_total);
        match Box::pin(cluster.call_remote(node, unit, call)).await {
            Ok(outcome) => return Ok(outcome),
            Err(RemoteError::Unavailable(error)) => {
                ShardMetrics::inc(&ctx.stats().cluster_calls_failed_total);
                return Err(error);
            }
            Err(RemoteError::WrongOwner { epoch, call: unrun }) => {
                ShardMetrics::inc(&ctx.stats().cluster_wrong_owner_total);
                if attempt == 1 || !cluster.wait_for_epoch(epoch).await {
                    break;
                }
                call = *unrun;
            }
        }
    }
    Err(CallError::NodeUnavailable)
}

/// Cluster mode: marks an owner-side call running in `unit` until the
/// guard drops (a move waits for none to run); a frozen unit is
/// [`CallError::NodeUnavailable`]. Single box: nothing to mark.
pub fn enter_unit(ctx: &ShardCtx, unit: usize) -> Result<Option<UnitGuard>, CallError> {
    match &ctx.cluster {
        None => Ok(None),
        Some(cluster) => cluster.enter(unit).map(Some).ok_or(CallError::NodeUnavailable),
    }
}

/// The routing unit `call` must run in: its account's, session's,
/// address's or identifier hash's.
pub fn unit_of_call(ctx: &ShardCtx, call: &Call) -> usize {
    match call {
        Call::CreateAccount { uuid: key, .. }
        | Call::LinkDevice { account: key, .. }
        | Call::SendMessage { destination: key, .. }
        | Call::FanOut { destination: key, .. }
        | Call::Provision { address: key, .. }
        | Call::CreateVerification { id: key, .. }
        | Call::AnswerVerification { id: key, .. }
        | Call::ConsumeVerification { id: key } => ctx.unit_of(key),
        Call::ClaimHash { hash, .. } | Call::ReleaseHash { hash, .. } => hash_unit(ctx, hash),
        Call::FindHashes { hashes } => hashes.first().map_or(0, |hash| hash_unit(ctx, hash)),
    }
}

/// Does `call` on shard `shard`: here, or through the mesh.
pub async fn on_shard(ctx: &Rc<ShardCtx>, shard: usize, call: Call) -> Result<Outcome, CallError> {
    // Boxed: both futures are large (kilobytes, with every call's state),
    // and each caller's future held them inline, so every request moved
    // them around several times (memmove was 6 % of the relay in `perf`).
    if shard == ctx.id {
        Ok(Box::pin(apply(ctx, call)).await)
    } else {
        Box::pin(ctx.mesh.call(shard, call)).await
    }
}

/// The routing unit of identifier hash `hash` (its first 8 bytes, as a
/// UUID's top 64 bits).
pub fn hash_unit(ctx: &ShardCtx, hash: &IdentifierHash) -> usize {
    crate::directory::owner_of_hash(hash, ctx.unit_count())
}

/// Makes `account` discoverable by `hash`, on the hash's owner.
pub async fn claim_hash(
    ctx: &Rc<ShardCtx>,
    hash: IdentifierHash,
    account: Uuid,
) -> Result<Result<(), ClaimRefused>, CallError> {
    match on_unit(ctx, hash_unit(ctx, &hash), Call::ClaimHash { hash, account }).await? {
        Outcome::HashClaimed(claimed) => Ok(claimed),
        other => unreachable!("a claim was answered with {other:?}"),
    }
}

/// Stops `account` being discoverable by `hash`, on the hash's owner.
pub async fn release_hash(
    ctx: &Rc<ShardCtx>,
    hash: IdentifierHash,
    account: Uuid,
) -> Result<Result<(), ClaimRefused>, CallError> {
    match on_unit(ctx, hash_unit(ctx, &hash), Call::ReleaseHash { hash, account }).await? {
        Outcome::HashReleased(released) => Ok(released),
        other => unreachable!("a release was answered with {other:?}"),
    }
}

/// The holders of `hashes`, all of routing unit `unit`, in order.
pub async fn find_hashes(
    ctx: &Rc<ShardCtx>,
    unit: usize,
    hashes: Vec<IdentifierHash>,
) -> Result<Vec<Option<Uuid>>, CallError> {
    match on_unit(ctx, unit, Call::FindHashes { hashes }).await? {
        Outcome::HashesFound(found) => Ok(found),
        other => unreachable!("a lookup was answered with {other:?}"),
    }
}

/// Creates account `uuid` on its owner.
pub async fn create_account(
    ctx: &Rc<ShardCtx>,
    uuid: Uuid,
    registration: Registration,
) -> Result<Result<(), CreateRefused>, CallError> {
    match on_owner(ctx, &uuid, Call::CreateAccount { uuid, registration }).await? {
        Outcome::AccountCreated(created) => Ok(created),
        other => unreachable!("a create was answered with {other:?}"),
    }
}

/// Links a device to `account` on its owner; the new device's id.
pub async fn link_device(
    ctx: &Rc<ShardCtx>,
    account: Uuid,
    code: String,
    registration: Registration,
) -> Result<Result<u32, LinkRefused>, CallError> {
    match on_owner(ctx, &account, Call::LinkDevice { account, code, registration }).await? {
        Outcome::DeviceLinked(linked) => Ok(linked),
        other => unreachable!("a link was answered with {other:?}"),
    }
}

/// Accepts a send to `destination` on its owner.
pub async fn send_message(
    ctx: &Rc<ShardCtx>,
    destination: Uuid,
    sender: Option<AuthedDevice>,
    access_key: Option<Vec<u8>>,
    send: Send,
) -> Result<Result<(), SendRefused>, CallError> {
    let call = Call::SendMessage { destination, sender, access_key, send };
    match on_owner(ctx, &destination, call).await? {
        Outcome::MessageAccepted(accepted) => Ok(accepted),
        other => unreachable!("a send was answered with {other:?}"),
    }
}

/// Gives a typing indicator, receipt or story to `destination`'s devices on its owner.
pub async fn fan_out(
    ctx: &Rc<ShardCtx>,
    destination: Uuid,
    sender: AuthedDevice,
    item: FanoutItem,
) -> Result<Result<(), FanoutRefused>, CallError> {
    match on_owner(ctx, &destination, Call::FanOut { destination, sender, item }).await? {
        Outcome::FannedOut(fanned) => Ok(fanned),
        other => unreachable!("a fan-out was answered with {other:?}"),
    }
}

/// Hands a provisioning message to the socket at `address`, on its owner.
pub async fn provision(
    ctx: &Rc<ShardCtx>,
    address: Uuid,
    body: Vec<u8>,
) -> Result<Result<(), ProvisionRefused>, CallError> {
    match on_owner(ctx, &address, Call::Provision { address, body }).await? {
        Outcome::Provisioned(provisioned) => Ok(provisioned),
        other => unreachable!("a provisioning was answered with {other:?}"),
    }
}

/// Owes `acker`'s senders the delivery receipts `due`: they join the
/// shard's receipt window, which is sent `receipt_window_ms` after it
/// opened (at once when it is full), one receipt per (device, sender) pair.
pub fn send_delivery_receipts(ctx: &Rc<ShardCtx>, acker: AuthedDevice, due: Vec<ReceiptTo>) {
    if due.is_empty() {
        return;
    }
    match ctx.receipt_window.add(acker, due) {
        Added::Joined => {}
        Added::Full => flush_delivery_receipts(ctx),
        Added::Opened => {
            let ctx = ctx.clone();
            monoio::spawn(async move {
                let window_ms = ctx.config.receipt_window_ms;
                if window_ms > 0 {
                    monoio::time::sleep(std::time::Duration::from_millis(window_ms)).await;
                }
                flush_delivery_receipts(&ctx);
            });
        }
    }
}

/// Sends what the receipt window holds, each receipt in its own task (each
/// waits for its own durable write on the sender's owner).
fn flush_delivery_receipts(ctx: &Rc<ShardCtx>) {
    let timestamps_max = ctx.config.limits.receipt_timestamps_max;
    for (acker, sender, timestamps) in ctx.receipt_window.take() {
        for receipt in crate::delivery::receipts::delivery_receipts(&timestamps, timestamps_max) {
            let ctx = ctx.clone();
            monoio::spawn(async move {
                let sent = fan_out(&ctx, sender, acker, FanoutItem::Receipt(receipt)).await;
                let counter = match sent {
                    Ok(Ok(())) | Ok(Err(FanoutRefused::UnknownAccount)) => {
                        &ctx.stats().delivery_receipts_total
                    }
                    Ok(Err(_)) | Err(_) => &ctx.stats().delivery_receipts_failed_total,
                };
                ShardMetrics::inc(counter);
            });
        }
    }
}
