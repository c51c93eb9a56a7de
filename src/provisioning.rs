//! Device provisioning (DESIGN.md section 3): a primary device's message
//! handed to the new device's waiting socket on the address's owner shard.
//!
//! The address is a fresh UUID the accepting shard owns
//! ([`new_address`]), so the socket never moves; a primary on another
//! shard reaches it through the rings (`calls::provision`). [`deliver`]
//! answers as soon as the message is handed to the waiting socket (as
//! Signal's server does: the primary's 204 does not wait for the new
//! device), or refuses when no socket waits there.
//!
//! Imports: `accounts` (the refusal type), `shard`.

use crate::accounts::ProvisionRefused;
use crate::shard::provisioning::Delivery;
use crate::shard::ShardCtx;
use uuid::Uuid;

/// Largest provisioning message accepted, in decoded bytes (413 over it).
pub const PROVISIONING_MESSAGE_BYTES_MAX: usize = 256 * 1024;

/// Most random addresses [`new_address`] tries per routing unit.
const ADDRESS_TRIES_PER_UNIT: usize = 64;

/// A fresh random address owned by this shard (expected tries: the routing
/// unit count over the units this shard owns); `None` when this shard owns
/// no unit (a cluster node that owns no partition yet).
pub fn new_address(ctx: &ShardCtx) -> Option<Uuid> {
    let tries = ADDRESS_TRIES_PER_UNIT * ctx.unit_count();
    (0..tries).map(|_| Uuid::new_v4()).find(|address| ctx.owns(address))
}

/// Hands `body` to the socket waiting at `address` (this shard owns it).
pub fn deliver(ctx: &ShardCtx, address: Uuid, body: Vec<u8>) -> Result<(), ProvisionRefused> {
    debug_assert!(ctx.owns(&address));
    let waiting = ctx.provisioning.take(&address).ok_or(ProvisionRefused::NoSuchAddress)?;
    *waiting.delivery.borrow_mut() = Some(Delivery { body });
    waiting.mailbox.notify_stored();
    Ok(())
}
