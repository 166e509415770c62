//! `/metrics` in the Prometheus text format: per schedule, the time of its last successful
//! backup, its failures and skips; per job kind, bytes and durations; jobs running.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::blocking;
use crate::events::kind;
use crate::jobs::JobState;
use crate::state::Shared;

pub async fn metrics(State(d): State<Shared>) -> impl IntoResponse {
    let text = blocking(move || Ok(render(&d))).await.unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

fn render(d: &Shared) -> String {
    let events = d.events.list(100_000, None).unwrap_or_default();
    let mut last_success: BTreeMap<String, i64> = BTreeMap::new();
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut skips: BTreeMap<String, u64> = BTreeMap::new();
    for name in d.config().config.schedule.keys() {
        failures.insert(name.clone(), 0);
        skips.insert(name.clone(), 0);
    }
    for e in &events {
        let Some(s) = &e.schedule else { continue };
        let t = e.time.parse::<jiff::Timestamp>().map(|t| t.as_second()).unwrap_or(0);
        match e.kind.as_str() {
            kind::BACKUP_COMPLETED | kind::BACKUP_WARNINGS => {
                let v = last_success.entry(s.clone()).or_insert(0);
                *v = (*v).max(t);
            }
            kind::BACKUP_FAILED => *failures.entry(s.clone()).or_insert(0) += 1,
            kind::BACKUP_SKIPPED => *skips.entry(s.clone()).or_insert(0) += 1,
            _ => {}
        }
    }
    let mut out = String::new();
    let mut family = |name: &str, help: &str, kind: &str, rows: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in rows {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let label = |k: &str, v: &str| format!("{{{k}=\"{}\"}}", v.replace('\\', "\\\\").replace('"', "\\\""));
    family(
        "lifeboat_schedule_last_success_timestamp_seconds",
        "When the schedule's last successful backup finished (Unix time).",
        "gauge",
        last_success.iter().map(|(s, t)| (label("schedule", s), t.to_string())).collect(),
    );
    family(
        "lifeboat_schedule_failures_total",
        "Backups of the schedule that failed.",
        "counter",
        failures.iter().map(|(s, n)| (label("schedule", s), n.to_string())).collect(),
    );
    family(
        "lifeboat_schedule_skipped_total",
        "Runs of the schedule skipped because a condition did not hold.",
        "counter",
        skips.iter().map(|(s, n)| (label("schedule", s), n.to_string())).collect(),
    );
    let jobs = d.jobs.list();
    let mut bytes: BTreeMap<String, u64> = BTreeMap::new();
    let mut seconds: BTreeMap<String, f64> = BTreeMap::new();
    let mut running = 0;
    for j in &jobs {
        let v = j.view();
        if v.state == JobState::Running {
            running += 1;
        }
        *bytes.entry(j.kind.clone()).or_default() += v.progress.bytes_done;
        if let (Some(s), Some(f)) = (&v.started, &v.finished) {
            if let (Ok(s), Ok(f)) = (s.parse::<jiff::Timestamp>(), f.parse::<jiff::Timestamp>()) {
                *seconds.entry(j.kind.clone()).or_default() +=
                    (f.as_millisecond() - s.as_millisecond()) as f64 / 1000.0;
            }
        }
    }
    family(
        "lifeboat_job_bytes_total",
        "Bytes processed by jobs since the daemon started, by kind.",
        "counter",
        bytes.iter().map(|(k, b)| (label("kind", k), b.to_string())).collect(),
    );
    family(
        "lifeboat_job_duration_seconds_total",
        "Time spent by finished jobs since the daemon started, by kind.",
        "counter",
        seconds.iter().map(|(k, s)| (label("kind", k), format!("{s:.3}"))).collect(),
    );
    family("lifeboat_jobs_running", "Jobs running now.", "gauge", vec![(String::new(), running.to_string())]);
    out
}
