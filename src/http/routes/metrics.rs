//! `GET /metrics`: every shard's counters in the Prometheus text format.

use crate::http::response::Response;
use crate::shard::ShardCtx;

/// Renders the metrics.
pub fn handle(ctx: &ShardCtx) -> Response {
    Response {
        status: 200,
        content_type: "text/plain; version=0.0.4",
        body: crate::metrics::render(&ctx.metrics).into_bytes(),
        retry_after_s: None,
    }
}
