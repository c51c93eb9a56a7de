//! The in-flight window of server-initiated requests on one connection.
//!
//! The server numbers its own requests from 1 upwards (its own id space; the
//! client's ids are independent) and keeps each open until the client answers
//! or it times out. At most `capacity` are open, so a slow client cannot make
//! the server buffer without bound: when the window is full the caller stops
//! sending until an answer frees a slot.
//!
//! Open requests are kept in id order in a `VecDeque` (ids are issued in
//! ascending order, so appending keeps it sorted; a lookup is a binary
//! search over at most `capacity + 1` entries). Its storage is released
//! whenever the window empties, so an idle connection holds none.
//!
//! Pure state machine: no clocks (`now_ms` is passed in), no I/O.

use std::collections::VecDeque;

/// One open request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inflight<K> {
    /// What the request was for, returned on completion.
    pub kind: K,
    /// When it was sent.
    pub sent_ms: u64,
}

/// Open server-initiated requests, in ascending id (= send) order.
#[derive(Debug)]
pub struct InflightWindow<K> {
    open: VecDeque<(u64, Inflight<K>)>,
    next_id: u64,
    capacity: usize,
}

impl<K> InflightWindow<K> {
    /// An empty window holding at most `capacity` requests (`capacity >= 1`).
    pub fn new(capacity: usize) -> Self {
        assert!(capacity >= 1);
        Self { open: VecDeque::new(), next_id: 1, capacity }
    }

    /// True when no further request may be sent.
    pub fn is_full(&self) -> bool {
        self.open.len() >= self.capacity
    }

    /// Most requests open at once (not counting [`Self::open_unbounded`]).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Opens a request even when the window is full: for a request due
    /// exactly once per connection (so at most one over `capacity`).
    pub fn open_unbounded(&mut self, kind: K, now_ms: u64) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.open.push_back((id, Inflight { kind, sent_ms: now_ms }));
        id
    }

    /// Number of open requests.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// True when nothing is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Opens a request and returns its id, or gives `kind` back when full.
    pub fn open(&mut self, kind: K, now_ms: u64) -> Result<u64, K> {
        if self.is_full() {
            return Err(kind);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.open.push_back((id, Inflight { kind, sent_ms: now_ms }));
        debug_assert!(self.open.len() <= self.capacity);
        Ok(id)
    }

    /// Closes request `id` on the client's answer; `None` if it was not open
    /// (unknown, already answered or timed out).
    pub fn complete(&mut self, id: u64) -> Option<Inflight<K>> {
        let index = self.open.binary_search_by_key(&id, |(open_id, _)| *open_id).ok()?;
        let (_, inflight) = self.open.remove(index)?;
        self.release_if_empty();
        Some(inflight)
    }

    fn release_if_empty(&mut self) {
        if self.open.is_empty() && self.open.capacity() > 0 {
            self.open = VecDeque::new();
        }
    }

    /// Closes and returns every request sent before `now_ms - timeout_ms`.
    pub fn expire(&mut self, now_ms: u64, timeout_ms: u64) -> Vec<(u64, Inflight<K>)> {
        let is_expired =
            |inflight: &Inflight<K>| now_ms.saturating_sub(inflight.sent_ms) >= timeout_ms;
        if !self.open.iter().any(|(_, inflight)| is_expired(inflight)) {
            return Vec::new();
        }
        let (expired, kept): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|(_, inflight)| is_expired(inflight));
        self.open = kept;
        self.release_if_empty();
        expired.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_window_bounds_open_requests() {
        let mut window = InflightWindow::new(2);
        assert_eq!(window.open("a", 0), Ok(1));
        assert_eq!(window.open("b", 0), Ok(2));
        assert!(window.is_full());
        assert_eq!(window.open("c", 0), Err("c"));
        assert_eq!(window.complete(1).map(|i| i.kind), Some("a"));
        assert_eq!(window.open("c", 0), Ok(3));
    }

    #[test]
    fn unknown_or_repeated_answers_are_ignored() {
        let mut window = InflightWindow::new(4);
        let id = window.open((), 0).unwrap();
        assert!(window.complete(id + 100).is_none());
        assert!(window.complete(id).is_some());
        assert!(window.complete(id).is_none());
    }

    #[test]
    fn completion_out_of_order_and_release_when_empty() {
        let mut window = InflightWindow::new(8);
        let ids: Vec<u64> = (0..5).map(|i| window.open(i, 0).unwrap()).collect();
        assert_eq!(window.complete(ids[2]).map(|i| i.kind), Some(2));
        assert_eq!(window.complete(ids[0]).map(|i| i.kind), Some(0));
        assert!(window.complete(ids[2]).is_none());
        assert_eq!(window.complete(ids[4]).map(|i| i.kind), Some(4));
        let queue_empty = window.open_unbounded(9, 0);
        assert_eq!(window.complete(ids[1]).map(|i| i.kind), Some(1));
        assert_eq!(window.complete(ids[3]).map(|i| i.kind), Some(3));
        assert_eq!(window.complete(queue_empty).map(|i| i.kind), Some(9));
        assert!(window.is_empty());
        assert_eq!(window.open.capacity(), 0, "an idle window holds no storage");
    }

    #[test]
    fn expiry_takes_only_old_requests() {
        let mut window = InflightWindow::new(4);
        window.open("old", 0).unwrap();
        window.open("new", 900).unwrap();
        let expired = window.expire(1000, 500);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].1.kind, "old");
        assert_eq!(window.len(), 1);
    }
}
