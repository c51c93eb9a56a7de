//! One write a shard stages: a put or a delete of a key in one of its
//! column families (what the writer thread applies, and what replicated
//! durability appends to the partition logs).
//!
//! Invariant: plain data, no I/O; the families are the shard's own.

/// Which of the shard's column families an op targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `s{n}_accounts`.
    Accounts,
    /// `s{n}_messages`.
    Messages,
    /// `s{n}_directory`.
    Directory,
    /// `s{n}_log`: per unit, the last partition-log sequence applied.
    Log,
}

/// One write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Insert or overwrite a key.
    Put {
        /// Target family.
        family: Family,
        /// Key bytes.
        key: Vec<u8>,
        /// Value bytes.
        value: Vec<u8>,
    },
    /// Remove a key.
    Delete {
        /// Target family.
        family: Family,
        /// Key bytes.
        key: Vec<u8>,
    },
}
