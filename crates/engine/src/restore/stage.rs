//! The staging copy of an in-place restore: a root's folder is rebuilt beside itself from
//! what the plan keeps of it (files hard-linked, so no data is copied and the live files are
//! never opened for writing), the restore writes the rest into it, and only a complete copy
//! is swapped in.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::fsops;
use super::plan::{Carry, Root};

/// What a staging copy takes of the entry at a final path.
pub(crate) type Decide<'a> = dyn Fn(&Path) -> Carry + 'a;

/// Starts the working copy of `root` from what `decide` carries over from its destination.
/// A root inside another root's staging copy replaces what that copy took of its place.
pub(crate) fn prepare(root: &Root, decide: &Decide<'_>) -> io::Result<()> {
    fsops::remove_any(&root.work)?;
    let Ok(meta) = fs::symlink_metadata(&root.dest) else { return Ok(()) };
    match decide(&root.dest) {
        Carry::Drop => Ok(()),
        Carry::Whole if !meta.is_dir() => fs::hard_link(&root.dest, &root.work),
        Carry::Whole => copy_dir(&root.dest, &root.work, &meta, &|_| Carry::Whole),
        Carry::Descend => copy_dir(&root.dest, &root.work, &meta, decide),
    }
}

/// A folder of its own at `work` with what `decide` carries of each entry, then the live
/// folder's owner, mode, extended attributes and times.
fn copy_dir(live: &Path, work: &Path, meta: &fs::Metadata, decide: &Decide<'_>) -> io::Result<()> {
    fs::create_dir(work)?;
    for entry in fs::read_dir(live)? {
        let entry = entry?;
        let from = entry.path();
        let to = work.join(entry.file_name());
        let m = fs::symlink_metadata(&from)?;
        match decide(&from) {
            Carry::Drop => {}
            Carry::Whole if !m.is_dir() => fs::hard_link(&from, &to)?,
            Carry::Whole => copy_dir(&from, &to, &m, &|_| Carry::Whole)?,
            Carry::Descend => copy_dir(&from, &to, &m, decide)?,
        }
    }
    copy_folder_metadata(work, meta, live)
}

fn copy_folder_metadata(dst: &Path, meta: &fs::Metadata, src: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if nix::unistd::geteuid().is_root() {
        let _ = std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()));
    }
    if let Ok(names) = xattr::list(src) {
        for name in names {
            if let Ok(Some(value)) = xattr::get(src, &name) {
                let _ = xattr::set(dst, &name, &value);
            }
        }
    }
    fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    set_times(dst, meta)
}

/// Puts back a folder's access and change times as `meta` had them.
pub(crate) fn set_times(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    let a = nix::sys::time::TimeSpec::new(meta.atime(), meta.atime_nsec());
    let m = nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    nix::sys::stat::utimensat(None, path, &a, &m, nix::sys::stat::UtimensatFlags::NoFollowSymlink)
        .map_err(io::Error::from)
}
