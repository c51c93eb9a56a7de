//! Ring throughput between two pinned threads: the SPSC rings the shards
//! use (rtrb), beside std's mpsc channel as the baseline in the same run.
//! Reports time per message for a batch of `MESSAGES` pushed by one thread
//! and popped by the other.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Instant;

const MESSAGES: u64 = 1_000_000;

/// The cores this process may use, read once: `get_core_ids` reports the
/// calling thread's mask, which shrinks to one core once that thread is
/// pinned (and a spawned thread inherits it), so reading it again after
/// pinning would put both threads on the same core.
static CORES: std::sync::OnceLock<Vec<core_affinity::CoreId>> = std::sync::OnceLock::new();

fn pin(index: usize) {
    let cores = CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default());
    if !cores.is_empty() {
        core_affinity::set_for_current(cores[index % cores.len()]);
    }
}

fn rtrb_round(slots: usize, pinned: bool) -> std::time::Duration {
    let (mut producer, mut consumer) = rtrb::RingBuffer::<u64>::new(slots);
    let started = Instant::now();
    let reader = std::thread::spawn(move || {
        if pinned {
            pin(1);
        }
        let mut sum = 0u64;
        let mut seen = 0;
        while seen < MESSAGES {
            if let Ok(value) = consumer.pop() {
                sum = sum.wrapping_add(value);
                seen += 1;
            } else {
                std::hint::spin_loop();
            }
        }
        sum
    });
    if pinned {
        pin(0);
    }
    for value in 0..MESSAGES {
        while producer.push(value).is_err() {
            std::hint::spin_loop();
        }
    }
    reader.join().unwrap();
    started.elapsed()
}

fn std_channel_round(bound: usize) -> std::time::Duration {
    let (sender, receiver) = std::sync::mpsc::sync_channel::<u64>(bound);
    let started = Instant::now();
    let reader = std::thread::spawn(move || {
        pin(1);
        let mut sum = 0u64;
        for _ in 0..MESSAGES {
            sum = sum.wrapping_add(receiver.recv().unwrap());
        }
        sum
    });
    pin(0);
    for value in 0..MESSAGES {
        sender.send(value).unwrap();
    }
    reader.join().unwrap();
    started.elapsed()
}

fn ring(c: &mut Criterion) {
    CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default());
    let mut group = c.benchmark_group("ring_two_threads");
    group.throughput(Throughput::Elements(MESSAGES));
    group.sample_size(10);
    group.bench_function("rtrb_4096_slots_unpinned", |b| {
        b.iter_custom(|iterations| (0..iterations).map(|_| rtrb_round(4096, false)).sum())
    });
    group.bench_function("rtrb_4096_slots_pinned", |b| {
        b.iter_custom(|iterations| (0..iterations).map(|_| rtrb_round(4096, true)).sum())
    });
    group.bench_function("baseline_std_sync_channel_4096", |b| {
        b.iter_custom(|iterations| (0..iterations).map(|_| std_channel_round(4096)).sum())
    });
    group.finish();
}

criterion_group!(benches, ring);
criterion_main!(benches);
