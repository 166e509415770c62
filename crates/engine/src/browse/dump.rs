//! One file's bytes, read from its blobs as they are needed (from any offset, for a ranged
//! download), and a folder as a tar stream.

use std::io::{self, Read, Write};

use lifeboat_repository::{Id, Node, NodeKind, RepoError, Repository};

use super::View;
use crate::{EngineError, EngineResult};

/// Blobs read at once when a reader reaches one it does not hold: decoded in parallel, so a
/// file read from start to end is not held to one core's speed.
const READ_AHEAD: usize = 4;

/// A file of a backup as a reader: blobs are read when the reader reaches them (with the few
/// after them), so a ranged read fetches only the blobs of its range.
pub struct FileReader {
    repo: Repository,
    blobs: Vec<(Id, u64)>,
    /// Where the next read starts, and the blob it lies in.
    pos: u64,
    at: usize,
    /// Where blob `at` starts.
    start: u64,
    current: Option<Vec<u8>>,
    /// Blobs read ahead, by their place in the file.
    ahead: std::collections::HashMap<usize, Vec<u8>>,
    size: u64,
}

impl FileReader {
    pub(crate) fn new(repo: &Repository, node: &Node) -> EngineResult<FileReader> {
        let mut blobs = Vec::with_capacity(node.content.len());
        for id in &node.content {
            let len = repo.blob_length(id).ok_or(RepoError::MissingBlob(*id))?;
            blobs.push((*id, len));
        }
        let stored: u64 = blobs.iter().map(|(_, l)| l).sum();
        if stored != node.size {
            return Err(EngineError::Repo(RepoError::Unreadable {
                what: format!("file {}", String::from_utf8_lossy(&node.name.0)),
                why: format!("its blobs hold {stored} bytes, its entry says {}", node.size),
            }));
        }
        Ok(FileReader {
            repo: repo.clone(),
            blobs,
            pos: 0,
            at: 0,
            start: 0,
            current: None,
            ahead: Default::default(),
            size: node.size,
        })
    }

    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Moves to `offset` (at most the length) without reading what lies before it.
    pub fn seek_to(&mut self, offset: u64) {
        let offset = offset.min(self.size);
        // Forward from where the reader is (the common case: reads in order), else from the start.
        let (mut at, mut start) = if offset >= self.start { (self.at, self.start) } else { (0, 0) };
        while at < self.blobs.len() && start + self.blobs[at].1 <= offset {
            start += self.blobs[at].1;
            at += 1;
        }
        if at != self.at {
            self.current = None;
            self.ahead.retain(|&i, _| i >= at && i < at + READ_AHEAD);
        }
        (self.pos, self.at, self.start) = (offset, at, start);
    }

    /// Blob `at` and the few after it, read in parallel.
    fn fill(&mut self) -> io::Result<Vec<u8>> {
        if let Some(d) = self.ahead.remove(&self.at) {
            return Ok(d);
        }
        use rayon::prelude::*;
        let end = (self.at + READ_AHEAD).min(self.blobs.len());
        let wanted: Vec<(usize, Id, u64)> = (self.at..end)
            .filter(|i| !self.ahead.contains_key(i))
            .map(|i| (i, self.blobs[i].0, self.blobs[i].1))
            .collect();
        let repo = &self.repo;
        let read: Vec<(usize, io::Result<Vec<u8>>)> = wanted
            .par_iter()
            .map(|&(i, id, len)| {
                let data = repo.read_blob(&id).map_err(io::Error::other).and_then(|d| {
                    if d.len() as u64 == len {
                        Ok(d)
                    } else {
                        Err(io::Error::other(format!("blob {} holds {} bytes, not {len}", id.short(), d.len())))
                    }
                });
                (i, data)
            })
            .collect();
        let mut first = None;
        for (i, data) in read {
            if i == self.at {
                first = Some(data);
            } else if let Ok(d) = data {
                // A blob ahead that failed is read again (and its error given) when reached.
                self.ahead.insert(i, d);
            }
        }
        first.unwrap_or_else(|| Err(io::Error::other("a blob of the file was not read")))
    }
}

impl Read for FileReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at < self.blobs.len() {
            let len = self.blobs[self.at].1;
            if self.pos >= self.start + len {
                self.start += len;
                self.at += 1;
                self.current = None;
                continue;
            }
            if self.current.is_none() {
                self.current = Some(self.fill()?);
            }
            let data = self.current.as_deref().unwrap_or_default();
            let from = (self.pos - self.start) as usize;
            let n = buf.len().min(data.len() - from);
            buf[..n].copy_from_slice(&data[from..from + n]);
            self.pos += n as u64;
            return Ok(n);
        }
        Ok(0)
    }
}

/// Writes the whole file to `out`.
pub(crate) fn file(repo: &Repository, node: &Node, out: &mut dyn Write) -> EngineResult<u64> {
    let mut reader = FileReader::new(repo, node)?;
    io::copy(&mut reader, out).map_err(write_error)
}

fn write_error(e: io::Error) -> EngineError {
    match e.downcast::<RepoError>() {
        Ok(r) => EngineError::Repo(r),
        Err(e) => EngineError::io("writing", "the output", e),
    }
}

/// Writes the folder at `path` and everything in it as a tar stream, its entries named from
/// the folder's own name.
pub(crate) fn folder(view: &View, path: &str, out: &mut dyn Write) -> EngineResult<u64> {
    let base = path.rfind('/').map(|i| &path[..i]).unwrap_or("");
    let mut tar = tar::Builder::new(CountingWriter { inner: out, count: 0 });
    tar.mode(tar::HeaderMode::Complete);
    let mut failure = None;
    view.walk(Some(path), &mut |e| {
        let name = e.path.strip_prefix(base).unwrap_or(&e.path).trim_start_matches('/');
        let name = if name.is_empty() { "~" } else { name };
        let result = (|| -> EngineResult<()> {
            let Some(node) = e.node.as_ref() else {
                return append(&mut tar, name, tar::EntryType::Directory, 0o755, 0, None, &mut io::empty());
            };
            let mtime = node.mtime.0.max(0) as u64;
            match node.kind {
                NodeKind::File => {
                    let mut r = FileReader::new(view.repo(), node)?;
                    let mut h = header(tar::EntryType::Regular, node.mode, mtime, node);
                    h.set_size(r.len());
                    tar.append_data(&mut h, name, &mut r).map_err(write_error)
                }
                NodeKind::Dir => {
                    append(&mut tar, name, tar::EntryType::Directory, node.mode, mtime, Some(node), &mut io::empty())
                }
                NodeKind::Symlink => {
                    let mut h = header(tar::EntryType::Symlink, node.mode, mtime, node);
                    let target = node.target.as_ref().map(|t| t.0.clone()).unwrap_or_default();
                    tar.append_link(&mut h, name, String::from_utf8_lossy(&target).as_ref()).map_err(write_error)
                }
                // Special files are no bytes to look at: a dump leaves them out.
                _ => Ok(()),
            }
        })();
        match result {
            Ok(()) => true,
            Err(err) => {
                failure = Some(err);
                false
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    let w = tar.into_inner().map_err(write_error)?;
    Ok(w.count)
}

fn header(kind: tar::EntryType, mode: u32, mtime: u64, node: &Node) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_uid(node.uid as u64);
    h.set_gid(node.gid as u64);
    if let Some(u) = &node.user {
        let _ = h.set_username(u);
    }
    if let Some(g) = &node.group {
        let _ = h.set_groupname(g);
    }
    h.set_size(0);
    h
}

fn append(
    tar: &mut tar::Builder<CountingWriter>,
    name: &str,
    kind: tar::EntryType,
    mode: u32,
    mtime: u64,
    node: Option<&Node>,
    data: &mut dyn Read,
) -> EngineResult<()> {
    let mut h = match node {
        Some(n) => header(kind, mode, mtime, n),
        None => {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(0);
            h
        }
    };
    h.set_size(0);
    tar.append_data(&mut h, name, data).map_err(write_error)
}

struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    count: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
