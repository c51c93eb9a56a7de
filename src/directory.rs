//! The contact-discovery index: which account is discoverable by which
//! identifier hash, for the hashes this shard owns.
//!
//! The index is partitioned over the shards by hash ([`owner_of_hash`], the
//! same range split as accounts, over the hash's first 8 bytes), so a lookup
//! scatters to the owners and gathers their answers (`discovery`). Only
//! the 10-byte hash of an identifier is ever stored, never the identifier.
//!
//! Invariants: one account per hash; an entry is visible to lookups only
//! once it is durable, and gone from them as soon as its delete is; one
//! change per hash is in flight at a time (a second is refused as
//! [`ClaimRefused::Busy`] instead of racing it); a release removes an entry
//! only if it is still held by the releasing account.
//!
//! Owns: [`Directory`], the shard's index component. Imports: `store` only.

use crate::store::commit::Writer;
use crate::store::directory::{IdentifierHash, HASH_BYTES};
use crate::store::writer::{Family, Op};
use crate::store::StoreError;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Why a hash was not claimed or released.
#[derive(Debug, thiserror::Error)]
pub enum ClaimRefused {
    /// Another account is discoverable by this identifier.
    #[error("another account holds this identifier")]
    Taken,
    /// Another change to this hash is being written; the client retries.
    #[error("this identifier is being changed; retry")]
    Busy,
    /// The entry could not be made durable.
    #[error("storage unavailable: {0}")]
    Storage(StoreError),
}

/// The hash an identifier is discoverable by: the first 10 bytes of its SHA-256.
pub fn identifier_hash(identifier: &str) -> IdentifierHash {
    let digest = Sha256::digest(identifier.as_bytes());
    let mut hash = [0; HASH_BYTES];
    hash.copy_from_slice(&digest[..HASH_BYTES]);
    hash
}

/// The shard owning `hash` among `shard_count` (range split on the first 8 bytes).
pub fn owner_of_hash(hash: &IdentifierHash, shard_count: usize) -> usize {
    let high = u64::from_be_bytes(hash[..8].try_into().expect("8 bytes"));
    ((u128::from(high) * shard_count as u128) >> 64) as usize
}

/// The index entries one shard owns.
#[derive(Default)]
pub struct Directory {
    entries: RefCell<HashMap<IdentifierHash, Uuid>>,
    /// Hashes with a write in flight.
    changing: RefCell<HashSet<IdentifierHash>>,
}

/// Holds one hash's "change in flight" mark until dropped.
struct HashGuard<'a> {
    changing: &'a RefCell<HashSet<IdentifierHash>>,
    hash: IdentifierHash,
}

impl Drop for HashGuard<'_> {
    fn drop(&mut self) {
        self.changing.borrow_mut().remove(&self.hash);
    }
}

impl Directory {
    /// The component over loaded entries.
    pub fn new(entries: impl IntoIterator<Item = (IdentifierHash, Uuid)>) -> Self {
        Self { entries: RefCell::new(entries.into_iter().collect()), ..Self::default() }
    }

    /// Adds entries already durable (a partition moved in).
    pub fn insert_loaded(&self, entries: Vec<(IdentifierHash, Uuid)>) {
        self.entries.borrow_mut().extend(entries);
    }

    /// Keeps only the entries whose hash `keep` says yes to.
    pub fn retain(&self, keep: impl Fn(&IdentifierHash) -> bool) {
        self.entries.borrow_mut().retain(|hash, _| keep(hash));
    }

    /// Number of discoverable hashes this shard owns.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// True when no hash is held.
    pub fn is_empty(&self) -> bool {
        self.entries.borrow().is_empty()
    }

    /// The account holding each hash, in order (`None` where none does).
    pub fn find(&self, hashes: &[IdentifierHash]) -> Vec<Option<Uuid>> {
        let entries = self.entries.borrow();
        hashes.iter().map(|hash| entries.get(hash).copied()).collect()
    }

    /// Makes `account` discoverable by `hash`: durable, then visible.
    /// Claiming a hash the account already holds succeeds without a write.
    pub async fn claim(
        &self,
        writer: &Writer,
        hash: IdentifierHash,
        account: Uuid,
    ) -> Result<(), ClaimRefused> {
        match self.entries.borrow().get(&hash) {
            Some(holder) if *holder == account => return Ok(()),
            Some(_) => return Err(ClaimRefused::Taken),
            None => {}
        }
        let _guard = self.begin_change(hash)?;
        let op = Op::Put {
            family: Family::Directory,
            key: hash.to_vec(),
            value: account.as_bytes().to_vec(),
        };
        writer.write(vec![op]).await.map_err(ClaimRefused::Storage)?;
        self.entries.borrow_mut().insert(hash, account);
        Ok(())
    }

    /// Removes `hash` if `account` holds it (else does nothing): invisible
    /// at once, and durably gone before this returns `Ok`.
    pub async fn release(
        &self,
        writer: &Writer,
        hash: IdentifierHash,
        account: Uuid,
    ) -> Result<(), ClaimRefused> {
        if self.entries.borrow().get(&hash) != Some(&account) {
            return Ok(());
        }
        let _guard = self.begin_change(hash)?;
        self.entries.borrow_mut().remove(&hash);
        let op = Op::Delete { family: Family::Directory, key: hash.to_vec() };
        if let Err(error) = writer.write(vec![op]).await {
            // Not durably gone: keep answering what the disk says.
            self.entries.borrow_mut().insert(hash, account);
            return Err(ClaimRefused::Storage(error));
        }
        Ok(())
    }

    fn begin_change(&self, hash: IdentifierHash) -> Result<HashGuard<'_>, ClaimRefused> {
        if !self.changing.borrow_mut().insert(hash) {
            return Err(ClaimRefused::Busy);
        }
        Ok(HashGuard { changing: &self.changing, hash })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_the_first_ten_bytes_of_sha256() {
        // SHA-256("+15551234567") starts with these bytes.
        let digest = Sha256::digest(b"+15551234567");
        assert_eq!(identifier_hash("+15551234567")[..], digest[..10]);
        assert_ne!(identifier_hash("+15551234567"), identifier_hash("+15551234568"));
    }

    #[test]
    fn hashes_split_over_shards_by_their_leading_bytes() {
        let mut low = [0u8; HASH_BYTES];
        assert_eq!(owner_of_hash(&low, 2), 0);
        low[0] = 0x80;
        assert_eq!(owner_of_hash(&low, 2), 1);
        assert_eq!(owner_of_hash(&[0xff; HASH_BYTES], 3), 2);
        assert_eq!(owner_of_hash(&[0xff; HASH_BYTES], 1), 0);
    }

    #[test]
    fn find_answers_in_order_and_a_busy_hash_refuses_a_second_change() {
        let (a, b) = ([1; HASH_BYTES], [2; HASH_BYTES]);
        let account = Uuid::new_v4();
        let directory = Directory::new([(a, account)]);
        assert_eq!(directory.find(&[b, a, b]), vec![None, Some(account), None]);
        let guard = directory.begin_change(b).unwrap();
        assert!(matches!(directory.begin_change(b), Err(ClaimRefused::Busy)));
        drop(guard);
        assert!(directory.begin_change(b).is_ok());
    }
}
