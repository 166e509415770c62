//! Restoring a backup: folders first, then file data pack by pack (each pack read once, its
//! blobs written at their offsets in parallel), then links and special files, then the
//! folders' own metadata, deepest first.

mod data;
pub(crate) mod fsops;
pub(crate) mod plan;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lifeboat_repository::{Node, NodeKind, Repository, Snapshot};
use rayon::prelude::*;
use serde::Serialize;

use crate::command;
use crate::meta;
use crate::paths::Dirs;
use crate::progress::Progress;
use crate::runlog::RunLog;
use crate::unit::{Commands, Unit};
use crate::{EngineError, EngineResult};

pub struct RestoreRequest {
    pub units: Vec<String>,
    pub target: Option<PathBuf>,
    pub dry_run: bool,
    /// The units configured on this device: their hooks run around the restore, and
    /// `command` units import their data with them.
    pub configured: Vec<Unit>,
    pub mode: RestoreMode,
    /// `--map-path OLD=NEW`: paths under OLD (destinations and absolute symlink targets) go
    /// under NEW. The backup's home always maps to this user's home.
    pub map_paths: Vec<(PathBuf, PathBuf)>,
}

/// What happens to files in a restored folder that the backup does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreMode {
    /// Restored files win; other files stay (the default: nothing the backup does not hold is
    /// deleted).
    #[default]
    Merge,
    /// The unit's folders become exactly what the backup holds: other files in them are
    /// removed (files the unit excludes, such as caches, stay).
    Replace,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Change {
    /// `new` or `replace`.
    pub action: &'static str,
    pub path: String,
}

#[derive(Debug, Default, Serialize)]
pub struct RestoreReport {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    /// Entries that could not be restored (or not fully), with the reason.
    pub problems: Vec<String>,
    /// With `dry_run`: what would change.
    pub changes: Vec<Change>,
    pub unchanged: u64,
    pub roots: Vec<(String, String)>,
}

/// Restore threads per core: creating files is mostly waiting on the file system, so more
/// threads than cores keep both the disk and the CPUs busy.
const THREADS_PER_CORE: usize = 2;

pub fn run(
    repo: &Repository,
    snapshot: &Snapshot,
    dirs: &Dirs,
    req: &RestoreRequest,
    progress: &Progress,
    log: &RunLog,
) -> EngineResult<RestoreReport> {
    let pool = crate::workers::pool("restore", crate::workers::cores() * THREADS_PER_CORE)?;
    pool.install(|| run_in_pool(repo, snapshot, dirs, req, progress, log))
}

fn run_in_pool(
    repo: &Repository,
    snapshot: &Snapshot,
    dirs: &Dirs,
    req: &RestoreRequest,
    progress: &Progress,
    log: &RunLog,
) -> EngineResult<RestoreReport> {
    for u in &req.units {
        if !snapshot.units.iter().any(|su| &su.name == u) {
            return Err(EngineError::UnitNotInBackup {
                slug: snapshot.slug.clone(),
                unit: u.clone(),
                held: snapshot.units.iter().map(|u| u.name.as_str()).collect::<Vec<_>>().join(", "),
            });
        }
    }
    if let Some(t) = &req.target {
        if let Ok(m) = std::fs::metadata(t) {
            if !m.is_dir() {
                return Err(EngineError::BadTarget(t.clone()));
            }
        }
    }
    progress.set_phase("reading the backup's folders");
    repo.load_index()?;
    // Exported data of command units goes to a staging folder for their import (or, under
    // --target, to DIR/lifeboat-units/NAME for a person to look at).
    let mut staging = Vec::new();
    let mut elsewhere = HashMap::new();
    let chosen = |name: &str| req.units.is_empty() || req.units.iter().any(|u| u == name);
    for su in snapshot.units.iter().filter(|u| u.kind == "command" && chosen(&u.name)) {
        let dest = match &req.target {
            Some(t) => t.join("lifeboat-units").join(&su.name),
            None => {
                let area = tempfile::Builder::new()
                    .prefix(&format!(".lifeboat-import-{}-", su.name))
                    .tempdir_in(crate::backup::staging_dir(dirs))
                    .map_err(|e| EngineError::io("creating a staging folder in", &dirs.data, e))?;
                let dest = area.path().join("export");
                staging.push(area);
                dest
            }
        };
        elsewhere.insert(su.name.clone(), dest);
    }
    if !req.dry_run {
        for unit in configured_units(req, snapshot) {
            if let Err(e) = hook(unit, &unit.hooks.before_restore, dirs) {
                return Err(EngineError::Hook { unit: unit.name.clone(), reason: format!("before_restore: {e}") });
            }
        }
    }
    let map = plan::PathMap::new(&snapshot.home.0, &dirs.home, &req.map_paths);
    // In place, each unit root is written beside itself and swapped in when complete, so a
    // crash leaves it entirely as it was or entirely as in the backup.
    let stage = req.target.is_none() && !req.dry_run;
    let plan = plan::build(
        repo,
        plan::PlanRequest {
            snapshot,
            units: &req.units,
            dirs,
            target: req.target.as_deref(),
            elsewhere: &elsewhere,
            map: &map,
            stage,
        },
    );
    let mut report = RestoreReport {
        problems: plan.problems.clone(),
        // Where each unit ends up (a staged root's final place, not its staging copy).
        roots: plan
            .roots
            .iter()
            .zip(&plan.finals)
            .map(|((u, p), last)| (u.clone(), last.as_ref().unwrap_or(p).display().to_string()))
            .collect(),
        ..Default::default()
    };
    let files_total = plan.items.iter().filter(|i| i.node.kind != NodeKind::Dir).count() as u64;
    let bytes_total: u64 = plan.items.iter().filter(|i| i.node.kind == NodeKind::File).map(|i| i.node.size).sum();
    progress.set_totals(files_total, bytes_total, true);
    if req.dry_run {
        dry_run(&plan, &mut report);
        return Ok(report);
    }
    log.info(&format!("restore of backup {} ({} entries)", snapshot.slug, plan.items.len()));
    let as_root = nix::unistd::geteuid().is_root();
    let owners = Owners::for_home(&dirs.home);
    let problems = Mutex::new(Vec::new());
    let problem = |path: &Path, what: String| {
        let msg = format!("{}: {what}", path.display());
        log.warn(progress, &msg);
        problems.lock().expect("problems lock").push(msg);
    };

    // 1. Folders, parents first; writable by us until their own metadata is applied last.
    progress.set_phase("creating folders");
    let mut folders: Vec<&plan::Item> = plan.items.iter().filter(|i| i.node.kind == NodeKind::Dir).collect();
    folders.sort_by_key(|i| i.depth);
    for (_, root) in &plan.roots {
        let parent = root.parent().unwrap_or(Path::new("/"));
        let made = match &req.target {
            Some(t) => fsops::ensure_real_dirs(t, parent),
            None => std::fs::create_dir_all(parent),
        };
        if let Err(e) = made {
            return Err(EngineError::io("creating", parent, e));
        }
    }
    for ((unit, staging), last) in plan.roots.iter().zip(&plan.finals) {
        let Some(last) = last else { continue };
        fsops::remove_any(staging).map_err(|e| EngineError::io("removing the leftover", staging, e))?;
        // The staging copy starts with what the restore keeps of the current folder, its files
        // hard-linked (no data copied; files the restore writes are unlinked first): all of
        // it for merge, for replace only what the unit excludes (caches stay caches).
        if last.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            progress.set_phase("preparing the restore beside the current folder");
            let filter = req.configured.iter().find(|u| &u.name == unit).map(|u| &u.filter);
            let keep = |p: &Path, is_dir: bool| match req.mode {
                RestoreMode::Merge => true,
                RestoreMode::Replace => {
                    filter.is_some_and(|f| f.excludes(p, p.strip_prefix(last).unwrap_or(p), is_dir))
                }
            };
            fsops::link_copy(last, staging, &keep).map_err(|e| EngineError::io("preparing a copy of", last, e))?;
        }
    }
    for depth_group in folders.chunk_by(|a, b| a.depth == b.depth) {
        depth_group.par_iter().for_each(|item| {
            if let Err(e) = fsops::ensure_dir(&item.path) {
                problem(&item.path, format!("cannot create folder: {e}"));
            } else {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&item.path, std::fs::Permissions::from_mode(0o700 | item.node.mode));
            }
        });
    }

    if req.mode == RestoreMode::Replace && !stage {
        progress.set_phase("removing what the backup does not hold");
        remove_extras(&plan, &folders, req, &problem);
    }

    for ((unit, dest), last) in plan.roots.iter().zip(&plan.finals) {
        if last.is_none() && snapshot.units.iter().any(|u| &u.name == unit && u.kind == "sqlite") {
            remove_database_sidecars(dest, &problem);
        }
    }

    // 2. File data, and the hard links that share it.
    progress.set_phase("restoring files");
    let mut primaries: HashMap<(u64, u64), &Path> = HashMap::new();
    let mut links: Vec<(&plan::Item, &Path)> = Vec::new();
    let mut files: Vec<&plan::Item> = Vec::new();
    let mut files_sorted: Vec<&plan::Item> = plan.items.iter().filter(|i| i.node.kind == NodeKind::File).collect();
    files_sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for item in files_sorted {
        if item.node.links > 1 {
            if let Some(first) = primaries.get(&(item.node.device, item.node.inode)) {
                links.push((item, first));
                continue;
            }
            primaries.insert((item.node.device, item.node.inode), &item.path);
        }
        files.push(item);
    }
    let owner_of = |n: &Node| as_root.then(|| owners.resolve(n));
    data::restore_files(repo, &files, stage, progress, &|p, w| problem(p, w), &|f, p, n, fresh| {
        for w in meta::apply_fd(f, p, n, as_root, owner_of(n).flatten(), fresh) {
            problem(p, w);
        }
    });
    report.files += files.len() as u64;
    report.bytes = files.iter().map(|i| i.node.size).sum();

    // 3. Links, special files.
    progress.set_phase("restoring links");
    let others: Vec<&plan::Item> =
        plan.items.iter().filter(|i| !matches!(i.node.kind, NodeKind::Dir | NodeKind::File)).collect();
    others.par_iter().for_each(|item| {
        let made = match item.node.kind {
            NodeKind::Symlink => {
                let target = item.node.target.clone().unwrap_or_default();
                fsops::remove_any(&item.path).and_then(|_| std::os::unix::fs::symlink(target.as_os_str(), &item.path))
            }
            NodeKind::Fifo => fsops::remove_any(&item.path).and_then(|_| {
                nix::unistd::mkfifo(&item.path, nix::sys::stat::Mode::from_bits_truncate(item.node.mode))
                    .map_err(std::io::Error::from)
            }),
            NodeKind::CharDevice | NodeKind::BlockDevice if as_root => fsops::remove_any(&item.path).and_then(|_| {
                let kind = if item.node.kind == NodeKind::CharDevice {
                    nix::sys::stat::SFlag::S_IFCHR
                } else {
                    nix::sys::stat::SFlag::S_IFBLK
                };
                nix::sys::stat::mknod(
                    &item.path,
                    kind,
                    nix::sys::stat::Mode::from_bits_truncate(item.node.mode),
                    item.node.rdev.unwrap_or(0),
                )
                .map_err(std::io::Error::from)
            }),
            NodeKind::CharDevice | NodeKind::BlockDevice => {
                problem(&item.path, "device files are restored only by root".into());
                return;
            }
            _ => return,
        };
        match made {
            Ok(()) => {
                for w in meta::apply(&item.path, &item.node, as_root, owner_of(&item.node).flatten()) {
                    problem(&item.path, w);
                }
                progress.add(1, 0);
            }
            Err(e) => problem(&item.path, format!("cannot create: {e}")),
        }
    });
    for (item, first) in &links {
        let made = fsops::remove_any(&item.path).and_then(|_| std::fs::hard_link(first, &item.path));
        match made {
            Ok(()) => progress.add(1, 0),
            Err(e) => problem(&item.path, format!("cannot link to {}: {e}", first.display())),
        }
    }
    report.files += (others.len() + links.len()) as u64;

    // 4. Folder metadata, deepest first, so setting a folder's time is the last change in it.
    progress.set_phase("restoring folder metadata");
    for depth_group in folders.chunk_by(|a, b| a.depth == b.depth).rev() {
        depth_group.par_iter().for_each(|item| {
            for w in meta::apply(&item.path, &item.node, as_root, owner_of(&item.node).flatten()) {
                problem(&item.path, w);
            }
        });
    }
    report.dirs = folders.len() as u64;

    // 5. Swap each staged unit root in.
    for ((unit, staging), last) in plan.roots.iter().zip(&plan.finals) {
        let Some(last) = last else { continue };
        if snapshot.units.iter().any(|u| &u.name == unit && u.kind == "sqlite") {
            remove_database_sidecars(last, &problem);
        }
        progress.set_phase(format!("swapping in {unit}"));
        if let Err(e) = fsops::swap_in(staging, last) {
            problem(last, format!("cannot put the restored copy in place (it is at {}): {e}", staging.display()));
        }
    }

    // 5. Command units import what was restored; then every unit's after_restore hook.
    if req.target.is_none() {
        for su in snapshot.units.iter().filter(|u| u.kind == "command" && chosen(&u.name)) {
            let Some(dest) = elsewhere.get(&su.name) else { continue };
            match req.configured.iter().find(|u| u.name == su.name).and_then(|u| u.commands.as_ref().map(|c| (u, c))) {
                Some((unit, commands)) => {
                    progress.set_phase(format!("importing {}", unit.name));
                    if let Err(e) = import(unit, commands, dest, dirs) {
                        problem(dest, format!("unit {}: import: {e}", unit.name));
                    }
                }
                None => problem(
                    dest,
                    format!(
                        "unit {} has no import command on this device: restore it with --target to get its data",
                        su.name
                    ),
                ),
            }
        }
    }
    if !req.dry_run {
        for unit in configured_units(req, snapshot) {
            if let Err(e) = hook(unit, &unit.hooks.after_restore, dirs) {
                problem(Path::new(&unit.name), format!("after_restore: {e}"));
            }
        }
    }
    drop(staging);
    report.problems.extend(problems.into_inner().expect("problems lock"));
    log.info(&format!(
        "restore of {} finished: {} files, {} folders, {} problems",
        snapshot.slug,
        report.files,
        report.dirs,
        report.problems.len()
    ));
    Ok(report)
}

/// Backs up the configured units a restore in place is about to overwrite, before it does.
/// Returns the safety backup's slug and units, or None when there is nothing configured to
/// protect. `announce` hears the slug before the backup starts.
pub fn safety_backup(
    repo: &Repository,
    dirs: &Dirs,
    snap: &Snapshot,
    units: &[String],
    configured: &[Unit],
    announce: &dyn Fn(&str),
) -> EngineResult<Option<(String, Vec<String>)>> {
    let touched: Vec<&Unit> = configured
        .iter()
        .filter(|u| snap.units.iter().any(|su| su.name == u.name) && (units.is_empty() || units.contains(&u.name)))
        // Nothing to protect where the unit has no data yet (a new device).
        .filter(|u| u.commands.is_some() || u.paths.iter().any(|(_, p)| p.symlink_metadata().is_ok()))
        .collect();
    if touched.is_empty() {
        return Ok(None);
    }
    let slug = crate::backup::new_slug(repo)?;
    announce(&slug);
    let progress = Progress::default();
    let log = RunLog::create(&dirs.logs, "backup", &slug, None);
    let names: Vec<String> = touched.iter().map(|u| u.name.clone()).collect();
    let req = crate::backup::BackupRequest {
        units: touched,
        full: false,
        name: Some(format!("Safety backup before restoring {}", snap.slug)),
        slug,
        tags: vec!["safety".into()],
    };
    let (_, made) = crate::backup::run(repo, dirs, req, &progress, &log)?;
    Ok(Some((made.slug, names)))
}

/// A database comes back without the journal or WAL of the one it replaces: SQLite would
/// otherwise replay the old database's changes onto the restored one.
fn remove_database_sidecars(db: &Path, problem: &(dyn Fn(&Path, String) + Sync)) {
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        if let Err(e) = fsops::remove_any(Path::new(&side)) {
            problem(Path::new(&side), format!("cannot remove the old database's {suffix} file: {e}"));
        }
    }
}

/// In replace mode: removes entries of restored folders that the backup does not hold,
/// except those the unit's configuration excludes.
fn remove_extras(
    plan: &plan::Plan,
    folders: &[&plan::Item],
    req: &RestoreRequest,
    problem: &(dyn Fn(&Path, String) + Sync),
) {
    let mut held: HashMap<&Path, std::collections::HashSet<&std::ffi::OsStr>> = HashMap::new();
    for item in &plan.items {
        if let (Some(parent), Some(name)) = (item.path.parent(), item.path.file_name()) {
            held.entry(parent).or_default().insert(name);
        }
    }
    folders.par_iter().for_each(|dir| {
        let (unit, root) = &plan.roots[dir.root];
        let filter = req.configured.iter().find(|u| &u.name == unit).map(|u| &u.filter);
        let Ok(entries) = std::fs::read_dir(&dir.path) else { return };
        for e in entries.flatten() {
            let name = e.file_name();
            if held.get(dir.path.as_path()).is_some_and(|h| h.contains(name.as_os_str())) {
                continue;
            }
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if filter.is_some_and(|f| f.excludes(&path, rel, is_dir)) {
                continue;
            }
            if let Err(err) = fsops::remove_any(&path) {
                problem(&path, format!("cannot remove (not in the backup): {err}"));
            }
        }
    });
}

/// The configured units this restore touches.
fn configured_units<'a>(req: &'a RestoreRequest, snapshot: &'a Snapshot) -> impl Iterator<Item = &'a Unit> + 'a {
    req.configured.iter().filter(move |u| {
        snapshot.units.iter().any(|su| su.name == u.name) && (req.units.is_empty() || req.units.contains(&u.name))
    })
}

fn hook(unit: &Unit, line: &Option<String>, dirs: &Dirs) -> Result<(), String> {
    let Some(line) = line else { return Ok(()) };
    command::run(command::Invocation {
        program: command::Program::Shell(line),
        dir: None,
        unit: &unit.name,
        home: &dirs.home,
        stdin: None,
        stdout: None,
        timeout: unit.hooks.timeout,
    })
}

/// Runs a `command` unit's import on the data restored at `dest` (`data/`, `bin/`).
fn import(unit: &Unit, commands: &Commands, dest: &Path, dirs: &Dirs) -> Result<(), String> {
    let data = dest.join("data");
    let (program, stdin) = match commands {
        Commands::Shell { import, stream: false, .. } => (command::Program::Shell(import), None),
        Commands::Shell { import, stream: true, .. } => {
            let input = std::fs::File::open(data.join("stream")).map_err(|e| format!("no exported stream: {e}"))?;
            (command::Program::Shell(import), Some(input))
        }
        Commands::Vault { script } => (
            command::Program::Args(
                script.to_str().unwrap_or_default(),
                crate::backup::vault_args("import", &data, &dest.join("bin"), &dirs.home, &unit.name),
            ),
            None,
        ),
    };
    command::run(command::Invocation {
        program,
        dir: Some(&data),
        unit: &unit.name,
        home: &dirs.home,
        stdin,
        stdout: None,
        timeout: unit.hooks.timeout,
    })
}

fn dry_run(plan: &plan::Plan, report: &mut RestoreReport) {
    for item in &plan.items {
        let action = match std::fs::symlink_metadata(&item.path) {
            Err(_) => Some("new"),
            Ok(m) => {
                let same = meta::kind_of(&m) == item.node.kind
                    && match item.node.kind {
                        NodeKind::File => {
                            m.size() == item.node.size
                                && m.mtime() == item.node.mtime.0
                                && m.mtime_nsec() as u32 == item.node.mtime.1
                        }
                        NodeKind::Symlink => {
                            std::fs::read_link(&item.path).ok().map(|t| t.into_os_string())
                                == item.node.target.as_ref().map(|t| t.to_os_string())
                        }
                        _ => true,
                    };
                (!same).then_some("replace")
            }
        };
        match action {
            Some(a) => report.changes.push(Change { action: a, path: item.path.display().to_string() }),
            None => report.unchanged += 1,
        }
    }
    report.changes.sort_by(|a, b| a.path.cmp(&b.path));
}

/// User name, group name, uid and gid as stored.
type OwnerKey = (Option<String>, Option<String>, u32, u32);

/// Owners on restore as root: by name when the name exists here, else by number.
pub(crate) struct Owners {
    cache: Mutex<HashMap<OwnerKey, (u32, u32)>>,
    /// Owner and group of the home folder restored into.
    home_owner: (u32, u32),
}

impl Owners {
    pub(crate) fn for_home(home: &Path) -> Owners {
        Owners {
            cache: Mutex::new(HashMap::new()),
            home_owner: std::fs::metadata(home)
                .map(|m| (m.uid(), m.gid()))
                .unwrap_or((nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())),
        }
    }

    /// Owner and group by name where the names exist here; a user (or group) unknown on this
    /// device maps to the owner of the home the data is restored into, so a backup from
    /// another device or user belongs to the person restoring it.
    pub(crate) fn resolve(&self, n: &Node) -> Option<(u32, u32)> {
        let key = (n.user.clone(), n.group.clone(), n.uid, n.gid);
        let mut c = self.cache.lock().expect("owners lock");
        Some(*c.entry(key).or_insert_with(|| {
            let uid = match n.user.as_deref() {
                Some(name) => match nix::unistd::User::from_name(name).ok().flatten() {
                    Some(u) => u.uid.as_raw(),
                    None => self.home_owner.0,
                },
                None => n.uid,
            };
            let gid = match n.group.as_deref() {
                Some(name) => match nix::unistd::Group::from_name(name).ok().flatten() {
                    Some(g) => g.gid.as_raw(),
                    None => self.home_owner.1,
                },
                None => n.gid,
            };
            (uid, gid)
        }))
    }
}
