//! Folder times a restore puts back: the folders that hold what it changes, outside the
//! folders it restores, stay as they were.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Puts back a folder's access and change times as `meta` had them.
pub(crate) fn set_times(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    let a = nix::sys::time::TimeSpec::new(meta.atime(), meta.atime_nsec());
    let m = nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    nix::sys::stat::utimensat(None, path, &a, &m, nix::sys::stat::UtimensatFlags::NoFollowSymlink)
        .map_err(io::Error::from)
}
