//! Making a backup: the units' paths become trees and blobs, then a snapshot names them.

mod archiver;
mod overlap;
mod scan;
mod sqlite;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use lifeboat_repository::{
    BlobWriter, Id, RawBytes, Repository, Reuse, SessionLock, Snapshot, SnapshotRoot, SnapshotStatus, SnapshotUnit,
};

use crate::command;
use crate::config::UnitKind;
use crate::meta::NameCache;
use crate::paths::Dirs;
use crate::progress::Progress;
use crate::runlog::RunLog;
use crate::unit::{Commands, Unit};
use crate::EngineResult;
use overlap::Overlaps;

/// How long a backup waits for a running prune before giving up.
pub const LOCK_WAIT: Duration = Duration::from_secs(30 * 60);

/// What to back up and how to call it.
pub struct BackupRequest<'a> {
    pub units: Vec<&'a Unit>,
    /// True when `units` is every configured unit.
    pub full: bool,
    pub name: Option<String>,
    pub slug: String,
    pub tags: Vec<String>,
    /// A safety backup's options; None for an ordinary backup.
    pub safety: Option<SafetyOptions>,
    /// The backups the repository held when the slug was chosen: the parents (whose
    /// unchanged files are not read again) are among them. Read before the lock is safe: a
    /// parent's blobs are reused only where the index, read under the lock, still has them.
    pub existing: Vec<(Id, Snapshot)>,
    /// The device making it, recorded in the backup (none: only the host name is).
    pub device: Option<crate::Device>,
    /// Lifeboat's configuration without secrets, recorded in the backup (none in a safety
    /// backup).
    pub configuration: Option<String>,
    /// Set when nobody is there to see the outcome (a hook, a schedule): see [`emptied`].
    pub unattended: Option<Unattended>,
}

/// How an unattended backup judges a unit that stored no files.
#[derive(Debug, Clone, Copy)]
pub struct Unattended {
    /// The units were named (`--unit`): each is meant to hold something on this device.
    pub named: bool,
}

/// How a safety backup differs from an ordinary one: it trusts no stored copy it has not
/// just seen intact, runs under the lock its restore holds, and records what its restore
/// created so that restoring it undoes that restore exactly.
pub struct SafetyOptions {
    /// Blobs the restore just read and authenticated.
    pub verified: std::collections::HashSet<Id>,
    /// Per unit, the paths (as written) the undo removes.
    pub remove: HashMap<String, Vec<String>>,
}

/// The longest name (and tag) a backup may have, in characters: enough for any sentence a
/// person gives, short enough for every table and list that shows it.
pub const MAX_NAME_CHARS: usize = 200;

/// Refuses a backup name or tag that is too long or holds control characters.
pub fn check_name(what: &str, name: &str) -> EngineResult<()> {
    let detail = if name.chars().count() > MAX_NAME_CHARS {
        format!("is {} characters long; give at most {MAX_NAME_CHARS}", name.chars().count())
    } else if name.chars().any(char::is_control) {
        "holds a control character (a line break, a tab…); give it on one line".to_string()
    } else {
        return Ok(());
    };
    Err(crate::EngineError::BadName { what: what.to_string(), detail })
}

/// A short random slug no other backup in the repository has.
pub fn new_slug(repo: &Repository) -> EngineResult<String> {
    Ok(slug_among(&repo.snapshots()?.0))
}

/// A short random slug none of `existing` has.
pub fn slug_among(existing: &[(Id, Snapshot)]) -> String {
    loop {
        let slug = hex::encode(rand::random::<[u8; 4]>());
        if !existing.iter().any(|(_, s)| s.slug == slug) {
            return slug;
        }
    }
}

/// Runs a backup. The snapshot is written only when every unit was stored; a fatal error
/// (the location failing, a cancel) leaves the packs already uploaded for the next run.
pub fn run(
    repo: &Repository,
    dirs: &Dirs,
    req: BackupRequest,
    progress: &Progress,
    log: &RunLog,
) -> EngineResult<(Id, Snapshot)> {
    let started = jiff::Timestamp::now();
    if let Some(n) = &req.name {
        check_name("the backup's name", n)?;
    }
    for t in &req.tags {
        check_name("a tag", t)?;
    }
    progress.set_phase("loading the index");
    // A safety backup runs under the shared lock of its restore, and reuses only what that
    // restore read and authenticated (or what it checks itself).
    let mut session = match &req.safety {
        Some(s) => repo.write_session(SessionLock::HeldByCaller, Reuse::Verified(s.verified.clone()))?,
        None => repo.write_session(SessionLock::Take { operation: "backup", wait: LOCK_WAIT }, Reuse::Indexed)?,
    };
    // A cancel stops the uploads too, and the commit before the snapshot is saved.
    session.stop_when(progress.cancel.clone());
    progress.track_upload(session.writer().stats());
    let host = crate::host();
    let user = crate::user();
    // A safety backup reads every file it holds: a previous backup's blob lists may name
    // damaged blobs.
    let Previous { parents, totals: parent_totals } = match req.safety {
        Some(_) => Previous { parents: HashMap::new(), totals: None },
        None => previous_among(&req.existing, &req.units, req.device.as_ref()),
    };
    let held = match req.unattended {
        Some(_) => held_before(&req.existing, &req.units, req.device.as_ref()),
        None => HashMap::new(),
    };
    let overlaps = Overlaps::of(&req.units);
    // The previous backups' unit totals count a file under two units twice: with overlaps,
    // the progress estimate comes from a scan that counts it once.
    let parent_totals = parent_totals.filter(|_| overlaps.is_empty());
    log.info(&format!("backup {} of {} to {}", req.slug, names(&req.units), repo.store().describe()));

    // Two more threads than cores: while some wait on the disk, the others compress.
    let pool = crate::workers::pool("backup", crate::workers::cores() + 2)?;
    let names_cache = NameCache::default();
    let done = AtomicBool::new(false);
    let read_bytes = AtomicU64::new(0);
    let staging_dir = staging_dir(dirs);
    let work = Session {
        repo,
        parents: &parents,
        writer: session.writer(),
        progress,
        log,
        names: &names_cache,
        overlaps: &overlaps,
        read_bytes: &read_bytes,
        staging_dir: &staging_dir,
        home: &dirs.home,
    };
    let result: EngineResult<Vec<SnapshotUnit>> = std::thread::scope(|s| {
        match parent_totals {
            // An estimate of the whole from the previous backups; it grows if it proves low.
            Some((files, bytes)) => progress.set_totals(files, bytes, true),
            None => {
                let units = &req.units;
                let (done, overlaps) = (&done, &overlaps);
                s.spawn(move || scan::count(units, overlaps, progress, done));
            }
        }
        progress.set_phase("backing up");
        let r =
            pool.install(|| req.units.iter().map(|unit| backup_unit(&work, unit)).collect::<EngineResult<Vec<_>>>());
        done.store(true, Ordering::Relaxed);
        r
    });
    let units = match result {
        Ok(mut u) => {
            if let Some(s) = &req.safety {
                for unit in &mut u {
                    unit.remove_on_restore = s.remove.get(&unit.name).cloned().unwrap_or_default();
                }
            }
            if let Some(how) = req.unattended {
                for (unit, stored) in req.units.iter().zip(u.iter_mut()) {
                    if let Some(why) = emptied(unit, stored, held.get(&unit.name), how) {
                        // Told once, by whoever reads the outcome (the hook's FAILED line).
                        log.error(&format!("unit {} not backed up: {why}", unit.name));
                        stored.status = SnapshotStatus::Failed;
                        stored.error = Some(why);
                    }
                }
            }
            u
        }
        Err(e) => {
            log.error(&format!("backup failed: {e}"));
            return Err(e);
        }
    };
    // Adoption ends before any blob it could hold is stored; unfinished now, nothing waited.
    if let Some(n @ 1..) = session.adopted() {
        log.info(&format!("reused {n} packs left by an interrupted backup"));
    }
    if progress.is_cancelled() {
        return Err(crate::EngineError::Cancelled);
    }
    progress.set_phase("sending the last data and the index");
    let read = read_bytes.load(Ordering::Relaxed);
    // Unattended, a unit that failed fails the backup: nobody reads its warnings, and a hook
    // that says "completed" over a unit that holds nothing is believed.
    let status = if req.unattended.is_some() && units.iter().any(|u| u.status == SnapshotStatus::Failed) {
        SnapshotStatus::Failed
    } else if units.iter().any(|u| u.status != SnapshotStatus::Completed) {
        SnapshotStatus::CompletedWithWarnings
    } else {
        SnapshotStatus::Completed
    };
    let (id, snapshot) = session.commit(|stats| Snapshot {
        version: 1,
        slug: req.slug.clone(),
        name: req.name.clone().unwrap_or_else(|| default_name(&req, started)),
        date: started,
        finished: jiff::Timestamp::now(),
        host,
        device_id: req.device.as_ref().and_then(|d| d.id.clone()),
        device: req.device.as_ref().map(|d| d.name.clone()),
        user,
        uid: nix::unistd::getuid().as_raw(),
        home: RawBytes::from_os(dirs.home.as_os_str()),
        full: req.full,
        status,
        // A repository with a password is protected however this run opened it (a device key
        // added for unattended backups does not make its backups unprotected).
        protected: repo.opened_with_password()
            || repo.keys().map(|k| k.iter().any(|k| k.kind == lifeboat_repository::KeyKind::Password)).unwrap_or(false),
        pinned: false,
        // What is stored, each file once however many units hold it.
        size: units.iter().map(|u| u.size).sum::<u64>() - overlaps.repeated_bytes.load(Ordering::Relaxed),
        files: units.iter().map(|u| u.files).sum::<u64>() - overlaps.repeated_files.load(Ordering::Relaxed),
        // New file content: the folder listings are in `stored`, not here.
        added: stats.new_data_bytes.load(Ordering::Relaxed),
        stored: stats.stored_bytes.load(Ordering::Relaxed),
        read,
        units,
        tags: req.tags.clone(),
        program: format!("lifeboat {}", env!("CARGO_PKG_VERSION")),
        configuration: req.configuration.clone(),
    })?;
    log.info(&format!(
        "backup {} {}: {} files, {} bytes, {} bytes new, {} bytes stored",
        snapshot.slug,
        snapshot.status.as_str(),
        snapshot.files,
        snapshot.size,
        snapshot.added,
        snapshot.stored
    ));
    Ok((id, snapshot))
}

/// What every unit of one backup run shares.
struct Session<'a> {
    repo: &'a Repository,
    parents: &'a HashMap<(String, String), lifeboat_repository::Node>,
    writer: &'a BlobWriter,
    progress: &'a Progress,
    log: &'a RunLog,
    names: &'a NameCache,
    overlaps: &'a Overlaps,
    read_bytes: &'a AtomicU64,
    /// Where consistent copies of databases and command exports are made before they are read.
    staging_dir: &'a std::path::Path,
    home: &'a Path,
}

fn backup_unit(session: &Session, unit: &Unit) -> EngineResult<SnapshotUnit> {
    let Session { repo, parents, writer, progress, log, names: names_cache, overlaps, read_bytes, staging_dir, home } =
        *session;
    let archiver = archiver::Archiver {
        repo,
        writer,
        filter: &unit.filter,
        progress,
        log,
        names: names_cache,
        overlaps,
        files: AtomicU64::new(0),
        dirs: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        warnings: Mutex::new(Vec::new()),
        read: read_bytes,
    };
    let hook = |line: &Option<String>| match line {
        Some(line) => command::run(command::Invocation {
            program: command::Program::Shell(line),
            dir: None,
            unit: &unit.name,
            home,
            stdin: None,
            stdout: None,
            timeout: unit.hooks.timeout,
        }),
        None => Ok(()),
    };
    let failed = |error: String| {
        log.warn(progress, &format!("unit {} not backed up: {error}", unit.name));
        SnapshotUnit {
            name: unit.name.clone(),
            title: unit.title.clone(),
            kind: unit.kind.as_str().to_string(),
            status: SnapshotStatus::Failed,
            warnings: vec![],
            error: Some(error),
            roots: vec![],
            files: 0,
            dirs: 0,
            size: 0,
            not_included: unit.not_included.clone(),
            remove_on_restore: Vec::new(),
        }
    };
    if let Err(e) = hook(&unit.hooks.before_backup) {
        return Ok(failed(format!("before_backup: {e}")));
    }
    let mut roots = Vec::new();
    let staging = || {
        tempfile::Builder::new()
            .prefix(&format!(".lifeboat-{}-", unit.name))
            .tempdir_in(staging_dir)
            .map_err(|e| crate::EngineError::io("creating a staging folder in", staging_dir, e))
    };
    if let Some(commands) = &unit.commands {
        let area = staging()?;
        if let Err(e) = export(commands, area.path(), unit, home) {
            let _ = hook(&unit.hooks.after_backup);
            return Ok(failed(format!("export: {e}")));
        }
        if let Some(mut node) = archiver.root(area.path(), None)? {
            node.name = RawBytes(b"export".to_vec());
            roots.push(SnapshotRoot {
                path: crate::unit::command_root(&unit.name),
                absolute: RawBytes::from_os(area.path().as_os_str()),
                node,
                selection: false,
            });
        }
    }
    for (written, abs) in &unit.paths {
        if unit.optional && abs.symlink_metadata().is_err() {
            log.info(&format!("unit {}: {} does not exist here; skipped", unit.name, abs.display()));
            continue;
        }
        let parent = parents.get(&(unit.name.clone(), written.clone()));
        let node = match unit.kind {
            UnitKind::Sqlite => {
                let area = staging()?;
                let copy = area.path().join("copy.db");
                match sqlite::copy(abs, &copy) {
                    Ok(()) => archiver.database(abs, &copy)?,
                    Err(e) => {
                        archiver.warn_unit(format!("{}: {e}", abs.display()));
                        None
                    }
                }
            }
            _ => archiver.root(abs, parent)?,
        };
        if let Some(node) = node {
            roots.push(SnapshotRoot {
                path: written.clone(),
                absolute: RawBytes::from_os(abs.as_os_str()),
                node,
                selection: false,
            });
        }
    }
    if let Err(e) = hook(&unit.hooks.after_backup) {
        archiver.warn_unit(format!("after_backup: {e}"));
    }
    let warnings = archiver.warnings.into_inner().expect("warnings lock");
    Ok(SnapshotUnit {
        name: unit.name.clone(),
        title: unit.title.clone(),
        kind: unit.kind.as_str().to_string(),
        status: if warnings.is_empty() { SnapshotStatus::Completed } else { SnapshotStatus::CompletedWithWarnings },
        warnings,
        error: None,
        roots,
        files: archiver.files.load(Ordering::Relaxed),
        dirs: archiver.dirs.load(Ordering::Relaxed),
        size: archiver.bytes.load(Ordering::Relaxed),
        not_included: unit.not_included.clone(),
        remove_on_restore: Vec::new(),
    })
}

/// Why an unattended backup fails a unit that stored no files, if it does: it held files in
/// its previous backup (`held`: that backup's slug and files) — a folder moved, a disk not
/// mounted, a hook run as someone else —, or none of its paths exist while the unit was named
/// or is not optional. A unit that exists and is empty, or an optional one of another
/// system's paths in a full backup, is no failure.
fn emptied(unit: &Unit, stored: &SnapshotUnit, held: Option<&(String, u64)>, how: Unattended) -> Option<String> {
    if stored.error.is_some() || stored.files > 0 {
        return None;
    }
    let missing: Vec<String> = unit
        .paths
        .iter()
        .filter(|(_, abs)| abs.symlink_metadata().is_err())
        .map(|(_, abs)| abs.display().to_string())
        .collect();
    let which = match missing.len() {
        0 => String::new(),
        1 => format!(" ({} does not exist)", missing[0]),
        _ => format!(" ({} do not exist)", missing.join(", ")),
    };
    if let Some((slug, files @ 1..)) = held {
        let files = if *files == 1 { "1 file".to_string() } else { format!("{files} files") };
        return Some(format!(
            "it holds no files, while its previous backup {slug} held {files}{which}: is a folder moved or a disk \
             not mounted?"
        ));
    }
    let none_exist = unit.commands.is_none() && !unit.paths.is_empty() && missing.len() == unit.paths.len();
    if none_exist && (how.named || !unit.optional) {
        return Some(format!("none of its paths exist here{which}"));
    }
    None
}

/// Per unit, the newest backup of this device that stored it without failing: its slug and
/// how many files the unit held there.
fn held_before(
    snapshots: &[(Id, Snapshot)],
    units: &[&Unit],
    device: Option<&crate::Device>,
) -> HashMap<String, (String, u64)> {
    let host = crate::host();
    let mine = |s: &Snapshot| device.map_or(s.host == host, |d| d.owns(s));
    let mut held = HashMap::new();
    for unit in units {
        let newest =
            snapshots.iter().rev().filter(|(_, s)| mine(s) && s.status != SnapshotStatus::Failed).find_map(|(_, s)| {
                s.units.iter().find(|u| u.name == unit.name && u.error.is_none()).map(|u| (s.slug.clone(), u.files))
            });
        if let Some(n) = newest {
            held.insert(unit.name.clone(), n);
        }
    }
    held
}

/// Runs a `command` unit's export into `area` (`data/`, and `bin/` for vault scripts).
fn export(commands: &Commands, area: &Path, unit: &Unit, home: &Path) -> Result<(), String> {
    let data = area.join("data");
    crate::paths::private_dir(&data).map_err(|e| e.to_string())?;
    let (program, stdout) = match commands {
        Commands::Shell { export, stream: false, .. } => (command::Program::Shell(export), None),
        Commands::Shell { export, stream: true, .. } => {
            let out = std::fs::File::create(data.join("stream")).map_err(|e| e.to_string())?;
            (command::Program::Shell(export), Some(out))
        }
        Commands::Vault { script } => {
            let bin = area.join("bin");
            crate::paths::private_dir(&bin).map_err(|e| e.to_string())?;
            (
                command::Program::Args(
                    script.to_str().unwrap_or_default(),
                    vault_args("export", &data, &bin, home, &unit.name),
                ),
                None,
            )
        }
    };
    command::run(command::Invocation {
        program,
        dir: Some(&data),
        unit: &unit.name,
        home,
        stdin: None,
        stdout,
        timeout: unit.hooks.timeout,
    })
}

/// The arguments Sailfish OS passes to a vault unit script.
pub(crate) fn vault_args(action: &str, data: &Path, bin: &Path, home: &Path, name: &str) -> Vec<String> {
    let s = |p: &Path| p.to_string_lossy().into_owned();
    vec![
        "--action".into(),
        action.into(),
        "--dir".into(),
        s(data),
        "--bin-dir".into(),
        s(bin),
        "--home-dir".into(),
        s(home),
        "--name".into(),
        name.into(),
    ]
}

fn names(units: &[&Unit]) -> String {
    units.iter().map(|u| u.name.as_str()).collect::<Vec<_>>().join(", ")
}

fn default_name(req: &BackupRequest, started: jiff::Timestamp) -> String {
    let when = started.to_zoned(jiff::tz::TimeZone::system()).strftime("%Y-%m-%d %H:%M");
    if req.full {
        format!("Full backup {when}")
    } else {
        format!("Partial backup {when} ({})", names(&req.units))
    }
}

/// The previous backup of each unit path on this device (its unchanged files are not read
/// again), and the files and bytes it held when every unit has one (a progress estimate).
pub(crate) struct Previous {
    parents: HashMap<(String, String), lifeboat_repository::Node>,
    totals: Option<(u64, u64)>,
}

pub(crate) fn previous(repo: &Repository, units: &[&Unit]) -> EngineResult<Previous> {
    Ok(previous_among(&repo.snapshots()?.0, units, None))
}

/// `device`: this device's backups are the parents (none: the backups of this host).
fn previous_among(snapshots: &[(Id, Snapshot)], units: &[&Unit], device: Option<&crate::Device>) -> Previous {
    let host = crate::host();
    let mine = |s: &Snapshot| device.map_or(s.host == host, |d| d.owns(s));
    let mut parents = HashMap::new();
    let mut totals = Some((0, 0));
    for unit in units {
        let prev = snapshots
            .iter()
            .rev()
            .filter(|(_, s)| mine(s) && s.status != SnapshotStatus::Failed)
            .find_map(|(_, s)| s.units.iter().find(|u| u.name == unit.name));
        match prev {
            Some(u) => {
                for r in &u.roots {
                    parents.insert((unit.name.clone(), r.path.clone()), r.node.clone());
                }
                if let Some(t) = totals.as_mut() {
                    t.0 += u.files;
                    t.1 += u.size;
                }
            }
            None => totals = None,
        }
    }
    Previous { parents, totals }
}

/// Runs one unit through the pipeline with a dry-run writer (for `estimate`). The caller has
/// loaded the index and found the previous backups.
pub(crate) fn dry_unit(
    repo: &Repository,
    dirs: &Dirs,
    unit: &Unit,
    previous: &Previous,
    writer: &BlobWriter,
    progress: &Progress,
    log: &RunLog,
) -> EngineResult<SnapshotUnit> {
    let session = Session {
        repo,
        parents: &previous.parents,
        writer,
        progress,
        log,
        names: &NameCache::default(),
        overlaps: &Overlaps::default(),
        read_bytes: &AtomicU64::new(0),
        staging_dir: &staging_dir(dirs),
        home: &dirs.home,
    };
    backup_unit(&session, unit)
}

/// Counts a unit's files and bytes without reading them.
pub(crate) fn count_unit(unit: &Unit, progress: &Progress) -> (u64, u64) {
    let done = AtomicBool::new(false);
    scan::count(&[unit], &Overlaps::default(), progress, &done);
    // The counters, not a snapshot: a snapshot's totals never shrink, and a caller counts
    // unit after unit with one progress.
    (progress.files_total.load(Ordering::Relaxed), progress.bytes_total.load(Ordering::Relaxed))
}

/// Staging space for database copies: Lifeboat's data folder (never backed up itself).
pub(crate) fn staging_dir(dirs: &Dirs) -> std::path::PathBuf {
    let d = dirs.data.join("staging");
    let _ = crate::paths::private_dir(&d);
    d
}
