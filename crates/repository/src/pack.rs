//! Building pack files: sealed blobs one after another, then the sealed header and its length.

use crate::crypto::MasterKey;
use crate::repofile::pack_header::{self, PackEntry};
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

/// Reads the header of a whole pack held in memory.
pub(crate) fn read_header(key: &MasterKey, pack: &[u8]) -> Result<Vec<PackEntry>, String> {
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
pub(crate) fn parse_header(key: &MasterKey, sealed: &[u8], data_end: u64) -> Result<Vec<PackEntry>, String> {
    let plain = key.open(sealed, None).map_err(|_| "header failed authentication".to_string())?;
    let entries = pack_header::decode(&plain)?;
    if let Some(last) = entries.last() {
        if last.offset as u64 + last.length as u64 != data_end {
            return Err("header does not match the pack's length".into());
        }
    }
    Ok(entries)
}
