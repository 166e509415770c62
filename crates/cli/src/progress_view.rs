//! Shows a job's progress: a bar with rate and ETA on a terminal, a plain line every few
//! seconds otherwise.

use std::io::IsTerminal;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
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
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} {msg:20} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b
        });
        let thread = {
            let stop = stop.clone();
            let bar = bar.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut last_plain = Instant::now();
                let (m, c) = &*stop;
                let mut stopped = m.lock().expect("progress lock");
                while !*stopped {
                    let s = progress.snapshot();
                    match &bar {
                        Some(b) => {
                            b.set_length(s.bytes_total.max(s.bytes_done));
                            b.set_position(s.bytes_done);
                            b.set_message(format!("{} ({})", s.phase, format::count(s.files_done, "file", "files")));
                        }
                        None if last_plain.elapsed() >= PLAIN_EVERY => {
                            last_plain = Instant::now();
                            let secs = started.elapsed().as_secs_f64().max(0.001);
                            let rate = s.bytes_done as f64 / secs;
                            let eta = if s.bytes_total > s.bytes_done && rate > 0.0 {
                                format!(", ETA {}", format::duration((s.bytes_total - s.bytes_done) as f64 / rate))
                            } else {
                                String::new()
                            };
                            let total = if s.bytes_total > 0 {
                                format!(" of {}", format::bytes(s.bytes_total))
                            } else {
                                String::new()
                            };
                            eprintln!(
                                "{}: {}{total}, {}, {}/s{eta}",
                                s.phase,
                                format::bytes(s.bytes_done),
                                format::count(s.files_done, "file", "files"),
                                format::bytes(rate as u64)
                            );
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
