//! Fault injection for the fault suite (crates/cli/tests/suite/faults.rs): numbered crash points
//! where the process kills itself with SIGKILL, and pause points where it waits for the test.
//! Both are driven by environment variables that only the tests set; otherwise each point
//! costs one check of an already-initialised `OnceLock`.
//!
//! - `LIFEBOAT_CRASH_AT=N`: the N-th crash point reached (counting from 1) kills the process.
//! - `LIFEBOAT_CRASH_COUNT=FILE`: the number of crash points reached is written to FILE when
//!   the command ends ([`report`]), so a test can choose N among them.
//! - `LIFEBOAT_PAUSE_AT=TEXT` with `LIFEBOAT_PAUSE_DIR=DIR`: at a pause point whose description
//!   contains TEXT, the process writes the description into the FIFO `DIR/paused` and waits
//!   until the FIFO `DIR/resume` is opened for writing and closed. One pause at a time.
//! - `LIFEBOAT_CRASH_AFTER_WRITES=N`: the process aborts (no cleanup, like `kill -9`) after
//!   its N-th write of restored file data ([`write_point`]).
//!
//! The hooks exist only with the `testing` feature, which the test builds turn on (the CLI's
//! dev-dependencies ask for it): in a release binary each is an empty function, and no
//! environment variable can make a user's `lifeboat` kill itself.

#[cfg(feature = "testing")]
mod hooks {
    use std::io::{Read, Write};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, OnceLock};

    struct Faults {
        crash_at: Option<u64>,
        count_file: Option<PathBuf>,
        reached: AtomicU64,
        pause: Option<(String, PathBuf)>,
        pausing: Mutex<()>,
    }

    fn faults() -> Option<&'static Faults> {
        static FAULTS: OnceLock<Option<Faults>> = OnceLock::new();
        FAULTS
            .get_or_init(|| {
                let crash_at = std::env::var("LIFEBOAT_CRASH_AT").ok().and_then(|v| v.parse().ok());
                let count_file = std::env::var_os("LIFEBOAT_CRASH_COUNT").map(PathBuf::from);
                let pause = match (std::env::var("LIFEBOAT_PAUSE_AT"), std::env::var_os("LIFEBOAT_PAUSE_DIR")) {
                    (Ok(text), Some(dir)) if !text.is_empty() => Some((text, PathBuf::from(dir))),
                    _ => None,
                };
                (crash_at.is_some() || count_file.is_some() || pause.is_some()).then(|| Faults {
                    crash_at,
                    count_file,
                    reached: AtomicU64::new(0),
                    pause,
                    pausing: Mutex::new(()),
                })
            })
            .as_ref()
    }

    /// A moment where a crash must leave everything usable: the `LIFEBOAT_CRASH_AT`-th one
    /// reached kills the process, as `kill -9` would.
    pub fn crash_point() {
        let Some(f) = faults() else { return };
        let n = f.reached.fetch_add(1, Ordering::SeqCst) + 1;
        if f.crash_at == Some(n) {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Writes how many crash points were reached, for `LIFEBOAT_CRASH_COUNT`.
    pub fn report() {
        if let Some(Faults { count_file: Some(path), reached, .. }) = faults() {
            let _ = std::fs::write(path, reached.load(Ordering::SeqCst).to_string());
        }
    }

    /// A write of restored file data: the `LIFEBOAT_CRASH_AFTER_WRITES`-th one aborts the
    /// process.
    pub fn write_point() {
        static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let limit =
            LIMIT.get_or_init(|| std::env::var("LIFEBOAT_CRASH_AFTER_WRITES").ok().and_then(|v| v.parse().ok()));
        if let Some(n) = limit {
            if WRITES.fetch_add(1, Ordering::SeqCst) + 1 >= *n {
                std::process::abort();
            }
        }
    }

    /// Waits for the test when `what()` (made only when pausing is asked for) contains
    /// `LIFEBOAT_PAUSE_AT` (see the module's comment).
    pub fn pause_point(what: impl FnOnce() -> String) {
        let Some(Faults { pause: Some((text, dir)), pausing, .. }) = faults() else { return };
        let what = what();
        if !what.contains(text.as_str()) {
            return;
        }
        let _one = pausing.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(dir.join("paused")) {
            let _ = writeln!(f, "{what}");
        }
        if let Ok(mut f) = std::fs::File::open(dir.join("resume")) {
            let mut sink = Vec::new();
            let _ = f.read_to_end(&mut sink);
        }
    }
}

#[cfg(feature = "testing")]
pub use hooks::{crash_point, pause_point, report, write_point};

#[cfg(not(feature = "testing"))]
mod hooks {
    /// See the module's documentation: nothing without the `testing` feature.
    #[inline(always)]
    pub fn crash_point() {}
    #[inline(always)]
    pub fn report() {}
    #[inline(always)]
    pub fn write_point() {}
    #[inline(always)]
    pub fn pause_point(_what: impl FnOnce() -> String) {}
}

#[cfg(not(feature = "testing"))]
pub use hooks::{crash_point, pause_point, report, write_point};
