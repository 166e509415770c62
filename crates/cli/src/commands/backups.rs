use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use lifeboat_engine::app::{BackupOrder, RestoreOrder};
use lifeboat_engine::{BackupInfo, Progress, RunLog};
use lifeboat_repository::SnapshotStatus;

use super::print_json;
use crate::context::Context;
use crate::exit;
use crate::format;
use crate::progress_view::ProgressView;

pub fn new(
    ctx: &Context,
    name: Option<String>,
    units: Vec<String>,
    location: Option<&str>,
    tags: Vec<String>,
    json: bool,
) -> Result<i32> {
    let progress = Arc::new(Progress::default());
    let view = ProgressView::start(progress.clone(), ctx.quiet);
    let printer = view.printer();
    let mut log_path = None;
    let started = std::time::Instant::now();
    let order = BackupOrder { units, location: location.map(str::to_string), name, tags };
    let result = ctx.back_up(order, &progress, |slug| {
        let log = RunLog::create(&ctx.dirs().logs, "backup", slug, Some(printer));
        log_path = log.path().map(|p| p.to_path_buf());
        log
    });
    view.finish();
    let done = result?;
    let snap = &done.snapshot;
    if json {
        let mut value = serde_json::to_value(&done.info)?;
        value["uploaded"] = done.uploaded.into();
        print_json(&value)?;
    } else {
        println!(
            "Backup {} \"{}\" {} in {}: {} files, {} ({} new, {} stored).",
            snap.slug,
            snap.name,
            status_words(snap.status),
            format::duration(started.elapsed().as_secs_f64()),
            snap.files,
            format::bytes(snap.size),
            format::bytes(snap.added),
            format::bytes(snap.stored)
        );
        if done.location.is_remote() {
            println!("Sent {} to {}.", format::bytes(done.uploaded), done.location.describe());
        }
        for u in &snap.units {
            if let Some(e) = &u.error {
                println!("  unit {} failed: {e}", u.name);
            }
            for w in &u.warnings {
                println!("  warning ({}): {w}", u.name);
            }
        }
        if let Some(p) = log_path {
            println!("Log: {}", p.display());
        }
    }
    Ok(if done.completed() { exit::OK } else { exit::WARNINGS })
}

fn status_words(s: SnapshotStatus) -> &'static str {
    match s {
        SnapshotStatus::Completed => "completed",
        SnapshotStatus::CompletedWithWarnings => "completed with warnings",
        SnapshotStatus::Failed => "failed",
    }
}

pub fn list(ctx: &Context, location: Option<&str>, host: Option<&str>, json: bool) -> Result<i32> {
    let listing = ctx.list_backups(location, host)?;
    let mut code = exit::OK;
    if listing.asked == 1 {
        if let Some(u) = listing.unavailable.into_iter().next() {
            return Err(u.error.into());
        }
    } else {
        // One location out of reach (a card not inserted, a server down) does not hide the
        // others' backups: it is reported, and the exit code says the list is partial.
        for u in &listing.unavailable {
            let msg = exit::sentence(&u.error);
            let named = if msg.contains(&format!("location {}", u.location)) {
                msg
            } else {
                format!("location {}: {msg}", u.location)
            };
            eprintln!("lifeboat: {named}");
            code = exit::WARNINGS;
        }
    }
    for u in &listing.unreadable {
        eprintln!("lifeboat: {}: {} unreadable: {}", u.location, u.name, u.error);
    }
    let mut all = listing.backups;
    all.reverse();
    if json {
        print_json(&all)?;
    } else if all.is_empty() {
        println!("No backups yet. Make one with `lifeboat backups new`.");
    } else {
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|b| {
                vec![
                    b.slug.clone(),
                    b.date
                        .parse::<jiff::Timestamp>()
                        .map(|t| format::local_time(&t))
                        .unwrap_or_else(|_| b.date.clone()),
                    b.name.clone(),
                    b.location.clone(),
                    b.kind.to_string(),
                    format::bytes(b.size),
                    b.status.replace('_', " "),
                    b.units.join(","),
                ]
            })
            .collect();
        print!("{}", format::table(&["SLUG", "DATE", "NAME", "LOCATION", "TYPE", "SIZE", "STATUS", "UNITS"], &rows));
    }
    Ok(code)
}

pub fn info(ctx: &Context, slug: &str, location: Option<&str>, json: bool) -> Result<i32> {
    let found = ctx.find_backup(slug, location, None)?;
    if json {
        print_json(&found.details(&ctx.dirs().logs))?;
        return Ok(exit::OK);
    }
    let (loc, snap) = (&found.location, &found.snapshot);
    println!("Backup   {} \"{}\"", snap.slug, snap.name);
    println!("Date     {}", format::local_time(&snap.date));
    println!("Status   {}", status_words(snap.status));
    println!("Type     {}", if snap.full { "full" } else { "partial" });
    println!("Device   {} (user {}, home {})", snap.host, snap.user, snap.home.display());
    println!(
        "Size     {} in {} files; {} new, {} stored",
        format::bytes(snap.size),
        snap.files,
        format::bytes(snap.added),
        format::bytes(snap.stored)
    );
    println!("Location {}", loc.describe());
    println!("Units:");
    for u in &snap.units {
        let paths: Vec<&str> = u.roots.iter().map(|r| r.path.as_str()).collect();
        println!(
            "  {:<12} {:<24} {:>10} {:>7} files  {}",
            u.name,
            u.title,
            format::bytes(u.size),
            u.files,
            paths.join(", ")
        );
        if let Some(e) = &u.error {
            println!("      failed: {e}");
        }
        for w in &u.warnings {
            println!("      warning: {w}");
        }
    }
    Ok(exit::OK)
}

pub fn restore(ctx: &Context, slug: &str, order: RestoreOrder, location: Option<&str>, json: bool) -> Result<i32> {
    let found = ctx.find_backup(slug, location, None)?;
    let order = RestoreOrder { target: absolute(order.target)?, ..order };
    let dry_run = order.dry_run;
    let progress = Arc::new(Progress::default());
    let view = ProgressView::start(progress.clone(), ctx.quiet || dry_run);
    let printer = view.printer();
    let result =
        ctx.restore(&found, order, &progress, |slug| RunLog::create(&ctx.dirs().logs, "restore", slug, Some(printer)));
    view.finish();
    let snap = &found.snapshot;
    let report = result?;
    if json {
        print_json(&report)?;
    } else if dry_run {
        print_plan(&report);
    } else {
        print_restored(&report, &format!("backup {}", snap.slug));
        if let Some(s) = &report.safety_backup {
            println!(
                "What was there before is in safety backup {}; undo with: lifeboat backups restore {}",
                s.slug, s.slug
            );
        }
    }
    Ok(if report.problems.is_empty() { exit::OK } else { exit::WARNINGS })
}

/// A dry run: every path the restore would change, then one line of counts.
pub(super) fn print_plan(report: &lifeboat_engine::RestoreReport) {
    use lifeboat_engine::PlanAction as Action;
    for s in report.plan.iter().filter(|s| s.action.changes()) {
        let sign = match s.action {
            Action::Create => '+',
            Action::Delete => '-',
            _ => '~',
        };
        println!("{sign} {}", s.path);
    }
    for p in &report.problems {
        eprintln!("problem: {p}");
    }
    println!(
        "{} to create, {} to replace, {} to delete, {} kept, {} unchanged.",
        report.create, report.replace, report.delete, report.keep, report.unchanged
    );
}

/// What a restore did: its problems on stderr, then one line and where each unit went.
pub(super) fn print_restored(report: &lifeboat_engine::RestoreReport, what: &str) {
    for p in &report.problems {
        eprintln!("problem: {p}");
    }
    println!(
        "Restored {} files and {} folders ({}) from {what}{}.",
        report.files,
        report.dirs,
        format::bytes(report.bytes),
        if report.problems.is_empty() { String::new() } else { format!(", with {} problems", report.problems.len()) }
    );
    for (unit, path) in &report.roots {
        println!("  {unit} -> {path}");
    }
}

/// A folder given on the command line, made absolute against the current one.
pub(super) fn absolute(p: Option<PathBuf>) -> Result<Option<PathBuf>> {
    Ok(match p {
        Some(t) if t.is_relative() => Some(std::env::current_dir()?.join(t)),
        t => t,
    })
}

pub fn remove(ctx: &Context, slug: &str, location: Option<&str>) -> Result<i32> {
    let found = ctx.find_backup(slug, location, None)?;
    ctx.remove(&found)?;
    let snap = &found.snapshot;
    println!(
        "Removed backup {} \"{}\" from {}. Run `lifeboat prune` to reclaim its space.",
        snap.slug, snap.name, found.location.name
    );
    Ok(exit::OK)
}

pub fn copy(ctx: &Context, slug: &str, from: Option<&str>, to: &str, json: bool) -> Result<i32> {
    let progress = Arc::new(Progress::default());
    let view = ProgressView::start(progress.clone(), ctx.quiet || json);
    let copied = ctx.copy(slug, from, to, &progress);
    view.finish();
    let copied = copied?;
    let outcome = &copied.outcome;
    let info = BackupInfo::new(&outcome.id, &outcome.snapshot, &copied.to.name);
    if json {
        let mut value = serde_json::to_value(&info)?;
        value["uploaded"] = copied.sent.into();
        value["copied"] = outcome.copied.into();
        print_json(&value)?;
    } else if outcome.copied {
        println!(
            "Copied backup {} from {} to {}: {} new data ({} sent).",
            info.slug,
            copied.from.name,
            copied.to.name,
            format::bytes(outcome.new_bytes),
            format::bytes(copied.sent)
        );
    } else {
        println!("Location {} already holds backup {}; nothing to send.", copied.to.name, info.slug);
    }
    Ok(exit::OK)
}
