//! Envelopes a device acknowledged whose delete is not applied yet (in
//! the open batch, being written, or retried after a failed write: a
//! partition log not ready under replicated durability, a full disk): the
//! shard never delivers them again meanwhile, so an acknowledged envelope
//! does not come back to a device that reconnects before its delete lands.
//!
//! Invariants: at most [`OWED_KEYS_MAX`] keys (past that an
//! acknowledgement is not remembered, and its envelope may be delivered
//! again: at least once, as before); memory only (a crash forgets them,
//! and an envelope whose delete never became durable is delivered again);
//! a key leaves when its delete is applied or its retries give up.

use std::cell::RefCell;
use std::collections::HashSet;

/// The most acknowledged-but-undeleted keys remembered per shard.
pub const OWED_KEYS_MAX: usize = 100_000;

/// The keys whose deletes are owed.
#[derive(Default)]
pub struct OwedDeletes {
    keys: RefCell<HashSet<Vec<u8>>>,
}

impl OwedDeletes {
    /// Remembers `keys` (as many as fit under [`OWED_KEYS_MAX`]).
    pub fn insert(&self, keys: &[Vec<u8>]) {
        let mut owed = self.keys.borrow_mut();
        for key in keys {
            if owed.len() >= OWED_KEYS_MAX {
                return;
            }
            owed.insert(key.clone());
        }
    }

    /// Forgets `keys` (their deletes are applied, or given up).
    pub fn remove(&self, keys: &[Vec<u8>]) {
        let mut owed = self.keys.borrow_mut();
        for key in keys {
            owed.remove(key);
        }
    }

    /// Whether the delete of `key` is owed (do not deliver it).
    pub fn contains(&self, key: &[u8]) -> bool {
        let owed = self.keys.borrow();
        !owed.is_empty() && owed.contains(key)
    }

    /// How many are owed.
    pub fn len(&self) -> usize {
        self.keys.borrow().len()
    }

    /// Whether none is owed.
    pub fn is_empty(&self) -> bool {
        self.keys.borrow().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owed_keys_are_remembered_until_removed_and_bounded() {
        let owed = OwedDeletes::default();
        owed.insert(&[b"a".to_vec(), b"b".to_vec()]);
        assert!(owed.contains(b"a") && owed.contains(b"b") && !owed.contains(b"c"));
        owed.remove(&[b"a".to_vec()]);
        assert!(!owed.contains(b"a") && owed.contains(b"b"));
        let many: Vec<Vec<u8>> =
            (0..OWED_KEYS_MAX + 10).map(|i| i.to_be_bytes().to_vec()).collect();
        owed.insert(&many);
        assert_eq!(owed.len(), OWED_KEYS_MAX);
    }
}
