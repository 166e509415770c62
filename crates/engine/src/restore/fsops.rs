//! File system steps of a restore that never follow a symlink they did not create.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::OpenOptionsExt;

use lifeboat_storage::faults::crash_point;

use std::path::Path;

/// Removes whatever is at `path` (a file, a symlink, a whole folder). Missing is fine.
pub(crate) fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes `path` a real folder: an existing folder stays (with its other contents), anything
/// else there (a file, a symlink) is replaced.
pub(crate) fn ensure_dir(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => {
            fs::remove_file(path)?;
            fs::create_dir(path)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => ensure_dir(path),
            r => r,
        },
        Err(e) => Err(e),
    }
}

/// Creates every folder from `base` down to `path`, replacing symlinks on the way, so a
/// target seeded with links cannot send the restore elsewhere.
pub(crate) fn ensure_real_dirs(base: &Path, path: &Path) -> io::Result<()> {
    fs::create_dir_all(base)?;
    let Ok(rel) = path.strip_prefix(base) else { return fs::create_dir_all(path) };
    let mut cur = base.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        ensure_dir(&cur)?;
    }
    Ok(())
}

/// Opens a file for writing from the start, replacing whatever is there. Returns whether the
/// file is new (created with `mode` less the umask, owned by this process), so callers can
/// skip setting what is already right.
///
/// With `unlink_first`, an existing file is removed rather than truncated: in a staging copy
/// made of hard links, truncating would change the live file it shares its data with.
pub(crate) fn create_file(path: &Path, mode: u32, unlink_first: bool) -> io::Result<(File, bool)> {
    crash_point();
    if unlink_first {
        match fs::symlink_metadata(path) {
            Ok(m) if !m.is_dir() => fs::remove_file(path)?,
            _ => {}
        }
    }
    let fresh = File::options()
        .write(true)
        .create_new(true)
        .mode(mode & 0o777)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path);
    match fresh {
        Ok(f) => return Ok((f, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let open = || {
        File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
    };
    let f = match open() {
        Ok(f) => f,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::EISDIR) | Some(libc::ETXTBSY)) => {
            remove_any(path)?;
            open()?
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            // A read-only file we own: replace it rather than fail.
            fs::remove_file(path)?;
            open()?
        }
        Err(e) => return Err(e),
    };
    Ok((f, false))
}
