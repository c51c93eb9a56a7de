//! A session's mailbox: how other tasks on the same shard reach it.
//!
//! Single-threaded (shared by `Rc`, no atomics, no allocation per message
//! beyond the event itself). Invariants:
//! - droppable events ([`Mailbox::offer`]) are refused once `offered_len_max`
//!   events are queued, so a slow session cannot make senders buffer without
//!   bound;
//! - events that must not be lost ([`Mailbox::push`]) are always queued while
//!   the mailbox is open; their number is bounded by their producers (one
//!   response per client request in flight, at most
//!   `client_requests_inflight_max`; one `Replaced`);
//! - "new envelopes stored" is a flag, not an event: it is never refused and
//!   never queued twice, and it wakes the session like an event does;
//! - "items were added to the session's tail" is another such flag; the
//!   tail itself ([`TailSlot`]) lives here so that the owner shard's
//!   persists can append to it, and is dropped on close;
//! - "a deadline passed" is a flag too, set by the shard's timer wheel
//!   ([`Timers`], which the mailbox is an entry of), and still set after the
//!   mailbox is closed (the closing linger needs it);
//! - once closed, everything offered or pushed is dropped.

use crate::shard::tail::TailSlot;
use crate::shard::timers::{Deadline, DeadlineSlot, Timers};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

/// What woke the session about its queue since it last looked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueNews {
    /// Items were stored that the session's tail does not hold.
    pub stored: bool,
    /// Items were added to the session's tail (or are durable now).
    pub tail: bool,
}

/// Something for a session's event loop to act on.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// A newer connection of the same device took over: close with 4409.
    Replaced,
    /// The device was removed from its account: close with 4401.
    Unlinked,
    /// The server is shutting down: close with 1001.
    Shutdown,
    /// A client request finished: send this response frame text.
    Respond(Vec<u8>),
    /// A live-only item (an online-only envelope or a typing indicator; not
    /// stored): deliver it now or never.
    Ephemeral {
        /// Where the device receives it (`/api/v1/message`, `/api/v1/typing`).
        path: &'static str,
        /// Its JSON.
        json: Vec<u8>,
    },
    /// New envelopes are stored for this device (or were added to the
    /// session's tail): read the queue.
    Stored,
    /// The session's deadline passed (ping, idle timeout, request timeouts).
    Deadline,
}

/// The queue of one session's events.
pub struct Mailbox {
    queue: RefCell<VecDeque<SessionEvent>>,
    offered_len_max: usize,
    stored: Cell<bool>,
    tail_news: Cell<bool>,
    closed: Cell<bool>,
    deadline_passed: Cell<bool>,
    waker: Cell<Option<Waker>>,
    /// The session's next deadline on the shard's timer wheel.
    deadline: DeadlineSlot,
    /// Items stored for the session's device, kept in memory.
    tail: TailSlot,
}

/// The shard's wheel of session deadlines.
pub type SessionTimers = Timers<Mailbox>;

impl Deadline for Mailbox {
    fn slot(&self) -> &DeadlineSlot {
        &self.deadline
    }

    fn fire(&self) {
        self.fire_deadline();
    }
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("queued", &self.queue.borrow().len())
            .field("stored", &self.stored.get())
            .field("closed", &self.closed.get())
            .finish()
    }
}

impl Mailbox {
    /// An open, empty mailbox refusing droppable events beyond `offered_len_max`.
    pub fn new(offered_len_max: usize) -> Self {
        Self {
            queue: RefCell::new(VecDeque::new()),
            offered_len_max,
            stored: Cell::new(false),
            tail_news: Cell::new(false),
            closed: Cell::new(false),
            deadline_passed: Cell::new(false),
            waker: Cell::new(None),
            deadline: DeadlineSlot::default(),
            tail: TailSlot::default(),
        }
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Queues an event whose count its producer bounds; false once closed.
    pub fn push(&self, event: SessionEvent) -> bool {
        if self.closed.get() {
            return false;
        }
        self.queue.borrow_mut().push_back(event);
        self.wake();
        true
    }

    /// Queues a droppable event; false when full or closed.
    pub fn offer(&self, event: SessionEvent) -> bool {
        if self.closed.get() || self.queue.borrow().len() >= self.offered_len_max {
            return false;
        }
        self.push(event)
    }

    /// Tells the session its queue has new envelopes. Never refused.
    pub fn notify_stored(&self) {
        if !self.closed.get() {
            self.stored.set(true);
            self.wake();
        }
    }

    /// Tells the session its tail has news (items added, or durable). Never refused.
    pub fn notify_tail(&self) {
        if !self.closed.get() {
            self.tail_news.set(true);
            self.wake();
        }
    }

    /// The session's in-memory queue tail.
    pub fn tail(&self) -> &TailSlot {
        &self.tail
    }

    /// Clears and returns both queue flags (stored, tail).
    pub fn take_queue_news(&self) -> QueueNews {
        QueueNews { stored: self.stored.replace(false), tail: self.tail_news.replace(false) }
    }

    /// Sets the deadline flag and wakes the session (the timers call this).
    pub fn fire_deadline(&self) {
        self.deadline_passed.set(true);
        self.wake();
    }

    /// Clears and returns the deadline flag.
    pub fn take_deadline(&self) -> bool {
        self.deadline_passed.replace(false)
    }

    /// Ready (clearing the flag) once the deadline passed; registers the
    /// task's waker otherwise.
    pub fn poll_deadline(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.take_deadline() {
            return Poll::Ready(());
        }
        self.waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }

    /// Clears and returns the "new envelopes stored" flag.
    pub fn take_stored(&self) -> bool {
        self.stored.replace(false)
    }

    /// The next queued event, without waiting (the stored flag is not an
    /// event here: the session reads it with [`Self::take_queue_news`]).
    pub fn try_recv(&self) -> Option<SessionEvent> {
        self.queue.borrow_mut().pop_front()
    }

    /// The next event; else [`SessionEvent::Stored`] when the stored or the
    /// tail flag is set (it stays set until [`Self::take_queue_news`]), else [`SessionEvent::Deadline`] when that flag is set
    /// (it is cleared); registers the task's waker otherwise.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<SessionEvent> {
        if let Some(event) = self.try_recv() {
            return Poll::Ready(event);
        }
        if self.stored.get() || self.tail_news.get() {
            return Poll::Ready(SessionEvent::Stored);
        }
        if self.take_deadline() {
            return Poll::Ready(SessionEvent::Deadline);
        }
        self.waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }

    /// Refuses every event from now on and drops what is queued (the
    /// deadline flag still works).
    pub fn close(&self) {
        self.closed.set(true);
        self.queue.borrow_mut().clear();
        self.tail.clear();
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn ephemeral(byte: u8) -> SessionEvent {
        SessionEvent::Ephemeral { path: "/api/v1/message", json: vec![byte] }
    }

    fn context_counter() -> (Waker, Arc<CountingWaker>) {
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        (Waker::from(counter.clone()), counter)
    }

    #[test]
    fn offers_beyond_the_limit_are_refused_pushes_are_not() {
        let mailbox = Mailbox::new(2);
        assert!(mailbox.offer(ephemeral(1)));
        assert!(mailbox.offer(ephemeral(2)));
        assert!(!mailbox.offer(ephemeral(3)));
        assert!(mailbox.push(SessionEvent::Respond("r".into())));
        assert_eq!(mailbox.try_recv(), Some(ephemeral(1)));
        assert_eq!(mailbox.try_recv(), Some(ephemeral(2)));
        assert_eq!(mailbox.try_recv(), Some(SessionEvent::Respond("r".into())));
        assert_eq!(mailbox.try_recv(), None);
    }

    #[test]
    fn stored_flag_wakes_once_and_is_not_queued() {
        let mailbox = Mailbox::new(1);
        let (waker, counter) = context_counter();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(mailbox.poll_recv(&mut cx), Poll::Pending);
        mailbox.notify_stored();
        mailbox.notify_stored();
        assert_eq!(counter.0.load(Ordering::Relaxed), 1, "one registered waker, one wake");
        assert_eq!(mailbox.poll_recv(&mut cx), Poll::Ready(SessionEvent::Stored));
        assert!(mailbox.take_stored());
        assert!(!mailbox.take_stored());
        assert_eq!(mailbox.try_recv(), None);
        // The flag never fills the queue: an offer still fits.
        assert!(mailbox.offer(SessionEvent::Replaced));
    }

    #[test]
    fn tail_news_wakes_and_is_told_apart_from_stored() {
        let mailbox = Mailbox::new(1);
        let (waker, counter) = context_counter();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(mailbox.poll_recv(&mut cx), Poll::Pending);
        mailbox.notify_tail();
        assert_eq!(counter.0.load(Ordering::Relaxed), 1);
        assert_eq!(mailbox.poll_recv(&mut cx), Poll::Ready(SessionEvent::Stored));
        assert_eq!(mailbox.take_queue_news(), QueueNews { stored: false, tail: true });
        mailbox.notify_stored();
        assert_eq!(mailbox.take_queue_news(), QueueNews { stored: true, tail: false });
        assert_eq!(mailbox.take_queue_news(), QueueNews::default());
        assert_eq!(mailbox.poll_recv(&mut cx), Poll::Pending);
    }

    #[test]
    fn closing_drops_the_tail_and_ignores_its_news() {
        use crate::store::messages::{StoredKind, StoredMessage};
        let mailbox = Mailbox::new(1);
        let message = StoredMessage {
            key: vec![1; 36],
            guid: uuid::Uuid::nil(),
            kind: StoredKind::Envelope,
            json: b"{}".to_vec(),
        };
        mailbox.tail().append(crate::store::batch::OpRef { batch: 1, index: 0 }, 0, message);
        mailbox.tail().on_store_caught_up((0, 0), 1, 0);
        assert!(mailbox.tail().is_serving());
        mailbox.close();
        assert!(!mailbox.tail().is_serving());
        mailbox.notify_tail();
        assert_eq!(mailbox.take_queue_news(), QueueNews::default());
    }

    #[test]
    fn queued_events_come_before_the_stored_flag() {
        let mailbox = Mailbox::new(4);
        mailbox.notify_stored();
        mailbox.push(SessionEvent::Replaced);
        let (waker, _) = context_counter();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(mailbox.poll_recv(&mut cx), Poll::Ready(SessionEvent::Replaced));
        assert_eq!(mailbox.poll_recv(&mut cx), Poll::Ready(SessionEvent::Stored));
    }

    #[test]
    fn closed_mailbox_drops_everything() {
        let mailbox = Mailbox::new(4);
        mailbox.push(SessionEvent::Respond("lost".into()));
        mailbox.close();
        assert!(mailbox.is_closed());
        assert_eq!(mailbox.try_recv(), None);
        assert!(!mailbox.push(SessionEvent::Replaced));
        assert!(!mailbox.offer(SessionEvent::Replaced));
        mailbox.notify_stored();
        assert!(!mailbox.take_stored());
        mailbox.fire_deadline();
        assert!(mailbox.take_deadline(), "deadlines still fire for the closing linger");
    }

    #[test]
    fn deadline_comes_after_events_and_is_cleared_when_taken() {
        let mailbox = Mailbox::new(4);
        let (waker, counter) = context_counter();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(mailbox.poll_deadline(&mut cx), Poll::Pending);
        mailbox.fire_deadline();
        assert_eq!(counter.0.load(Ordering::Relaxed), 1);
        mailbox.push(SessionEvent::Replaced);
        assert_eq!(mailbox.poll_recv(&mut cx), Poll::Ready(SessionEvent::Replaced));
        assert_eq!(mailbox.poll_recv(&mut cx), Poll::Ready(SessionEvent::Deadline));
        assert_eq!(mailbox.poll_recv(&mut cx), Poll::Pending);
    }
}
