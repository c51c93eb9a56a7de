//! One partition-log entry: the ops one batch wrote to the partition's
//! keys, or a fence (a new owner's mark: appends after it are its own).
//! Hand-written prost messages, a version byte in front as in `wire`.
//!
//! Invariants: decoding never panics, allocates no more than its input
//! allows (prost checks every length against the bytes left) and yields
//! only ops on known families whose keys lie in the entry's partition;
//! [`encode`] of what [`decode`] returned gives the same entry back.

use crate::store::units::{self, Family as UnitFamily};
use crate::store::writer::{Family, Op};
use prost::Message;

/// The version byte in front of every entry.
pub const ENTRY_VERSION: u8 = 1;

/// One log entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    /// The batch's writes to this partition, in order.
    #[prost(message, repeated, tag = "1")]
    pub ops: Vec<EntryOp>,
    /// Set on a fence entry (which has no ops).
    #[prost(message, optional, tag = "2")]
    pub fence: Option<Fence>,
}

/// One put or delete.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryOp {
    /// The family's code ([`crate::store::units::Family::code`]).
    #[prost(uint32, tag = "1")]
    pub family: u32,
    /// A delete (else a put).
    #[prost(bool, tag = "2")]
    pub delete: bool,
    /// The key.
    #[prost(bytes = "vec", tag = "3")]
    pub key: Vec<u8>,
    /// The value (empty for a delete).
    #[prost(bytes = "vec", tag = "4")]
    pub value: Vec<u8>,
}

/// A new owner's mark.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Fence {
    /// The node that took the partition.
    #[prost(string, tag = "1")]
    pub node: String,
    /// The map epoch it took it in.
    #[prost(uint64, tag = "2")]
    pub epoch: u64,
}

/// What a decoded entry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// Writes to apply, in order.
    Ops(Vec<Op>),
    /// A fence by `node` in epoch `epoch`.
    Fence {
        /// Its node.
        node: String,
        /// Its epoch.
        epoch: u64,
    },
}

/// Why an entry could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// Empty, or another version in front.
    #[error("entry version {0:?} is not {ENTRY_VERSION}")]
    Version(Option<u8>),
    /// Not a valid message.
    #[error("entry does not decode: {0}")]
    Malformed(String),
    /// An op on an unknown family, or the log family itself.
    #[error("entry op on unknown family {0}")]
    Family(u32),
    /// An op's key lies outside the entry's partition.
    #[error("entry key outside partition {0}")]
    OutsideUnit(usize),
}

fn to_unit_family(family: Family) -> UnitFamily {
    match family {
        Family::Accounts => UnitFamily::Accounts,
        Family::Messages => UnitFamily::Messages,
        Family::Directory => UnitFamily::Directory,
        Family::Log => UnitFamily::Log,
    }
}

fn from_code(code: u32) -> Option<Family> {
    match u8::try_from(code).ok().and_then(UnitFamily::from_code)? {
        UnitFamily::Accounts => Some(Family::Accounts),
        UnitFamily::Messages => Some(Family::Messages),
        UnitFamily::Directory => Some(Family::Directory),
        UnitFamily::Log => None,
    }
}

/// The entry of `ops` (writes to one partition), versioned.
pub fn encode_ops(ops: &[Op]) -> Vec<u8> {
    let ops = ops
        .iter()
        .map(|op| match op {
            Op::Put { family, key, value } => EntryOp {
                family: to_unit_family(*family).code().into(),
                delete: false,
                key: key.clone(),
                value: value.clone(),
            },
            Op::Delete { family, key } => EntryOp {
                family: to_unit_family(*family).code().into(),
                delete: true,
                key: key.clone(),
                value: Vec::new(),
            },
        })
        .collect();
    versioned(&Entry { ops, fence: None })
}

/// The fence entry of `node` taking a partition in `epoch`, versioned.
pub fn encode_fence(node: &str, epoch: u64) -> Vec<u8> {
    versioned(&Entry { ops: Vec::new(), fence: Some(Fence { node: node.to_string(), epoch }) })
}

fn versioned(entry: &Entry) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1 + entry.encoded_len());
    bytes.push(ENTRY_VERSION);
    entry.encode(&mut bytes).expect("a Vec grows");
    bytes
}

/// Reads an entry of unit `unit` of `unit_count`.
pub fn decode(bytes: &[u8], (unit, unit_count): (usize, usize)) -> Result<Decoded, EntryError> {
    match bytes.first() {
        Some(&ENTRY_VERSION) => {}
        other => return Err(EntryError::Version(other.copied())),
    }
    let entry = Entry::decode(&bytes[1..]).map_err(|e| EntryError::Malformed(e.to_string()))?;
    if let Some(Fence { node, epoch }) = entry.fence {
        return Ok(Decoded::Fence { node, epoch });
    }
    let mut ops = Vec::with_capacity(entry.ops.len());
    for op in entry.ops {
        let family = from_code(op.family).ok_or(EntryError::Family(op.family))?;
        if !units::holds(&op.key, unit, unit_count) {
            return Err(EntryError::OutsideUnit(unit));
        }
        ops.push(match op.delete {
            true => Op::Delete { family, key: op.key },
            false => Op::Put { family, key: op.key, value: op.value },
        });
    }
    Ok(Decoded::Ops(ops))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(unit: usize, unit_count: usize, tail: u8) -> Vec<u8> {
        let mut key = units::bounds(unit, unit_count).0;
        key.extend_from_slice(&[tail; 8]);
        key
    }

    #[test]
    fn ops_and_fences_round_trip() {
        let ops = vec![
            Op::Put { family: Family::Messages, key: key(5, 64, 1), value: b"envelope".to_vec() },
            Op::Delete { family: Family::Accounts, key: key(5, 64, 2) },
            Op::Put { family: Family::Directory, key: key(5, 64, 3), value: vec![] },
        ];
        assert_eq!(decode(&encode_ops(&ops), (5, 64)), Ok(Decoded::Ops(ops)));
        let fence = Decoded::Fence { node: "n2".into(), epoch: 9 };
        assert_eq!(decode(&encode_fence("n2", 9), (5, 64)), Ok(fence));
        assert_eq!(decode(&encode_ops(&[]), (0, 1)), Ok(Decoded::Ops(vec![])));
    }

    #[test]
    fn hostile_entries_are_refused_without_panic() {
        let outside = [Op::Delete { family: Family::Messages, key: key(6, 64, 0) }];
        assert_eq!(decode(&encode_ops(&outside), (5, 64)), Err(EntryError::OutsideUnit(5)));
        let log_op = [Op::Delete { family: Family::Log, key: key(5, 64, 0) }];
        assert_eq!(decode(&encode_ops(&log_op), (5, 64)), Err(EntryError::Family(3)));
        assert_eq!(decode(&[], (0, 1)), Err(EntryError::Version(None)));
        assert_eq!(decode(&[2, 0], (0, 1)), Err(EntryError::Version(Some(2))));
        assert!(matches!(decode(&[1, 0x0a, 0xff], (0, 1)), Err(EntryError::Malformed(_))));
        let mut seed = 0x2545f4914f6cdd1du64;
        for len in 0..300 {
            let mut bytes = vec![ENTRY_VERSION];
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes.push(seed as u8);
            }
            let _ = decode(&bytes, (3, 4));
        }
    }
}
