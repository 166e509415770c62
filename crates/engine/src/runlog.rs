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

    /// Something done that a person should know of (a service stopped for a restore): logged
    /// and shown, not a warning.
    pub fn say(&self, msg: &str) {
        self.line("INFO", msg);
        if let Some(e) = &self.echo {
            e(msg);
        }
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

/// The slug of a run whose backup was never made (it failed before one was chosen).
pub const NOT_STARTED: &str = "not-started";

/// One log file, as `logs --list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogFile {
    pub path: PathBuf,
    /// When the run started (local time, as in the name: `YYYYmmdd-HHMMSS`).
    pub started: String,
    /// `backup`, `restore`, …
    pub operation: String,
    /// The backup it made or restored ([`NOT_STARTED`] when it failed before one existed).
    pub slug: String,
    pub size: u64,
}

/// Every log in `dir`, newest first.
pub fn list(dir: &Path) -> Vec<LogFile> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut logs: Vec<LogFile> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".log")?;
            // DATE-TIME-OPERATION-SLUG, where a slug may itself hold '-'.
            let mut parts = stem.splitn(4, '-');
            let (date, time, operation, slug) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            Some(LogFile {
                path: e.path(),
                started: format!("{date}-{time}"),
                operation: operation.to_string(),
                slug: slug.to_string(),
                size: e.metadata().ok()?.len(),
            })
        })
        .collect();
    // The name's stamp has seconds; runs in the same second keep their file order.
    logs.sort_by(|a, b| b.started.cmp(&a.started).then_with(|| b.path.cmp(&a.path)));
    logs
}

/// The log of a run: with a slug, that of the run of `operation` on the backup it starts with
/// (the backup's own run for `backup`); without, the newest log of any run.
pub fn find(dir: &Path, slug: Option<&str>, operation: &str) -> Option<PathBuf> {
    let logs = list(dir);
    match slug {
        None => logs.into_iter().next().map(|l| l.path),
        Some(s) => logs.into_iter().find(|l| l.operation == operation && l.slug.starts_with(s)).map(|l| l.path),
    }
}
