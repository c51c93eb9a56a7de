//! Accepting a send on the recipient's owner shard (DESIGN.md section 4).
//!
//! Order of work, all or nothing: the account exists (404); sealed sender
//! presents the recipient's access key (401) unless the recipient allows
//! unrestricted sealed sender; the request names exactly the recipient's
//! devices, less the sender's own device when sending to itself (409); every
//! registration id matches (410). Only then are envelopes built (server GUID,
//! server timestamp), written in one batch and made durable per the mode,
//! and only after that are the recipient's connected sessions told, and the
//! 200 returned. `online` sends skip storage and go to connected devices only.
//!
//! Invariant: a 200 means every envelope of the request is durable; any
//! other answer means none was stored.

use crate::accounts::AuthedDevice;
use crate::http::response::Response;
use crate::http::websocket::mailbox::SessionEvent;
use crate::metrics::ShardMetrics;
use crate::protocol::base64;
use crate::protocol::envelope::{
    new_server_guid, Envelope, MismatchedDevices, Send, StaleDevices, SEALED_SENDER_TYPE,
};
use crate::shard::runtime::ShardCtx;
use crate::store::messages::{encode_value, message_key};
use crate::store::writer::{Family, Op};
use std::rc::Rc;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// Checks the send against the recipient's account; the error is the
/// response to answer (404, 401, 409 or 410).
fn check(
    ctx: &ShardCtx,
    destination: &Uuid,
    sender: Option<AuthedDevice>,
    access_key: Option<&[u8]>,
    send: &Send,
) -> Result<(), Response> {
    let accounts = ctx.accounts.borrow();
    let Some(account) = accounts.get(destination) else {
        return Err(Response::error(404, "no such account"));
    };
    match access_key {
        Some(key) => {
            let allowed = account.unrestricted_unidentified_access
                || account
                    .unidentified_access_key
                    .is_some_and(|expected| bool::from(expected.as_slice().ct_eq(key)));
            if !allowed {
                return Err(Response::error(401, "unidentified access key does not match"));
            }
        }
        None if sender.is_none() => return Err(Response::error(401, "authentication required")),
        None => {}
    }
    let own_device =
        sender.filter(|sender| sender.account == *destination).map(|sender| sender.device_id);
    let expected: Vec<u32> = account
        .devices
        .iter()
        .map(|device| device.id)
        .filter(|id| Some(*id) != own_device)
        .collect();
    let named: Vec<u32> = send.messages.iter().map(|message| message.device_id).collect();
    let mut missing: Vec<u32> = expected.iter().copied().filter(|id| !named.contains(id)).collect();
    let mut extra: Vec<u32> = named.iter().copied().filter(|id| !expected.contains(id)).collect();
    if !missing.is_empty() || !extra.is_empty() {
        missing.sort_unstable();
        extra.sort_unstable();
        let body = MismatchedDevices { missing_devices: missing, extra_devices: extra };
        return Err(Response::json(409, &body));
    }
    let mut stale: Vec<u32> = send
        .messages
        .iter()
        .filter(|message| {
            account.devices.iter().any(|device| {
                device.id == message.device_id && device.registration_id != message.registration_id
            })
        })
        .map(|message| message.device_id)
        .collect();
    if !stale.is_empty() {
        stale.sort_unstable();
        return Err(Response::json(410, &StaleDevices { stale_devices: stale }));
    }
    Ok(())
}

/// Accepts `send` for `destination` on its owner shard (this one).
pub async fn accept_on_owner(
    ctx: &Rc<ShardCtx>,
    destination: Uuid,
    sender: Option<AuthedDevice>,
    access_key: Option<Vec<u8>>,
    send: Send,
) -> Response {
    debug_assert_eq!(ctx.owner_of(&destination), ctx.id);
    if let Err(response) = check(ctx, &destination, sender, access_key.as_deref(), &send) {
        return response;
    }
    let sealed = access_key.is_some();
    let server_ms = ctx.next_server_ms();
    let envelopes: Vec<(u32, Uuid, Vec<u8>)> = send
        .messages
        .iter()
        .map(|message| {
            let guid = new_server_guid();
            let envelope = Envelope {
                kind: if sealed { SEALED_SENDER_TYPE } else { message.kind },
                source_uuid: (!sealed).then(|| sender.map(|s| s.account.to_string())).flatten(),
                source_device: (!sealed).then(|| sender.map(|s| s.device_id)).flatten(),
                timestamp: send.timestamp,
                server_timestamp: server_ms,
                content: base64::encode(&message.content),
                server_guid: guid.to_string(),
                destination_uuid: destination.to_string(),
                urgent: send.urgent,
                story: false,
                server_delivered_timestamp: None,
            };
            (message.device_id, guid, envelope.to_json())
        })
        .collect();

    if send.online {
        let sessions = ctx.sessions.borrow();
        for (device_id, _, json) in envelopes {
            let device = AuthedDevice { account: destination, device_id };
            if let Some(session) = sessions.get(&device) {
                if !session.mailbox.offer(SessionEvent::Ephemeral(json)) {
                    ShardMetrics::inc(&ctx.stats().ephemeral_dropped_total);
                }
            }
        }
        return Response::empty(200);
    }

    let mut ops = Vec::with_capacity(envelopes.len());
    for (device_id, guid, json) in &envelopes {
        let key = message_key(&destination, *device_id, server_ms, ctx.next_seq());
        ops.push(Op::Put { family: Family::Messages, key, value: encode_value(guid, json) });
    }
    if let Err(error) = ctx.writer.write(ops).await {
        tracing::error!(shard = ctx.id, %error, "message write failed");
        return Response::error(503, "storage unavailable, retry");
    }
    ShardMetrics::add(&ctx.stats().messages_stored_total, envelopes.len() as u64);
    for (device_id, _, _) in &envelopes {
        let device = AuthedDevice { account: destination, device_id: *device_id };
        crate::delivery::retention::count_stored(ctx, device).await;
        if let Some(session) = ctx.sessions.borrow().get(&device) {
            session.mailbox.notify_stored();
        }
    }
    Response::empty(200)
}
