//! Accepting a send on the recipient's owner shard (DESIGN.md section 4).
//!
//! Order of work, all or nothing: the account judges the send
//! ([`Accounts::check_send`](crate::accounts::Accounts::check_send): unknown
//! account, sealed-sender key, exact device list, registration ids). Only
//! then are envelopes built (server GUID, server timestamp), written in one
//! batch and made durable per the mode, and only after that are the
//! recipient's connected sessions told. `online` sends skip storage and go
//! to connected devices only.
//!
//! Invariant: `Ok` means every envelope of the request is durable; a
//! refusal means none was stored. An envelope from an identified sender to
//! another account is stored as owing that sender a `DELIVERY` receipt
//! when acknowledged (sealed-sender envelopes owe none).

use crate::accounts::{AuthedDevice, SendRefused};
use crate::delivery::enqueue::{offer_live, persist, Queued};
use crate::delivery::outbox::MESSAGE_PATH;
use crate::protocol::envelope::{new_server_guid, Envelope, Send, SEALED_SENDER_TYPE};
use crate::shard::ShardCtx;
use crate::store::messages::{ReceiptTo, StoredKind};
use std::rc::Rc;
use uuid::Uuid;

/// Accepts `send` for `destination` on its owner shard (this one).
pub async fn accept(
    ctx: &Rc<ShardCtx>,
    destination: Uuid,
    sender: Option<AuthedDevice>,
    access_key: Option<Vec<u8>>,
    send: Send,
) -> Result<(), SendRefused> {
    debug_assert!(ctx.owns(&destination));
    ctx.accounts.check_send(&destination, sender, access_key.as_deref(), &send)?;
    let sealed = access_key.is_some();
    let server_ms = ctx.stamps.next_server_ms(ctx.clock.now_ms());
    let envelopes = build(&send, destination, if sealed { None } else { sender }, server_ms);
    if send.online {
        let live = envelopes.into_iter().map(|item| (item.device_id, item.json));
        offer_live(ctx, destination, MESSAGE_PATH, live);
        return Ok(());
    }
    persist(ctx, destination, &envelopes).await.map_err(SendRefused::Storage)
}

/// The envelopes of `send`, one per named device; `source` is `None` for
/// sealed sender (type 7, no source fields).
fn build(
    send: &Send,
    destination: Uuid,
    source: Option<AuthedDevice>,
    server_ms: u64,
) -> Vec<Queued> {
    send.messages
        .iter()
        .map(|message| {
            let guid = new_server_guid();
            let envelope = Envelope {
                kind: if source.is_some() { message.kind } else { SEALED_SENDER_TYPE },
                source_uuid: source.map(|s| s.account.to_string()),
                source_device: source.map(|s| s.device_id),
                timestamp: send.timestamp,
                server_timestamp: server_ms,
                content: message.content.clone(),
                server_guid: guid.to_string(),
                destination_uuid: destination.to_string(),
                urgent: send.urgent,
                story: false,
                server_delivered_timestamp: None,
            };
            let json = envelope.to_json();
            // The sender hears of the delivery, unless it wrote to itself.
            let kind = match source {
                Some(sender) if sender.account != destination => {
                    let to = ReceiptTo { account: sender.account, timestamp: send.timestamp };
                    StoredKind::IdentifiedEnvelope(to)
                }
                _ => StoredKind::Envelope,
            };
            Queued { device_id: message.device_id, guid, kind, json, urgent: send.urgent }
        })
        .collect()
}
