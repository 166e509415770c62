//! One log file per run, under the user's state folder (`/var/log/lifeboat` for root), named
//! `DATE-OPERATION-SLUG.log` so that `lifeboat logs SLUG` finds it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::progress::Progress;

pub type Echo = dyn Fn(&str) + Send + Sync;

pub struct RunLog {
    file: Option<Mutex<BufWriter<File>>>,
    path: Option<PathBuf>,
    echo: Option<Box<Echo>>,
    /// Receives every line as written (`LEVEL message`): the daemon's live job logs.
    tap: Option<Box<Echo>>,
}

impl RunLog {
    /// Opens a new log; a log folder that cannot be written is not fatal (nothing is logged
    /// to a file, and the run goes on).
    pub fn create(dir: &Path, operation: &str, slug: &str, echo: Option<Box<Echo>>) -> RunLog {
        let stamp = jiff::Zoned::now().strftime("%Y%m%d-%H%M%S").to_string();
        let path = dir.join(format!("{stamp}-{operation}-{slug}.log"));
        let file = crate::paths::private_dir(dir).and_then(|_| crate::paths::private_file(&path)).ok();
        RunLog { path: file.as_ref().map(|_| path), file: file.map(|f| Mutex::new(BufWriter::new(f))), echo, tap: None }
    }

    /// A log whose every line is also given to `tap`.
    pub fn with_tap(mut self, tap: Box<Echo>) -> RunLog {
        self.tap = Some(tap);
        self
    }

    /// A log that only echoes (tests, dry runs).
    pub fn none() -> RunLog {
        RunLog { file: None, path: None, echo: None, tap: None }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn line(&self, level: &str, msg: &str) {
        if let Some(t) = &self.tap {
            t(&format!("{level} {msg}"));
        }
        if let Some(f) = &self.file {
            let mut f = f.lock().expect("log lock");
            let _ = writeln!(f, "{} {level} {msg}", jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ"));
        }
    }

    pub fn info(&self, msg: &str) {
        self.line("INFO", msg);
    }

    /// A warning: logged, shown, and counted in the progress.
    pub fn warn(&self, progress: &Progress, msg: &str) {
        progress.warnings.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.line("WARN", msg);
        if let Some(e) = &self.echo {
            e(&format!("warning: {msg}"));
        }
    }

    pub fn error(&self, msg: &str) {
        self.line("ERROR", msg);
    }

    pub fn flush(&self) {
        if let Some(f) = &self.file {
            let _ = f.lock().expect("log lock").flush();
        }
    }
}

impl Drop for RunLog {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Finds the log of a run by slug, or the newest one.
pub fn find(dir: &Path, slug: Option<&str>) -> Option<PathBuf> {
    let mut logs: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .filter(|e| slug.is_none_or(|s| e.file_name().to_string_lossy().contains(&format!("-{s}"))))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    logs.sort();
    logs.pop().map(|(_, p)| p)
}
