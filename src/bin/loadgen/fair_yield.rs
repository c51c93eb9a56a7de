//! A fair yield for monoio 0.2: let every other ready task of the thread
//! run, and the runtime reap I/O completions, before the caller runs again.
//!
//! monoio has no public `yield_now`, and the usual one (wake yourself,
//! return pending) does not yield there: a task woken while it is being
//! polled goes to the *front* of the run queue, so it runs again at once
//! and starves the tasks that I/O woke (they wait at the back). A busy-
//! polling sender built that way delayed deliveries by seconds.
//!
//! So a yielding task leaves its waker with the thread's relay task and
//! wakes the relay; the relay, polled in its turn, wakes the tasks that
//! yielded. Each wake comes from a task other than the one woken, so each
//! woken task goes to the back of the queue, behind everything ready. While
//! any task keeps yielding, the queue never empties, so the thread never
//! parks: it polls its tasks and the ring in turn (busy polling).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// The relay of the thread's runtime.
#[derive(Default)]
struct Relay {
    /// Tasks that yielded since the relay last ran: it wakes them.
    yielded: Vec<Waker>,
    /// The relay task's waker while it waits for a yield; `None` while it
    /// is queued to run, or when there is no relay task.
    idle: Option<Waker>,
    /// A relay task exists on this thread's runtime (see [`forget_relay`]).
    spawned: bool,
}

thread_local! {
    static RELAY: RefCell<Relay> = RefCell::new(Relay::default());
}

/// Forgets the relay of a runtime that ended on this thread, so the next
/// runtime here spawns its own: a runtime does not drop the tasks it leaves
/// waiting, so the old relay's waker would still be here.
pub fn forget_relay() {
    let old = RELAY.with(|relay| std::mem::take(&mut *relay.borrow_mut()));
    // Dropped outside the borrow: it may free the old relay task.
    drop(old);
}

/// Yields once: the caller runs again after every task that was ready.
pub fn yield_now() -> impl Future<Output = ()> {
    YieldNow { yielded: false }
}

struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        let (relay_idle, spawn) = RELAY.with(|relay| {
            let mut relay = relay.borrow_mut();
            relay.yielded.push(cx.waker().clone());
            let spawn = !relay.spawned;
            relay.spawned = true;
            (relay.idle.take(), spawn)
        });
        // Outside the borrow: waking or spawning schedules a task.
        if let Some(relay) = relay_idle {
            relay.wake();
        }
        if spawn {
            drop(monoio::spawn(relay_task()));
        }
        Poll::Pending
    }
}

/// The relay: each time it runs, wakes the tasks that yielded, then waits
/// for the next yield to wake it.
async fn relay_task() {
    std::future::poll_fn(|cx: &mut Context<'_>| {
        let yielded = RELAY.with(|relay| {
            let mut relay = relay.borrow_mut();
            relay.idle = Some(cx.waker().clone());
            std::mem::take(&mut relay.yielded)
        });
        for waker in yielded {
            waker.wake();
        }
        Poll::<()>::Pending
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// Two tasks that each record a letter and yield, three times.
    fn interleaving() -> String {
        let order = Rc::new(RefCell::new(String::new()));
        let task = |letter: char| {
            let order = order.clone();
            async move {
                for _ in 0..3 {
                    order.borrow_mut().push(letter);
                    yield_now().await;
                }
            }
        };
        crate::block_on(async {
            let (a, b) = (monoio::spawn(task('a')), monoio::spawn(task('b')));
            a.await;
            b.await;
        });
        let order = order.borrow().clone();
        order
    }

    #[test]
    fn a_yielding_task_runs_again_only_after_the_other_ready_tasks() {
        assert_eq!(interleaving(), "ababab", "a self-wake would give aaabbb");
        // A second runtime on the same thread gets a relay of its own.
        assert_eq!(interleaving(), "ababab");
    }
}
