//! Restoring a backup. The plan (`plan.rs`) says what every destination path becomes; the
//! executor (`write.rs`) writes everything beside its destination, by handle (`handles.rs`):
//! folders first, file data pack by pack (each pack read once, its blobs written at their
//! offsets in parallel), links and special files. Then the safety backup of what the restore
//! replaces and deletes, and the commit: deletions, each entry renamed onto its path while
//! that path is still what the plan saw, the folders' own metadata deepest first. A journal
//! (`journal.rs`) says how far a restore got, so that one killed midway is finished or
//! undone.

pub(crate) mod content;
mod data;
pub(crate) mod entry;
pub(crate) mod fsops;
pub(crate) mod handles;
pub mod journal;
pub(crate) mod plan;
pub(crate) mod room;
mod safety;
mod write;
pub(crate) mod writers;

#[cfg(test)]
mod model_tests;

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lifeboat_repository::{Node, Repository, Snapshot};
use serde::Serialize;

use crate::browse::pattern::Choice;
use crate::command;
use crate::paths::Dirs;
use crate::progress::Progress;
use crate::runlog::RunLog;
use crate::services::Stopped;
use crate::unit::{Commands, Unit};
use crate::{EngineError, EngineResult};

pub use plan::{Action, Step};
pub(crate) use write::Source;

pub struct RestoreRequest {
    pub units: Vec<String>,
    pub target: Option<PathBuf>,
    pub dry_run: bool,
    /// The units configured on this device, resolved for the home restored into: their hooks
    /// run around the restore, `command` units import their data with them, and in replace
    /// mode what they exclude (and the paths of units not restored) stays.
    pub configured: Vec<Unit>,
    pub mode: RestoreMode,
    /// `--map-path OLD=NEW`: paths under OLD (destinations and absolute symlink targets) go
    /// under NEW. The backup's home always maps to this user's home.
    pub map_paths: Vec<(PathBuf, PathBuf)>,
    /// In place: first back up what the restore replaces and deletes, so that restoring that
    /// backup undoes it.
    pub safety_backup: bool,
    /// Only these paths of the backup (files or folders, globs allowed; a pattern without `/`
    /// matches names); none: everything of the chosen units.
    pub paths: Vec<String>,
    /// Take a file whose size and date match the backup's as unchanged without comparing its
    /// content (faster; a file damaged on the device with its date intact is not repaired).
    pub trust_dates: bool,
    /// The device restored onto, recorded in the safety backup.
    pub device: Option<crate::Device>,
    /// Restore a database in place even while another process has it open for writing.
    pub force: bool,
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
    /// removed (files the unit excludes, such as caches, and other units' paths stay).
    Replace,
}

/// The backup made of what an in-place restore replaced and deleted.
#[derive(Debug, Clone, Serialize)]
pub struct SafetyBackup {
    pub slug: String,
    pub units: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct RestoreReport {
    /// Entries written (files, links, special files) and folders made sure of.
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    /// What could not be done, or done fully, with the reason: first the `not_restored`
    /// ones, then the warnings.
    pub problems: Vec<String>,
    /// How many of `problems` are something not restored: an entry not written or not
    /// removed, a folder not read, prepared or put in place (with all it holds), a unit not
    /// imported. A restore with any is a failure. The other problems are warnings: entries
    /// restored whose owner, permissions, times or extended attributes could not all be set,
    /// an after_restore hook that failed.
    pub not_restored: u64,
    /// The plan's counts: paths created, replaced, deleted, kept, and already as in the backup.
    pub create: u64,
    pub replace: u64,
    pub delete: u64,
    pub keep: u64,
    pub unchanged: u64,
    /// With `dry_run`: the whole plan, every destination path with what it becomes and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<Step>,
    /// Where each unit root lands.
    pub roots: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_backup: Option<SafetyBackup>,
    /// The services and containers stopped for the restore and started again after it
    /// (`stop_while_restoring`); with `dry_run`, those it would stop.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stopped: Vec<String>,
    /// Databases of the units restored in place that other processes have open for writing
    /// (after the stop), or that could not be checked for it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub in_use: Vec<DatabaseInUse>,
}

/// A database restored in place while other processes have it (or its `-wal` or `-journal`)
/// open for writing: what they write after the restore goes to a file no longer there.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseInUse {
    pub unit: String,
    pub path: String,
    pub writers: Vec<writers::Process>,
    /// Processes of other users could not be looked into (not run as root): one of them may
    /// write to it too.
    pub unchecked: bool,
}

impl RestoreReport {
    pub(crate) fn from_plan(plan: &plan::Plan) -> RestoreReport {
        RestoreReport {
            create: plan.count(Action::Create),
            replace: plan.count(Action::Replace),
            delete: plan.count(Action::Delete),
            keep: plan.count(Action::Keep),
            unchanged: plan.count(Action::Unchanged),
            roots: plan.roots.iter().map(|r| (r.unit.clone(), r.dest.display().to_string())).collect(),
            problems: plan.problems.clone(),
            // A folder whose listing cannot be read is restored empty, or not at all.
            not_restored: plan.problems.len() as u64,
            ..Default::default()
        }
    }
}

/// Restore threads per core: creating files is mostly waiting on the file system, so more
/// threads than cores keep both the disk and the CPUs busy.
const THREADS_PER_CORE: usize = 2;

/// Restores a backup of `repo`: plans it, checks the room, writes what the plan writes (in
/// place, into staging copies), makes the safety backup, and only when every entry was
/// written swaps the copies in.
pub fn run(
    repo: &Repository,
    snapshot: &Snapshot,
    dirs: &Dirs,
    req: &RestoreRequest,
    progress: &Progress,
    log: &RunLog,
) -> EngineResult<RestoreReport> {
    let pool = crate::workers::pool("restore", crate::workers::cores() * THREADS_PER_CORE)?;
    pool.install(|| Restore { repo, snapshot, dirs, req, progress, log }.run())
}

struct Restore<'a> {
    repo: &'a Repository,
    snapshot: &'a Snapshot,
    dirs: &'a Dirs,
    req: &'a RestoreRequest,
    progress: &'a Progress,
    log: &'a RunLog,
}

impl Restore<'_> {
    fn run(&self) -> EngineResult<RestoreReport> {
        let (snapshot, req) = (self.snapshot, self.req);
        self.check_request()?;
        // Prune waits for this lock, so no pack the restore needs goes while it runs.
        let _lock = shared_lock_with_index(self.repo, "restore")?;
        self.progress.set_phase("reading the backup's folders");
        let (areas, elsewhere) = self.command_areas()?;
        let units: Vec<&Unit> = configured_units(req, snapshot).collect();
        let stopped = stop_services(&units, req.target.is_none(), req.dry_run, self.progress, self.log)?;
        if !req.dry_run {
            for (i, unit) in configured_units(req, snapshot).enumerate() {
                if let Err(e) = hook(unit, &unit.hooks.before_restore, self.dirs) {
                    // What the units before it stopped is started again.
                    self.started_again(i);
                    return Err(EngineError::Hook { unit: unit.name.clone(), reason: format!("before_restore: {e}") });
                }
            }
        }
        // From here, a restore that stops (interrupted, not all written, no room, no safety
        // backup) runs the after_restore hooks: what before_restore stopped is not left stopped.
        let halted = |e: EngineError| {
            if !req.dry_run {
                self.started_again(usize::MAX);
            }
            e
        };
        let plan = self.plan(&elsewhere).map_err(halted)?;
        let mut report = RestoreReport::from_plan(&plan);
        // A folder whose listing cannot be read would come back empty: in place, that is no
        // restore of the unit (and replace would remove what is in it), so nothing starts.
        if !req.dry_run && req.target.is_none() && !plan.problems.is_empty() {
            for p in &plan.problems {
                self.log.warn(self.progress, p);
            }
            return Err(halted(EngineError::RestoreIncomplete {
                failed: plan.problems.len(),
                first: plan.problems[0].clone(),
            }));
        }
        let check = InUseCheck { in_place: req.target.is_none(), dry_run: req.dry_run, force: req.force };
        let in_use = databases_in_use(&plan, &units, &stopped, check, &mut report, self.log).map_err(halted)?;
        if req.dry_run {
            report.stopped = stopped.names();
            report.plan = plan.listing();
            return Ok(report);
        }
        room::check(&plan).map_err(halted)?;
        // Only what is replaced or deleted is at risk: a restore that only creates (a new
        // device) needs no safety backup, and may come from a repository it cannot write to.
        let at_risk = plan.steps().any(|s| matches!(s.action, Action::Replace | Action::Delete));
        let in_place = req.target.is_none();
        let safety = |verified: &HashSet<lifeboat_repository::Id>| {
            if !(in_place && req.safety_backup && at_risk) {
                return Ok(None);
            }
            self.progress.set_phase("making a safety backup of what the restore changes");
            safety::make(self.repo, self.dirs, snapshot, &plan, req, verified, self.progress, self.log)
        };
        let carried = carry_out(
            &plan,
            write::Source::Repository(self.repo),
            self.dirs,
            (&snapshot.slug, self.asked()),
            in_place,
            &safety,
            self.progress,
            self.log,
        )
        .map_err(halted)?;
        report.safety_backup = carried.safety_backup;
        let (mut problems, mut warnings) = (carried.not_restored, carried.warnings);
        self.after(&elsewhere, &mut problems, &mut warnings);
        warnings.extend(in_use);
        report.stopped = stopped.names();
        warnings.extend(stopped.start_again());
        // Not restored is a failure; metadata not set, or an after_restore hook, a warning.
        report.not_restored += problems.len() as u64;
        problems.extend(warnings);
        drop(areas);
        report.files = carried.files;
        report.dirs = carried.dirs;
        report.bytes = carried.bytes;
        report.problems.extend(problems);
        self.log.info(&format!(
            "restore of {} finished: {} files, {} folders, {} problems",
            snapshot.slug,
            report.files,
            report.dirs,
            report.problems.len()
        ));
        Ok(report)
    }

    /// A restore that stopped after before_restore ran: the first `ran` units' after_restore
    /// hooks, so that what they stopped runs again (one that fails is a warning in the log).
    fn started_again(&self, ran: usize) {
        for unit in configured_units(self.req, self.snapshot).take(ran) {
            if unit.hooks.after_restore.is_none() {
                continue;
            }
            match hook(unit, &unit.hooks.after_restore, self.dirs) {
                Ok(()) => self.log.info(&format!("unit {}: after_restore ran, as the restore stopped", unit.name)),
                Err(e) => self.log.warn(self.progress, &format!("unit {}: after_restore: {e}", unit.name)),
            }
        }
    }

    /// What was asked, for the journal: enough to run the restore again.
    fn asked(&self) -> journal::Asked {
        let req = self.req;
        journal::Asked {
            units: req.units.clone(),
            target: req.target.clone(),
            mode: req.mode,
            map_paths: req.map_paths.clone(),
            home: self.dirs.home.clone(),
            paths: req.paths.clone(),
            trust_dates: req.trust_dates,
        }
    }

    fn check_request(&self) -> EngineResult<()> {
        let (snapshot, req) = (self.snapshot, self.req);
        units_held(&snapshot.slug, snapshot.units.iter().map(|u| u.name.as_str()), &req.units)?;
        snapshot.check_paths().map_err(|detail| EngineError::UnsafeBackup { slug: snapshot.slug.clone(), detail })?;
        if let Some(t) = &req.target {
            if std::fs::metadata(t).is_ok_and(|m| !m.is_dir()) || !t.is_absolute() {
                return Err(EngineError::BadTarget(t.clone()));
            }
        }
        Ok(())
    }

    fn chosen(&self, name: &str) -> bool {
        let by_name = self.req.units.is_empty() || self.req.units.iter().any(|u| u == name);
        // Paths choose files of the device; a command unit's exported data is none.
        by_name
            && (self.req.paths.is_empty() || self.snapshot.units.iter().any(|u| u.name == name && u.kind != "command"))
    }

    /// The paths chosen, read against the backup's home and the home restored into.
    fn choice(&self) -> EngineResult<Option<Choice>> {
        if self.req.paths.is_empty() {
            return Ok(None);
        }
        let backup_home = PathBuf::from(String::from_utf8_lossy(&self.snapshot.home.0).into_owned());
        Ok(Some(Choice::new(&self.req.paths, &[backup_home.as_path(), self.dirs.home.as_path()])?))
    }

    /// Where the exported data of `command` units goes: a staging folder for their import
    /// (in place), or DIR/lifeboat-units/NAME under --target for a person to look at.
    fn command_areas(&self) -> EngineResult<(Vec<tempfile::TempDir>, HashMap<String, PathBuf>)> {
        let mut areas = Vec::new();
        let mut elsewhere = HashMap::new();
        for su in self.snapshot.units.iter().filter(|u| u.kind == "command" && self.chosen(&u.name)) {
            let dest = match &self.req.target {
                Some(t) => t.join("lifeboat-units").join(&su.name),
                None if self.req.dry_run => self.dirs.data.join("staging").join(&su.name),
                None => {
                    let area = tempfile::Builder::new()
                        .prefix(&format!(".lifeboat-import-{}-", su.name))
                        .tempdir_in(crate::backup::staging_dir(self.dirs))
                        .map_err(|e| EngineError::io("creating a staging folder in", &self.dirs.data, e))?;
                    let dest = area.path().join("export");
                    areas.push(area);
                    dest
                }
            };
            elsewhere.insert(su.name.clone(), dest);
        }
        Ok((areas, elsewhere))
    }

    fn plan(&self, elsewhere: &HashMap<String, PathBuf>) -> EngineResult<plan::Plan> {
        let (snapshot, req) = (self.snapshot, self.req);
        let map = plan::PathMap::new(&snapshot.home.0, &self.dirs.home, &req.map_paths);
        let mut specs = Vec::new();
        let mut nodes = Vec::new();
        let mut remove = Vec::new();
        let choice = self.choice()?;
        for unit in snapshot.units.iter().filter(|u| self.chosen(&u.name)) {
            // With paths, only the roots along them: the others are not even read.
            let along =
                |written: &str| choice.as_ref().is_none_or(|c| c.may_match_below(written) || c.chooses(written));
            for root in unit.roots.iter().filter(|r| along(&r.path)) {
                let area = elsewhere.get(&unit.name);
                specs.push(plan::RootSpec {
                    unit: unit.name.clone(),
                    kind: unit.kind.clone(),
                    written: root.path.clone(),
                    dest: match area {
                        Some(d) => d.clone(),
                        None => plan::destination(&root.path, self.dirs, req.target.as_deref(), &map),
                    },
                    selection: root.selection,
                    elsewhere: area.is_some(),
                });
                nodes.push(root.node.clone());
            }
            for p in unit.remove_on_restore.iter().filter(|p| choice.as_ref().is_none_or(|c| c.chooses(p))) {
                remove.push((unit.name.clone(), plan::destination(p, self.dirs, req.target.as_deref(), &map)));
            }
        }
        if let Some(c) = &choice {
            // Keep only the roots that hold a chosen entry, so that no other root is staged.
            let flat = plan::layout(specs.clone(), false, req.target.as_deref())?;
            let found = plan::items_from_trees(self.repo, &flat, &nodes, &map, Some(c));
            let used: HashSet<usize> = found.items.iter().map(|i| i.root).collect();
            if used.is_empty() {
                return Err(EngineError::PathNotInBackup { slug: snapshot.slug.clone(), path: req.paths.join(", ") });
            }
            let keep: Vec<bool> = (0..specs.len()).map(|i| used.contains(&i)).collect();
            let mut k = keep.iter();
            specs.retain(|_| *k.next().unwrap_or(&false));
            let mut k = keep.iter();
            nodes.retain(|_| *k.next().unwrap_or(&false));
        }
        let roots = plan::layout(specs, false, req.target.as_deref())?;
        for (_, p) in &remove {
            let bound = req.target.as_deref().unwrap_or(Path::new("/"));
            if !p.starts_with(bound) {
                return Err(EngineError::Outside { path: p.clone(), bound: bound.to_path_buf() });
            }
        }
        let found = plan::items_from_trees(self.repo, &roots, &nodes, &map, choice.as_ref());
        let as_root = nix::unistd::geteuid().is_root();
        let owners = Owners::for_home(&self.dirs.home);
        let owner = |n: &entry::Entry, names: &plan::OwnerNames| if as_root { owners.resolve(n, names) } else { None };
        let restored: Vec<String> =
            snapshot.units.iter().filter(|u| self.chosen(&u.name)).map(|u| u.name.clone()).collect();
        let cmp = plan::Compare {
            mode: req.mode,
            keeper: plan::Keeper { configured: &req.configured, restored: &restored },
            owner: &owner,
            content: (!req.trust_dates).then_some(self.repo),
        };
        Ok(plan::build(roots, found, &remove, &cmp))
    }

    /// Command units import what was restored (a unit not imported is not restored); then
    /// every unit's after_restore hook (one that fails is a warning).
    fn after(&self, elsewhere: &HashMap<String, PathBuf>, not_restored: &mut Vec<String>, warnings: &mut Vec<String>) {
        let (snapshot, req) = (self.snapshot, self.req);
        let problem = |to: &mut Vec<String>, path: &Path, what: String| {
            let msg = format!("{}: {what}", path.display());
            self.log.warn(self.progress, &msg);
            to.push(msg);
        };
        if req.target.is_none() {
            for su in snapshot.units.iter().filter(|u| u.kind == "command" && self.chosen(&u.name)) {
                let Some(dest) = elsewhere.get(&su.name) else { continue };
                let configured = req.configured.iter().find(|u| u.name == su.name);
                match configured.and_then(|u| u.commands.as_ref().map(|c| (u, c))) {
                    Some((unit, commands)) => {
                        self.progress.set_phase(format!("importing {}", unit.name));
                        if let Err(e) = import(unit, commands, dest, self.dirs) {
                            problem(not_restored, dest, format!("unit {}: import: {e}", unit.name));
                        }
                    }
                    None => problem(
                        not_restored,
                        dest,
                        format!(
                            "unit {} has no import command on this device: restore it with --target to get its data",
                            su.name
                        ),
                    ),
                }
            }
        }
        for unit in configured_units(req, snapshot) {
            if let Err(e) = hook(unit, &unit.hooks.after_restore, self.dirs) {
                problem(warnings, Path::new(&unit.name), format!("after_restore: {e}"));
            }
        }
    }
}

/// What carrying out a plan came to.
pub(crate) struct Carried {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    /// What was not restored, and why.
    pub not_restored: Vec<String>,
    /// Metadata that could not all be set.
    pub warnings: Vec<String>,
    pub safety_backup: Option<SafetyBackup>,
}

/// Carries out `plan` on the device, for every kind of restore: a journal, everything written
/// beside its destination from `source`, then (`safety`, given the blobs authenticated) the
/// safety backup, then the commit. In place, an entry that cannot be written changes nothing.
#[allow(clippy::too_many_arguments)]
pub(crate) fn carry_out(
    plan: &plan::Plan,
    source: write::Source<'_>,
    dirs: &Dirs,
    (slug, asked): (&str, journal::Asked),
    in_place: bool,
    safety: &dyn Fn(&HashSet<lifeboat_repository::Id>) -> EngineResult<Option<SafetyBackup>>,
    progress: &Progress,
    log: &RunLog,
) -> EngineResult<Carried> {
    journal::settle(dirs, &|l| log.warn(progress, l))?;
    let (files, bytes) = plan.to_write();
    progress.set_totals(files, bytes, true);
    log.info(&format!("restore of backup {slug} ({files} entries to write)"));
    let id = hex::encode(rand::random::<[u8; 4]>());
    let exec = write::Executor::new(source, plan, &dirs.home, (&id, slug), progress, log);
    let mut journal = journal::Journal::begin(dirs, &id, slug, asked, exec.temp_folders())?;
    lifeboat_storage::faults::pause_point(|| format!("restore {slug}"));
    let parents = parent_times(plan);
    let written = exec.write(&mut |made| {
        if let Err(e) = journal.made(dirs, made) {
            log.warn(progress, &format!("the restore journal: {e}"));
        }
    });
    exec.put_back_times();
    for (p, m) in &parents {
        let _ = handles::set_times(p, m);
    }
    // Interrupted (Ctrl-C, SIGTERM, a cancelled job) before anything is put in place: what
    // was written beside goes, and nothing on the device has changed.
    let interrupted = || {
        exec.discard();
        log.error("the restore was interrupted before it put anything in place: nothing was changed");
        EngineError::Cancelled
    };
    if progress.is_cancelled() {
        let e = interrupted();
        journal.end(dirs);
        return Err(e);
    }
    if in_place && !written.failed.is_empty() {
        exec.discard();
        journal.end(dirs);
        return Err(EngineError::RestoreIncomplete { failed: written.failed.len(), first: written.failed[0].clone() });
    }
    let safety_backup = match safety(&written.verified) {
        Ok(made) => made,
        Err(e) => {
            exec.discard();
            journal.end(dirs);
            return Err(e);
        }
    };
    if progress.is_cancelled() {
        let e = interrupted();
        journal.end(dirs);
        return Err(e);
    }
    lifeboat_storage::faults::pause_point(|| format!("commit of {slug}, everything written"));
    journal.committing(dirs, safety_backup.as_ref().map(|s| s.slug.clone()))?;
    let (failed, commit_warnings) = exec.commit();
    for (p, m) in &parents {
        let _ = handles::set_times(p, m);
    }
    journal.end(dirs);
    let (mut not_restored, mut warnings) = (written.failed, written.warnings);
    not_restored.extend(failed);
    warnings.extend(commit_warnings);
    Ok(Carried {
        files: written.files,
        dirs: written.dirs,
        bytes: written.bytes,
        not_restored,
        warnings,
        safety_backup,
    })
}

/// Every unit asked for is in the backup (`held`: the names of its units).
pub(crate) fn units_held<'a>(
    slug: &str,
    held: impl Iterator<Item = &'a str> + Clone,
    asked: &[String],
) -> EngineResult<()> {
    match asked.iter().find(|u| !held.clone().any(|h| h == u.as_str())) {
        Some(u) => Err(EngineError::UnitNotInBackup {
            slug: slug.to_string(),
            unit: u.clone(),
            held: held.collect::<Vec<_>>().join(", "),
        }),
        None => Ok(()),
    }
}

/// The repository's shared lock, and its index read under it. Where this user cannot write
/// (a card mounted read-only, another user's repository it may only read) it cannot prune
/// either, and the restore goes on without one: should someone else prune meanwhile, a pack
/// that vanished fails its entries, and in place that changes nothing on the device.
fn shared_lock_with_index(repo: &Repository, operation: &str) -> EngineResult<Option<lifeboat_repository::LockGuard>> {
    use lifeboat_repository::{LockKind, RepoError};
    use lifeboat_storage::StoreError;
    match repo.lock_with_index(LockKind::Shared, operation, crate::backup::LOCK_WAIT) {
        Ok(g) => Ok(Some(g)),
        Err(RepoError::Store(StoreError::ReadOnly { .. } | StoreError::PermissionDenied { .. })) => {
            repo.load_index()?;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The folders that hold the roots, and the deletions outside every root, as they are before
/// the restore: their times are put back afterwards, so what is outside the restored units
/// stays as it was.
fn parent_times(plan: &plan::Plan) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut seen = std::collections::HashSet::new();
    let roots = plan.roots.iter().map(|r| r.dest.as_path());
    let outside = plan.deletes.iter().filter(|p| !plan.roots.iter().any(|r| p.starts_with(&r.dest)));
    roots
        .chain(outside.map(|p| p.as_path()))
        .filter_map(|p| p.parent())
        .filter(|p| plan.item_at(p).is_none())
        .filter(|p| seen.insert(p.to_path_buf()))
        .filter_map(|p| std::fs::symlink_metadata(p).ok().map(|m| (p.to_path_buf(), m)))
        .collect()
}

/// The configured units this restore touches.
fn configured_units<'a>(req: &'a RestoreRequest, snapshot: &'a Snapshot) -> impl Iterator<Item = &'a Unit> + 'a {
    req.configured.iter().filter(move |u| {
        snapshot.units.iter().any(|su| su.name == u.name) && (req.units.is_empty() || req.units.contains(&u.name))
    })
}

/// Before anything of an in-place restore is written: stops the services and containers the
/// units restored name in `stop_while_restoring` that run (started again by what is returned,
/// also when the restore fails). A dry run only says which it would stop.
pub(crate) fn stop_services<'a>(
    units: &[&Unit],
    in_place: bool,
    dry_run: bool,
    progress: &'a Progress,
    log: &'a RunLog,
) -> EngineResult<Stopped<'a>> {
    if !in_place {
        return Ok(Stopped::none(progress, log));
    }
    if dry_run {
        return Ok(Stopped::planned(units, progress, log));
    }
    Stopped::stop(units, progress, log)
}

/// The check before anything of an in-place restore is written, after the units' services
/// were stopped: a `sqlite` unit's database that another process has open for writing is not
/// restored under it (`force`: it is, with a warning, returned). Processes that could not be
/// looked into are said. A dry run reports them as problems.
pub(crate) fn databases_in_use(
    plan: &plan::Plan,
    units: &[&Unit],
    stopped: &Stopped,
    req: InUseCheck,
    report: &mut RestoreReport,
    log: &RunLog,
) -> EngineResult<Vec<String>> {
    if !req.in_place {
        return Ok(Vec::new());
    }
    let mut warnings = Vec::new();
    for r in plan.roots.iter().filter(|r| r.kind == "sqlite") {
        let (found, unchecked) = writers::writers(&writers::database_files(&r.dest));
        if found.is_empty() && !unchecked {
            continue;
        }
        let path = r.dest.display().to_string();
        report.in_use.push(DatabaseInUse {
            unit: r.unit.clone(),
            path: path.clone(),
            writers: found.clone(),
            unchecked,
        });
        if found.is_empty() {
            log.say(&format!(
                "note: unit {}: processes of other users could not be checked for writing to {path} (as root they are)",
                r.unit
            ));
            continue;
        }
        let who = found.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
        let stops = units.iter().any(|u| u.name == r.unit && !u.hooks.stop_while_restoring.is_empty());
        if req.dry_run {
            let first = if stopped.is_empty() {
                String::new()
            } else {
                format!("; the restore stops {} first", stopped.names().join(", "))
            };
            let then = if req.force {
                "it is restored under it (--force)"
            } else {
                "the restore is refused while it is (--force restores under it)"
            };
            report.problems.push(format!("unit {}: {path} is open for writing by {who}{first}; {then}", r.unit));
        } else if req.force {
            let msg = format!(
                "unit {}: {path} was restored while open for writing by {who} (--force): what it writes from now on may be lost; restart it",
                r.unit
            );
            warnings.push(msg);
        } else {
            let detail = if !stopped.is_empty() {
                format!(
                    "{path} is still open for writing by {who} after stopping {}: stop that too, or restore under it with --force",
                    stopped.names().join(", ")
                )
            } else if stops {
                format!(
                    "{path} is open for writing by {who}, and nothing that stop_while_restoring of [unit.{}] names runs: stop it, or restore under it with --force",
                    r.unit
                )
            } else {
                format!(
                    "{path} is open for writing by {who}: stop it (or add stop_while_restoring to [unit.{}] so that the restore does), or restore under it with --force",
                    r.unit
                )
            };
            return Err(EngineError::DatabaseInUse { unit: r.unit.clone(), detail });
        }
    }
    Ok(warnings)
}

/// How a restore is asked, for [`databases_in_use`].
#[derive(Clone, Copy)]
pub(crate) struct InUseCheck {
    pub in_place: bool,
    pub dry_run: bool,
    pub force: bool,
}

pub(crate) fn hook(unit: &Unit, line: &Option<String>, dirs: &Dirs) -> Result<(), String> {
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
pub(crate) fn import(unit: &Unit, commands: &Commands, dest: &Path, dirs: &Dirs) -> Result<(), String> {
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
    /// `names`: the node's user and group names, held apart from it by a plan.
    pub(crate) fn resolve(&self, n: &entry::Entry, names: &plan::OwnerNames) -> Option<(u32, u32)> {
        self.resolve_ids((n.uid, n.gid), names)
    }

    /// [`Owners::resolve`] by the numbers an entry was saved with.
    fn resolve_ids(&self, ids: (u32, u32), names: &plan::OwnerNames) -> Option<(u32, u32)> {
        let key = (names.0.clone(), names.1.clone(), ids.0, ids.1);
        let mut c = self.cache.lock().expect("owners lock");
        Some(*c.entry(key).or_insert_with(|| {
            let uid = match names.0.as_deref() {
                Some(name) => match nix::unistd::User::from_name(name).ok().flatten() {
                    Some(u) => u.uid.as_raw(),
                    None => self.home_owner.0,
                },
                None => ids.0,
            };
            let gid = match names.1.as_deref() {
                Some(name) => match nix::unistd::Group::from_name(name).ok().flatten() {
                    Some(g) => g.gid.as_raw(),
                    None => self.home_owner.1,
                },
                None => ids.1,
            };
            (uid, gid)
        }))
    }

    /// [`Owners::resolve`] for a node that holds its own names.
    pub(crate) fn resolve_node(&self, n: &Node) -> Option<(u32, u32)> {
        self.resolve_ids((n.uid, n.gid), &(n.user.clone(), n.group.clone()))
    }
}
