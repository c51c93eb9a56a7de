//! Which node takes which partition of a dead node (pure): every
//! partition whose owner is not live goes to the live node holding fewest
//! partitions at that point (ties: the lower id), lowest partition first.
//! Every live node computes the same map from the same inputs; the one
//! whose compare-and-swap lands decides.
//!
//! Invariants: partitions of live owners keep their owner; the result is
//! a function of its inputs alone; `None` when nothing is to be taken (no
//! dead owner) or nobody can take it (no live node).

use crate::cluster::identity::NodeId;
use crate::cluster::map::{MapError, PartitionMap};

/// The map with every partition of a dead owner given to a live node, or
/// `None` when there is none to give or nobody to give it to.
pub fn take_over(map: &PartitionMap, live: &[NodeId]) -> Result<Option<PartitionMap>, MapError> {
    let mut live: Vec<&NodeId> = live.iter().collect();
    live.sort_unstable();
    live.dedup();
    if live.is_empty() {
        return Ok(None);
    }
    let mut counts: Vec<usize> = live.iter().map(|node| map.partitions_of(node).len()).collect();
    let orphans: Vec<_> = map
        .partition_count()
        .partitions()
        .filter(|&partition| map.owner(partition).is_some_and(|owner| !live.contains(&owner)))
        .collect();
    if orphans.is_empty() {
        return Ok(None);
    }
    let mut taken = map.clone();
    for partition in orphans {
        let (index, _) =
            counts.iter().enumerate().min_by_key(|&(i, &count)| (count, i)).expect("live");
        counts[index] += 1;
        taken = taken.with_owner(partition, live[index])?;
    }
    Ok(Some(taken))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::partition::PartitionCount;

    fn ids(names: &[&str]) -> Vec<NodeId> {
        names.iter().map(|name| NodeId::new(name).unwrap()).collect()
    }

    #[test]
    fn a_dead_nodes_partitions_are_spread_over_the_live_ones() {
        let map = PartitionMap::initial(PartitionCount::new(16).unwrap(), &ids(&["a", "b", "c"]))
            .unwrap();
        let live = ids(&["a", "c"]);
        let taken = take_over(&map, &live).unwrap().expect("b's partitions move");
        assert!(taken.partitions_of(&ids(&["b"])[0]).is_empty());
        for partition in map.partition_count().partitions() {
            let before = map.owner(partition).unwrap();
            if before.as_str() != "b" {
                assert_eq!(taken.owner(partition), Some(before), "live owners keep theirs");
            }
        }
        let counts: Vec<usize> = taken.counts_per_node().iter().map(|(_, c)| *c).collect();
        assert_eq!(counts, vec![8, 8]);
        assert!(taken.epoch() > map.epoch());
        assert_eq!(take_over(&map, &live).unwrap(), Some(taken.clone()), "same inputs, same map");
        assert_eq!(take_over(&taken, &live).unwrap(), None, "nothing left to take");
    }

    #[test]
    fn nobody_to_take_or_nothing_to_take_is_none() {
        let map =
            PartitionMap::initial(PartitionCount::new(8).unwrap(), &ids(&["a", "b"])).unwrap();
        assert_eq!(take_over(&map, &[]).unwrap(), None);
        assert_eq!(take_over(&map, &ids(&["a", "b", "z"])).unwrap(), None);
        let all_to_z = take_over(&map, &ids(&["z"])).unwrap().unwrap();
        assert_eq!(all_to_z.partitions_of(&ids(&["z"])[0]).len(), 8);
    }
}
