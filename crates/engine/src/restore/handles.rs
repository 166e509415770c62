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
    /// decides their mode), each inside a folder opened by handle.
    pub(crate) fn make_all(&self, path: &Path) -> io::Result<()> {
        if self.dir(path).is_ok() {
            return Ok(());
        }
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no folder holds it"));
        };
        self.make_all(parent)?;
        match make_dir(&self.dir(parent)?, name, 0o777) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            r => r,
        }
    }

    /// Forgets every open folder (after renames, a path may name another folder).
    pub(crate) fn forget(&self) {
        self.open.lock().expect("folders lock").clear();
    }
}

/// Whether a symlink in this folder may be followed: only root or this user can change it.
fn trusted(dir: &OwnedFd) -> io::Result<bool> {
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
/// `ino`: anything else put there meanwhile (a link, a FIFO, another file) is refused.
pub(crate) fn reopen_file(dir: &Dir, name: &OsStr, ino: u64) -> io::Result<File> {
    let flags = OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(Some(dir.as_raw_fd()), name, flags, Mode::empty())?;
    // SAFETY: `openat` just returned this descriptor; nothing else owns it.
    let f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    if f.metadata()?.ino() != ino {
        return Err(io::Error::other("the file being restored was replaced by something else"));
    }
    Ok(f)
}

pub(crate) fn symlink(dir: &Dir, name: &OsStr, target: &OsStr) -> io::Result<()> {
    Ok(nix::unistd::symlinkat(target, Some(dir.as_raw_fd()), name)?)
}

pub(crate) fn special(dir: &Dir, name: &OsStr, kind: SFlag, mode: u32, rdev: u64) -> io::Result<()> {
    Ok(nix::sys::stat::mknodat(Some(dir.as_raw_fd()), name, kind, Mode::from_bits_truncate(mode), rdev)?)
}

/// A second name for the file at `from` (never through a symlink).
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

/// Removes `name` of `dir` with everything in it, never following a symlink. Missing is fine.
pub(crate) fn remove_tree(dir: &Dir, name: &OsStr) -> io::Result<()> {
    let Some(st) = stat(dir, name)? else { return Ok(()) };
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return remove(dir, name, false);
    }
    let inner: Dir = Arc::new(OwnedFd::from(open_child(dir, name)?));
    for entry in entries(&inner)? {
        remove_tree(&inner, &entry)?;
    }
    remove(dir, name, true)
}

/// Puts back the access and change times `meta` had on the entry at the absolute `path`,
/// reached by handle (a folder above it swapped for a symlink is not followed), never
/// following a symlink at `path` itself either.
pub(crate) fn set_times(path: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    let folders = Folders::default();
    let (dir, name) = folders.parent_of(path)?;
    let a = nix::sys::time::TimeSpec::new(meta.atime(), meta.atime_nsec());
    let m = nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    let flags = nix::sys::stat::UtimensatFlags::NoFollowSymlink;
    Ok(nix::sys::stat::utimensat(Some(dir.as_raw_fd()), name, &a, &m, flags)?)
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
