//! The shard's side of its writer: stages every write in the open batch and
//! runs the commit loop that hands batches to the writer thread.
//!
//! One batch is with the writer at a time. While it is written (and its WAL
//! synced), new writes gather in the open batch; when it completes, the
//! commit loop seals the open batch and sends it. So batches grow with the
//! load by themselves: a lone write goes out at once, and under load one
//! write, one sync and one wake each way serve everything staged meanwhile.
//! Everything a shard writes goes through here, in staging order.
//!
//! Progress, for the in-memory queue tail: batches are numbered 1, 2, ...;
//! [`Writer::done_through`] is the last one written (or failed), and
//! [`Writer::failed_batches`] counts failures. Both change only together,
//! in the commit loop on the shard's thread, failures first.
//!
//! Holding for acknowledgements (Signal's `persistDelay`, bounded): when the
//! writer is free and the open batch holds puts already on their way to
//! connected devices, the commit loop waits until every one of them is
//! acknowledged (elided) or until `persist_delay` has passed, whichever
//! comes first, before it seals the batch. At low load that turns a put, a
//! sync and a delete per message into nothing (the acknowledgement comes
//! within a fraction of a millisecond); under load each batch cycle grows
//! by at most the delay, and the puts staged late in a cycle get that
//! long for their acknowledgements (measured: more elided, less CPU per
//! message, see tuning/performance.md).
//!
//! Invariants: a stage's wait ends `Ok` only when each of its ops is written
//! per the mode or elided; staging never blocks (callers wait for room first:
//! the open batch is bounded by [`BATCH_OPS_MAX`](crate::store::batch::BATCH_OPS_MAX)
//! plus one stage).

use crate::store::batch::{Elided, OpRef, OpenBatch, Sealed, Staged, Waiter};
use crate::store::writer::{BatchJob, Op, WriterThread};
use crate::store::StoreError;
use futures_channel::oneshot;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

/// The shard's writer: its open batch, the commit loop's state and the
/// writer thread it feeds. Shard-local (`!Send`).
pub struct Writer {
    thread: RefCell<WriterThread>,
    open: RefCell<OpenBatch>,
    /// The commit loop, while it waits for something to write.
    committer: Cell<Option<Waker>>,
    done_through: Cell<u64>,
    failed_batches: Cell<u64>,
    full_wait_ms: u64,
    /// Longest wait for acknowledgements before sealing (zero: none).
    persist_delay: Duration,
    /// True while the commit loop holds the open batch for acknowledgements.
    holding: Cell<bool>,
}

/// A staged write's place and its completion.
pub struct Pending {
    /// The first op's place (the others follow it, in order).
    pub first: OpRef,
    waiter: Rc<Waiter>,
}

impl Pending {
    /// Resolves once every op is written per the mode or elided: the
    /// elided ones (indices from the first op), or the batch's error.
    pub async fn done(self) -> Result<Elided, StoreError> {
        std::future::poll_fn(|cx| self.waiter.poll_done(cx)).await.map_err(StoreError::WriteFailed)
    }
}

impl Writer {
    /// The shard's writer over `thread`; a full open batch waits up to
    /// `full_wait_ms` for room before [`StoreError::WriterBusy`]; a batch
    /// with puts on their way to devices is held up to `persist_delay` for
    /// their acknowledgements.
    pub fn new(thread: WriterThread, full_wait_ms: u64, persist_delay: Duration) -> Self {
        Self {
            persist_delay,
            holding: Cell::new(false),
            thread: RefCell::new(thread),
            open: RefCell::new(OpenBatch::new(1)),
            committer: Cell::new(None),
            done_through: Cell::new(0),
            failed_batches: Cell::new(0),
            full_wait_ms,
        }
    }

    /// Every batch numbered up to this is done (written per the mode, or
    /// failed: see [`Self::failed_batches`]).
    pub fn done_through(&self) -> u64 {
        self.done_through.get()
    }

    /// The number of the batch being filled (the next one to be written).
    pub fn open_batch(&self) -> u64 {
        self.open.borrow().number()
    }

    /// True when the open batch holds a write of a key starting with `prefix`.
    pub fn open_batch_holds(&self, prefix: &[u8]) -> bool {
        self.open.borrow().holds_prefix(prefix)
    }

    /// Batches that failed so far.
    pub fn failed_batches(&self) -> u64 {
        self.failed_batches.get()
    }

    /// Applies `ops` atomically; resolves once they are durable per the mode.
    pub async fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.wait_for_room().await?;
        self.stage(ops, true).done().await.map(drop)
    }

    /// Applies `ops` atomically without a WAL sync of their own (they ride
    /// along with the next synced batch, if any).
    pub async fn write_lazy(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.wait_for_room().await?;
        self.stage(ops, false).done().await.map(drop)
    }

    /// Waits (up to `full_wait_ms`) until the open batch has room: a
    /// [`Self::stage`] made before the task next yields is within bounds.
    pub async fn wait_for_room(&self) -> Result<(), StoreError> {
        let mut waited_ms = 0;
        while !self.open.borrow().has_room(1, 0) {
            if waited_ms >= self.full_wait_ms {
                return Err(StoreError::WriterBusy);
            }
            monoio::time::sleep(Duration::from_millis(1)).await;
            waited_ms += 1;
        }
        Ok(())
    }

    /// Stages `ops` in the open batch now (`durable`: synced per the mode
    /// before it completes; otherwise it rides along with the next synced
    /// batch, if any).
    pub fn stage(&self, ops: Vec<Op>, durable: bool) -> Pending {
        let mut open = self.open.borrow_mut();
        let Staged { first, waiter } = open.stage(ops, durable);
        // A hold ends early only when the batch fills; waiting for a first
        // stage, any stage will do.
        if !self.holding.get() || !open.has_room(1, 0) {
            if let Some(committer) = self.committer.take() {
                committer.wake();
            }
        }
        Pending { first, waiter }
    }

    /// Marks the put at `at` as on its way to a connected device: the
    /// commit loop may hold the batch a moment for its acknowledgement.
    pub fn mark_elidable(&self, at: OpRef) {
        self.open.borrow_mut().mark_elidable(at);
    }

    /// Takes the put of `key` at `at` out of the open batch if it is still
    /// there; true when it did (then no delete is due for it).
    pub fn elide(&self, at: OpRef, key: &[u8]) -> bool {
        let mut open = self.open.borrow_mut();
        let elided = open.elide(at, key);
        if elided && open.elidable() == 0 {
            // The commit loop may be holding the batch for this one.
            if let Some(committer) = self.committer.take() {
                committer.wake();
            }
        }
        elided
    }

    /// Waits while the open batch holds marked puts, for at most
    /// `persist_delay` from now, and while it has room.
    async fn hold_for_acknowledgements(&self) {
        // Woken only by the last marked put's elision, or a full batch.
        let held = std::future::poll_fn(|cx| {
            let open = self.open.borrow();
            if open.elidable() == 0 || !open.has_room(1, 0) {
                return Poll::Ready(());
            }
            self.committer.set(Some(cx.waker().clone()));
            Poll::Pending
        });
        self.holding.set(true);
        monoio::select! {
            _ = monoio::time::sleep(self.persist_delay) => {}
            _ = held => {}
        }
        self.holding.set(false);
    }

    /// The commit loop: for the life of the shard, seals the open batch
    /// whenever it holds something and the previous batch is done, and
    /// sends it to the writer thread.
    pub async fn run(&self) {
        loop {
            std::future::poll_fn(|cx| {
                if self.open.borrow().is_empty() {
                    self.committer.set(Some(cx.waker().clone()));
                    return Poll::Pending;
                }
                Poll::Ready(())
            })
            .await;
            if !self.persist_delay.is_zero() {
                self.hold_for_acknowledgements().await;
            }
            let Sealed { number, ops, stage_ends, durable, waiters } =
                self.open.borrow_mut().seal();
            let result = if ops.is_empty() {
                Ok(())
            } else {
                let (done, outcome) = oneshot::channel();
                let job = BatchJob { ops, stage_ends, durable, done };
                let sent = self.thread.borrow_mut().send(job);
                match sent {
                    Ok(()) => outcome.await.unwrap_or_else(|_| Err("writer stopped".into())),
                    Err(error) => Err(error.to_string()),
                }
            };
            if result.is_err() {
                self.failed_batches.set(self.failed_batches.get() + 1);
            }
            self.done_through.set(number);
            waiters.complete(&result);
        }
    }
}
