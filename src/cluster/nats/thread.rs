//! The cluster thread: a current-thread tokio runtime owning the node's
//! NATS connection. It answers the shards' requests (each on its own task,
//! at most [`INFLIGHT_MAX`] at once), rewrites the node's membership key
//! every heartbeat interval once the node has registered, and follows the
//! map key into the [`MapWatch`](super::handle::MapWatch) channel.
//!
//! Invariants: [`spawn`] returns only once the connection is up and both
//! buckets exist (or with the reason they could not be made before the
//! startup timeout), and the map channel then already holds the map read
//! at start; a failed heartbeat is logged and the next one tried (the key
//! expires only if heartbeats fail for a whole TTL); the map watch is made
//! again after any error, and publishes only revisions newer than the one
//! it holds. The thread ends when every handle is dropped, dropping the
//! connection, its heartbeats and its watch with it.

use super::buckets::{self, Buckets};
use super::error::{self, NatsError};
use super::handle::{NatsHandle, PartitionRequest, Request};
use super::options::NatsOptions;
use super::record::NodeRecord;
use super::{log, snapshots};
use super::{MapVersion, INFLIGHT_MAX, MAP_KEY, REQUEST_SLOTS};
use async_nats::{Client, ConnectOptions};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};

/// The pause before connecting again, or making the map watch again.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// What every request task shares.
struct Shared {
    client: Client,
    /// JetStream, for the partition logs.
    jetstream: async_nats::jetstream::Context,
    /// The cluster's name (in the logs' stream names).
    cluster: String,
    buckets: Buckets,
    /// The record the heartbeat rewrites (`None` until the node registers).
    registration: watch::Sender<Option<NodeRecord>>,
    /// How long a served request waits for its answer.
    request_timeout: Duration,
}

/// Starts the cluster thread for `options`: connects, makes the buckets,
/// reads the map, and returns the shards' handle and the thread.
pub fn spawn(options: NatsOptions) -> Result<(NatsHandle, std::thread::JoinHandle<()>), NatsError> {
    options.validate()?;
    let (requests, intake) = mpsc::channel(REQUEST_SLOTS);
    let (map_sender, map) = watch::channel(None);
    let (started_sender, started) = std::sync::mpsc::sync_channel(1);
    let node_id = options.node_id.clone();
    let thread = std::thread::Builder::new().name("cluster".into()).spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        let runtime = runtime.expect("a current-thread runtime builds");
        runtime.block_on(async move {
            let deadline = Instant::now() + Duration::from_millis(options.startup_timeout_ms);
            let shared = match start(&options, deadline, &map_sender).await {
                Ok(shared) => Arc::new(shared),
                Err(error) => return drop(started_sender.send(Err(error))),
            };
            tokio::spawn(watch_map(shared.buckets.map.clone(), map_sender));
            tokio::spawn(heartbeat(shared.clone(), options.heartbeat_interval_ms));
            let _ = started_sender.send(Ok(()));
            serve(shared, intake).await;
        });
    });
    let thread = thread.map_err(|e| NatsError::Unavailable(format!("no cluster thread: {e}")))?;
    match started.recv() {
        Ok(Ok(())) => Ok((NatsHandle::new(requests, map, &node_id), thread)),
        Ok(Err(error)) => {
            let _ = thread.join();
            Err(error)
        }
        // The thread panicked before it reported.
        Err(_) => Err(NatsError::Stopped),
    }
}

/// Connects, makes the buckets and publishes the map as it is now.
async fn start(
    options: &NatsOptions,
    deadline: Instant,
    map: &watch::Sender<Option<MapVersion>>,
) -> Result<Shared, NatsError> {
    let client = connect(options, deadline).await?;
    let jetstream = async_nats::jetstream::ContextBuilder::new()
        .timeout(options.request_timeout())
        .ack_timeout(options.request_timeout())
        .build(client.clone());
    let buckets = buckets::open(&jetstream, options, deadline).await?;
    let current = read_map_until(&buckets, deadline).await?;
    map.send_replace(current);
    let (registration, _) = watch::channel(None);
    let request_timeout = options.request_timeout();
    let cluster = options.cluster.clone();
    Ok(Shared { client, jetstream, cluster, buckets, registration, request_timeout })
}

/// The map as it is now, trying again until `deadline` while the error is
/// transient (a bucket's stream just made or opened may not have elected
/// its leader yet: "no responders", seen under load in the tests).
async fn read_map_until(
    buckets: &buckets::Buckets,
    deadline: Instant,
) -> Result<Option<MapVersion>, NatsError> {
    loop {
        match buckets.read_map().await {
            Err(error) if error.is_transient() && Instant::now() + RETRY_PAUSE < deadline => {
                tracing::debug!(%error, "the map bucket is not ready yet");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            read => return read,
        }
    }
}

/// Connects to any of the servers, trying again until `deadline`.
async fn connect(options: &NatsOptions, deadline: Instant) -> Result<Client, NatsError> {
    loop {
        let connect = ConnectOptions::new()
            .name(format!("switchboard-{}", options.node_id))
            .connection_timeout(options.request_timeout())
            .request_timeout(Some(options.request_timeout()))
            .ping_interval(options.ping_interval())
            .event_callback(|event| async move {
                tracing::info!(%event, "NATS connection");
            });
        let reason = match connect.connect(options.urls.as_slice()).await {
            Ok(client) => return Ok(client),
            Err(e) => error::chain(&e),
        };
        if Instant::now() + RETRY_PAUSE >= deadline {
            return Err(NatsError::Connect { urls: options.urls.join(","), reason });
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Answers requests until every handle is gone.
async fn serve(shared: Arc<Shared>, mut intake: mpsc::Receiver<Request>) {
    let permits = Arc::new(Semaphore::new(INFLIGHT_MAX));
    while let Some(request) = intake.recv().await {
        let permit = permits.clone().acquire_owned().await.expect("never closed");
        let shared = shared.clone();
        tokio::spawn(async move {
            answer(&shared, request).await;
            drop(permit);
        });
    }
}

/// Runs one request and sends its answer (a caller that stopped waiting
/// is no error).
async fn answer(shared: &Shared, request: Request) {
    let buckets = &shared.buckets;
    match request {
        Request::Register { record, answer } => {
            let stored = buckets.put_node(&record).await.map(drop);
            if stored.is_ok() {
                shared.registration.send_replace(Some(record));
            }
            let _ = answer.send(stored);
        }
        Request::Nodes { answer } => drop(answer.send(buckets.nodes().await)),
        Request::ReadMap { answer } => drop(answer.send(buckets.read_map().await)),
        Request::CreateMap { bytes, answer } => drop(answer.send(buckets.create_map(bytes).await)),
        Request::SwapMap { bytes, expected_revision, answer } => {
            drop(answer.send(buckets.swap_map(bytes, expected_revision).await))
        }
        Request::Ask { subject, payload, timeout, answer } => {
            // `Request::timeout(None)` would mean "never time out": only an
            // explicit timeout overrides the client's request timeout.
            let asked = async_nats::Request::new().payload(payload);
            let asked = match timeout {
                Some(timeout) => asked.timeout(Some(timeout)),
                None => asked,
            };
            let reply = shared.client.send_request(subject.clone(), asked).await;
            let reply = reply.map(|message| message.payload);
            drop(answer.send(reply.map_err(|e| error::from_request(&subject, e))));
        }
        Request::Serve { subject, slots, timeout, answer } => {
            let timeout = timeout.unwrap_or(shared.request_timeout);
            let intake = super::serve::subscribe(&shared.client, subject, slots, timeout).await;
            drop(answer.send(intake));
        }
        Request::Partition(request) => answer_partition(shared, request).await,
    }
}

/// Runs one partition log or snapshot request (see [`super::log`] and
/// [`super::snapshots`]).
async fn answer_partition(shared: &Shared, request: PartitionRequest) {
    let (js, cluster) = (&shared.jetstream, shared.cluster.as_str());
    match request {
        PartitionRequest::LogEnsure { partition, replicas, answer } => {
            drop(answer.send(log::ensure(js, cluster, partition, replicas).await))
        }
        PartitionRequest::LogState { partition, answer } => {
            drop(answer.send(log::state(js, cluster, partition).await))
        }
        PartitionRequest::LogAppend { partition, expected_last_seq, payload, answer } => {
            let appended = log::append(js, cluster, partition, expected_last_seq, payload).await;
            drop(answer.send(appended))
        }
        PartitionRequest::LogRead { partition, range, answer } => {
            let timeout = shared.request_timeout;
            drop(answer.send(log::read(js, cluster, partition, range, timeout).await))
        }
        PartitionRequest::LogPurge { partition, keep_from_seq, answer } => {
            drop(answer.send(log::purge(js, cluster, partition, keep_from_seq).await))
        }
        PartitionRequest::SnapshotPut { partition, replicas, bytes, answer } => {
            let put = snapshots::put(js, cluster, (partition, replicas), bytes).await;
            drop(answer.send(put))
        }
        PartitionRequest::SnapshotGet { partition, replicas, answer } => {
            drop(answer.send(snapshots::get(js, cluster, (partition, replicas)).await))
        }
    }
}

/// Rewrites the registered record every interval.
async fn heartbeat(shared: Arc<Shared>, interval_ms: u64) {
    let mut ticks = tokio::time::interval(Duration::from_millis(interval_ms));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let record = shared.registration.borrow().clone();
        let Some(record) = record else { continue };
        if let Err(error) = shared.buckets.put_node(&record).await {
            tracing::warn!(%error, node = record.id, "heartbeat not stored");
        }
    }
}

/// Follows the map key, publishing each newer version, until the thread
/// ends; a broken watch is made again (it starts with the newest value,
/// so nothing is missed that matters: the map is latest-wins).
async fn watch_map(
    map: async_nats::jetstream::kv::Store,
    sender: watch::Sender<Option<MapVersion>>,
) {
    loop {
        match map.watch_with_history(MAP_KEY).await {
            Ok(mut entries) => loop {
                match entries.next().await {
                    Some(Ok(entry)) => publish(&sender, entry),
                    Some(Err(error)) => {
                        tracing::warn!(%error, "map watch broken; watching again");
                        break;
                    }
                    None => break,
                }
            },
            Err(error) => tracing::warn!(%error, "cannot watch the map; trying again"),
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Publishes `entry` if it is a map newer than the one held.
fn publish(sender: &watch::Sender<Option<MapVersion>>, entry: async_nats::jetstream::kv::Entry) {
    let Some(version) = buckets::map_version(entry) else { return };
    sender.send_if_modified(|held| {
        let newer = held.as_ref().is_none_or(|held| version.revision > held.revision);
        if newer {
            *held = Some(version);
        }
        newer
    });
}
