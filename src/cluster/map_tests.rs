//! Unit tests of the partition map: the initial spread, changes, and the
//! rebalance plan (its codec is tested in `map_codec_tests.rs`).

use super::*;

#[path = "map_codec_tests.rs"]
mod codec;

fn count(n: u32) -> PartitionCount {
    PartitionCount::new(n).unwrap()
}

fn node(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

fn nodes(names: &[&str]) -> Vec<NodeId> {
    names.iter().map(|name| node(name)).collect()
}

fn partition(index: u32, map: &PartitionMap) -> PartitionId {
    PartitionId::new(index, map.partition_count()).unwrap()
}

/// The counts of `map` as `(name, count)` pairs.
fn counts(map: &PartitionMap) -> Vec<(&str, usize)> {
    map.counts_per_node().into_iter().map(|(node, n)| (node.as_str(), n)).collect()
}

/// A small deterministic generator (SplitMix64), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A valid node id of 1..=12 characters.
    fn node(&mut self) -> NodeId {
        const FIRST: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let len = 1 + self.below(12);
        let mut name = String::new();
        for i in 0..len {
            let pool: &[u8] = if i == 0 { FIRST } else { b"abcdef0123456789-" };
            name.push(pool[self.below(pool.len())] as char);
        }
        node(&name)
    }

    /// A map with random P (small ones likelier), nodes, owners and epoch.
    fn map(&mut self) -> PartitionMap {
        let p = count(1 << self.below(13).min(self.below(13)));
        let pool: Vec<NodeId> = (0..1 + self.below(12)).map(|_| self.node()).collect();
        let owners: Vec<&NodeId> = (0..p.get()).map(|_| &pool[self.below(pool.len())]).collect();
        let epoch = 1 + self.next() % 1_000_000;
        PartitionMap::from_owners(epoch, p, &owners).unwrap()
    }
}

/// Checks that every partition has exactly one owner and that the views of
/// a map agree with one another.
fn assert_sound(map: &PartitionMap) {
    let p = map.partition_count();
    let mut seen = vec![0; p.get() as usize];
    for (node, n) in map.counts_per_node() {
        assert!(n >= 1, "{node} is listed without partitions");
        let owned = map.partitions_of(node);
        assert_eq!(owned.len(), n);
        for partition in owned {
            assert_eq!(map.owner(partition), Some(node));
            seen[partition.index() as usize] += 1;
        }
    }
    assert!(seen.iter().all(|&times| times == 1), "{seen:?}");
    let listed: Vec<&NodeId> = map.counts_per_node().into_iter().map(|(node, _)| node).collect();
    assert!(listed.windows(2).all(|pair| pair[0] < pair[1]), "sorted, no repeats");
    assert!(map.epoch() >= EPOCH_INITIAL);
}

#[test]
fn initial_spreads_contiguous_ranges_over_sorted_nodes() {
    let map = PartitionMap::initial(count(64), &nodes(&["c", "a", "b"])).unwrap();
    assert_eq!(map.epoch(), EPOCH_INITIAL);
    assert_eq!(counts(&map), [("a", 22), ("b", 21), ("c", 21)]);
    let owner = |p| map.owner(partition(p, &map)).unwrap().as_str();
    assert_eq!(
        [owner(0), owner(21), owner(22), owner(42), owner(43), owner(63)],
        ["a", "a", "b", "b", "c", "c"]
    );
    let a: Vec<u32> = map.partitions_of(&node("a")).iter().map(|p| p.index()).collect();
    assert_eq!(a, (0..22).collect::<Vec<_>>());
    assert_sound(&map);
}

#[test]
fn initial_ignores_order_and_repeats() {
    let one = PartitionMap::initial(count(16), &nodes(&["n2", "n1", "n3", "n1"])).unwrap();
    let two = PartitionMap::initial(count(16), &nodes(&["n1", "n2", "n3"])).unwrap();
    assert_eq!(one, two);
    assert_eq!(counts(&one), [("n1", 6), ("n2", 5), ("n3", 5)]);
}

#[test]
fn initial_with_more_nodes_than_partitions_leaves_the_last_ones_out() {
    let map = PartitionMap::initial(count(2), &nodes(&["c", "b", "a"])).unwrap();
    assert_eq!(counts(&map), [("a", 1), ("b", 1)]);
    assert!(map.partitions_of(&node("c")).is_empty());
    let single = PartitionMap::initial(count(1), &nodes(&["solo"])).unwrap();
    assert_eq!(counts(&single), [("solo", 1)]);
}

#[test]
fn initial_refuses_no_nodes_and_too_many() {
    assert_eq!(PartitionMap::initial(count(16), &[]), Err(MapError::NoNodes));
    let many: Vec<NodeId> = (0..=NODE_COUNT_MAX).map(|i| node(&format!("n{i}"))).collect();
    assert_eq!(
        PartitionMap::initial(count(4096), &many),
        Err(MapError::TooManyNodes(NODE_COUNT_MAX + 1, NODE_COUNT_MAX))
    );
}

#[test]
fn every_partition_has_one_owner_in_random_maps() {
    let mut rng = Rng(1);
    for _ in 0..300 {
        assert_sound(&rng.map());
    }
}

#[test]
fn with_owner_moves_one_partition_and_bumps_the_epoch() {
    let map = PartitionMap::initial(count(4), &nodes(&["a", "b"])).unwrap();
    let moved = map.with_owner(partition(1, &map), &node("b")).unwrap();
    assert_eq!(moved.epoch(), map.epoch() + 1);
    assert_eq!(counts(&moved), [("a", 1), ("b", 3)]);
    assert_eq!(map.owner(partition(1, &map)).unwrap().as_str(), "a", "the old map is unchanged");
    // A new node joins the list; one that owns nothing more leaves it.
    let joined = moved.with_owner(partition(0, &map), &node("c")).unwrap();
    assert_eq!(counts(&joined), [("b", 3), ("c", 1)]);
    assert_eq!(joined.epoch(), 3);
    assert_sound(&joined);
    // Naming the current owner still makes a new epoch.
    let same = joined.with_owner(partition(0, &map), &node("c")).unwrap();
    assert_eq!((same.epoch(), counts(&same)), (4, counts(&joined)));
}

#[test]
fn with_owner_refuses_bad_partitions_a_spent_epoch_and_too_many_nodes() {
    let map = PartitionMap::initial(count(4), &nodes(&["a"])).unwrap();
    let foreign = PartitionId::new(4, count(8)).unwrap();
    assert_eq!(
        map.with_owner(foreign, &node("a")),
        Err(MapError::Partition(PartitionError::PartitionOutOfRange { index: 4, count: 4 }))
    );
    assert_eq!(map.owner(foreign), None);
    let spent = PartitionMap { epoch: u64::MAX, ..map };
    assert_eq!(spent.with_owner(partition(0, &spent), &node("a")), Err(MapError::EpochExhausted));
    let full: Vec<NodeId> = (0..NODE_COUNT_MAX).map(|i| node(&format!("n{i}"))).collect();
    let full = PartitionMap::initial(count(4096), &full).unwrap();
    assert_eq!(
        full.with_owner(partition(0, &full), &node("extra")),
        Err(MapError::TooManyNodes(NODE_COUNT_MAX + 1, NODE_COUNT_MAX))
    );
}

#[test]
fn queries_of_unknown_nodes_and_counts() {
    let map = PartitionMap::initial(count(16), &nodes(&["a", "b"])).unwrap();
    assert!(map.partitions_of(&node("zz")).is_empty());
    assert_eq!(map.expect_count(count(16)), Ok(()));
    assert_eq!(map.expect_count(count(64)), Err(MapError::CountMismatch(16, 64)));
}

/// `map` after running `moves` one by one, each checked against the map
/// it runs on.
fn apply(map: &PartitionMap, moves: &[Move]) -> PartitionMap {
    let mut map = map.clone();
    for step in moves {
        assert_eq!(map.owner(step.partition), Some(&step.from), "{step:?}");
        assert_ne!(step.from, step.to);
        map = map.with_owner(step.partition, &step.to).unwrap();
    }
    map
}

#[test]
fn a_fourth_node_takes_16_partitions_in_16_moves() {
    let map = PartitionMap::initial(count(64), &nodes(&["a", "b", "c"])).unwrap();
    let live = nodes(&["d", "c", "b", "a"]);
    let moves = plan_rebalance(&map, &live, Absent::Keep).unwrap();
    assert_eq!(moves.len(), 16);
    assert!(moves.iter().all(|step| step.to.as_str() == "d"));
    // Each gives up the top of its range: a 16..22, b 38..43, c 59..64.
    let moved: Vec<u32> = moves.iter().map(|step| step.partition.index()).collect();
    let expected: Vec<u32> = (16..22).chain(38..43).chain(59..64).collect();
    assert_eq!(moved, expected);
    let after = apply(&map, &moves);
    assert_eq!(counts(&after), [("a", 16), ("b", 16), ("c", 16), ("d", 16)]);
    assert_eq!(after.epoch(), map.epoch() + 16);
    assert_eq!(plan_rebalance(&after, &live, Absent::Keep).unwrap(), []);
}

#[test]
fn an_even_map_plans_no_moves() {
    for (p, names) in [(64, &["a", "b", "c"][..]), (16, &["x"]), (4, &["a", "b", "c", "d", "e"])] {
        let map = PartitionMap::initial(count(p), &nodes(names)).unwrap();
        let mut live = nodes(names);
        live.reverse();
        live.push(live[0].clone());
        assert_eq!(plan_rebalance(&map, &live, Absent::Keep).unwrap(), [], "{names:?}");
        assert_eq!(plan_rebalance(&map, &live, Absent::Evacuate).unwrap(), []);
    }
}

#[test]
fn absent_nodes_keep_their_partitions_unless_evacuated() {
    let four = nodes(&["a", "b", "c", "d"]);
    let map = PartitionMap::initial(count(64), &four).unwrap();
    let three = nodes(&["a", "b", "c"]);
    assert_eq!(plan_rebalance(&map, &three, Absent::Keep).unwrap(), []);
    let moves = plan_rebalance(&map, &three, Absent::Evacuate).unwrap();
    assert_eq!(moves.len(), 16);
    assert!(moves.iter().all(|step| step.from.as_str() == "d"));
    // 64 over 3: the tie at 16 each gives the extra partition to "a".
    assert_eq!(counts(&apply(&map, &moves)), [("a", 22), ("b", 21), ("c", 21)]);
}

#[test]
fn keep_spreads_only_what_the_listed_nodes_hold() {
    let base = PartitionMap::initial(count(16), &nodes(&["a"])).unwrap();
    let mut map = base.clone();
    for p in 10..14 {
        map = map.with_owner(partition(p, &base), &node("x")).unwrap();
    }
    for p in 14..16 {
        map = map.with_owner(partition(p, &base), &node("b")).unwrap();
    }
    assert_eq!(counts(&map), [("a", 10), ("b", 2), ("x", 4)]);
    let moves = plan_rebalance(&map, &nodes(&["a", "b"]), Absent::Keep).unwrap();
    assert_eq!(moves.len(), 4);
    assert_eq!(counts(&apply(&map, &moves)), [("a", 6), ("b", 6), ("x", 4)]);
}

#[test]
fn rebalance_refuses_an_empty_list() {
    let map = PartitionMap::initial(count(16), &nodes(&["a"])).unwrap();
    assert_eq!(plan_rebalance(&map, &[], Absent::Keep), Err(MapError::NoNodes));
}

/// The fewest moves any plan can make: with quota `q` (plus one for `r`
/// nodes), every listed node sheds what it holds above `q` except the `r`
/// largest keep one more, and every evacuated node sheds all.
fn fewest_moves(map: &PartitionMap, live: &[NodeId], absent: Absent) -> usize {
    let held: Vec<usize> = live.iter().map(|node| map.partitions_of(node).len()).collect();
    let leaving: usize = match absent {
        Absent::Keep => 0,
        Absent::Evacuate => map
            .counts_per_node()
            .into_iter()
            .filter(|(node, _)| !live.contains(node))
            .map(|(_, n)| n)
            .sum(),
    };
    let movable = held.iter().sum::<usize>() + leaving;
    let (q, r) = (movable / live.len(), movable % live.len());
    let over: usize = held.iter().map(|&n| n.saturating_sub(q)).sum();
    over - r.min(held.iter().filter(|&&n| n > q).count()) + leaving
}

#[test]
fn random_rebalances_are_even_minimal_and_deterministic() {
    let mut rng = Rng(7);
    for round in 0..300 {
        let map = rng.map();
        let mut live: Vec<NodeId> =
            map.counts_per_node().into_iter().map(|(n, _)| n.clone()).collect();
        live.retain(|_| rng.below(4) != 0);
        live.extend((0..rng.below(4)).map(|_| rng.node()));
        live.sort();
        live.dedup();
        if live.is_empty() {
            continue;
        }
        let absent = if round % 2 == 0 { Absent::Keep } else { Absent::Evacuate };
        let moves = plan_rebalance(&map, &live, absent).unwrap();
        assert_eq!(moves.len(), fewest_moves(&map, &live, absent), "round {round}");
        let after = apply(&map, &moves);
        assert_sound(&after);
        let spread: Vec<usize> = live.iter().map(|node| after.partitions_of(node).len()).collect();
        let (min, max) = (spread.iter().min().unwrap(), spread.iter().max().unwrap());
        assert!(max - min <= 1, "round {round}: {spread:?}");
        let mut shuffled = live.clone();
        shuffled.rotate_left(rng.below(live.len()));
        assert_eq!(plan_rebalance(&map, &shuffled, absent).unwrap(), moves);
        assert_eq!(plan_rebalance(&after, &live, absent).unwrap(), []);
    }
}
