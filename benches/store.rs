//! RocksDB batch writes through the shard writer's settings, per durability
//! mode: one 200-byte envelope per write (what `sync` does per send) against
//! batches of 100 (what `group` commit merges), with and without WAL sync.
//! The unsynced single put is the baseline in the same run.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rocksdb::{WriteBatch, WriteOptions};
use switchboard::store::{messages_family, Store};

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1).unwrap();
    let db = store.db().clone();
    let family = messages_family(0);
    let value = vec![0x5au8; 200];
    let mut key_seq = 0u64;
    let mut synced = WriteOptions::default();
    synced.set_sync(true);
    let unsynced = WriteOptions::default();

    let mut group = c.benchmark_group("rocksdb_write");
    group.sample_size(20);
    for (name, batch_len, options) in [
        ("single_put_unsynced_baseline", 1u64, &unsynced),
        ("single_put_synced", 1, &synced),
        ("batch_100_unsynced", 100, &unsynced),
        ("batch_100_synced", 100, &synced),
    ] {
        group.throughput(Throughput::Elements(batch_len));
        group.bench_function(name, |b| {
            b.iter(|| {
                let cf = db.cf_handle(&family).unwrap();
                let mut batch = WriteBatch::default();
                for _ in 0..batch_len {
                    key_seq += 1;
                    batch.put_cf(cf, key_seq.to_be_bytes(), &value);
                }
                db.write_opt(batch, options).unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, store);
criterion_main!(benches);
