//! `backups restore --from-file`: straight from a backup file, with no repository and no
//! configuration (a new device's first step). The file is read once, as a stream, into a
//! private folder of Lifeboat's data folder; only when the whole file has been read and every
//! checksum matched is what it holds planned against the device and carried out by the one
//! restore executor (`restore::carry_out`: by handle, beside the destination, a journal), so
//! a damaged, truncated or hostile file changes nothing that was already on disk.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use lifeboat_repository::{Node, NodeKind, RawBytes, Timestamp, Xattr};

use super::manifest::{Manifest, UnitFile};
use super::read::{tar_problem, FileReader, UnitBudget, UnitTar};
use super::tarfmt::{EntryKind, TarEntry};
use crate::meta;
use crate::paths::Dirs;
use crate::progress::Progress;
use crate::restore::entry::Entry;
use crate::restore::fsops;
use crate::restore::plan::{self, destination, PathMap};
use crate::restore::{databases_in_use, stop_services, InUseCheck, Owners, RestoreMode, RestoreReport};
use crate::runlog::RunLog;
use crate::{EngineError, EngineResult};

pub struct FileRestoreRequest {
    pub units: Vec<String>,
    pub target: Option<PathBuf>,
    pub mode: RestoreMode,
    /// Read the file and print the plan; change nothing.
    pub dry_run: bool,
    /// The units configured on this device (what replace mode keeps of them stays).
    pub configured: Vec<crate::unit::Unit>,
    pub passphrase: Option<String>,
    /// Create device nodes (as root only).
    pub devices: bool,
    pub map_paths: Vec<(PathBuf, PathBuf)>,
    /// Restore a database in place even while another process has it open for writing.
    pub force: bool,
}

/// One unit root being restored.
struct Root {
    unit: String,
    archive: Vec<u8>,
    /// Where the file's entries of it are read into.
    staging: PathBuf,
    dest: PathBuf,
}

pub fn restore(
    input: impl Read,
    label: &str,
    dirs: &Dirs,
    req: &FileRestoreRequest,
    progress: &Progress,
    log: &RunLog,
) -> EngineResult<(Manifest, RestoreReport)> {
    progress.set_phase("reading the backup file");
    let mut reader = FileReader::open(input, label)?;
    let manifest = reader.manifest().clone();
    let backup = &manifest.backup;
    crate::restore::units_held(&backup.slug, manifest.units.iter().map(|u| u.name.as_str()), &req.units)?;
    if let Some(t) = &req.target {
        if std::fs::metadata(t).is_ok_and(|m| !m.is_dir()) {
            return Err(EngineError::BadTarget(t.clone()));
        }
    }
    let chosen = |u: &UnitFile| req.units.is_empty() || req.units.contains(&u.name);
    let map = PathMap::new(&backup.home.0, &dirs.home, &req.map_paths);
    let mut specs = Vec::new();
    let mut archives = Vec::new();
    // In place, a `command` unit configured here with an import is restored into a folder of
    // its own and imported from there, as from a repository.
    let importer = |name: &str| {
        let u = req.configured.iter().find(|u| u.name == name)?;
        u.commands.as_ref().map(|c| (u, c))
    };
    let mut imports = Vec::new();
    for f in manifest.units.iter().filter(|u| chosen(u)) {
        let kind = backup.units.iter().find(|u| u.name == f.name).map(|u| u.kind.as_str()).unwrap_or("");
        let area = if kind == "command" && req.target.is_none() && !req.dry_run && importer(&f.name).is_some() {
            let area = tempfile::Builder::new()
                .prefix(&format!(".lifeboat-import-{}-", f.name))
                .tempdir_in(crate::backup::staging_dir(dirs))
                .map_err(|e| EngineError::io("creating a staging folder in", &dirs.data, e))?;
            let dest = area.path().join("export");
            imports.push((f.name.clone(), dest.clone(), area));
            Some(dest)
        } else {
            None
        };
        for r in &f.roots {
            let dest = match &area {
                // The unit's one root holds `data/` (and `bin/`): the import reads it there.
                Some(a) => a.clone(),
                None if kind == "command" => {
                    let base = req.target.clone().unwrap_or_else(|| dirs.home.clone());
                    base.join(OsString::from_vec(r.archive.0.clone()))
                }
                None => destination(&r.path, dirs, req.target.as_deref(), &map),
            };
            specs.push(plan::RootSpec {
                unit: f.name.clone(),
                kind: kind.to_string(),
                written: r.path.clone(),
                dest,
                selection: false,
                elsewhere: area.is_some(),
            });
            archives.push(r.archive.0.clone());
        }
    }
    let placed = plan::layout(specs, false, req.target.as_deref())?;
    let as_root = nix::unistd::geteuid().is_root();
    let owners = Owners::for_home(&dirs.home);
    let owner = |n: &Entry, names: &plan::OwnerNames| if as_root { owners.resolve(n, names) } else { None };
    let restored: Vec<String> = manifest.units.iter().filter(|u| chosen(u)).map(|u| u.name.clone()).collect();
    let cmp = plan::Compare {
        mode: req.mode,
        keeper: plan::Keeper { configured: &req.configured, restored: &restored },
        owner: &owner,
        // A backup file has no index to compare contents with: sizes and dates decide.
        content: None,
    };
    // The units configured here: their services are stopped and their hooks run around the
    // restore, as around a restore from a repository.
    let configured: Vec<&crate::unit::Unit> =
        req.configured.iter().filter(|u| manifest.units.iter().any(|f| f.name == u.name && chosen(f))).collect();
    let check = InUseCheck { in_place: req.target.is_none(), dry_run: req.dry_run, force: req.force };
    if req.dry_run {
        let found = dry_items(reader, req, &placed, &archives, &map, &chosen)?;
        let plan = plan::build(placed, found, &[], &cmp);
        let mut report = RestoreReport::from_plan(&plan);
        let stopped = stop_services(&configured, check.in_place, true, progress, log)?;
        databases_in_use(&plan, &configured, &stopped, check, &mut report, log)?;
        report.stopped = stopped.names();
        report.plan = plan.listing();
        return Ok((manifest, report));
    }
    // Room first: each unit's bytes (and an entry's worth per file) where its first root goes.
    let needs = manifest.units.iter().filter(|u| chosen(u)).filter_map(|u| {
        let b = backup.units.iter().find(|b| b.name == u.name)?;
        let root = placed.iter().find(|r| r.unit == u.name)?;
        Some((root.work.as_path(), b.size.saturating_add((b.files + b.dirs).saturating_mul(4096))))
    });
    crate::restore::room::check_needs(needs)?;
    // The file is read into a private folder first: nothing of the device changes until all of
    // it is read and checked.
    let area = tempfile::Builder::new()
        .prefix("file-restore-")
        .tempdir_in(crate::backup::staging_dir(dirs))
        .map_err(|e| EngineError::io("creating a folder in", &dirs.data, e))?;
    let area = Area(area);
    let roots: Vec<Root> = placed
        .iter()
        .zip(archives)
        .enumerate()
        .map(|(i, (r, archive))| Root {
            unit: r.unit.clone(),
            archive,
            staging: area.0.path().join(i.to_string()),
            dest: r.dest.clone(),
        })
        .collect();
    let total: u64 =
        backup.units.iter().filter(|u| req.units.is_empty() || req.units.contains(&u.name)).map(|u| u.size).sum();
    progress.set_totals(0, total, true);
    log.info(&format!("restore of backup {} from {label}", backup.slug));

    // What reading the file came to: the metadata it could not set on the private copies.
    let mut read_report = RestoreReport::default();
    {
        let mut extract = |unit: &UnitFile, tar: &mut UnitTar<'_>| -> EngineResult<()> {
            progress.set_phase(format!("reading {}", unit.name));
            let declared = backup.units.iter().find(|u| u.name == unit.name).map(|u| u.size).unwrap_or(0);
            let mine: Vec<&Root> = roots.iter().filter(|r| r.unit == unit.name).collect();
            let mut x = Extractor {
                roots: &mine,
                req,
                budget: UnitBudget::new(declared),
                as_root,
                owners: &owners,
                symlinks: HashSet::new(),
                made: HashSet::new(),
                files: HashSet::new(),
                dirs: Vec::new(),
                report: &mut read_report,
                progress,
                map: &map,
            };
            while let Some(e) = tar.next().map_err(tar_problem)? {
                if progress.is_cancelled() {
                    return Err(EngineError::Cancelled);
                }
                x.entry(e, tar)?;
            }
            x.finish_dirs();
            Ok(())
        };
        while reader.next_unit(req.passphrase.as_deref(), &mut extract, &chosen)?.is_some() {}
        progress.set_phase("checking the backup file");
        reader.finish()?;
    }

    // What the file held, planned against the device and carried out.
    let missing: Vec<String> = roots
        .iter()
        .filter(|r| std::fs::symlink_metadata(&r.staging).is_err())
        .map(|r| format!("{}: not in the backup file", r.dest.display()))
        .collect();
    // The applications stopped and the hooks run first, so the plan sees what they leave (a
    // database's journals removed by its application's shutdown).
    let stopped = stop_services(&configured, check.in_place, false, progress, log)?;
    for unit in &configured {
        if let Err(e) = crate::restore::hook(unit, &unit.hooks.before_restore, dirs) {
            return Err(EngineError::Hook { unit: unit.name.clone(), reason: format!("before_restore: {e}") });
        }
    }
    let found = items_from_area(&placed, &roots);
    let plan = plan::build(placed, found, &[], &cmp);
    let from = |item: &plan::Item| {
        let r = &roots[item.root];
        plan::under(&r.staging, item.dest.strip_prefix(&r.dest).unwrap_or(Path::new("")))
    };
    let asked = crate::restore::journal::Asked {
        units: req.units.clone(),
        target: req.target.clone(),
        mode: req.mode,
        map_paths: req.map_paths.clone(),
        home: dirs.home.clone(),
        paths: Vec::new(),
        trust_dates: false,
    };
    let mut report = RestoreReport::from_plan(&plan);
    let in_use = databases_in_use(&plan, &configured, &stopped, check, &mut report, log)?;
    let carried = crate::restore::carry_out(
        &plan,
        crate::restore::Source::Files(&from),
        dirs,
        (&backup.slug, asked),
        req.target.is_none(),
        &|_| Ok(None),
        progress,
        log,
    )?;
    drop(area);
    let mut not_restored = missing;
    not_restored.extend(carried.not_restored);
    let mut warnings = carried.warnings;
    for (name, dest, _area) in &imports {
        if let Some((unit, commands)) = importer(name) {
            progress.set_phase(format!("importing {name}"));
            if let Err(e) = crate::restore::import(unit, commands, dest, dirs) {
                not_restored.push(format!("{}: unit {name}: import: {e}", dest.display()));
            }
        }
    }
    for unit in &configured {
        if let Err(e) = crate::restore::hook(unit, &unit.hooks.after_restore, dirs) {
            warnings.push(format!("{}: after_restore: {e}", unit.name));
        }
    }
    drop(imports);
    warnings.extend(in_use);
    report.stopped = stopped.names();
    warnings.extend(stopped.start_again());
    report.files = carried.files;
    report.dirs = carried.dirs;
    report.bytes = carried.bytes;
    // Not restored first, then the warnings.
    report.not_restored = not_restored.len() as u64;
    report.problems = not_restored;
    report.problems.extend(read_report.problems);
    report.problems.extend(warnings);
    for p in &report.problems {
        log.warn(progress, p);
    }
    Ok((manifest, report))
}

/// The private folder a backup file is read into, removed when dropped (its folders made
/// writable first: a read-only folder of the backup would keep what is in it).
struct Area(tempfile::TempDir);

impl Drop for Area {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let mut stack = vec![self.0.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700));
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }
}

/// The plan's items from what the file put in the private folder: each root's entries (what
/// lies in an inner root is that root's), as they are there.
fn items_from_area(placed: &[plan::Root], roots: &[Root]) -> plan::PlanItems {
    let names = meta::NameCache::default();
    let mut found = plan::PlanItems::default();
    for (i, root) in roots.iter().enumerate() {
        let inner: HashSet<&Path> = placed
            .iter()
            .enumerate()
            .filter(|&(j, r)| j != i && r.dest != placed[i].dest && r.dest.starts_with(&placed[i].dest))
            .map(|(_, r)| r.dest.as_path())
            .collect();
        let mut stack = vec![(root.staging.clone(), root.dest.clone())];
        while let Some((at, dest)) = stack.pop() {
            let Ok(m) = std::fs::symlink_metadata(&at) else { continue };
            let name = dest.file_name().unwrap_or_default().to_os_string();
            let Ok(node) = meta::node_from(&name, &at, &m, &names) else { continue };
            if m.is_dir() {
                for e in std::fs::read_dir(&at).into_iter().flatten().flatten() {
                    let d = dest.join(e.file_name());
                    if !inner.contains(d.as_path()) {
                        stack.push((e.path(), d));
                    }
                }
            }
            found.push(i, dest, node);
        }
    }
    found
}

/// The dry run's pass over the file: every entry of the chosen units, at its destination.
fn dry_items(
    mut reader: FileReader<impl Read>,
    req: &FileRestoreRequest,
    roots: &[plan::Root],
    archives: &[Vec<u8>],
    map: &PathMap,
    chosen: &dyn Fn(&UnitFile) -> bool,
) -> EngineResult<plan::PlanItems> {
    let mut found = plan::PlanItems::default();
    let mut read = |unit: &UnitFile, tar: &mut UnitTar<'_>| -> EngineResult<()> {
        let mine: Vec<usize> = (0..roots.len()).filter(|&i| roots[i].unit == unit.name).collect();
        while let Some(e) = tar.next().map_err(tar_problem)? {
            let (i, rest) = archive_place(&e.path, &mine, archives)?;
            let dest = plan::under(&roots[i].dest, Path::new(std::ffi::OsStr::from_bytes(&rest)));
            // An entry inside an inner root is that root's.
            let owner = (0..roots.len())
                .filter(|&j| roots[j].unit != roots[i].unit || j == i)
                .filter(|&j| dest.starts_with(&roots[j].dest))
                .max_by_key(|&j| roots[j].dest.components().count())
                .unwrap_or(i);
            found.push(owner, dest, node_of(&e, map));
        }
        Ok(())
    };
    while reader.next_unit(req.passphrase.as_deref(), &mut read, chosen)?.is_some() {}
    reader.finish()?;
    found.items.sort_by(|a, b| a.dest.cmp(&b.dest));
    found.items.dedup_by(|a, b| a.dest == b.dest);
    Ok(found)
}

/// Which of the unit's roots (indexes in `mine`) an archive path is under, and the rest of it.
/// The path is checked the same way the extraction checks it.
fn archive_place(path: &[u8], mine: &[usize], archives: &[Vec<u8>]) -> EngineResult<(usize, Vec<u8>)> {
    let shown = String::from_utf8_lossy(path).into_owned();
    let path = path.strip_suffix(b"/").unwrap_or(path);
    if path != b"." {
        lifeboat_repository::check_relative(path).map_err(|e| refuse(format!("entry {shown:?}: {e}")))?;
    }
    mine.iter()
        .find_map(|&i| {
            let a = &archives[i];
            if a.as_slice() == b"." {
                return Some((i, if path == b"." { Vec::new() } else { path.to_vec() }));
            }
            let rest = path.strip_prefix(a.as_slice())?;
            match rest {
                [] => Some((i, Vec::new())),
                [b'/', rest @ ..] => Some((i, rest.to_vec())),
                _ => None,
            }
        })
        .ok_or_else(|| refuse(format!("entry {shown:?} is outside the unit's folders")))
}

/// A folder made by the extraction, given its metadata once everything in it is written.
struct FolderLast {
    path: PathBuf,
    node: Entry,
    owner: Option<(u32, u32)>,
    depth: usize,
}

struct Extractor<'a> {
    roots: &'a [&'a Root],
    req: &'a FileRestoreRequest,
    /// What the unit's files may still hold, of what the room check was told.
    budget: UnitBudget,
    as_root: bool,
    owners: &'a Owners,
    /// Archive paths that are symlinks: nothing may be written through them.
    symlinks: HashSet<Vec<u8>>,
    /// Folders known to be real folders of this restore.
    made: HashSet<PathBuf>,
    /// Archive paths of files restored, for hard links to them.
    files: HashSet<Vec<u8>>,
    /// Folders, their metadata applied last.
    dirs: Vec<FolderLast>,
    report: &'a mut RestoreReport,
    progress: &'a Progress,
    map: &'a PathMap,
}

fn refuse(detail: String) -> EngineError {
    EngineError::BackupFile { file: String::new(), detail: format!("refused: {detail} (nothing was changed)") }
}

impl Extractor<'_> {
    /// The staging path of an archive path, after checking it is a plain relative path under
    /// one of the unit's roots that passes through no symlink of the archive.
    fn place(&self, path: &[u8]) -> EngineResult<(PathBuf, usize)> {
        let shown = String::from_utf8_lossy(path).into_owned();
        let path = path.strip_suffix(b"/").unwrap_or(path);
        if path.starts_with(b"/") {
            return Err(refuse(format!("entry {shown:?} has an absolute path")));
        }
        let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
        if parts.iter().any(|p| p.is_empty() || *p == b".." || *p == b".") && path != b"." {
            return Err(refuse(format!("entry {shown:?} has an empty, '.' or '..' part in its path")));
        }
        let (root, rest) = self
            .roots
            .iter()
            .find_map(|r| {
                let rest = path.strip_prefix(r.archive.as_slice())?;
                (rest.is_empty() || rest[0] == b'/' || r.archive == b".").then_some((r, rest))
            })
            .ok_or_else(|| refuse(format!("entry {shown:?} is outside the unit's folders")))?;
        for (i, b) in path.iter().enumerate() {
            if *b == b'/' && self.symlinks.contains(&path[..i]) {
                return Err(refuse(format!(
                    "entry {shown:?} lies under the symlink {:?}, which could lead outside the target",
                    String::from_utf8_lossy(&path[..i])
                )));
            }
        }
        let rest = rest.strip_prefix(b"/").unwrap_or(rest);
        let idx = self.roots.iter().position(|r| std::ptr::eq(*r, *root)).unwrap_or(0);
        let staged =
            if rest.is_empty() { root.staging.clone() } else { root.staging.join(OsString::from_vec(rest.to_vec())) };
        Ok((staged, idx))
    }

    /// Makes sure every folder from the root's staging folder down to `path`'s parent is a
    /// real folder (a symlink there, even one already on disk, is replaced).
    fn parent_ready(&mut self, path: &Path, root: usize) -> EngineResult<()> {
        let Some(parent) = path.parent() else { return Ok(()) };
        if parent.as_os_str().len() < self.roots[root].staging.as_os_str().len() || self.made.contains(parent) {
            return Ok(());
        }
        let base = &self.roots[root].staging;
        fsops::ensure_dir(base).map_err(|e| EngineError::io("creating", base, e))?;
        fsops::ensure_real_dirs(base, parent).map_err(|e| EngineError::io("creating", parent, e))?;
        self.made.insert(parent.to_path_buf());
        Ok(())
    }

    fn entry(&mut self, e: TarEntry, tar: &mut UnitTar<'_>) -> EngineResult<()> {
        let (path, root) = self.place(&e.path)?;
        let shown = String::from_utf8_lossy(&e.path).into_owned();
        self.budget.take(&e).map_err(refuse)?;
        self.parent_ready(&path, root)?;
        let node = node_of(&e, self.map);
        let owner = self.as_root.then(|| self.owners.resolve_node(&node)).flatten();
        let node = Entry::from(node);
        let io = |op: &'static str, p: &Path, err: std::io::Error| EngineError::io(op, p, err);
        match e.kind {
            EntryKind::Dir => {
                fsops::ensure_dir(&path).map_err(|err| io("creating", &path, err))?;
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700 | node.mode));
                self.made.insert(path.clone());
                let depth = path.components().count();
                self.dirs.push(FolderLast { path, node, owner, depth });
                self.report.dirs += 1;
                return Ok(());
            }
            EntryKind::File => {
                let (f, fresh) = fsops::create_file(&path, e.mode, true).map_err(|err| io("creating", &path, err))?;
                if e.sparse.is_some() {
                    f.set_len(e.size).map_err(|err| io("sizing", &path, err))?;
                }
                let mut buf = vec![0u8; 1 << 20];
                let mut end = 0u64;
                while let Some((off, n)) = tar.read_data(&mut buf).map_err(tar_problem)? {
                    f.write_all_at(&buf[..n], off).map_err(|err| io("writing", &path, err))?;
                    end = end.max(off + n as u64);
                    self.progress.add(0, n as u64);
                }
                if end < e.size {
                    f.set_len(e.size).map_err(|err| io("sizing", &path, err))?;
                }
                for w in meta::apply_fd(&f, &node, self.as_root, owner, fresh) {
                    self.report.problems.push(format!("{}: {w}", path.display()));
                }
                self.files.insert(e.path.clone());
                self.report.bytes += e.size;
            }
            EntryKind::HardLink => {
                let first = e.link.clone().unwrap_or_default();
                if !self.files.contains(&first) {
                    return Err(refuse(format!(
                        "entry {shown:?} is a hard link to {:?}, which is not a file restored before it",
                        String::from_utf8_lossy(&first)
                    )));
                }
                let (first_path, _) = self.place(&first)?;
                fsops::remove_any(&path).map_err(|err| io("replacing", &path, err))?;
                std::fs::hard_link(&first_path, &path).map_err(|err| io("linking", &path, err))?;
            }
            EntryKind::Symlink => {
                let target = node.target().cloned().unwrap_or_default();
                fsops::remove_any(&path).map_err(|err| io("replacing", &path, err))?;
                std::os::unix::fs::symlink(target.as_os_str(), &path).map_err(|err| io("creating", &path, err))?;
                self.symlinks.insert(e.path.strip_suffix(b"/").unwrap_or(&e.path).to_vec());
                self.apply(&path, &node, owner);
            }
            EntryKind::Fifo => {
                fsops::remove_any(&path).map_err(|err| io("replacing", &path, err))?;
                nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(e.mode))
                    .map_err(|err| io("creating", &path, err.into()))?;
                self.apply(&path, &node, owner);
            }
            EntryKind::CharDevice | EntryKind::BlockDevice => {
                if !(self.req.devices && self.as_root) {
                    return Err(refuse(format!(
                        "entry {shown:?} is a device node: only root creates those, when asked with --devices"
                    )));
                }
                let kind = if e.kind == EntryKind::CharDevice {
                    nix::sys::stat::SFlag::S_IFCHR
                } else {
                    nix::sys::stat::SFlag::S_IFBLK
                };
                fsops::remove_any(&path).map_err(|err| io("replacing", &path, err))?;
                let dev = nix::sys::stat::makedev(e.device.0 as u64, e.device.1 as u64);
                nix::sys::stat::mknod(&path, kind, nix::sys::stat::Mode::from_bits_truncate(e.mode), dev)
                    .map_err(|err| io("creating", &path, err.into()))?;
                self.apply(&path, &node, owner);
            }
        }
        self.report.files += 1;
        self.progress.add(1, 0);
        Ok(())
    }

    fn apply(&mut self, path: &Path, node: &Entry, owner: Option<(u32, u32)>) {
        for w in meta::apply(path, node, self.as_root, owner) {
            self.report.problems.push(format!("{}: {w}", path.display()));
        }
    }

    /// Folder metadata last, deepest first, so nothing written later changes their times.
    fn finish_dirs(&mut self) {
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.depth));
        for FolderLast { path, node, owner, .. } in dirs {
            self.apply(&path, &node, owner);
        }
    }
}

/// The node a tar entry describes (what metadata restores and imports need).
pub(crate) fn node_of(e: &TarEntry, map: &PathMap) -> Node {
    let name = e.path.strip_suffix(b"/").unwrap_or(&e.path);
    let name = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
    let kind = match e.kind {
        EntryKind::File | EntryKind::HardLink => NodeKind::File,
        EntryKind::Dir => NodeKind::Dir,
        EntryKind::Symlink => NodeKind::Symlink,
        EntryKind::Fifo => NodeKind::Fifo,
        EntryKind::CharDevice => NodeKind::CharDevice,
        EntryKind::BlockDevice => NodeKind::BlockDevice,
    };
    let mut target = None;
    if e.kind == EntryKind::Symlink {
        let t = e.link.clone().unwrap_or_default();
        // An absolute symlink into the old home (or a mapped path) follows the data.
        let t = if t.starts_with(b"/") { map.map(&t).unwrap_or(t) } else { t };
        target = Some(RawBytes(t));
    }
    Node {
        name: RawBytes(name.to_vec()),
        kind,
        mode: e.mode,
        mtime: e.mtime,
        ctime: Timestamp::default(),
        uid: e.uid.min(u32::MAX as u64) as u32,
        gid: e.gid.min(u32::MAX as u64) as u32,
        user: e.user.clone(),
        group: e.group.clone(),
        size: e.size,
        inode: 0,
        device: 0,
        links: 1,
        content: Vec::new(),
        subtree: None,
        target,
        rdev: matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice)
            .then(|| nix::sys::stat::makedev(e.device.0 as u64, e.device.1 as u64)),
        xattrs: e.xattrs.iter().map(|(n, v)| Xattr { name: RawBytes(n.clone()), value: v.clone() }).collect(),
    }
}
