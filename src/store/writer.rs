//! The per-shard writer thread: applies sealed batches off the event loop.
//!
//! RocksDB calls block, and a WAL sync takes a millisecond or more, so a shard
//! never writes itself. It stages writes in its open batch
//! ([`crate::store::batch`]) and, whenever the writer is free, hands the
//! whole batch over as one [`BatchJob`] on a bounded SPSC ring (one
//! cross-thread wake) and awaits one completion (one wake back). The writer
//! applies the batch as one RocksDB write and, per [`Durability`], syncs the
//! WAL once for all of it (`group`), once per stage (`sync`: each stage is
//! its own synced write, in order), or not at all (`none`).
//!
//! Invariants: a batch's completion is sent only after it is written (and
//! synced, unless `none`, or unless no stage asked for durability); batches
//! are applied in the order they were sent; the ring holds at most
//! [`BATCHES_QUEUED_MAX`] batches, and a full ring is reported, never
//! dropped.

use crate::config::Durability;
use crate::metrics::Metrics;
use crate::store::replica::{Replicate, Replicated};
use crate::store::{
    accounts_family, directory_family, log_family, messages_family, Store, StoreError,
};
use futures_channel::oneshot;
use rocksdb::{WriteBatch, WriteOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use crate::store::ops::{Family, Op};

/// Batches on the ring at once: the shard sends the next only after the
/// last completed, so one slot is used and the second is headroom.
pub const BATCHES_QUEUED_MAX: usize = 2;

/// One batch for the writer thread.
pub struct BatchJob {
    /// Ops in order.
    pub ops: Vec<Op>,
    /// Exclusive ends of each stage's ops (`sync` writes each on its own).
    pub stage_ends: Vec<usize>,
    /// Sync per the mode (false when no stage asked for durability, such
    /// as a batch of acknowledged deletes only).
    pub durable: bool,
    /// Told the outcome once the batch is written.
    pub done: oneshot::Sender<Result<(), String>>,
}

/// The shard's end of its writer thread.
pub struct WriterThread {
    producer: rtrb::Producer<BatchJob>,
    thread: std::thread::Thread,
    /// True while the writer thread is (about to be) parked: only then does
    /// the shard pay for an unpark.
    parked: Arc<AtomicBool>,
}

impl WriterThread {
    /// Starts shard `shard`'s writer thread. Its batch sizes and write
    /// times go to `metrics[shard]`.
    pub fn spawn(
        store: Store,
        shard: usize,
        durability: Durability,
        metrics: Metrics,
    ) -> std::io::Result<Self> {
        Self::spawn_replicated(store, shard, durability, metrics, None)
    }

    /// [`Self::spawn`]; with `replica` (replicated durability), each batch
    /// goes to the partition logs first and only what they took is applied.
    pub fn spawn_replicated(
        store: Store,
        shard: usize,
        durability: Durability,
        metrics: Metrics,
        replica: Option<Box<dyn Replicate>>,
    ) -> std::io::Result<Self> {
        let (producer, consumer) = rtrb::RingBuffer::new(BATCHES_QUEUED_MAX);
        let parked = Arc::new(AtomicBool::new(false));
        let writer_parked = parked.clone();
        let handle =
            std::thread::Builder::new().name(format!("writer-{shard}")).spawn(move || {
                let target = Target { store, shard, metrics, durability, replica };
                run(target, consumer, writer_parked)
            })?;
        Ok(Self { producer, thread: handle.thread().clone(), parked })
    }

    /// Queues `job`; [`StoreError::WriterBusy`] when the ring is full.
    pub fn send(&mut self, job: BatchJob) -> Result<(), StoreError> {
        self.producer.push(job).map_err(|_| StoreError::WriterBusy)?;
        // SeqCst pairs with the writer's store of `parked` before its last
        // emptiness check: either it sees our job, or we see it parked.
        if self.parked.load(Ordering::SeqCst) {
            self.thread.unpark();
        }
        Ok(())
    }
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        // The consumer sees the producer abandoned and exits after draining.
        self.thread.unpark();
    }
}

/// The next job, parking while there is none; `None` once the shard has
/// dropped its end and nothing is left.
fn next_job(consumer: &mut rtrb::Consumer<BatchJob>, parked: &AtomicBool) -> Option<BatchJob> {
    loop {
        if let Ok(job) = consumer.pop() {
            return Some(job);
        }
        if consumer.is_abandoned() {
            return None;
        }
        parked.store(true, Ordering::SeqCst);
        if consumer.is_empty() {
            std::thread::park_timeout(Duration::from_millis(100));
        }
        parked.store(false, Ordering::SeqCst);
    }
}

/// Where the writer thread writes, and how.
struct Target {
    store: Store,
    shard: usize,
    metrics: Metrics,
    durability: Durability,
    replica: Option<Box<dyn Replicate>>,
}

fn run(mut target: Target, mut consumer: rtrb::Consumer<BatchJob>, parked: Arc<AtomicBool>) {
    let (shard, durability) = (target.shard, target.durability);
    let db = target.store.db().clone();
    let names = [
        accounts_family(shard),
        messages_family(shard),
        directory_family(shard),
        log_family(shard),
    ];
    // Replicated: the partition logs hold the acknowledged writes; the
    // local copy is caught up from them after a crash, so it is not synced.
    let synced = !matches!(durability, Durability::None | Durability::Replicated);
    let mut sync_options = WriteOptions::default();
    sync_options.set_sync(synced);
    let lazy_options = WriteOptions::default();
    while let Some(mut job) = next_job(&mut consumer, &parked) {
        let handles = names.each_ref().map(|name| db.cf_handle(name));
        let [Some(accounts_cf), Some(messages_cf), Some(directory_cf), Some(log_cf)] = handles
        else {
            let _ = job.done.send(Err("column family missing".into()));
            continue;
        };
        let family = |family: Family| match family {
            Family::Accounts => accounts_cf,
            Family::Messages => messages_cf,
            Family::Directory => directory_cf,
            Family::Log => log_cf,
        };
        let write_started = std::time::Instant::now();
        let stage_count = job.stage_ends.len();
        let mut replicated = Ok(());
        if let Some(replica) = target.replica.as_mut() {
            let Replicated { apply, result } =
                replica.replicate(std::mem::take(&mut job.ops), &job.stage_ends);
            job.ops = apply;
            job.stage_ends = vec![job.ops.len()];
            replicated = result;
        }
        let options = if job.durable { &sync_options } else { &lazy_options };
        // `sync` makes each stage durable on its own; the others write all at once.
        let whole = [job.ops.len()];
        let ends: &[usize] =
            if durability == Durability::Sync && job.durable { &job.stage_ends } else { &whole };
        let result = write_stages(&db, &job.ops, ends, options, family);
        if let (Err(_), Some(replica)) = (&result, target.replica.as_mut()) {
            replica.not_applied(&job.ops);
        }
        let histograms = &target.metrics[shard].histograms;
        histograms.writer_write_seconds.record_us(write_started.elapsed().as_micros() as u64);
        histograms.writer_batch_jobs.record(stage_count as u64);
        let _ = job.done.send(replicated.and(result));
    }
}

/// Writes `ops` as one RocksDB write per stage (ends at `ends`), in order,
/// stopping at the first failure.
fn write_stages<'a>(
    db: &rocksdb::DB,
    ops: &[Op],
    ends: &[usize],
    options: &WriteOptions,
    family: impl Fn(Family) -> &'a rocksdb::ColumnFamily,
) -> Result<(), String> {
    let mut start = 0;
    for &end in ends {
        let mut batch = WriteBatch::default();
        for op in &ops[start..end] {
            match op {
                Op::Put { family: f, key, value } => batch.put_cf(family(*f), key, value),
                Op::Delete { family: f, key } => batch.delete_cf(family(*f), key),
            }
        }
        start = end;
        db.write_opt(batch, options).map_err(|error| error.to_string())?;
    }
    Ok(())
}
