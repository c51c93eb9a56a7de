//! Serving a node's admin subject: the operator's move requests (run one
//! at a time per node) and the steps of moves other nodes make to it.
//!
//! Invariants: bytes that do not decode are answered with a failure, never
//! acted on; a move request is refused while another move runs here.

use super::messages::{self, AdminReply, AdminRequest, Step};
use super::{source, target};
use crate::cluster::nats::serve::{CallIntake, IncomingCall};
use crate::cluster::node::Node;
use crate::shard::ShardCtx;
use bytes::Bytes;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

/// Takes admin requests from `intake` until the cluster thread ends.
pub async fn serve(ctx: Rc<ShardCtx>, node: Arc<Node>, mut intake: CallIntake) {
    let moving = Rc::new(Cell::new(false));
    while let Some(incoming) = intake.next().await {
        let (ctx, node, moving) = (ctx.clone(), node.clone(), moving.clone());
        monoio::spawn(async move { answer(&ctx, &node, &moving, incoming).await });
    }
}

async fn answer(ctx: &ShardCtx, node: &Node, moving: &Cell<bool>, incoming: IncomingCall) {
    let reply = match messages::decode::<AdminRequest>(&incoming.payload) {
        Err(error) => messages::failed(0, error.to_string()),
        Ok(AdminRequest { step: None }) => messages::failed(0, "an empty admin request"),
        Ok(AdminRequest { step: Some(step) }) => run(ctx, node, moving, step).await,
    };
    incoming.reply(Bytes::from(messages::encode(&reply)));
}

async fn run(ctx: &ShardCtx, node: &Node, moving: &Cell<bool>, step: Step) -> AdminReply {
    let result = match step {
        Step::Move(asked) => {
            if moving.replace(true) {
                return messages::failed(
                    0,
                    format!("node {} is already moving a partition", node.id),
                );
            }
            let moved = source::run(ctx, node, asked.partition, &asked.to).await;
            moving.set(false);
            return match moved {
                Ok(epoch) => messages::ok(epoch),
                Err(error) => messages::failed(0, error),
            };
        }
        Step::Snapshot(asked) => {
            let unit = asked.partition as usize;
            if unit >= node.partitions.get() as usize || node.states.is_none() {
                return messages::failed(0, "no such partition, or durability is not replicated");
            }
            return match crate::cluster::replica::tasks::snapshot_unit(ctx, node, unit).await {
                Ok(seq) => messages::AdminReply { seq, ..messages::ok(0) },
                Err(error) => messages::failed(0, error),
            };
        }
        Step::Begin(step) => target::begin(ctx, node, step).await,
        Step::Chunk(chunk) => target::chunk(ctx, node, chunk),
        Step::Load(step) => target::load(ctx, node, step).await,
        Step::Confirm(step) => target::confirm(node, &step),
        Step::Abort(step) => target::abort(ctx, node, step).await,
        Step::Prepare(step) => target::prepare(ctx, node, step).await,
    };
    let epoch = source::current_map(node).map_or(0, |map| map.epoch());
    match result {
        Ok(()) => messages::ok(epoch),
        Err(error) => messages::failed(epoch, error),
    }
}
