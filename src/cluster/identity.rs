//! Who a node is, and what its data directory was made for.
//!
//! A node's id ([`NodeId`]) names it in the partition map, in NATS subjects
//! and in logs. Its data directory records, in a small text file
//! [`IDENTITY_FILE`], the cluster, the node id and the partition count `P` it
//! was made for, because its RocksDB data is the data of that node's
//! partitions under that `P`: opened by another node, or with another `P`,
//! accounts would be served from the wrong place or not found at all.
//!
//! The rule [`check_or_create`] enforces, before the store opens:
//! - the file exists: every field must equal the one asked, else
//!   [`IdentityError::Mismatch`] names the field, the stored and the asked
//!   value (cluster first, then node id, then `P`);
//! - no file, and the directory holds a RocksDB database (any of
//!   [`STORE_MARKER_FILES`] or a `MANIFEST-*` file): it is a single-box data
//!   directory, partitioned by shard only, and is refused
//!   ([`IdentityError::SingleBoxData`]) rather than silently joined;
//! - no file and no database (the directory is missing, empty, or holds
//!   only other files): the file is created, atomically (a temporary file,
//!   written and fsynced, renamed over, then the directory fsynced), so a
//!   crash leaves either no identity or a whole one.
//!
//! The file is `key=value` lines (`#` comments allowed), read up to
//! [`IDENTITY_FILE_BYTES_MAX`] bytes; anything else in it is
//! [`IdentityError::Corrupt`] with a typed [`CorruptReason`]. Names (node
//! ids and cluster names) follow [`check_name`]. The only I/O of the
//! cluster's pure model lives here.

use super::partition::{PartitionCount, PartitionError};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The longest node id or cluster name, in bytes (ASCII).
pub const NODE_ID_LEN_MAX: usize = 64;

/// The identity file's name in the data directory.
pub const IDENTITY_FILE: &str = "CLUSTER";

/// The temporary file the identity is written to before its rename.
const IDENTITY_TEMP_FILE: &str = "CLUSTER.tmp";

/// The longest identity file read; a longer one is corrupt.
pub const IDENTITY_FILE_BYTES_MAX: usize = 4096;

/// Files RocksDB keeps in every database directory (with `MANIFEST-*`): any
/// of them without an identity file means single-box data.
pub const STORE_MARKER_FILES: &[&str] = &["CURRENT", "IDENTITY", "LOCK"];

/// The identity file's keys, in the order written.
const KEYS: [&str; 4] = ["format", "cluster", "node_id", "partitions"];

/// The identity file's format version (its `format=` line).
const FORMAT: &str = "1";

/// Why a node id (or a cluster name, which follows the same rules) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("name is empty")]
    Empty,
    /// The name is longer than [`NODE_ID_LEN_MAX`] bytes.
    #[error("name is {len} bytes long, more than {NODE_ID_LEN_MAX}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A byte other than `a-z`, `0-9` or `-`.
    #[error("name holds byte 0x{byte:02x} at {at}; only a-z, 0-9 and '-' are allowed")]
    BadByte {
        /// Offset of the first offending byte.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// The name starts with `-` (it would read as a command-line flag).
    #[error("name starts with '-'")]
    LeadingHyphen,
}

/// Checks a name (a node id or cluster name): 1..=[`NODE_ID_LEN_MAX`] bytes of `a-z0-9-`, not starting
/// with `-`. Safe in a NATS subject or bucket name, a file and a log line.
pub fn check_name(name: &[u8]) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > NODE_ID_LEN_MAX {
        return Err(NameError::TooLong { len: name.len() });
    }
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    if let Some(at) = name.iter().position(|b| !allowed(b)) {
        return Err(NameError::BadByte { at, byte: name[at] });
    }
    if name[0] == b'-' {
        return Err(NameError::LeadingHyphen);
    }
    Ok(())
}

/// A node's id, unique in its cluster (see [`check_name`] for its rules).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(String);

impl NodeId {
    /// Validates `text` as a node id.
    pub fn new(text: &str) -> Result<Self, NameError> {
        check_name(text.as_bytes())?;
        Ok(Self(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for NodeId {
    type Err = NameError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::new(text)
    }
}

/// What a data directory was made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDirIdentity {
    /// The cluster's name (the rules of [`check_name`]).
    pub cluster: String,
    /// This node's id.
    pub node_id: NodeId,
    /// The cluster's partition count, fixed at its creation.
    pub partitions: PartitionCount,
}

/// A field of a [`DataDirIdentity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityField {
    /// The cluster's name.
    Cluster,
    /// The node id.
    NodeId,
    /// The partition count.
    Partitions,
}

impl fmt::Display for IdentityField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cluster => "cluster",
            Self::NodeId => "node id",
            Self::Partitions => "partition count",
        })
    }
}

/// What is wrong inside an identity file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorruptReason {
    /// Longer than [`IDENTITY_FILE_BYTES_MAX`].
    #[error("longer than {IDENTITY_FILE_BYTES_MAX} bytes")]
    TooLarge,
    /// Not UTF-8 text.
    #[error("not UTF-8 text")]
    NotUtf8,
    /// Line `.0` (from 1) is neither blank, a comment nor `key=value`.
    #[error("line {0} is not key=value")]
    NotKeyValue(usize),
    /// Line `.0` has a key other than the four known.
    #[error("line {0} has an unknown key")]
    UnknownKey(usize),
    /// Key `.0` appears twice.
    #[error("key {0} appears twice")]
    DuplicateKey(&'static str),
    /// Key `.0` is missing.
    #[error("key {0} is missing")]
    MissingKey(&'static str),
    /// The `format` is not one this build reads.
    #[error("format is not {FORMAT}")]
    UnsupportedFormat,
    /// The stored cluster name or node id (field `.0`) is invalid.
    #[error("{0}: {1}")]
    BadName(IdentityField, NameError),
    /// The stored partition count is invalid.
    #[error("partitions: {0}")]
    BadPartitions(PartitionError),
}

/// Why a data directory cannot serve as this node's.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The cluster name asked for is invalid.
    #[error("cluster name: {0}")]
    BadCluster(NameError),
    /// The directory was made for another cluster, node id or `P`.
    #[error(
        "data directory {dir} was made for {field} '{stored}' but '{asked}' was asked; \
         use that directory with the {field} it was made for, or another directory"
    )]
    Mismatch {
        /// The data directory.
        dir: PathBuf,
        /// The first field that differs.
        field: IdentityField,
        /// Its stored value.
        stored: String,
        /// The value of this start.
        asked: String,
    },
    /// The directory holds single-box data (a database, no identity file).
    #[error(
        "data directory {dir} holds single-box data ({marker} without {IDENTITY_FILE}); \
         a cluster node needs an empty directory or one made for it"
    )]
    SingleBoxData {
        /// The data directory.
        dir: PathBuf,
        /// The database file found.
        marker: String,
    },
    /// The identity file is unreadable as an identity.
    #[error("identity file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: CorruptReason,
    },
    /// The file system refused.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done (`read`, `write`, `rename`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl DataDirIdentity {
    /// The identity file's text: a comment saying what it is, then one
    /// `key=value` line per field.
    pub fn to_text(&self) -> String {
        format!(
            "# switchboard: what this data directory was made for. Written once, when it\n\
             # first served as a cluster node; a node refuses a directory made for another\n\
             # cluster, node id or partition count. Do not edit.\n\
             format={FORMAT}\ncluster={}\nnode_id={}\npartitions={}\n",
            self.cluster, self.node_id, self.partitions
        )
    }

    /// Reads an identity file's text (blank lines, `#` comments and spaces
    /// around keys and values are ignored; each key exactly once).
    pub fn parse(text: &str) -> Result<Self, CorruptReason> {
        let [format, cluster, node_id, partitions] = key_values(text)?;
        if format != FORMAT {
            return Err(CorruptReason::UnsupportedFormat);
        }
        check_name(cluster.as_bytes())
            .map_err(|e| CorruptReason::BadName(IdentityField::Cluster, e))?;
        let node_id =
            NodeId::new(node_id).map_err(|e| CorruptReason::BadName(IdentityField::NodeId, e))?;
        let partitions = partitions.parse().map_err(CorruptReason::BadPartitions)?;
        Ok(Self { cluster: cluster.to_owned(), node_id, partitions })
    }

    /// The first field where `self` (stored) and `asked` differ, with both
    /// values.
    fn first_difference(&self, asked: &Self) -> Option<(IdentityField, String, String)> {
        // Each value's text is canonical, so comparing texts compares values.
        let fields = [
            (IdentityField::Cluster, self.cluster.clone(), asked.cluster.clone()),
            (IdentityField::NodeId, self.node_id.to_string(), asked.node_id.to_string()),
            (IdentityField::Partitions, self.partitions.to_string(), asked.partitions.to_string()),
        ];
        fields.into_iter().find(|(_, stored, asked)| stored != asked)
    }
}

/// The value of each of [`KEYS`], in their order.
fn key_values(text: &str) -> Result<[&str; 4], CorruptReason> {
    let mut values: [Option<&str>; 4] = [None; 4];
    for (number, line) in (1..).zip(text.lines()) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').ok_or(CorruptReason::NotKeyValue(number))?;
        let slot = KEYS.iter().position(|known| *known == key.trim());
        let slot = slot.ok_or(CorruptReason::UnknownKey(number))?;
        if values[slot].replace(value.trim()).is_some() {
            return Err(CorruptReason::DuplicateKey(KEYS[slot]));
        }
    }
    let mut found = [""; 4];
    for (slot, value) in values.into_iter().enumerate() {
        found[slot] = value.ok_or(CorruptReason::MissingKey(KEYS[slot]))?;
    }
    Ok(found)
}

/// The identity stored in `data_dir`, or `None` when it has no identity
/// file (a single-box start can refuse a cluster node's directory with this).
pub fn read(data_dir: &Path) -> Result<Option<DataDirIdentity>, IdentityError> {
    let path = data_dir.join(IDENTITY_FILE);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(IdentityError::Io { action: "open", path, source }),
    };
    let mut bytes = Vec::with_capacity(IDENTITY_FILE_BYTES_MAX);
    let read = file.take(IDENTITY_FILE_BYTES_MAX as u64 + 1).read_to_end(&mut bytes);
    read.map_err(|source| IdentityError::Io { action: "read", path: path.clone(), source })?;
    let corrupt = |reason| IdentityError::Corrupt { path: path.clone(), reason };
    if bytes.len() > IDENTITY_FILE_BYTES_MAX {
        return Err(corrupt(CorruptReason::TooLarge));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| corrupt(CorruptReason::NotUtf8))?;
    DataDirIdentity::parse(text).map(Some).map_err(corrupt)
}

/// Checks that `data_dir` was made for `identity`, or makes it so when it
/// holds nothing yet (the rule is in the module doc).
pub fn check_or_create(data_dir: &Path, identity: &DataDirIdentity) -> Result<(), IdentityError> {
    check_name(identity.cluster.as_bytes()).map_err(IdentityError::BadCluster)?;
    if let Some(stored) = read(data_dir)? {
        return match stored.first_difference(identity) {
            None => Ok(()),
            Some((field, stored, asked)) => {
                Err(IdentityError::Mismatch { dir: data_dir.to_owned(), field, stored, asked })
            }
        };
    }
    if let Some(marker) = store_marker(data_dir)? {
        return Err(IdentityError::SingleBoxData { dir: data_dir.to_owned(), marker });
    }
    fs::create_dir_all(data_dir).map_err(|source| io_error("create", data_dir, source))?;
    write_atomically(data_dir, &identity.to_text())
}

/// The first RocksDB file found in `data_dir` (fixed names first, then a
/// `MANIFEST-*`), or `None` when it is missing or holds no database.
fn store_marker(data_dir: &Path) -> Result<Option<String>, IdentityError> {
    for name in STORE_MARKER_FILES {
        if fs::symlink_metadata(data_dir.join(name)).is_ok() {
            return Ok(Some((*name).to_owned()));
        }
    }
    let entries = match fs::read_dir(data_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io_error("list", data_dir, source)),
    };
    for entry in entries {
        let name = entry.map_err(|source| io_error("list", data_dir, source))?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("MANIFEST-") {
            return Ok(Some(name.into_owned()));
        }
    }
    Ok(None)
}

/// Writes the identity file so that a crash leaves none or all of it: a
/// temporary file written and fsynced, renamed over the name, then the
/// directory fsynced so the rename itself is durable.
fn write_atomically(dir: &Path, text: &str) -> Result<(), IdentityError> {
    let temp = dir.join(IDENTITY_TEMP_FILE);
    let mut file = File::create(&temp).map_err(|source| io_error("create", &temp, source))?;
    file.write_all(text.as_bytes()).map_err(|source| io_error("write", &temp, source))?;
    file.sync_all().map_err(|source| io_error("sync", &temp, source))?;
    drop(file);
    let path = dir.join(IDENTITY_FILE);
    fs::rename(&temp, &path).map_err(|source| io_error("rename", &temp, source))?;
    let synced = File::open(dir).and_then(|dir| dir.sync_all());
    synced.map_err(|source| io_error("sync", dir, source))
}

/// An [`IdentityError::Io`] for `action` on `path`.
fn io_error(action: &'static str, path: &Path, source: io::Error) -> IdentityError {
    IdentityError::Io { action, path: path.to_owned(), source }
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
