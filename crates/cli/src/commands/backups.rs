use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use std::io::{IsTerminal, Write};

use lifeboat_engine::app::{BackupOrder, Pick, RestoreOrder};
use lifeboat_engine::{BackupInfo, Devices, Progress, RunLog};
use lifeboat_repository::SnapshotStatus;

use super::print_json;
use crate::context::Context;
use crate::exit;
use crate::format;
use crate::output::{out, outln};
use crate::progress_view::ProgressView;

pub fn new(
    ctx: &Context,
    name: Option<String>,
    units: Vec<String>,
    location: Option<&str>,
    tags: Vec<String>,
    json: bool,
    unattended: bool,
) -> Result<i32> {
    let progress = Arc::new(Progress::default());
    crate::interrupt::cancel_on_signals(progress.cancel.clone());
    let view = ProgressView::start(progress.clone(), ctx.quiet);
    let printer = view.printer();
    let mut log_path = None;
    let started = std::time::Instant::now();
    let spec = lifeboat_daemon::BackupSpec {
        units: units.clone(),
        location: location.map(str::to_string),
        name: name.clone(),
        schedule: None,
    };
    let what = match &name {
        Some(n) => format!("the backup \"{n}\""),
        None => "the backup".to_string(),
    };
    let order = BackupOrder { units, location: location.map(str::to_string), name, tags, unattended };
    let result = ctx.back_up(order, &progress, |slug| {
        let log = RunLog::create(&ctx.dirs().logs, "backup", slug, Some(printer));
        log_path = log.path().map(|p| p.to_path_buf());
        log
    });
    view.finish();
    // The history the page shows holds every backup of this device, not only the daemon's.
    let (kind, level, message) =
        lifeboat_daemon::backup_event(&result, &lifeboat_daemon::describe_backup(&spec), progress.is_cancelled());
    let about = lifeboat_daemon::events::About {
        location: Some(result.as_ref().map(|d| d.location.name.clone()).unwrap_or_else(|_| {
            location.map(str::to_string).unwrap_or_else(|| ctx.default_location_name().to_string())
        })),
        slug: result.as_ref().ok().map(|d| d.info.slug.clone()),
        ..Default::default()
    };
    // A mistyped order (an unknown unit or location) is no run to remember.
    let mistyped = result.as_ref().err().is_some_and(|e| e.kind() == lifeboat_engine::ErrorKind::BadInput);
    if !mistyped {
        super::daemon::record_event(ctx, kind, level, &message, &about);
    }
    let done = match result {
        Err(e) if progress.is_cancelled() || e.kind() == lifeboat_engine::ErrorKind::Interrupted => {
            eprintln!(
                "lifeboat: interrupted: no backup was saved; what was already stored is reused by the next backup"
            );
            if let Some(p) = log_path {
                eprintln!("Log: {}", p.display());
            }
            return Ok(exit::INTERRUPTED);
        }
        // Unattended, the failure is one line that whatever runs it shows (APT's output, the
        // journal), saying it FAILED: nobody reads further.
        Err(e) if unattended => {
            let (code, msg) = exit::describe(&anyhow::Error::new(e));
            eprintln!("lifeboat: {what} FAILED: {msg}");
            return Ok(code);
        }
        r => r?,
    };
    if unattended && done.failed() {
        let why: Vec<String> = done
            .snapshot
            .units
            .iter()
            .filter_map(|u| Some(format!("unit {}: {}", u.name, u.error.as_ref()?)))
            .collect();
        eprintln!("lifeboat: {what} FAILED: {}", why.join("; "));
        if !json {
            if let Some(p) = &log_path {
                eprintln!("Log: {}", p.display());
            }
            return Ok(exit::FAILED);
        }
    }
    let snap = &done.snapshot;
    if json {
        let mut value = serde_json::to_value(&done.info)?;
        value["uploaded"] = done.uploaded.into();
        print_json(&value)?;
    } else {
        outln!(
            "Backup {} \"{}\" {} in {}: {}, {} ({} new, {} stored).",
            snap.slug,
            snap.name,
            status_words(snap.status),
            format::duration(started.elapsed().as_secs_f64()),
            format::count(snap.files, "file", "files"),
            format::bytes(snap.size),
            format::bytes(snap.added),
            format::bytes(snap.stored)
        )?;
        if done.location.is_remote() {
            outln!("Sent {} to {}.", format::bytes(done.uploaded), done.location.describe())?;
        }
        for u in &snap.units {
            if let Some(e) = &u.error {
                outln!("  unit {} failed: {e}", u.name)?;
            }
            for w in &u.warnings {
                outln!("  warning ({}): {w}", u.name)?;
            }
        }
        if let Some(p) = log_path {
            outln!("Log: {}", p.display())?;
        }
    }
    Ok(if done.completed() {
        exit::OK
    } else if done.failed() {
        exit::FAILED
    } else {
        exit::WARNINGS
    })
}

fn status_words(s: SnapshotStatus) -> &'static str {
    match s {
        SnapshotStatus::Completed => "completed",
        SnapshotStatus::CompletedWithWarnings => "completed with warnings",
        SnapshotStatus::Failed => "failed",
    }
}

/// An error's sentence, naming its location unless it already does.
fn located(location: &str, error: &lifeboat_engine::EngineError) -> String {
    let msg = exit::sentence(error);
    if msg.contains(&format!("location {location}")) {
        msg
    } else {
        format!("location {location}: {msg}")
    }
}

pub fn list(
    ctx: &Context,
    location: Option<&str>,
    host: Option<&str>,
    devices: &Devices,
    tags: &[String],
    json: bool,
) -> Result<i32> {
    let mut listing = ctx.list_backups(location, devices)?;
    listing.backups.retain(|b| tags.iter().all(|t| b.tags.contains(t)) && host.is_none_or(|h| b.host == h));
    let mut code = exit::OK;
    if listing.unavailable.len() == listing.asked {
        // Not one location could be listed (a wrong password, every server down): what they
        // hold is unknown, not empty. The first one's error is the command's, with its exit
        // code; the others are named too.
        let mut unavailable = listing.unavailable.into_iter();
        if let Some(first) = unavailable.next() {
            for u in unavailable {
                eprintln!("lifeboat: {}", located(&u.location, &u.error));
            }
            return Err(first.error.into());
        }
    } else {
        // One location out of reach (a card not inserted, a server down) does not hide the
        // others' backups: it is reported, and the exit code says the list is partial.
        for u in &listing.unavailable {
            eprintln!("lifeboat: {}", located(&u.location, &u.error));
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
        outln!("No backups yet. Make one with `lifeboat backups new`.")?;
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
                    b.device.clone(),
                    b.location.clone(),
                    b.kind.to_string(),
                    format::bytes(b.size),
                    b.status.replace('_', " "),
                    b.units.join(","),
                ]
            })
            .collect();
        out!(
            "{}",
            format::table(&["SLUG", "DATE", "NAME", "DEVICE", "LOCATION", "TYPE", "SIZE", "STATUS", "UNITS"], &rows)
        )?;
    }
    Ok(code)
}

pub fn info(ctx: &Context, slug: &str, pick: &Pick, json: bool) -> Result<i32> {
    let found = ctx.pick_backup(slug, pick)?;
    if json {
        print_json(&found.details(&ctx.dirs().logs))?;
        return Ok(exit::OK);
    }
    let (loc, snap) = (&found.location, &found.snapshot);
    let mut fields = vec![
        ("Backup", format!("{} \"{}\"", snap.slug, snap.name)),
        ("Date", format::local_time(&snap.date)),
        ("Status", status_words(snap.status).to_string()),
        ("Type", if snap.full { "full" } else { "partial" }.to_string()),
        (
            "Device",
            format!(
                "{}{} (host {}, user {}, home {})",
                found.device,
                if found.this_device { ", this device" } else { "" },
                snap.host,
                snap.user,
                snap.home.display()
            ),
        ),
        (
            "Size",
            format!(
                "{} in {}; {} new, {} stored",
                format::bytes(snap.size),
                format::count(snap.files, "file", "files"),
                format::bytes(snap.added),
                format::bytes(snap.stored)
            ),
        ),
        ("Location", loc.describe()),
        ("Protected", if snap.protected { "yes, by a password" } else { "no" }.to_string()),
        ("Pinned", if snap.pinned { "yes: retention and forget keep it" } else { "no" }.to_string()),
    ];
    if !snap.tags.is_empty() {
        fields.push(("Tags", snap.tags.join(", ")));
    }
    for (label, value) in fields {
        outln!("{label:<10} {value}")?;
    }
    outln!("Units:")?;
    let rows: Vec<Vec<String>> = snap
        .units
        .iter()
        .map(|u| {
            vec![
                u.name.clone(),
                u.title.clone(),
                format::bytes(u.size),
                format::count(u.files, "file", "files"),
                u.roots.iter().map(|r| r.path.as_str()).collect::<Vec<_>>().join(", "),
            ]
        })
        .collect();
    out!("{}", format::table(&["  UNIT", "TITLE", "SIZE", "FILES", "PATHS"], &indent(rows)))?;
    for u in &snap.units {
        if let Some(e) = &u.error {
            outln!("  {} failed: {e}", u.name)?;
        }
        for w in &u.warnings {
            outln!("  {} warning: {w}", u.name)?;
        }
    }
    Ok(exit::OK)
}

pub fn restore(ctx: &Context, slug: &str, order: RestoreOrder, pick: &Pick, json: bool) -> Result<i32> {
    let found = ctx.pick_backup(slug, pick)?;
    let mut order = RestoreOrder { target: absolute(order.target)?, ..order };
    let decided = order.from_device.as_deref().is_some_and(|d| found.is_from(d));
    if order.target.is_none() && !order.dry_run && !found.this_device && !decided {
        // Another device's files in place of this one's: asked on a terminal; refused
        // otherwise by the restore itself, with the way to say it is meant.
        if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            let question = format!(
                "Backup {} is from device {}, not this one: restoring it in place puts {}'s files here. Restore it? [y/N] ",
                found.snapshot.slug, found.device, found.device
            );
            if !ask(&question)? {
                eprintln!("Nothing was restored.");
                return Ok(exit::USAGE);
            }
            order.from_device = Some(found.device.clone());
        }
    }
    let dry_run = order.dry_run;
    let progress = Arc::new(Progress::default());
    crate::interrupt::cancel_on_signals(progress.cancel.clone());
    let view = ProgressView::start(progress.clone(), ctx.quiet || dry_run);
    let printer = view.printer();
    let result =
        ctx.restore(&found, order, &progress, |slug| RunLog::create(&ctx.dirs().logs, "restore", slug, Some(printer)));
    view.finish();
    let snap = &found.snapshot;
    let what = format!("restore of backup {}", snap.slug);
    if let Some(code) =
        super::interrupted(ctx, &progress, &result, (&what, RESTORE_INTERRUPTED), Some(&found.location.name))
    {
        return Ok(code);
    }
    let report = result?;
    if json {
        print_json(&report)?;
    } else if dry_run {
        print_plan(&report)?;
    } else {
        print_restored(&report, &format!("backup {}", snap.slug))?;
        if let Some(s) = &report.safety_backup {
            outln!(
                "What was there before is in safety backup {}; undo with: lifeboat backups restore {}",
                s.slug,
                s.slug
            )?;
        }
        // A new device restoring another's backup: its settings can come along too.
        if !found.this_device && snap.configuration.is_some() {
            outln!(
                "The backup also carries the settings of the device that made it (units, schedules, locations);                  take them with `lifeboat setup --from-backup {} --location {}`.",
                snap.slug,
                found.location.name
            )?;
        }
    }
    if dry_run {
        return Ok(if report.problems.is_empty() { exit::OK } else { exit::WARNINGS });
    }
    Ok(restored_code(&report))
}

/// What an interrupted restore leaves: it stops before it puts anything in place (once it
/// does, it finishes; a second signal stops it at once, and `--resume` finishes it).
pub(super) const RESTORE_INTERRUPTED: &str =
    "nothing was restored: what was written beside the files was removed, and they are as they were";

/// A restore's exit code (docs/CONFIG.md, "Errors"): anything not restored is a failure,
/// never a warning a script would take for success; warnings are only for what was restored
/// (metadata not all set, an after_restore hook that failed).
pub(super) fn restored_code(report: &lifeboat_engine::RestoreReport) -> i32 {
    if report.not_restored > 0 {
        exit::FAILED
    } else if report.problems.is_empty() {
        exit::OK
    } else {
        exit::WARNINGS
    }
}

/// A dry run: every path the restore would change, then one line of counts.
pub(super) fn print_plan(report: &lifeboat_engine::RestoreReport) -> std::io::Result<()> {
    use lifeboat_engine::PlanAction as Action;
    for s in report.plan.iter().filter(|s| s.action.changes()) {
        let sign = match s.action {
            Action::Create => '+',
            Action::Delete => '-',
            _ => '~',
        };
        outln!("{sign} {}", s.path)?;
    }
    for p in &report.problems {
        eprintln!("problem: {p}");
    }
    for s in &report.stopped {
        outln!("Would stop {s} while restoring, and start it again after.")?;
    }
    outln!(
        "{} to create, {} to replace, {} to delete, {} kept, {} unchanged.",
        report.create,
        report.replace,
        report.delete,
        report.keep,
        report.unchanged
    )
}

/// What a restore did: its problems on stderr, then one line and where each unit went.
pub(super) fn print_restored(report: &lifeboat_engine::RestoreReport, what: &str) -> std::io::Result<()> {
    for p in &report.problems {
        eprintln!("problem: {p}");
    }
    let failed = report.not_restored;
    let warnings = format::count((report.problems.len() as u64).saturating_sub(failed), "warning", "warnings");
    let with = match (failed, report.problems.len() as u64 > failed) {
        (0, false) => String::new(),
        (0, true) => format!(", with {warnings}"),
        (n, false) => format!(", with {n} not restored"),
        (n, true) => format!(", with {n} not restored and {warnings}"),
    };
    outln!(
        "Restored {} and {} ({}) from {what}{with}.",
        format::count(report.files, "file", "files"),
        format::count(report.dirs, "folder", "folders"),
        format::bytes(report.bytes),
    )?;
    for (unit, path) in &report.roots {
        outln!("  {unit} -> {path}")?;
    }
    Ok(())
}

/// A folder given on the command line, made absolute against the current one.
pub(super) fn absolute(p: Option<PathBuf>) -> Result<Option<PathBuf>> {
    Ok(match p {
        Some(t) if t.is_relative() => Some(std::env::current_dir()?.join(t)),
        t => t,
    })
}

/// Table rows indented under a heading.
fn indent(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    for r in &mut rows {
        if let Some(first) = r.first_mut() {
            first.insert_str(0, "  ");
        }
    }
    rows
}

/// `backups pin` and `backups unpin`.
pub fn pin(ctx: &Context, slug: &str, pick: &Pick, pinned: bool) -> Result<i32> {
    let found = ctx.pick_backup(slug, pick)?;
    let info = ctx.pin(&found, pinned)?;
    if pinned {
        outln!("Pinned backup {} \"{}\" in {}: retention and forget keep it.", info.slug, info.name, info.location)?;
    } else {
        outln!("Unpinned backup {} \"{}\" in {}.", info.slug, info.name, info.location)?;
    }
    Ok(exit::OK)
}

/// `backups forget`: what the rules remove and keep, newest first.
pub fn forget(
    ctx: &Context,
    order: lifeboat_engine::app::ForgetOrder,
    location: Option<&str>,
    json: bool,
) -> Result<i32> {
    let dry_run = order.dry_run;
    let progress = Progress::default();
    let done = ctx.forget(location, order, &progress, &|_| {})?;
    if json {
        let mut v = serde_json::to_value(&done)?;
        v["dry_run"] = dry_run.into();
        if let Some(p) = &done.pruned {
            v["freed"] = p.bytes_freed.into();
        }
        print_json(&v)?;
        return Ok(exit::OK);
    }
    let (gone, stay) = if dry_run { ("would remove", "would keep") } else { ("removed", "kept") };
    for (word, list) in [(gone, &done.removed), (stay, &done.kept)] {
        for b in list {
            let why = if b.pinned { " (pinned)" } else { "" };
            outln!("{word:<12} {}  {}  \"{}\"  {}{why}", b.slug, format::local_time_of(&b.date), b.name, b.device)?;
        }
    }
    outln!(
        "{} {} and {} {} in {}.",
        if dry_run { "Would remove" } else { "Removed" },
        format::count(done.removed.len() as u64, "backup", "backups"),
        if dry_run { "keep" } else { "kept" },
        done.kept.len(),
        done.location
    )?;
    if let Some(p) = &done.pruned {
        outln!("Freed {}.", format::bytes(p.bytes_freed))?;
    }
    Ok(exit::OK)
}

pub fn remove(ctx: &Context, slug: &str, pick: &Pick) -> Result<i32> {
    let found = ctx.pick_backup(slug, pick)?;
    ctx.remove(&found)?;
    let snap = &found.snapshot;
    outln!(
        "Removed backup {} \"{}\" from {}. Run `lifeboat prune` to reclaim its space.",
        snap.slug,
        snap.name,
        found.location.name
    )?;
    Ok(exit::OK)
}

pub fn copy(ctx: &Context, slug: &str, from: Option<&str>, to: &str, json: bool) -> Result<i32> {
    let progress = Arc::new(Progress::default());
    crate::interrupt::cancel_on_signals(progress.cancel.clone());
    let view = ProgressView::start(progress.clone(), ctx.quiet || json);
    let copied = ctx.copy(slug, from, to, &progress);
    view.finish();
    let left = format!("backup {slug} was not copied to {to}; what was already sent is reused by the next copy");
    if let Some(code) =
        super::interrupted(ctx, &progress, &copied, (&format!("copy of backup {slug} to {to}"), &left), Some(to))
    {
        return Ok(code);
    }
    let copied = copied?;
    let outcome = &copied.outcome;
    let info = BackupInfo::new(&outcome.id, &outcome.snapshot, &copied.to.name);
    if json {
        let mut value = serde_json::to_value(&info)?;
        value["uploaded"] = copied.sent.into();
        value["copied"] = outcome.copied.into();
        print_json(&value)?;
    } else if outcome.copied {
        outln!(
            "Copied backup {} from {} to {}: {} new data ({} sent).",
            info.slug,
            copied.from.name,
            copied.to.name,
            format::bytes(outcome.new_bytes),
            format::bytes(copied.sent)
        )?;
    } else {
        outln!("Location {} already holds backup {}; nothing to send.", copied.to.name, info.slug)?;
    }
    Ok(exit::OK)
}

/// Asks a yes-or-no question on the terminal; anything but yes is no.
pub(super) fn ask(question: &str) -> Result<bool> {
    let mut err = std::io::stderr().lock();
    write!(err, "{question}")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}
