//! `compact-dir`: what a stopped server's live data takes on disk. Opens
//! its RocksDB directory (every column family it holds), compacts each
//! fully down to the bottom level (deleted envelopes and their tombstones
//! dropped, the write-ahead log replayed and flushed), closes it, and
//! reports the directory's size before and after.
//!
//! This is the steady state a long-running server tends to once
//! compaction has caught up; the size while it runs also holds the WAL,
//! unflushed memtables and not yet compacted files (the capacity plan's
//! headroom covers those).

use rocksdb::{BottommostLevelCompaction, CompactOptions, Options, DB};
use serde::Serialize;
use std::path::Path;

/// The directory's size around a full compaction.
#[derive(Debug, Serialize)]
pub struct Compacted {
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub column_families: usize,
}

/// Bytes of all files under `dir`.
pub fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { dir_bytes(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

/// Compacts `dir` fully (the server that owns it must be stopped).
pub fn compact(dir: &Path) -> anyhow::Result<Compacted> {
    let bytes_before = dir_bytes(dir)?;
    let options = Options::default();
    let families = DB::list_cf(&options, dir)?;
    {
        let db = DB::open_cf(&options, dir, &families)?;
        let mut compact = CompactOptions::default();
        compact.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        for name in &families {
            let family = db
                .cf_handle(name)
                .ok_or_else(|| anyhow::anyhow!("column family {name} did not open"))?;
            db.flush_cf(&family)?;
            db.compact_range_cf_opt(&family, None::<&[u8]>, None::<&[u8]>, &compact);
        }
        db.flush_wal(true)?;
    }
    let bytes_after = dir_bytes(dir)?;
    eprintln!("compact-dir: {} bytes before, {bytes_after} after", bytes_before);
    Ok(Compacted { bytes_before, bytes_after, column_families: families.len() })
}
