//! The partition snapshots on a JetStream object store (replicated
//! durability): bucket `switchboard_snap_<c>`, one object `p<partition>`
//! per partition, replaced by each new snapshot (the bytes are opaque
//! here: `cluster::replica::snapshot` encodes them, the log sequence they
//! cover inside).
//!
//! Invariants: a put returns only once the whole object is stored (the
//! object store's own chunking, its metadata written last: a reader sees
//! the old object or the new one, never a mix); a get reads at most
//! [`SNAPSHOT_BYTES_MAX`].
//!
//! Imports: `async-nats`, `bytes`, `tokio`; nothing of the crate's layers.

use super::error::{self, NatsError};
use async_nats::jetstream::context::Context;
use async_nats::jetstream::object_store::{self, GetErrorKind, ObjectStore};
use bytes::Bytes;
use tokio::io::AsyncReadExt;

/// The largest snapshot read back, bytes.
pub const SNAPSHOT_BYTES_MAX: u64 = 4 << 30;

/// The object store bucket of cluster `cluster`.
pub fn bucket_name(cluster: &str) -> String {
    format!("switchboard_snap_{cluster}")
}

/// The object of partition `partition`.
pub fn object_name(partition: u32) -> String {
    format!("p{partition}")
}

/// Opens the cluster's snapshot bucket, creating it with `replicas`.
async fn open(
    jetstream: &Context,
    cluster: &str,
    replicas: usize,
) -> Result<ObjectStore, NatsError> {
    let bucket = bucket_name(cluster);
    if let Ok(store) = jetstream.get_object_store(&bucket).await {
        return Ok(store);
    }
    let config = object_store::Config {
        bucket: bucket.clone(),
        description: Some("switchboard partition snapshots (one object per partition)".into()),
        num_replicas: replicas,
        ..Default::default()
    };
    match jetstream.create_object_store(config).await {
        Ok(store) => Ok(store),
        // Made by another node meanwhile.
        Err(_) => jetstream.get_object_store(&bucket).await.map_err(|e| error::unavailable(&e)),
    }
}

/// Stores `bytes` as partition `partition`'s snapshot.
pub async fn put(
    jetstream: &Context,
    cluster: &str,
    (partition, replicas): (u32, usize),
    bytes: Bytes,
) -> Result<(), NatsError> {
    let store = open(jetstream, cluster, replicas).await?;
    let mut reader: &[u8] = &bytes;
    store
        .put(object_name(partition).as_str(), &mut reader)
        .await
        .map_err(|e| error::unavailable(&e))?;
    Ok(())
}

/// Partition `partition`'s snapshot, if one was stored.
pub async fn get(
    jetstream: &Context,
    cluster: &str,
    (partition, replicas): (u32, usize),
) -> Result<Option<Bytes>, NatsError> {
    let store = open(jetstream, cluster, replicas).await?;
    let object = match store.get(object_name(partition)).await {
        Ok(object) => object,
        Err(e) if e.kind() == GetErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(error::unavailable(&e)),
    };
    if object.info().size as u64 > SNAPSHOT_BYTES_MAX {
        let reason =
            format!("a snapshot of {} bytes is over {SNAPSHOT_BYTES_MAX}", object.info().size);
        return Err(NatsError::Malformed(reason));
    }
    let mut bytes = Vec::with_capacity(object.info().size);
    object
        .take(SNAPSHOT_BYTES_MAX)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| error::unavailable(&e))?;
    Ok(Some(Bytes::from(bytes)))
}
