//! Cluster mode: serving the calls other nodes send this node. One shard
//! takes them from the node's intake, each in its own task: decode, check
//! that this node owns the call's partition in its map (after catching up
//! to the caller's epoch, if the caller's is newer), run it on the owning
//! shard exactly as a call over the rings, and answer with the outcome.
//!
//! Invariants: a call for a partition this node does not own is not run
//! (answered "wrong owner" with this node's epoch); bytes that do not
//! decode are answered "unavailable" (the caller answers 503), never run;
//! a request id seen before is answered as the first time (`recent_calls`).

use crate::cluster::nats::serve::{CallIntake, IncomingCall};
use crate::cluster::wire::{self, Answer, Header};
use crate::metrics::ShardMetrics;
use crate::server::recent_calls::{RecentCalls, Seen};
use crate::shard::msg::Call;
use crate::shard::place::ClusterLink;
use crate::shard::place::Place;
use crate::shard::ShardCtx;
use bytes::Bytes;
use std::cell::RefCell;
use std::rc::Rc;

/// Takes calls from `intake` until the cluster thread ends.
pub async fn serve_calls(ctx: Rc<ShardCtx>, mut intake: CallIntake) {
    let recent = Rc::new(RefCell::new(RecentCalls::default()));
    while let Some(incoming) = intake.next().await {
        let (ctx, recent) = (ctx.clone(), recent.clone());
        monoio::spawn(async move { answer(&ctx, &recent, incoming).await });
    }
    tracing::warn!("the cluster thread ended: this node serves no more calls from other nodes");
}

async fn answer(ctx: &Rc<ShardCtx>, recent: &RefCell<RecentCalls>, incoming: IncomingCall) {
    let Some(cluster) = ctx.cluster.as_ref() else { return };
    let (header, call) = match wire::decode_call(&incoming.payload) {
        Ok(decoded) => decoded,
        Err(error) => {
            tracing::warn!(%error, "a call from another node did not decode");
            let reply = wire::encode_answer(cluster.epoch(), 0, &Answer::Unavailable);
            return incoming.reply(Bytes::from(reply));
        }
    };
    let seen = recent.borrow_mut().begin(header.request_id);
    let reply = match seen {
        Seen::Answered(reply) => reply,
        Seen::Running => {
            let epoch = cluster.epoch();
            Bytes::from(wire::encode_answer(epoch, header.request_id, &Answer::Unavailable))
        }
        Seen::New => {
            let (reply, ran) = run(ctx, cluster.as_ref(), header, call).await;
            let reply = Bytes::from(reply);
            let mut recent = recent.borrow_mut();
            match ran {
                true => recent.finish(header.request_id, &reply),
                false => recent.forget(header.request_id),
            }
            reply
        }
    };
    incoming.reply(reply);
}

/// Runs a decoded call if this node owns its partition; the encoded
/// answer, and whether the call ran (only then is the answer kept).
async fn run(
    ctx: &Rc<ShardCtx>,
    cluster: &dyn ClusterLink,
    header: Header,
    call: Call,
) -> (Vec<u8>, bool) {
    if header.epoch > cluster.epoch() {
        cluster.wait_for_epoch(header.epoch).await;
    }
    let epoch = cluster.epoch();
    let unit = crate::calls::unit_of_call(ctx, &call);
    match ctx.place_of_unit(unit) {
        Place::Shard(shard) => {
            ShardMetrics::inc(&ctx.stats().cluster_calls_served_total);
            let ran = match crate::calls::enter_unit(ctx, unit) {
                Ok(_running) => crate::calls::on_shard(ctx, shard, call).await,
                Err(error) => Err(error),
            };
            match ran {
                Ok(outcome) => (wire::encode_outcome(epoch, header.request_id, &outcome), true),
                Err(_) => {
                    (wire::encode_answer(epoch, header.request_id, &Answer::Unavailable), false)
                }
            }
        }
        Place::Node(_) if epoch > 0 => {
            let answer = Answer::WrongOwner { current_epoch: epoch };
            (wire::encode_answer(epoch, header.request_id, &answer), false)
        }
        // No map yet, or this node's partition is frozen for a move.
        Place::Node(_) | Place::Unowned => {
            (wire::encode_answer(epoch, header.request_id, &Answer::Unavailable), false)
        }
    }
}
