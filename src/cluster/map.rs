//! The partition map: which node owns each partition, in which epoch; its
//! binary encoding; the even spread and the fewest moves that reach it.
//!
//! The map lives in a JetStream KV bucket and changes only by
//! compare-and-swap on the key's revision; the caller does the swap, this
//! module only computes values. Every change ([`PartitionMap::with_owner`])
//! yields epoch + 1, and the epoch travels inside the value so a node can
//! tell a stale map from a new one without the bucket.
//!
//! Invariants of a [`PartitionMap`] (held by every constructor, [`decode`]
//! included, so a map from the network is as sound as one built here):
//! - exactly one owner per partition, for `P` partitions;
//! - the node list is sorted, without repeats, at most [`NODE_COUNT_MAX`]
//!   long, and holds exactly the nodes that own at least one partition (so
//!   the encoding of a map is unique: `encode(decode(b)) == b`);
//! - the epoch is at least 1 (a new cluster starts at [`EPOCH_INITIAL`]).
//!
//! Encoding, format version 1, integers big-endian:
//! `version u8 | epoch u64 | P u16 | N u16 | N x (len u8, node id) | P x owner index u16`.
//! [`decode`] never panics, allocates no more than its input's length
//! allows, and refuses anything but the one encoding of a sound map.
//!
//! [`decode`]: PartitionMap::decode

pub use super::identity::{check_name, NameError, NodeId, NODE_ID_LEN_MAX};
use super::partition::{PartitionCount, PartitionError, PartitionId, PARTITION_COUNT_MAX};

/// The most nodes a map may name.
pub const NODE_COUNT_MAX: usize = 1024;

/// The epoch of a cluster's first map; 0 means "no map yet" and never occurs.
pub const EPOCH_INITIAL: u64 = 1;

/// The format version written in the first byte of an encoded map.
pub const MAP_FORMAT_VERSION: u8 = 1;

/// Bytes before the node list: version, epoch, `P`, `N`.
const HEADER_BYTES: usize = 1 + 8 + 2 + 2;

/// The longest encoded map: [`decode`](PartitionMap::decode) refuses longer input.
pub const MAP_ENCODED_BYTES_MAX: usize =
    HEADER_BYTES + NODE_COUNT_MAX * (1 + NODE_ID_LEN_MAX) + 2 * PARTITION_COUNT_MAX as usize;

const _: () = assert!(NODE_ID_LEN_MAX <= u8::MAX as usize);
const _: () = assert!(NODE_COUNT_MAX <= u16::MAX as usize);
// Well under NATS's default 1 MiB limit on a KV value.
const _: () = assert!(MAP_ENCODED_BYTES_MAX < 1 << 20);

/// Why a map could not be built, changed, planned or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The input ended inside field `.0`, at byte `.1`.
    #[error("encoded map truncated in {0} at byte {1}")]
    Truncated(&'static str, usize),
    /// The input's length `.0` is over [`MAP_ENCODED_BYTES_MAX`].
    #[error("encoded map of {0} bytes is longer than {MAP_ENCODED_BYTES_MAX}")]
    TooLong(usize),
    /// The first byte `.0` is not [`MAP_FORMAT_VERSION`].
    #[error("map format version {0} is not supported (this build reads {MAP_FORMAT_VERSION})")]
    UnsupportedVersion(u8),
    /// The epoch is 0.
    #[error("map epoch 0 is not a map")]
    ZeroEpoch,
    /// The epoch cannot grow any more.
    #[error("map epoch is at its maximum")]
    EpochExhausted,
    /// A bad partition count or partition.
    #[error(transparent)]
    Partition(#[from] PartitionError),
    /// The map has `.0` partitions where this node was made for `.1`.
    #[error("map has {0} partitions but this node was made for {1}")]
    CountMismatch(u32, u32),
    /// No node to own the partitions.
    #[error("no nodes")]
    NoNodes,
    /// `.0` nodes, more than the limit `.1` ([`NODE_COUNT_MAX`], or `P` when encoded).
    #[error("{0} nodes, more than {1}")]
    TooManyNodes(usize, usize),
    /// Node `.0` of the encoded node list is not a valid node id.
    #[error("node {0} of the map: {1}")]
    BadNodeId(usize, NameError),
    /// Node `.0` of the encoded node list is not after the one before it.
    #[error("node {0} of the map is out of order or repeated")]
    NodesNotSorted(usize),
    /// Partition `.0` has owner index `.1`, past the encoded node list.
    #[error("partition {0} has owner index {1}, past the node list")]
    OwnerOutOfRange(u32, u16),
    /// Node `.0` of the encoded list owns no partition.
    #[error("node {0} is listed but owns no partition")]
    NodeWithoutPartitions(NodeId),
    /// `.0` bytes follow the last owner.
    #[error("{0} bytes after the end of the map")]
    TrailingBytes(usize),
}

/// One step of a rebalance: `partition` goes from `from` to `to`. Run it
/// only while the map still says `from` owns `partition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// The partition that moves.
    pub partition: PartitionId,
    /// Its owner before the move.
    pub from: NodeId,
    /// Its owner after.
    pub to: NodeId,
}

/// What [`plan_rebalance`] does with partitions of nodes not in its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absent {
    /// Leave them where they are (the node may be down: without replication
    /// its data is on its disk only, so nobody else can take its partitions).
    Keep,
    /// Move them to the listed nodes (the node is alive and being drained).
    Evacuate,
}

/// The owner of every partition, in one epoch. See the module doc for its
/// invariants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMap {
    /// Bumped by every change; the value's own record of its KV revision.
    epoch: u64,
    /// `P`, fixed for the cluster's life.
    count: PartitionCount,
    /// The owning nodes, sorted, each owning at least one partition.
    nodes: Vec<NodeId>,
    /// Per partition, the index of its owner in `nodes`.
    owners: Vec<u16>,
}

impl PartitionMap {
    /// A new cluster's map at [`EPOCH_INITIAL`]: `nodes` (order and repeats
    /// do not matter) sorted by id, each given one contiguous range of
    /// partitions, the first `P mod N` one partition more than the rest.
    pub fn initial(count: PartitionCount, nodes: &[NodeId]) -> Result<Self, MapError> {
        let sorted = sorted_distinct(nodes)?;
        let (each, extra) =
            (count.get() as usize / sorted.len(), count.get() as usize % sorted.len());
        let mut owners = Vec::with_capacity(count.get() as usize);
        for (rank, node) in sorted.iter().enumerate() {
            let take = each + usize::from(rank < extra);
            owners.extend(std::iter::repeat_n(*node, take));
        }
        Self::from_owners(EPOCH_INITIAL, count, &owners)
    }

    /// The map from the owner of each partition, in its canonical form.
    fn from_owners(
        epoch: u64,
        count: PartitionCount,
        owners: &[&NodeId],
    ) -> Result<Self, MapError> {
        assert_eq!(owners.len(), count.get() as usize, "one owner per partition");
        assert!(epoch >= EPOCH_INITIAL);
        let mut nodes: Vec<&NodeId> = owners.to_vec();
        nodes.sort_unstable();
        nodes.dedup();
        if nodes.len() > NODE_COUNT_MAX {
            return Err(MapError::TooManyNodes(nodes.len(), NODE_COUNT_MAX));
        }
        let index = |node: &&NodeId| nodes.binary_search(node).expect("owner is listed") as u16;
        let owners = owners.iter().map(index).collect();
        let nodes = nodes.into_iter().cloned().collect();
        Ok(Self { epoch, count, nodes, owners })
    }

    /// The map's epoch (at least [`EPOCH_INITIAL`]).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// `P`.
    pub fn partition_count(&self) -> PartitionCount {
        self.count
    }

    /// Refuses a map made for another `P` than `expected` (this node's).
    pub fn expect_count(&self, expected: PartitionCount) -> Result<(), MapError> {
        if self.count != expected {
            return Err(MapError::CountMismatch(self.count.get(), expected.get()));
        }
        Ok(())
    }

    /// The owner of `partition`; `None` only when it is not below `P` (a
    /// partition of another count: see [`expect_count`](Self::expect_count)).
    pub fn owner(&self, partition: PartitionId) -> Option<&NodeId> {
        let index = *self.owners.get(partition.index() as usize)?;
        Some(&self.nodes[usize::from(index)])
    }

    /// The partitions `node` owns, ascending (empty when it owns none).
    pub fn partitions_of(&self, node: &NodeId) -> Vec<PartitionId> {
        let Ok(wanted) = self.nodes.binary_search(node) else { return Vec::new() };
        let owned = self.count.partitions().zip(&self.owners);
        owned.filter(|(_, &index)| usize::from(index) == wanted).map(|(p, _)| p).collect()
    }

    /// How many partitions each owning node has, sorted by node id.
    pub fn counts_per_node(&self) -> Vec<(&NodeId, usize)> {
        let mut counts = vec![0; self.nodes.len()];
        self.owners.iter().for_each(|&index| counts[usize::from(index)] += 1);
        self.nodes.iter().zip(counts).collect()
    }

    /// This map with `partition` owned by `node`, at epoch + 1 (always, even
    /// when `node` already owns it).
    pub fn with_owner(&self, partition: PartitionId, node: &NodeId) -> Result<Self, MapError> {
        let index = PartitionId::new(partition.index(), self.count)?.index() as usize;
        let epoch = self.epoch.checked_add(1).ok_or(MapError::EpochExhausted)?;
        let mut owners: Vec<&NodeId> =
            self.owners.iter().map(|&i| &self.nodes[usize::from(i)]).collect();
        owners[index] = node;
        Self::from_owners(epoch, self.count, &owners)
    }

    /// The map's one encoding (see the module doc).
    pub fn encode(&self) -> Vec<u8> {
        let names: usize = self.nodes.iter().map(|n| 1 + n.as_str().len()).sum();
        let mut out = Vec::with_capacity(HEADER_BYTES + names + 2 * self.owners.len());
        out.push(MAP_FORMAT_VERSION);
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&(self.count.get() as u16).to_be_bytes());
        out.extend_from_slice(&(self.nodes.len() as u16).to_be_bytes());
        for node in &self.nodes {
            out.push(node.as_str().len() as u8);
            out.extend_from_slice(node.as_str().as_bytes());
        }
        self.owners.iter().for_each(|index| out.extend_from_slice(&index.to_be_bytes()));
        assert!(out.len() <= MAP_ENCODED_BYTES_MAX);
        out
    }

    /// Reads an encoded map, refusing anything but a sound map's encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, MapError> {
        if bytes.len() > MAP_ENCODED_BYTES_MAX {
            return Err(MapError::TooLong(bytes.len()));
        }
        let mut reader = Reader { bytes, at: 0 };
        let version = reader.take(1, "version")?[0];
        if version != MAP_FORMAT_VERSION {
            return Err(MapError::UnsupportedVersion(version));
        }
        let epoch = u64::from_be_bytes(reader.array("epoch")?);
        if epoch == 0 {
            return Err(MapError::ZeroEpoch);
        }
        let count = PartitionCount::new(u32::from(u16::from_be_bytes(reader.array("P")?)))?;
        let node_count = usize::from(u16::from_be_bytes(reader.array("N")?));
        let max = NODE_COUNT_MAX.min(count.get() as usize);
        if node_count > max {
            return Err(MapError::TooManyNodes(node_count, max));
        }
        // Each node takes at least 2 bytes and each owner 2: check before allocating.
        if bytes.len() - reader.at < 2 * node_count + 2 * count.get() as usize {
            return Err(MapError::Truncated("node list", reader.at));
        }
        let nodes = decode_nodes(&mut reader, node_count)?;
        let owners = decode_owners(&mut reader, count, node_count)?;
        if reader.at < bytes.len() {
            return Err(MapError::TrailingBytes(bytes.len() - reader.at));
        }
        let map = Self { epoch, count, nodes, owners };
        match map.counts_per_node().into_iter().find(|&(_, owned)| owned == 0) {
            Some((node, _)) => Err(MapError::NodeWithoutPartitions(node.clone())),
            None => Ok(map),
        }
    }
}

/// The fewest moves that leave every node of `live_nodes` (order and
/// repeats do not matter) with `m / n` or `m / n + 1` of the `m` partitions
/// they share, `n` being their number: an even spread, max - min <= 1.
///
/// The shared partitions are those the listed nodes own, plus, with
/// [`Absent::Evacuate`], those of unlisted owners; with [`Absent::Keep`]
/// unlisted owners keep theirs and are not counted. The extra partitions of
/// `m mod n` stay with the nodes holding most (ties: the lower id), each node
/// over its quota gives up its highest partitions, and the nodes under quota
/// take them in id order, lowest partition first. So a map already even
/// yields no moves, and the plan is a function of its inputs alone. Moves are
/// sorted by partition; run each with [`PartitionMap::with_owner`].
pub fn plan_rebalance(
    map: &PartitionMap,
    live_nodes: &[NodeId],
    absent: Absent,
) -> Result<Vec<Move>, MapError> {
    let targets = sorted_distinct(live_nodes)?;
    // The listed nodes first (where `quotas` looks), then those leaving.
    let mut holdings: Vec<(&NodeId, Vec<PartitionId>)> =
        targets.iter().map(|node| (*node, map.partitions_of(node))).collect();
    if absent == Absent::Evacuate {
        let leaving = map.nodes.iter().filter(|node| targets.binary_search(node).is_err());
        holdings.extend(leaving.map(|node| (node, map.partitions_of(node))));
    }
    let quotas = quotas(&holdings, targets.len());
    let mut given: Vec<(PartitionId, &NodeId)> = Vec::new();
    for ((node, held), &quota) in holdings.iter().zip(&quotas) {
        given.extend(held.iter().skip(quota).map(|&partition| (partition, *node)));
    }
    given.sort_unstable();
    let takers = holdings.iter().zip(&quotas).flat_map(|((node, held), &quota)| {
        std::iter::repeat_n(*node, quota.saturating_sub(held.len()))
    });
    let takers: Vec<&NodeId> = takers.collect();
    assert_eq!(given.len(), takers.len(), "partitions given equal partitions taken");
    let moves = given.into_iter().zip(takers);
    Ok(moves
        .map(|((partition, from), to)| Move { partition, from: from.clone(), to: to.clone() })
        .collect())
}

/// Each holding's quota: the first `target_count` share all partitions evenly,
/// the extra ones to those holding most (ties: the lower id); the rest get 0.
fn quotas(holdings: &[(&NodeId, Vec<PartitionId>)], target_count: usize) -> Vec<usize> {
    let movable: usize = holdings.iter().map(|(_, held)| held.len()).sum();
    let (each, extra) = (movable / target_count, movable % target_count);
    let mut by_size: Vec<usize> = (0..target_count).collect();
    by_size.sort_unstable_by_key(|&i| (std::cmp::Reverse(holdings[i].1.len()), holdings[i].0));
    let mut quotas = vec![0; holdings.len()];
    for (rank, &i) in by_size.iter().enumerate() {
        quotas[i] = each + usize::from(rank < extra);
    }
    quotas
}

/// A cursor over an encoded map.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// The next `len` bytes of field `field`.
    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], MapError> {
        let taken = self.bytes.get(self.at..).and_then(|rest| rest.get(..len));
        let taken = taken.ok_or(MapError::Truncated(field, self.at))?;
        self.at += len;
        Ok(taken)
    }

    /// The next `N` bytes as an array.
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], MapError> {
        let taken = self.take(N, field)?;
        Ok(<[u8; N]>::try_from(taken).expect("take returns N bytes"))
    }
}

/// `node_count` length-prefixed node ids, each valid and after the one before.
fn decode_nodes(reader: &mut Reader<'_>, node_count: usize) -> Result<Vec<NodeId>, MapError> {
    let mut nodes: Vec<NodeId> = Vec::with_capacity(node_count);
    for index in 0..node_count {
        let len = usize::from(reader.take(1, "node id length")?[0]);
        let name = reader.take(len, "node id")?;
        // check_name admits ASCII only, so the text is the bytes themselves.
        let checked = check_name(name).and_then(|()| NodeId::new(&String::from_utf8_lossy(name)));
        let node = checked.map_err(|source| MapError::BadNodeId(index, source))?;
        if nodes.last().is_some_and(|last| *last >= node) {
            return Err(MapError::NodesNotSorted(index));
        }
        nodes.push(node);
    }
    Ok(nodes)
}

/// One owner index per partition, each within the node list.
fn decode_owners(
    reader: &mut Reader<'_>,
    count: PartitionCount,
    node_count: usize,
) -> Result<Vec<u16>, MapError> {
    let mut owners = Vec::with_capacity(count.get() as usize);
    for partition in 0..count.get() {
        let index = u16::from_be_bytes(reader.array("owner")?);
        if usize::from(index) >= node_count {
            return Err(MapError::OwnerOutOfRange(partition, index));
        }
        owners.push(index);
    }
    Ok(owners)
}

/// `nodes` sorted without repeats, refused when empty or over the limit.
fn sorted_distinct(nodes: &[NodeId]) -> Result<Vec<&NodeId>, MapError> {
    let mut sorted: Vec<&NodeId> = nodes.iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    match sorted.len() {
        0 => Err(MapError::NoNodes),
        n if n > NODE_COUNT_MAX => Err(MapError::TooManyNodes(n, NODE_COUNT_MAX)),
        _ => Ok(sorted),
    }
}

#[cfg(test)]
#[path = "map_tests.rs"]
mod tests;
