//! `schedules list|run`: the daemon's own listing and run-now (lifeboat_daemon::Local), in
//! this process.

use std::path::PathBuf;

use anyhow::Result;
use lifeboat_daemon::{Local, ScheduleView};
use lifeboat_engine::schedule::ScheduleConfig;

use super::print_json;
use crate::context::Context;
use crate::exit;
use crate::format;
use crate::output::{out, outln};

fn local(ctx: &Context, config_file: Option<PathBuf>) -> Result<Local> {
    Ok(Local::open(ctx.dirs().clone(), config_file, ctx.config().clone(), ctx.credentials().password_file.clone())?)
}

pub fn list(ctx: &Context, config_file: Option<PathBuf>, json: bool) -> Result<i32> {
    let schedules = local(ctx, config_file)?.schedules();
    if json {
        print_json(&schedules)?;
    } else if schedules.is_empty() {
        outln!("No schedules: add one with [schedule.NAME] in the configuration (docs/CONFIG.md) or on the page.")?;
    } else {
        let dash = || "-".to_string();
        let rows: Vec<Vec<String>> = schedules
            .iter()
            .map(|s: &ScheduleView| {
                vec![
                    s.name.clone(),
                    if s.config.enabled { when(&s.config) } else { format!("off ({})", when(&s.config)) },
                    if s.config.locations.is_empty() { "(default)".to_string() } else { s.config.locations.join(", ") },
                    s.last_run.as_deref().map(format::local_time_of).unwrap_or_else(dash),
                    s.next_run.as_deref().map(format::local_time_of).unwrap_or_else(dash),
                    match (&s.last_outcome, s.waiting.is_empty()) {
                        (Some(e), true) => e.message.clone(),
                        (Some(e), false) => format!("{} (runs once its conditions hold)", e.message),
                        (None, _) => dash(),
                    },
                ]
            })
            .collect();
        out!(
            "{}",
            format::table_with_text(&["NAME", "WHEN", "LOCATIONS", "LAST RUN", "NEXT RUN", "LAST OUTCOME"], &rows)
        )?;
    }
    Ok(exit::OK)
}

/// When a schedule runs, in words: `every day at 02:00`, `cron 0 3 * * 1`.
fn when(s: &ScheduleConfig) -> String {
    if let Some(c) = &s.cron {
        return format!("cron {c}");
    }
    let at = s.at.as_deref().unwrap_or("02:00");
    match s.every.as_deref().unwrap_or("day") {
        "week" if !s.days.is_empty() => format!("every week on {} at {at}", s.days.join(", ")),
        "month" => format!("every month on day {} at {at}", s.day.unwrap_or(1)),
        every => format!("every {every} at {at}"),
    }
}

pub fn run(ctx: &Context, config_file: Option<PathBuf>, name: &str, json: bool) -> Result<i32> {
    let Some(runs) = local(ctx, config_file)?.run(name) else {
        eprintln!("lifeboat: no schedule {name}: see `lifeboat schedules list`");
        return Ok(exit::USAGE);
    };
    if json {
        print_json(&runs)?;
    } else {
        for r in &runs {
            let what = match (&r.skipped, &r.backup, &r.error) {
                (Some(why), _, _) => format!("skipped: {why}"),
                (None, Some(b), _) => format!(
                    "backup {} {} ({}, {})",
                    b["slug"].as_str().unwrap_or("?"),
                    b["status"].as_str().unwrap_or("?").replace('_', " "),
                    format::count(b["files"].as_u64().unwrap_or(0), "file", "files"),
                    format::bytes(b["size"].as_u64().unwrap_or(0)),
                ),
                (None, None, Some(e)) => format!("failed: {e}"),
                (None, None, None) => r.state.clone().unwrap_or_default(),
            };
            outln!("{}: {what}", r.location)?;
        }
    }
    let failed = runs.iter().any(|r| r.state.as_deref().is_some_and(|s| s != "succeeded"));
    let skipped = runs.iter().any(|r| r.skipped.is_some());
    Ok(if failed {
        exit::FAILED
    } else if skipped {
        exit::WARNINGS
    } else {
        exit::OK
    })
}
