//! The safety backup of an in-place restore: exactly the paths the plan replaces or deletes,
//! as they are at their real destination (another user's home included), plus the list of
//! what the restore creates, so that restoring the safety backup gives back the tree of
//! before. It is made after the restore's staging copies are complete and before they are
//! swapped in, and it trusts no stored blob it has not just seen intact.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use lifeboat_repository::{Id, Repository, Snapshot};

use super::plan::{Action, Plan, Root};
use super::SafetyBackup;
use crate::config::UnitKind;
use crate::paths::Dirs;
use crate::progress::Progress;
use crate::runlog::RunLog;
use crate::unit::{Filter, Hooks, Selection, Unit};
use crate::EngineResult;

/// Makes the safety backup; None when the plan changes nothing on the device.
#[allow(clippy::too_many_arguments)]
pub(crate) fn make(
    repo: &Repository,
    dirs: &Dirs,
    snapshot: &Snapshot,
    plan: &Plan,
    req: &super::RestoreRequest,
    verified: &HashSet<Id>,
    progress: &Progress,
    log: &RunLog,
) -> EngineResult<Option<SafetyBackup>> {
    // Per unit: its roots with the paths chosen in each, and what the undo removes.
    let mut chosen: BTreeMap<&str, Vec<(&Root, Vec<PathBuf>)>> = BTreeMap::new();
    let mut remove: HashMap<String, Vec<String>> = HashMap::new();
    let created = |p: &Path| plan.item_at(p).is_some_and(|i| i.action == Action::Create);
    for (i, root) in plan.roots.iter().enumerate().filter(|(_, r)| !r.elsewhere) {
        let mut paths = Vec::new();
        for step in plan.steps().filter(|s| innermost(plan, s.path) == Some(i)) {
            let path = step.path.to_path_buf();
            match step.action {
                Action::Replace | Action::Delete => paths.push(path),
                Action::Create => {
                    if !path.parent().is_some_and(created) {
                        remove.entry(root.unit.clone()).or_default().push(as_written(&path, &dirs.home));
                        // The folder it lands in changes too: its time is kept.
                        if let Some(p) = path.parent().filter(|p| p.starts_with(&root.dest)) {
                            paths.push(p.to_path_buf());
                        }
                    }
                }
                // The restore sets this folder's time: the undo puts it back.
                Action::Unchanged if step.why == super::plan::FOLDER_TIME_ONLY => paths.push(path),
                Action::Keep | Action::Unchanged => {}
            }
        }
        if !paths.is_empty() && root.dest.symlink_metadata().is_ok() {
            chosen.entry(root.unit.as_str()).or_default().push((root, paths));
        } else {
            chosen.entry(root.unit.as_str()).or_default();
        }
    }
    // Deletions outside every root (an undo of an undo) are listed with the unit that asked.
    chosen.retain(|name, roots| !roots.is_empty() || remove.contains_key(*name));
    if chosen.is_empty() {
        return Ok(None);
    }
    let units: Vec<Unit> = chosen
        .iter()
        .map(|(name, roots)| {
            let title = req
                .configured
                .iter()
                .find(|u| u.name == *name)
                .map(|u| u.title.clone())
                .or_else(|| snapshot.units.iter().find(|u| u.name == *name).map(|u| u.title.clone()))
                .unwrap_or_else(|| name.to_string());
            // A database is copied consistently while its application may write to it; what
            // stands at its place now when it is something else is kept as it is.
            let sqlite = roots.iter().any(|(r, _)| r.kind == "sqlite" && is_database(&r.dest));
            Unit {
                name: name.to_string(),
                title,
                kind: if sqlite { UnitKind::Sqlite } else { UnitKind::Paths },
                paths: roots.iter().map(|(r, _)| (written(r, dirs), r.dest.clone())).collect(),
                filter: Filter::selection(Selection::new(roots.iter().flat_map(|(_, p)| p.iter().cloned()))),
                not_included: vec!["Everything the restore did not change".into()],
                exclude_patterns: Vec::new(),
                commands: None,
                optional: true,
                hooks: Hooks::default(),
            }
        })
        .collect();
    let slug = crate::backup::new_slug(repo)?;
    log.info(&format!("safety backup {slug} of what the restore replaces and deletes"));
    let names: Vec<String> = units.iter().map(|u| u.name.clone()).collect();
    let req = crate::backup::BackupRequest {
        units: units.iter().collect(),
        full: false,
        name: Some(format!("Safety backup before restoring {}", snapshot.slug)),
        slug,
        tags: vec!["safety".into()],
        safety: Some(crate::backup::SafetyOptions { verified: verified.clone(), remove }),
        // A safety backup has no parent: it reads every file it holds.
        existing: Vec::new(),
        device: req.device.clone(),
        unattended: None,
        configuration: None,
    };
    let own_log = RunLog::create(&dirs.logs, "backup", &req.slug, None);
    // Its own counters, the restore's cancel: Ctrl-C stops it there, storing no safety backup.
    let (_, made) = crate::backup::run(repo, dirs, req, &progress.sharing_cancel(), &own_log)?;
    // An undo that would miss something is no undo: the restore does not go on.
    for u in &made.units {
        if let Some(problem) = u.error.as_ref().or(u.warnings.first()) {
            return Err(crate::EngineError::SafetyBackup {
                slug: made.slug.clone(),
                unit: u.name.clone(),
                problem: problem.clone(),
            });
        }
    }
    Ok(Some(SafetyBackup { slug: made.slug, units: names }))
}

/// Whether `path` is a regular file that starts as a SQLite database does.
fn is_database(path: &Path) -> bool {
    use std::io::Read;
    if !path.symlink_metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = [0u8; 16];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && &head == b"SQLite format 3\0"
}

/// The root whose destination is the longest one holding `path`.
fn innermost(plan: &Plan, path: &Path) -> Option<usize> {
    (0..plan.roots.len())
        .filter(|&i| !plan.roots[i].elsewhere && path.starts_with(&plan.roots[i].dest))
        .max_by_key(|&i| plan.roots[i].dest.components().count())
}

/// How a root is written in the safety backup: as in the backup restored when it lands
/// where that says, else where it really is (a mapped or re-homed path).
fn written(root: &Root, dirs: &Dirs) -> String {
    if dirs.expand(&root.written) == root.dest {
        root.written.clone()
    } else {
        as_written(&root.dest, &dirs.home)
    }
}

/// A device path as a backup stores it: `~/…` under the home, else absolute.
fn as_written(path: &Path, home: &Path) -> String {
    match path.strip_prefix(home) {
        Ok(rel) if rel.as_os_str().is_empty() => "~".into(),
        Ok(rel) => format!("~/{}", rel.to_string_lossy()),
        Err(_) => path.to_string_lossy().into_owned(),
    }
}
