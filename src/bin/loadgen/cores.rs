//! Pinning the load generator's threads to chosen cores (`--pin-cores`), so
//! that a busy-polling sender (see [`crate::schedule`]) runs on a core of
//! its own, or beside the server on a core the benchmark chose, instead of
//! wherever the kernel moves it.
//!
//! The main thread pins itself to the first listed core when the list is
//! set: registration and the threads a scenario spawns without pinning them
//! (they inherit the mask) run there. The threads that carry connections
//! take the listed cores in turn, thread `t` on `cores[t % cores.len()]`.

use std::sync::OnceLock;

/// The cores to pin to, in the order threads take them; empty (or unset)
/// leaves every thread to the kernel. Set once, at start-up.
static CORES: OnceLock<Vec<usize>> = OnceLock::new();

/// Sets the cores (once, before any thread starts) and pins the calling
/// thread to the first of them.
pub fn set_pin_cores(cores: Vec<usize>) -> anyhow::Result<()> {
    let online = num_cores();
    if let Some(core) = cores.iter().find(|core| **core >= online) {
        anyhow::bail!("--pin-cores: core {core} does not exist ({online} cores online)");
    }
    if CORES.set(cores).is_err() {
        anyhow::bail!("--pin-cores set twice");
    }
    pin_thread(0);
    Ok(())
}

/// The number of cores the kernel reports online, whatever this process's
/// affinity mask allows (a `taskset` around the load generator narrows
/// `available_parallelism`, not the cores that exist).
pub fn num_cores() -> usize {
    // SAFETY: sysconf has no preconditions; it returns -1 on error.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(online).unwrap_or(1)
}

/// The core thread number `thread` runs on, or `None` when no cores are set.
pub fn core_for_thread(cores: &[usize], thread: usize) -> Option<usize> {
    if cores.is_empty() {
        return None;
    }
    Some(cores[thread % cores.len()])
}

/// Pins the calling thread, thread number `thread` of its scenario, to its
/// core when cores are set. A refusal (a core outside the mask a `taskset`
/// gave the process) is reported and the thread runs unpinned.
pub fn pin_thread(thread: usize) {
    let Some(core) = core_for_thread(CORES.get().map_or(&[], Vec::as_slice), thread) else {
        return;
    };
    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        eprintln!("loadgen: could not pin thread {thread} to core {core}; it runs unpinned");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_take_the_listed_cores_in_turn() {
        assert_eq!(core_for_thread(&[], 0), None);
        assert_eq!(core_for_thread(&[1], 0), Some(1));
        assert_eq!(core_for_thread(&[1], 5), Some(1));
        let cores = [2, 0, 3];
        let taken: Vec<_> = (0..5).filter_map(|thread| core_for_thread(&cores, thread)).collect();
        assert_eq!(taken, vec![2, 0, 3, 2, 0]);
    }
}
