//! Shows a job's progress: a bar with rate and ETA on a terminal, a plain line every few
//! seconds otherwise.

use std::io::IsTerminal;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lifeboat_engine::progress::ProgressSnapshot;
use lifeboat_engine::Progress;

use crate::format;

pub struct ProgressView {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
    bar: Option<ProgressBar>,
}

const PLAIN_EVERY: Duration = Duration::from_secs(10);

impl ProgressView {
    pub fn start(progress: Arc<Progress>, quiet: bool) -> ProgressView {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        if quiet {
            return ProgressView { stop, thread: None, bar: None };
        }
        let tty = std::io::stderr().is_terminal();
        let bar = tty.then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(8));
            // The rate and ETA are the progress's own (of the figure the bar shows), in the
            // prefix, as on the page and in the API.
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg:20} [{bar:30}] {bytes}/{total_bytes} {prefix}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b
        });
        let thread = {
            let stop = stop.clone();
            let bar = bar.clone();
            std::thread::spawn(move || {
                let mut last_plain = Instant::now();
                let (m, c) = &*stop;
                let mut stopped = m.lock().expect("progress lock");
                while !*stopped {
                    let s = progress.snapshot();
                    match &bar {
                        Some(b) => {
                            b.set_length(s.bytes_total);
                            b.set_position(s.bytes_done);
                            b.set_message(format!("{} ({})", s.phase, format::count(s.files_done, "file", "files")));
                            b.set_prefix(rate_and_eta(&s));
                        }
                        None if last_plain.elapsed() >= PLAIN_EVERY => {
                            last_plain = Instant::now();
                            eprintln!("{}", plain_line(&s));
                        }
                        None => {}
                    }
                    stopped = c.wait_timeout(stopped, Duration::from_millis(125)).expect("progress lock").0;
                }
            })
        };
        ProgressView { stop, thread: Some(thread), bar }
    }

    /// A printer for warnings that does not tear the bar.
    pub fn printer(&self) -> Box<dyn Fn(&str) + Send + Sync> {
        match &self.bar {
            Some(b) => {
                let b = b.clone();
                Box::new(move |line| b.println(line))
            }
            None => Box::new(|line| eprintln!("{line}")),
        }
    }

    pub fn finish(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        {
            let (m, c) = &*self.stop;
            *m.lock().expect("progress lock") = true;
            c.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for ProgressView {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// "8.0 MiB/s, ETA 12s", or what of it is known.
fn rate_and_eta(s: &ProgressSnapshot) -> String {
    let mut parts = Vec::new();
    if s.rate >= 1.0 {
        parts.push(format!("{}/s", format::bytes(s.rate as u64)));
    }
    if let Some(eta) = s.eta {
        parts.push(format!("ETA {}", format::duration(eta)));
    }
    parts.join(", ")
}

/// The line written every few seconds when standard error is not a terminal:
/// "backing up: 16.0 MiB of 40.0 MiB (40.0 MiB read), 24 of 24 files, 8.0 MiB/s, ETA 3s".
fn plain_line(s: &ProgressSnapshot) -> String {
    let mut line = format!("{}: {}", s.phase, format::bytes(s.bytes_done));
    if s.bytes_total > 0 {
        line.push_str(&format!(" of {}", format::bytes(s.bytes_total)));
    }
    if s.bytes_read > s.bytes_done {
        line.push_str(&format!(" ({} read)", format::bytes(s.bytes_read)));
    }
    if s.totals_known && s.files_total > 0 {
        line.push_str(&format!(", {} of {}", s.files_done, format::count(s.files_total, "file", "files")));
    } else {
        line.push_str(&format!(", {}", format::count(s.files_done, "file", "files")));
    }
    let rate = rate_and_eta(s);
    if !rate.is_empty() {
        line.push_str(&format!(", {rate}"));
    }
    line
}
