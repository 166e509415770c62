//! The header at the end of every pack:
//! `blobs… ‖ sealed(header) ‖ u32 LE length of sealed(header)`.
//! Plain header: entries of 41 bytes: kind (u8), stored length (u32 LE), plain length
//! (u32 LE), blob id (32 bytes). Offsets follow from the lengths, starting at 0.

use crate::{BlobKind, Id};

pub(crate) const ENTRY_LEN: usize = 1 + 4 + 4 + 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PackEntry {
    pub kind: BlobKind,
    pub id: Id,
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
}

pub(crate) fn encode(entries: &[PackEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for e in entries {
        out.push(e.kind.code());
        out.extend_from_slice(&e.length.to_le_bytes());
        out.extend_from_slice(&e.raw_length.to_le_bytes());
        out.extend_from_slice(&e.id.0);
    }
    out
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<PackEntry>, String> {
    if !bytes.len().is_multiple_of(ENTRY_LEN) {
        return Err(format!("header of {} bytes is not a whole number of entries", bytes.len()));
    }
    let mut offset: u64 = 0;
    let mut out = Vec::with_capacity(bytes.len() / ENTRY_LEN);
    for e in bytes.chunks_exact(ENTRY_LEN) {
        let kind = BlobKind::from_code(e[0]).ok_or_else(|| format!("unknown blob kind {}", e[0]))?;
        let length = u32::from_le_bytes([e[1], e[2], e[3], e[4]]);
        let raw_length = u32::from_le_bytes([e[5], e[6], e[7], e[8]]);
        let mut id = [0u8; 32];
        id.copy_from_slice(&e[9..]);
        let off = u32::try_from(offset).map_err(|_| "pack larger than 4 GiB".to_string())?;
        out.push(PackEntry { kind, id: Id(id), offset: off, length, raw_length });
        offset += length as u64;
    }
    Ok(out)
}
