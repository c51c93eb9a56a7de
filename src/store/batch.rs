//! The shard's open write batch: writes staged on the shard until its
//! writer thread is free to take them, and the waits of whoever staged them.
//!
//! Every write a shard makes is staged here (a [`Staged`] names its batch
//! and its place in it) and waits on a [`Waiter`]. The shard hands the whole
//! open batch to the writer thread when the previous one is written, so one
//! batch, one RocksDB write, one WAL sync and one cross-thread wake each way
//! serve every write staged meanwhile, at any load.
//!
//! Elision: a queued item's put that is still in the open batch when its
//! device acknowledges it leaves the batch ([`OpenBatch::elide`]), and no
//! delete is ever made for it: an item acknowledged before it was written
//! is never written. A waiter whose every put was elided completes at once
//! (its items are acknowledged, which is as good as durable). A put already
//! on its way to a connected device is marked elidable
//! ([`OpenBatch::mark_elidable`]): the batch knows how many such puts are
//! still in it, so the commit loop can give their acknowledgements a moment
//! before writing them.
//!
//! Invariants: ops keep the order they were staged in (and ops of one
//! stage are contiguous); only a `Put` can be elided, only while its batch
//! is open and only once; a waiter completes exactly once, with `Ok` when
//! each of its ops is elided or written, else with the batch's error. The
//! open batch is bounded by [`BATCH_OPS_MAX`] and [`BATCH_BYTES_MAX`]
//! (callers wait for room first). Pure state: no I/O, no clock.

use crate::store::writer::Op;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Most ops one batch holds (staging waits for room beyond it).
pub const BATCH_OPS_MAX: usize = 16 * 1024;
/// Most key and value bytes one batch holds.
pub const BATCH_BYTES_MAX: usize = 32 * 1024 * 1024;

/// Where a staged op sits: its batch's number and its index in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpRef {
    /// The batch's number (1, 2, ... in the order batches are written).
    pub batch: u64,
    /// The op's index in the batch.
    pub index: u32,
}

/// How a wait ended well: which of the stage's ops were elided (indices
/// relative to the stage's first op, ascending).
pub type Elided = Vec<u32>;

/// One stage's completion, shared by the batch and the staging task.
#[derive(Default)]
pub struct Waiter {
    /// Ops of the stage neither elided nor written yet.
    outstanding: Cell<usize>,
    elided: RefCell<Elided>,
    result: RefCell<Option<Result<(), String>>>,
    waker: Cell<Option<Waker>>,
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("outstanding", &self.outstanding.get())
            .field("complete", &self.is_complete())
            .finish()
    }
}

impl Waiter {
    fn complete(&self, result: Result<(), String>) {
        let mut slot = self.result.borrow_mut();
        if slot.is_none() {
            *slot = Some(result);
            if let Some(waker) = self.waker.take() {
                waker.wake();
            }
        }
    }

    /// True once completed.
    pub fn is_complete(&self) -> bool {
        self.result.borrow().is_some()
    }

    /// Ready once completed: the elided ops, or the batch's error.
    pub fn poll_done(&self, cx: &mut Context<'_>) -> Poll<Result<Elided, String>> {
        match self.result.borrow().as_ref() {
            Some(Ok(())) => Poll::Ready(Ok(std::mem::take(&mut *self.elided.borrow_mut()))),
            Some(Err(message)) => Poll::Ready(Err(message.clone())),
            None => {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        }
    }
}

/// What [`OpenBatch::stage`] gives back.
#[derive(Debug)]
pub struct Staged {
    /// The first op's place (the others follow it).
    pub first: OpRef,
    /// Completes when every op is elided or written.
    pub waiter: Rc<Waiter>,
}

/// A stage: its ops run up to `ops_end` (exclusive) in the batch.
#[derive(Debug)]
struct Stage {
    ops_end: usize,
    waiter: Rc<Waiter>,
}

/// The batch being filled on the shard.
#[derive(Debug)]
pub struct OpenBatch {
    number: u64,
    /// `None`: elided.
    ops: Vec<Option<Op>>,
    /// Indices of the ops marked elidable (ascending: marks follow staging).
    elidable: Vec<u32>,
    /// Marked ops not yet elided.
    elidable_live: usize,
    stages: Vec<Stage>,
    live_ops: usize,
    bytes: usize,
    durable: bool,
}

/// A batch taken from the shard for the writer: its live ops in order, the
/// end of each stage's ops among them (for `sync`, which writes each stage
/// on its own), and the stages' waiters.
#[derive(Debug)]
pub struct Sealed {
    /// The batch's number.
    pub number: u64,
    /// Ops to write, in staging order.
    pub ops: Vec<Op>,
    /// Exclusive ends of each stage's ops in `ops` (stages left empty by
    /// elision are not listed).
    pub stage_ends: Vec<usize>,
    /// Whether any stage asked for a sync.
    pub durable: bool,
    /// Waiters to complete once the batch is written.
    pub waiters: Completions,
}

/// The waits a sealed batch ends.
#[derive(Debug)]
pub struct Completions(Vec<Rc<Waiter>>);

impl Completions {
    /// Completes every waiter not yet complete with `result`.
    pub fn complete(self, result: &Result<(), String>) {
        for waiter in self.0 {
            waiter.complete(result.clone());
        }
    }

    /// True when no wait is left to end (for tests: the commit loop only
    /// completes them).
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn op_bytes(op: &Op) -> usize {
    match op {
        Op::Put { key, value, .. } => key.len() + value.len(),
        Op::Delete { key, .. } => key.len(),
    }
}

impl OpenBatch {
    /// An empty batch numbered `number`.
    pub fn new(number: u64) -> Self {
        Self {
            number,
            ops: Vec::new(),
            elidable: Vec::new(),
            elidable_live: 0,
            stages: Vec::new(),
            live_ops: 0,
            bytes: 0,
            durable: false,
        }
    }

    /// This batch's number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// True when no op is left to write.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// True when `ops_len` more ops of `bytes` bytes fit (an empty batch
    /// takes anything, so one oversized stage still goes through).
    pub fn has_room(&self, ops_len: usize, bytes: usize) -> bool {
        self.ops.is_empty()
            || (self.ops.len() + ops_len <= BATCH_OPS_MAX && self.bytes + bytes <= BATCH_BYTES_MAX)
    }

    /// Stages `ops` (`durable`: the batch is synced per the mode before
    /// they complete). An empty `ops` completes at once.
    pub fn stage(&mut self, ops: Vec<Op>, durable: bool) -> Staged {
        let waiter = Rc::new(Waiter::default());
        let first = OpRef { batch: self.number, index: self.ops.len() as u32 };
        if ops.is_empty() {
            waiter.complete(Ok(()));
            return Staged { first, waiter };
        }
        waiter.outstanding.set(ops.len());
        self.live_ops += ops.len();
        self.bytes += ops.iter().map(op_bytes).sum::<usize>();
        self.durable |= durable;
        self.ops.extend(ops.into_iter().map(Some));
        self.stages.push(Stage { ops_end: self.ops.len(), waiter: waiter.clone() });
        Staged { first, waiter }
    }

    /// True when a live op's key starts with `prefix`.
    pub fn holds_prefix(&self, prefix: &[u8]) -> bool {
        self.ops.iter().flatten().any(|op| match op {
            Op::Put { key, .. } | Op::Delete { key, .. } => key.starts_with(prefix),
        })
    }

    /// Marks the put at `at` as on its way to a connected device (its
    /// acknowledgement may come before the batch is written).
    pub fn mark_elidable(&mut self, at: OpRef) {
        if at.batch != self.number || !matches!(self.ops.get(at.index as usize), Some(Some(_))) {
            return;
        }
        debug_assert!(
            self.elidable.last().is_none_or(|&last| last < at.index),
            "marked once, in order"
        );
        self.elidable.push(at.index);
        self.elidable_live += 1;
    }

    /// Marked puts still in the batch.
    pub fn elidable(&self) -> usize {
        self.elidable_live
    }

    /// Takes the put at `at` out of the batch if it is still here and
    /// writes `key`; true when it did (no delete is then due for it).
    pub fn elide(&mut self, at: OpRef, key: &[u8]) -> bool {
        if at.batch != self.number {
            return false;
        }
        let index = at.index as usize;
        let Some(slot) = self.ops.get_mut(index) else { return false };
        let matches =
            matches!(slot, Some(Op::Put { key: put_key, .. }) if put_key.as_slice() == key);
        if !matches {
            debug_assert!(slot.is_none(), "an op ref names a put of another key");
            return false;
        }
        let op = slot.take().expect("checked above");
        if self.elidable.binary_search(&at.index).is_ok() {
            self.elidable_live -= 1;
        }
        self.live_ops -= 1;
        self.bytes -= op_bytes(&op);
        let stage_at = self.stages.partition_point(|stage| stage.ops_end <= index);
        let stage_start = if stage_at == 0 { 0 } else { self.stages[stage_at - 1].ops_end };
        let waiter = &self.stages[stage_at].waiter;
        waiter.elided.borrow_mut().push((index - stage_start) as u32);
        let outstanding = waiter.outstanding.get() - 1;
        waiter.outstanding.set(outstanding);
        if outstanding == 0 {
            waiter.elided.borrow_mut().sort_unstable();
            waiter.complete(Ok(()));
        }
        true
    }

    /// Seals this batch for the writer and leaves an empty one, numbered
    /// next, in its place.
    pub fn seal(&mut self) -> Sealed {
        let sealed = std::mem::replace(self, OpenBatch::new(self.number + 1));
        let mut ops = Vec::with_capacity(sealed.live_ops);
        let mut stage_ends = Vec::with_capacity(sealed.stages.len());
        let mut waiters = Vec::with_capacity(sealed.stages.len());
        let mut taken = sealed.ops.into_iter();
        let mut start = 0;
        for stage in sealed.stages {
            ops.extend(taken.by_ref().take(stage.ops_end - start).flatten());
            start = stage.ops_end;
            if stage_ends.last() != Some(&ops.len()) && !ops.is_empty() {
                stage_ends.push(ops.len());
            }
            if !stage.waiter.is_complete() {
                stage.waiter.elided.borrow_mut().sort_unstable();
                waiters.push(stage.waiter);
            }
        }
        debug_assert_eq!(ops.len(), sealed.live_ops);
        let waiters = Completions(waiters);
        Sealed { number: sealed.number, ops, stage_ends, durable: sealed.durable, waiters }
    }
}

#[cfg(test)]
mod tests;
