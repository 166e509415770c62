//! Turning a unit's paths into trees and blobs. Folders are walked in parallel (rayon's work
//! stealing spreads subfolders and files over every core); each file is read, cut, hashed,
//! compressed and sealed on the thread that found it; full packs go to upload threads.

use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use lifeboat_repository::{BlobKind, BlobWriter, Id, Node, NodeKind, Repository, Tree, WHOLE_READ_LIMIT};
use rayon::prelude::*;

use super::overlap::Overlaps;
use crate::meta::{self, NameCache};
use crate::progress::Progress;
use crate::runlog::RunLog;
use crate::unit::Filter;
use crate::{EngineError, EngineResult};

/// Chunks of a large file processed side by side.
const PARALLEL_CHUNKS: usize = 4;

pub(crate) struct Archiver<'a> {
    pub repo: &'a Repository,
    pub writer: &'a BlobWriter,
    pub filter: &'a Filter,
    pub progress: &'a Progress,
    pub log: &'a RunLog,
    pub names: &'a NameCache,
    pub overlaps: &'a Overlaps,
    pub files: AtomicU64,
    pub dirs: AtomicU64,
    pub bytes: AtomicU64,
    pub warnings: std::sync::Mutex<Vec<String>>,
    /// Bytes read from disk (not taken from the previous backup).
    pub read: &'a AtomicU64,
}

impl Archiver<'_> {
    fn warn(&self, msg: String) {
        self.log.warn(self.progress, &msg);
        self.warnings.lock().expect("warnings lock").push(msg);
    }

    fn check_cancel(&self) -> EngineResult<()> {
        if self.progress.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        Ok(())
    }

    /// Archives one configured path. `None` (with a warning) when it does not exist.
    pub(crate) fn warn_unit(&self, msg: String) {
        self.warn(msg);
    }

    pub fn root(&self, abs: &Path, parent: Option<&Node>) -> EngineResult<Option<Node>> {
        let meta = match std::fs::symlink_metadata(abs) {
            Ok(m) => m,
            Err(e) => {
                self.warn(format!("{}: {}", abs.display(), describe_io(&e)));
                return Ok(None);
            }
        };
        let name = abs.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| OsString::from("/"));
        self.entry(abs, Path::new(""), &name, meta, parent)
    }

    /// Archives a database: the entry's metadata from the live file, its content from the
    /// consistent copy at `copy`.
    pub fn database(&self, abs: &Path, copy: &Path) -> EngineResult<Option<Node>> {
        let (meta, copy_meta) = match (std::fs::metadata(abs), std::fs::metadata(copy)) {
            (Ok(m), Ok(c)) => (m, c),
            (Err(e), _) | (_, Err(e)) => {
                self.warn(format!("{}: {}", abs.display(), describe_io(&e)));
                return Ok(None);
            }
        };
        let name = abs.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        let mut node = match meta::node_from(&name, abs, &meta, self.names) {
            Ok(n) => n,
            Err(e) => {
                self.warn(format!("{}: {}", abs.display(), describe_io(&e)));
                return Ok(None);
            }
        };
        match self.read_file(copy, &copy_meta) {
            Ok((content, _, _)) => {
                node.content = content;
                node.size = copy_meta.size();
                node.kind = NodeKind::File;
                self.read.fetch_add(node.size, Ordering::Relaxed);
                self.files.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(node.size, Ordering::Relaxed);
                self.overlaps.record(abs, &node);
                Ok(Some(node))
            }
            Err(ReadError::Fatal(e)) => Err(e),
            Err(ReadError::Io(e)) => {
                self.warn(format!("{}: copy unreadable: {}", abs.display(), describe_io(&e)));
                Ok(None)
            }
        }
    }

    fn entry(
        &self,
        abs: &Path,
        rel: &Path,
        name: &OsString,
        meta: Metadata,
        parent: Option<&Node>,
    ) -> EngineResult<Option<Node>> {
        self.check_cancel()?;
        let mut node = match meta::node_from(name, abs, &meta, self.names) {
            Ok(n) => n,
            Err(e) => {
                self.warn(format!("{}: {}", abs.display(), describe_io(&e)));
                return Ok(None);
            }
        };
        match node.kind {
            NodeKind::Dir => {
                let parent_tree = parent.filter(|p| p.kind == NodeKind::Dir).and_then(|p| p.subtree);
                node.subtree = Some(self.dir(abs, rel, parent_tree)?);
                self.dirs.fetch_add(1, Ordering::Relaxed);
            }
            NodeKind::File => {
                let reused = parent
                    .filter(|p| meta::unchanged(p, &meta))
                    .filter(|p| p.content.iter().all(|id| self.repo.has_blob(id)));
                match (self.overlaps.earlier(abs, &meta), reused) {
                    // Archived already in this run through another configured path: neither
                    // read nor counted in the progress again.
                    (Some(earlier), _) => node.content = earlier.content,
                    (None, Some(p)) => {
                        node.content = p.content.clone();
                        self.progress.add(1, node.size);
                    }
                    (None, None) => match self.read_file(abs, &meta) {
                        Ok((content, changed, holes)) => {
                            let size = changed.as_ref().map_or(node.size, |c| c.size);
                            // Holes are never read from the disk.
                            self.read.fetch_add(size.saturating_sub(holes), Ordering::Relaxed);
                            if let Some(c) = changed {
                                self.warn(format!("{}: {}; backed up as read", abs.display(), c.how));
                                node.size = c.size;
                            }
                            node.content = content;
                        }
                        Err(ReadError::Fatal(e)) => return Err(e),
                        Err(ReadError::Io(e)) => {
                            self.warn(format!("{}: {}; not backed up", abs.display(), describe_io(&e)));
                            return Ok(None);
                        }
                    },
                }
                self.files.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(node.size, Ordering::Relaxed);
                self.overlaps.record(abs, &node);
            }
            _ => {
                self.files.fetch_add(1, Ordering::Relaxed);
                self.overlaps.record(abs, &node);
            }
        }
        Ok(Some(node))
    }

    fn dir(&self, abs: &Path, rel: &Path, parent_tree: Option<Id>) -> EngineResult<Id> {
        let parent: Option<Tree> = match parent_tree {
            Some(id) => match self.repo.read_tree(&id) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.log.info(&format!("{}: previous listing unreadable ({e}); reading every file", abs.display()));
                    None
                }
            },
            None => None,
        };
        // The entries are kept, not only their names: an entry's metadata is looked up
        // relative to the folder's open descriptor (statx at the folder), not by walking the
        // whole path again, which was a tenth of an unchanged backup's time.
        let mut entries: Vec<(OsString, std::fs::DirEntry)> = match std::fs::read_dir(abs) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| (e.file_name(), e))).collect(),
            Err(e) => {
                self.warn(format!("{}: {}; its contents are not backed up", abs.display(), describe_io(&e)));
                Vec::new()
            }
        };
        entries.sort_by(|(a, _), (b, _)| {
            std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str())
                .cmp(std::os::unix::ffi::OsStrExt::as_bytes(b.as_os_str()))
        });
        let nodes: Vec<Option<Node>> = entries
            .par_iter()
            .map(|(name, entry)| {
                let child = abs.join(name);
                let child_rel = rel.join(name);
                // Never follows a symbolic link, as `symlink_metadata`.
                let meta = match entry.metadata() {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        self.warn(format!("{}: vanished during the backup", child.display()));
                        return Ok(None);
                    }
                    Err(e) => {
                        self.warn(format!("{}: {}", child.display(), describe_io(&e)));
                        return Ok(None);
                    }
                };
                if self.filter.excludes(&child, &child_rel, meta.is_dir()) {
                    return Ok(None);
                }
                let old = parent.as_ref().and_then(|t| {
                    t.nodes
                        .binary_search_by(|n| {
                            n.name.0.as_slice().cmp(std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str()))
                        })
                        .ok()
                        .map(|i| &t.nodes[i])
                });
                self.entry(&child, &child_rel, name, meta, old)
            })
            .collect::<EngineResult<Vec<_>>>()?;
        let tree = Tree { nodes: nodes.into_iter().flatten().collect() };
        let (id, _) = self.writer.add(BlobKind::Tree, &Repository::encode_tree(&tree))?;
        Ok(id)
    }

    /// Reads and stores a file's content. Also returns the bytes actually read when the file
    /// changed while it was read.
    /// Also returns the bytes of holes that were skipped, not read.
    fn read_file(&self, abs: &Path, meta: &Metadata) -> Result<FileRead, ReadError> {
        let file = open_for_reading(abs)?;
        lifeboat_storage::faults::pause_point(|| format!("read {}", abs.display()));
        let size = meta.size();
        let mut ids = Vec::new();
        let chunker = self.repo.chunker();
        if size > WHOLE_READ_LIMIT {
            return self.stream_file(abs, meta);
        }
        let mut buf = Vec::with_capacity(size as usize + 1);
        (&file).take(WHOLE_READ_LIMIT + 1).read_to_end(&mut buf)?;
        // A file that grew past the limit while we read it is streamed instead.
        let read_bytes = (buf.len() as u64 <= WHOLE_READ_LIMIT).then_some(buf.len() as u64);
        if read_bytes.is_some() {
            for chunk in chunker.cut(&buf) {
                let (id, _) = self.writer.add(BlobKind::Data, chunk).map_err(|e| ReadError::Fatal(e.into()))?;
                ids.push(id);
            }
        }
        drop(buf);
        let Some(read_bytes) = read_bytes else { return self.stream_file(abs, meta) };
        self.progress.add(0, read_bytes);
        self.progress.add(1, 0);
        Ok((ids, changed(&file, abs, meta, read_bytes)?, 0))
    }

    fn stream_file(&self, abs: &Path, meta: &Metadata) -> Result<FileRead, ReadError> {
        let file = open_for_reading(abs)?;
        if let Some(extents) = data_extents(&file, meta) {
            return self.stream_sparse(&file, abs, meta, &extents);
        }
        let (ids, read_bytes) = self.stream_range(&file)?;
        self.progress.add(1, 0);
        Ok((ids, changed(&file, abs, meta, read_bytes)?, 0))
    }

    /// A sparse file: its data extents are read and cut, its holes are stored as blobs of
    /// zeros without reading them (one blob per distinct length, hashed once).
    fn stream_sparse(
        &self,
        mut file: &File,
        abs: &Path,
        meta: &Metadata,
        extents: &[(u64, u64)],
    ) -> Result<FileRead, ReadError> {
        use std::io::{Seek, SeekFrom};
        let piece = self.repo.chunker().max_size() as u64;
        let mut zero_ids: std::collections::HashMap<u64, Id> = std::collections::HashMap::new();
        let mut ids = Vec::new();
        let mut at = 0u64;
        let mut holes = 0u64;
        let mut zeros = |len: u64, ids: &mut Vec<Id>| -> Result<(), ReadError> {
            holes += len;
            let mut left = len;
            while left > 0 {
                self.check_cancel().map_err(ReadError::Fatal)?;
                let n = left.min(piece);
                let id = match zero_ids.get(&n) {
                    Some(id) => *id,
                    None => {
                        let (id, _) = self
                            .writer
                            .add(BlobKind::Data, &vec![0u8; n as usize])
                            .map_err(|e| ReadError::Fatal(e.into()))?;
                        zero_ids.insert(n, id);
                        id
                    }
                };
                ids.push(id);
                self.progress.add(0, n);
                left -= n;
            }
            Ok(())
        };
        let mut ended_early = false;
        for &(start, end) in extents {
            zeros(start - at, &mut ids)?;
            file.seek(SeekFrom::Start(start))?;
            let (data, n) = self.stream_range(&mut file.take(end - start))?;
            ids.extend(data);
            at = start + n;
            if n < end - start {
                // The file shrank meanwhile: what was read is all there is.
                ended_early = true;
                break;
            }
        }
        if !ended_early {
            zeros(meta.size().saturating_sub(at), &mut ids)?;
            at = at.max(meta.size());
        }
        self.progress.add(1, 0);
        let read_bytes = at;
        Ok((ids, changed(file, abs, meta, read_bytes)?, holes))
    }

    /// Reads a stream to its end and stores it cut into chunks; the ids and bytes read.
    fn stream_range(&self, reader: impl Read) -> Result<(Vec<Id>, u64), ReadError> {
        let chunker = self.repo.chunker();
        let mut ids = Vec::new();
        let mut read_bytes = 0u64;
        let mut chunks = chunker.stream(reader);
        loop {
            self.check_cancel().map_err(ReadError::Fatal)?;
            let batch: Vec<Vec<u8>> = chunks.by_ref().take(PARALLEL_CHUNKS).collect::<Result<_, _>>()?;
            if batch.is_empty() {
                break;
            }
            let batch_ids: Vec<Id> = batch
                .par_iter()
                .map(|c| self.writer.add(BlobKind::Data, c).map(|(id, _)| id))
                .collect::<Result<_, _>>()
                .map_err(|e| ReadError::Fatal(e.into()))?;
            let n: u64 = batch.iter().map(|c| c.len() as u64).sum();
            read_bytes += n;
            self.progress.add(0, n);
            ids.extend(batch_ids);
        }
        Ok((ids, read_bytes))
    }
}

/// The data extents (start, end) of a file that has holes, found with SEEK_DATA and
/// SEEK_HOLE; `None` for a file without holes or a file system that cannot tell.
fn data_extents(file: &File, meta: &Metadata) -> Option<Vec<(u64, u64)>> {
    use nix::unistd::{lseek, Whence};
    use std::os::fd::AsRawFd;
    let size = meta.size();
    // Fewer blocks than the size needs: there are holes (or the file system compresses).
    if meta.blocks().saturating_mul(512) >= size {
        return None;
    }
    let fd = file.as_raw_fd();
    let to_u64 = |o: i64| u64::try_from(o).ok();
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        let start = match lseek(fd, i64::try_from(pos).ok()?, Whence::SeekData) {
            Ok(o) => to_u64(o)?,
            // No data after `pos`: the rest is a hole.
            Err(nix::errno::Errno::ENXIO) => break,
            Err(_) => return None,
        };
        let end = to_u64(lseek(fd, i64::try_from(start).ok()?, Whence::SeekHole).ok()?)?.min(size);
        if end <= start {
            break;
        }
        out.push((start, end));
        pos = end;
    }
    // One extent over the whole file: nothing to skip.
    (out.len() != 1 || out[0] != (0, size)).then_some(out)
}

fn open_for_reading(abs: &Path) -> Result<File, ReadError> {
    // O_NOFOLLOW: the entry was a regular file when listed; if it was swapped for a symlink
    // since, do not follow it. O_NOATIME spares the disk a write per file where allowed.
    let open =
        |extra: i32| File::options().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | extra).open(abs);
    match open(libc::O_NOATIME) {
        Ok(f) => Ok(f),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(open(0)?),
        Err(e) => Err(e.into()),
    }
}

/// A file's blobs, how it changed while it was read, and the bytes of holes not read.
type FileRead = (Vec<Id>, Option<Change>, u64);

/// How a file changed while it was read: the bytes read, and words for its warning.
pub(crate) struct Change {
    pub size: u64,
    pub how: &'static str,
}

/// Compares the file as read with what the listing saw, and its path now with the file read:
/// a file replaced or deleted meanwhile was read whole as it was when opened.
fn changed(file: &File, abs: &Path, before: &Metadata, read: u64) -> Result<Option<Change>, ReadError> {
    let after = file.metadata()?;
    let how = if read > before.size() {
        "grew while it was read"
    } else if read < before.size() {
        "shrank while it was read"
    } else if after.size() != read
        || after.mtime() != before.mtime()
        || after.mtime_nsec() != before.mtime_nsec()
        || after.ino() != before.ino()
    {
        "changed while it was read"
    } else {
        match std::fs::symlink_metadata(abs) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "was deleted while it was read (kept as it was)",
            Ok(now) if now.ino() != after.ino() || now.dev() != after.dev() => {
                "was replaced while it was read (kept as it was when opened)"
            }
            _ => return Ok(None),
        }
    };
    Ok(Some(Change { size: read, how }))
}

pub(crate) enum ReadError {
    Io(std::io::Error),
    Fatal(EngineError),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

pub(crate) fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "does not exist".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}
