//! Jobs: backups, restores, prunes and deletions the daemon runs, one thread each. Jobs that
//! write to a location wait their turn for it (one writer per location); each has an id, a
//! state, progress, a live log and a result, and can be cancelled.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use lifeboat_engine::progress::ProgressSnapshot;
use lifeboat_engine::{EngineError, ErrorKind, Progress};
use serde::Serialize;

/// Log lines kept in memory per job (the full log is in the log file).
const LOG_LINES: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn finished(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }
}

pub struct Job {
    pub id: u64,
    pub kind: String,
    pub location: Option<String>,
    pub description: String,
    pub progress: Arc<Progress>,
    pub created: jiff::Timestamp,
    inner: Mutex<Inner>,
    changed: Condvar,
}

struct Inner {
    state: JobState,
    started: Option<jiff::Timestamp>,
    finished: Option<jiff::Timestamp>,
    log: Vec<String>,
    /// Lines dropped from the front of `log` (so readers can follow by line number).
    dropped: usize,
    result: Option<serde_json::Value>,
    error: Option<EngineError>,
    /// Progress counters when they last changed, for the stuck check.
    last_move: (u64, Instant),
    stuck_reported: bool,
}

/// What the API shows of a job.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: u64,
    pub kind: String,
    pub state: JobState,
    pub location: Option<String>,
    pub description: String,
    pub created: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// The job's figures (`lifeboat_engine::progress`); once it has ended, its end: 100 %
    /// when it succeeded, no percent, rate or ETA when it failed or was cancelled.
    pub progress: ProgressSnapshot,
    pub result: Option<serde_json::Value>,
    /// Why it failed, in the API's words.
    pub error: Option<String>,
    /// The kind of the failure (docs/CONFIG.md, "Errors").
    pub error_kind: Option<ErrorKind>,
    pub log_lines: usize,
}

impl Job {
    pub fn state(&self) -> JobState {
        self.inner.lock().expect("job lock").state
    }

    pub fn log_line(&self, line: &str) {
        let mut i = self.inner.lock().expect("job lock");
        i.log.push(format!("{} {line}", jiff::Timestamp::now().strftime("%H:%M:%S")));
        if i.log.len() > LOG_LINES {
            i.log.remove(0);
            i.dropped += 1;
        }
        drop(i);
        self.changed.notify_all();
    }

    /// Keeps a result for a job that then fails: a restore that did not restore everything
    /// still shows what it did.
    pub fn set_result(&self, v: serde_json::Value) {
        self.inner.lock().expect("job lock").result = Some(v);
    }

    /// Log lines from number `from` on (numbers count from the job's first line), and the
    /// number to ask from next.
    pub fn log_since(&self, from: usize) -> (Vec<String>, usize) {
        let i = self.inner.lock().expect("job lock");
        let start = from.saturating_sub(i.dropped).min(i.log.len());
        (i.log[start..].to_vec(), i.dropped + i.log.len())
    }

    pub fn cancel(&self) {
        self.progress.cancel.store(true, Ordering::Relaxed);
        let mut i = self.inner.lock().expect("job lock");
        if i.state == JobState::Queued {
            i.state = JobState::Cancelled;
            i.finished = Some(jiff::Timestamp::now());
            i.error = Some(EngineError::Cancelled);
        }
        drop(i);
        self.changed.notify_all();
    }

    /// Waits until the job has finished.
    pub fn wait(&self) {
        let mut i = self.inner.lock().expect("job lock");
        while !i.state.finished() {
            i = self.changed.wait(i).expect("job lock");
        }
    }

    pub fn view(&self) -> JobView {
        let i = self.inner.lock().expect("job lock");
        let progress = match i.state {
            JobState::Succeeded => self.progress.snapshot().ended(true),
            JobState::Failed | JobState::Cancelled => self.progress.snapshot().ended(false),
            JobState::Queued | JobState::Running => self.progress.snapshot(),
        };
        JobView {
            id: self.id,
            kind: self.kind.clone(),
            state: i.state,
            location: self.location.clone(),
            description: self.description.clone(),
            created: self.created.to_string(),
            started: i.started.map(|t| t.to_string()),
            finished: i.finished.map(|t| t.to_string()),
            progress,
            result: i.result.clone(),
            error: i.error.as_ref().map(|e| crate::api::ApiError::of(e).message),
            error_kind: i.error.as_ref().map(EngineError::kind),
            log_lines: i.dropped + i.log.len(),
        }
    }

    /// True once when the job has run `limit` without its counters moving.
    pub fn newly_stuck(&self, limit: std::time::Duration) -> bool {
        let mut i = self.inner.lock().expect("job lock");
        if i.state != JobState::Running || i.stuck_reported {
            return false;
        }
        // Every stage counts: a long upload after the reading is progress too.
        let p = self.progress.snapshot();
        let now = p.files_done + p.bytes_read + p.bytes_done;
        if now != i.last_move.0 {
            i.last_move = (now, Instant::now());
            return false;
        }
        if i.last_move.1.elapsed() >= limit {
            i.stuck_reported = true;
            return true;
        }
        false
    }
}

/// What a job's work returns: its result, or why it failed.
pub type Outcome = Result<serde_json::Value, EngineError>;
pub type Work = Box<dyn FnOnce(&Arc<Job>) -> Outcome + Send>;

#[derive(Default)]
pub struct Jobs {
    next: AtomicU64,
    all: Mutex<BTreeMap<u64, Arc<Job>>>,
    writers: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Jobs {
    /// Starts a job. With a location, it waits for any other job writing there first.
    pub fn submit(&self, kind: &str, location: Option<String>, description: String, work: Work) -> Arc<Job> {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let job = Arc::new(Job {
            id,
            kind: kind.to_string(),
            location: location.clone(),
            description,
            progress: Arc::new(Progress::default()),
            created: jiff::Timestamp::now(),
            inner: Mutex::new(Inner {
                state: JobState::Queued,
                started: None,
                finished: None,
                log: Vec::new(),
                dropped: 0,
                result: None,
                error: None,
                last_move: (0, Instant::now()),
                stuck_reported: false,
            }),
            changed: Condvar::new(),
        });
        self.all.lock().expect("jobs lock").insert(id, job.clone());
        let gate = location.map(|l| self.writers.lock().expect("jobs lock").entry(l).or_default().clone());
        let j = job.clone();
        let handle = std::thread::Builder::new().name(format!("job-{id}")).spawn(move || {
            let _turn = gate.as_ref().map(|g| g.lock().unwrap_or_else(|e| e.into_inner()));
            {
                let mut i = j.inner.lock().expect("job lock");
                if i.state == JobState::Cancelled {
                    return;
                }
                i.state = JobState::Running;
                i.started = Some(jiff::Timestamp::now());
                i.last_move = (0, Instant::now());
            }
            j.changed.notify_all();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&j))).unwrap_or_else(|_| {
                Err(EngineError::Internal("the job stopped on an internal error (see the daemon's log)".into()))
            });
            let mut i = j.inner.lock().expect("job lock");
            i.finished = Some(jiff::Timestamp::now());
            match outcome {
                Ok(v) => {
                    i.state = JobState::Succeeded;
                    i.result = Some(v);
                }
                Err(e) if j.progress.is_cancelled() => {
                    i.state = JobState::Cancelled;
                    i.error = Some(e);
                }
                Err(e) => {
                    i.state = JobState::Failed;
                    i.error = Some(e);
                }
            }
            drop(i);
            j.changed.notify_all();
        });
        match handle {
            Ok(h) => self.threads.lock().expect("jobs lock").push(h),
            Err(e) => {
                let mut i = job.inner.lock().expect("job lock");
                i.state = JobState::Failed;
                i.error = Some(EngineError::Internal(format!("cannot start a thread: {e}")));
            }
        }
        job
    }

    pub fn get(&self, id: u64) -> Option<Arc<Job>> {
        self.all.lock().expect("jobs lock").get(&id).cloned()
    }

    /// Every job, newest first.
    pub fn list(&self) -> Vec<Arc<Job>> {
        self.all.lock().expect("jobs lock").values().rev().cloned().collect()
    }

    /// Cancels every job and waits for them to stop.
    pub fn shutdown(&self) -> Vec<Arc<Job>> {
        let running: Vec<Arc<Job>> = self.list().into_iter().filter(|j| !j.state().finished()).collect();
        for j in &running {
            j.cancel();
        }
        let threads = std::mem::take(&mut *self.threads.lock().expect("jobs lock"));
        for t in threads {
            let _ = t.join();
        }
        running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_writer_per_location_and_cancel_before_start() {
        let jobs = Jobs::default();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Mutex::new(rx);
        let first = jobs.submit(
            "backup",
            Some("nas".into()),
            "first".into(),
            Box::new(move |_| {
                rx.lock().unwrap().recv().ok();
                Ok(serde_json::json!({"done": 1}))
            }),
        );
        // Waits for `first` to be running, without sleeping.
        {
            let mut i = first.inner.lock().unwrap();
            while i.state != JobState::Running {
                i = first.changed.wait(i).unwrap();
            }
        }
        let second = jobs.submit("backup", Some("nas".into()), "second".into(), Box::new(|_| Ok(serde_json::json!(2))));
        assert_eq!(second.state(), JobState::Queued, "waits for the location");
        second.cancel();
        tx.send(()).unwrap();
        first.wait();
        second.wait();
        assert_eq!(first.state(), JobState::Succeeded);
        assert_eq!(first.view().progress.percent, Some(100.0));
        assert_eq!(second.state(), JobState::Cancelled);
        let failing = jobs.submit(
            "prune",
            None,
            "x".into(),
            Box::new(|j| {
                j.log_line("INFO trying");
                Err(EngineError::Internal("no space".into()))
            }),
        );
        failing.wait();
        let v = failing.view();
        assert_eq!((v.state, v.error.as_deref(), v.log_lines), (JobState::Failed, Some("no space"), 1));
        assert_eq!(jobs.list().len(), 3);
    }

    #[test]
    fn a_job_without_progress_is_reported_stuck_once() {
        let jobs = Jobs::default();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Mutex::new(rx);
        let j = jobs.submit(
            "backup",
            None,
            "slow".into(),
            Box::new(move |_| {
                rx.lock().unwrap().recv().ok();
                Ok(serde_json::Value::Null)
            }),
        );
        {
            let mut i = j.inner.lock().unwrap();
            while i.state != JobState::Running {
                i = j.changed.wait(i).unwrap();
            }
        }
        assert!(j.newly_stuck(std::time::Duration::ZERO));
        assert!(!j.newly_stuck(std::time::Duration::ZERO), "once");
        tx.send(()).unwrap();
        j.wait();
        assert!(!j.newly_stuck(std::time::Duration::ZERO), "a finished job is not stuck");
    }
}
