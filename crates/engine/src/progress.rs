//! Progress of a running job, shared between the job and whoever shows it.
//!
//! The job counts what it has read (files and bytes) and what it expects (totals); a backup
//! also hands over its uploads ([`Progress::track_upload`]). [`Progress::snapshot`] turns
//! those counters into the figures every front end shows, and is the one place that keeps
//! them honest:
//!
//! - `bytes_done` is the slowest stage: the bytes read less those whose data still waits to
//!   reach the location. When the upload is the bottleneck, the bar follows the location.
//! - done never exceeds total: a total that proves low (an estimate from the previous
//!   backup, a count still under way) grows to what was read.
//! - figures never go backwards (until the job begins again, [`Progress::start_over`]).
//! - the rate is of `bytes_done`, over the last seconds, and the ETA is at that rate.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lifeboat_repository::WriteStats;

/// The span of time the rate is measured over.
const RATE_WINDOW: Duration = Duration::from_secs(10);
/// The least span a rate is measured over: less would be noise.
const RATE_LEAST: Duration = Duration::from_secs(1);
/// One sample of `bytes_done` for the rate at most this often.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// Counters a job updates and a display reads (through [`Progress::snapshot`]). Totals may
/// become known late (a backup counts its files while it runs); `totals_known` says when
/// they cover the whole job (counted, or estimated from the previous backup).
#[derive(Debug, Default)]
pub struct Progress {
    phase: Mutex<String>,
    /// Files and bytes read (or written, for a restore): the first stage.
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
    /// What was last shown, so that no figure goes backwards, and the samples of the rate.
    shown: Mutex<Shown>,
}

#[derive(Debug, Default)]
struct Shown {
    files_done: u64,
    bytes_done: u64,
    bytes_read: u64,
    files_total: u64,
    bytes_total: u64,
    samples: VecDeque<(Instant, u64)>,
}

/// The figures of a job at one moment, as every front end shows them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProgressSnapshot {
    pub phase: String,
    /// Files read (or written): never more than `files_total`.
    pub files_done: u64,
    /// Bytes through the slowest stage: for a backup, read and stored at the location. The
    /// bar, the percent, the rate and the ETA follow it. Never more than `bytes_total`.
    pub bytes_done: u64,
    /// Bytes through the first stage (read from disk): `bytes_done` or more.
    pub bytes_read: u64,
    pub files_total: u64,
    pub bytes_total: u64,
    pub totals_known: bool,
    pub warnings: u64,
    /// 0-100, of `bytes_done` in `bytes_total`, when the totals are known.
    pub percent: Option<f64>,
    /// Bytes of `bytes_done` a second, over the last seconds.
    pub rate: f64,
    /// Seconds left at that rate, when the totals are known.
    pub eta: Option<f64>,
}

impl ProgressSnapshot {
    /// The figures of a job that has ended. One that succeeded did all there was to do:
    /// what it did is the total, at 100 %. One that failed or was cancelled has no percent,
    /// rate or ETA, so that nothing shows it part done.
    pub fn ended(mut self, succeeded: bool) -> Self {
        self.eta = None;
        if succeeded {
            self.files_total = self.files_done;
            self.bytes_done = self.bytes_read;
            self.bytes_total = self.bytes_read;
            self.totals_known = true;
            self.percent = Some(100.0);
        } else {
            self.percent = None;
            self.rate = 0.0;
        }
        self
    }
}

impl Progress {
    pub fn set_phase(&self, phase: impl Into<String>) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase.into();
    }

    pub fn add(&self, files: u64, bytes: u64) {
        self.files_done.fetch_add(files, Ordering::Relaxed);
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts the job's bytes as done only once the location has them.
    pub fn track_upload(&self, stats: Arc<WriteStats>) {
        *self.upload.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
    }

    /// Forgets what was done, for a job that begins again from the start.
    pub fn start_over(&self) {
        self.files_done.store(0, Ordering::Relaxed);
        self.bytes_done.store(0, Ordering::Relaxed);
        self.totals_known.store(false, Ordering::Relaxed);
        *self.shown.lock().unwrap_or_else(|e| e.into_inner()) = Shown::default();
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

    /// Plain bytes read whose data has not reached the location yet: the sealed bytes not
    /// yet stored, at the ratio of plain to sealed bytes of the session's new blobs. Bytes
    /// that needed no upload (unchanged or already stored) wait for nothing.
    fn waiting_for_upload(&self) -> u64 {
        let Some(u) = &*self.upload.lock().unwrap_or_else(|e| e.into_inner()) else { return 0 };
        let sealed = u.sealed_bytes.load(Ordering::Relaxed);
        let stored = u.stored_sealed_bytes.load(Ordering::Relaxed);
        let plain = u.new_bytes.load(Ordering::Relaxed);
        if sealed == 0 {
            return 0;
        }
        (u128::from(sealed.saturating_sub(stored)) * u128::from(plain) / u128::from(sealed)) as u64
    }

    /// The figures now (see the module's comment for what they promise).
    pub fn snapshot(&self) -> ProgressSnapshot {
        let waiting = self.waiting_for_upload();
        let read = self.bytes_done.load(Ordering::Relaxed);
        let files = self.files_done.load(Ordering::Relaxed);
        let totals_known = self.totals_known.load(Ordering::Relaxed);
        let now = Instant::now();
        let mut s = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        s.files_done = s.files_done.max(files);
        s.bytes_read = s.bytes_read.max(read);
        s.bytes_done = s.bytes_done.max(read.saturating_sub(waiting)).min(s.bytes_read);
        s.files_total = s.files_total.max(self.files_total.load(Ordering::Relaxed)).max(s.files_done);
        s.bytes_total = s.bytes_total.max(self.bytes_total.load(Ordering::Relaxed)).max(s.bytes_read);
        let rate = s.rate(now);
        let known = totals_known && s.bytes_total > 0;
        let percent = known.then(|| s.bytes_done as f64 * 100.0 / s.bytes_total as f64);
        let eta = (known && rate > 0.0).then(|| (s.bytes_total - s.bytes_done) as f64 / rate);
        ProgressSnapshot {
            phase: self.phase.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            files_done: s.files_done,
            bytes_done: s.bytes_done,
            bytes_read: s.bytes_read,
            files_total: s.files_total,
            bytes_total: s.bytes_total,
            totals_known,
            warnings: self.warnings.load(Ordering::Relaxed),
            percent,
            rate,
            eta,
        }
    }
}

impl Shown {
    /// Samples `bytes_done` and measures its rate over the window.
    fn rate(&mut self, now: Instant) -> f64 {
        let due = match self.samples.back() {
            Some((at, _)) => now.duration_since(*at) >= SAMPLE_EVERY,
            None => true,
        };
        if due {
            self.samples.push_back((now, self.bytes_done));
        }
        // The oldest sample kept is the newest one at least a window old.
        while self.samples.len() > 2 && now.duration_since(self.samples[1].0) >= RATE_WINDOW {
            self.samples.pop_front();
        }
        let Some(&(since, from)) = self.samples.front() else { return 0.0 };
        let span = now.duration_since(since);
        if span < RATE_LEAST {
            return 0.0;
        }
        self.bytes_done.saturating_sub(from) as f64 / span.as_secs_f64()
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
        uploads.new_bytes.store(1000, Ordering::Relaxed);
        uploads.sealed_bytes.store(400, Ordering::Relaxed);
        let s = p.snapshot();
        assert_eq!((s.bytes_done, s.bytes_read), (0, 1000), "read, sealed, nothing stored yet");
        assert_eq!(s.percent, Some(0.0));
        uploads.stored_sealed_bytes.store(100, Ordering::Relaxed);
        assert_eq!(p.snapshot().bytes_done, 250);
        uploads.stored_sealed_bytes.store(400, Ordering::Relaxed);
        assert_eq!(p.snapshot().bytes_done, 1000);
        assert_eq!(p.snapshot().percent, Some(100.0));
        // Nothing new to send (an unchanged backup): reading is the work.
        let q = Progress::default();
        q.track_upload(Arc::new(WriteStats::default()));
        q.add(3, 300);
        assert_eq!(q.snapshot().bytes_done, 300);
    }

    /// Unchanged files need no upload: they are done once read, whatever new data waits.
    #[test]
    fn only_new_data_waits_for_the_upload() {
        let p = Progress::default();
        let uploads = Arc::new(WriteStats::default());
        p.track_upload(uploads.clone());
        p.add(5, 900);
        uploads.new_bytes.store(100, Ordering::Relaxed);
        uploads.sealed_bytes.store(50, Ordering::Relaxed);
        assert_eq!(p.snapshot().bytes_done, 800);
    }

    /// An estimate that proves low grows; nothing goes backwards, even when the counters of
    /// the stages are read between two of their updates.
    #[test]
    fn done_never_exceeds_total_nor_goes_back() {
        let p = Progress::default();
        let uploads = Arc::new(WriteStats::default());
        p.track_upload(uploads.clone());
        p.set_totals(2, 100, true);
        p.add(3, 150);
        let s = p.snapshot();
        assert_eq!((s.files_done, s.files_total, s.bytes_done, s.bytes_total), (3, 3, 150, 150));
        assert_eq!(s.percent, Some(100.0));
        // A blob counted as new before its bytes count as read: the figure holds.
        uploads.new_bytes.store(60, Ordering::Relaxed);
        uploads.sealed_bytes.store(60, Ordering::Relaxed);
        assert_eq!(p.snapshot().bytes_done, 150);
        p.add(1, 60);
        let s = p.snapshot();
        assert_eq!((s.bytes_done, s.bytes_read, s.bytes_total, s.files_total), (150, 210, 210, 4));
        assert!(s.percent.unwrap() < 100.0);
        // A job that begins again starts from nothing.
        p.start_over();
        assert_eq!(p.snapshot().files_done, 0);
    }

    #[test]
    fn an_ended_job_shows_its_end() {
        let p = Progress::default();
        p.set_totals(10, 1000, true);
        p.add(2, 200);
        let failed = p.snapshot().ended(false);
        assert_eq!((failed.percent, failed.eta, failed.rate), (None, None, 0.0));
        let done = p.snapshot().ended(true);
        assert_eq!((done.percent, done.bytes_done, done.bytes_total, done.files_total), (Some(100.0), 200, 200, 2));
    }
}
