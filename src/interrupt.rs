//! Stopping a run cleanly on SIGINT (Ctrl-C) or SIGTERM. The first signal
//! raises a flag, which the run reads between windows of the engine: it
//! stops there, writes complete outputs of what it simulated, and exits
//! with 128 + the signal's number (130, 143). A second signal ends the
//! process at once, as it would have without eremu.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};

/// The first signal received, or 0.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Raised with [`RECEIVED`], for code that watches a flag ([`stop_flag`]).
static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The signals that stop a run.
pub const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

extern "C" fn on_signal(sig: libc::c_int) {
    if RECEIVED
        .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        // An atomic load and store: async-signal-safe.
        if let Some(flag) = FLAG.get() {
            flag.store(true, Ordering::SeqCst);
        }
    } else {
        // The second: the default action (delivered once this returns).
        // Both calls are async-signal-safe.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
}

/// Installs the handler of SIGINT and SIGTERM, leaving a signal the
/// process was started ignoring (`nohup`, a background job) ignored.
pub fn install() -> std::io::Result<()> {
    FLAG.get_or_init(Arc::default);
    for sig in SIGNALS {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only touches an atomic and calls
        // async-signal-safe functions.
        let previous = unsafe { libc::signal(sig, handler) };
        if previous == libc::SIG_ERR {
            return Err(std::io::Error::last_os_error());
        }
        if previous == libc::SIG_IGN {
            unsafe { libc::signal(sig, libc::SIG_IGN) };
        }
    }
    Ok(())
}

/// The first stopping signal received since [`install`], if any.
pub fn received() -> Option<libc::c_int> {
    Some(RECEIVED.load(Ordering::SeqCst)).filter(|&s| s != 0)
}

/// A flag raised with the first stopping signal (after [`install`]), for
/// runs that watch a flag rather than calling [`received`].
pub fn stop_flag() -> Arc<AtomicBool> {
    FLAG.get_or_init(Arc::default).clone()
}

/// Sends `sig` to this process (for tests of the stopping path: the
/// handler has run when this returns).
pub fn raise(sig: libc::c_int) {
    // SAFETY: raise has no memory-safety preconditions.
    unsafe { libc::raise(sig) };
}

/// The exit status of a run stopped by `sig`: 128 + its number.
pub fn exit_status(sig: libc::c_int) -> u8 {
    (128 + sig).clamp(0, 255) as u8
}

/// The signal's name, for messages.
pub fn name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// A signal to raise after so many windows of the run, from
/// `EREMU_TEST_SIGNAL` = `INT@<windows>` or `TERM@<windows>`: a test's
/// way to interrupt a run at a known point, without timing.
pub fn test_hook() -> Option<(libc::c_int, u64)> {
    let v = std::env::var("EREMU_TEST_SIGNAL").ok()?;
    let (sig, windows) = v.split_once('@')?;
    let sig = match sig {
        "INT" => libc::SIGINT,
        "TERM" => libc::SIGTERM,
        _ => return None,
    };
    Some((sig, windows.parse().ok()?))
}
