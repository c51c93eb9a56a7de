//! When sends are due and how each carries its send stamps, shared by the
//! messaging-shaped scenarios (`messaging`, `mqtt`, `nats`).
//!
//! Closed loop (no `rate`): a send is due as soon as the window has room.
//! Open loop (`rate` msgs/s): each send has an intended time on a fixed
//! schedule, and its payload carries that time, so latency is measured from
//! when the send was due rather than when it was written (coordinated
//! omission).
//!
//! Waiting for a due time: monoio's timer wheel counts whole milliseconds,
//! so a sleep ends up to ~1 ms after the send was due, and that lateness
//! was in every open-loop latency. With busy polling (`--busy-poll`) a
//! sender that is not yet due yields to the thread's other tasks and looks
//! at the clock again on its next turn ([`crate::fair_yield`]), so sends go
//! out within one turn of the run queue (microseconds) of their due time,
//! at the price of a core kept busy: give the load generator a core of its
//! own (`--pin-cores`).
//!
//! A busy-polling sender never sleeps on a timer, even when its send is far
//! off: monoio fires timers only when its thread parks, which it never does
//! while a task yields, so a mix of sleeping and yielding senders would
//! leave the sleepers late.

use crate::fair_yield::yield_now;
use futures_util::future::Either;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::task::Poll;
use std::time::{Duration, Instant};

/// The process-wide instant the send stamps count from.
static BASE: OnceLock<Instant> = OnceLock::new();

/// Starts the stamp clock now, if no stamp has started it yet.
pub fn init_stamp_base() {
    BASE.get_or_init(Instant::now);
}

/// Microseconds from a process-wide base instant to `at` (the send stamp).
pub fn micros_since_base(at: Instant) -> u64 {
    at.saturating_duration_since(*BASE.get_or_init(Instant::now)).as_micros() as u64
}

/// When send number `sent` is due: now in a closed loop; on the fixed
/// schedule in an open loop, or `None` while it is not yet due.
pub fn intended_send_time(
    start: Instant,
    interval: Option<Duration>,
    sent: u64,
    now: Instant,
) -> Option<Instant> {
    match interval {
        Some(interval) => Some(start + interval * sent as u32).filter(|at| *at <= now),
        None => Some(now),
    }
}

/// One pair's schedule: its first send time and, in an open loop, the
/// interval between its sends (`rate` is the pair's share, msgs/s). Each
/// pair starts at a random phase within one interval after the run's start,
/// as independent clients would; with a common start every pair sent at the
/// same instant, and the measured latency was mostly those bursts queueing.
///
/// Every pair waits for the run's start, which [`crate::measure::collect`]
/// sets once every pair is connected. Open loop: when the first connected
/// sender started the clock, pairs connected later began with the sends
/// due meanwhile overdue and wrote them in a burst, late by up to the
/// connection time (a p99 lateness of ~1 s with TLS). Closed loop: the
/// timed window then held the connection time too, with fewer pairs
/// sending, which understated a peer that connects slowly (Mosquitto took
/// about 0.4 s per pair here, so a 2 s run lasted 6 s).
pub async fn pair_schedule(
    start_at: &OnceLock<Instant>,
    rate: Option<f64>,
) -> (Instant, Option<Duration>) {
    let start = run_start(start_at, BUSY_POLL.load(Ordering::Relaxed)).await;
    schedule_from(start, rate)
}

/// Waits until [`crate::measure::collect`] starts the run's timed window,
/// and returns its start.
///
/// Busy polling (`busy_poll`), a sender waits for the start by yielding,
/// as it waits for its sends: once one sender of the thread yields, the
/// thread never parks, so a sender still asleep on a timer here would never
/// wake and would miss the whole run. That happened when the pairs
/// connected last started their 1 ms sleeps out of step with the others:
/// runs against NATS sent from 3 to 64 of their 64 pairs.
async fn run_start(start_at: &OnceLock<Instant>, busy_poll: bool) -> Instant {
    loop {
        if let Some(start) = start_at.get() {
            return *start;
        }
        if busy_poll {
            yield_now().await;
        } else {
            // No sender yields, so the thread parks and the timer fires.
            monoio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// [`pair_schedule`] from the run's `start`.
fn schedule_from(start: Instant, rate: Option<f64>) -> (Instant, Option<Duration>) {
    let Some(rate) = rate else { return (start, None) };
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut random = [0u8; 4];
    // Without randomness, every pair starts at once (the old behaviour).
    let phase = match getrandom::fill(&mut random) {
        Ok(()) => f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX),
        Err(_) => 0.0,
    };
    (start + interval.mul_f64(phase), Some(interval))
}

/// Open-loop senders wait by yielding rather than on the timer wheel. Set
/// once per run, before its senders start (by [`crate::measure::RunShared`]).
static BUSY_POLL: AtomicBool = AtomicBool::new(false);

/// Chooses how open-loop senders wait for their due time (see the module
/// documentation).
pub fn set_busy_poll(busy_poll: bool) {
    // Relaxed: set before the sending threads are spawned, which orders it.
    BUSY_POLL.store(busy_poll, Ordering::Relaxed);
}

/// What a sender does next about a send due at `due`.
#[derive(Debug, PartialEq, Eq)]
pub enum Wait {
    /// The send is due: send it.
    Send,
    /// Not yet due, busy polling: yield once and look again.
    Yield,
    /// Not yet due: sleep this long on the timer wheel.
    Sleep(Duration),
}

/// The waiting decision for a send due at `due`, at `now`.
pub fn next_wait(due: Instant, now: Instant, busy_poll: bool) -> Wait {
    if due <= now {
        Wait::Send
    } else if busy_poll {
        Wait::Yield
    } else {
        Wait::Sleep(due - now)
    }
}

/// Waits until `ready` resolves or a send falls due at `due`, whichever
/// comes first: `Some(output)` when `ready` did, `None` when the send is
/// due. A sender waits this way for a reply or its next send,
/// so a send never waits behind a reply that is slow to come.
pub async fn ready_or_due<F: Future>(due: Instant, ready: F) -> Option<F::Output> {
    until_ready_or_due(due, ready, BUSY_POLL.load(Ordering::Relaxed)).await
}

/// [`ready_or_due`], waiting by yielding (`busy_poll`) or on the timer.
async fn until_ready_or_due<F: Future>(
    due: Instant,
    ready: F,
    busy_poll: bool,
) -> Option<F::Output> {
    // Polled on each turn and kept across them: a readiness poll stays
    // armed until it fires or the send is due.
    let mut ready = pin!(ready);
    loop {
        let pause = match next_wait(due, Instant::now(), busy_poll) {
            Wait::Send => return None,
            Wait::Yield => Either::Left(yield_now()),
            Wait::Sleep(duration) => Either::Right(monoio::time::sleep(duration)),
        };
        let mut pause = pin!(pause);
        let woken = std::future::poll_fn(|cx| match ready.as_mut().poll(cx) {
            Poll::Ready(output) => Poll::Ready(Some(output)),
            Poll::Pending => pause.as_mut().poll(cx).map(|_| None),
        })
        .await;
        if woken.is_some() {
            return woken;
        }
    }
}

/// One sender's place on its schedule and its window: which send is next,
/// when it is due, and how many await their reply. Pure (the clock is
/// passed in), so every scenario's sender keeps the same books.
#[derive(Debug)]
pub struct SendWindow {
    /// When send 0 is due, and in an open loop the interval between sends.
    start: Instant,
    interval: Option<Duration>,
    /// Sends awaiting their reply at most (at least 1: a window of 0 would
    /// never send).
    window: usize,
    /// Sends written so far: the next one's number on the schedule.
    sent: u64,
    /// Sends written and not yet answered, at most `window`.
    inflight: usize,
}

impl SendWindow {
    /// A window of `window` sends on the schedule `(start, interval)` of
    /// [`pair_schedule`].
    pub fn new(start: Instant, interval: Option<Duration>, window: usize) -> Self {
        Self { start, interval, window: window.max(1), sent: 0, inflight: 0 }
    }

    /// The next send, if it may go out at `now` (it is due and the window
    /// has room): its number on the schedule and when it was due. It is
    /// counted as written and awaiting its reply.
    pub fn take_due(&mut self, now: Instant) -> Option<(u64, Instant)> {
        if self.inflight >= self.window {
            return None;
        }
        let intended = intended_send_time(self.start, self.interval, self.sent, now)?;
        let number = self.sent;
        self.sent += 1;
        self.inflight += 1;
        debug_assert!(self.inflight <= self.window);
        Some((number, intended))
    }

    /// When the next send is due, if it can go out then: in an open loop
    /// with room in the window. `None` when only a reply can let it go (a
    /// closed loop, or a full window: then the send is late, and its
    /// stamps say so).
    pub fn next_due(&self) -> Option<Instant> {
        let interval = self.interval?;
        (self.inflight < self.window).then(|| self.start + interval * self.sent as u32)
    }

    /// Books the reply to one send in flight; false when none was in
    /// flight (a reply to nothing: a peer's bug, or the load generator's).
    #[must_use]
    pub fn on_reply(&mut self) -> bool {
        let Some(inflight) = self.inflight.checked_sub(1) else { return false };
        self.inflight = inflight;
        true
    }
}

/// A payload of `content_bytes` (at least 16) starting with two stamps:
/// when the send was due (`intended`) and now, when it is being written.
pub fn stamped_payload(intended: Instant, content_bytes: usize) -> Vec<u8> {
    let mut payload = micros_since_base(intended).to_be_bytes().to_vec();
    payload.extend_from_slice(&micros_since_base(Instant::now()).to_be_bytes());
    payload.resize(content_bytes.max(16), 0x5a);
    payload
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::sync::Arc;

    #[test]
    fn a_send_waits_until_due_by_yielding_or_sleeping_the_exact_remainder() {
        let now = Instant::now();
        let due = now + Duration::from_micros(1_500);
        assert_eq!(next_wait(due, now, true), Wait::Yield);
        assert_eq!(next_wait(due, now, false), Wait::Sleep(Duration::from_micros(1_500)));
        for busy_poll in [true, false] {
            assert_eq!(next_wait(due, due, busy_poll), Wait::Send, "due now");
            let later = due + Duration::from_micros(1);
            assert_eq!(next_wait(due, later, busy_poll), Wait::Send, "overdue");
        }
    }

    #[test]
    fn a_wait_ends_when_ready_or_when_the_send_is_due_whichever_first() {
        for busy_poll in [true, false] {
            crate::block_on(async move {
                let due = Instant::now() + Duration::from_millis(2);
                let never = std::future::pending::<()>();
                assert_eq!(until_ready_or_due(due, never, busy_poll).await, None);
                assert!(Instant::now() >= due, "not before the send is due");
                let far = Instant::now() + Duration::from_secs(3600);
                assert_eq!(until_ready_or_due(far, async { 7 }, busy_poll).await, Some(7));
                // Readied by another task after a few turns.
                let later = monoio::spawn(async {
                    for _ in 0..3 {
                        yield_now().await;
                    }
                    8
                });
                assert_eq!(until_ready_or_due(far, later, busy_poll).await, Some(8));
            });
        }
    }

    #[test]
    fn an_open_loop_window_sends_on_schedule_and_never_waits_for_a_reply_while_a_send_is_due() {
        let start = Instant::now();
        let ms = Duration::from_millis(1);
        let mut window = SendWindow::new(start, Some(ms), 3);
        assert_eq!(window.next_due(), Some(start));
        // 2.5 ms in: sends 0, 1 and 2 are due, each with its own due time.
        let now = start + ms * 5 / 2;
        assert_eq!(window.take_due(now), Some((0, start)));
        assert_eq!(window.take_due(now), Some((1, start + ms)));
        assert_eq!(window.take_due(now), Some((2, start + ms * 2)));
        // The window is full: send 3 waits for a reply, whatever its time.
        assert_eq!(window.take_due(start + ms * 9), None);
        assert_eq!(window.next_due(), None, "only a reply can let it go");
        assert!(window.on_reply());
        // Room again: send 3 is due at 3 ms, not when the reply came.
        assert_eq!(window.next_due(), Some(start + ms * 3));
        assert_eq!(window.take_due(now), None, "not due yet");
        assert_eq!(window.take_due(start + ms * 9), Some((3, start + ms * 3)), "late, stamped due");
    }

    #[test]
    fn a_closed_loop_window_fills_at_once_and_refills_per_reply() {
        let now = Instant::now();
        let mut window = SendWindow::new(now, None, 2);
        assert_eq!(window.next_due(), None, "a closed loop only waits for replies");
        assert_eq!(window.take_due(now), Some((0, now)));
        assert_eq!(window.take_due(now), Some((1, now)));
        assert_eq!(window.take_due(now), None);
        assert!(window.on_reply());
        assert_eq!(window.take_due(now), Some((2, now)));
    }

    #[test]
    fn a_reply_to_no_send_is_refused_and_a_zero_window_still_sends() {
        let now = Instant::now();
        let mut window = SendWindow::new(now, None, 0);
        assert!(!window.on_reply(), "nothing in flight");
        assert_eq!(window.take_due(now), Some((0, now)), "a window of 0 acts as 1");
        assert_eq!(window.take_due(now), None);
        assert!(window.on_reply());
        assert!(!window.on_reply());
    }

    #[test]
    fn a_busy_polling_sender_sees_the_start_while_another_sender_yields() {
        let start_at = Arc::new(OnceLock::new());
        let setter = start_at.clone();
        let set_later = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            setter.set(Instant::now()).expect("set once");
        });
        crate::block_on(async move {
            let waiting = Rc::new(Cell::new(true));
            let still_waiting = waiting.clone();
            // A sender already busy polling: the thread never parks while it
            // yields, so no timer fires before it stops (after 2 s at most).
            let spinner = monoio::spawn(async move {
                let spun = Instant::now();
                while still_waiting.get() && spun.elapsed() < Duration::from_secs(2) {
                    yield_now().await;
                }
                still_waiting.get()
            });
            run_start(&start_at, true).await;
            waiting.set(false);
            assert!(!spinner.await, "the start was seen only after the other sender stopped");
        });
        set_later.join().expect("setter");
    }

    #[test]
    fn pairs_start_at_spread_phases_within_one_interval() {
        let start = Instant::now();
        assert_eq!(schedule_from(start, None), (start, None));
        let starts: Vec<Duration> = (0..64)
            .map(|_| {
                let (first, interval) = schedule_from(start, Some(10.0));
                assert_eq!(interval, Some(Duration::from_millis(100)));
                first - start
            })
            .collect();
        assert!(starts.iter().all(|offset| *offset <= Duration::from_millis(100)));
        let distinct: std::collections::HashSet<_> = starts.iter().collect();
        assert!(distinct.len() > 32, "phases are spread, not shared");
    }
}
