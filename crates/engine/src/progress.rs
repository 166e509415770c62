//! Progress of a running job, shared between the job and whoever shows it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Counters a job updates and a display reads. Totals may become known late (a backup
/// counts its files while it runs); `totals_known` says when they are final.
#[derive(Debug, Default)]
pub struct Progress {
    phase: Mutex<String>,
    pub files_done: AtomicU64,
    pub bytes_done: AtomicU64,
    pub files_total: AtomicU64,
    pub bytes_total: AtomicU64,
    pub totals_known: AtomicBool,
    pub warnings: AtomicU64,
    /// Set by whoever wants the job to stop; the job stops at the next safe point.
    pub cancel: AtomicBool,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProgressSnapshot {
    pub phase: String,
    pub files_done: u64,
    pub bytes_done: u64,
    pub files_total: u64,
    pub bytes_total: u64,
    pub totals_known: bool,
    pub warnings: u64,
}

impl Progress {
    pub fn set_phase(&self, phase: impl Into<String>) {
        *self.phase.lock().expect("phase lock") = phase.into();
    }

    pub fn add(&self, files: u64, bytes: u64) {
        self.files_done.fetch_add(files, Ordering::Relaxed);
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn set_totals(&self, files: u64, bytes: u64, known: bool) {
        self.files_total.store(files, Ordering::Relaxed);
        self.bytes_total.store(bytes, Ordering::Relaxed);
        self.totals_known.store(known, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            phase: self.phase.lock().expect("phase lock").clone(),
            files_done: self.files_done.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            files_total: self.files_total.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            totals_known: self.totals_known.load(Ordering::Relaxed),
            warnings: self.warnings.load(Ordering::Relaxed),
        }
    }
}
