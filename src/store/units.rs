//! One routing unit's share of a shard's data (in cluster mode, a
//! partition's): its key range in each column family, read out in bounded
//! chunks, written in, and deleted, for moving a partition between nodes.
//!
//! Unit `u` of `U` (a power of two) holds the keys whose first 8 bytes,
//! read big-endian, are in `[u << (64 - log2 U), (u + 1) << (64 - log2 U))`:
//! an account key's (and a message key's) UUID top 64 bits, an identifier
//! hash's first 8 bytes. So a unit is one contiguous range per family.
//!
//! Invariants: every write and delete here is synced before it returns (a
//! moved partition is durable on its new node before the map names it);
//! a chunk holds at most `bytes_max` of keys and values (one pair more if a
//! single pair is larger); nothing outside the unit's range is read,
//! written or deleted.

use crate::store::{
    accounts_family, directory_family, log_family, messages_family, Store, StoreError,
};
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions};

/// The column families a unit's data lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Account records (key: the account UUID).
    Accounts,
    /// Queued envelopes (key: account UUID, device, time, sequence).
    Messages,
    /// Contact-discovery entries (key: the identifier hash).
    Directory,
    /// The last partition-log sequence applied (key: the unit's first key).
    Log,
}

impl Family {
    /// Every family, in the order a move copies them.
    pub const ALL: [Family; 4] =
        [Family::Accounts, Family::Messages, Family::Directory, Family::Log];

    /// The family's code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Family::Accounts => 0,
            Family::Messages => 1,
            Family::Directory => 2,
            Family::Log => 3,
        }
    }

    /// The family of a wire code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|family| family.code() == code)
    }

    /// The family's column family name on shard `shard`.
    pub fn name(self, shard: usize) -> String {
        match self {
            Family::Accounts => accounts_family(shard),
            Family::Messages => messages_family(shard),
            Family::Directory => directory_family(shard),
            Family::Log => log_family(shard),
        }
    }
}

/// One key and its value.
pub type Pair = (Vec<u8>, Vec<u8>);

/// The first key of unit `unit` of `unit_count`, and the first key after it
/// (`None` for the last unit).
pub fn bounds(unit: usize, unit_count: usize) -> (Vec<u8>, Option<Vec<u8>>) {
    assert!(unit_count.is_power_of_two() && unit < unit_count, "unit {unit} of {unit_count}");
    let shift = 64 - unit_count.trailing_zeros();
    let start = |u: usize| if shift == 64 { 0 } else { (u as u64) << shift };
    let low = start(unit).to_be_bytes().to_vec();
    let high = (unit + 1 < unit_count).then(|| start(unit + 1).to_be_bytes().to_vec());
    (low, high)
}

/// The unit of `unit_count` (a power of two) that `key` lies in (a key
/// shorter than 8 bytes reads as if padded with zeros).
pub fn unit_of_key(key: &[u8], unit_count: usize) -> usize {
    assert!(unit_count.is_power_of_two(), "{unit_count} units");
    let mut high = [0u8; 8];
    let len = key.len().min(8);
    high[..len].copy_from_slice(&key[..len]);
    let shift = 64 - unit_count.trailing_zeros();
    if shift == 64 {
        0
    } else {
        (u64::from_be_bytes(high) >> shift) as usize
    }
}

/// The key of unit `unit`'s applied-sequence record in its `Log` family
/// (the unit's first key, so the record moves and drops with the unit).
pub fn log_key(unit: usize, unit_count: usize) -> Vec<u8> {
    bounds(unit, unit_count).0
}

/// The last partition-log sequence applied to unit `unit` on shard
/// `shard` (0: none).
pub fn applied_seq(store: &Store, shard: usize, unit: (usize, usize)) -> Result<u64, StoreError> {
    let cf = store.family(&log_family(shard))?;
    let Some(value) = store.db().get_cf(cf, log_key(unit.0, unit.1))? else { return Ok(0) };
    <[u8; 8]>::try_from(value.as_slice()).map(u64::from_be_bytes).map_err(|_| StoreError::Corrupt {
        family: log_family(shard),
        reason: "applied seq is not 8 bytes".into(),
    })
}

/// Whether `key` lies in unit `unit` of `unit_count`.
pub fn holds(key: &[u8], unit: usize, unit_count: usize) -> bool {
    let (low, high) = bounds(unit, unit_count);
    key >= low.as_slice() && high.is_none_or(|high| key < high.as_slice())
}

/// Up to `bytes_max` of unit `unit`'s pairs in `family` on shard `shard`,
/// starting after key `after` (from the unit's start when `None`); the
/// pairs, and whether the unit's range is exhausted.
pub fn read_chunk(
    store: &Store,
    shard: usize,
    family: Family,
    unit: (usize, usize),
    after: Option<&[u8]>,
    bytes_max: usize,
) -> Result<(Vec<Pair>, bool), StoreError> {
    let (low, high) = bounds(unit.0, unit.1);
    let cf = store.family(&family.name(shard))?;
    let from = after.unwrap_or(&low);
    let mut pairs = Vec::new();
    let mut bytes = 0;
    for item in store.db().iterator_cf(cf, IteratorMode::From(from, Direction::Forward)) {
        let (key, value) = item?;
        if after.is_some_and(|after| key.as_ref() == after) {
            continue;
        }
        if high.as_ref().is_some_and(|high| key.as_ref() >= high.as_slice()) {
            return Ok((pairs, true));
        }
        if bytes > 0 && bytes + key.len() + value.len() > bytes_max {
            return Ok((pairs, false));
        }
        bytes += key.len() + value.len();
        pairs.push((key.to_vec(), value.to_vec()));
    }
    Ok((pairs, true))
}

/// Unit `unit`'s pairs in `family` on shard `shard`, in key order, as
/// non-empty chunks of up to `bytes_max` each (see [`read_chunk`]).
pub fn chunks(
    store: &Store,
    shard: usize,
    family: Family,
    unit: (usize, usize),
    bytes_max: usize,
) -> Chunks<'_> {
    Chunks { store, shard, family, unit, bytes_max, after: None, done: false }
}

/// The iterator [`chunks`] returns; a read error ends it after it is given.
pub struct Chunks<'a> {
    store: &'a Store,
    shard: usize,
    family: Family,
    unit: (usize, usize),
    bytes_max: usize,
    /// The last key given.
    after: Option<Vec<u8>>,
    done: bool,
}

impl Iterator for Chunks<'_> {
    type Item = Result<Vec<Pair>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let read = read_chunk(
            self.store,
            self.shard,
            self.family,
            self.unit,
            self.after.as_deref(),
            self.bytes_max,
        );
        let (pairs, done) = match read {
            Ok(read) => read,
            Err(error) => {
                self.done = true;
                return Some(Err(error));
            }
        };
        self.done = done;
        self.after = pairs.last().map(|(key, _)| key.clone()).or(self.after.take());
        (!pairs.is_empty()).then_some(Ok(pairs))
    }
}

/// Writes `pairs` into `family` of shard `shard`, synced; every key must
/// lie in unit `unit` (else nothing is written).
pub fn write(
    store: &Store,
    shard: usize,
    family: Family,
    unit: (usize, usize),
    pairs: &[Pair],
) -> Result<(), StoreError> {
    if let Some((key, _)) = pairs.iter().find(|(key, _)| !holds(key, unit.0, unit.1)) {
        return Err(StoreError::Corrupt {
            family: family.name(shard),
            reason: format!("key {key:02x?} is outside unit {} of {}", unit.0, unit.1),
        });
    }
    let cf = store.family(&family.name(shard))?;
    let mut batch = WriteBatch::default();
    pairs.iter().for_each(|(key, value)| batch.put_cf(cf, key, value));
    Ok(store.db().write_opt(batch, &synced())?)
}

/// Deletes everything of unit `unit` in every family of shard `shard`, synced.
pub fn delete(store: &Store, shard: usize, unit: (usize, usize)) -> Result<(), StoreError> {
    let (low, high) = bounds(unit.0, unit.1);
    let mut batch = WriteBatch::default();
    for family in Family::ALL {
        let cf = store.family(&family.name(shard))?;
        match &high {
            Some(high) => batch.delete_range_cf(cf, &low, high),
            None => {
                batch.delete_range_cf(cf, &low[..], &[0xffu8; 8][..]);
                // Keys that start with eight 0xff bytes sort after that end.
                let (tail, _) =
                    read_chunk(store, shard, family, unit, Some(&[0xff; 8]), usize::MAX)?;
                tail.iter().for_each(|(key, _)| batch.delete_cf(cf, key));
            }
        }
    }
    Ok(store.db().write_opt(batch, &synced())?)
}

/// Whether shard `shard` holds any key of unit `unit` in any family.
pub fn has_data(store: &Store, shard: usize, unit: (usize, usize)) -> Result<bool, StoreError> {
    for family in Family::ALL {
        let (pairs, _) = read_chunk(store, shard, family, unit, None, 1)?;
        if !pairs.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

#[cfg(test)]
#[path = "units_tests.rs"]
mod tests;
