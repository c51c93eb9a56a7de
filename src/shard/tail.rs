//! A session's in-memory queue tail: the items stored for its device since
//! the tail began, kept so that live traffic is delivered from memory
//! instead of being read back from RocksDB.
//!
//! The store stays the truth; the tail is a cache of what was just written
//! to it, and the outbox serves from it only when that cannot skip, reorder
//! or invent an item:
//! - every item staged for the device from batch `first_batch` on (write
//!   batches are numbered in order, and keys grow with them) is appended,
//!   in key order, until the tail overflows (then it is dropped whole, and
//!   the next item starts a new one);
//! - the outbox starts serving from the tail only after a store read that
//!   began once every batch before `first_batch` was done reached the end
//!   of the queue: nothing older than the tail is left unread;
//! - an entry is served as soon as it is staged, before its batch is
//!   written (DESIGN.md section 4: delivery does not wait for the fsync; a
//!   device may see an item whose send then fails, and the sender retries:
//!   at-least-once), from the head, with its place in the batch so that an
//!   acknowledgement arriving before the write can elide it;
//! - a failed batch after the tail began (the writer's failure count moved)
//!   invalidates the tail: its entries may never have been stored, so the
//!   outbox drops it and reads the store;
//! - with no tail, a store read that reached the end of the queue starts an
//!   empty serving tail at the open batch when every item ever staged for
//!   the device while the session was registered (the slot records the
//!   latest batch, and starts at the open batch when the session
//!   registers) was in a batch done before the read began: then the read
//!   saw everything older, and the next item is served from memory at once.
//!
//! Bounded: at most [`TAIL_ENTRIES_MAX`] entries and [`TAIL_BYTES_MAX`]
//! bytes. Pure state: no I/O, no clock.

use crate::store::batch::OpRef;
use crate::store::messages::StoredMessage;
use std::cell::RefCell;
use std::collections::VecDeque;

/// Most entries one tail holds.
pub const TAIL_ENTRIES_MAX: usize = 64;
/// Most bytes (keys and JSON) one tail holds.
pub const TAIL_BYTES_MAX: usize = 64 * 1024;

/// One item, and where its put is staged.
#[derive(Debug)]
struct Entry {
    at: OpRef,
    message: StoredMessage,
}

/// The tail of one session's queue.
#[derive(Debug)]
pub struct Tail {
    entries: VecDeque<Entry>,
    bytes: usize,
    /// Every item staged for the device in this batch or a later one is
    /// here (until served).
    first_batch: u64,
    /// The writer's failed-batch count when the tail began.
    failures_seen: u64,
    /// The outbox has caught up with everything older: it serves from here.
    serving: bool,
}

/// Why the outbox must read the store instead.
#[derive(Debug, PartialEq, Eq)]
pub enum TailInvalid {
    /// A batch failed since the tail began.
    WriteFailed,
}

fn entry_bytes(message: &StoredMessage) -> usize {
    message.key.len() + message.json.len()
}

impl Tail {
    fn new(first_batch: u64, failures_seen: u64) -> Self {
        Self { entries: VecDeque::new(), bytes: 0, first_batch, failures_seen, serving: false }
    }

    /// True once the outbox serves from the tail.
    pub fn is_serving(&self) -> bool {
        self.serving
    }

    /// A store read that began when batches up to `done_through_before` were
    /// done (and `failures_before` batches had failed: the writer's progress
    /// then) reached the end of the queue: serve from the tail if nothing
    /// older can be left.
    fn on_store_caught_up(&mut self, (done_through_before, failures_before): (u64, u64)) {
        if failures_before == self.failures_seen && done_through_before + 1 >= self.first_batch {
            self.serving = true;
        }
    }

    /// Up to `limit` entries from the head, each with its place in its
    /// batch, skipping those at or before `after` (already read from the
    /// store). `failures` is the writer's failed-batch count now.
    fn take_ready(
        &mut self,
        failures: u64,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(StoredMessage, OpRef)>, TailInvalid> {
        if failures != self.failures_seen {
            return Err(TailInvalid::WriteFailed);
        }
        let mut ready = Vec::new();
        while ready.len() < limit {
            let Some(entry) = self.entries.pop_front() else { break };
            self.bytes -= entry_bytes(&entry.message);
            if after.is_some_and(|after| entry.message.key.as_slice() <= after) {
                continue;
            }
            ready.push((entry.message, entry.at));
        }
        Ok(ready)
    }
}

/// A session's tail, if it has one (none until an item arrives or a store
/// read vouches for an empty one, and again after an overflow or a failed
/// write), and the latest batch any item for the device was staged in.
#[derive(Debug, Default)]
pub struct TailSlot {
    tail: RefCell<Option<Box<Tail>>>,
    staged_through: std::cell::Cell<u64>,
}

/// Where a staged item went: into the session's tail, or only to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// The item is in the session's tail.
    InTail,
    /// It is not: the session must read the store.
    NotInTail,
}

impl TailSlot {
    /// Appends `message`, whose put is staged at `at`; `failures_before` is
    /// the writer's failed-batch count when it was staged. Starts a tail at
    /// its batch when there is none; drops the tail when the entry would
    /// overflow it.
    pub fn append(&self, at: OpRef, failures_before: u64, message: StoredMessage) -> Appended {
        self.note_staged(at.batch);
        let mut slot = self.tail.borrow_mut();
        let tail = slot.get_or_insert_with(|| Box::new(Tail::new(at.batch, failures_before)));
        let bytes = entry_bytes(&message);
        if tail.entries.len() >= TAIL_ENTRIES_MAX || tail.bytes + bytes > TAIL_BYTES_MAX {
            *slot = None;
            return Appended::NotInTail;
        }
        debug_assert!(
            tail.entries.back().is_none_or(|last| last.message.key < message.key),
            "keys grow with batches"
        );
        tail.bytes += bytes;
        tail.entries.push_back(Entry { at, message });
        Appended::InTail
    }

    /// Records that an item for the device may be staged in `batch` or an
    /// earlier one (the session calls this with the open batch when it
    /// registers; [`Self::append`] for each item).
    pub fn note_staged(&self, batch: u64) {
        self.staged_through.set(self.staged_through.get().max(batch));
    }

    /// True when the outbox serves from the tail.
    pub fn is_serving(&self) -> bool {
        self.tail.borrow().as_ref().is_some_and(|tail| tail.is_serving())
    }

    /// A store read that began at writer progress `progress_before`
    /// reached the end of the queue: see [`Tail::on_store_caught_up`];
    /// with no tail, starts an empty serving one at `open_batch` (the
    /// writer's `failures` now) when nothing staged for the device since
    /// can be missing from the read.
    pub fn on_store_caught_up(&self, progress_before: (u64, u64), open_batch: u64, failures: u64) {
        let mut slot = self.tail.borrow_mut();
        match slot.as_mut() {
            Some(tail) => tail.on_store_caught_up(progress_before),
            None => {
                let (done_through_before, failures_before) = progress_before;
                if self.staged_through.get() <= done_through_before && failures_before == failures {
                    let mut tail = Tail::new(open_batch, failures);
                    tail.serving = true;
                    *slot = Some(Box::new(tail));
                }
            }
        }
    }

    /// Ready entries when serving (see [`Tail::take_ready`]); an invalid
    /// tail is dropped.
    pub fn take_ready(
        &self,
        failures: u64,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(StoredMessage, OpRef)>, TailInvalid> {
        let mut slot = self.tail.borrow_mut();
        let Some(tail) = slot.as_mut().filter(|tail| tail.serving) else { return Ok(Vec::new()) };
        let taken = tail.take_ready(failures, after, limit);
        if taken.is_err() {
            *slot = None;
        }
        taken
    }

    /// Drops the tail (the session is closing).
    pub fn clear(&self) {
        *self.tail.borrow_mut() = None;
    }
}

#[cfg(test)]
mod tests;
