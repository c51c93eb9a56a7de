//! The shards' end of the cluster thread: [`NatsHandle`] sends a request
//! on the thread's bounded channel and awaits its answer on a oneshot;
//! [`MapWatch`] shows the newest partition map.
//!
//! Both are runtime-agnostic: `tokio::sync`'s channels need no tokio
//! runtime on the waiting side (they wake a plain `Waker`), so a monoio
//! shard awaits them like any future. The request channel is tokio's
//! bounded `mpsc` rather than a ring per shard because a request is rare
//! (membership, the map, a call to another node) and the bound must hold
//! over every clone of the handle; `try_send` keeps it from ever waiting.
//!
//! Invariants: a request is refused with [`NatsError::Busy`] when
//! [`REQUEST_SLOTS`] are queued, never waits for room; its arguments are
//! checked here, before they cross threads; a [`MapWatch`] never shows an
//! older revision after a newer one.

use super::error::NatsError;
use super::log::LogState;
use super::record::NodeRecord;
use super::serve::{CallIntake, INTAKE_SLOTS_MAX};
use super::{MapVersion, REQUEST_BYTES_MAX, REQUEST_SLOTS};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Where the thread sends one answer.
pub(super) type Answer<T> = oneshot::Sender<Result<T, NatsError>>;

/// The longest request subject, bytes.
pub const SUBJECT_BYTES_MAX: usize = 256;

/// One request to the cluster thread, with where to answer it.
pub(super) enum Request {
    /// Store this node's record now and heartbeat it from then on.
    Register { record: NodeRecord, answer: Answer<()> },
    /// List the live nodes.
    Nodes { answer: Answer<Vec<NodeRecord>> },
    /// Read the map.
    ReadMap { answer: Answer<Option<MapVersion>> },
    /// Store the first map.
    CreateMap { bytes: Bytes, answer: Answer<u64> },
    /// Compare-and-swap the map.
    SwapMap { bytes: Bytes, expected_revision: u64, answer: Answer<u64> },
    /// A NATS request/reply: ask whoever serves the subject.
    Ask { subject: String, payload: Bytes, timeout: Option<Duration>, answer: Answer<Bytes> },
    /// Serve the requests sent to a subject, at most `slots` waiting, each
    /// answered within `timeout` (the request timeout when `None`).
    Serve { subject: String, slots: usize, timeout: Option<Duration>, answer: Answer<CallIntake> },
    /// A partition log or snapshot request (replicated durability).
    Partition(PartitionRequest),
}

/// The requests of replicated durability, on one partition's log or snapshot.
pub(super) enum PartitionRequest {
    /// Open (or create with `replicas`) a partition's log.
    LogEnsure { partition: u32, replicas: usize, answer: Answer<LogState> },
    /// Where a partition's log stands.
    LogState { partition: u32, answer: Answer<LogState> },
    /// Append to a partition's log if it is at `expected_last_seq`.
    LogAppend { partition: u32, expected_last_seq: u64, payload: Bytes, answer: Answer<u64> },
    /// Read a partition's log from `.0` through `.1`.
    LogRead { partition: u32, range: (u64, u64), answer: Answer<Vec<(u64, Bytes)>> },
    /// Purge a partition's log below a sequence.
    LogPurge { partition: u32, keep_from_seq: u64, answer: Answer<u64> },
    /// Store a partition's snapshot.
    SnapshotPut { partition: u32, replicas: usize, bytes: Bytes, answer: Answer<()> },
    /// Read a partition's snapshot.
    SnapshotGet { partition: u32, replicas: usize, answer: Answer<Option<Bytes>> },
}

/// An answer still on its way, for a thread that blocks for it (a
/// store writer thread): several can be sent before any is awaited.
pub struct Pending<T>(oneshot::Receiver<Result<T, NatsError>>);

impl<T> Pending<T> {
    /// Blocks the calling thread (never a runtime's) until the answer.
    pub fn wait(self) -> Result<T, NatsError> {
        self.0.blocking_recv().map_err(|_| NatsError::Stopped)?
    }
}

/// A shard's way to the cluster thread. Cheap to clone; the thread ends
/// once every clone is dropped.
#[derive(Clone)]
pub struct NatsHandle {
    /// The thread's request channel ([`REQUEST_SLOTS`] over all clones).
    requests: mpsc::Sender<Request>,
    /// The newest map, kept by the thread's watch on the map key.
    map: watch::Receiver<Option<MapVersion>>,
    /// This node's id (the key its heartbeats write).
    node_id: Arc<str>,
}

impl NatsHandle {
    /// A handle over the thread's channels.
    pub(super) fn new(
        requests: mpsc::Sender<Request>,
        map: watch::Receiver<Option<MapVersion>>,
        node_id: &str,
    ) -> Self {
        assert_eq!(requests.max_capacity(), REQUEST_SLOTS);
        Self { requests, map, node_id: node_id.into() }
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Registers this node with its addresses (`host:port`) and keeps its
    /// key alive with a heartbeat until the thread ends; registering again
    /// replaces the addresses.
    pub async fn register_node(
        &self,
        client_addr: &str,
        internal_addr: &str,
    ) -> Result<(), NatsError> {
        let record = NodeRecord::new(&self.node_id, client_addr, internal_addr)
            .map_err(NatsError::InvalidArgument)?;
        self.call(|answer| Request::Register { record, answer }).await
    }

    /// The live nodes (those whose key has not expired), sorted by id.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>, NatsError> {
        self.call(|answer| Request::Nodes { answer }).await
    }

    /// The map and its revision, read from the bucket (`None`: no map yet).
    pub async fn read_map(&self) -> Result<Option<MapVersion>, NatsError> {
        self.call(|answer| Request::ReadMap { answer }).await
    }

    /// Stores the cluster's first map, only if there is none; its revision,
    /// or [`NatsError::MapExists`].
    pub async fn create_map(&self, bytes: Bytes) -> Result<u64, NatsError> {
        self.call(|answer| Request::CreateMap { bytes, answer }).await
    }

    /// Replaces the map if it is still at `expected_revision`; the new
    /// revision, or [`NatsError::Conflict`].
    pub async fn swap_map(&self, bytes: Bytes, expected_revision: u64) -> Result<u64, NatsError> {
        self.call(|answer| Request::SwapMap { bytes, expected_revision, answer }).await
    }

    /// Sends `payload` to whoever serves `subject` and returns the reply.
    pub async fn request(&self, subject: &str, payload: Bytes) -> Result<Bytes, NatsError> {
        self.request_within(subject, payload, None).await
    }

    /// [`Self::request`], waiting `timeout` for the reply (the request
    /// timeout when `None`): for the steps of a partition move.
    pub async fn request_within(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Option<Duration>,
    ) -> Result<Bytes, NatsError> {
        check_subject(subject)?;
        if payload.len() > REQUEST_BYTES_MAX {
            let reason =
                format!("a request of {} bytes is over {REQUEST_BYTES_MAX}", payload.len());
            return Err(NatsError::InvalidArgument(reason));
        }
        let subject = subject.to_string();
        self.call(|answer| Request::Ask { subject, payload, timeout, answer }).await
    }

    /// A watch on the map, starting at the newest version the thread has.
    pub fn watch_map(&self) -> MapWatch {
        MapWatch { map: self.map.clone() }
    }

    /// Queues one request and awaits its answer.
    /// Serves the requests other nodes send to `subject`: they wait in a
    /// [`CallIntake`] of `slots` (1 to [`INTAKE_SLOTS_MAX`]); one arriving
    /// when all are taken is answered "busy" (an empty payload) at once.
    pub async fn serve(&self, subject: &str, slots: usize) -> Result<CallIntake, NatsError> {
        self.serve_within(subject, slots, None).await
    }

    /// [`Self::serve`], answering each request within `timeout` (the
    /// request timeout when `None`): a node's admin subject, whose moves
    /// take longer than a call.
    pub async fn serve_within(
        &self,
        subject: &str,
        slots: usize,
        timeout: Option<Duration>,
    ) -> Result<CallIntake, NatsError> {
        check_subject(subject)?;
        if !(1..=INTAKE_SLOTS_MAX).contains(&slots) {
            let reason = format!("intake slots must be 1 to {INTAKE_SLOTS_MAX}");
            return Err(NatsError::InvalidArgument(reason));
        }
        let subject = subject.to_string();
        self.call(|answer| Request::Serve { subject, slots, timeout, answer }).await
    }

    /// Opens partition `partition`'s log, creating it with `replicas`
    /// when missing; where it stands.
    pub async fn log_ensure(&self, partition: u32, replicas: usize) -> Result<LogState, NatsError> {
        self.call(|answer| {
            Request::Partition(PartitionRequest::LogEnsure { partition, replicas, answer })
        })
        .await
    }

    /// Where partition `partition`'s log stands.
    pub async fn log_state(&self, partition: u32) -> Result<LogState, NatsError> {
        self.call(|answer| Request::Partition(PartitionRequest::LogState { partition, answer }))
            .await
    }

    /// Appends `payload` to partition `partition`'s log if it is at
    /// `expected_last_seq`; the new sequence.
    pub async fn log_append(
        &self,
        partition: u32,
        expected_last_seq: u64,
        payload: Bytes,
    ) -> Result<u64, NatsError> {
        self.start_log_append(partition, expected_last_seq, payload)?
            .0
            .await
            .map_err(|_| NatsError::Stopped)?
    }

    /// [`Self::log_append`] for a thread that blocks: sent now, awaited
    /// with [`Pending::wait`].
    pub fn start_log_append(
        &self,
        partition: u32,
        expected_last_seq: u64,
        payload: Bytes,
    ) -> Result<Pending<u64>, NatsError> {
        if payload.len() > REQUEST_BYTES_MAX {
            let reason =
                format!("a log entry of {} bytes is over {REQUEST_BYTES_MAX}", payload.len());
            return Err(NatsError::InvalidArgument(reason));
        }
        self.send(|answer| {
            Request::Partition(PartitionRequest::LogAppend {
                partition,
                expected_last_seq,
                payload,
                answer,
            })
        })
    }

    /// Partition `partition`'s log entries from `.0` through `.1` (a
    /// bounded share of them: read on after the last one returned).
    pub async fn log_read(
        &self,
        partition: u32,
        range: (u64, u64),
    ) -> Result<Vec<(u64, Bytes)>, NatsError> {
        self.call(|answer| {
            Request::Partition(PartitionRequest::LogRead { partition, range, answer })
        })
        .await
    }

    /// Purges partition `partition`'s log below `keep_from_seq`; how many
    /// entries went.
    pub async fn log_purge(&self, partition: u32, keep_from_seq: u64) -> Result<u64, NatsError> {
        self.call(|answer| {
            Request::Partition(PartitionRequest::LogPurge { partition, keep_from_seq, answer })
        })
        .await
    }

    /// Stores `bytes` as partition `partition`'s snapshot (the bucket made
    /// with `replicas` when missing).
    pub async fn snapshot_put(
        &self,
        partition: u32,
        replicas: usize,
        bytes: Bytes,
    ) -> Result<(), NatsError> {
        self.call(|answer| {
            Request::Partition(PartitionRequest::SnapshotPut { partition, replicas, bytes, answer })
        })
        .await
    }

    /// Partition `partition`'s snapshot, if any.
    pub async fn snapshot_get(
        &self,
        partition: u32,
        replicas: usize,
    ) -> Result<Option<Bytes>, NatsError> {
        self.call(|answer| {
            Request::Partition(PartitionRequest::SnapshotGet { partition, replicas, answer })
        })
        .await
    }

    fn send<T>(&self, request: impl FnOnce(Answer<T>) -> Request) -> Result<Pending<T>, NatsError> {
        let (answer, answered) = oneshot::channel();
        self.requests.try_send(request(answer)).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => NatsError::Busy,
            mpsc::error::TrySendError::Closed(_) => NatsError::Stopped,
        })?;
        Ok(Pending(answered))
    }

    async fn call<T>(&self, request: impl FnOnce(Answer<T>) -> Request) -> Result<T, NatsError> {
        self.send(request)?.0.await.map_err(|_| NatsError::Stopped)?
    }
}

/// The newest partition map the cluster thread has seen (latest-wins: a
/// slow reader skips versions, never falls behind).
#[derive(Clone)]
pub struct MapWatch {
    map: watch::Receiver<Option<MapVersion>>,
}

impl MapWatch {
    /// The newest map, if any (marks it seen).
    pub fn current(&mut self) -> Option<MapVersion> {
        self.map.borrow_and_update().clone()
    }

    /// Whether a newer map arrived since [`Self::current`] or
    /// [`Self::changed`] last returned (false once the thread has ended).
    pub fn has_changed(&self) -> bool {
        self.map.has_changed().unwrap_or(false)
    }

    /// Waits for a map newer than the last one returned.
    pub async fn changed(&mut self) -> Result<MapVersion, NatsError> {
        loop {
            self.map.changed().await.map_err(|_| NatsError::Stopped)?;
            if let Some(version) = self.map.borrow_and_update().clone() {
                return Ok(version);
            }
        }
    }
}

/// A subject NATS can carry: 1 to [`SUBJECT_BYTES_MAX`] printable ASCII
/// bytes, no spaces, no empty tokens, no wildcards.
fn check_subject(subject: &str) -> Result<(), NatsError> {
    let printable = subject.bytes().all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>');
    let tokens_ok = subject.split('.').all(|token| !token.is_empty());
    if subject.is_empty() || subject.len() > SUBJECT_BYTES_MAX || !printable || !tokens_ok {
        return Err(NatsError::InvalidArgument(format!("bad subject {subject:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_checked_before_they_cross_threads() {
        assert!(check_subject("switchboard.prod.node-1.call").is_ok());
        for bad in ["", "a..b", ".a", "a.", "a b", "a.*", "a.>", &"a".repeat(SUBJECT_BYTES_MAX + 1)]
        {
            assert!(check_subject(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_full_channel_is_busy_and_a_closed_one_stopped() {
        let (requests, receiver) = mpsc::channel(REQUEST_SLOTS);
        let (_map, map_receiver) = watch::channel(None);
        let handle = NatsHandle::new(requests, map_receiver, "n1");
        for _ in 0..REQUEST_SLOTS {
            let (answer, _) = oneshot::channel();
            handle.requests.try_send(Request::Nodes { answer }).unwrap();
        }
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(runtime.block_on(handle.nodes()), Err(NatsError::Busy));
        drop(receiver);
        assert_eq!(runtime.block_on(handle.read_map()), Err(NatsError::Stopped));
    }
}
