//! Building pack files: sealed blobs one after another, then the sealed header and its length.

use crate::crypto::{MasterKey, SealedBlob, OVERHEAD};
use crate::repofile::pack_header::{self, PackEntry, ENTRY_LEN};
use crate::{BlobKind, Id};

#[derive(Default)]
pub(crate) struct PackBuilder {
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

/// A finished pack, ready to be written.
pub(crate) struct FinishedPack {
    pub id: Id,
    pub bytes: Vec<u8>,
    pub entries: Vec<PackEntry>,
}

impl PackBuilder {
    pub fn add(&mut self, kind: BlobKind, id: Id, sealed: &[u8], raw_length: u32) {
        if self.buf.capacity() == 0 {
            self.buf.reserve(16 * 1024 * 1024 + 1024 * 1024);
        }
        self.entries.push(PackEntry {
            kind,
            id,
            offset: self.buf.len() as u32,
            length: sealed.len() as u32,
            raw_length,
        });
        self.buf.extend_from_slice(sealed);
    }

    /// Starts this (empty) pack in a buffer that held an earlier one.
    pub fn reuse(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        self.buf = buf;
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends the header and names the pack by the hash of its bytes.
    pub fn finish(self, key: &MasterKey) -> FinishedPack {
        let PackBuilder { mut buf, entries } = self;
        let header = key.seal(&pack_header::encode(&entries), true);
        buf.extend_from_slice(&header);
        buf.extend_from_slice(&(header.len() as u32).to_le_bytes());
        FinishedPack { id: Id::of_stored(&buf), bytes: buf, entries }
    }
}

pub(crate) fn pack_name(id: &Id) -> String {
    let hex = id.to_hex();
    format!("data/{}/{}", &hex[..2], hex)
}

pub(crate) fn pack_id_from_name(name: &str) -> Option<Id> {
    name.rsplit('/').next()?.parse().ok()
}

/// Bytes read from a pack file: a whole pack, or a stretch of one. They are reached only as
/// sealed blobs (opened and checked against their ids by [`MasterKey::open_blob`]) or as the
/// pack's header (authenticated by [`parse_header`]): never as plain bytes.
pub(crate) struct PackBytes {
    bytes: Vec<u8>,
}

impl PackBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        PackBytes { bytes }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The sealed blob `len` bytes long at `at` (counted from the start of what was read).
    pub fn blob(&self, at: usize, len: usize) -> Option<SealedBlob<'_>> {
        self.bytes.get(at..at.checked_add(len)?).map(SealedBlob::new)
    }

    /// The header of a whole pack held in memory.
    pub fn header(&self, key: &MasterKey) -> Result<Vec<PackEntry>, String> {
        read_header(key, &self.bytes)
    }

    /// Read as a pack's last four bytes: the length its trailer claims for the header.
    pub fn trailer(&self) -> Option<u64> {
        Some(u32::from_le_bytes(self.bytes.as_slice().try_into().ok()?) as u64)
    }

    /// Read as a pack's sealed header, which ends where the blobs end at `data_end`.
    pub fn sealed_header(&self, key: &MasterKey, data_end: u64) -> Result<Vec<PackEntry>, String> {
        parse_header(key, &self.bytes, data_end)
    }
}

/// The longest header a pack whose blobs end at `data_end` can have: an entry per blob, no
/// blob shorter than its seal's overhead, and no more blobs than a writer puts in a pack of
/// `pack_size` (it closes a pack once it holds that much; the last blob may go beyond). A
/// trailer that claims more is refused before anything is read: a planted file under `data/`
/// must not make every backup read and hold gigabytes.
pub(crate) fn max_header_len(data_end: u64, pack_size: u64) -> u64 {
    let min_blob = OVERHEAD as u64 + 1;
    let blobs = (data_end / OVERHEAD as u64).min(pack_size / min_blob + 1);
    OVERHEAD as u64 + blobs * ENTRY_LEN as u64
}

/// Reads the header of a whole pack held in memory.
fn read_header(key: &MasterKey, pack: &[u8]) -> Result<Vec<PackEntry>, String> {
    if pack.len() < 4 {
        return Err("shorter than its length field".into());
    }
    let n = pack.len();
    let hlen = u32::from_le_bytes([pack[n - 4], pack[n - 3], pack[n - 2], pack[n - 1]]) as usize;
    if hlen + 4 > n {
        return Err(format!("header length {hlen} exceeds the pack"));
    }
    parse_header(key, &pack[n - 4 - hlen..n - 4], (n - 4 - hlen) as u64)
}

/// Opens a sealed pack header; `data_end` is where the blobs end (the header's offset).
fn parse_header(key: &MasterKey, sealed: &[u8], data_end: u64) -> Result<Vec<PackEntry>, String> {
    let plain = key.open(sealed, None).map_err(|_| "header failed authentication".to_string())?;
    let entries = pack_header::decode(&plain)?;
    if let Some(last) = entries.last() {
        if last.offset as u64 + last.length as u64 != data_end {
            return Err("header does not match the pack's length".into());
        }
    }
    Ok(entries)
}
