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
/// An open-loop pair waits for the run's start, which
/// [`crate::measure::collect`] sets once every pair is connected: when the
/// first connected sender started the clock, pairs connected later began
/// with the sends due meanwhile overdue and wrote them in a burst, late by
/// up to the connection time (a p99 lateness of ~1 s with TLS). A
/// closed-loop pair still starts the clock (if no pair has) and sends at
/// once, so closed-loop results stay comparable with earlier runs'.
pub async fn pair_schedule(
    start_at: &OnceLock<Instant>,
    rate: Option<f64>,
) -> (Instant, Option<Duration>) {
    let start = match rate {
        Some(_) => run_start(start_at).await,
        None => *start_at.get_or_init(Instant::now),
    };
    schedule_from(start, rate)
}

/// Waits until [`crate::measure::collect`] starts the run's timed window,
/// and returns its start.
async fn run_start(start_at: &OnceLock<Instant>) -> Instant {
    loop {
        if let Some(start) = start_at.get() {
            return *start;
        }
        // No sender yields before the start, so the thread parks and the
        // timer fires.
        monoio::time::sleep(Duration::from_millis(1)).await;
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

/// In an open loop, waits until send number `sent` is due (see
/// [`next_wait`]); returns at once in a closed loop.
pub async fn wait_for_next_send(start: Instant, interval: Option<Duration>, sent: u64) {
    let Some(interval) = interval else { return };
    ready_or_due(start + interval * sent as u32, std::future::pending::<()>()).await;
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
