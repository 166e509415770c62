//! Writing what a restore's plan writes, into staging copies when in place, in the order that
//! keeps every step safe: the roots' parents and staging copies, folders parents first,
//! deletions (only where nothing is staged), file data and the hard links that share it,
//! symlinks and special files, and last the folders' own metadata, deepest first, so that
//! setting a folder's time is the last change in it. Nothing here swaps anything in.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lifeboat_repository::{Id, NodeKind, Repository};
use rayon::prelude::*;

use super::plan::{Item, Plan};
use super::{data, fsops, stage, Owners};
use crate::meta;
use crate::progress::Progress;
use crate::runlog::RunLog;

/// What writing the plan came to.
#[derive(Default)]
pub(super) struct Written {
    /// Entries not written (or not fully): a staged restore with any is not swapped in.
    pub failed: Vec<String>,
    /// Entries written whose metadata could not all be set.
    pub warnings: Vec<String>,
    /// Blobs read and authenticated (a safety backup made next reuses exactly those).
    pub verified: HashSet<Id>,
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

/// Writes everything `plan` writes; `target` is the restore's `--target`, if any.
pub(super) fn write(
    repo: &Repository,
    home: &Path,
    target: Option<&Path>,
    plan: &Plan,
    progress: &Progress,
    log: &RunLog,
) -> Written {
    let as_root = nix::unistd::geteuid().is_root();
    let w = Writing {
        repo,
        plan,
        progress,
        log,
        as_root,
        owners: Owners::for_home(home),
        failed: Mutex::new(Vec::new()),
        failed_paths: Mutex::new(HashSet::new()),
        warnings: Mutex::new(Vec::new()),
    };
    w.prepare_roots(target);
    if !w.failed.lock().expect("problems lock").is_empty() {
        return Written { failed: w.failed.into_inner().expect("problems lock"), ..Written::default() };
    }
    let folders = w.make_folders();
    w.delete_where_nothing_is_staged();
    let (files, links, verified) = w.write_files();
    let others = w.make_others();
    w.make_links(&links);
    w.apply_folder_metadata(&folders);

    // What could not be written is never counted as restored.
    let failed_paths = w.failed_paths.into_inner().expect("problems lock");
    let done = |i: &Item| !failed_paths.contains(&i.dest);
    let entries = files.iter().chain(others.iter()).chain(links.iter().map(|(i, _)| i));
    Written {
        dirs: folders.iter().filter(|f| done(f.item)).count() as u64,
        files: entries.filter(|i| done(i)).count() as u64,
        // Bytes written: a hard link's data is its first name's.
        bytes: files.iter().filter(|i| done(i)).map(|i| i.node.size).sum(),
        failed: w.failed.into_inner().expect("problems lock"),
        warnings: w.warnings.into_inner().expect("problems lock"),
        verified,
    }
}

/// A folder of the plan and where it is written; made parents first, given its metadata
/// deepest first.
struct Folder<'a> {
    item: &'a Item,
    path: PathBuf,
    depth: usize,
}

struct Writing<'a> {
    repo: &'a Repository,
    plan: &'a Plan,
    progress: &'a Progress,
    log: &'a RunLog,
    as_root: bool,
    owners: Owners,
    failed: Mutex<Vec<String>>,
    failed_paths: Mutex<HashSet<PathBuf>>,
    warnings: Mutex<Vec<String>>,
}

impl<'a> Writing<'a> {
    /// An entry not written; `path` is where it ends up (never its staging copy).
    fn fail(&self, path: &Path, what: String) {
        let msg = format!("{}: {what}", path.display());
        self.log.warn(self.progress, &msg);
        self.failed.lock().expect("problems lock").push(msg);
        self.failed_paths.lock().expect("problems lock").insert(path.to_path_buf());
    }

    /// An entry written whose metadata could not all be set.
    fn warn(&self, path: &Path, what: String) {
        let msg = format!("{}: {what}", path.display());
        self.log.warn(self.progress, &msg);
        self.warnings.lock().expect("problems lock").push(msg);
    }

    fn owner_of(&self, item: &Item) -> Option<(u32, u32)> {
        if self.as_root {
            self.owners.resolve(&item.node, self.plan.names.get(item.names))
        } else {
            None
        }
    }

    fn apply_metadata(&self, item: &Item, path: &Path) {
        for w in meta::apply(path, &item.node, self.as_root, self.owner_of(item)) {
            self.warn(&item.dest, w);
        }
    }

    /// The roots' parents, and the staging copies, outer roots first. Under `target`, and
    /// inside an outer root's staging copy, parents are made without following a symlink.
    fn prepare_roots(&self, target: Option<&Path>) {
        self.progress.set_phase("preparing the restore beside the current folders");
        let plan = self.plan;
        let mut order: Vec<usize> = (0..plan.roots.len()).collect();
        order.sort_by_key(|&i| plan.roots[i].dest.components().count());
        for i in order {
            let r = &plan.roots[i];
            let parent = r.work.parent().unwrap_or(Path::new("/"));
            let made = match (target, r.outer) {
                (_, Some(o)) if r.work != r.dest => fsops::ensure_real_dirs(&plan.roots[o].work, parent),
                (Some(t), _) if !r.elsewhere => fsops::ensure_real_dirs(t, parent),
                _ => std::fs::create_dir_all(parent),
            };
            let prepared =
                made.and_then(|()| if r.work != r.dest { stage::prepare(r, &|p| plan.carry(p)) } else { Ok(()) });
            if let Err(e) = prepared {
                self.fail(&r.dest, format!("cannot prepare the restore: {e}"));
            }
        }
    }

    /// Folders, parents first; writable by us until their own metadata is applied last.
    /// Returns them, parents first.
    fn make_folders(&self) -> Vec<Folder<'a>> {
        self.progress.set_phase("creating folders");
        let plan = self.plan;
        let mut folders: Vec<Folder> = plan
            .items
            .iter()
            .filter(|i| i.node.kind == NodeKind::Dir)
            .map(|item| {
                let path = plan.work_path(item);
                Folder { depth: path.components().count(), item, path }
            })
            .collect();
        folders.sort_by_key(|f| f.depth);
        for depth_group in folders.chunk_by(|a, b| a.depth == b.depth) {
            depth_group.par_iter().for_each(|f| {
                if let Err(e) = fsops::ensure_dir(&f.path) {
                    self.fail(&f.item.dest, format!("cannot create folder: {e}"));
                } else {
                    use std::os::unix::fs::PermissionsExt;
                    let _ =
                        std::fs::set_permissions(&f.path, std::fs::Permissions::from_mode(0o700 | f.item.node.mode));
                }
            });
        }
        folders
    }

    /// Where nothing is staged, what the plan deletes goes now (staged, it goes with the
    /// swap).
    fn delete_where_nothing_is_staged(&self) {
        if self.plan.roots.iter().any(|r| r.staged) {
            return;
        }
        self.progress.set_phase("removing what the backup does not hold");
        for path in &self.plan.deletes {
            if let Err(e) = fsops::remove_any(path) {
                self.fail(path, format!("cannot remove: {e}"));
            }
        }
    }

    /// File data. The first name of each hard-linked file carries its data; the other names
    /// are returned with that first name, to be linked once it exists. Returns the files
    /// written, those links, and the blobs read and authenticated.
    #[allow(clippy::type_complexity)]
    fn write_files(&self) -> (Vec<&'a Item>, Vec<(&'a Item, PathBuf)>, HashSet<Id>) {
        self.progress.set_phase("restoring files");
        let plan = self.plan;
        let mut primaries: HashMap<(u64, u64), PathBuf> = HashMap::new();
        let mut links: Vec<(&Item, PathBuf)> = Vec::new();
        let mut files: Vec<&Item> = Vec::new();
        // The items are sorted by destination, so the first name of a hard-linked file is
        // the same on every run.
        for item in plan.items.iter().filter(|i| i.node.kind == NodeKind::File && i.writes()) {
            if item.node.links > 1 {
                if let Some(first) = primaries.get(&(item.node.device, item.node.inode)) {
                    links.push((item, first.clone()));
                    continue;
                }
                primaries.insert((item.node.device, item.node.inode), plan.work_path(item));
            }
            files.push(item);
        }
        let placement = data::Placement { place: &|item| plan.work_path(item), unlink_first: true };
        let finish = |f: &std::fs::File, item: &Item, fresh| {
            let n = &item.node;
            for w in meta::apply_fd(f, &plan.work_path(item), n, self.as_root, self.owner_of(item), fresh) {
                self.warn(&item.dest, w);
            }
        };
        let verified =
            data::restore_files(self.repo, &files, &placement, self.progress, &|p, w| self.fail(p, w), &finish);
        (files, links, verified)
    }

    /// Symlinks, FIFOs and device nodes. Returns them.
    fn make_others(&self) -> Vec<&'a Item> {
        self.progress.set_phase("restoring links");
        let others: Vec<&Item> = self
            .plan
            .items
            .iter()
            .filter(|i| !matches!(i.node.kind, NodeKind::Dir | NodeKind::File) && i.writes())
            .collect();
        others.par_iter().for_each(|item| {
            let path = self.plan.work_path(item);
            match make_special(item, &path, self.as_root) {
                Ok(()) => {
                    self.apply_metadata(item, &path);
                    self.progress.add(1, 0);
                }
                Err(e) => self.fail(&item.dest, e),
            }
        });
        others
    }

    /// The other names of hard-linked files, linked to their first name.
    fn make_links(&self, links: &[(&Item, PathBuf)]) {
        for (item, first) in links {
            let path = self.plan.work_path(item);
            let made = fsops::remove_any(&path).and_then(|_| std::fs::hard_link(first, &path));
            match made {
                Ok(()) => self.progress.add(1, 0),
                Err(e) => self.fail(&item.dest, format!("cannot link to {}: {e}", first.display())),
            }
        }
    }

    /// Folder metadata, deepest first, so setting a folder's time is the last change in it.
    fn apply_folder_metadata(&self, folders: &[Folder]) {
        self.progress.set_phase("restoring folder metadata");
        for depth_group in folders.chunk_by(|a, b| a.depth == b.depth).rev() {
            depth_group.par_iter().for_each(|f| self.apply_metadata(f.item, &f.path));
        }
    }
}

/// Creates a symlink, FIFO or device node at `path`, where the item is written.
fn make_special(item: &Item, path: &Path, as_root: bool) -> Result<(), String> {
    use nix::sys::stat::{mknod, Mode, SFlag};
    let made = match item.node.kind {
        NodeKind::Symlink => {
            let target = item.node.target().cloned().unwrap_or_default();
            fsops::remove_any(path).and_then(|_| std::os::unix::fs::symlink(target.as_os_str(), path))
        }
        NodeKind::Fifo => fsops::remove_any(path).and_then(|_| {
            nix::unistd::mkfifo(path, Mode::from_bits_truncate(item.node.mode)).map_err(std::io::Error::from)
        }),
        NodeKind::CharDevice | NodeKind::BlockDevice if as_root => fsops::remove_any(path).and_then(|_| {
            let kind = if item.node.kind == NodeKind::CharDevice { SFlag::S_IFCHR } else { SFlag::S_IFBLK };
            mknod(path, kind, Mode::from_bits_truncate(item.node.mode), item.node.rdev().unwrap_or(0))
                .map_err(std::io::Error::from)
        }),
        NodeKind::CharDevice | NodeKind::BlockDevice => return Err("device files are restored only by root".into()),
        _ => return Ok(()),
    };
    made.map_err(|e| format!("cannot create: {e}"))
}
