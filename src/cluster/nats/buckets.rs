//! The two JetStream KV buckets of a cluster and every operation on them
//! (runs on the cluster thread only).
//!
//! [`open`] makes each bucket if it is missing, or opens it as it is: the
//! first node to start creates it with its replicas, later nodes use it
//! (a node configured with another TTL is warned about, not refused: the
//! bucket's own `max_age` is what decides liveness). Making a bucket is
//! retried until the startup deadline while JetStream is still electing
//! its leaders, and refused at once when retrying cannot help (more
//! replicas than servers).
//!
//! Invariants: the map key changes only through KV `create` (when absent)
//! and `update` (compare-and-swap on the revision); each bucket is bounded
//! by its value size times its history times its keys (one map key; one key
//! per node, each expiring one TTL after its last heartbeat).
//!
//! Reads use JetStream's direct get, which any replica may answer: a read
//! can trail a swap made an instant earlier elsewhere. That is safe because
//! the swap, not the read, decides: a swap on a stale revision fails with
//! [`NatsError::Conflict`].

use super::error::{self, NatsError};
use super::options::NatsOptions;
use super::record::NodeRecord;
use super::{MapVersion, MAP_BYTES_MAX, MAP_HISTORY, MAP_KEY, NODES_MAX};
use async_nats::jetstream::kv::{self, Operation, Store};
use async_nats::jetstream::Context;
use bytes::Bytes;
use futures_util::StreamExt;
use std::time::{Duration, Instant};

/// The largest node record, bytes (a record is three bounded strings).
const NODE_RECORD_BYTES_MAX: i32 = 1024;

/// The pause between attempts to make a bucket while JetStream starts.
const ENSURE_RETRY_PAUSE: Duration = Duration::from_millis(250);

/// The cluster's two buckets.
#[derive(Clone)]
pub struct Buckets {
    /// `switchboard_map_<cluster>`: the partition map under [`MAP_KEY`].
    pub map: Store,
    /// `switchboard_nodes_<cluster>`: one expiring record per live node.
    pub nodes: Store,
}

/// Makes or opens both buckets, trying until `deadline`.
pub async fn open(
    jetstream: &Context,
    options: &NatsOptions,
    deadline: Instant,
) -> Result<Buckets, NatsError> {
    let open_only = options.open_only;
    let map = ensure(jetstream, map_config(options), deadline, open_only).await?;
    let nodes = ensure(jetstream, nodes_config(options), deadline, open_only).await?;
    let max_age = nodes.stream.cached_info().config.max_age;
    if max_age != options.node_ttl() {
        tracing::warn!(
            bucket = nodes.name,
            bucket_ttl_ms = max_age.as_millis() as u64,
            node_ttl_ms = options.node_ttl_ms,
            "the membership bucket was made with another node TTL; it decides liveness"
        );
    }
    Ok(Buckets { map, nodes })
}

fn map_config(options: &NatsOptions) -> kv::Config {
    kv::Config {
        bucket: options.map_bucket(),
        description: "switchboard partition map (compare-and-swap on the revision)".into(),
        history: MAP_HISTORY,
        max_value_size: MAP_BYTES_MAX as i32,
        num_replicas: options.replicas,
        ..Default::default()
    }
}

fn nodes_config(options: &NatsOptions) -> kv::Config {
    kv::Config {
        bucket: options.nodes_bucket(),
        description: "switchboard nodes (a key expires one TTL after its last heartbeat)".into(),
        history: 1,
        max_age: options.node_ttl(),
        max_value_size: NODE_RECORD_BYTES_MAX,
        num_replicas: options.replicas,
        ..Default::default()
    }
}

/// Opens bucket `config.bucket`, creating it if it is missing (unless
/// `open_only`: then a missing bucket is an error at once).
async fn ensure(
    jetstream: &Context,
    config: kv::Config,
    deadline: Instant,
    open_only: bool,
) -> Result<Store, NatsError> {
    let bucket = config.bucket.clone();
    loop {
        let opened = jetstream.get_key_value(bucket.as_str()).await;
        match opened {
            Ok(store) => return Ok(store),
            Err(e) if open_only => {
                let reason = format!("cannot open it (no node has created it?): {e}");
                return Err(NatsError::Bucket { bucket, reason });
            }
            Err(_) => {}
        }
        let last_error = match jetstream.create_key_value(config.clone()).await {
            Ok(store) => {
                tracing::info!(bucket, replicas = config.num_replicas, "created bucket");
                return Ok(store);
            }
            Err(e) if error::is_permanent_create(&e) => {
                return Err(NatsError::Bucket { bucket, reason: error::chain(&e) });
            }
            Err(e) => error::chain(&e),
        };
        if Instant::now() + ENSURE_RETRY_PAUSE >= deadline {
            let reason = format!("not ready within the startup timeout: {last_error}");
            return Err(NatsError::Bucket { bucket, reason });
        }
        tokio::time::sleep(ENSURE_RETRY_PAUSE).await;
    }
}

impl Buckets {
    /// The current map, if one was created.
    pub async fn read_map(&self) -> Result<Option<MapVersion>, NatsError> {
        let entry = self.map.entry(MAP_KEY).await.map_err(|e| error::unavailable(&e))?;
        Ok(entry.and_then(map_version))
    }

    /// Stores the first map; [`NatsError::MapExists`] if there is one.
    pub async fn create_map(&self, bytes: Bytes) -> Result<u64, NatsError> {
        check_map_bytes(&bytes)?;
        let revision = self.map.create(MAP_KEY, bytes).await.map_err(error::from_create)?;
        assert!(revision > 0, "JetStream sequences start at 1");
        Ok(revision)
    }

    /// Replaces the map at `expected_revision`; [`NatsError::Conflict`] if
    /// it has moved on.
    pub async fn swap_map(&self, bytes: Bytes, expected_revision: u64) -> Result<u64, NatsError> {
        check_map_bytes(&bytes)?;
        if expected_revision == 0 {
            // Revision 0 would mean "create"; that is `create_map`'s job.
            return Err(NatsError::InvalidArgument("expected revision 0".into()));
        }
        let revision = self
            .map
            .update(MAP_KEY, bytes, expected_revision)
            .await
            .map_err(|e| error::from_update(expected_revision, e))?;
        assert!(revision > expected_revision, "a swap moves the revision forward");
        Ok(revision)
    }

    /// Writes (or rewrites, as a heartbeat) a node's record.
    pub async fn put_node(&self, record: &NodeRecord) -> Result<u64, NatsError> {
        let value = Bytes::from(record.encode());
        self.nodes.put(record.id.as_str(), value).await.map_err(|e| error::unavailable(&e))
    }

    /// Every live node, sorted by id. A record that cannot be read is
    /// skipped with a warning (a newer node's format must not hide the
    /// others); one that expires while being listed is left out.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>, NatsError> {
        let mut keys = self.nodes.keys().await.map_err(|e| error::unavailable(&e))?;
        let mut ids = Vec::new();
        while let Some(key) = keys.next().await {
            ids.push(key.map_err(|e| error::unavailable(&e))?);
            if ids.len() > NODES_MAX {
                let reason = format!("more than {NODES_MAX} keys in {}", self.nodes.name);
                return Err(NatsError::Malformed(reason));
            }
        }
        let mut records = Vec::with_capacity(ids.len());
        for id in ids {
            let entry = self.nodes.entry(id.as_str()).await;
            let Some(entry) = entry.map_err(|e| error::unavailable(&e))? else { continue };
            if entry.operation != Operation::Put {
                continue;
            }
            match NodeRecord::decode(&id, &entry.value, unix_ms(&entry)) {
                Ok(record) => records.push(record),
                Err(reason) => tracing::warn!(reason, "skipping a node record"),
            }
        }
        records.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(records)
    }
}

/// The map version an entry holds (`None` for a delete or purge marker).
pub fn map_version(entry: kv::Entry) -> Option<MapVersion> {
    debug_assert_eq!(entry.key, MAP_KEY);
    (entry.operation == Operation::Put)
        .then_some(MapVersion { bytes: entry.value, revision: entry.revision })
}

fn check_map_bytes(bytes: &Bytes) -> Result<(), NatsError> {
    if bytes.is_empty() || bytes.len() > MAP_BYTES_MAX {
        let reason = format!("a map value must be 1 to {MAP_BYTES_MAX} bytes, not {}", bytes.len());
        return Err(NatsError::InvalidArgument(reason));
    }
    Ok(())
}

/// When an entry was stored, ms since the Unix epoch (server clock).
fn unix_ms(entry: &kv::Entry) -> u64 {
    u64::try_from(entry.created.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}
