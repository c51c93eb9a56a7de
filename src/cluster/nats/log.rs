//! The partition logs on JetStream (replicated durability): one stream per
//! partition, appended to by its single owner with the expected-last-
//! sequence header, read back in order by a new owner, purged up to a
//! snapshot.
//!
//! Names: partition `p` of cluster `c` is stream `SB_LOG_<c>_<p>` on the
//! one subject `switchboard.<c>.log.<p>` (cluster names are checked to be
//! `[a-z0-9-]`, which stream names take).
//!
//! Invariants: an append names the sequence it expects to follow and is
//! refused ([`NatsError::WrongLastSequence`]) when another append came
//! first: that is the fence a deposed owner runs into; a read returns the
//! messages of one sequence range in order, each with its sequence, at
//! most [`READ_MESSAGES_MAX`] per call; nothing here retries a write.
//!
//! Imports: `async-nats`, `bytes`; nothing of the crate's layers.

use super::error::{self, NatsError};
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::context::{Context, PublishErrorKind};
use async_nats::jetstream::stream;
use bytes::Bytes;
use futures_util::StreamExt;
use std::time::Duration;

/// Most messages one [`read`] returns.
pub const READ_MESSAGES_MAX: usize = 4096;

/// Most bytes of messages one [`read`] returns (one more message may pass it).
pub const READ_BYTES_MAX: usize = 16 << 20;

/// The stream of partition `partition` of cluster `cluster`.
pub fn stream_name(cluster: &str, partition: u32) -> String {
    format!("SB_LOG_{cluster}_{partition}")
}

/// The subject partition `partition`'s log is appended on.
pub fn subject(cluster: &str, partition: u32) -> String {
    format!("switchboard.{cluster}.log.{partition}")
}

/// Where a stream stands: its first and last sequence (first > last when
/// it is empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogState {
    /// The first sequence still held (after a purge, the one after it).
    pub first_seq: u64,
    /// The last sequence appended (0: none ever).
    pub last_seq: u64,
}

/// Opens partition `partition`'s stream, creating it with `replicas` when
/// missing; where it stands.
pub async fn ensure(
    jetstream: &Context,
    cluster: &str,
    partition: u32,
    replicas: usize,
) -> Result<LogState, NatsError> {
    let config = stream::Config {
        name: stream_name(cluster, partition),
        subjects: vec![subject(cluster, partition)],
        description: Some("switchboard partition log (one owner, fenced appends)".into()),
        num_replicas: replicas,
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        duplicate_window: Duration::from_secs(1),
        ..Default::default()
    };
    let mut stream =
        jetstream.get_or_create_stream(config).await.map_err(|e| error::unavailable(&e))?;
    let info = stream.info().await.map_err(|e| error::unavailable(&e))?;
    Ok(LogState { first_seq: info.state.first_sequence, last_seq: info.state.last_sequence })
}

/// Where partition `partition`'s stream stands now.
pub async fn state(
    jetstream: &Context,
    cluster: &str,
    partition: u32,
) -> Result<LogState, NatsError> {
    let mut stream = jetstream
        .get_stream(stream_name(cluster, partition))
        .await
        .map_err(|e| error::unavailable(&e))?;
    let info = stream.info().await.map_err(|e| error::unavailable(&e))?;
    Ok(LogState { first_seq: info.state.first_sequence, last_seq: info.state.last_sequence })
}

/// Appends `payload` to partition `partition`'s log if its last sequence
/// is `expected_last_seq`; the new message's sequence.
pub async fn append(
    jetstream: &Context,
    cluster: &str,
    partition: u32,
    expected_last_seq: u64,
    payload: Bytes,
) -> Result<u64, NatsError> {
    let publish = async_nats::jetstream::message::PublishMessage::build()
        .payload(payload)
        .expected_last_sequence(expected_last_seq);
    let sent = jetstream.send_publish(subject(cluster, partition), publish).await;
    let acked = match sent {
        Ok(ack) => ack.await,
        Err(e) => Err(e),
    };
    acked.map(|ack| ack.sequence).map_err(|e| match e.kind() {
        PublishErrorKind::WrongLastSequence => NatsError::WrongLastSequence(expected_last_seq),
        PublishErrorKind::TimedOut => NatsError::Timeout,
        PublishErrorKind::MaxPayloadExceeded => NatsError::InvalidArgument(e.to_string()),
        _ => error::unavailable(&e),
    })
}

/// The messages of partition `partition`'s log from `from_seq` through
/// `to_seq`, in order, with their sequences: at most
/// [`READ_MESSAGES_MAX`] and about [`READ_BYTES_MAX`] (read on from the
/// sequence after the last one returned).
pub async fn read(
    jetstream: &Context,
    cluster: &str,
    partition: u32,
    (from_seq, to_seq): (u64, u64),
    timeout: Duration,
) -> Result<Vec<(u64, Bytes)>, NatsError> {
    if from_seq > to_seq {
        return Ok(Vec::new());
    }
    let stream = jetstream
        .get_stream_no_info(stream_name(cluster, partition))
        .await
        .map_err(|e| error::unavailable(&e))?;
    let config = pull::OrderedConfig {
        deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: from_seq },
        ..Default::default()
    };
    let consumer = stream.create_consumer(config).await.map_err(|e| error::unavailable(&e))?;
    let mut messages = consumer.messages().await.map_err(|e| error::unavailable(&e))?;
    let mut read = Vec::new();
    let mut bytes = 0;
    while read.len() < READ_MESSAGES_MAX && bytes < READ_BYTES_MAX {
        let next = tokio::time::timeout(timeout, messages.next()).await;
        let message = match next {
            Err(_) => return Err(NatsError::Timeout),
            Ok(None) => return Err(NatsError::Unavailable("the log read ended early".into())),
            Ok(Some(message)) => message.map_err(|e| error::unavailable(&e))?,
        };
        let seq = message.info().map_err(|e| NatsError::Malformed(e.to_string()))?.stream_sequence;
        if seq > to_seq {
            break;
        }
        bytes += message.payload.len();
        read.push((seq, message.payload.clone()));
        if seq == to_seq {
            break;
        }
    }
    Ok(read)
}

/// Purges partition `partition`'s log below `keep_from_seq`.
pub async fn purge(
    jetstream: &Context,
    cluster: &str,
    partition: u32,
    keep_from_seq: u64,
) -> Result<u64, NatsError> {
    let stream = jetstream
        .get_stream_no_info(stream_name(cluster, partition))
        .await
        .map_err(|e| error::unavailable(&e))?;
    let purged = stream.purge().sequence(keep_from_seq).await;
    purged.map(|response| response.purged).map_err(|e| error::unavailable(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_per_cluster_and_partition() {
        assert_eq!(stream_name("prod-1", 7), "SB_LOG_prod-1_7");
        assert_eq!(subject("prod-1", 7), "switchboard.prod-1.log.7");
        assert_ne!(stream_name("a", 1), stream_name("a", 11));
    }
}
