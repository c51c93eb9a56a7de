//! The cluster thread's one error type, and the mapping from the many
//! error kinds of `async-nats` onto it.
//!
//! The variants are what a caller decides on: [`NatsError::MapExists`] and
//! [`NatsError::Conflict`] are answers (someone else wrote first: reread),
//! [`NatsError::Unavailable`], [`NatsError::Timeout`],
//! [`NatsError::NoResponders`] and [`NatsError::Busy`] are transient (503
//! with `Retry-After` at the edge), the rest are configuration or bugs.

use async_nats::jetstream::context::CreateStreamErrorKind;
use async_nats::jetstream::context::{CreateKeyValueErrorKind, CreateStreamError};
use async_nats::jetstream::kv::{CreateErrorKind, UpdateErrorKind};
use async_nats::jetstream::ErrorCode;
use async_nats::RequestErrorKind;

/// Why a cluster operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatsError {
    /// A setting cannot work; nothing was started.
    #[error("cluster setting {setting}: {reason}")]
    InvalidOptions {
        /// The setting's name in [`NatsOptions`](super::options::NatsOptions).
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An argument cannot be stored or sent (a bad node id, address,
    /// subject, or a value over its limit).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No NATS server answered within the startup timeout.
    #[error("cannot connect to NATS at {urls}: {reason}")]
    Connect {
        /// The URLs tried, comma-separated.
        urls: String,
        /// The last failure.
        reason: String,
    },
    /// A bucket could not be made or opened, for a reason retrying will not
    /// fix (more replicas than servers, a name in use with another config).
    #[error("JetStream bucket {bucket}: {reason}")]
    Bucket {
        /// The bucket's name.
        bucket: String,
        /// What JetStream said.
        reason: String,
    },
    /// [`create_map`](super::NatsHandle::create_map): a map already exists.
    #[error("the partition map already exists")]
    MapExists,
    /// [`swap_map`](super::NatsHandle::swap_map): the map is no longer at
    /// the expected revision (or does not exist).
    #[error("the partition map is not at revision {expected} any more")]
    Conflict {
        /// The revision the swap expected.
        expected: u64,
    },
    /// A partition log append was refused: the log's last sequence is
    /// not the one named (`.0`): another append came first (the fence).
    #[error("the partition log is not at sequence {0} any more")]
    WrongLastSequence(u64),
    /// A request got no answer in time.
    #[error("timed out")]
    Timeout,
    /// Nobody listens on the subject of a request.
    #[error("no responders on {0}")]
    NoResponders(String),
    /// NATS or JetStream failed (disconnected, no stream leader, a lost
    /// ack): transient, and a write may or may not have happened.
    #[error("NATS unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be read (a malformed node record).
    #[error("malformed value in the cluster buckets: {0}")]
    Malformed(String),
    /// The thread's request channel is full: back-pressure, try later.
    #[error("the cluster thread is busy")]
    Busy,
    /// The cluster thread has ended.
    #[error("the cluster thread has stopped")]
    Stopped,
}

impl NatsError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout | Self::NoResponders(_) | Self::Unavailable(_) | Self::Busy)
    }
}

/// A failed request.
pub(super) fn from_request(subject: &str, error: async_nats::RequestError) -> NatsError {
    match error.kind() {
        RequestErrorKind::TimedOut => NatsError::Timeout,
        RequestErrorKind::NoResponders => NatsError::NoResponders(subject.to_string()),
        RequestErrorKind::InvalidSubject | RequestErrorKind::MaxPayloadExceeded => {
            NatsError::InvalidArgument(error.to_string())
        }
        RequestErrorKind::Other => NatsError::Unavailable(error.to_string()),
    }
}

/// A failed KV `create` of the map.
pub(super) fn from_create(error: async_nats::jetstream::kv::CreateError) -> NatsError {
    match error.kind() {
        CreateErrorKind::AlreadyExists => NatsError::MapExists,
        CreateErrorKind::InvalidKey => NatsError::InvalidArgument(error.to_string()),
        _ => NatsError::Unavailable(chain(&error)),
    }
}

/// A failed KV `update` (compare-and-swap) of the map.
pub(super) fn from_update(
    expected: u64,
    error: async_nats::jetstream::kv::UpdateError,
) -> NatsError {
    match error.kind() {
        UpdateErrorKind::WrongLastRevision => NatsError::Conflict { expected },
        UpdateErrorKind::InvalidKey => NatsError::InvalidArgument(error.to_string()),
        UpdateErrorKind::TimedOut => NatsError::Timeout,
        UpdateErrorKind::Other => NatsError::Unavailable(chain(&error)),
    }
}

/// Any other failure: transient.
pub(super) fn unavailable(error: &dyn std::error::Error) -> NatsError {
    NatsError::Unavailable(chain(error))
}

/// Whether a failure to create bucket will not go away by retrying: the
/// request itself is wrong for this NATS system.
pub(super) fn is_permanent_create(
    error: &async_nats::jetstream::context::CreateKeyValueError,
) -> bool {
    match error.kind() {
        CreateKeyValueErrorKind::InvalidStoreName | CreateKeyValueErrorKind::TooLongHistory => true,
        CreateKeyValueErrorKind::LimitMarkersNotSupported => true,
        _ => jetstream_code(error).is_some_and(|code| {
            [
                ErrorCode::CLUSTER_NO_PEERS,
                ErrorCode::INSUFFICIENT_RESOURCES,
                ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED,
            ]
            .contains(&code)
        }),
    }
}

/// The JetStream API error code somewhere in `error`'s source chain.
fn jetstream_code(error: &(dyn std::error::Error + 'static)) -> Option<ErrorCode> {
    let mut next = Some(error);
    while let Some(current) = next {
        if let Some(create) = current.downcast_ref::<CreateStreamError>() {
            if let CreateStreamErrorKind::JetStream(api) = create.kind() {
                return Some(api.error_code());
            }
        }
        next = current.source();
    }
    None
}

/// `error` and its sources, `: `-separated (async-nats puts the useful
/// part, JetStream's own description, in a source).
pub(super) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        let part = source.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = source.source();
    }
    text
}
