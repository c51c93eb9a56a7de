//! One shard's [`ClusterLink`]: the newest partition map (decoded once per
//! epoch, from the cluster thread's watch), where each partition is served,
//! calls to other nodes over NATS request/reply in the `wire` encoding, and
//! the other nodes' internal addresses (for forwarded connections).
//!
//! Invariants: a shard routes by the newest map the watch has shown it, and
//! its epoch never goes backwards; a call to another node carries this
//! map's epoch and a request id unique to this node's run; an answer that
//! does not decode, names another request or comes back "busy" (empty) is
//! [`CallError::NodeUnavailable`], never a guessed outcome.

use super::identity::NodeId;
use super::map::PartitionMap;
use super::nats::handle::MapWatch;
use super::node::{call_subject, Node};
use super::wire::{self, Answer};
use crate::shard::mesh::CallError;
use crate::shard::msg::{Call, Outcome};
use crate::shard::place::{ClusterLink, LocalFuture, Place, RemoteError, UnitGuard};
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the other nodes' internal addresses are used before they are
/// read again, ms.
const PEERS_FRESH_MS: u64 = 2_000;

/// Least time between two reads for a node the last read did not name, ms.
const PEERS_MISS_MS: u64 = 100;

/// How often [`ClusterLink::wait_for_epoch`] looks at the watch, ms.
const EPOCH_POLL_MS: u64 = 5;

/// The map as one shard routes by it.
struct Routes {
    /// The map's epoch (0: none yet).
    epoch: u64,
    /// Per partition: where it is served.
    places: Vec<Place>,
}

/// A shard's view of the cluster.
pub struct ShardLink {
    node: Arc<Node>,
    shard_count: usize,
    watch: RefCell<MapWatch>,
    routes: RefCell<Rc<Routes>>,
    /// The high 64 bits of every request id: random per shard and run.
    request_prefix: u64,
    next_request: Cell<u64>,
    /// Internal addresses of the other nodes, as last read, and when.
    peers: RefCell<(Option<Instant>, HashMap<String, SocketAddr>)>,
}

impl ShardLink {
    /// The link of one of `shard_count` shards of `node`.
    pub fn new(node: Arc<Node>, shard_count: usize) -> Self {
        let watch = node.nats.watch_map();
        let mut prefix = [0u8; 8];
        getrandom::fill(&mut prefix).expect("random bytes");
        let empty =
            Routes { epoch: 0, places: vec![Place::Unowned; node.partitions.get() as usize] };
        let link = Self {
            node,
            shard_count,
            watch: RefCell::new(watch),
            routes: RefCell::new(Rc::new(empty)),
            request_prefix: u64::from_be_bytes(prefix),
            next_request: Cell::new(0),
            peers: RefCell::new((None, HashMap::new())),
        };
        link.refresh(true);
        link
    }

    /// Takes a newer map from the watch, if one arrived (or `always`).
    fn refresh(&self, always: bool) {
        let mut watch = self.watch.borrow_mut();
        if !always && !watch.has_changed() {
            return;
        }
        let Some(version) = watch.current() else { return };
        let map = match PartitionMap::decode(&version.bytes) {
            Ok(map) if map.expect_count(self.node.partitions).is_ok() => map,
            Ok(_) | Err(_) => {
                tracing::error!(revision = version.revision, "a map this node cannot use: ignored");
                return;
            }
        };
        if map.epoch() <= self.routes.borrow().epoch {
            return;
        }
        *self.routes.borrow_mut() = Rc::new(self.routes_of(&map));
    }

    fn routes_of(&self, map: &PartitionMap) -> Routes {
        let mut names: HashMap<&NodeId, Rc<str>> = HashMap::new();
        let places = map
            .partition_count()
            .partitions()
            .map(|partition| match map.owner(partition) {
                Some(owner) if *owner == self.node.id => {
                    Place::Shard(partition.index() as usize % self.shard_count)
                }
                Some(owner) => {
                    Place::Node(names.entry(owner).or_insert_with(|| owner.as_str().into()).clone())
                }
                None => Place::Unowned,
            })
            .collect();
        Routes { epoch: map.epoch(), places }
    }

    fn request_id(&self) -> u128 {
        let counter = self.next_request.get();
        self.next_request.set(counter.wrapping_add(1));
        u128::from(self.request_prefix) << 64 | u128::from(counter)
    }

    async fn ask_node(&self, node: Rc<str>, call: Call) -> Result<Outcome, RemoteError> {
        self.ask(&node, call).await
    }

    async fn ask(&self, node: &str, call: Call) -> Result<Outcome, RemoteError> {
        let unavailable = || RemoteError::Unavailable(CallError::NodeUnavailable);
        let epoch = self.epoch().max(1);
        let request_id = self.request_id();
        let payload = Bytes::from(wire::encode_call(epoch, request_id, &call));
        let subject = call_subject(&self.node.config.name, node);
        let reply = self.node.nats.request(&subject, payload).await.map_err(|_| unavailable())?;
        let (header, answer) = wire::decode_answer(&reply).map_err(|_| unavailable())?;
        if header.request_id != request_id {
            return Err(unavailable());
        }
        match answer {
            Answer::Done(outcome) => Ok(outcome),
            Answer::WrongOwner { current_epoch } => {
                Err(RemoteError::WrongOwner { epoch: current_epoch, call: Box::new(call) })
            }
            Answer::Unavailable => Err(unavailable()),
        }
    }

    /// `node`'s internal address from the membership bucket, read again
    /// when the copy here is older than [`PEERS_FRESH_MS`] (a restarted node
    /// has new ports) or does not name `node` (it joined since; at most one
    /// read per [`PEERS_MISS_MS`] for a node still missing).
    async fn lookup_peer(&self, node: &str) -> Option<SocketAddr> {
        if let (Some(read_at), peers) = &*self.peers.borrow() {
            let age = read_at.elapsed();
            match peers.get(node) {
                Some(addr) if age < Duration::from_millis(PEERS_FRESH_MS) => return Some(*addr),
                None if age < Duration::from_millis(PEERS_MISS_MS) => return None,
                _ => {}
            }
        }
        let records = self.node.nats.nodes().await.ok()?;
        let peers: HashMap<String, SocketAddr> = records
            .into_iter()
            .filter_map(|record| Some((record.id, record.internal_addr.parse().ok()?)))
            .collect();
        let addr = peers.get(node).copied();
        *self.peers.borrow_mut() = (Some(Instant::now()), peers);
        addr
    }
}

impl ClusterLink for ShardLink {
    fn unit_count(&self) -> usize {
        self.node.partitions.get() as usize
    }

    fn place(&self, unit: usize) -> Place {
        if self.node.freezer.is_frozen(unit) {
            return Place::Unowned;
        }
        self.refresh(false);
        let place = self.routes.borrow().places.get(unit).cloned().unwrap_or(Place::Unowned);
        // Replicated: a partition of this node is served once caught up.
        let unready = self.node.states.as_ref().is_some_and(|states| !states.is_ready(unit));
        match place {
            Place::Shard(_) if unready => Place::Unowned,
            place => place,
        }
    }

    fn epoch(&self) -> u64 {
        self.refresh(false);
        self.routes.borrow().epoch
    }

    fn call_remote<'a>(
        &'a self,
        node: Rc<str>,
        _unit: usize,
        call: Call,
    ) -> LocalFuture<'a, Result<Outcome, RemoteError>> {
        Box::pin(self.ask_node(node, call))
    }

    fn enter(&self, unit: usize) -> Option<UnitGuard> {
        self.node.freezer.enter(unit)
    }

    fn wait_for_epoch(&self, epoch: u64) -> LocalFuture<'_, bool> {
        Box::pin(async move {
            let polls = self.node.config.call_timeout_ms / EPOCH_POLL_MS + 1;
            for _ in 0..polls {
                if self.epoch() >= epoch {
                    return true;
                }
                monoio::time::sleep(Duration::from_millis(EPOCH_POLL_MS)).await;
            }
            self.epoch() >= epoch
        })
    }

    fn internal_addr(&self, node: &str) -> LocalFuture<'_, Option<SocketAddr>> {
        let node = node.to_string();
        Box::pin(async move { self.lookup_peer(&node).await })
    }
}
