//! A session's position in its device's stored queue.
//!
//! Delivery follows the queue in key order: the session reads the next page
//! after its cursor whenever its in-flight window has room and it has not
//! caught up; news of a stored envelope only marks it as not caught up.
//! Because envelopes become durable in key order (one batch at a time per
//! shard) and the store's readers hear of them only once durable, reading
//! after the cursor can neither skip nor reorder. Live items that the
//! session's tail serves before they are written ([`crate::shard::tail`])
//! advance the cursor past their keys in the same order, so backlog and
//! live traffic are one ordered stream. `queue/empty` is due once, the
//! first time a read reaches the end.
//!
//! Pure state: no I/O; the [`Outbox`](crate::delivery::outbox::Outbox) does
//! the reads.

/// The session's position in its queue.
#[derive(Debug, Default)]
pub struct QueueCursor {
    /// Key of the last envelope read (sent); `None` before the first.
    cursor: Option<Vec<u8>>,
    /// The last read reached the end of the queue.
    caught_up: bool,
    /// `queue/empty` has been sent on this connection.
    queue_empty_sent: bool,
}

impl QueueCursor {
    /// True when a read may find envelopes not yet sent.
    pub fn wants_read(&self) -> bool {
        !self.caught_up
    }

    /// Envelopes were stored after the last read.
    pub fn on_stored(&mut self) {
        self.caught_up = false;
    }

    /// The key to read after.
    pub fn cursor(&self) -> Option<&[u8]> {
        self.cursor.as_deref()
    }

    /// Records items sent from the in-memory tail, up to `key` (the
    /// session stays caught up).
    pub fn advance(&mut self, key: Vec<u8>) {
        debug_assert!(self.cursor.as_deref().is_none_or(|cursor| cursor < &key[..]));
        self.cursor = Some(key);
    }

    /// Records a page read; `last_key` is the page's last key (if any) and
    /// `more` whether the queue continues. Returns true when `queue/empty`
    /// is due now.
    pub fn on_page(&mut self, last_key: Option<&[u8]>, more: bool) -> bool {
        if let Some(key) = last_key {
            debug_assert!(
                self.cursor.as_deref().is_none_or(|cursor| cursor < key),
                "cursor only advances"
            );
            self.cursor = Some(key.to_vec());
        }
        if more {
            return false;
        }
        self.caught_up = true;
        !std::mem::replace(&mut self.queue_empty_sent, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_empty_is_due_once_after_the_backlog() {
        let mut outbox = QueueCursor::default();
        assert!(outbox.wants_read());
        assert!(!outbox.on_page(Some(b"a"), true));
        assert_eq!(outbox.cursor(), Some(&b"a"[..]));
        assert!(outbox.on_page(Some(b"b"), false));
        assert!(!outbox.wants_read());
        outbox.on_stored();
        assert!(outbox.wants_read());
        assert!(!outbox.on_page(Some(b"c"), false), "queue/empty only once");
        assert_eq!(outbox.cursor(), Some(&b"c"[..]));
    }

    #[test]
    fn empty_queue_is_empty_at_once() {
        let mut outbox = QueueCursor::default();
        assert!(outbox.on_page(None, false));
        assert_eq!(outbox.cursor(), None);
    }
}
