//! The stored form of the contact-discovery index: key = an identifier's
//! 10-byte hash in `s{n}_directory` (the shard owning the hash), value = the
//! 16 bytes of the account UUID holding it.

pub use crate::protocol::discovery::{IdentifierHash, HASH_BYTES};
use crate::store::{directory_family, Store, StoreError};
use uuid::Uuid;

/// Every index entry of shard `shard`, read at start-up.
pub fn load(store: &Store, shard: usize) -> Result<Vec<(IdentifierHash, Uuid)>, StoreError> {
    let family = directory_family(shard);
    let cf = store.family(&family)?;
    let mut entries = Vec::new();
    for item in store.db().iterator_cf(cf, rocksdb::IteratorMode::Start) {
        let (key, value) = item?;
        let corrupt = |reason: &str| StoreError::Corrupt {
            family: family.clone(),
            reason: reason.to_string(),
        };
        let hash = IdentifierHash::try_from(&key[..]).map_err(|_| corrupt("key is not a hash"))?;
        let uuid = Uuid::from_slice(&value).map_err(|_| corrupt("value is not a UUID"))?;
        entries.push((hash, uuid));
    }
    Ok(entries)
}
