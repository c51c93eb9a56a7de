//! Contact discovery across shards: an account's identifier is claimed on
//! the shard owning its hash and recorded in the account's own record; a
//! lookup scatters the hashes to their owners and gathers the answers.
//!
//! Invariants:
//! - one change of an account's discoverability runs at a time (the
//!   account's change guard is held across every step);
//! - the steps run in the order that converges on retry whatever fails or
//!   crashes between them: claim the new hash, release the old one, then
//!   record the new one in the account. A failure answers 503 and changes
//!   nothing the client relies on; repeating the request completes it (a
//!   claim of a hash the account holds and a release of a hash it does not
//!   hold are no-ops). Until then the index may still hold the old hash, or
//!   already hold the new one: the account's record lags the index, never
//!   the other way round;
//! - a lookup asks each owner once, all owners at the same time, and
//!   answers only when every owner has.
//!
//! Imports: `accounts`, `directory`, `calls`, `shard` (and what they carry).

use crate::accounts::AuthedDevice;
use crate::calls;
use crate::directory::ClaimRefused;
use crate::protocol::discovery::IdentifierHash;
use crate::shard::mesh::CallError;
use crate::shard::ShardCtx;
use crate::store::StoreError;
use std::rc::Rc;
use uuid::Uuid;

/// Why discoverability was not changed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverRefused {
    /// The hash is held by another account, or being changed.
    #[error(transparent)]
    Claim(#[from] ClaimRefused),
    /// Another change to the account is in flight; the client retries.
    #[error("the account is being changed; retry")]
    Busy,
    /// The caller's account no longer exists.
    #[error("no such account")]
    UnknownAccount,
    /// The account record could not be made durable.
    #[error("storage unavailable: {0}")]
    Storage(#[from] StoreError),
    /// The shard owning the hash did not answer.
    #[error(transparent)]
    Call(#[from] CallError),
}

/// Makes the caller's account discoverable by `hash` only, or (with `None`)
/// by nothing.
pub async fn set_discoverable(
    ctx: &Rc<ShardCtx>,
    caller: AuthedDevice,
    hash: Option<IdentifierHash>,
) -> Result<(), DiscoverRefused> {
    let account = caller.account;
    let change = ctx.accounts.try_change(account).ok_or(DiscoverRefused::Busy)?;
    let old = ctx.accounts.discoverable(&account).ok_or(DiscoverRefused::UnknownAccount)?;
    if let Some(new) = hash {
        calls::claim_hash(ctx, new, account).await??;
    }
    if let Some(old) = old.filter(|old| Some(*old) != hash) {
        calls::release_hash(ctx, old, account).await??;
    }
    if old != hash {
        ctx.accounts.set_discoverable(&ctx.writer, &change, hash).await?;
    }
    Ok(())
}

/// The account holding each of `hashes` (`None` where none does), in order:
/// one call per owning shard, all in flight at once.
pub async fn lookup(
    ctx: &Rc<ShardCtx>,
    hashes: &[IdentifierHash],
) -> Result<Vec<Option<Uuid>>, CallError> {
    // Per routing unit: the positions of its hashes in the request.
    let mut positions: Vec<Vec<usize>> = vec![Vec::new(); ctx.unit_count()];
    for (position, hash) in hashes.iter().enumerate() {
        positions[calls::hash_unit(ctx, hash)].push(position);
    }
    let asks =
        positions.iter().enumerate().filter(|(_, owned)| !owned.is_empty()).map(|(unit, owned)| {
            let owned_hashes = owned.iter().map(|&position| hashes[position]).collect();
            async move { (owned, calls::find_hashes(ctx, unit, owned_hashes).await) }
        });
    let mut found = vec![None; hashes.len()];
    for (owned, answer) in futures_util::future::join_all(asks).await {
        for (&position, holder) in owned.iter().zip(answer?) {
            found[position] = holder;
        }
    }
    Ok(found)
}
