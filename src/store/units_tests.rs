use super::*;

fn key(high: u64, rest: u8) -> Vec<u8> {
    let mut key = high.to_be_bytes().to_vec();
    key.extend_from_slice(&[rest; 8]);
    key
}

#[test]
fn bounds_split_the_top_bits_like_the_range_function() {
    assert_eq!(bounds(0, 1), (vec![0; 8], None));
    assert_eq!(bounds(0, 2), (vec![0; 8], Some(vec![0x80, 0, 0, 0, 0, 0, 0, 0])));
    assert_eq!(bounds(3, 4), (vec![0xc0, 0, 0, 0, 0, 0, 0, 0], None));
    for unit_count in [1usize, 2, 16, 64, 4096] {
        for high in [0, 1, u64::MAX / 7, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            let unit = ((u128::from(high) * unit_count as u128) >> 64) as usize;
            assert!(holds(&key(high, 0xff), unit, unit_count), "{high:x} in {unit}/{unit_count}");
            if unit + 1 < unit_count {
                assert!(!holds(&key(high, 0), unit + 1, unit_count));
            }
        }
    }
}

#[test]
fn a_unit_is_read_in_chunks_written_elsewhere_and_deleted_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1).unwrap();
    let unit_count = 4;
    // Ten pairs in each unit of the messages family.
    let mut all = Vec::new();
    for unit in 0..unit_count {
        let pairs: Vec<Pair> = (0..10u8)
            .map(|i| (key(((unit as u64) << 62) + u64::from(i), i), vec![i; 100]))
            .collect();
        write(&store, 0, Family::Messages, (unit, unit_count), &pairs).unwrap();
        all.push(pairs);
    }
    // A key outside the unit is refused, and nothing of the batch lands.
    let stray = vec![(key(0, 1), vec![1]), (key(u64::MAX, 1), vec![2])];
    assert!(write(&store, 0, Family::Messages, (0, unit_count), &stray).is_err());
    // Unit 2, in chunks of about three pairs.
    let mut read = Vec::new();
    for chunk in chunks(&store, 0, Family::Messages, (2, unit_count), 350) {
        let chunk = chunk.unwrap();
        assert!(!chunk.is_empty() && chunk.len() <= 3);
        read.extend(chunk);
    }
    let (first, end) = read_chunk(&store, 0, Family::Messages, (2, unit_count), None, 350).unwrap();
    assert!(first.len() <= 3 && !end, "one read is one chunk, the unit not exhausted");
    assert_eq!(read, all[2]);
    assert!(has_data(&store, 0, (2, unit_count)).unwrap());
    delete(&store, 0, (2, unit_count)).unwrap();
    delete(&store, 0, (3, unit_count)).unwrap();
    assert!(!has_data(&store, 0, (2, unit_count)).unwrap());
    assert!(!has_data(&store, 0, (3, unit_count)).unwrap());
    for unit in [0, 1] {
        let (left, _) =
            read_chunk(&store, 0, Family::Messages, (unit, unit_count), None, usize::MAX).unwrap();
        assert_eq!(left, all[unit], "unit {unit} untouched");
    }
}

#[test]
fn the_unit_of_a_key_is_the_unit_that_holds_it() {
    for unit_count in [1usize, 2, 16, 64, 4096] {
        for high in [0, 1, u64::MAX / 7, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            let unit = unit_of_key(&key(high, 0x11), unit_count);
            assert!(holds(&key(high, 0x11), unit, unit_count), "{high:x} in {unit}/{unit_count}");
            assert!(holds(&log_key(unit, unit_count), unit, unit_count));
        }
    }
    assert_eq!(unit_of_key(&[0xff], 2), 1);
    assert_eq!(unit_of_key(&[], 64), 0);
}

#[test]
fn the_applied_sequence_is_zero_until_written_and_drops_with_the_unit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1).unwrap();
    assert_eq!(applied_seq(&store, 0, (3, 4)).unwrap(), 0);
    let record = vec![(log_key(3, 4), 42u64.to_be_bytes().to_vec())];
    write(&store, 0, Family::Log, (3, 4), &record).unwrap();
    assert_eq!(applied_seq(&store, 0, (3, 4)).unwrap(), 42);
    assert_eq!(applied_seq(&store, 0, (2, 4)).unwrap(), 0);
    assert!(has_data(&store, 0, (3, 4)).unwrap());
    delete(&store, 0, (3, 4)).unwrap();
    assert_eq!(applied_seq(&store, 0, (3, 4)).unwrap(), 0);
}
