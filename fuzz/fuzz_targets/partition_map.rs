//! Any bytes as an encoded partition map (the value of the map's KV key):
//! decoding never panics, and what decodes is a sound map whose encoding is
//! exactly the input (the encoding is unique), with one owner per partition.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard::cluster::map::PartitionMap;

fuzz_target!(|data: &[u8]| {
    let Ok(map) = PartitionMap::decode(data) else { return };
    assert_eq!(map.encode(), data);
    assert_eq!(PartitionMap::decode(&map.encode()).as_ref(), Ok(&map));
    let count = map.partition_count();
    let owned: usize = map.counts_per_node().iter().map(|&(_, n)| n).sum();
    assert_eq!(owned, count.get() as usize);
    for (node, n) in map.counts_per_node() {
        let owned = map.partitions_of(node);
        assert_eq!(owned.len(), n);
        assert!(owned.iter().all(|&partition| map.owner(partition) == Some(node)));
    }
});
