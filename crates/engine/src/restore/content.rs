//! Whether a file on this device holds what a backup's entry holds, by content: its bytes are
//! read at the backup's own chunk boundaries (each blob's length, from the index) and each
//! piece is hashed the way the backup named it. No chunking is redone, so a sparse file, a
//! streamed one and a small one compare alike, and nothing is read from the location.

use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use lifeboat_repository::{Id, Repository};

/// What comparing found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    Same,
    Differs,
    /// The file cannot be opened (or is no longer a regular file), or a blob's length is
    /// unknown: nothing is concluded.
    Unknown,
}

/// Compares the file at `path` (never through a symbolic link) with `content`, the blob ids
/// of a backup's entry.
pub(crate) fn compare(repo: &Repository, path: &Path, content: &[Id]) -> Content {
    // Never through a link, and never waiting: something swapped in for the file since it was
    // looked at (a FIFO, say) is not opened for good, and is no regular file.
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let Ok(file) = File::options().read(true).custom_flags(flags | libc::O_NOATIME).open(path).or_else(
        // O_NOATIME is refused for files another user owns.
        |_| File::options().read(true).custom_flags(flags).open(path),
    ) else {
        return Content::Unknown;
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Content::Unknown;
    }
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    for id in content {
        let Some(len) = repo.blob_length(id).and_then(|l| usize::try_from(l).ok()) else { return Content::Unknown };
        buf.resize(len, 0);
        // Shorter than the backup's, or unreadable (a bad sector): either way, restore it.
        if reader.read_exact(&mut buf).is_err() {
            return Content::Differs;
        }
        if repo.blob_id(&buf) != *id {
            return Content::Differs;
        }
    }
    match reader.read(&mut [0u8; 1]) {
        Ok(0) => Content::Same,
        _ => Content::Differs,
    }
}
