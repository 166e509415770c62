use anyhow::Result;
use lifeboat_engine::Progress;
use std::sync::Arc;

use super::print_json;
use crate::context::Context;
use crate::exit;
use crate::format;
use crate::output::{out, outln};
use crate::progress_view::ProgressView;

pub fn estimate(ctx: &Context, units: Vec<String>, location: Option<&str>, json: bool) -> Result<i32> {
    let progress = Arc::new(Progress::default());
    let view = ProgressView::start(progress.clone(), ctx.quiet);
    let est = ctx.estimate(&units, location, &progress);
    view.finish();
    let (loc, est) = est?;
    if json {
        print_json(&est)?;
        return Ok(exit::OK);
    }
    let rows: Vec<Vec<String>> = est
        .iter()
        .map(|e| {
            vec![
                e.unit.clone(),
                e.title.clone(),
                e.files.to_string(),
                format::bytes(e.bytes),
                format::bytes(e.new_bytes),
            ]
        })
        .collect();
    out!("{}", format::table(&["UNIT", "TITLE", "FILES", "SIZE", "NEW"], &rows))?;
    if let Some(free) = loc.store().ok().and_then(|s| s.free_space()) {
        let new: u64 = est.iter().map(|e| e.new_bytes).sum();
        outln!(
            "{} free at {}; the backup adds at most {} before compression.",
            format::bytes(free),
            loc.describe(),
            format::bytes(new)
        )?;
    }
    Ok(exit::OK)
}

pub fn check(ctx: &Context, read_data: bool, repair: bool, location: Option<&str>, json: bool) -> Result<i32> {
    let quiet = ctx.quiet || json;
    let say = |what: &'static str| {
        move |msg: &str| {
            if !quiet {
                eprintln!("{what}: {msg}");
            }
        }
    };
    let (repaired, report) = if repair {
        let (r, report) = ctx.repair(location, &say("repair"))?;
        if !json {
            outln!(
                "Repaired: the index now lists {} in {} ({} replaced).",
                format::count(r.blobs_indexed, "blob", "blobs"),
                format::count(r.packs_indexed, "pack", "packs"),
                format::count(r.index_files_replaced, "old index file", "old index files"),
            )?;
            for line in &r.repaired {
                outln!("repaired: {line}")?;
            }
            for line in &r.lost {
                outln!("cannot be repaired: {line}")?;
            }
        }
        (Some(r), report)
    } else {
        (None, ctx.check(location, read_data, &say("check"))?)
    };
    if json {
        match &repaired {
            Some(r) => print_json(&serde_json::json!({ "repair": r, "check": report }))?,
            None => print_json(&report)?,
        }
    } else {
        for p in &report.problems {
            outln!("problem: {}", p.what)?;
            for a in &p.affected {
                outln!("    affects {a}")?;
            }
        }
        for n in &report.notes {
            outln!("note: {n}")?;
        }
        outln!(
            "Checked {}, {}{}, {}: {}.",
            format::count(report.snapshots, "backup", "backups"),
            format::count(report.packs, "pack", "packs"),
            if read_data { format!(" ({} read)", report.packs_read) } else { String::new() },
            format::count(report.blobs, "blob", "blobs"),
            if report.is_clean() {
                "no problems".to_string()
            } else {
                format::count(report.problems.len() as u64, "problem", "problems")
            }
        )?;
    }
    Ok(if report.is_clean() { exit::OK } else { exit::DAMAGE })
}

pub fn prune(ctx: &Context, location: Option<&str>, json: bool) -> Result<i32> {
    let quiet = ctx.quiet || json;
    let (loc, report) = ctx.prune(location, &|msg| {
        if !quiet {
            eprintln!("prune: {msg}");
        }
    })?;
    if json {
        print_json(&report)?;
    } else {
        outln!(
            "Freed {} ({} removed, {} rewritten); {} now in {} for {}.",
            format::bytes(report.bytes_freed),
            format::count(report.packs_removed, "pack", "packs"),
            report.packs_rewritten,
            format::bytes(report.bytes_after),
            loc.describe(),
            format::count(report.snapshots, "backup", "backups")
        )?;
    }
    Ok(exit::OK)
}

pub fn unlock(ctx: &Context, location: Option<&str>) -> Result<i32> {
    let (loc, n) = ctx.unlock(location)?;
    outln!("Removed {} from {}.", format::count(n, "stale lock", "stale locks"), loc.describe())?;
    Ok(exit::OK)
}
