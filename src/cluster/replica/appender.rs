//! The writer thread's side of replicated durability: [`LogAppender`]
//! splits each batch by partition and appends each partition's share to
//! its log (fenced by the last sequence this node appended), blocking the
//! writer thread, never a shard, until every append is acknowledged.
//!
//! A partition's share goes as one entry, or as several in order when it
//! is over [`ENTRY_BYTES_MAX`] (pipelined: each names the sequence the one
//! before it will get). The appends of all the batch's partitions are
//! sent before any is awaited.
//!
//! Invariants: only ops whose partition's entries were all acknowledged
//! are returned to apply, each partition's with its applied-sequence
//! record; a partition whose append failed in any way (fenced, timed out,
//! refused) is made not ready, for the adopter to catch up or drop; a
//! partition not ready is not appended to at all.

use super::entry;
use super::states::UnitStates;
use crate::cluster::nats::handle::{NatsHandle, Pending};
use crate::store::replica::{Replicate, Replicated};
use crate::store::units;
use crate::store::writer::{Family, Op};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The largest entry, bytes (under NATS's default 1 MiB payload, with
/// room for headers): a larger share of a batch is split.
pub const ENTRY_BYTES_MAX: usize = 768 * 1024;

/// Appends batches to the partition logs of one node.
pub struct LogAppender {
    nats: NatsHandle,
    states: Arc<UnitStates>,
}

/// A writer thread's appender for `node` (`None` without replication).
pub fn boxed(node: &crate::cluster::node::Node) -> Option<Box<dyn Replicate>> {
    let states = node.states.clone()?;
    Some(Box::new(LogAppender { nats: node.nats.clone(), states }))
}

impl LogAppender {
    /// An appender through `nats`, keeping `states`.
    pub fn new(nats: NatsHandle, states: Arc<UnitStates>) -> Self {
        Self { nats, states }
    }

    /// Sends `unit`'s entries; the sequence each will get, and its answer.
    fn send(&self, unit: usize, ops: &[Op]) -> Result<Vec<(u64, Pending<u64>)>, String> {
        let first = self.states.last_seq(unit);
        let mut sent = Vec::new();
        for (expected, share) in (first..).zip(split(ops, ENTRY_BYTES_MAX)) {
            let payload = Bytes::from(entry::encode_ops(share));
            let pending = self.nats.start_log_append(unit as u32, expected, payload);
            sent.push((expected + 1, pending.map_err(|e| e.to_string())?));
        }
        Ok(sent)
    }
}

fn key_of(op: &Op) -> &[u8] {
    match op {
        Op::Put { key, .. } | Op::Delete { key, .. } => key,
    }
}

/// `ops` in consecutive runs of about `bytes_max` each (a single op over
/// it is a run of its own).
fn split(ops: &[Op], bytes_max: usize) -> Vec<&[Op]> {
    let size = |op: &Op| match op {
        Op::Put { key, value, .. } => key.len() + value.len() + 16,
        Op::Delete { key, .. } => key.len() + 16,
    };
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, op) in ops.iter().enumerate() {
        if index > start && bytes + size(op) > bytes_max {
            runs.push(&ops[start..index]);
            (start, bytes) = (index, 0);
        }
        bytes += size(op);
    }
    if start < ops.len() {
        runs.push(&ops[start..]);
    }
    runs
}

impl Replicate for LogAppender {
    fn replicate(&mut self, ops: Vec<Op>, _stage_ends: &[usize]) -> Replicated {
        let unit_count = self.states.len();
        let mut shares: BTreeMap<usize, Vec<Op>> = BTreeMap::new();
        for op in ops {
            shares.entry(units::unit_of_key(key_of(&op), unit_count)).or_default().push(op);
        }
        let mut errors = Vec::new();
        let mut sent = Vec::new();
        for (unit, share) in shares {
            if !self.states.is_ready(unit) {
                errors.push(format!("partition {unit} is not ready"));
                continue;
            }
            match self.send(unit, &share) {
                Ok(pending) => sent.push((unit, share, pending)),
                Err(error) => {
                    self.states.unready(unit);
                    errors.push(format!("partition {unit}: {error}"));
                }
            }
        }
        let mut apply = Vec::new();
        for (unit, share, pending) in sent {
            let mut last = Ok(0);
            for (seq, answer) in pending {
                last = match answer.wait() {
                    Ok(got) if got == seq => Ok(seq),
                    Ok(got) => Err(format!("appended at {got}, not {seq}")),
                    Err(error) => Err(error.to_string()),
                };
                if last.is_err() {
                    break;
                }
            }
            match last {
                Ok(seq) => {
                    self.states.appended(unit, seq);
                    apply.extend(share);
                    let key = units::log_key(unit, unit_count);
                    apply.push(Op::Put {
                        family: Family::Log,
                        key,
                        value: seq.to_be_bytes().into(),
                    });
                }
                Err(error) => {
                    if self.states.unready(unit) {
                        tracing::warn!(unit, %error, "partition log append failed: catching up");
                    }
                    errors.push(format!("partition {unit}: {error}"));
                }
            }
        }
        let result = if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) };
        Replicated { apply, result }
    }

    fn not_applied(&mut self, applied: &[Op]) {
        let unit_count = self.states.len();
        for op in applied {
            self.states.unready(units::unit_of_key(key_of(op), unit_count));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(bytes: usize) -> Op {
        Op::Put { family: Family::Messages, key: vec![1; 16], value: vec![2; bytes] }
    }

    #[test]
    fn shares_split_into_runs_under_the_limit_in_order() {
        let ops = vec![put(100), put(100), put(5000), put(10), put(10)];
        let runs = split(&ops, 300);
        let lens: Vec<usize> = runs.iter().map(|run| run.len()).collect();
        assert_eq!(lens, vec![2, 1, 2]);
        assert_eq!(runs.concat(), ops);
        assert!(split(&[], 300).is_empty());
        assert_eq!(split(&ops, usize::MAX).len(), 1);
    }
}
