//! RocksDB schema and durability.
//!
//! One database per process, opened once in [`Store::open`]. Each shard `n`
//! owns the column families `s{n}_accounts`, `s{n}_messages`,
//! `s{n}_directory` and `s{n}_log` and touches no others; the `default` family holds process-wide metadata, of which the
//! shard count is the one that matters: data is partitioned by it (see
//! [`crate::shard::owner`]), so opening with a different count is refused
//! rather than silently re-partitioning.
//!
//! - [`accounts`]: the account record codec and loading a shard's accounts.
//! - [`messages`]: per-device message queues: keys, values, bounded reads.
//! - [`directory`]: the contact-discovery index entries a shard owns.
//! - [`unit_snapshot`]: one unit's data and log sequence as of one
//!   instant (a RocksDB snapshot), for the partition snapshots.
//! - [`units`]: one routing unit's (a cluster partition's) key ranges:
//!   read in chunks, written in, deleted (moving a partition).
//! - [`ops`]: one staged write (put or delete) and its family.
//! - [`replica`]: the hook of replicated durability: a batch goes to
//!   the partition logs before it is applied here.
//! - [`batch`]: the shard's open write batch: staged writes, their waits,
//!   and the elision of puts acknowledged before they were written.
//! - [`commit`]: the shard's writer: staging, and the commit loop that hands
//!   one batch at a time to the writer thread.
//! - [`writer`]: the per-shard writer thread that applies (and, per the
//!   durability mode, syncs) batches off the io_uring event loop.
//!
//! Owns: the on-disk schema and durability. Imports: `config` (the
//! durability mode) at most; never shard state or anything above.

pub mod accounts;
pub mod batch;
pub mod commit;
pub mod directory;
pub mod messages;
pub mod ops;
pub mod replica;
pub mod unit_snapshot;
pub mod units;
pub mod writer;

use rocksdb::{ColumnFamilyDescriptor, Options, DB};
use std::path::Path;
use std::sync::Arc;

/// Metadata key holding the shard count as a big-endian u32.
const META_SHARD_COUNT: &[u8] = b"shard_count";

/// Why the store could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB reported an error.
    #[error("storage error: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// The data was written with another shard count.
    #[error(
        "data directory {dir} was created with {stored} shards but {wanted} were requested; \
         start with --shards {stored} (ownership of accounts is partitioned by the shard count)"
    )]
    ShardCountMismatch {
        /// The data directory.
        dir: String,
        /// Shard count stored with the data.
        stored: u32,
        /// Shard count of this start.
        wanted: u32,
    },
    /// A stored value could not be decoded.
    #[error("corrupt record in {family}: {reason}")]
    Corrupt {
        /// Column family.
        family: String,
        /// What was wrong.
        reason: String,
    },
    /// The data directory could not be created.
    #[error("cannot create data directory {dir}: {source}")]
    DataDir {
        /// The directory.
        dir: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The writer's queue is full: back-pressure, answered 503.
    #[error("storage writer busy")]
    WriterBusy,
    /// RocksDB refused a write (a full disk, an I/O error): nothing of the
    /// batch was applied; later writes succeed once the cause is gone.
    #[error("storage write failed: {0}")]
    WriteFailed(String),
}

impl StoreError {
    /// True when the write failed because the disk is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::WriteFailed(reason) if reason.contains("No space left"))
    }
}

/// The name of shard `shard`'s accounts column family.
pub fn accounts_family(shard: usize) -> String {
    format!("s{shard}_accounts")
}

/// The name of shard `shard`'s messages column family.
pub fn messages_family(shard: usize) -> String {
    format!("s{shard}_messages")
}

/// The name of shard `shard`'s contact-discovery index family.
pub fn directory_family(shard: usize) -> String {
    format!("s{shard}_directory")
}

/// The name of shard `shard`'s partition-log family (replicated
/// durability: per partition, the last log sequence applied here).
pub fn log_family(shard: usize) -> String {
    format!("s{shard}_log")
}

/// The open database, shared by every shard (each uses only its own families).
#[derive(Clone)]
pub struct Store {
    db: Arc<DB>,
}

impl Store {
    /// Opens (or creates) the database in `dir` for `shard_count` shards.
    pub fn open(dir: &Path, shard_count: usize) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::DataDir { dir: dir.display().to_string(), source })?;
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.increase_parallelism(2);
        // Keep at most a few WAL files around; memtables flush on their own.
        options.set_max_total_wal_size(256 << 20);

        let existing = DB::list_cf(&options, dir).unwrap_or_default();
        let mut families: Vec<String> = (0..shard_count)
            .flat_map(|shard| {
                [
                    accounts_family(shard),
                    messages_family(shard),
                    directory_family(shard),
                    log_family(shard),
                ]
            })
            .collect();
        for name in existing {
            if name != "default" && !families.contains(&name) {
                families.push(name);
            }
        }
        let descriptors =
            families.iter().map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&options, dir, descriptors)?;
        let store = Self { db: Arc::new(db) };
        store.check_shard_count(dir, shard_count as u32)?;
        Ok(store)
    }

    fn check_shard_count(&self, dir: &Path, wanted: u32) -> Result<(), StoreError> {
        match self.db.get(META_SHARD_COUNT)? {
            Some(bytes) => {
                let stored = <[u8; 4]>::try_from(bytes.as_slice())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        family: "default".into(),
                        reason: "shard_count is not 4 bytes".into(),
                    })?;
                if stored != wanted {
                    return Err(StoreError::ShardCountMismatch {
                        dir: dir.display().to_string(),
                        stored,
                        wanted,
                    });
                }
                Ok(())
            }
            None => {
                let mut write_options = rocksdb::WriteOptions::default();
                write_options.set_sync(true);
                self.db.put_opt(META_SHARD_COUNT, wanted.to_be_bytes(), &write_options)?;
                Ok(())
            }
        }
    }

    /// The handle of column family `name`; missing means a corrupt store.
    pub fn family(&self, name: &str) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db.cf_handle(name).ok_or_else(|| StoreError::Corrupt {
            family: name.to_string(),
            reason: "column family missing".into(),
        })
    }

    /// The database, for the writer thread and shard-local reads.
    pub fn db(&self) -> &Arc<DB> {
        &self.db
    }
}
