//! Unit tests of the map's encoding: a hand-computed encoding, round trips
//! of random maps, the largest map, and hostile bytes as typed errors.

use super::*;

/// The encoding of the 2-partition map `a` owns 0, `b` owns 1, epoch 1.
const A_B: [u8; 21] = [
    1, // version
    0, 0, 0, 0, 0, 0, 0, 1, // epoch
    0, 2, // P
    0, 2, // N
    1, b'a', 1, b'b', // nodes
    0, 0, 0, 1, // owners
];

fn a_b() -> PartitionMap {
    PartitionMap::initial(count(2), &nodes(&["b", "a"])).unwrap()
}

/// `A_B` with the bytes from `at` on replaced by `new`.
fn patched(at: usize, new: &[u8]) -> Vec<u8> {
    let mut bytes = A_B.to_vec();
    bytes[at..at + new.len()].copy_from_slice(new);
    bytes
}

#[test]
fn encoding_by_hand() {
    assert_eq!(a_b().encode(), A_B);
    assert_eq!(PartitionMap::decode(&A_B), Ok(a_b()));
}

#[test]
fn random_maps_round_trip() {
    let mut rng = Rng(3);
    for _ in 0..1000 {
        let map = rng.map();
        let bytes = map.encode();
        assert_eq!(PartitionMap::decode(&bytes).as_ref(), Ok(&map));
        assert_eq!(PartitionMap::decode(&bytes).unwrap().encode(), bytes);
    }
}

#[test]
fn the_largest_map_fits_the_limit() {
    let long = |i: usize| node(&format!("{i:04}{}", "n".repeat(NODE_ID_LEN_MAX - 4)));
    let all: Vec<NodeId> = (0..NODE_COUNT_MAX).map(long).collect();
    let map = PartitionMap::initial(count(PARTITION_COUNT_MAX), &all).unwrap();
    let bytes = map.encode();
    assert_eq!(bytes.len(), MAP_ENCODED_BYTES_MAX);
    assert_eq!(PartitionMap::decode(&bytes), Ok(map));
    let mut longer = bytes;
    longer.push(0);
    assert_eq!(PartitionMap::decode(&longer), Err(MapError::TooLong(MAP_ENCODED_BYTES_MAX + 1)));
}

#[test]
fn every_truncation_is_refused() {
    assert_eq!(PartitionMap::decode(&[]), Err(MapError::Truncated("version", 0)));
    assert_eq!(PartitionMap::decode(&A_B[..5]), Err(MapError::Truncated("epoch", 1)));
    assert_eq!(PartitionMap::decode(&A_B[..13]), Err(MapError::Truncated("node list", 13)));
    for len in 0..A_B.len() {
        let refused = PartitionMap::decode(&A_B[..len]);
        assert!(matches!(refused, Err(MapError::Truncated(..))), "{len}: {refused:?}");
    }
}

#[test]
fn hostile_headers_are_typed_errors() {
    let decode = |bytes: Vec<u8>| PartitionMap::decode(&bytes);
    assert_eq!(decode(patched(0, &[2])), Err(MapError::UnsupportedVersion(2)));
    assert_eq!(decode(patched(0, &[0xff])), Err(MapError::UnsupportedVersion(0xff)));
    assert_eq!(decode(patched(8, &[0])), Err(MapError::ZeroEpoch));
    let bad_p = |p: u16| decode(patched(9, &p.to_be_bytes()));
    let out_of_range = |count| PartitionError::CountOutOfRange { count };
    assert_eq!(bad_p(0), Err(MapError::Partition(out_of_range(0))));
    assert_eq!(bad_p(8192), Err(MapError::Partition(out_of_range(8192))));
    assert_eq!(bad_p(u16::MAX), Err(MapError::Partition(out_of_range(65535))));
    let not_power = PartitionError::NotPowerOfTwo { count: 3 };
    assert_eq!(bad_p(3), Err(MapError::Partition(not_power)));
    let bad_n = |n: u16| decode(patched(11, &n.to_be_bytes()));
    assert_eq!(bad_n(3), Err(MapError::TooManyNodes(3, 2)));
    assert_eq!(bad_n(u16::MAX), Err(MapError::TooManyNodes(65535, 2)));
    // A huge P and N with nothing behind them: refused before allocating.
    let mut huge = vec![1, 0, 0, 0, 0, 0, 0, 0, 1];
    huge.extend_from_slice(&4096u16.to_be_bytes());
    huge.extend_from_slice(&1024u16.to_be_bytes());
    assert_eq!(decode(huge), Err(MapError::Truncated("node list", 13)));
    // No nodes at all: the first owner points past the empty list.
    let no_nodes = [&A_B[..11], &[0, 0, 0, 0, 0, 0]].concat();
    assert_eq!(decode(no_nodes), Err(MapError::OwnerOutOfRange(0, 0)));
}

#[test]
fn hostile_node_lists_are_typed_errors() {
    let decode = |bytes: Vec<u8>| PartitionMap::decode(&bytes);
    let bad = |index, error| Err(MapError::BadNodeId(index, error));
    assert_eq!(decode(patched(14, b"A")), bad(0, NameError::BadByte { at: 0, byte: b'A' }));
    assert_eq!(decode(patched(16, b"-")), bad(1, NameError::LeadingHyphen));
    assert_eq!(decode(patched(16, &[0xff])), bad(1, NameError::BadByte { at: 0, byte: 0xff }));
    assert_eq!(decode(patched(14, b"b")), Err(MapError::NodesNotSorted(1)), "repeated");
    assert_eq!(decode(patched(14, b"c")), Err(MapError::NodesNotSorted(1)), "descending");
    // A zero-length id, then the rest read one byte off.
    let empty = [&A_B[..13], &[0, 1, b'b', 0, 0, 0, 1, 0]].concat();
    assert_eq!(decode(empty), bad(0, NameError::Empty));
    let mut long = A_B[..13].to_vec();
    long.push(65);
    long.extend_from_slice(&[b'a'; 65]);
    long.extend_from_slice(&[1, b'b', 0, 0, 0, 1]);
    assert_eq!(decode(long), bad(0, NameError::TooLong { len: 65 }));
}

#[test]
fn hostile_owners_and_tails_are_typed_errors() {
    let decode = |bytes: Vec<u8>| PartitionMap::decode(&bytes);
    assert_eq!(decode(patched(19, &[0, 2])), Err(MapError::OwnerOutOfRange(1, 2)));
    assert_eq!(decode(patched(17, &[0xff, 0xff])), Err(MapError::OwnerOutOfRange(0, 65535)));
    assert_eq!(decode(patched(19, &[0, 0])), Err(MapError::NodeWithoutPartitions(node("b"))));
    let trailing = [&A_B[..], &[0, 0, 0]].concat();
    assert_eq!(decode(trailing), Err(MapError::TrailingBytes(3)));
}

#[test]
fn mutated_encodings_never_panic_and_what_decodes_round_trips() {
    let mut rng = Rng(11);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut bytes = rng.map().encode();
        for _ in 0..1 + rng.below(3) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[at] = rng.next() as u8,
                1 => bytes.truncate(at),
                _ => bytes.insert(at, rng.next() as u8),
            }
        }
        if let Ok(map) = PartitionMap::decode(&bytes) {
            assert_eq!(map.encode(), bytes);
            assert_sound(&map);
            accepted += 1;
        }
    }
    // Some mutations (of an epoch or an owner) still make a sound map.
    assert!(accepted > 0);
}
