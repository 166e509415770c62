//! Reading entries strictly: every size a header states is bounded before it is acted on.

use std::io::{self, Read};

use super::{padding, EntryKind, TarEntry, BLOCK};
use lifeboat_repository::Timestamp;

/// Limits on what a header may ask the reader to hold in memory.
const MAX_PAX: u64 = 1 << 20;
const MAX_LONG_NAME: u64 = 64 * 1024;
const MAX_SPARSE_SEGMENTS: u64 = 1 << 20;
/// All extended headers before one entry (pax `x`, GNU `L` and `K`, each header block
/// counted with its body): one pax header at its limit and a long name and link at theirs.
/// Each header alone is bounded, but they pile up: pax records add to each other, and a
/// compressed stream makes thousands of them from a few bytes.
pub(crate) const MAX_ENTRY_HEADERS: u64 = MAX_PAX + 2 * MAX_LONG_NAME + 3 * BLOCK;
/// All global pax headers (`g`) of one archive: Lifeboat writes none, and their records are
/// not used, but each costs a read.
pub(crate) const MAX_GLOBAL_HEADERS: u64 = MAX_PAX + BLOCK;

#[derive(Debug, thiserror::Error)]
pub(crate) enum TarError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("it ends in the middle (the file is truncated)")]
    Truncated,
    #[error("{0}")]
    Malformed(String),
}

fn malformed(s: impl Into<String>) -> TarError {
    TarError::Malformed(s.into())
}

/// Reads entries one after another; an entry's data must be read (or skipped) before the next.
pub(crate) struct TarReader<R> {
    inner: R,
    /// Stored bytes of the current entry not read yet, and its padding.
    left: u64,
    pad: u64,
    /// Of a sparse entry: stretches still to come, and the logical offset reached.
    segments: std::collections::VecDeque<(u64, u64)>,
    at: u64,
    done: bool,
    /// Bytes of global headers read so far (bounded by [`MAX_GLOBAL_HEADERS`]).
    globals: u64,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> Self {
        TarReader { inner, left: 0, pad: 0, segments: Default::default(), at: 0, done: false, globals: 0 }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), TarError> {
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => TarError::Truncated,
            _ => TarError::Io(e),
        })
    }

    fn read_block(&mut self) -> Result<[u8; BLOCK as usize], TarError> {
        let mut b = [0u8; BLOCK as usize];
        self.fill(&mut b)?;
        Ok(b)
    }

    /// Reads `n` stored bytes (and their padding) into memory; `n` is bounded by the caller.
    fn read_body(&mut self, n: u64) -> Result<Vec<u8>, TarError> {
        let mut v = vec![0u8; n as usize];
        self.fill(&mut v)?;
        self.discard(padding(n))?;
        Ok(v)
    }

    fn discard(&mut self, mut n: u64) -> Result<(), TarError> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let k = n.min(buf.len() as u64) as usize;
            self.fill(&mut buf[..k])?;
            n -= k as u64;
        }
        Ok(())
    }

    /// The next entry, or `None` at the end-of-archive marker. Skips what is left of the
    /// previous entry's data.
    pub fn next(&mut self) -> Result<Option<TarEntry>, TarError> {
        if self.done {
            return Ok(None);
        }
        self.discard(self.left + self.pad)?;
        self.left = 0;
        self.pad = 0;
        self.segments.clear();
        let mut pax: PaxRecords = Vec::new();
        let mut long_name = None;
        let mut long_link = None;
        let mut headers = 0u64;
        loop {
            let h = self.read_block()?;
            if h.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            check_sum(&h)?;
            let size = number(&h[124..136])?;
            match h[156] {
                b'x' | b'g' => {
                    if size > MAX_PAX {
                        return Err(malformed(format!("an extended header of {size} bytes is refused")));
                    }
                    if h[156] == b'x' {
                        headers = spend(headers, size, MAX_ENTRY_HEADERS, "extended headers before one entry")?;
                    } else {
                        self.globals = spend(self.globals, size, MAX_GLOBAL_HEADERS, "global headers in one archive")?;
                    }
                    let body = self.read_body(size)?;
                    if h[156] == b'x' {
                        pax.extend(parse_pax(&body)?);
                    }
                }
                b'L' | b'K' => {
                    if size > MAX_LONG_NAME {
                        return Err(malformed(format!("a long name of {size} bytes is refused")));
                    }
                    headers = spend(headers, size, MAX_ENTRY_HEADERS, "extended headers before one entry")?;
                    let mut body = self.read_body(size)?;
                    while body.last() == Some(&0) {
                        body.pop();
                    }
                    if h[156] == b'L' {
                        long_name = Some(body);
                    } else {
                        long_link = Some(body);
                    }
                }
                flag => return self.entry(&h, flag, size, pax, long_name, long_link).map(Some),
            }
        }
    }

    fn entry(
        &mut self,
        h: &[u8; 512],
        flag: u8,
        mut size: u64,
        pax: PaxRecords,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
    ) -> Result<TarEntry, TarError> {
        let kind = match flag {
            b'0' | 0 | b'7' => EntryKind::File,
            b'1' => EntryKind::HardLink,
            b'2' => EntryKind::Symlink,
            b'3' => EntryKind::CharDevice,
            b'4' => EntryKind::BlockDevice,
            b'5' => EntryKind::Dir,
            b'6' => EntryKind::Fifo,
            other => return Err(malformed(format!("entry type {:?} is not supported", other as char))),
        };
        let mut path = long_name.unwrap_or_else(|| {
            let name = cstr(&h[0..100]);
            let prefix = cstr(&h[345..500]);
            if &h[257..263] == b"ustar\0" && !prefix.is_empty() {
                [prefix, b"/", name].concat()
            } else {
                name.to_vec()
            }
        });
        let mut link = long_link.or_else(|| Some(cstr(&h[157..257]).to_vec()).filter(|l| !l.is_empty()));
        let mut e = TarEntry {
            path: Vec::new(),
            kind,
            mode: number(&h[100..108])? as u32 & 0o7777,
            uid: number(&h[108..116])?,
            gid: number(&h[116..124])?,
            user: Some(String::from_utf8_lossy(cstr(&h[265..297])).into_owned()).filter(|s| !s.is_empty()),
            group: Some(String::from_utf8_lossy(cstr(&h[297..329])).into_owned()).filter(|s| !s.is_empty()),
            mtime: Timestamp(number(&h[136..148])? as i64, 0),
            size: 0,
            link: None,
            device: (number(&h[329..337])? as u32, number(&h[337..345])? as u32),
            xattrs: Vec::new(),
            sparse: None,
        };
        let (mut sparse_name, mut realsize, mut major) = (None, None, None);
        for (k, v) in pax {
            let text = || String::from_utf8_lossy(&v).into_owned();
            let num = || text().parse::<u64>().map_err(|_| malformed(format!("bad pax number {}", text())));
            match k.as_slice() {
                b"path" => path = v,
                b"linkpath" => link = Some(v),
                b"size" => size = num()?,
                b"uid" => e.uid = num()?,
                b"gid" => e.gid = num()?,
                b"uname" => e.user = Some(text()),
                b"gname" => e.group = Some(text()),
                b"mtime" => e.mtime = parse_time(&text())?,
                b"GNU.sparse.name" => sparse_name = Some(v),
                b"GNU.sparse.realsize" => realsize = Some(num()?),
                b"GNU.sparse.major" => major = Some(text()),
                _ => {
                    if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                        e.xattrs.push((name.to_vec(), v));
                    }
                }
            }
        }
        e.path = sparse_name.unwrap_or(path);
        e.link = link.filter(|_| matches!(kind, EntryKind::Symlink | EntryKind::HardLink));
        let stored = if matches!(kind, EntryKind::File) { size } else { 0 };
        self.left = stored;
        self.pad = padding(stored);
        e.size = stored;
        if let Some(real) = realsize {
            if major.as_deref() != Some("1") {
                return Err(malformed("only GNU sparse format 1.0 is supported"));
            }
            let segs = self.read_sparse_map(stored, real)?;
            e.size = real;
            self.segments = segs.iter().copied().collect();
            e.sparse = Some(segs);
        }
        self.at = 0;
        Ok(e)
    }

    /// Reads the map at the start of a sparse file's data and checks it against the sizes.
    fn read_sparse_map(&mut self, stored: u64, real: u64) -> Result<Vec<(u64, u64)>, TarError> {
        let mut numbers = Vec::new();
        let mut line = Vec::new();
        let mut used = 0u64;
        let mut expected = None;
        while expected.is_none_or(|n: u64| (numbers.len() as u64) < 1 + 2 * n) {
            let mut block = [0u8; BLOCK as usize];
            if self.left < BLOCK {
                return Err(malformed("a sparse map longer than its file"));
            }
            self.fill(&mut block)?;
            self.left -= BLOCK;
            used += BLOCK;
            for &b in &block {
                if expected.is_some_and(|n| numbers.len() as u64 > 2 * n) {
                    break;
                }
                if b == b'\n' {
                    let v: u64 = std::str::from_utf8(&line)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| malformed("a sparse map with a bad number"))?;
                    if numbers.is_empty() {
                        if v > MAX_SPARSE_SEGMENTS {
                            return Err(malformed(format!("a sparse map of {v} stretches is refused")));
                        }
                        expected = Some(v);
                    }
                    numbers.push(v);
                    line.clear();
                } else if line.len() > 20 {
                    return Err(malformed("a sparse map with a bad number"));
                } else {
                    line.push(b);
                }
            }
        }
        let segs: Vec<(u64, u64)> = numbers[1..].chunks(2).map(|p| (p[0], p[1])).collect();
        let mut end = 0u64;
        let mut data = 0u64;
        for &(off, len) in &segs {
            let stop = off.checked_add(len).ok_or_else(|| malformed("a sparse map out of range"))?;
            if off < end || stop > real {
                return Err(malformed("a sparse map whose stretches overlap or pass the end of the file"));
            }
            end = stop;
            data += len;
        }
        if used + data != stored {
            return Err(malformed("a sparse map that does not match the data stored"));
        }
        Ok(segs)
    }

    /// Reads the current entry's content: fills `buf` and returns the logical offset of what
    /// was read and its length, or `None` at the end. Holes of sparse files are not returned.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<Option<(u64, usize)>, TarError> {
        if self.left == 0 {
            return Ok(None);
        }
        if self.segments.is_empty() && self.at == 0 {
            // Not sparse: one stretch from 0.
            self.segments.push_back((0, self.left));
        }
        while let Some(&(off, len)) = self.segments.front() {
            if len == 0 {
                self.segments.pop_front();
                continue;
            }
            let k = (len.min(buf.len() as u64)) as usize;
            self.fill(&mut buf[..k])?;
            self.left -= k as u64;
            let front = self.segments.front_mut().expect("segment present");
            *front = (off + k as u64, len - k as u64);
            self.at = off + k as u64;
            return Ok(Some((off, k)));
        }
        Ok(None)
    }
}

/// The logical content of the current entry (holes read as zeros), as a `Read`.
pub(crate) struct Content<'a, R> {
    tar: &'a mut TarReader<R>,
    size: u64,
    pos: u64,
    pending: Vec<u8>,
    pending_at: u64,
    failure: Option<TarError>,
}

impl<'a, R: Read> Content<'a, R> {
    pub fn new(tar: &'a mut TarReader<R>, size: u64) -> Self {
        Content { tar, size, pos: 0, pending: Vec::new(), pending_at: 0, failure: None }
    }

    /// The reader's own error behind an `io::Error` this returned.
    pub fn take_failure(&mut self) -> Option<TarError> {
        self.failure.take()
    }
}

impl<R: Read> Read for Content<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || out.is_empty() {
            return Ok(0);
        }
        if self.pending.is_empty() {
            let mut buf = vec![0u8; 256 * 1024];
            match self.tar.read_data(&mut buf) {
                Ok(Some((off, n))) => {
                    buf.truncate(n);
                    self.pending = buf;
                    self.pending_at = off;
                }
                Ok(None) => {
                    self.pending_at = self.size;
                }
                Err(e) => {
                    let msg = e.to_string();
                    self.failure = Some(e);
                    return Err(io::Error::other(msg));
                }
            }
        }
        let n = if self.pos < self.pending_at {
            // A hole before the next stretch.
            let k = (self.pending_at - self.pos).min(out.len() as u64) as usize;
            out[..k].fill(0);
            k
        } else {
            let k = self.pending.len().min(out.len());
            out[..k].copy_from_slice(&self.pending[..k]);
            self.pending.drain(..k);
            self.pending_at += k as u64;
            k
        };
        self.pos += n as u64;
        Ok(n)
    }
}

/// Adds an extended header (its block and its body) to what was `spent` of a `budget`, or
/// refuses it once the sum passes.
fn spend(spent: u64, body: u64, budget: u64, what: &str) -> Result<u64, TarError> {
    let total = spent.saturating_add(BLOCK).saturating_add(body);
    if total > budget {
        return Err(malformed(format!("more than {} KiB of {what}", budget / 1024)));
    }
    Ok(total)
}

fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

fn check_sum(h: &[u8; 512]) -> Result<(), TarError> {
    let stored = number(&h[148..156])?;
    let sum: u64 =
        h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { b' ' as u64 } else { b as u64 }).sum();
    if stored != sum {
        return Err(malformed("a header's checksum does not match (the file is damaged)"));
    }
    Ok(())
}

/// A numeric field: octal digits (space or NUL ended), or GNU's base-256 for large values.
fn number(field: &[u8]) -> Result<u64, TarError> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        if field[0] & 0x40 != 0 {
            return Err(malformed("a negative number in a header"));
        }
        let mut v: u64 = (field[0] & 0x3f) as u64;
        for &b in &field[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(b as u64))
                .ok_or_else(|| malformed("a number too large"))?;
        }
        return Ok(v);
    }
    let text: Vec<u8> = field.iter().copied().skip_while(|&b| b == b' ').take_while(|&b| b != 0 && b != b' ').collect();
    if text.is_empty() {
        return Ok(0);
    }
    let s = std::str::from_utf8(&text).map_err(|_| malformed("a header with a bad number"))?;
    u64::from_str_radix(s, 8).map_err(|_| malformed(format!("a header with a bad number {s:?}")))
}

/// Key and value of each pax record.
type PaxRecords = Vec<(Vec<u8>, Vec<u8>)>;

fn parse_pax(mut body: &[u8]) -> Result<PaxRecords, TarError> {
    let mut out = Vec::new();
    while !body.is_empty() && body[0] != 0 {
        let sp = body.iter().position(|&b| b == b' ').ok_or_else(|| malformed("a bad pax record"))?;
        let len: usize = std::str::from_utf8(&body[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&n: &usize| n > sp + 1 && n <= body.len())
            .ok_or_else(|| malformed("a bad pax record length"))?;
        let rec = &body[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").ok_or_else(|| malformed("a pax record without its newline"))?;
        let eq = rec.iter().position(|&b| b == b'=').ok_or_else(|| malformed("a pax record without '='"))?;
        out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
        body = &body[len..];
    }
    Ok(out)
}

pub(super) fn parse_time(s: &str) -> Result<Timestamp, TarError> {
    let bad = || malformed(format!("a bad pax time {s:?}"));
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let negative = secs.starts_with('-');
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let ns: u32 = if digits.is_empty() { 0 } else { format!("{digits:0<9}").parse().map_err(|_| bad())? };
    // Before 1970 with a fraction, the seconds round towards zero in text ("-1.5").
    if negative && ns > 0 {
        return Ok(Timestamp(secs - 1, 1_000_000_000 - ns));
    }
    Ok(Timestamp(secs, ns))
}
