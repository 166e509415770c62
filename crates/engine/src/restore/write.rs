//! Carrying out a restore's plan on the device, every step by handle (`handles.rs`), in two
//! phases.
//!
//! Writing: each entry the plan writes goes beside its destination. A file, link or special
//! file is made under a hidden temporary name in the folder it lands in; a new folder is
//! made under a temporary name, with everything in it at its own name. Until the commit the
//! device shows nothing new and has lost nothing, so a failure or a kill here changes nothing
//! but those temporary names, which are removed.
//!
//! Nothing is made by name where another user can change names: in a folder someone else can
//! write in (root restoring into her home), a folder, symlink, FIFO or device node is made in
//! a room of the restore's own beside it (`handles::make_room`: 0700, root's), identified and
//! given its metadata there by name, which nobody else can reach, then moved out to its
//! temporary name. Setting metadata by name at the temporary name would set it on whatever
//! she renamed there meanwhile (a file of root's in her folder, chowned to her). A symlink
//! cannot be opened for its times (`utimensat` takes no `AT_EMPTY_PATH`, and an `O_PATH`
//! handle's `/proc/self/fd` path is followed to its target), so a handle alone would not do.
//! A regular file is created `O_EXCL` and gets its metadata through the handle. Each entry's
//! inode is kept: a hard link is made from the handle of its first name checked to be that
//! inode, and a temporary name is removed only while it is what was made
//! (`handles::remove_made`; the journal keeps the folders' inodes for after a crash).
//!
//! Putting in place: what the plan deletes goes (deepest first), then each entry is renamed
//! onto its destination, each only while the path is still what the plan saw. A path changed
//! since (a file saved, created or removed while the restore ran) is kept as it is and
//! reported, with the backup's version beside it. Last, the folders' own metadata, deepest
//! first, so setting a folder's time is the last change in it.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lifeboat_repository::{Id, NodeKind, Repository};
use nix::fcntl::RenameFlags;
use rayon::prelude::*;

use super::handles::{self, Folders, Ids};
use super::plan::{under, Action, Item, Plan, Seen};
use super::{data, Owners};
use crate::meta;
use crate::progress::Progress;
use crate::runlog::RunLog;

/// What writing the plan came to.
#[derive(Default)]
pub(super) struct Written {
    /// Entries not written (or not fully).
    pub failed: Vec<String>,
    /// Entries written whose metadata could not all be set.
    pub warnings: Vec<String>,
    /// Blobs read and authenticated (a safety backup made next reuses exactly those).
    pub verified: HashSet<Id>,
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

/// How an entry of the plan is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// Not at all: it is as in the backup, or another root writes its path.
    Nothing,
    /// A folder that is there and stays: only its metadata is set.
    Stays,
    /// Under a temporary name in the folder it lands in, renamed onto its path at the commit.
    Beside,
    /// At its own name inside a new folder that is written beside.
    Inside,
}

/// Where the data of the files restored comes from.
pub(crate) enum Source<'a> {
    /// A repository's blobs, each authenticated as it is read.
    Repository(&'a Repository),
    /// Files already written in a private folder of this device (a backup file's extraction,
    /// all of it checked): linked in where they share a file system, copied where not.
    Files(&'a (dyn Fn(&Item) -> PathBuf + Sync + 'a)),
}

/// The restore's work on the device.
pub(super) struct Executor<'a> {
    source: Source<'a>,
    plan: &'a Plan,
    progress: &'a Progress,
    log: &'a RunLog,
    as_root: bool,
    owners: Owners,
    folders: Folders,
    how: Vec<How>,
    /// New folders written beside, by destination: the item each is.
    fresh: HashMap<PathBuf, usize>,
    /// The start of this restore's temporary names (`.lifeboat-ID-`).
    tag: String,
    /// The backup restored, named in the names of the backup's versions that are kept aside.
    slug: String,
    /// Folders that stay, made writable for the restore: their mode before.
    opened_up: Mutex<Vec<(PathBuf, u32)>>,
    /// Folders that stay, with their times before the restore wrote beside anything in them.
    times: Mutex<Vec<(PathBuf, std::fs::Metadata)>>,
    /// Every folder of the plan made or opened, by destination: its device and inode. Its
    /// metadata is set on that folder only, never on another found at its path after the
    /// commit (such as one of root's that its owner renamed to a temporary name).
    inodes: Mutex<HashMap<PathBuf, (u64, u64)>>,
    /// New folders kept beside their destination (changed meanwhile), by destination: where.
    aside: Mutex<HashMap<PathBuf, PathBuf>>,
    /// What the restore made for item `k`, at the place `spot(k)` names.
    made: Mutex<HashMap<usize, Ids>>,
    /// Rooms of the restore's own, by the folder they are in (None: only root or this user
    /// can change that folder, and entries are made in it directly).
    rooms: Mutex<HashMap<PathBuf, Option<Room>>>,
    failed: Mutex<Vec<String>>,
    failed_paths: Mutex<HashSet<PathBuf>>,
    warnings: Mutex<Vec<String>>,
}

/// A folder only the restore can change, made in a folder others can: see the module's comment.
struct Room {
    dir: handles::Dir,
    name: OsString,
    ids: Ids,
}

/// An entry made, not yet given its metadata or moved to its place.
struct Made {
    k: usize,
    /// Where it is: the room, or the folder it stays in.
    at: handles::Dir,
    name: OsString,
    ids: Ids,
    /// Made in a room: where it goes then.
    out: Option<(handles::Dir, OsString)>,
}

/// An entry of the journal: a folder the restore made (or its own room), by the folder it is
/// in and its name there.
pub(super) type MadeFolder = (PathBuf, OsString, Ids);

/// The start of the temporary names of the restore `id`.
pub(crate) fn temp_tag(id: &str) -> String {
    format!(".lifeboat-{id}-")
}

impl<'a> Executor<'a> {
    pub fn new(
        source: Source<'a>,
        plan: &'a Plan,
        home: &Path,
        (id, slug): (&str, &str),
        progress: &'a Progress,
        log: &'a RunLog,
    ) -> Executor<'a> {
        let items = &plan.items;
        let mut how = Vec::with_capacity(items.len());
        let mut fresh = HashMap::new();
        for (k, item) in items.iter().enumerate() {
            let shadowed = items.get(k + 1).is_some_and(|next| next.dest == item.dest);
            let in_fresh = item.dest.parent().is_some_and(|p| fresh.contains_key(p));
            let h = if shadowed || !item.writes() {
                How::Nothing
            } else if in_fresh {
                How::Inside
            } else if item.node.kind == NodeKind::Dir && item.carry == super::plan::Carry::Descend {
                How::Stays
            } else {
                How::Beside
            };
            if item.node.kind == NodeKind::Dir && matches!(h, How::Beside | How::Inside) {
                fresh.insert(item.dest.clone(), k);
            }
            how.push(h);
        }
        // Only the outermost new folders are written beside; those inside them are in them.
        fresh.retain(|_, k| how[*k] == How::Beside);
        // A folder that stays is opened only while it is the one the plan saw; one that was
        // gone already is not the plan's either.
        let folders = Folders::default();
        for (item, _) in items.iter().zip(&how).filter(|(_, h)| **h == How::Stays) {
            let seen = plan.seen.get(&item.dest).filter(|s| s.is_dir());
            folders.expect(&item.dest, seen.map_or(handles::NOT_SEEN, |s| s.ids()));
        }
        // So is the folder a root goes in (no entry of the backup): one missing then is made.
        // Inside a new folder written beside, it is made there, and reached through that one.
        let outside_fresh = |p: &Path| !p.ancestors().any(|a| fresh.contains_key(a));
        let parents = plan.roots.iter().filter_map(|r| r.dest.parent());
        for parent in parents.filter(|p| plan.item_at(p).is_none() && outside_fresh(p)) {
            let seen = plan.seen.get(parent).filter(|s| s.is_dir());
            folders.expect(parent, seen.map_or(handles::NOT_SEEN, |s| s.ids()));
        }
        Executor {
            source,
            plan,
            progress,
            log,
            as_root: nix::unistd::geteuid().is_root(),
            owners: Owners::for_home(home),
            folders,
            how,
            fresh,
            tag: temp_tag(id),
            slug: slug.to_string(),
            opened_up: Mutex::new(Vec::new()),
            times: Mutex::new(Vec::new()),
            inodes: Mutex::new(HashMap::new()),
            aside: Mutex::new(HashMap::new()),
            made: Mutex::new(HashMap::new()),
            rooms: Mutex::new(HashMap::new()),
            failed: Mutex::new(Vec::new()),
            failed_paths: Mutex::new(HashSet::new()),
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// The folders that hold this restore's temporary names.
    pub fn temp_folders(&self) -> Vec<PathBuf> {
        let mut folders: Vec<PathBuf> =
            (0..self.how.len()).filter(|&k| self.how[k] == How::Beside).map(|k| self.spot(k).0).collect();
        folders.sort();
        folders.dedup();
        folders
    }

    /// An entry not restored; `path` is where it was to go.
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

    fn has_failed(&self, path: &Path) -> bool {
        self.failed_paths.lock().expect("problems lock").contains(path)
    }

    fn owner_of(&self, item: &Item) -> Option<(u32, u32)> {
        if self.as_root {
            self.owners.resolve(&item.node, self.plan.names.get(item.names))
        } else {
            None
        }
    }

    /// The file's node as root may give it: setuid and setgid are set only where every folder
    /// from `/` to the file can be changed by root alone (a restore of `/usr`, say). Under a
    /// folder another user controls (her home), a set-id file of the backup would be a
    /// program that runs as its owner for whoever can reach it: a backup file she handed over,
    /// or a forged backup, would give her root. Those bits are left off, with a warning.
    fn special_bits_allowed<'i>(&self, item: &'i Item) -> std::borrow::Cow<'i, super::entry::Entry> {
        use std::borrow::Cow;
        if !self.as_root || item.node.mode & 0o6000 == 0 {
            return Cow::Borrowed(&item.node);
        }
        let (folder, _) = self.spot(self.index_of(item));
        if handles::trusted_all_the_way(&folder) {
            return Cow::Borrowed(&item.node);
        }
        self.warn(
            &item.dest,
            "setuid/setgid left off: it lands under a folder another user can change \
             (restore it with --target under a folder of root's to keep them)"
                .into(),
        );
        let mut node = (*item.node).clone();
        node.mode &= !0o6000;
        Cow::Owned(node)
    }

    /// The position of an item in the plan.
    fn index_of(&self, item: &Item) -> usize {
        self.plan.items.partition_point(|i| i.dest <= item.dest).saturating_sub(1)
    }

    /// Where item `k` is written while the restore runs: a folder and a name in it.
    fn spot(&self, k: usize) -> (PathBuf, OsString) {
        let dest = &self.plan.items[k].dest;
        let parent = dest.parent().unwrap_or(Path::new("/"));
        let name = dest.file_name().unwrap_or_default().to_os_string();
        match self.how[k] {
            How::Beside => (parent.to_path_buf(), OsString::from(format!("{}{k}", self.tag))),
            How::Inside => (self.work_of(parent), name),
            How::Stays | How::Nothing => (parent.to_path_buf(), name),
        }
    }

    /// Where the folder at `dest` is while the restore runs: inside a new folder's temporary
    /// place when it lies in one.
    fn work_of(&self, dest: &Path) -> PathBuf {
        for a in dest.ancestors() {
            if let Some(&k) = self.fresh.get(a) {
                let (dir, name) = self.spot(k);
                return under(&dir.join(name), dest.strip_prefix(a).unwrap_or(Path::new("")));
            }
        }
        dest.to_path_buf()
    }

    /// The folder item `k` is written in, held open.
    fn dir_of(&self, k: usize) -> io::Result<(handles::Dir, OsString)> {
        let (dir, name) = self.spot(k);
        Ok((self.folders.dir(&dir)?, name))
    }

    /// Writes everything beside the destination (see the module's comment). `record` is given
    /// the folders made beside (and the rooms) once they are, for the journal.
    pub fn write(&self, record: &mut dyn FnMut(Vec<MadeFolder>)) -> Written {
        self.progress.set_phase("writing beside what is there now");
        self.prepare_roots(false);
        self.make_rooms();
        let folders = self.make_folders();
        record(self.made_folders());
        self.prepare_roots(true);
        let (files, links, verified) = self.write_files();
        let others = self.make_others();
        self.make_links(&links);
        self.remove_rooms();
        let failed_paths = self.failed_paths.lock().expect("problems lock").clone();
        let done = |i: &Item| !failed_paths.contains(&i.dest);
        let entries = files.iter().chain(others.iter()).chain(links.iter().map(|(i, _)| i));
        Written {
            dirs: folders.iter().filter(|&&k| done(&self.plan.items[k])).count() as u64,
            files: entries.filter(|i| done(i)).count() as u64,
            bytes: files.iter().filter(|i| done(i)).map(|i| i.node.size).sum(),
            failed: std::mem::take(&mut *self.failed.lock().expect("problems lock")),
            warnings: std::mem::take(&mut *self.warnings.lock().expect("problems lock")),
            verified,
        }
    }

    /// The folders the roots land in, made where missing (each by handle from `/`): those in
    /// a new folder the restore writes (`in_fresh`) once that is made, the others first.
    fn prepare_roots(&self, in_fresh: bool) {
        let mut roots: Vec<&Path> = self.plan.roots.iter().map(|r| r.dest.as_path()).collect();
        roots.sort_by_key(|p| p.components().count());
        for dest in roots {
            let Some(parent) = dest.parent() else { continue };
            let work = self.work_of(parent);
            if (work != parent) != in_fresh {
                continue;
            }
            if let Err(e) = self.folders.make_all(&work) {
                self.fail(dest, format!("cannot create the folder it goes in: {e}"));
            }
        }
    }

    /// New folders, parents first (mode 0700 until their own is set last); folders that stay
    /// made writable by their owner where they are not. Returns the folders of the plan.
    fn make_folders(&self) -> Vec<usize> {
        let items = &self.plan.items;
        let mut folders: Vec<usize> =
            (0..items.len()).filter(|&k| items[k].node.kind == NodeKind::Dir && self.how[k] != How::Nothing).collect();
        folders.sort_by_key(|&k| items[k].dest.components().count());
        for group in folders.chunk_by(|&a, &b| items[a].dest.components().count() == items[b].dest.components().count())
        {
            group.par_iter().for_each(|&k| {
                let made = match self.how[k] {
                    How::Stays => self.open_up(&items[k].dest),
                    _ => self.make_folder(k),
                };
                if let Err(e) = made {
                    self.fail(&items[k].dest, format!("cannot create folder: {e}"));
                }
            });
        }
        folders
    }

    /// A folder that stays, which this user owns but may not write in, made writable.
    fn open_up(&self, dest: &Path) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = File::from(self.folders.dir(dest)?.try_clone()?);
        let m = dir.metadata()?;
        self.remember(dest, m.dev(), m.ino());
        self.times.lock().expect("folders lock").push((dest.to_path_buf(), m.clone()));
        if m.uid() == nix::unistd::geteuid().as_raw() && m.mode() & 0o700 != 0o700 {
            self.opened_up.lock().expect("folders lock").push((dest.to_path_buf(), m.mode() & 0o7777));
            dir.set_permissions(std::fs::Permissions::from_mode(m.mode() & 0o7777 | 0o700))?;
        }
        Ok(())
    }

    /// Makes the new folder of item `k` (0700), in a room where others can change names, and
    /// holds it open: everything inside goes into that very folder.
    fn make_folder(&self, k: usize) -> io::Result<()> {
        let made = self.make(k, &|dir, name| handles::make_dir(dir, name, 0o700))?;
        let ids = made.ids;
        let held = handles::open_child(&made.at, &made.name).and_then(|f| {
            let m = f.metadata()?;
            match (m.dev(), m.ino()) == ids {
                true => Ok(handles::Dir::new(f.into())),
                false => Err(io::Error::other("another folder was put where the restore made one")),
            }
        });
        let held = match held {
            Ok(held) => held,
            Err(e) => {
                let _ = handles::remove_made(&made.at, &made.name, Some(ids));
                return Err(e);
            }
        };
        self.place(made)?;
        let (folder, name) = self.spot(k);
        self.folders.hold(&folder.join(name), held, ids);
        self.remember(&self.plan.items[k].dest, ids.0, ids.1);
        Ok(())
    }

    /// Rooms in the folders where new folders, symlinks and special files are written beside
    /// and someone else can change names (see the module's comment).
    fn make_rooms(&self) {
        let items = &self.plan.items;
        for k in (0..items.len()).filter(|&k| self.how[k] == How::Beside && items[k].node.kind != NodeKind::File) {
            // A room that cannot be made now is tried again when its entry is made, and that
            // entry fails then.
            let _ = self.room(&self.spot(k).0);
        }
    }

    /// The room in `folder`, made the first time; None where only root or this user can
    /// change `folder`.
    fn room(&self, folder: &Path) -> io::Result<Option<handles::Dir>> {
        let mut rooms = self.rooms.lock().expect("rooms lock");
        if let Some(room) = rooms.get(folder) {
            return Ok(room.as_ref().map(|r| r.dir.clone()));
        }
        let dir = self.folders.dir(folder)?;
        let room = if handles::trusted(&dir)? {
            None
        } else {
            // A temporary name after every item's, so the journal's cleaning finds it too.
            let name = OsString::from(format!("{}{}", self.tag, self.how.len() + rooms.len()));
            let (room, ids) = handles::make_room(&dir, &name)?;
            Some(Room { dir: room, name, ids })
        };
        let held = room.as_ref().map(|r| r.dir.clone());
        rooms.insert(folder.to_path_buf(), room);
        Ok(held)
    }

    /// The rooms, emptied by now, removed.
    fn remove_rooms(&self) {
        for (folder, room) in self.rooms.lock().expect("rooms lock").drain() {
            let Some(room) = room else { continue };
            let removed =
                self.folders.dir(&folder).and_then(|dir| handles::remove_made(&dir, &room.name, Some(room.ids)));
            if let Err(e) = removed {
                self.left(&folder.join(&room.name), e);
            }
        }
    }

    /// The folders made beside their destination, and the rooms: for the journal.
    fn made_folders(&self) -> Vec<MadeFolder> {
        let made = self.made.lock().expect("made lock");
        let folders = (0..self.how.len())
            .filter(|&k| self.how[k] == How::Beside && self.plan.items[k].node.kind == NodeKind::Dir)
            .filter_map(|k| made.get(&k).map(|&ids| (self.spot(k), ids)))
            .map(|((folder, name), ids)| (folder, name, ids));
        let rooms = self.rooms.lock().expect("rooms lock");
        let rooms = rooms.iter().filter_map(|(f, r)| r.as_ref().map(|r| (f.clone(), r.name.clone(), r.ids)));
        folders.chain(rooms).collect()
    }

    /// Makes item `k`'s entry with `make` (given a folder and a name): in the room of the
    /// folder it goes in where there is one, else at its place. Identified by name where
    /// nobody else can change names.
    fn make(&self, k: usize, make: &dyn Fn(&handles::Dir, &OsStr) -> io::Result<()>) -> io::Result<Made> {
        let (folder, name) = self.spot(k);
        let dir = self.folders.dir(&folder)?;
        let (at, at_name, out) = match self.room(&folder)? {
            Some(room) => (room, OsString::from(k.to_string()), Some((dir, name))),
            None => (dir, name, None),
        };
        make(&at, &at_name)?;
        let st = handles::stat(&at, &at_name)?.ok_or_else(|| io::Error::other("gone once made"))?;
        Ok(Made { k, at, name: at_name, ids: handles::ids(&st), out })
    }

    /// Puts an entry made in a room at its place (never over anything); notes what it is.
    fn place(&self, made: Made) -> io::Result<()> {
        if let Some((dir, name)) = &made.out {
            if let Err(e) = handles::move_out(&made.at, &made.name, (dir, name)) {
                let _ = handles::remove_made(&made.at, &made.name, Some(made.ids));
                return Err(e);
            }
        }
        self.made.lock().expect("made lock").insert(made.k, made.ids);
        Ok(())
    }

    /// Removes what the restore made for item `k`, where it is while the restore runs, while
    /// it is what was made; else says what was left. Nothing made: nothing to remove.
    fn remove_made(&self, k: usize) {
        let Some(made) = self.made.lock().expect("made lock").get(&k).copied() else { return };
        let Ok((dir, name)) = self.dir_of(k) else { return };
        if let Err(e) = handles::remove_made(&dir, &name, Some(made)) {
            self.left(&self.spot(k).0.join(&name), e);
        }
    }

    /// A temporary name not removed.
    fn left(&self, path: &Path, e: io::Error) {
        let msg = format!("{}: not removed: {e}", path.display());
        self.log.warn(self.progress, &msg);
        self.warnings.lock().expect("problems lock").push(msg);
    }

    fn remember(&self, dest: &Path, dev: u64, ino: u64) {
        self.inodes.lock().expect("folders lock").insert(dest.to_path_buf(), (dev, ino));
    }

    /// The folder of the plan restored to `dest`, opened at `at` (where it is now): only the
    /// very folder the restore made or opened, whatever someone put at its path since.
    fn reopen_folder(&self, dest: &Path, at: &Path) -> io::Result<File> {
        let made = self.inodes.lock().expect("folders lock").get(dest).copied();
        let dir = File::from(self.folders.dir(at)?.try_clone()?);
        let m = dir.metadata()?;
        match made {
            Some(made) if made == (m.dev(), m.ino()) => Ok(dir),
            _ => Err(io::Error::other("another folder is at its place now")),
        }
    }

    /// File data. The first name of each hard-linked file carries its data; the other names
    /// are returned with that first name's position, to be linked once it exists.
    #[allow(clippy::type_complexity)]
    fn write_files(&self) -> (Vec<&'a Item>, Vec<(&'a Item, usize)>, HashSet<Id>) {
        self.progress.set_phase("restoring files");
        let plan = self.plan;
        let mut primaries: HashMap<(u64, u64), usize> = HashMap::new();
        let mut links = Vec::new();
        let mut files = Vec::new();
        // The items are sorted by destination, so the first name of a hard-linked file is
        // the same on every run.
        for (k, item) in plan.items.iter().enumerate() {
            if item.node.kind != NodeKind::File || self.how[k] == How::Nothing || self.has_failed(&item.dest) {
                continue;
            }
            if item.node.links > 1 {
                if let Some(&first) = primaries.get(&(item.node.device, item.node.inode)) {
                    links.push((item, first));
                    continue;
                }
                primaries.insert((item.node.device, item.node.inode), k);
            }
            files.push(item);
        }
        let create = |item: &Item| {
            let k = self.index_of(item);
            let (dir, name) = self.dir_of(k)?;
            let f = handles::create_file(&dir, &name, item.node.mode)?;
            let m = f.metadata()?;
            self.made.lock().expect("made lock").insert(k, (m.dev(), m.ino()));
            Ok(f)
        };
        let reopen = |item: &Item, ino| {
            let (dir, name) = self.dir_of(self.index_of(item))?;
            handles::reopen_file(&dir, &name, ino)
        };
        let discard = |item: &Item| self.remove_made(self.index_of(item));
        let placement = data::Placement { create: &create, reopen: &reopen, discard: &discard };
        let finish = |f: &File, item: &Item, fresh| {
            let node = self.special_bits_allowed(item);
            for w in meta::apply_fd(f, &node, self.as_root, self.owner_of(item), fresh) {
                self.warn(&item.dest, w);
            }
        };
        let verified = match &self.source {
            Source::Repository(repo) => {
                data::restore_files(repo, &files, &placement, self.progress, &|p, w| self.fail(p, w), &finish)
            }
            Source::Files(from) => {
                files.par_iter().for_each(|item| {
                    if self.progress.is_cancelled() {
                        return;
                    }
                    if let Err(e) = self.bring(item, &from(item), &finish) {
                        self.fail(&item.dest, format!("cannot write: {e}"));
                    }
                });
                HashSet::new()
            }
        };
        (files, links, verified)
    }

    /// Puts the file at `from` (a private copy of the entry, with its metadata) beside the
    /// destination of `item`: linked where both are on one file system, else copied.
    fn bring(&self, item: &Item, from: &Path, finish: &(dyn Fn(&File, &Item, bool) + Sync)) -> io::Result<()> {
        let k = self.index_of(item);
        let (dir, name) = self.dir_of(k)?;
        let (src_dir, src_name) = self.folders.parent_of(from)?;
        let ids = match handles::link((&src_dir, src_name), (&dir, &name)) {
            // The private copy's folder: nobody else changes what is at that name.
            Ok(()) => handles::stat(&src_dir, src_name)?.map(|st| handles::ids(&st)),
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                let mut input =
                    File::options().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(from)?;
                let out = handles::create_file(&dir, &name, item.node.mode)?;
                let m = out.metadata()?;
                std::io::copy(&mut input, &mut &out)?;
                finish(&out, item, true);
                Some((m.dev(), m.ino()))
            }
            Err(e) => return Err(e),
        };
        if let Some(ids) = ids {
            self.made.lock().expect("made lock").insert(k, ids);
        }
        self.progress.add(1, item.node.size);
        Ok(())
    }

    /// Symlinks, FIFOs and device nodes. Returns them.
    fn make_others(&self) -> Vec<&'a Item> {
        self.progress.set_phase("restoring links");
        let items = &self.plan.items;
        let others: Vec<usize> = (0..items.len())
            .filter(|&k| !matches!(items[k].node.kind, NodeKind::Dir | NodeKind::File) && self.how[k] != How::Nothing)
            .filter(|&k| !self.has_failed(&items[k].dest))
            .collect();
        let made: Vec<Made> = others
            .par_iter()
            .filter_map(|&k| match self.make(k, &|dir, name| make_special(&items[k], dir, name, self.as_root)) {
                Ok(m) => Some(m),
                Err(e) => {
                    self.fail(&items[k].dest, format!("cannot create: {e}"));
                    None
                }
            })
            .collect();
        lifeboat_storage::faults::pause_point(|| format!("links and special files of {} made", self.slug));
        // Their metadata by name where nobody else can change names: in the room, or in a
        // folder only root or this user can change; then each goes to its place.
        made.into_par_iter().for_each(|made| {
            let item = &items[made.k];
            for w in meta::apply_at(&made.at, &made.name, &item.node, self.as_root, self.owner_of(item)) {
                self.warn(&item.dest, w);
            }
            match self.place(made) {
                Ok(()) => self.progress.add(1, 0),
                Err(e) => self.fail(&item.dest, format!("cannot create: {e}")),
            }
        });
        others.into_iter().map(|k| &items[k]).collect()
    }

    /// The other names of hard-linked files, linked to their first name.
    fn make_links(&self, links: &[(&Item, usize)]) {
        for (item, first) in links {
            let k = self.index_of(item);
            let ids = self.made.lock().expect("made lock").get(first).copied();
            let made = self.dir_of(*first).and_then(|from| {
                let ids = ids.ok_or_else(|| io::Error::other("its first name was not made"))?;
                let to = self.dir_of(k)?;
                handles::link_made((&from.0, &from.1), ids, (&to.0, &to.1))?;
                Ok(ids)
            });
            match made {
                Ok(ids) => {
                    self.made.lock().expect("made lock").insert(k, ids);
                    self.progress.add(1, 0)
                }
                Err(e) => {
                    let first = &self.plan.items[*first].dest;
                    self.fail(&item.dest, format!("cannot link to {}: {e}", first.display()))
                }
            }
        }
    }

    /// Puts back the times of the folders that stay, which the names written beside moved:
    /// until the commit, and in the safety backup made before it, they are as they were.
    pub fn put_back_times(&self) {
        for (path, m) in self.times.lock().expect("folders lock").iter() {
            if let Ok(dir) = self.reopen_folder(path, path) {
                let a = nix::sys::time::TimeSpec::new(m.atime(), m.atime_nsec());
                let t = nix::sys::time::TimeSpec::new(m.mtime(), m.mtime_nsec());
                let _ = nix::sys::stat::futimens(std::os::fd::AsRawFd::as_raw_fd(&dir), &a, &t);
            }
        }
    }

    /// Removes everything written beside the destination: the device is as it was.
    pub fn discard(&self) {
        for k in (0..self.how.len()).filter(|&k| self.how[k] == How::Beside) {
            self.remove_made(k);
        }
        self.remove_rooms();
        self.close_up();
        self.put_back_times();
    }

    /// Gives the folders made writable their mode back.
    fn close_up(&self) {
        use std::os::unix::fs::PermissionsExt;
        for (path, mode) in self.opened_up.lock().expect("folders lock").drain(..) {
            if let Ok(dir) = self.reopen_folder(&path, &path) {
                let _ = dir.set_permissions(std::fs::Permissions::from_mode(mode));
            }
        }
    }

    /// Puts everything written in place (see the module's comment). Returns what was not
    /// restored and the metadata that could not be set.
    pub fn commit(&self) -> (Vec<String>, Vec<String>) {
        self.progress.set_phase("putting the restored files in place");
        for path in self.plan.deletes.iter().rev() {
            self.delete(path);
        }
        for k in (0..self.how.len()).filter(|&k| self.how[k] == How::Beside) {
            let item = &self.plan.items[k];
            if self.has_failed(&item.dest) {
                self.remove_made(k);
                continue;
            }
            if let Err(e) = self.put(k) {
                self.fail(&item.dest, format!("cannot put in place: {e}"));
            }
        }
        // Paths name other entries now.
        self.folders.forget();
        self.progress.set_phase("restoring folder metadata");
        self.folder_metadata();
        self.close_up();
        let failed = std::mem::take(&mut *self.failed.lock().expect("problems lock"));
        let warnings = std::mem::take(&mut *self.warnings.lock().expect("problems lock"));
        (failed, warnings)
    }

    /// Removes what the plan deletes at `path`, while it is what the plan saw.
    fn delete(&self, path: &Path) {
        let Some(seen) = self.plan.seen.get(path) else { return };
        let removed = self.folders.parent_of(path).and_then(|(dir, name)| {
            let Some(st) = handles::stat(&dir, name)? else { return Ok(true) };
            if !seen.still(&Seen::of_stat(&st)) {
                return Ok(false);
            }
            match handles::remove(&dir, name, seen.is_dir()) {
                Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => Ok(false),
                r => r.map(|()| true),
            }
        });
        match removed {
            Ok(true) => {}
            Ok(false) => self.fail(path, "changed while restoring: kept".into()),
            Err(e) => self.fail(path, format!("cannot remove: {e}")),
        }
    }

    /// Renames item `k` from beside its destination onto it.
    fn put(&self, k: usize) -> io::Result<()> {
        let item = &self.plan.items[k];
        let (dir, temp) = self.dir_of(k)?;
        let name = item.dest.file_name().unwrap_or_default();
        let seen = self.plan.seen.get(&item.dest);
        let now = handles::stat(&dir, name)?.map(|st| Seen::of_stat(&st));
        let Some(now) = now else {
            return self.rename_in(k, &dir, &temp, name);
        };
        if item.action != Action::Replace || !seen.is_some_and(|s| s.still(&now)) {
            return self.keep_aside(k, &dir, &temp, name);
        }
        if now.is_dir() {
            // A folder replaced by something else: what was in it went with the deletions.
            match handles::remove(&dir, name, true) {
                Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => return self.keep_aside(k, &dir, &temp, name),
                r => r?,
            }
            return self.rename_in(k, &dir, &temp, name);
        }
        handles::rename(&dir, &temp, name, RenameFlags::RENAME_EXCHANGE)?;
        // What stood at the path is at the temporary name now: it must be what the plan saw,
        // or it changed in between, and goes back.
        let old = handles::stat(&dir, &temp)?.map(|st| Seen::of_stat(&st));
        if old.is_some_and(|o| seen.is_some_and(|s| s.still(&o))) {
            // Not a folder (those went above): a folder put at the name since is not emptied.
            return handles::remove(&dir, &temp, false);
        }
        handles::rename(&dir, &temp, name, RenameFlags::RENAME_EXCHANGE)?;
        self.keep_aside(k, &dir, &temp, name)
    }

    /// Renames onto a path where nothing is; something made there meanwhile stays.
    fn rename_in(&self, k: usize, dir: &handles::Dir, temp: &OsStr, name: &OsStr) -> io::Result<()> {
        match handles::rename(dir, temp, name, RenameFlags::RENAME_NOREPLACE) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => self.keep_aside(k, dir, temp, name),
            r => r,
        }
    }

    /// The path changed while the restore ran: it stays as it is, and the backup's version
    /// goes beside it, under a name that says so.
    fn keep_aside(&self, k: usize, dir: &handles::Dir, temp: &OsStr, name: &OsStr) -> io::Result<()> {
        let dest = &self.plan.items[k].dest;
        for n in 1..100 {
            let mut aside = name.to_os_string();
            aside.push(format!(".restored-{}", self.slug));
            if n > 1 {
                aside.push(format!("-{n}"));
            }
            match handles::rename(dir, temp, &aside, RenameFlags::RENAME_NOREPLACE) {
                Ok(()) => {
                    let at = dest.with_file_name(&aside);
                    if self.plan.items[k].node.kind == NodeKind::Dir {
                        self.aside.lock().expect("folders lock").insert(dest.clone(), at.clone());
                    }
                    self.fail(
                        dest,
                        format!("changed while restoring: kept; the backup's version is at {}", at.display()),
                    );
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        self.remove_made(k);
        self.fail(dest, "changed while restoring: kept".into());
        Ok(())
    }

    /// Where the folder restored to `dest` is after the commit: there, or in a folder kept
    /// beside; None when it (or a folder it is in) was not put in place.
    fn placed(&self, dest: &Path) -> Option<PathBuf> {
        let aside = self.aside.lock().expect("folders lock");
        for a in dest.ancestors() {
            if let Some(at) = aside.get(a) {
                return Some(under(at, dest.strip_prefix(a).unwrap_or(Path::new(""))));
            }
            if self.has_failed(a) {
                return None;
            }
        }
        Some(dest.to_path_buf())
    }

    /// Every folder's own metadata, deepest first.
    fn folder_metadata(&self) {
        let items = &self.plan.items;
        let mut folders: Vec<(usize, PathBuf)> = (0..items.len())
            .filter(|&k| items[k].node.kind == NodeKind::Dir && self.how[k] != How::Nothing)
            .filter_map(|k| Some((k, self.placed(&items[k].dest)?)))
            .collect();
        folders.sort_by_key(|(k, _)| std::cmp::Reverse(items[*k].dest.components().count()));
        let depth = |k: usize| items[k].dest.components().count();
        for group in folders.chunk_by(|(a, _), (b, _)| depth(*a) == depth(*b)) {
            group.par_iter().for_each(|(k, at)| {
                let item = &items[*k];
                match self.reopen_folder(&item.dest, at) {
                    Ok(dir) => {
                        for w in meta::apply_fd(&dir, &item.node, self.as_root, self.owner_of(item), false) {
                            self.warn(&item.dest, w);
                        }
                    }
                    Err(e) => self.warn(&item.dest, format!("metadata: {e}")),
                }
            });
        }
    }
}

/// Creates a symlink, FIFO or device node as `name` in `dir`.
fn make_special(item: &Item, dir: &handles::Dir, name: &OsStr, as_root: bool) -> io::Result<()> {
    use nix::sys::stat::SFlag;
    let made = match item.node.kind {
        NodeKind::Symlink => {
            let target = item.node.target().cloned().unwrap_or_default();
            handles::symlink(dir, name, target.as_os_str())
        }
        NodeKind::Fifo => handles::special(dir, name, SFlag::S_IFIFO, item.node.mode, 0),
        NodeKind::CharDevice | NodeKind::BlockDevice if as_root => {
            let kind = if item.node.kind == NodeKind::CharDevice { SFlag::S_IFCHR } else { SFlag::S_IFBLK };
            handles::special(dir, name, kind, item.node.mode, item.node.rdev().unwrap_or(0))
        }
        NodeKind::CharDevice | NodeKind::BlockDevice => {
            return Err(io::Error::other("device files are restored only by root"))
        }
        _ => return Ok(()),
    };
    made
}
