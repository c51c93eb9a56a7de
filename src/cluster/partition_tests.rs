//! Unit tests of `partition`: hand-computed boundaries, the hex-prefix
//! helpers against `partition_of` on random UUIDs, and refused inputs.

use super::*;

fn count(n: u32) -> PartitionCount {
    PartitionCount::new(n).unwrap()
}

fn uuid(text: &str) -> Uuid {
    Uuid::parse_str(text).unwrap()
}

#[test]
fn counts_are_powers_of_two_within_the_limit() {
    for bits in 0..=12 {
        assert_eq!(count(1 << bits).get(), 1 << bits);
        assert_eq!(count(1 << bits).bits(), bits);
    }
    assert_eq!(PartitionCount::default().get(), 64);
    assert_eq!(PartitionCount::new(0), Err(PartitionError::CountOutOfRange { count: 0 }));
    assert_eq!(PartitionCount::new(8192), Err(PartitionError::CountOutOfRange { count: 8192 }));
    assert_eq!(
        PartitionCount::new(u32::MAX),
        Err(PartitionError::CountOutOfRange { count: u64::from(u32::MAX) })
    );
    for n in [3, 6, 12, 48, 100, 4095] {
        assert_eq!(PartitionCount::new(n), Err(PartitionError::NotPowerOfTwo { count: n }));
    }
}

#[test]
fn counts_parse_from_text_and_refuse_junk() {
    assert_eq!("16".parse::<PartitionCount>(), Ok(count(16)));
    assert_eq!("0016".parse::<PartitionCount>(), Ok(count(16)));
    assert_eq!(count(256).to_string(), "256");
    for junk in ["", " 16", "16 ", "-16", "+16", "0x10", "1e3", "１６"] {
        assert!(
            matches!(junk.parse::<PartitionCount>(), Err(PartitionError::NotANumber { .. })),
            "{junk:?}"
        );
    }
    let long = "9".repeat(10_000);
    assert_eq!(
        long.parse::<PartitionCount>(),
        Err(PartitionError::CountOutOfRange { count: u64::MAX })
    );
    let err = format!("{}x", "1".repeat(100)).parse::<PartitionCount>().unwrap_err();
    assert!(matches!(err, PartitionError::NotANumber { ref text } if text.len() == 32));
    assert_eq!(
        "5000000000".parse::<PartitionCount>(),
        Err(PartitionError::CountOutOfRange { count: 5_000_000_000 })
    );
}

#[test]
fn partition_ids_stay_below_their_count() {
    let p16 = count(16);
    assert_eq!(PartitionId::new(15, p16).unwrap().index(), 15);
    assert_eq!(
        PartitionId::new(16, p16),
        Err(PartitionError::PartitionOutOfRange { index: 16, count: 16 })
    );
    let all: Vec<u32> = p16.partitions().map(PartitionId::index).collect();
    assert_eq!(all, (0..16).collect::<Vec<_>>());
    assert_eq!(count(4096).partitions().count(), 4096);
}

#[test]
fn partition_boundaries_are_the_top_bits() {
    let p64 = count(64);
    // 64 partitions: the top 6 bits. 0x04 = 0b0000_0100 -> partition 1.
    assert_eq!(partition_of(&uuid("00000000-0000-0000-0000-000000000000"), p64).index(), 0);
    assert_eq!(partition_of(&uuid("03ffffff-ffff-ffff-ffff-ffffffffffff"), p64).index(), 0);
    assert_eq!(partition_of(&uuid("04000000-0000-0000-0000-000000000000"), p64).index(), 1);
    assert_eq!(partition_of(&uuid("80000000-0000-0000-0000-000000000000"), p64).index(), 32);
    assert_eq!(partition_of(&uuid("ffffffff-ffff-ffff-ffff-ffffffffffff"), p64).index(), 63);
    // 16 partitions: the first hex digit.
    assert_eq!(partition_of(&uuid("a1234567-0000-4000-8000-000000000000"), count(16)).index(), 10);
    // 4096 partitions: the first three hex digits.
    assert_eq!(
        partition_of(&uuid("abcdef01-0000-4000-8000-000000000000"), count(4096)).index(),
        0xabc
    );
    assert_eq!(partition_of(&Uuid::max(), count(1)).index(), 0);
}

#[test]
fn partitions_agree_with_the_shard_range_function() {
    for bits in 0..=12 {
        let n = count(1 << bits);
        for _ in 0..200 {
            let id = Uuid::new_v4();
            assert_eq!(partition_of(&id, n).index() as usize, crate::shard::owner(&id, 1 << bits));
        }
    }
}

#[test]
fn local_shard_is_partition_mod_shards() {
    let p64 = count(64);
    let shard = |p: u32, s: usize| local_shard(PartitionId::new(p, p64).unwrap(), s);
    assert_eq!(shard(0, 1), 0);
    assert_eq!(shard(63, 1), 0);
    assert_eq!(shard(5, 4), 1);
    assert_eq!(shard(63, 4), 3);
    assert_eq!(shard(17, 6), 5);
    assert_eq!(shard(63, 64), 63);
    assert_eq!(shard(3, 100), 3);
    // Every shard of a 4-shard node serves 16 of 64 partitions.
    let mut per_shard = [0; 4];
    p64.partitions().for_each(|p| per_shard[local_shard(p, 4)] += 1);
    assert_eq!(per_shard, [16; 4]);
}

#[test]
#[should_panic(expected = "shard_count must be at least 1")]
fn local_shard_refuses_zero_shards() {
    local_shard(PartitionId::new(0, count(1)).unwrap(), 0);
}

#[test]
fn hex_prefix_lengths_by_count() {
    let lens: Vec<usize> = (0..=12).map(|bits| hex_prefix_len(count(1 << bits))).collect();
    assert_eq!(lens, [1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
}

#[test]
fn hex_prefixes_agree_with_partition_of_on_random_uuids() {
    for bits in 0..=12 {
        let n = count(1 << bits);
        let len = hex_prefix_len(n);
        for _ in 0..500 {
            let id = Uuid::new_v4();
            let text = id.to_string();
            let expected = partition_of(&id, n);
            assert_eq!(partition_of_hex_prefix(&text[..len], n), Ok(expected), "{text} P={n}");
            assert_eq!(partition_of_hex_prefix(&text[..8], n), Ok(expected));
            let upper = text[..len].to_ascii_uppercase();
            assert_eq!(partition_of_hex_prefix(&upper, n), Ok(expected));
        }
    }
}

#[test]
fn hex_prefixes_by_hand() {
    assert_eq!(partition_of_hex_prefix("7", count(2)).unwrap().index(), 0);
    assert_eq!(partition_of_hex_prefix("8", count(2)).unwrap().index(), 1);
    assert_eq!(partition_of_hex_prefix("f", count(1)).unwrap().index(), 0);
    // 64 partitions: "3f" = 0b0011_1111 keeps the top 6 bits 0b001111 = 15.
    assert_eq!(partition_of_hex_prefix("3f", count(64)).unwrap().index(), 15);
    assert_eq!(partition_of_hex_prefix("ff", count(256)).unwrap().index(), 255);
    assert_eq!(partition_of_hex_prefix("fff", count(4096)).unwrap().index(), 4095);
}

#[test]
fn hostile_hex_prefixes_are_refused() {
    let p64 = count(64);
    let length = |len| PartitionError::PrefixLength { len, min: 2, count: 64 };
    assert_eq!(partition_of_hex_prefix("", p64), Err(length(0)));
    assert_eq!(partition_of_hex_prefix("a", p64), Err(length(1)));
    assert_eq!(partition_of_hex_prefix("abcdef012", p64), Err(length(9)));
    assert_eq!(partition_of_hex_prefix("ag", p64), Err(PartitionError::PrefixNotHex { at: 1 }));
    assert_eq!(partition_of_hex_prefix("-1", p64), Err(PartitionError::PrefixNotHex { at: 0 }));
    assert_eq!(partition_of_hex_prefix("abcd-", p64), Err(PartitionError::PrefixNotHex { at: 4 }));
    // A multi-byte character counts its bytes and is not hex.
    assert_eq!(partition_of_hex_prefix("éa", p64), Err(PartitionError::PrefixNotHex { at: 0 }));
}

#[test]
fn hex_prefix_table_covers_every_prefix_once() {
    for bits in 0..=12 {
        let n = count(1 << bits);
        let table = hex_prefix_table(n);
        assert_eq!(table.len(), 1 << (4 * hex_prefix_len(n)));
        for (prefix, partition) in &table {
            assert_eq!(prefix.len(), hex_prefix_len(n));
            assert_eq!(partition_of_hex_prefix(prefix, n), Ok(*partition));
        }
        // Every partition gets the same number of rows, in order.
        let rows_each = table.len() / n.get() as usize;
        for (row, (_, partition)) in table.iter().enumerate() {
            assert_eq!(partition.index() as usize, row / rows_each);
        }
    }
    let p32 = hex_prefix_table(count(32));
    assert_eq!(p32[0], ("00".to_string(), PartitionId(0)));
    assert_eq!(p32[8], ("08".to_string(), PartitionId(1)));
    assert_eq!(p32[255], ("ff".to_string(), PartitionId(31)));
}
