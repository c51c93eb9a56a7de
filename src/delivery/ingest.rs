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
//! refusal means none was stored.

use crate::accounts::{AuthedDevice, SendRefused};
use crate::delivery::retention;
use crate::metrics::ShardMetrics;
use crate::protocol::base64;
use crate::protocol::envelope::{new_server_guid, Envelope, Send, SEALED_SENDER_TYPE};
use crate::shard::mailbox::SessionEvent;
use crate::shard::ShardCtx;
use crate::store::messages::{encode_value, message_key};
use crate::store::writer::{Family, Op};
use std::rc::Rc;
use uuid::Uuid;

/// One envelope of an accepted send: its device, GUID and JSON.
struct Built {
    device_id: u32,
    guid: Uuid,
    json: Vec<u8>,
}

/// Accepts `send` for `destination` on its owner shard (this one).
pub async fn accept(
    ctx: &Rc<ShardCtx>,
    destination: Uuid,
    sender: Option<AuthedDevice>,
    access_key: Option<Vec<u8>>,
    send: Send,
) -> Result<(), SendRefused> {
    debug_assert_eq!(ctx.owner_of(&destination), ctx.id);
    ctx.accounts.check_send(&destination, sender, access_key.as_deref(), &send)?;
    let sealed = access_key.is_some();
    let server_ms = ctx.stamps.next_server_ms(ctx.clock.now_ms());
    let envelopes = build(&send, destination, if sealed { None } else { sender }, server_ms);
    if send.online {
        offer_online(ctx, destination, envelopes);
        return Ok(());
    }
    let mut ops = Vec::with_capacity(envelopes.len());
    for built in &envelopes {
        let key = message_key(&destination, built.device_id, server_ms, ctx.stamps.next_seq());
        let value = encode_value(&built.guid, &built.json);
        ops.push(Op::Put { family: Family::Messages, key, value });
    }
    if let Err(error) = ctx.writer.write(ops).await {
        tracing::error!(shard = ctx.id, %error, "message write failed");
        return Err(SendRefused::Storage(error));
    }
    ShardMetrics::add(&ctx.stats().messages_stored_total, envelopes.len() as u64);
    for built in &envelopes {
        let device = AuthedDevice { account: destination, device_id: built.device_id };
        retention::count_stored(ctx, device).await;
        if let Some(session) = ctx.sessions.borrow().get(&device) {
            session.mailbox.notify_stored();
        }
    }
    Ok(())
}

/// The envelopes of `send`, one per named device; `source` is `None` for
/// sealed sender (type 7, no source fields).
fn build(
    send: &Send,
    destination: Uuid,
    source: Option<AuthedDevice>,
    server_ms: u64,
) -> Vec<Built> {
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
                content: base64::encode(&message.content),
                server_guid: guid.to_string(),
                destination_uuid: destination.to_string(),
                urgent: send.urgent,
                story: false,
                server_delivered_timestamp: None,
            };
            Built { device_id: message.device_id, guid, json: envelope.to_json() }
        })
        .collect()
}

/// Offers online-only envelopes to the devices connected now; the rest are
/// dropped (and counted when a full mailbox refuses one).
fn offer_online(ctx: &ShardCtx, destination: Uuid, envelopes: Vec<Built>) {
    let sessions = ctx.sessions.borrow();
    for built in envelopes {
        let device = AuthedDevice { account: destination, device_id: built.device_id };
        if let Some(session) = sessions.get(&device) {
            if !session.mailbox.offer(SessionEvent::Ephemeral(built.json)) {
                ShardMetrics::inc(&ctx.stats().ephemeral_dropped_total);
            }
        }
    }
}
