//! `GET /health`: readiness. Answers 200 once the shard serving it has loaded
//! its accounts and started (it cannot accept before that).

use crate::http::response::Response;
use crate::shard::ShardCtx;

#[derive(serde::Serialize)]
struct Health {
    status: &'static str,
    shard: usize,
    shards: usize,
}

/// Answers the health check.
pub fn handle(ctx: &ShardCtx) -> Response {
    Response::json(200, &Health { status: "ok", shard: ctx.id, shards: ctx.shard_count })
}
