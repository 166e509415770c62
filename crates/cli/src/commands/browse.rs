use std::io::{IsTerminal, Write};

use anyhow::{bail, Result};
use lifeboat_engine::app::{Opened, Pick};
use lifeboat_engine::{Devices, Entry};

use super::print_json;
use crate::context::Context;
use crate::exit;
use crate::format;
use crate::output::out;

pub fn ls(
    ctx: &Context,
    slug: &str,
    path: Option<&str>,
    recursive: bool,
    long: bool,
    pick: &Pick,
    json: bool,
) -> Result<i32> {
    let found = ctx.pick_backup(slug, pick)?;
    if recursive && !long {
        // Printed as the walk goes: a whole tree is never held.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let mut first = true;
        let mut failed = None;
        if json {
            write!(out, "[")?;
        }
        ctx.walk_files(&found, path, &mut |e| {
            let written = if json {
                let sep = if first { "\n" } else { ",\n" };
                serde_json::to_string(e).map_err(std::io::Error::other).and_then(|j| write!(out, "{sep}{j}"))
            } else {
                writeln!(out, "{}{}", e.path, if e.is_dir() { "/" } else { "" })
            };
            first = false;
            match written {
                Ok(()) => true,
                Err(err) => {
                    failed = Some(err);
                    false
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        if json {
            writeln!(out, "{}]", if first { "" } else { "\n" })?;
        }
        out.flush()?;
        return Ok(exit::OK);
    }
    let entries = ctx.list_files(&found, path, recursive)?;
    if json {
        print_json(&entries)?;
        return Ok(exit::OK);
    }
    if long {
        let rows: Vec<Vec<String>> = entries.iter().map(long_row).collect();
        out!("{}", format::table(&["TYPE", "MODE", "SIZE", "MODIFIED", "UNIT", "PATH"], &rows))?;
    } else {
        let mut out = std::io::stdout().lock();
        for e in &entries {
            writeln!(out, "{}{}", e.path, if e.is_dir() { "/" } else { "" })?;
        }
    }
    Ok(exit::OK)
}

fn long_row(e: &Entry) -> Vec<String> {
    let when = e.mtime.parse::<jiff::Timestamp>().map(|t| format::local_time(&t)).unwrap_or_default();
    let path = match &e.target {
        Some(t) => format!("{} -> {t}", e.path),
        None => e.path.clone(),
    };
    vec![
        e.kind.to_string(),
        format!("{:04o}", e.mode),
        if e.kind == "file" { format::bytes(e.size) } else { "-".into() },
        when,
        e.unit.clone(),
        path,
    ]
}

pub fn find(
    ctx: &Context,
    patterns: &[String],
    unit: Option<&str>,
    location: Option<&str>,
    devices: &Devices,
    json: bool,
) -> Result<i32> {
    let search = ctx.find_files(patterns, unit, location, devices)?;
    for u in &search.unavailable {
        eprintln!("warning: location {} was not searched: {}", u.location, u.error);
    }
    if let Some(how) = &search.compared {
        eprintln!("note: {how}");
    }
    if json {
        print_json(&search.paths)?;
    } else if search.paths.is_empty() {
        eprintln!(
            "No path of the {} searched matches {}.",
            crate::format::count(search.backups, "backup", "backups"),
            patterns.join(" ")
        );
    } else {
        let mut out = std::io::stdout().lock();
        for p in &search.paths {
            writeln!(out, "{}", p.path)?;
            for v in &p.versions {
                let when = v.mtime.parse::<jiff::Timestamp>().map(|t| format::local_time(&t)).unwrap_or_default();
                let size = if v.kind == "file" { format::bytes(v.size) } else { v.kind.to_string() };
                writeln!(out, "  {size:>10}  {when}  {}  in {}", v.content, v.backups.join(", "))?;
            }
        }
    }
    Ok(if search.unavailable.is_empty() { exit::OK } else { exit::WARNINGS })
}

pub fn diff(
    ctx: &Context,
    a: &str,
    b: Option<&str>,
    unit: Option<&str>,
    by_content: bool,
    pick: &Pick,
    json: bool,
) -> Result<i32> {
    let first = ctx.pick_backup(a, pick)?;
    let second = b.map(|b| ctx.pick_backup(b, pick)).transpose()?;
    let d = ctx.diff(&first, second.as_ref(), unit, by_content)?;
    if json {
        print_json(&d)?;
    } else {
        let mut out = std::io::stdout().lock();
        let mut lines: Vec<(&str, String)> = Vec::new();
        lines.extend(d.added.iter().map(|c| (c.path.as_str(), format!("+ {}", c.path))));
        lines.extend(d.removed.iter().map(|c| (c.path.as_str(), format!("- {}", c.path))));
        lines.extend(
            d.modified.iter().map(|c| (c.path.as_str(), format!("M {} ({})", c.path, c.what.unwrap_or("content")))),
        );
        lines.sort();
        for (_, l) in lines {
            writeln!(out, "{l}")?;
        }
        for p in &d.problems {
            eprintln!("problem: {p}");
        }
        if let Some(how) = &d.compared {
            eprintln!("note: files were compared {how}");
        }
        let to = match (&second, b) {
            (Some(s), _) => format!("backup {}", s.snapshot.slug),
            _ => "this device".to_string(),
        };
        writeln!(
            out,
            "From backup {} to {to}: {} added ({}), {} removed ({}), {} modified.",
            first.snapshot.slug,
            d.added.len(),
            format::bytes(d.added_bytes),
            d.removed.len(),
            format::bytes(d.removed_bytes),
            d.modified.len()
        )?;
    }
    Ok(if d.problems.is_empty() { exit::OK } else { exit::WARNINGS })
}

pub fn dump(ctx: &Context, slug: &str, path: &str, pick: &Pick) -> Result<i32> {
    let found = ctx.pick_backup(slug, pick)?;
    let stdout = std::io::stdout();
    if let Opened::Folder(e) = ctx.open_file(&found, path)? {
        if stdout.is_terminal() {
            bail!(
                "{} is a folder, written as a tar stream: send it to a file or a program, as in `> notes.tar`",
                e.path
            );
        }
    }
    let mut out = std::io::BufWriter::new(stdout.lock());
    ctx.dump(&found, path, &mut out)?;
    out.flush()?;
    Ok(exit::OK)
}

pub fn mount(ctx: &Context, at: &std::path::Path, location: Option<&str>, devices: Option<&Devices>) -> Result<i32> {
    use nix::sys::signal::{SigSet, Signal};
    // The view's threads inherit this mask, so only the waiter below takes these signals and
    // the view is unmounted cleanly whichever comes.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    signals.thread_block()?;
    let mounted = ctx.mount(at, location, devices)?;
    let loc = ctx.location(location)?;
    eprintln!(
        "The backups of {} are at {} (read-only). Ctrl-C or `fusermount3 -u {}` ends it.",
        loc.name,
        at.display(),
        at.display()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok(s) = signals.wait() {
            let _ = tx.send(s);
        }
    });
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(250)) {
            Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if mounted.is_finished() => break,
            Err(_) => {}
        }
    }
    mounted.unmount()?;
    eprintln!("Unmounted {}.", at.display());
    Ok(exit::OK)
}
