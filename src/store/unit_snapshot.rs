//! A consistent copy of one routing unit (a cluster partition) read
//! through a RocksDB snapshot: every key and value of the unit in its data
//! families, and the partition-log sequence they cover, as of one instant
//! (replicated durability's snapshots are taken from it).
//!
//! Invariants: the pairs and the sequence come from the same RocksDB
//! snapshot, so they are exactly the unit's state after that sequence;
//! at most `bytes_max` of keys and values are read (more is an error,
//! not a silent truncation).

use crate::store::units::{bounds, log_key, Family, Pair};
use crate::store::{log_family, Store, StoreError};
use rocksdb::{Direction, IteratorMode};

/// The unit's data families, in the order a snapshot holds them.
pub const DATA_FAMILIES: [Family; 3] = [Family::Accounts, Family::Messages, Family::Directory];

/// A unit's pairs, per data family.
pub type FamilyPairs = Vec<(Family, Vec<Pair>)>;

/// Unit `unit`'s pairs per data family on shard `shard`, and the log
/// sequence they cover (0: none recorded).
pub fn read(
    store: &Store,
    shard: usize,
    unit: (usize, usize),
    bytes_max: usize,
) -> Result<(u64, FamilyPairs), StoreError> {
    let snapshot = store.db().snapshot();
    let log_cf = store.family(&log_family(shard))?;
    let seq = match snapshot.get_cf(log_cf, log_key(unit.0, unit.1))? {
        Some(value) => {
            <[u8; 8]>::try_from(value.as_slice()).map(u64::from_be_bytes).map_err(|_| {
                StoreError::Corrupt { family: log_family(shard), reason: "seq not 8 bytes".into() }
            })?
        }
        None => 0,
    };
    let (low, high) = bounds(unit.0, unit.1);
    let mut bytes = 0;
    let mut families = Vec::with_capacity(DATA_FAMILIES.len());
    for family in DATA_FAMILIES {
        let name = family.name(shard);
        let cf = store.family(&name)?;
        let mut pairs = Vec::new();
        for item in snapshot.iterator_cf(cf, IteratorMode::From(&low, Direction::Forward)) {
            let (key, value) = item?;
            if high.as_ref().is_some_and(|high| key.as_ref() >= high.as_slice()) {
                break;
            }
            bytes += key.len() + value.len();
            if bytes > bytes_max {
                let reason = format!("unit {} is over {bytes_max} bytes", unit.0);
                return Err(StoreError::Corrupt { family: name, reason });
            }
            pairs.push((key.to_vec(), value.to_vec()));
        }
        families.push((family, pairs));
    }
    Ok((seq, families))
}
