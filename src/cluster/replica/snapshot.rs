//! Partition snapshots: a partition's data as of one log sequence, stored
//! in the cluster's object store so its log can be purged up to it, and
//! restored by a node that adopts the partition when the log alone no
//! longer reaches back to its local copy.
//!
//! Encoding (version 1, integers big-endian): `version u8 | seq u64 |
//! records u64` then that many records `family u8 | key_len u32 | key |
//! value_len u32 | value`, and nothing after. [`decode`] never panics,
//! checks every length against the bytes left and the record count (a
//! snapshot cut short anywhere is refused), and accepts only data
//! families and keys of the partition.
//!
//! Invariants: a snapshot holds exactly the partition's state after its
//! sequence (read through one RocksDB snapshot); a restore replaces the
//! local copy whole (deleted first, its applied sequence last, so a crash
//! midway leaves sequence 0 and the next adoption restores again).

use crate::store::unit_snapshot::{self, FamilyPairs, DATA_FAMILIES};
use crate::store::units::{self, Family, Pair};
use crate::store::{replica, Store, StoreError};

/// The version byte in front of every snapshot.
pub const SNAPSHOT_VERSION: u8 = 1;

/// Bytes before the records: version, sequence, record count.
const HEADER_BYTES: usize = 1 + 8 + 8;

/// The largest partition snapshotted, bytes of keys and values.
pub const PARTITION_BYTES_MAX: usize = 1 << 30;

/// Why a snapshot could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Too short, or another version in front.
    #[error("not a version {SNAPSHOT_VERSION} snapshot")]
    Version,
    /// A record runs past the end.
    #[error("snapshot truncated at byte {0}")]
    Truncated(usize),
    /// A record names an unknown or non-data family.
    #[error("snapshot record of unknown family {0}")]
    Family(u8),
    /// A key outside the partition.
    #[error("snapshot key outside partition {0}")]
    OutsideUnit(usize),
}

/// A decoded snapshot: the sequence it covers and the pairs per family.
pub type Decoded = (u64, FamilyPairs);

/// Reads unit `unit` of shard `shard` and encodes it.
pub fn take(
    store: &Store,
    shard: usize,
    unit: (usize, usize),
) -> Result<(u64, Vec<u8>), StoreError> {
    let (seq, families) = unit_snapshot::read(store, shard, unit, PARTITION_BYTES_MAX)?;
    Ok((seq, encode(seq, &families)))
}

/// The encoding of `families` as of `seq`.
pub fn encode(seq: u64, families: &[(Family, Vec<Pair>)]) -> Vec<u8> {
    let size: usize = families
        .iter()
        .flat_map(|(_, pairs)| pairs.iter().map(|(k, v)| 9 + k.len() + v.len()))
        .sum();
    let records: usize = families.iter().map(|(_, pairs)| pairs.len()).sum();
    let mut out = Vec::with_capacity(HEADER_BYTES + size);
    out.push(SNAPSHOT_VERSION);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&(records as u64).to_be_bytes());
    for (family, pairs) in families {
        for (key, value) in pairs {
            out.push(family.code());
            out.extend_from_slice(&(key.len() as u32).to_be_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(&(value.len() as u32).to_be_bytes());
            out.extend_from_slice(value);
        }
    }
    out
}

/// Reads a snapshot of unit `unit` of `unit_count`.
pub fn decode(bytes: &[u8], (unit, unit_count): (usize, usize)) -> Result<Decoded, SnapshotError> {
    if bytes.len() < HEADER_BYTES || bytes[0] != SNAPSHOT_VERSION {
        return Err(SnapshotError::Version);
    }
    let seq = u64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes"));
    let records = u64::from_be_bytes(bytes[9..HEADER_BYTES].try_into().expect("8 bytes"));
    let mut families: Vec<(Family, Vec<Pair>)> =
        DATA_FAMILIES.iter().map(|family| (*family, Vec::new())).collect();
    let mut at = HEADER_BYTES;
    let mut read = 0u64;
    let take = |at: &mut usize, len: usize| -> Result<&[u8], SnapshotError> {
        let end = at.checked_add(len).filter(|end| *end <= bytes.len());
        let end = end.ok_or(SnapshotError::Truncated(*at))?;
        let taken = &bytes[*at..end];
        *at = end;
        Ok(taken)
    };
    let length = |at: &mut usize| -> Result<usize, SnapshotError> {
        let raw = take(at, 4)?;
        Ok(u32::from_be_bytes(raw.try_into().expect("4 bytes")) as usize)
    };
    while at < bytes.len() {
        let code = take(&mut at, 1)?[0];
        let index = DATA_FAMILIES.iter().position(|family| family.code() == code);
        let index = index.ok_or(SnapshotError::Family(code))?;
        let key_len = length(&mut at)?;
        let key = take(&mut at, key_len)?.to_vec();
        let value_len = length(&mut at)?;
        let value = take(&mut at, value_len)?.to_vec();
        if !units::holds(&key, unit, unit_count) {
            return Err(SnapshotError::OutsideUnit(unit));
        }
        families[index].1.push((key, value));
        read += 1;
    }
    if read != records {
        return Err(SnapshotError::Truncated(at));
    }
    Ok((seq, families))
}

/// Replaces unit `unit` of shard `shard` with a decoded snapshot.
pub fn restore(
    store: &Store,
    shard: usize,
    unit: (usize, usize),
    (seq, families): &Decoded,
) -> Result<(), StoreError> {
    units::delete(store, shard, unit)?;
    for (family, pairs) in families {
        for chunk in pairs.chunks(4096) {
            units::write(store, shard, *family, unit, chunk)?;
        }
    }
    replica::apply_caught_up(store, shard, unit, &[], *seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(unit: usize, count: usize, tail: u8) -> Vec<u8> {
        let mut key = units::bounds(unit, count).0;
        key.extend_from_slice(&[tail; 8]);
        key
    }

    #[test]
    fn snapshots_round_trip_and_refuse_hostile_bytes() {
        let families = vec![
            (Family::Accounts, vec![(key(2, 4, 1), b"account".to_vec())]),
            (Family::Messages, vec![(key(2, 4, 2), vec![]), (key(2, 4, 3), vec![9; 300])]),
            (Family::Directory, vec![]),
        ];
        let bytes = encode(77, &families);
        assert_eq!(decode(&bytes, (2, 4)), Ok((77, families.clone())));
        assert_eq!(decode(&bytes, (1, 4)), Err(SnapshotError::OutsideUnit(1)));
        assert_eq!(decode(&bytes[..5], (2, 4)), Err(SnapshotError::Version));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], (2, 4)).is_err(), "cut at {cut}");
        }
        let mut log_record = encode(1, &[]);
        log_record.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode(&log_record, (0, 1)), Err(SnapshotError::Family(3)));
        let mut huge = encode(1, &[]);
        huge.extend_from_slice(&[1, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(decode(&huge, (0, 1)), Err(SnapshotError::Truncated(22)));
    }

    #[test]
    fn a_restore_replaces_the_local_copy_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1).unwrap();
        let unit = (1, 2);
        units::write(&store, 0, Family::Messages, unit, &[(key(1, 2, 7), b"stale".to_vec())])
            .unwrap();
        let families = vec![(Family::Accounts, vec![(key(1, 2, 1), b"fresh".to_vec())])];
        restore(&store, 0, unit, &(41, families)).unwrap();
        let (seq, read) = unit_snapshot::read(&store, 0, unit, usize::MAX).unwrap();
        assert_eq!(seq, 41);
        assert_eq!(read[0], (Family::Accounts, vec![(key(1, 2, 1), b"fresh".to_vec())]));
        assert!(read[1].1.is_empty(), "the stale message went");
        let (seq, bytes) = take(&store, 0, unit).unwrap();
        assert_eq!(decode(&bytes, unit).unwrap().0, seq);
    }
}
