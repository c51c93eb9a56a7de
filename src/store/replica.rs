//! The hook of replicated durability: with it, a shard's writer thread
//! hands each batch to a [`Replicate`] before it applies anything, and
//! applies only what that answers (log first, then the local store).
//!
//! The store knows nothing of where the log is (the cluster layer, above,
//! implements the trait over JetStream); it only keeps, per routing unit,
//! the last log sequence applied (the unit's `Log` family record, written
//! in the same RocksDB write as the ops it covers, see [`crate::store::units`]).
//!
//! Invariants: an op is applied locally only if [`Replicate::replicate`]
//! returned it (it is in the log); a batch's waiters are told `Ok` only if
//! every one of its ops was appended and the local write succeeded.

use crate::store::ops::Op;

/// What to do locally after a batch went to the logs.
#[derive(Debug)]
pub struct Replicated {
    /// The ops now in the logs, in order, with each unit's new
    /// applied-sequence record: write these here.
    pub apply: Vec<Op>,
    /// `Err` when some op could not be appended (its unit stops taking
    /// writes until it is caught up again).
    pub result: Result<(), String>,
}

/// Appends batches to the logs of the units their keys fall in.
pub trait Replicate: Send {
    /// Appends `ops` (stages ending at `stage_ends`) to their units' logs.
    fn replicate(&mut self, ops: Vec<Op>, stage_ends: &[usize]) -> Replicated;

    /// The local write of `applied` (a [`Replicated::apply`]) failed: the
    /// units it touched are behind their logs.
    fn not_applied(&mut self, applied: &[Op]);
}

/// Applies `ops` (log entries of unit `unit` read back) on shard `shard`
/// with the unit's applied-sequence record `seq`, as one synced write.
pub fn apply_caught_up(
    store: &crate::store::Store,
    shard: usize,
    unit: (usize, usize),
    ops: &[Op],
    seq: u64,
) -> Result<(), crate::store::StoreError> {
    use crate::store::ops::Family;
    let names = [
        crate::store::accounts_family(shard),
        crate::store::messages_family(shard),
        crate::store::directory_family(shard),
        crate::store::log_family(shard),
    ];
    let [accounts, messages, directory, log] = [0, 1, 2, 3].map(|i| store.family(&names[i]));
    let (accounts, messages, directory, log) = (accounts?, messages?, directory?, log?);
    let family = |family: Family| match family {
        Family::Accounts => accounts,
        Family::Messages => messages,
        Family::Directory => directory,
        Family::Log => log,
    };
    let mut batch = rocksdb::WriteBatch::default();
    for op in ops {
        match op {
            Op::Put { family: f, key, value } => batch.put_cf(family(*f), key, value),
            Op::Delete { family: f, key } => batch.delete_cf(family(*f), key),
        }
    }
    batch.put_cf(log, crate::store::units::log_key(unit.0, unit.1), seq.to_be_bytes());
    let mut options = rocksdb::WriteOptions::default();
    options.set_sync(true);
    Ok(store.db().write_opt(batch, &options)?)
}
