//! Typing indicators, receipts and stories on the destination's owner shard
//! (DESIGN.md sections 3 and 4): one copy for every device of the
//! destination account (less the sender's own device when it writes to its
//! own account).
//!
//! - typing goes live to connected devices only: never stored, never
//!   pushed, never redelivered;
//! - receipts and stories are stored like envelopes (durable before the
//!   answer, delivered in order with envelopes, deleted on the device's 200,
//!   redelivered otherwise); each story copy has its own server GUID.

use crate::accounts::{AuthedDevice, FanoutRefused};
use crate::delivery::enqueue::{offer_live, persist, Queued};
use crate::delivery::outbox::TYPING_PATH;
use crate::protocol::envelope::new_server_guid;
use crate::protocol::items::{FanoutItem as Item, ReceiptDelivery, StoryDelivery, TypingDelivery};
use crate::protocol::payloads::to_json;
use crate::shard::ShardCtx;
use crate::store::messages::StoredKind;
use std::rc::Rc;
use uuid::Uuid;

/// Fans `item` from `sender` out to `destination`'s devices on its owner
/// shard (this one).
pub async fn fan_out(
    ctx: &Rc<ShardCtx>,
    destination: Uuid,
    sender: AuthedDevice,
    item: Item,
) -> Result<(), FanoutRefused> {
    debug_assert!(ctx.owns(&destination));
    let mut devices = ctx.accounts.device_ids(&destination).ok_or(FanoutRefused::UnknownAccount)?;
    if sender.account == destination {
        devices.retain(|id| *id != sender.device_id);
    }
    let source_uuid = sender.account.to_string();
    let source_device = sender.device_id;
    let copies = match &item {
        Item::Typing(event) => {
            let json = to_json(&TypingDelivery { event, source_uuid, source_device });
            offer_live(ctx, destination, TYPING_PATH, devices.iter().map(|id| (*id, json.clone())));
            return Ok(());
        }
        Item::Receipt(receipt) => {
            let json = to_json(&ReceiptDelivery { receipt, source_uuid, source_device });
            copies_of(&devices, StoredKind::Receipt, |_| json.clone())
        }
        Item::Story { content, timestamp, allows_replies } => {
            let story = |guid: &Uuid| {
                to_json(&StoryDelivery {
                    content,
                    timestamp: *timestamp,
                    allows_replies: *allows_replies,
                    source_uuid: source_uuid.clone(),
                    server_guid: guid.to_string(),
                    story: true,
                    urgent: false,
                })
            };
            copies_of(&devices, StoredKind::Story, story)
        }
    };
    persist(ctx, destination, &copies).await.map_err(FanoutRefused::Storage)
}

/// One stored copy per device, each with a fresh GUID and the JSON `json_of` makes for it.
fn copies_of(devices: &[u32], kind: StoredKind, json_of: impl Fn(&Uuid) -> Vec<u8>) -> Vec<Queued> {
    devices
        .iter()
        .map(|device_id| {
            let guid = new_server_guid();
            // Receipts and stories are never urgent.
            Queued { device_id: *device_id, kind, json: json_of(&guid), guid, urgent: false }
        })
        .collect()
}
