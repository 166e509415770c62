//! Folders reached by handle. A restore names every entry it creates, renames, removes or
//! sets metadata on relative to an open folder, and opens each folder from its parent. A
//! symlink is followed only in a folder reached from `/` through folders that only root or
//! this user can change, every one of them: below a folder someone else can change, nothing
//! is followed, even in a folder of root's (she can rename a folder of root's that sits in
//! one of hers, such as one this restore made, which holds the backup's symlinks, to where
//! another is expected). A folder swapped for a symlink mid-restore fails that entry
//! (`ELOOP`, `ENOTDIR`), it never sends a write elsewhere. A folder moved away while open is
//! still written into where it went, which is a place its owner could write anyway.
//!
//! Root restoring into a home another user owns is the case this is made for: that user
//! controls every folder of the home, and nothing of it is trusted.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::fcntl::{OFlag, RenameFlags};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::UnlinkatFlags;

/// Folders open at once before the cache starts again: far below the usual limit of open
/// files, and a folder opened again costs a few `openat` calls.
const CACHE: usize = 512;

/// A folder held open, shared by the workers that write into it.
pub(crate) type Dir = Arc<OwnedFd>;

/// The folders of one restore, opened on demand and cached by path, each with whether it was
/// reached through trusted folders only (and is one itself): a symlink in it may be followed.
#[derive(Default)]
pub(crate) struct Folders {
    open: Mutex<HashMap<PathBuf, (Dir, bool)>>,
    /// Folders this restore made, by the path they are at while it runs, and the folders that
    /// stay as the plan saw them: opened (again, once the cache let them go), each must still
    /// be that very folder.
    made: Mutex<HashMap<PathBuf, Ids>>,
}

/// The ids expected of a folder the plan saw none at: no folder has them.
pub(crate) const NOT_SEEN: Ids = (u64::MAX, u64::MAX);

/// A device and an inode: which entry, whatever its name.
pub(crate) type Ids = (u64, u64);

/// The device and inode of an entry.
pub(crate) fn ids(st: &nix::sys::stat::FileStat) -> Ids {
    (st.st_dev, st.st_ino)
}

fn other(what: &str) -> io::Error {
    io::Error::other(what.to_string())
}

impl Folders {
    /// The folder at the absolute `path`, opened component by component from `/` (see the
    /// module's comment for when a symlink is followed).
    pub(crate) fn dir(&self, path: &Path) -> io::Result<Dir> {
        Ok(self.dir_trust(path)?.0)
    }

    /// [`Folders::dir`], and whether a symlink in that folder may be followed.
    fn dir_trust(&self, path: &Path) -> io::Result<(Dir, bool)> {
        if let Some(d) = self.open.lock().expect("folders lock").get(path) {
            return Ok(d.clone());
        }
        let mut components = path.components();
        if components.next() != Some(Component::RootDir) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not an absolute path"));
        }
        // A symlink in it may be followed when the folder it is in allowed that (`/` is in
        // none), and only root or this user can change it.
        let (dir, chain) = match path.parent() {
            None => (open_dir(None, Path::new("/"), true)?, true),
            Some(parent) => {
                let Some(Component::Normal(name)) = path.components().next_back() else {
                    return Err(io::Error::new(io::ErrorKind::InvalidInput, "a path with . or .. in it"));
                };
                let (parent, follow) = self.dir_trust(parent)?;
                (open_dir(Some(parent.as_raw_fd()), Path::new(name), follow)?, follow)
            }
        };
        if let Some(&made) = self.made.lock().expect("folders lock").get(path) {
            if ids(&nix::sys::stat::fstat(dir.as_raw_fd())?) != made {
                return Err(other("another folder is at its place than the one this restore made or planned with"));
            }
        }
        let follow = chain && trusted(&dir)?;
        let entry = (Arc::new(dir), follow);
        let mut open = self.open.lock().expect("folders lock");
        if open.len() >= CACHE {
            open.clear();
        }
        open.insert(path.to_path_buf(), entry.clone());
        Ok(entry)
    }

    /// The folder holding `path`, and `path`'s name in it.
    pub(crate) fn parent_of<'p>(&self, path: &'p Path) -> io::Result<(Dir, &'p OsStr)> {
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => Ok((self.dir(parent)?, name)),
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "no folder holds it")),
        }
    }

    /// Creates every missing folder of the absolute `path` (as `mkdir -p` does: the umask
    /// decides their mode), each inside a folder opened by handle, and holds each one made:
    /// a folder put at its name meanwhile (one of root's that she renamed there) is refused,
    /// never written into.
    pub(crate) fn make_all(&self, path: &Path) -> io::Result<()> {
        if self.dir(path).is_ok() {
            return Ok(());
        }
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no folder holds it"));
        };
        self.make_all(parent)?;
        let dir = self.dir(parent)?;
        make_dir(&dir, name, 0o777)?;
        let made = open_dir(Some(dir.as_raw_fd()), Path::new(name), false)?;
        let st = nix::sys::stat::fstat(made.as_raw_fd())?;
        let made: Dir = Arc::new(made);
        if st.st_uid != nix::unistd::geteuid().as_raw() || !entries(&made)?.is_empty() {
            return Err(other("another folder was put where the restore made one"));
        }
        self.hold(path, made, ids(&st));
        Ok(())
    }

    /// Holds `dir`, a folder this restore made (as `made`), as the folder at `path`: every
    /// entry put in it goes into that very folder, and opened again from its path it must
    /// still be that folder. Nothing in it is followed.
    pub(crate) fn hold(&self, path: &Path, dir: Dir, made: Ids) {
        self.made.lock().expect("folders lock").insert(path.to_path_buf(), made);
        self.open.lock().expect("folders lock").insert(path.to_path_buf(), (dir, false));
    }

    /// The folder at `path` must be `seen`, the one the plan looked at, whenever it is opened:
    /// a folder someone renamed to its path since (one of root's in a folder of hers) is never
    /// written into nor given the backup's metadata. Before anything is opened.
    /// [`NOT_SEEN`]: nothing stood there, and only a folder this restore makes may be used.
    pub(crate) fn expect(&self, path: &Path, seen: Ids) {
        self.made.lock().expect("folders lock").insert(path.to_path_buf(), seen);
    }

    /// Forgets every open folder (after renames, a path may name another folder).
    pub(crate) fn forget(&self) {
        self.open.lock().expect("folders lock").clear();
    }
}

/// Whether `path` and every folder from `/` to it are real folders (no symlink) of root's or
/// this user's in which nobody else can rename or replace what root or this user owns: not
/// writable by others, or writable with the sticky bit (as `/tmp`: others may add entries of
/// their own there, never move ours). Looked at by path: if every step is so, nobody else can
/// change the answer meanwhile.
pub(crate) fn trusted_all_the_way(path: &Path) -> bool {
    let me = nix::unistd::geteuid().as_raw();
    path.is_absolute()
        && path.ancestors().all(|p| {
            std::fs::symlink_metadata(p).is_ok_and(|m| {
                use std::os::unix::fs::MetadataExt;
                let sticky = m.mode() & 0o1000 != 0;
                m.is_dir() && (m.uid() == 0 || m.uid() == me) && (m.mode() & 0o022 == 0 || sticky)
            })
        })
}

/// Whether only root or this user can change this folder: a symlink in it may be followed,
/// and a step by name in it reaches what this restore put there and nothing else.
pub(crate) fn trusted(dir: &OwnedFd) -> io::Result<bool> {
    let st = nix::sys::stat::fstat(dir.as_raw_fd())?;
    let me = nix::unistd::geteuid().as_raw();
    Ok((st.st_uid == 0 || st.st_uid == me) && st.st_mode & 0o022 == 0)
}

fn open_dir(parent: Option<RawFd>, name: &Path, follow: bool) -> io::Result<OwnedFd> {
    let mut flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    if !follow {
        flags |= OFlag::O_NOFOLLOW;
    }
    let fd = nix::fcntl::openat(parent, name, flags, Mode::empty())?;
    // SAFETY: `openat` just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What stands at `name` in `dir`, never following a symlink; None when nothing does.
pub(crate) fn stat(dir: &Dir, name: &OsStr) -> io::Result<Option<nix::sys::stat::FileStat>> {
    match nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Opens the folder `name` in `dir`, never through a symlink.
pub(crate) fn open_child(dir: &Dir, name: &OsStr) -> io::Result<File> {
    Ok(File::from(open_dir(Some(dir.as_raw_fd()), Path::new(name), false)?))
}

pub(crate) fn make_dir(dir: &Dir, name: &OsStr, mode: u32) -> io::Result<()> {
    Ok(nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(mode))?)
}

/// Creates the new file `name` in `dir` for writing; never opens anything already there.
pub(crate) fn create_file(dir: &Dir, name: &OsStr, mode: u32) -> io::Result<File> {
    lifeboat_storage::faults::crash_point();
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(Some(dir.as_raw_fd()), name, flags, Mode::from_bits_truncate(mode & 0o777))?;
    // SAFETY: `openat` just returned this descriptor; nothing else owns it.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Opens again for writing the file this restore created at `name` in `dir`, as the inode
/// `ino`: anything else put there meanwhile (a link, a FIFO, another file) is refused before it
/// is opened for anything but a handle (opening a device or FIFO can do something by itself).
pub(crate) fn reopen_file(dir: &Dir, name: &OsStr, ino: u64) -> io::Result<File> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(Some(dir.as_raw_fd()), name, flags, Mode::empty())?;
    // SAFETY: `openat` just returned this descriptor; nothing else owns it.
    let held = unsafe { OwnedFd::from_raw_fd(fd) };
    let st = nix::sys::stat::fstat(held.as_raw_fd())?;
    if st.st_ino != ino || st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(other("the file being restored was replaced by something else"));
    }
    // The handle's path in /proc opens that very inode again, for writing.
    let flags = OFlag::O_WRONLY | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::open(format!("/proc/self/fd/{}", held.as_raw_fd()).as_str(), flags, Mode::empty())?;
    // SAFETY: `open` just returned this descriptor; nothing else owns it.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

pub(crate) fn symlink(dir: &Dir, name: &OsStr, target: &OsStr) -> io::Result<()> {
    Ok(nix::unistd::symlinkat(target, Some(dir.as_raw_fd()), name)?)
}

pub(crate) fn special(dir: &Dir, name: &OsStr, kind: SFlag, mode: u32, rdev: u64) -> io::Result<()> {
    Ok(nix::sys::stat::mknodat(Some(dir.as_raw_fd()), name, kind, Mode::from_bits_truncate(mode), rdev)?)
}

/// A second name for the file at `from` (never through a symlink), where nobody else can
/// change `from`'s folder (a restore's private copy).
pub(crate) fn link(from: (&Dir, &OsStr), to: (&Dir, &OsStr)) -> io::Result<()> {
    Ok(nix::unistd::linkat(
        Some(from.0.as_raw_fd()),
        from.1,
        Some(to.0.as_raw_fd()),
        to.1,
        // No flag: a symlink at `from` is linked itself, never followed.
        nix::fcntl::AtFlags::empty(),
    )?)
}

/// Renames `from` to `to` in one folder; `flags` as for `renameat2`.
pub(crate) fn rename(dir: &Dir, from: &OsStr, to: &OsStr, flags: RenameFlags) -> io::Result<()> {
    lifeboat_storage::faults::crash_point();
    Ok(nix::fcntl::renameat2(Some(dir.as_raw_fd()), from, Some(dir.as_raw_fd()), to, flags)?)
}

/// Removes the entry `name` of `dir` (an empty folder with `folder`).
pub(crate) fn remove(dir: &Dir, name: &OsStr, folder: bool) -> io::Result<()> {
    lifeboat_storage::faults::crash_point();
    let flag = if folder { UnlinkatFlags::RemoveDir } else { UnlinkatFlags::NoRemoveDir };
    Ok(nix::unistd::unlinkat(Some(dir.as_raw_fd()), name, flag)?)
}

/// Removes `name` of `dir`, an entry this restore made as `made` (None when that is not known,
/// as after a crash): anything else put at its name since is left as it is, and that is an
/// error. Missing is fine.
///
/// - A folder goes with everything in it only while it is that very folder: opened by handle
///   (never through a symlink) and checked by inode, then emptied through handles, each folder
///   in it only while nobody else can change it. Not known, it goes only when empty. Emptying
///   by name a folder someone put there would remove what she cannot (root's files in it).
/// - Anything else is unlinked: one name in a folder, which whoever can write in that folder
///   could remove herself (a sticky folder lets nobody put another's entry at a name of root's).
///   Known, it must still be that inode.
pub(crate) fn remove_made(dir: &Dir, name: &OsStr, made: Option<Ids>) -> io::Result<()> {
    lifeboat_storage::faults::crash_point();
    let Some(st) = stat(dir, name)? else { return Ok(()) };
    let not_made = || other("not what this restore made there: left as it is");
    if made.is_some_and(|m| m != ids(&st)) {
        return Err(not_made());
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return remove(dir, name, false);
    }
    let inner: Dir = Arc::new(OwnedFd::from(open_child(dir, name)?));
    let now = ids(&nix::sys::stat::fstat(inner.as_raw_fd())?);
    match made {
        Some(m) if m == now => empty(&inner)?,
        Some(_) => return Err(not_made()),
        None => {}
    }
    match remove(dir, name, true) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) => Err(not_made()),
        r => r,
    }
}

/// Removes everything in `dir`, a folder this restore made, through handles. Nobody else can
/// reach into it (0700 until the commit sets its metadata, which it never does at a temporary
/// name): every folder in it is one this user owns, or it is left.
fn empty(dir: &Dir) -> io::Result<()> {
    if nix::sys::stat::fstat(dir.as_raw_fd())?.st_uid != nix::unistd::geteuid().as_raw() {
        return Err(other("a folder of someone else's: left as it is"));
    }
    for name in entries(dir)? {
        let Some(st) = stat(dir, &name)? else { continue };
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            let inner: Dir = Arc::new(OwnedFd::from(open_child(dir, &name)?));
            empty(&inner)?;
            remove(dir, &name, true)?;
        } else {
            remove(dir, &name, false)?;
        }
    }
    Ok(())
}

/// Makes a room in `dir` named `name`: a folder (0700) where only root or this user can
/// change a name, so that an entry made there by name and its metadata set by name are the
/// entry this restore made, whoever can write in `dir`. Returns it held open, and its inode.
pub(crate) fn make_room(dir: &Dir, name: &OsStr) -> io::Result<(Dir, Ids)> {
    make_dir(dir, name, 0o700)?;
    let room: Dir = Arc::new(OwnedFd::from(open_child(dir, name)?));
    // Between the two calls someone who can write in `dir` may have put another folder at
    // the name: only one nobody else can change, holding nothing, is as good as the one made.
    if !trusted(&room)? || !entries(&room)?.is_empty() {
        return Err(other("another folder was put at the name of the restore's own folder"));
    }
    Ok((room.clone(), ids(&nix::sys::stat::fstat(room.as_raw_fd())?)))
}

/// Moves `name` of `from` to `to` in `dir`, never over anything (across folders of one file
/// system).
pub(crate) fn move_out(from: &Dir, name: &OsStr, (dir, to): (&Dir, &OsStr)) -> io::Result<()> {
    lifeboat_storage::faults::crash_point();
    let flags = RenameFlags::RENAME_NOREPLACE;
    Ok(nix::fcntl::renameat2(Some(from.as_raw_fd()), name, Some(dir.as_raw_fd()), to, flags)?)
}

/// A second name `to` for the file this restore made at `from` as `made`: the name is opened
/// (never through a symlink), checked to be that inode, and the link made from the handle, so
/// whatever was put at `from` since is never linked.
pub(crate) fn link_made(from: (&Dir, &OsStr), made: Ids, to: (&Dir, &OsStr)) -> io::Result<()> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(Some(from.0.as_raw_fd()), from.1, flags, Mode::empty())?;
    // SAFETY: `openat` just returned this descriptor; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    if ids(&nix::sys::stat::fstat(fd.as_raw_fd())?) != made {
        return Err(other("its first name holds another file now"));
    }
    // The handle's path in /proc, followed: the very inode held (no privilege needed, unlike
    // `AT_EMPTY_PATH`).
    let held = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    Ok(nix::unistd::linkat(
        None,
        held.as_os_str(),
        Some(to.0.as_raw_fd()),
        to.1,
        nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
    )?)
}

/// Puts back the access and change times `meta` had on the folder at the absolute `path`,
/// reached by handle (a folder above it swapped for a symlink is not followed, nor one at
/// `path`), only while it is the folder `meta` was read from.
pub(crate) fn set_times(path: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    let folders = Folders::default();
    let (dir, name) = folders.parent_of(path)?;
    // A handle that needs no right to read the folder, as setting times by name needed none.
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(Some(dir.as_raw_fd()), name, flags, Mode::empty())?;
    // SAFETY: `openat` just returned this descriptor; nothing else owns it.
    let folder = unsafe { OwnedFd::from_raw_fd(fd) };
    if ids(&nix::sys::stat::fstat(folder.as_raw_fd())?) != (meta.dev(), meta.ino()) {
        return Err(other("another folder is at its place now"));
    }
    let a = nix::sys::time::TimeSpec::new(meta.atime(), meta.atime_nsec());
    let m = nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    // `futimens` refuses an `O_PATH` handle; its path in /proc, followed, is that very folder.
    let held = format!("/proc/self/fd/{}", folder.as_raw_fd());
    let flags = nix::sys::stat::UtimensatFlags::FollowSymlink;
    Ok(nix::sys::stat::utimensat(None, held.as_str(), &a, &m, flags)?)
}

/// The names in a folder held open (without `.` and `..`).
pub(crate) fn entries(dir: &Dir) -> io::Result<Vec<OsString>> {
    std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))?.map(|e| e.map(|e| e.file_name())).collect()
}

/// The path of an entry of a folder held open, for calls that take only paths (extended
/// attributes of a symlink): `/proc/self/fd/N/NAME`, resolved through the handle.
pub(crate) fn through(dir: &Dir, name: &OsStr) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(path: &Path) -> Dir {
        Folders::default().dir(path).expect("a folder of the test")
    }

    fn ids_at(path: &Path) -> Ids {
        let m = std::fs::symlink_metadata(path).expect("made");
        (m.dev(), m.ino())
    }

    #[test]
    fn a_temporary_name_goes_whole_only_while_it_is_the_folder_made() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = held(tmp.path());
        let made = tmp.path().join(".lifeboat-t-1");
        std::fs::create_dir_all(made.join("inner")).expect("mkdir");
        std::fs::write(made.join("inner/f"), "f").expect("write");
        let ids = ids_at(&made);
        // Moved away, and another folder (holding something) put at its name: left whole.
        std::fs::rename(&made, tmp.path().join("moved")).expect("rename");
        std::fs::create_dir_all(made.join("theirs")).expect("mkdir");
        std::fs::write(made.join("theirs/keep"), "keep").expect("write");
        let name = OsStr::new(".lifeboat-t-1");
        assert!(remove_made(&dir, name, Some(ids)).is_err());
        assert!(remove_made(&dir, name, None).is_err(), "not known: only an empty folder goes");
        assert_eq!(std::fs::read_to_string(made.join("theirs/keep")).expect("kept"), "keep");
        // A file put at its name is not the folder made either.
        std::fs::remove_dir_all(&made).expect("rm");
        std::fs::write(&made, "theirs").expect("write");
        assert!(remove_made(&dir, name, Some(ids)).is_err());
        assert!(made.exists());
        // The folder made, back at its name, goes with what it holds.
        std::fs::remove_file(&made).expect("rm");
        std::fs::rename(tmp.path().join("moved"), &made).expect("rename");
        remove_made(&dir, name, Some(ids)).expect("removed");
        assert!(!made.exists());
        // Nothing there is fine.
        remove_made(&dir, name, Some(ids)).expect("nothing to remove");
    }

    #[test]
    fn a_hard_link_is_made_only_to_the_file_made() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = held(tmp.path());
        std::fs::write(tmp.path().join("first"), "ours").expect("write");
        let ids = ids_at(&tmp.path().join("first"));
        std::fs::rename(tmp.path().join("first"), tmp.path().join("away")).expect("rename");
        std::fs::write(tmp.path().join("first"), "theirs").expect("write");
        let (first, second) = (OsStr::new("first"), OsStr::new("second"));
        assert!(link_made((&dir, first), ids, (&dir, second)).is_err());
        assert!(!tmp.path().join("second").exists());
        std::fs::rename(tmp.path().join("away"), tmp.path().join("first")).expect("rename");
        link_made((&dir, first), ids, (&dir, second)).expect("linked");
        assert_eq!(ids_at(&tmp.path().join("second")), ids);
    }
}
