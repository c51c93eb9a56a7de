//! Where a `messaging` run's accounts live and connect: one server, or a
//! cluster's nodes (`--cluster-map`, `--placement`).
//!
//! In cluster mode every account is owned by one node (by its UUID's
//! partition); the map file is what `switchboard cluster haproxy-map`
//! prints, one `hex-prefix client-address` line per prefix, so the load
//! generator knows each account's owner without asking. The nodes are
//! numbered in the order the map first names them (partition order).
//! Pair `i`'s accounts are placed by node `o = i mod N` (so every placement
//! spreads the pairs evenly over the nodes):
//!
//! - `local`: sender and recipient owned by `o`, both connected to `o`;
//! - `cross`: sender owned by and connected to `o`, recipient owned by and
//!   connected to `o + 1`: every send is a call to another node, and so is
//!   the delivery receipt that goes back to the sender;
//! - `edge`: sender and recipient owned by `o` and both connected to
//!   `o + 1`, which owns neither and forwards both connections whole to `o`.
//!
//! Registration lets the server choose each UUID, so accounts are
//! registered (through the nodes in turn) until every node owns as many as
//! the placement needs; the others are left unused.

use crate::accounts::{register_fresh, Credentials};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::Path;

/// Where a pair's accounts live and connect (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    Local,
    Cross,
    Edge,
}

/// A cluster's ownership map: the owner node of each UUID hex prefix.
#[derive(Debug)]
pub struct ClusterMap {
    /// Hex digits of every prefix (1 to 3).
    prefix_len: usize,
    /// Prefix to an index into `nodes`.
    owners: HashMap<String, usize>,
    /// The nodes' client addresses, in the order the map first names them.
    pub nodes: Vec<SocketAddr>,
}

impl ClusterMap {
    /// Parses `switchboard cluster haproxy-map` output; every address must
    /// be a loopback `ip:port` and every prefix of one length.
    pub fn parse(text: &str) -> io::Result<Self> {
        let mut map = Self { prefix_len: 0, owners: HashMap::new(), nodes: Vec::new() };
        for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let bad =
                |why: &str| io::Error::other(format!("cluster map line {}: {why}", number + 1));
            let mut words = line.split_whitespace();
            let (Some(prefix), Some(addr), None) = (words.next(), words.next(), words.next())
            else {
                return Err(bad("is not `prefix address`"));
            };
            let addr: SocketAddr = addr.parse().map_err(|_| bad("the address is not ip:port"))?;
            if !addr.ip().is_loopback() {
                return Err(bad("loadgen drives loopback servers only"));
            }
            let len_ok = map.prefix_len == 0 || prefix.len() == map.prefix_len;
            if !len_ok || prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad("the prefix is not hex digits of the others' length"));
            }
            map.prefix_len = prefix.len();
            let node = match map.nodes.iter().position(|known| *known == addr) {
                Some(node) => node,
                None => {
                    map.nodes.push(addr);
                    map.nodes.len() - 1
                }
            };
            map.owners.insert(prefix.to_ascii_lowercase(), node);
        }
        if map.nodes.is_empty() || map.owners.len() != 1 << (4 * map.prefix_len) {
            return Err(io::Error::other("the cluster map does not name every hex prefix once"));
        }
        Ok(map)
    }

    /// Reads and parses the map file at `path`.
    pub fn load(path: &Path) -> io::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
        Self::parse(&text)
    }

    /// The index of the node owning account `uuid` (hyphenated text).
    pub fn owner(&self, uuid: &str) -> Option<usize> {
        let prefix = uuid.get(..self.prefix_len)?.to_ascii_lowercase();
        self.owners.get(&prefix).copied()
    }
}

/// A messaging run against a cluster: its map and how pairs are placed.
#[derive(Debug)]
pub struct ClusterTarget {
    pub map: ClusterMap,
    pub placement: Placement,
}

/// The cluster target of `--cluster-map` and `--placement` (`local` by
/// default), or none without a map.
pub fn target(
    map: Option<&Path>,
    placement: Option<Placement>,
) -> io::Result<Option<ClusterTarget>> {
    match (map, placement) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(io::Error::other("--placement needs --cluster-map")),
        (Some(path), placement) => {
            let map = ClusterMap::load(path)?;
            let placement = placement.unwrap_or(Placement::Local);
            if placement != Placement::Local && map.nodes.len() < 2 {
                return Err(io::Error::other(format!("{placement:?} placement needs 2 nodes")));
            }
            Ok(Some(ClusterTarget { map, placement }))
        }
    }
}

/// One sender/recipient pair and the server each connects to.
#[derive(Debug, Clone)]
pub struct Pair {
    pub sender: Credentials,
    pub recipient: Credentials,
    pub sender_server: SocketAddr,
    pub recipient_server: SocketAddr,
}

/// Node indexes of one pair: owners of its two accounts, and where each connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Roles {
    sender_owner: usize,
    recipient_owner: usize,
    sender_conn: usize,
    recipient_conn: usize,
}

/// The roles of pair `index` over `nodes` nodes (see the module doc).
fn roles(placement: Placement, index: usize, nodes: usize) -> Roles {
    let (home, next) = (index % nodes, (index + 1) % nodes);
    match placement {
        Placement::Local => Roles {
            sender_owner: home,
            recipient_owner: home,
            sender_conn: home,
            recipient_conn: home,
        },
        Placement::Cross => Roles {
            sender_owner: home,
            recipient_owner: next,
            sender_conn: home,
            recipient_conn: next,
        },
        Placement::Edge => Roles {
            sender_owner: home,
            recipient_owner: home,
            sender_conn: next,
            recipient_conn: next,
        },
    }
}

/// Most registration rounds before giving up (the map and the cluster disagree).
const ROUNDS_MAX: usize = 64;

/// Registers accounts until `pairs` pairs can be placed on `target`.
pub async fn register_placed(target: &ClusterTarget, pairs: usize) -> io::Result<Vec<Pair>> {
    let nodes = target.map.nodes.len();
    let all: Vec<Roles> = (0..pairs).map(|i| roles(target.placement, i, nodes)).collect();
    let mut needed = vec![0usize; nodes];
    for r in &all {
        needed[r.sender_owner] += 1;
        needed[r.recipient_owner] += 1;
    }
    let mut pools = fill_pools(&target.map, &needed).await?;
    let addr = |node: usize| target.map.nodes[node];
    Ok(all
        .iter()
        .map(|r| Pair {
            sender: pools[r.sender_owner].pop().expect("a pool filled to need"),
            recipient: pools[r.recipient_owner].pop().expect("a pool filled to need"),
            sender_server: addr(r.sender_conn),
            recipient_server: addr(r.recipient_conn),
        })
        .collect())
}

/// Registers accounts through the nodes in turn until node `n` owns
/// `needed[n]` of them: the accounts of each node.
async fn fill_pools(map: &ClusterMap, needed: &[usize]) -> io::Result<Vec<Vec<Credentials>>> {
    let mut pools: Vec<Vec<Credentials>> = vec![Vec::new(); needed.len()];
    for round in 0..ROUNDS_MAX {
        let deficit = (0..needed.len()).map(|n| needed[n] - pools[n].len()).max().unwrap_or(0);
        if deficit == 0 {
            return Ok(pools);
        }
        // Enough that each node's deficit is met in one round on average.
        let count = deficit * needed.len() + 4;
        let via = map.nodes[round % map.nodes.len()];
        for account in register_fresh(via, count, 16).await? {
            let owner = map.owner(&account.uuid).ok_or_else(|| {
                io::Error::other(format!("{} matches no prefix of the map", account.uuid))
            })?;
            if pools[owner].len() < needed[owner] {
                pools[owner].push(account);
            }
        }
    }
    Err(io::Error::other(format!(
        "{ROUNDS_MAX} rounds of registration did not place every account: is the map current?"
    )))
}

/// The pairs of a run on one server: `accounts` two by two.
pub fn single_server(server: SocketAddr, accounts: Vec<Credentials>) -> Vec<Pair> {
    accounts
        .chunks(2)
        .map(|two| Pair {
            sender: two[0].clone(),
            recipient: two[1].clone(),
            sender_server: server,
            recipient_server: server,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-prefix map: 0-5 on :1, 6-a on :2, b-f on :3.
    fn map_text() -> String {
        (0..16u32)
            .map(|p| format!("{p:x} 127.0.0.1:{}\n", 1 + (p >= 6) as u16 + (p >= 11) as u16))
            .collect()
    }

    #[test]
    fn owners_follow_the_prefix_and_nodes_the_map_order() {
        let map = ClusterMap::parse(&map_text()).unwrap();
        let ports: Vec<u16> = map.nodes.iter().map(|a| a.port()).collect();
        assert_eq!(ports, [1, 2, 3]);
        assert_eq!(map.owner("5fffffff-0000-4000-8000-000000000000"), Some(0));
        assert_eq!(map.owner("A0000000-0000-4000-8000-000000000000"), Some(1));
        assert_eq!(map.owner("f0000000-0000-4000-8000-000000000000"), Some(2));
    }

    #[test]
    fn a_map_with_holes_or_remote_nodes_is_refused() {
        let holes: String = map_text().lines().skip(1).map(|l| format!("{l}\n")).collect();
        assert!(ClusterMap::parse(&holes).is_err());
        assert!(ClusterMap::parse(&map_text().replace("127.0.0.1:3", "10.0.0.1:3")).is_err());
        assert!(ClusterMap::parse("0 127.0.0.1:1 extra\n").is_err());
    }

    #[test]
    fn placements_spread_pairs_and_keep_their_promise() {
        for index in 0..6 {
            let local = roles(Placement::Local, index, 3);
            assert_eq!(local.sender_owner, index % 3);
            assert!([local.recipient_owner, local.sender_conn, local.recipient_conn]
                .iter()
                .all(|&n| n == local.sender_owner));
            let cross = roles(Placement::Cross, index, 3);
            assert_ne!(cross.sender_owner, cross.recipient_owner);
            assert_eq!(
                (cross.sender_conn, cross.recipient_conn),
                (cross.sender_owner, cross.recipient_owner)
            );
            let edge = roles(Placement::Edge, index, 3);
            assert_eq!(edge.sender_owner, edge.recipient_owner);
            assert_eq!(edge.sender_conn, edge.recipient_conn);
            assert_ne!(edge.sender_conn, edge.sender_owner);
        }
    }
}
