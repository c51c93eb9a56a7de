//! Cluster mode: the answers this node gave to the last calls from other
//! nodes, by request id, so that a call that arrives again (a caller's
//! retry, a redelivered request) is answered from here and not run twice:
//! a retried send is stored once.
//!
//! Invariants: at most [`RECENT_CALLS_MAX`] answers are kept (the oldest
//! goes first); a request id whose first run has not finished is
//! [`Seen::Running`] (its repeat is answered "unavailable", never run).

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};

/// Answers kept, at most.
pub const RECENT_CALLS_MAX: usize = 8192;

/// What this node knows of a request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Never seen (now marked running).
    New,
    /// Its first run is still going.
    Running,
    /// Answered: the reply to send again.
    Answered(Bytes),
}

/// Recent request ids and their answers.
#[derive(Debug, Default)]
pub struct RecentCalls {
    answers: HashMap<u128, Option<Bytes>>,
    order: VecDeque<u128>,
}

impl RecentCalls {
    /// Looks `request_id` up; a new one is marked running.
    pub fn begin(&mut self, request_id: u128) -> Seen {
        match self.answers.get(&request_id) {
            Some(Some(reply)) => return Seen::Answered(reply.clone()),
            Some(None) => return Seen::Running,
            None => {}
        }
        if self.order.len() >= RECENT_CALLS_MAX {
            if let Some(oldest) = self.order.pop_front() {
                self.answers.remove(&oldest);
            }
        }
        self.answers.insert(request_id, None);
        self.order.push_back(request_id);
        Seen::New
    }

    /// Forgets `request_id` (it did not run: a repeat may run it).
    pub fn forget(&mut self, request_id: u128) {
        if self.answers.remove(&request_id).is_some() {
            self.order.retain(|id| *id != request_id);
        }
    }

    /// Records the answer to `request_id` (if it is still kept).
    pub fn finish(&mut self, request_id: u128, reply: &Bytes) {
        if let Some(slot) = self.answers.get_mut(&request_id) {
            *slot = Some(reply.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_gets_the_first_answer_and_the_oldest_are_forgotten() {
        let mut recent = RecentCalls::default();
        assert_eq!(recent.begin(7), Seen::New);
        assert_eq!(recent.begin(7), Seen::Running);
        recent.finish(7, &Bytes::from_static(b"done"));
        assert_eq!(recent.begin(7), Seen::Answered(Bytes::from_static(b"done")));
        assert_eq!(recent.begin(8), Seen::New);
        recent.forget(8);
        assert_eq!(recent.begin(8), Seen::New, "a call that did not run may run again");
        for id in 100..100 + RECENT_CALLS_MAX as u128 {
            assert_eq!(recent.begin(id), Seen::New);
        }
        assert_eq!(recent.begin(7), Seen::New, "forgotten after RECENT_CALLS_MAX newer ones");
        assert!(recent.answers.len() <= RECENT_CALLS_MAX);
    }
}
