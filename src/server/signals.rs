//! SIGTERM and SIGINT as ordinary events: blocked in every thread (the
//! mask is set before the shard threads start, and they inherit it) and
//! taken synchronously with `sigwait` by whoever waits for them, so no
//! handler runs at an arbitrary point and nothing is async-signal-unsafe.

/// The stop signals.
fn stop_signals() -> libc::sigset_t {
    // SAFETY: `set` is a valid sigset_t that sigemptyset initialises before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

/// Blocks SIGTERM and SIGINT in the calling thread and every thread it
/// starts afterwards. Call before starting the shards.
pub fn block_stop_signals() -> std::io::Result<()> {
    let set = stop_signals();
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let result = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if result != 0 {
        return Err(std::io::Error::from_raw_os_error(result));
    }
    Ok(())
}

/// Waits for the next SIGTERM or SIGINT (they must be blocked); returns it.
pub fn wait_stop_signal() -> i32 {
    let set = stop_signals();
    let mut signal = 0;
    loop {
        // SAFETY: `set` is initialised and `signal` is a valid out-pointer.
        if unsafe { libc::sigwait(&set, &mut signal) } == 0 {
            return signal;
        }
    }
}
