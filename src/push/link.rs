//! A shard's end of the push worker.
//!
//! Jobs queued during a loop turn are held in a small batch and moved onto
//! the shard's SPSC ring in one go at the end of the turn ([`PushLink::flush`]),
//! with one wake of the worker for the whole batch. Dead tokens come back on
//! a second ring the shard drains on its timer tick.
//!
//! Invariants: the batch never outgrows the ring (a job that cannot fit is
//! dropped and counted); nothing here blocks or allocates per job beyond
//! the job itself.

use crate::accounts::AuthedDevice;
use crate::config::PushConfig;
use crate::metrics::ShardMetrics;
use crate::push::challenge::Challenges;
use crate::push::schedule::PushSchedule;
use crate::push::verification::VerificationSessions;
use crate::push::{DeadToken, PushJob};
use std::cell::RefCell;
use std::sync::Arc;
use tokio::sync::Notify;

/// Most live push challenges one shard holds per kind.
const CHALLENGES_PER_SHARD_MAX: usize = 100_000;

/// A shard's push state: its schedule and its end of the worker's rings.
pub struct ShardPush {
    /// When each device is due a push.
    pub schedule: RefCell<PushSchedule>,
    /// The rings to and from the push worker.
    pub link: PushLink,
    /// Live rate-limit challenges, per device.
    pub rate_limit_challenges: RefCell<Challenges<AuthedDevice>>,
    /// Verification sessions whose id this shard owns.
    pub verification_sessions: RefCell<VerificationSessions>,
}

impl ShardPush {
    /// Push state over `link` with `config`'s intervals.
    pub fn new(config: &PushConfig, link: PushLink) -> Self {
        Self {
            schedule: RefCell::new(PushSchedule::new(config)),
            link,
            rate_limit_challenges: RefCell::new(Challenges::new(
                config.challenge_ttl_ms,
                CHALLENGES_PER_SHARD_MAX,
            )),
            verification_sessions: RefCell::new(VerificationSessions::new(
                config.verification_session_ttl_ms,
                config.challenge_ttl_ms,
                CHALLENGES_PER_SHARD_MAX,
            )),
        }
    }
}

/// The shard's side of the push rings.
pub struct PushLink {
    jobs: RefCell<rtrb::Producer<PushJob>>,
    batch: RefCell<Vec<PushJob>>,
    dead_tokens: RefCell<rtrb::Consumer<DeadToken>>,
    wake: Arc<Notify>,
}

/// The worker's side of one shard's rings.
pub struct WorkerLink {
    /// Jobs from the shard.
    pub jobs: rtrb::Consumer<PushJob>,
    /// Dead tokens to the shard.
    pub dead_tokens: rtrb::Producer<DeadToken>,
}

/// Rings for `shard_count` shards with `slots` each, and the worker's wake.
pub fn rings(shard_count: usize, slots: usize) -> (Vec<PushLink>, Vec<WorkerLink>, Arc<Notify>) {
    let wake = Arc::new(Notify::new());
    let mut shards = Vec::with_capacity(shard_count);
    let mut workers = Vec::with_capacity(shard_count);
    for _ in 0..shard_count {
        let (job_producer, job_consumer) = rtrb::RingBuffer::new(slots);
        let (dead_producer, dead_consumer) = rtrb::RingBuffer::new(slots);
        shards.push(PushLink {
            jobs: RefCell::new(job_producer),
            batch: RefCell::new(Vec::new()),
            dead_tokens: RefCell::new(dead_consumer),
            wake: wake.clone(),
        });
        workers.push(WorkerLink { jobs: job_consumer, dead_tokens: dead_producer });
    }
    (shards, workers, wake)
}

impl PushLink {
    /// Queues `job` for the end of this loop turn.
    pub fn queue(&self, job: PushJob) {
        self.batch.borrow_mut().push(job);
    }

    /// Moves the turn's jobs onto the ring and wakes the worker once; jobs
    /// that do not fit are dropped and counted.
    pub fn flush(&self, stats: &ShardMetrics) {
        let mut batch = self.batch.borrow_mut();
        if batch.is_empty() {
            return;
        }
        let mut jobs = self.jobs.borrow_mut();
        for job in batch.drain(..) {
            if jobs.push(job).is_err() {
                ShardMetrics::inc(&stats.push_dropped_total);
            } else {
                // The worker takes it off again once the push is settled.
                ShardMetrics::inc(&stats.push_queue_len);
            }
        }
        self.wake.notify_one();
    }

    /// Dead tokens reported since the last call.
    pub fn take_dead_tokens(&self) -> Vec<DeadToken> {
        let mut dead_tokens = self.dead_tokens.borrow_mut();
        std::iter::from_fn(|| dead_tokens.pop().ok()).collect()
    }
}
