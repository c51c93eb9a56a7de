//! Delivering a freshly stored envelope: from the session's in-memory tail
//! (append when staged, take to deliver) against reading it back from
//! RocksDB after the cursor (what every live delivery did before the tail),
//! in the same run. The store holds 10,000 queued envelopes of other
//! devices and the device's own recent ones, as a busy shard's memtable
//! does; one envelope per delivery, as live traffic mostly arrives. The
//! put itself (the writer thread's work) is set-up, not timed; the tail's
//! time includes the copy of the envelope it keeps.
//!
//! Also the writer hand-off: one write through the shard's writer (open
//! batch, commit loop, ring, writer thread, completion wake) against the same `write_opt` made
//! on the calling thread, unsynced, so the difference is the hand-off.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rocksdb::{WriteBatch, WriteOptions};
use switchboard::config::Durability;
use switchboard::metrics::new_metrics;
use switchboard::shard::tail::TailSlot;
use switchboard::store::batch::OpRef;
use switchboard::store::commit::Writer;
use switchboard::store::messages::{
    encode_value, message_key, read_page, StoredKind, StoredMessage,
};
use switchboard::store::writer::{Family, Op, WriterThread};
use switchboard::store::{messages_family, Store};
use uuid::Uuid;

const JSON_BYTES: usize = 300;

fn stored(account: &Uuid, seq: u64) -> StoredMessage {
    let mut json = vec![b'x'; JSON_BYTES];
    json[0] = b'{';
    StoredMessage {
        key: message_key(account, 1, 1_000, seq),
        guid: Uuid::from_u64_pair(0, seq),
        kind: StoredKind::Envelope,
        json,
    }
}

fn put(store: &Store, message: &StoredMessage) {
    let db = store.db();
    let cf = db.cf_handle(&messages_family(0)).unwrap();
    let value = encode_value(&message.guid, message.kind, &message.json);
    db.put_cf_opt(cf, &message.key, value, &WriteOptions::default()).unwrap();
}

fn tail(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1).unwrap();
    for seq in 0..10_000 {
        put(&store, &stored(&Uuid::new_v4(), seq));
    }
    let device = Uuid::new_v4();
    let mut group = c.benchmark_group("deliver_fresh_envelope");
    group.throughput(Throughput::Elements(1));
    // The put (on the writer thread in the server) is set-up, not timed.
    let seq = std::cell::Cell::new(1_000_000u64);
    let store_next = || {
        seq.set(seq.get() + 1);
        let message = stored(&device, seq.get());
        put(&store, &message);
        message
    };
    let mut cursor = store_next().key;
    group.bench_function("store_read_back_baseline", |b| {
        b.iter_batched(
            store_next,
            |_| {
                let (page, _) = read_page(&store, 0, &device, 1, Some(&cursor), 1).unwrap();
                cursor = page.last().unwrap().key.clone();
                page
            },
            BatchSize::SmallInput,
        )
    });
    let slot = TailSlot::default();
    let job = std::cell::Cell::new(1u64);
    let at = |batch| OpRef { batch, index: 0 };
    slot.append(at(job.get()), 0, store_next());
    slot.on_store_caught_up((job.get(), 0), job.get() + 1, 0);
    group.bench_function("tail", |b| {
        b.iter_batched(
            store_next,
            |message| {
                job.set(job.get() + 1);
                slot.append(at(job.get()), 0, message.clone());
                slot.take_ready(0, None, 16).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn writer_handoff(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1).unwrap();
    let ops = |seq: u64| {
        vec![Op::Put {
            family: Family::Messages,
            key: seq.to_be_bytes().to_vec(),
            value: vec![7; 200],
        }]
    };
    let mut group = c.benchmark_group("writer_handoff");
    group.throughput(Throughput::Elements(1));
    let mut seq = 0u64;
    group.bench_function("write_on_calling_thread_baseline", |b| {
        let db = store.db().clone();
        b.iter(|| {
            seq += 1;
            let cf = db.cf_handle(&messages_family(0)).unwrap();
            let mut batch = WriteBatch::default();
            for op in ops(seq) {
                if let Op::Put { key, value, .. } = op {
                    batch.put_cf(cf, key, value);
                }
            }
            db.write_opt(batch, &WriteOptions::default()).unwrap();
        })
    });
    let mut runtime =
        monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().enable_timer().build().unwrap();
    let thread = WriterThread::spawn(store.clone(), 0, Durability::None, new_metrics(1)).unwrap();
    let writer = Writer::new(thread, 100, std::time::Duration::ZERO);
    group.bench_function("through_writer_thread", |b| {
        b.iter(|| {
            seq += 1;
            // The commit loop runs beside the write; it idles once the write completes.
            runtime
                .block_on(async {
                    monoio::select! {
                        written = writer.write(ops(seq)) => written,
                        _ = writer.run() => unreachable!("the commit loop runs for ever"),
                    }
                })
                .unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, tail, writer_handoff);
criterion_main!(benches);
