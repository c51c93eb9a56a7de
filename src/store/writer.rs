//! The per-shard writer thread: applies write batches off the event loop.
//!
//! RocksDB calls block, and a WAL sync takes a millisecond or more, so a shard
//! never writes itself: it hands a [`WriteJob`] to its writer over a bounded
//! SPSC ring and awaits the job's completion (a cross-thread wake). The
//! writer drains every job waiting, applies them as one RocksDB batch and,
//! per [`Durability`], syncs the WAL once for all of them (group commit),
//! once per job (`sync`), or not at all (`none`).
//!
//! Invariants: a job's completion is sent only after its batch is written
//! (and synced, unless `none`); jobs complete in the order they were queued;
//! a full queue is reported as [`StoreError::WriterBusy`], never dropped.
//!
//! Jobs are numbered 1, 2, ... in queue order ([`Pushed::job`]). The writer
//! publishes [`Writer::done_through`] (every job up to it is written, synced
//! per the mode, and its completion about to be sent) and, before that,
//! counts each failed batch in [`Writer::failed_batches`]: a reader that
//! loads `done_through` and then `failed_batches` sees every failure among
//! the jobs it covers. That lets a shard tell, without waiting for a job's
//! task, whether a job it queued is durable (the in-memory queue tail).

use crate::config::Durability;
use crate::metrics::Metrics;
use crate::store::{accounts_family, directory_family, messages_family, Store, StoreError};
use futures_channel::oneshot;
use rocksdb::{WriteBatch, WriteOptions};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Which of the shard's column families an op targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `s{n}_accounts`.
    Accounts,
    /// `s{n}_messages`.
    Messages,
    /// `s{n}_directory`.
    Directory,
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

/// Ops applied atomically, and whom to tell when they are durable.
struct WriteJob {
    ops: Vec<Op>,
    /// Must be synced per the durability mode before `done` (false for
    /// writes whose loss only causes a redelivery, such as acked deletes).
    durable: bool,
    done: oneshot::Sender<Result<(), String>>,
}

/// What the writer thread has finished, for the shard to read.
#[derive(Debug, Default)]
struct Progress {
    /// Every job numbered up to this one is done.
    done_through: AtomicU64,
    /// Batches whose write failed (incremented before `done_through` moves
    /// past their jobs).
    failed_batches: AtomicU64,
}

/// A queued job: its number, and its completion to await.
#[must_use = "a queued job's result must be awaited"]
pub struct Pushed {
    /// The job's number (queue order, from 1).
    pub job: u64,
    done: oneshot::Receiver<Result<(), String>>,
}

impl Pushed {
    /// Resolves once the job is durable per the mode (or failed).
    pub async fn done(self) -> Result<(), StoreError> {
        match self.done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::WriteFailed(message)),
            Err(_) => Err(StoreError::WriterStopped),
        }
    }
}

/// Most jobs merged into one RocksDB batch.
const JOBS_PER_BATCH_MAX: usize = 1024;

/// The shard's side of its writer thread.
pub struct Writer {
    producer: RefCell<rtrb::Producer<WriteJob>>,
    thread: std::thread::Thread,
    /// True while the writer thread is (about to be) parked: only then does
    /// a producer pay for an unpark (a futex syscall per job otherwise).
    parked: Arc<AtomicBool>,
    full_wait_ms: u64,
    /// Jobs queued so far (the last one's number).
    jobs_pushed: Cell<u64>,
    progress: Arc<Progress>,
}

impl Writer {
    /// Starts shard `shard`'s writer thread with a queue of `queue_slots` jobs.
    /// Its batch sizes and write times go to `metrics[shard]`.
    pub fn spawn(
        store: Store,
        shard: usize,
        durability: Durability,
        (queue_slots, full_wait_ms): (usize, u64),
        metrics: Metrics,
    ) -> std::io::Result<Self> {
        let (producer, consumer) = rtrb::RingBuffer::new(queue_slots);
        let parked = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Progress::default());
        let writer_side = (parked.clone(), progress.clone());
        let handle = std::thread::Builder::new()
            .name(format!("writer-{shard}"))
            .spawn(move || run(store, (shard, metrics), durability, consumer, writer_side))?;
        Ok(Self {
            producer: RefCell::new(producer),
            thread: handle.thread().clone(),
            parked,
            full_wait_ms,
            jobs_pushed: Cell::new(0),
            progress,
        })
    }

    /// Every job numbered up to this is done (written, and synced per the
    /// mode, or failed: see [`Self::failed_batches`]).
    pub fn done_through(&self) -> u64 {
        self.progress.done_through.load(Ordering::Acquire)
    }

    /// Batches that failed so far (load after [`Self::done_through`]).
    pub fn failed_batches(&self) -> u64 {
        self.progress.failed_batches.load(Ordering::Acquire)
    }

    /// Applies `ops` atomically; resolves once they are durable per the mode.
    pub async fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.submit(ops, true).await
    }

    /// Applies `ops` atomically without waiting for a WAL sync of their own
    /// (they ride along with the next synced batch, if any).
    pub async fn write_lazy(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.submit(ops, false).await
    }

    async fn submit(&self, ops: Vec<Op>, durable: bool) -> Result<(), StoreError> {
        self.wait_for_room().await?;
        self.push(ops, durable)?.done().await
    }

    /// Waits (up to `full_wait_ms`) until the queue has room for a job: a
    /// [`Self::push`] made before the task next yields then succeeds.
    pub async fn wait_for_room(&self) -> Result<(), StoreError> {
        let mut waited_ms = 0;
        while self.producer.borrow().slots() == 0 {
            if waited_ms >= self.full_wait_ms {
                return Err(StoreError::WriterBusy);
            }
            self.thread.unpark();
            monoio::time::sleep(Duration::from_millis(1)).await;
            waited_ms += 1;
        }
        Ok(())
    }

    /// Queues `ops` now (`durable`: synced per the mode before completing;
    /// otherwise they ride along with the next synced batch, if any).
    /// [`StoreError::WriterBusy`] when the queue is full.
    pub fn push(&self, ops: Vec<Op>, durable: bool) -> Result<Pushed, StoreError> {
        let (done, wait) = oneshot::channel();
        let job = WriteJob { ops, durable, done };
        self.producer.borrow_mut().push(job).map_err(|_| StoreError::WriterBusy)?;
        self.jobs_pushed.set(self.jobs_pushed.get() + 1);
        // SeqCst pairs with the writer's store of `parked` before its last
        // emptiness check: either it sees our job, or we see it parked.
        if self.parked.load(Ordering::SeqCst) {
            self.thread.unpark();
        }
        Ok(Pushed { job: self.jobs_pushed.get(), done: wait })
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // The consumer sees the producer abandoned and exits after draining.
        self.thread.unpark();
    }
}

/// Fills `jobs` from the ring, parking while it is empty; false once the
/// shard has dropped its end and nothing is left.
fn gather(
    consumer: &mut rtrb::Consumer<WriteJob>,
    jobs: &mut Vec<WriteJob>,
    parked: &AtomicBool,
) -> bool {
    loop {
        while jobs.len() < JOBS_PER_BATCH_MAX {
            match consumer.pop() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if !jobs.is_empty() {
            return true;
        }
        if consumer.is_abandoned() {
            return false;
        }
        parked.store(true, Ordering::SeqCst);
        if consumer.is_empty() {
            std::thread::park_timeout(Duration::from_millis(100));
        }
        parked.store(false, Ordering::SeqCst);
    }
}

fn run(
    store: Store,
    (shard, metrics): (usize, Metrics),
    durability: Durability,
    mut consumer: rtrb::Consumer<WriteJob>,
    (parked, progress): (Arc<AtomicBool>, Arc<Progress>),
) {
    let mut jobs_done: u64 = 0;
    let db = store.db().clone();
    let names = [accounts_family(shard), messages_family(shard), directory_family(shard)];
    let mut sync_options = WriteOptions::default();
    sync_options.set_sync(durability != Durability::None);
    let lazy_options = WriteOptions::default();
    let mut jobs: Vec<WriteJob> = Vec::with_capacity(JOBS_PER_BATCH_MAX);
    while gather(&mut consumer, &mut jobs, &parked) {
        let handles = names.each_ref().map(|name| db.cf_handle(name));
        let [Some(accounts_cf), Some(messages_cf), Some(directory_cf)] = handles else {
            progress.failed_batches.fetch_add(1, Ordering::Release);
            jobs_done += jobs.len() as u64;
            progress.done_through.store(jobs_done, Ordering::Release);
            for job in jobs.drain(..) {
                let _ = job.done.send(Err("column family missing".into()));
            }
            continue;
        };
        let family = |family: Family| match family {
            Family::Accounts => accounts_cf,
            Family::Messages => messages_cf,
            Family::Directory => directory_cf,
        };
        let groups: Vec<Vec<WriteJob>> = if durability == Durability::Sync {
            jobs.drain(..).map(|job| vec![job]).collect()
        } else {
            vec![std::mem::take(&mut jobs)]
        };
        for group in groups {
            let mut batch = WriteBatch::default();
            for job in &group {
                for op in &job.ops {
                    match op {
                        Op::Put { family: f, key, value } => batch.put_cf(family(*f), key, value),
                        Op::Delete { family: f, key } => batch.delete_cf(family(*f), key),
                    }
                }
            }
            let options =
                if group.iter().any(|job| job.durable) { &sync_options } else { &lazy_options };
            let write_started = std::time::Instant::now();
            let result = db.write_opt(batch, options).map_err(|error| error.to_string());
            let histograms = &metrics[shard].histograms;
            histograms.writer_write_seconds.record_us(write_started.elapsed().as_micros() as u64);
            histograms.writer_batch_jobs.record(group.len() as u64);
            if result.is_err() {
                progress.failed_batches.fetch_add(1, Ordering::Release);
            }
            jobs_done += group.len() as u64;
            progress.done_through.store(jobs_done, Ordering::Release);
            for job in group {
                let _ = job.done.send(result.clone());
            }
        }
    }
}
