//! Partitions of the account space: which partition an account is in, and
//! which local shard serves a partition.
//!
//! A cluster splits the 128-bit UUID space into `P` partitions by the same
//! range function that splits it into shards on one box
//! ([`crate::shard::owner()`]): `partition = (hi64 * P) >> 64`. `P` is fixed
//! when the cluster is created (the data directory's identity records it, see
//! [`super::identity`]) because changing it moves every range boundary.
//!
//! Invariants:
//! - a [`PartitionCount`] is a power of two in
//!   `1..=`[`PARTITION_COUNT_MAX`]; a [`PartitionId`] is below the count it
//!   was made for.
//! - because `P` is a power of two, the range function keeps the UUID's top
//!   `log2(P)` bits, so a partition is fixed by the UUID's first
//!   [`hex_prefix_len`] hex digits: a load balancer can route by that prefix
//!   without parsing the UUID ([`partition_of_hex_prefix`], [`hex_prefix_table`]).
//! - a partition's shard on its node is `p mod S` ([`local_shard`]), so every
//!   shard of a node serves about `P / (nodes * S)` partitions.
//!
//! Pure: no I/O, no clock.

use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// The most partitions a cluster may have (2^12: a partition is then fixed
/// by the UUID's first three hex digits, and a map holds at most 4096 owners).
pub const PARTITION_COUNT_MAX: u32 = 4096;

/// Partitions of a cluster created without `--partitions`.
pub const PARTITION_COUNT_DEFAULT: u32 = 64;

/// The most hex digits [`partition_of_hex_prefix`] reads (a UUID's first
/// group, before its first `-`).
pub const HEX_PREFIX_LEN_MAX: usize = 8;

const _: () = assert!(PARTITION_COUNT_MAX.is_power_of_two());
const _: () = assert!(PARTITION_COUNT_DEFAULT.is_power_of_two());
const _: () = assert!(PARTITION_COUNT_DEFAULT <= PARTITION_COUNT_MAX);
// A partition id fits a u16, and the longest prefix fixes the largest count.
const _: () = assert!(PARTITION_COUNT_MAX <= 1 << 16);
const _: () = assert!(PARTITION_COUNT_MAX.trailing_zeros() as usize <= 4 * HEX_PREFIX_LEN_MAX);

/// Why a partition count, a partition id or a hex prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    /// The text of a partition count is not a decimal number.
    #[error("partition count '{text}' is not a number")]
    NotANumber {
        /// The text given (at most 32 characters of it).
        text: String,
    },
    /// The count is zero or above [`PARTITION_COUNT_MAX`].
    #[error("partition count {count} is out of range 1..={PARTITION_COUNT_MAX}")]
    CountOutOfRange {
        /// The count given.
        count: u64,
    },
    /// The count is not a power of two.
    #[error("partition count {count} is not a power of two")]
    NotPowerOfTwo {
        /// The count given.
        count: u32,
    },
    /// A partition index is not below the partition count.
    #[error("partition {index} does not exist among {count} partitions")]
    PartitionOutOfRange {
        /// The index given.
        index: u32,
        /// The partition count.
        count: u32,
    },
    /// A hex prefix is shorter than the count needs or longer than
    /// [`HEX_PREFIX_LEN_MAX`].
    #[error("hex prefix of {len} digits: {count} partitions need {min}..={HEX_PREFIX_LEN_MAX}")]
    PrefixLength {
        /// The prefix's length in bytes.
        len: usize,
        /// The fewest digits that fix a partition.
        min: usize,
        /// The partition count.
        count: u32,
    },
    /// A hex prefix holds something other than `0-9a-fA-F`.
    #[error("hex prefix holds a non-hex byte at {at}")]
    PrefixNotHex {
        /// Byte offset of the first offending byte.
        at: usize,
    },
}

/// The number of partitions `P` of a cluster: a power of two in
/// `1..=`[`PARTITION_COUNT_MAX`], fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartitionCount(u16);

impl PartitionCount {
    /// The count of a cluster created without `--partitions`.
    pub const DEFAULT: PartitionCount = PartitionCount(PARTITION_COUNT_DEFAULT as u16);

    /// Validates `count`: a power of two in `1..=`[`PARTITION_COUNT_MAX`].
    pub fn new(count: u32) -> Result<Self, PartitionError> {
        if count == 0 || count > PARTITION_COUNT_MAX {
            return Err(PartitionError::CountOutOfRange { count: u64::from(count) });
        }
        if !count.is_power_of_two() {
            return Err(PartitionError::NotPowerOfTwo { count });
        }
        Ok(Self(count as u16))
    }

    /// The count as a number.
    pub fn get(self) -> u32 {
        u32::from(self.0)
    }

    /// `log2(P)`: how many top bits of a UUID fix its partition.
    pub fn bits(self) -> u32 {
        self.get().trailing_zeros()
    }

    /// Every partition, in order.
    pub fn partitions(self) -> impl Iterator<Item = PartitionId> {
        (0..self.0).map(PartitionId)
    }
}

impl Default for PartitionCount {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for PartitionCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for PartitionCount {
    type Err = PartitionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let not_a_number = || PartitionError::NotANumber { text: text.chars().take(32).collect() };
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_a_number());
        }
        match text.parse::<u64>() {
            Ok(count) => match u32::try_from(count) {
                Ok(count) => Self::new(count),
                Err(_) => Err(PartitionError::CountOutOfRange { count }),
            },
            // Only too many digits are left: out of range, not malformed.
            Err(_) => Err(PartitionError::CountOutOfRange { count: u64::MAX }),
        }
    }
}

/// One partition: an index below the [`PartitionCount`] it was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionId(u16);

impl PartitionId {
    /// Partition `index` among `count`, refused when not below `count`.
    pub fn new(index: u32, count: PartitionCount) -> Result<Self, PartitionError> {
        if index >= count.get() {
            return Err(PartitionError::PartitionOutOfRange { index, count: count.get() });
        }
        Ok(Self(index as u16))
    }

    /// The partition's index, `0..P`.
    pub fn index(self) -> u32 {
        u32::from(self.0)
    }
}

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The partition holding account (or provisioning address) `uuid`: the range
/// function of the shards applied with `P` ranges.
pub fn partition_of(uuid: &Uuid, count: PartitionCount) -> PartitionId {
    let index = crate::shard::owner(uuid, count.get() as usize);
    assert!(index < count.get() as usize, "owner() left its range");
    PartitionId(index as u16)
}

/// The shard serving `partition` on its node of `shard_count` shards
/// (`shard_count >= 1`): `p mod S`.
pub fn local_shard(partition: PartitionId, shard_count: usize) -> usize {
    assert!(shard_count >= 1, "shard_count must be at least 1");
    partition.index() as usize % shard_count
}

/// The fewest leading hex digits of a UUID that fix its partition among
/// `count`: `ceil(log2(P) / 4)`, and at least 1 so a map always has a key
/// (with `P = 1` every digit maps to partition 0). 1 up to `P = 16`, 2 up to
/// 256, 3 up to 4096.
pub fn hex_prefix_len(count: PartitionCount) -> usize {
    (count.bits() as usize).div_ceil(4).max(1)
}

/// The partition of every UUID that starts with the hex digits `prefix`
/// (either case; [`hex_prefix_len`]`..=`[`HEX_PREFIX_LEN_MAX`] digits).
/// Agrees with [`partition_of`] on any UUID with that prefix.
pub fn partition_of_hex_prefix(
    prefix: &str,
    count: PartitionCount,
) -> Result<PartitionId, PartitionError> {
    let min = hex_prefix_len(count);
    if prefix.len() < min || prefix.len() > HEX_PREFIX_LEN_MAX {
        return Err(PartitionError::PrefixLength { len: prefix.len(), min, count: count.get() });
    }
    // u64: with `P = 1` and 8 digits the shift below is a full 32 bits.
    let mut value: u64 = 0;
    for (at, byte) in prefix.bytes().enumerate() {
        let digit = (byte as char).to_digit(16).ok_or(PartitionError::PrefixNotHex { at })?;
        value = (value << 4) | u64::from(digit);
    }
    // `value` holds the UUID's top `4 * len` bits; the partition is its top
    // `log2(P)` of them.
    let index = value >> (4 * prefix.len() as u32 - count.bits());
    PartitionId::new(index as u32, count)
}

/// Every hex prefix of [`hex_prefix_len`] lowercase digits with the partition
/// it fixes, in order: the rows of a load balancer's routing map (16, 256 or
/// 4096 rows).
pub fn hex_prefix_table(count: PartitionCount) -> Vec<(String, PartitionId)> {
    let len = hex_prefix_len(count);
    let shift = 4 * len as u32 - count.bits();
    (0u32..1 << (4 * len))
        .map(|value| (format!("{value:0len$x}"), PartitionId((value >> shift) as u16)))
        .collect()
}

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;
