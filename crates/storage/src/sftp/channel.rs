//! One SFTP channel of a connection, and what the store asks of it, each in as few round trips
//! as the protocol allows. SFTP answers requests by id, so requests that do not need each
//! other's answers go out together: a whole read asks the size beside the first bytes, a
//! folder is read two answers at a time, a file's writes are all in flight at once and its
//! flush goes with its close. Handles that were only read are closed without waiting.
//!
//! A server works through one channel's requests in order (OpenSSH's does), and nothing here
//! depends on it beyond the order of requests already answered: a flush that arrived after
//! its file's close only fails, and its failure is ignored as on a server without flushes.

use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use russh::client;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::rawsession::{Limits, SftpResult};
use russh_sftp::client::RawSftpSession;
use russh_sftp::extensions;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};

use super::host_key::HostKeyChecker;
use crate::runtime::REQUEST_LIMIT;

/// Bytes in one read or write when the server names no limit: what the protocol's draft
/// says every server takes.
const PLAIN_LEN: u64 = 32 << 10;
/// The most bytes asked in one read or sent in one write, whatever the server allows: an
/// answer must fit the session's packet limit (256 KiB, framing included).
const MOST_LEN: u64 = 255 << 10;
/// Reads of one transfer in flight: enough to fill the 16 MiB window the connection opens.
const READS_IN_FLIGHT: usize = 64;
/// Writes of one transfer in flight: OpenSSH's server takes 2 MiB per channel before it
/// acknowledges, so more would only wait in memory.
const WRITES_IN_FLIGHT: usize = 8;

pub(super) struct Channel {
    raw: Arc<RawSftpSession>,
    fsync: bool,
    read_len: u32,
    write_len: usize,
}

impl Channel {
    /// Opens an SFTP channel on an authenticated connection and learns the server's limits.
    pub(super) async fn open(handle: &client::Handle<HostKeyChecker>) -> Result<Channel, String> {
        let channel = handle.channel_open_session().await.map_err(|e| super::describe_ssh_error(&e))?;
        channel.request_subsystem(true, "sftp").await.map_err(|e| super::describe_ssh_error(&e))?;
        let config = russh_sftp::client::Config { request_timeout_secs: REQUEST_LIMIT.as_secs(), ..Default::default() };
        let mut raw = RawSftpSession::new_with_config(channel.into_stream(), config);
        let version = raw.init().await.map_err(|e| format!("the server offers no SFTP: {e}"))?;
        let offers = |name: &str, v: &str| version.extensions.get(name).is_some_and(|have| have == v);
        let (mut read_len, mut write_len) = (PLAIN_LEN, PLAIN_LEN);
        if offers(extensions::LIMITS, "1") {
            let limits = Limits::from(raw.limits().await.map_err(|e| format!("the server's SFTP limits: {e}"))?);
            read_len = limits.read_len.unwrap_or(PLAIN_LEN);
            write_len = limits.write_len.unwrap_or(PLAIN_LEN);
            raw.set_limits(limits);
        }
        Ok(Channel {
            raw: Arc::new(raw),
            fsync: offers(extensions::FSYNC, "1"),
            read_len: read_len.clamp(1, MOST_LEN) as u32,
            write_len: write_len.clamp(1, MOST_LEN) as usize,
        })
    }

    /// Closes a handle without waiting for the answer (a failed close of a handle only read
    /// loses nothing).
    fn close_later(&self, handle: String) {
        let raw = self.raw.clone();
        tokio::spawn(async move {
            let _ = raw.close(handle).await;
        });
    }

    /// Up to `len` bytes at `offset`: fewer only at the end of the file.
    async fn read_at(&self, handle: &str, offset: u64, len: u32) -> SftpResult<Vec<u8>> {
        let mut out: Vec<u8> = Vec::new();
        while out.len() < len as usize {
            let got = out.len() as u32;
            match self.raw.read(handle, offset + got as u64, len - got).await {
                Ok(d) if d.data.is_empty() => break,
                Ok(d) if out.is_empty() && d.data.len() == len as usize => return Ok(d.data),
                Ok(d) => out.extend_from_slice(&d.data),
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The bytes from `start` to `end`, read in pieces all in flight at once; fewer when the
    /// file ends before.
    async fn read_span(&self, handle: &str, start: u64, end: u64) -> SftpResult<Vec<u8>> {
        let step = self.read_len as u64;
        let pieces = (start..end).step_by(step as usize).map(|at| (at, (end - at).min(step) as u32));
        let mut reads = futures_util::stream::iter(pieces)
            .map(|(at, len)| async move { (len, self.read_at(handle, at, len).await) })
            .buffered(READS_IN_FLIGHT);
        let mut out = Vec::with_capacity(end.saturating_sub(start).min(64 << 20) as usize);
        while let Some((len, piece)) = reads.next().await {
            let piece = piece?;
            out.extend_from_slice(&piece);
            // Short: the file ends here.
            if piece.len() < len as usize {
                break;
            }
        }
        Ok(out)
    }

    /// A whole file, or a range of it; with a range that the file ends before, also the
    /// file's length (for the error that names it).
    pub(super) async fn read(&self, path: &str, range: Option<std::ops::Range<u64>>) -> SftpResult<(Vec<u8>, u64)> {
        let handle = self.raw.open(path, OpenFlags::READ, FileAttributes::empty()).await?.handle;
        let result = async {
            match range {
                Some(r) => {
                    let data = self.read_span(&handle, r.start, r.end).await?;
                    let mut total = 0;
                    if (data.len() as u64) < r.end.saturating_sub(r.start) {
                        total = self.raw.fstat(handle.as_str()).await.ok().and_then(|a| a.attrs.size).unwrap_or(0);
                    }
                    Ok((data, total))
                }
                None => {
                    // The size and the first bytes at once: the keys, snapshots and index
                    // files read whole mostly fit in one answer.
                    let (attrs, first) = futures_util::join!(
                        self.raw.fstat(handle.as_str()),
                        self.raw.read(handle.as_str(), 0, self.read_len)
                    );
                    let mut data = match first {
                        Ok(d) => d.data,
                        Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => Vec::new(),
                        Err(e) => return Err(e),
                    };
                    match attrs.ok().and_then(|a| a.attrs.size) {
                        Some(size) if size > data.len() as u64 => {
                            let rest = self.read_span(&handle, data.len() as u64, size).await?;
                            data.extend_from_slice(&rest);
                        }
                        Some(_) => {}
                        // No size given: read on to the end.
                        None => loop {
                            let more = self.read_at(&handle, data.len() as u64, self.read_len).await?;
                            if more.is_empty() {
                                break;
                            }
                            data.extend_from_slice(&more);
                        },
                    }
                    Ok((data, 0))
                }
            }
        }
        .await;
        self.close_later(handle);
        result
    }

    /// The entries of a folder (without `.` and `..`).
    pub(super) async fn list(&self, path: &str) -> SftpResult<Vec<russh_sftp::protocol::File>> {
        let handle = self.raw.opendir(path).await?.handle;
        let result = async {
            let mut files = Vec::new();
            loop {
                // Two answers asked at once: most folders fit in the first, and the second
                // says the end.
                let (a, b) = futures_util::join!(self.raw.readdir(handle.as_str()), self.raw.readdir(handle.as_str()));
                let mut end = false;
                for answer in [a, b] {
                    match answer {
                        Ok(name) => files.extend(name.files),
                        Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => end = true,
                        Err(e) => return Err(e),
                    }
                }
                if end {
                    return Ok(files);
                }
            }
        }
        .await;
        self.close_later(handle);
        result.map(|files| files.into_iter().filter(|f| f.filename != "." && f.filename != "..").collect())
    }

    /// Makes a folder and those above it that are missing: from the deepest up, since
    /// usually only the last is missing (a new shard of `data`).
    pub(super) async fn make_dirs(&self, dir: &str) -> SftpResult<()> {
        let mut missing = vec![dir.to_string()];
        while let Some(deepest) = missing.last().cloned() {
            match self.make_dir(&deepest).await {
                Ok(()) => {
                    missing.pop();
                    break;
                }
                Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => {
                    match deepest.rsplit_once('/').map(|(up, _)| up.to_string()) {
                        Some(up) if !up.is_empty() => missing.push(up),
                        _ => return Err(SftpError::Status(s)),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        while let Some(next) = missing.pop() {
            self.make_dir(&next).await?;
        }
        Ok(())
    }

    async fn make_dir(&self, dir: &str) -> SftpResult<()> {
        // Only the owner may enter a folder the repository makes.
        match self.raw.mkdir(dir, private(0o700)).await {
            Ok(_) => Ok(()),
            // Already there (made by us earlier or by another writer): servers say Failure.
            Err(SftpError::Status(s)) if s.status_code == StatusCode::Failure => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes a new file whole (its folder made when missing), flushed to the server's disk
    /// where the server can.
    async fn upload(&self, path: &str, data: &[u8]) -> SftpResult<()> {
        // Only the owner reads what a repository holds (its key slots above all).
        let flags = OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE;
        let handle = match self.raw.open(path, flags, private(0o600)).await {
            Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => {
                let Some((dir, _)) = path.rsplit_once('/') else { return Err(SftpError::Status(s)) };
                self.make_dirs(dir).await?;
                self.raw.open(path, flags, private(0o600)).await?
            }
            r => r?,
        }
        .handle;
        let step = self.write_len;
        let written = futures_util::stream::iter(data.chunks(step).enumerate())
            .map(|(i, piece)| self.raw.write(handle.as_str(), (i * step) as u64, piece.to_vec()))
            .buffer_unordered(WRITES_IN_FLIGHT)
            .try_for_each(|_| async { Ok(()) })
            .await;
        if let Err(e) = written {
            self.close_later(handle);
            return Err(e);
        }
        // The flush (OpenSSH's fsync extension) and the close asked at once.
        let flush = async {
            if self.fsync {
                let _ = self.raw.fsync(handle.as_str()).await;
            }
        };
        let ((), closed) = futures_util::join!(flush, self.raw.close(handle.as_str()));
        closed.map(|_| ())
    }

    /// Uploads under a temporary name and renames it into place. SFTP's rename fails when the
    /// target exists: with `replace`, the old object is removed first (the repository only
    /// rewrites a name it owns, its lock); without, that failure is create-if-absent's
    /// `false`.
    pub(super) async fn place(&self, path: &str, data: &[u8], replace: bool) -> SftpResult<bool> {
        let tmp = crate::store::temporary_beside(path);
        let result = async {
            self.upload(&tmp, data).await?;
            match self.raw.rename(tmp.as_str(), path).await {
                Ok(_) => Ok(true),
                Err(_) if replace => {
                    let _ = self.raw.remove(path).await;
                    self.raw.rename(tmp.as_str(), path).await.map(|_| true)
                }
                Err(e) => match self.raw.stat(path).await {
                    Ok(_) => Ok(false),
                    Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => Err(e),
                    Err(other) => Err(other),
                },
            }
        }
        .await;
        if !matches!(result, Ok(true)) {
            let _ = self.raw.remove(tmp).await;
        }
        result
    }

    pub(super) async fn stat(&self, path: &str) -> SftpResult<FileAttributes> {
        Ok(self.raw.stat(path).await?.attrs)
    }

    pub(super) async fn remove(&self, path: &str) -> SftpResult<()> {
        self.raw.remove(path).await.map(|_| ())
    }

    /// Free bytes where the server can tell (OpenSSH's statvfs extension).
    pub(super) async fn free_space(&self, path: &str) -> Option<u64> {
        let s = self.raw.statvfs(path).await.ok()?;
        Some(s.blocks_avail.saturating_mul(s.fragment_size))
    }
}

/// Attributes that set only the permission bits.
fn private(mode: u32) -> FileAttributes {
    FileAttributes { permissions: Some(mode), ..FileAttributes::empty() }
}
