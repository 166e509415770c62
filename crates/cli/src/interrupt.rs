//! Ctrl-C (SIGINT) and SIGTERM during a command that can stop cleanly: the first one asks
//! the work to stop at its next safe point (its `Progress::cancel`), so the command ends as
//! an interrupted run — its log and event written, the repository's locks released, exit code
//! 130. A second one ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::exit;

/// The flag the first signal sets: the running command's cancel.
static CANCEL: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// From now on, SIGINT and SIGTERM set `cancel` (once per process: a later call keeps the
/// first flag).
pub fn cancel_on_signals(cancel: Arc<AtomicBool>) {
    let _ = CANCEL.set(cancel);
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, SigSet::empty());
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only loads an initialised `OnceLock`, swaps an atomic and calls
        // write(2) and _exit(2), all async-signal-safe; it touches no lock and allocates
        // nothing.
        let _ = unsafe { sigaction(signal, &action) };
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    let Some(cancel) = CANCEL.get() else { return };
    if cancel.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe; nothing is flushed, as a kill would leave it.
        unsafe { libc::_exit(exit::INTERRUPTED) };
    }
    let msg = b"\nlifeboat: interrupted; stopping at the next safe point (again to stop at once)\n";
    // SAFETY: write(2) on stderr with a valid buffer and its length is async-signal-safe.
    let _ = unsafe { libc::write(libc::STDERR_FILENO, msg.as_ptr().cast(), msg.len()) };
}
