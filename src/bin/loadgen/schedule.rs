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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
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
pub fn pair_schedule(
    start_at: &OnceLock<Instant>,
    rate: Option<f64>,
) -> (Instant, Option<Duration>) {
    let start = *start_at.get_or_init(Instant::now);
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

/// In an open loop with nothing in flight, waits until send number `sent`
/// is due (see [`next_wait`]); returns at once in a closed loop.
pub async fn wait_for_next_send(start: Instant, interval: Option<Duration>, sent: u64) {
    let Some(interval) = interval else { return };
    let due = start + interval * sent as u32;
    let busy_poll = BUSY_POLL.load(Ordering::Relaxed);
    loop {
        match next_wait(due, Instant::now(), busy_poll) {
            Wait::Send => return,
            Wait::Yield => yield_now().await,
            Wait::Sleep(duration) => monoio::time::sleep(duration).await,
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
    fn pairs_start_at_spread_phases_within_one_interval() {
        let start_at = OnceLock::new();
        let start = *start_at.get_or_init(Instant::now);
        assert_eq!(pair_schedule(&start_at, None), (start, None));
        let starts: Vec<Duration> = (0..64)
            .map(|_| {
                let (first, interval) = pair_schedule(&start_at, Some(10.0));
                assert_eq!(interval, Some(Duration::from_millis(100)));
                first - start
            })
            .collect();
        assert!(starts.iter().all(|offset| *offset <= Duration::from_millis(100)));
        let distinct: std::collections::HashSet<_> = starts.iter().collect();
        assert!(distinct.len() > 32, "phases are spread, not shared");
    }
}
