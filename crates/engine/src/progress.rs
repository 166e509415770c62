//! Progress of a running job, shared between the job and whoever shows it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lifeboat_repository::WriteStats;

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
    /// Set by whoever wants the job to stop; the job stops at the next safe point. Shared
    /// with the repository's writer, which stops sending packs once it is set.
    pub cancel: Arc<AtomicBool>,
    /// The uploads of a job that sends data to a location: what is done is what has arrived
    /// there, not what was read (see [`Progress::snapshot`]).
    upload: Mutex<Option<Arc<WriteStats>>>,
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

    /// Counts the job's bytes as done only once the location has them.
    pub fn track_upload(&self, stats: Arc<WriteStats>) {
        *self.upload.lock().expect("upload lock") = Some(stats);
    }

    /// Forgets what was done, for a job that begins again from the start.
    pub fn start_over(&self) {
        self.files_done.store(0, Ordering::Relaxed);
        self.bytes_done.store(0, Ordering::Relaxed);
        self.totals_known.store(false, Ordering::Relaxed);
    }

    pub fn set_totals(&self, files: u64, bytes: u64, known: bool) {
        self.files_total.store(files, Ordering::Relaxed);
        self.bytes_total.store(bytes, Ordering::Relaxed);
        self.totals_known.store(known, Ordering::Relaxed);
    }

    /// Counters of their own that stop when this job is cancelled: a step shown apart (a
    /// restore's safety backup) that Ctrl-C or a cancelled job stops too.
    pub(crate) fn sharing_cancel(&self) -> Progress {
        Progress { cancel: self.cancel.clone(), ..Default::default() }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The counters now. With uploads tracked, `bytes_done` is the bytes read scaled by the
    /// share of their sealed data the location has stored: the slower of the two stages sets
    /// it, so a bar (and its rate and ETA) waits for a slow upload instead of sitting at 100 %.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let read = self.bytes_done.load(Ordering::Relaxed);
        let done = match &*self.upload.lock().expect("upload lock") {
            Some(u) => {
                let sealed = u.sealed_bytes.load(Ordering::Relaxed);
                let stored = u.stored_bytes.load(Ordering::Relaxed).min(sealed);
                if sealed == 0 {
                    read
                } else {
                    (read as u128 * stored as u128 / sealed as u128) as u64
                }
            }
            None => read,
        };
        ProgressSnapshot {
            phase: self.phase.lock().expect("phase lock").clone(),
            files_done: self.files_done.load(Ordering::Relaxed),
            bytes_done: done,
            files_total: self.files_total.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            totals_known: self.totals_known.load(Ordering::Relaxed),
            warnings: self.warnings.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything read but little sent (a slow location, an upload limit): the figures say
    /// how far the upload is, not the reading; once all is stored, all is done.
    #[test]
    fn done_is_what_the_location_has_not_what_was_read() {
        let p = Progress::default();
        let uploads = Arc::new(WriteStats::default());
        p.track_upload(uploads.clone());
        p.set_totals(10, 1000, true);
        p.add(10, 1000);
        uploads.sealed_bytes.store(400, Ordering::Relaxed);
        assert_eq!(p.snapshot().bytes_done, 0, "read, sealed, nothing stored yet");
        uploads.stored_bytes.store(100, Ordering::Relaxed);
        assert_eq!(p.snapshot().bytes_done, 250);
        // Pack headers make the stored bytes a little more than the sealed ones.
        uploads.stored_bytes.store(410, Ordering::Relaxed);
        assert_eq!(p.snapshot().bytes_done, 1000);
        // Nothing new to send (an unchanged backup): reading is the work.
        let q = Progress::default();
        q.track_upload(Arc::new(WriteStats::default()));
        q.add(3, 300);
        assert_eq!(q.snapshot().bytes_done, 300);
    }
}
