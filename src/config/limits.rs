//! Every limit on something that grows, with its default. Units are last in
//! each name; relations between defaults are checked at compile time, and
//! [`crate::config::Config::validate`] checks the configured values.

use serde::{Deserialize, Serialize};

/// Every limit on something that grows. Units are last in each name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest HTTP request head (request line plus headers), in bytes.
    pub header_bytes_max: usize,
    /// Most headers in one HTTP request.
    pub header_count_max: usize,
    /// Largest HTTP request body and largest Base64-decoded framed body, in bytes.
    pub body_bytes_max: usize,
    /// Largest WebSocket message (and frame), in bytes; larger closes with 1009.
    pub frame_bytes_max: usize,
    /// Most open connections one shard holds; further accepts are closed at once.
    pub connections_per_shard_max: usize,
    /// Most server-initiated requests awaiting a client's answer, per connection.
    pub inflight_requests_max: usize,
    /// Most client requests being handled at once on one WebSocket.
    pub client_requests_inflight_max: usize,
    /// Time allowed for a new connection to send a complete request head.
    pub handshake_timeout_ms: u64,
    /// Time a keep-alive HTTP connection may sit between requests.
    pub http_idle_timeout_ms: u64,
    /// A WebSocket that sends nothing (not even a pong) for this long is closed.
    pub idle_timeout_ms: u64,
    /// Interval between server WebSocket pings.
    pub ping_interval_ms: u64,
    /// Time a client has to answer one server-initiated request.
    pub request_timeout_ms: u64,
    /// Slots in each shard-to-shard SPSC ring.
    pub ring_slots: usize,
    /// Time a shard waits for room on a full ring before answering 503.
    pub ring_full_wait_ms: u64,
    /// Bytes read from a socket per read call.
    pub read_buffer_bytes: usize,
    /// Most devices on one account.
    pub devices_per_account_max: u32,
    /// Most envelopes queued per device; older ones beyond it are trimmed (counted, logged).
    pub queue_len_max: u32,
    /// Most envelopes in one `GET /v1/messages` page.
    pub message_page_len_max: usize,
    /// Most timestamps in one receipt (`PUT /v1/receipts/{uuid}`); over it: 400.
    pub receipt_timestamps_max: usize,
    /// Most recipients of one story (`PUT /v1/stories`); over it: 400.
    pub story_recipients_max: usize,
    /// Most provisioning sockets waiting per shard; over it the upgrade is 503.
    pub provisioning_sockets_per_shard_max: usize,
    /// An unclaimed provisioning socket is closed after this long.
    pub provisioning_timeout_ms: u64,
    /// Most hashes in one `PUT /v1/directory/lookup`; over it: 400.
    pub directory_lookup_hashes_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_bytes_max: 8 * 1024,
            header_count_max: 64,
            body_bytes_max: Self::DEFAULT_BODY_BYTES_MAX,
            frame_bytes_max: Self::DEFAULT_FRAME_BYTES_MAX,
            connections_per_shard_max: 1_000_000,
            inflight_requests_max: 64,
            client_requests_inflight_max: 32,
            handshake_timeout_ms: 10_000,
            http_idle_timeout_ms: 60_000,
            idle_timeout_ms: 90_000,
            ping_interval_ms: 30_000,
            request_timeout_ms: 30_000,
            ring_slots: 4096,
            ring_full_wait_ms: 200,
            read_buffer_bytes: 4096,
            devices_per_account_max: 6,
            queue_len_max: 10_000,
            message_page_len_max: 100,
            receipt_timestamps_max: 100,
            story_recipients_max: 100,
            provisioning_sockets_per_shard_max: 10_000,
            provisioning_timeout_ms: 60_000,
            directory_lookup_hashes_max: 2000,
        }
    }
}

// A framed request carries a Base64 body inside a JSON frame, so a frame must
// be able to hold the largest body (4/3 expansion plus the JSON around it).
const _: () = assert!(Limits::DEFAULT_FRAME_BYTES_MAX >= Limits::DEFAULT_BODY_BYTES_MAX / 3 * 4);

impl Limits {
    const DEFAULT_FRAME_BYTES_MAX: usize = 512 * 1024;
    const DEFAULT_BODY_BYTES_MAX: usize = 256 * 1024;
}
