use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use lifeboat_engine::backup::{self, BackupRequest};
use lifeboat_engine::restore::{self, RestoreMode, RestoreRequest};
use lifeboat_engine::{unit, BackupInfo, Progress, RunLog};
use lifeboat_repository::{Repository, SnapshotStatus};

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
    let all = ctx.units()?;
    let chosen = unit::select(&all, &units)?;
    let full = units.is_empty() || chosen.len() == all.len();
    let loc = ctx.location(location)?;
    let repo = ctx.open(&loc, true)?;
    let slug = backup::new_slug(&repo)?;
    let progress = Arc::new(Progress::default());
    let view = ProgressView::start(progress.clone(), ctx.quiet);
    let log = RunLog::create(&ctx.dirs.logs, "backup", &slug, Some(view.printer()));
    let started = std::time::Instant::now();
    let result = backup::run(
        &repo,
        &ctx.dirs,
        BackupRequest { units: chosen, full, name, slug, tags, safety: None },
        &progress,
        &log,
    );
    view.finish();
    let (id, snap) = result?;
    let info = BackupInfo::new(&id, &snap, &loc.name);
    let uploaded = loc.traffic().map(|t| t.sent()).unwrap_or(0);
    if json {
        let mut value = serde_json::to_value(&info)?;
        value["uploaded"] = uploaded.into();
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
        if loc.is_remote() {
            println!("Sent {} to {}.", format::bytes(uploaded), loc.describe());
        }
        for u in &snap.units {
            if let Some(e) = &u.error {
                println!("  unit {} failed: {e}", u.name);
            }
            for w in &u.warnings {
                println!("  warning ({}): {w}", u.name);
            }
        }
        if let Some(p) = log.path() {
            println!("Log: {}", p.display());
        }
    }
    Ok(if snap.status == SnapshotStatus::Completed { exit::OK } else { exit::WARNINGS })
}

fn status_words(s: SnapshotStatus) -> &'static str {
    match s {
        SnapshotStatus::Completed => "completed",
        SnapshotStatus::CompletedWithWarnings => "completed with warnings",
        SnapshotStatus::Failed => "failed",
    }
}

pub fn list(ctx: &Context, location: Option<&str>, host: Option<&str>, json: bool) -> Result<i32> {
    let locations = match location {
        Some(l) => vec![ctx.location(Some(l))?],
        None => ctx.locations(),
    };
    let mut all: Vec<BackupInfo> = Vec::new();
    let mut code = exit::OK;
    for loc in &locations {
        let listed = (|| -> Result<Option<_>> {
            if !Repository::exists(loc.store()?.as_ref())? {
                return Ok(None);
            }
            Ok(Some(ctx.open(loc, false)?.snapshots()?))
        })();
        let (snaps, bad) = match listed {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            // One location out of reach (a card not inserted, a server down) does not hide
            // the others' backups: it is reported, and the exit code says the list is partial.
            Err(e) if locations.len() > 1 => {
                let msg = crate::exit::describe(&e).1;
                let named = if msg.contains(&format!("location {}", loc.name)) {
                    msg
                } else {
                    format!("location {}: {msg}", loc.name)
                };
                eprintln!("lifeboat: {named}");
                code = exit::WARNINGS;
                continue;
            }
            Err(e) => return Err(e),
        };
        for (name, e) in bad {
            eprintln!("lifeboat: {}: {name} unreadable: {e}", loc.name);
        }
        all.extend(
            snaps
                .iter()
                .filter(|(_, s)| host.is_none_or(|h| s.host == h))
                .map(|(id, s)| BackupInfo::new(id, s, &loc.name)),
        );
    }
    all.sort_by(|a, b| a.date.cmp(&b.date));
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
    let (loc, repo) = holder(ctx, slug, location)?;
    let (id, snap) = repo.find_snapshot(slug)?;
    if json {
        let mut v = serde_json::to_value(BackupInfo::new(&id, &snap, &loc.name))?;
        v["unit_details"] = serde_json::to_value(
            snap.units
                .iter()
                .map(|u| {
                    serde_json::json!({
                        "name": u.name, "title": u.title, "kind": u.kind, "status": u.status.as_str(),
                        "files": u.files, "dirs": u.dirs, "size": u.size, "warnings": u.warnings, "error": u.error,
                        "paths": u.roots.iter().map(|r| &r.path).collect::<Vec<_>>(),
                        "not_included": u.not_included,
                    })
                })
                .collect::<Vec<_>>(),
        )?;
        print_json(&v)?;
        return Ok(exit::OK);
    }
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

/// How a restore is done.
pub struct How {
    pub target: Option<PathBuf>,
    pub dry_run: bool,
    pub mode: RestoreMode,
    pub map_paths: Vec<(PathBuf, PathBuf)>,
    /// Back up the units about to be overwritten first (in-place restores only).
    pub safety_backup: bool,
}

pub fn restore(
    ctx: &Context,
    slug: &str,
    units: Vec<String>,
    how: How,
    location: Option<&str>,
    json: bool,
) -> Result<i32> {
    let How { target, dry_run, mode, map_paths, safety_backup } = how;
    let (_, repo) = holder(ctx, slug, location)?;
    let (_, snap) = repo.find_snapshot(slug)?;
    let target = match target {
        Some(t) if t.is_relative() => Some(std::env::current_dir()?.join(t)),
        t => t,
    };
    let configured = ctx.units()?;
    let progress = Arc::new(Progress::default());
    let view = ProgressView::start(progress.clone(), ctx.quiet || dry_run);
    let log = if dry_run {
        RunLog::none()
    } else {
        RunLog::create(&ctx.dirs.logs, "restore", &snap.slug, Some(view.printer()))
    };
    let req = RestoreRequest { units, target, dry_run, configured, mode, map_paths, safety_backup };
    let result = restore::run(&repo, &snap, &ctx.dirs, &req, &progress, &log);
    view.finish();
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
pub(super) fn print_plan(report: &lifeboat_engine::restore::RestoreReport) {
    use lifeboat_engine::restore::Action;
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
pub(super) fn print_restored(report: &lifeboat_engine::restore::RestoreReport, what: &str) {
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

pub fn remove(ctx: &Context, slug: &str, location: Option<&str>) -> Result<i32> {
    let loc = ctx.location(location)?;
    let repo = ctx.open(&loc, false)?;
    let (id, snap) = repo.find_snapshot(slug)?;
    repo.remove_snapshot(&id)?;
    println!("Removed backup {} \"{}\". Run `lifeboat prune` to reclaim its space.", snap.slug, snap.name);
    Ok(exit::OK)
}

pub fn copy(ctx: &Context, slug: &str, from: Option<&str>, to: &str, json: bool) -> Result<i32> {
    let dst_loc = ctx.location(Some(to))?;
    let src_loc = match from {
        Some(f) => ctx.location(Some(f))?,
        None => find_holder(ctx, slug, &dst_loc.name)?,
    };
    if src_loc.name == dst_loc.name {
        anyhow::bail!("backup {slug} is already in location {to}: give another location with --to");
    }
    let src = ctx.open(&src_loc, false)?;
    let dst = ctx.open(&dst_loc, true)?;
    src.load_index()?;
    let progress = Arc::new(Progress::default());
    let view = ProgressView::start(progress.clone(), ctx.quiet || json);
    let outcome = lifeboat_engine::copy::copy(&src, &dst, slug, &progress);
    view.finish();
    let outcome = outcome?;
    let info = BackupInfo::new(&outcome.id, &outcome.snapshot, &dst_loc.name);
    let sent = dst_loc.traffic().map(|t| t.sent()).unwrap_or(0);
    if json {
        let mut value = serde_json::to_value(&info)?;
        value["uploaded"] = sent.into();
        value["copied"] = outcome.copied.into();
        print_json(&value)?;
    } else if outcome.copied {
        println!(
            "Copied backup {} from {} to {}: {} new data ({} sent).",
            info.slug,
            src_loc.name,
            dst_loc.name,
            format::bytes(outcome.new_bytes),
            format::bytes(sent)
        );
    } else {
        println!("Location {} already holds backup {}; nothing to send.", dst_loc.name, info.slug);
    }
    Ok(exit::OK)
}

/// The location named with --location, else the default one when it holds the backup, else
/// the first other location that does: `backups list` shows every location, so a slug from
/// it works without naming where it lives.
pub(super) fn holder(
    ctx: &Context,
    slug: &str,
    location: Option<&str>,
) -> Result<(lifeboat_engine::Location, Repository)> {
    let default = ctx.location(location)?;
    let repo = ctx.open(&default, false);
    if location.is_some() {
        return Ok((default, repo?));
    }
    if let Ok(repo) = &repo {
        if repo.find_snapshot(slug).is_ok() {
            return Ok((default, repo.clone()));
        }
    }
    match find_holder(ctx, slug, &default.name) {
        Ok(other) => {
            let repo = ctx.open(&other, false)?;
            Ok((other, repo))
        }
        // Report what the default location says (no such backup, or why it cannot be read).
        Err(_) => Ok((default, repo?)),
    }
}

/// The first location (the default first) whose repository holds the backup.
fn find_holder(ctx: &Context, slug: &str, except: &str) -> Result<lifeboat_engine::Location> {
    let default = lifeboat_engine::location::default_location_name(&ctx.config.config, &ctx.dirs);
    let mut locations = ctx.locations();
    locations.sort_by_key(|l| l.name != default);
    for loc in locations.into_iter().filter(|l| l.name != except) {
        let Ok(store) = loc.store() else { continue };
        if !Repository::exists(store.as_ref()).unwrap_or(false) {
            continue;
        }
        let Ok(repo) = ctx.open(&loc, false) else { continue };
        if repo.find_snapshot(slug).is_ok() {
            return Ok(loc);
        }
    }
    anyhow::bail!("no location holds a backup {slug}: see `lifeboat backups list`, or name it with --location")
}
