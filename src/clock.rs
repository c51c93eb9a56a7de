//! Time, owned in one place.
//!
//! Every wall-clock reading in the server goes through a [`Clock`]: the
//! system clock in production, or a manual clock that a test sets and steps
//! (link-code expiry, retention cut-offs, session deadlines and the push
//! windows of later issues are all decided from `now_ms`, so a test can move
//! time forward instead of sleeping). Pure state machines never read a clock;
//! they take `now_ms` as an argument.
//!
//! Invariants: a manual clock never goes backwards ([`Clock::advance_ms`] only
//! adds); clones of a clock share one time source, so a test stepping its
//! handle moves every component holding a clone.
//!
//! Imports: nothing of this crate (the lowest layer).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A source of wall-clock milliseconds since the Unix epoch.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// `None`: the system clock. `Some`: a manual clock's current reading,
    /// shared by every clone.
    manual_ms: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { manual_ms: None }
    }

    /// A clock that reads `start_ms` until it is stepped.
    pub fn manual(start_ms: u64) -> Self {
        Self { manual_ms: Some(Arc::new(AtomicU64::new(start_ms))) }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        match &self.manual_ms {
            // Relaxed: the reading is one independent value; a test that steps
            // the clock and then acts synchronises through its own channel.
            Some(now_ms) => now_ms.load(Ordering::Relaxed),
            None => system_now_ms(),
        }
    }

    /// Moves a manual clock forward by `step_ms`. Panics on the system clock:
    /// only tests step time.
    pub fn advance_ms(&self, step_ms: u64) {
        let now_ms = self.manual_ms.as_ref().expect("only a manual clock can be stepped");
        now_ms.fetch_add(step_ms, Ordering::Relaxed);
    }

    /// True for a clock a test controls.
    pub fn is_manual(&self) -> bool {
        self.manual_ms.is_some()
    }
}

/// The system's wall clock in milliseconds since the Unix epoch (0 before it).
fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// CPU time the calling thread has used, in microseconds
/// (`CLOCK_THREAD_CPUTIME_ID`); 0 if the kernel refuses.
pub fn thread_cpu_us() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec; the call only writes it.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if result != 0 {
        return 0;
    }
    now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stands_still_until_stepped_and_clones_share_it() {
        let clock = Clock::manual(1_000);
        let shared = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        shared.advance_ms(250);
        assert_eq!(clock.now_ms(), 1_250);
        assert!(clock.is_manual());
    }

    #[test]
    fn the_system_clock_is_after_2020() {
        let clock = Clock::system();
        assert!(clock.now_ms() > 1_577_836_800_000);
        assert!(!clock.is_manual());
    }

    #[test]
    #[should_panic(expected = "manual clock")]
    fn the_system_clock_cannot_be_stepped() {
        Clock::system().advance_ms(1);
    }
}
