//! SIGTERM, SIGINT and SIGHUP as ordinary events: blocked in every thread
//! (the mask is set before the shard threads start, and they inherit it)
//! and taken synchronously with `sigwait` by whoever waits for them, so no
//! handler runs at an arbitrary point and nothing is async-signal-unsafe.
//! SIGTERM and SIGINT drain the server; SIGHUP reloads the TLS certificate.

fn signal_set(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: `set` is a valid sigset_t that sigemptyset initialises before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &signal in signals {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// The stop signals.
const STOP: [i32; 2] = [libc::SIGTERM, libc::SIGINT];

/// The stop signals and the reload signal.
const STOP_OR_RELOAD: [i32; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread and every thread
/// it starts afterwards. Call before starting the shards.
pub fn block_stop_signals() -> std::io::Result<()> {
    let set = signal_set(&STOP_OR_RELOAD);
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let result = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if result != 0 {
        return Err(std::io::Error::from_raw_os_error(result));
    }
    Ok(())
}

fn wait_for(signals: &[i32]) -> i32 {
    let set = signal_set(signals);
    let mut signal = 0;
    loop {
        // SAFETY: `set` is initialised and `signal` is a valid out-pointer.
        if unsafe { libc::sigwait(&set, &mut signal) } == 0 {
            return signal;
        }
    }
}

/// Waits for the next SIGTERM or SIGINT (they must be blocked); returns it.
pub fn wait_stop_signal() -> i32 {
    wait_for(&STOP)
}

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// SIGTERM or SIGINT (the number): drain and exit.
    Stop(i32),
    /// SIGHUP: reload the TLS certificate.
    Reload,
}

/// Waits for the next SIGTERM, SIGINT or SIGHUP.
pub fn wait_stop_or_reload() -> Asked {
    match wait_for(&STOP_OR_RELOAD) {
        libc::SIGHUP => Asked::Reload,
        signal => Asked::Stop(signal),
    }
}
