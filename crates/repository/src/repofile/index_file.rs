//! `index/<id>`: sealed binary listing of where blobs are.
//! Plain form: magic `LBIX`, version (u8 = 1), then for each pack: pack id (32 bytes),
//! entry count (u32 LE), and per entry: kind (u8), blob id (32), offset (u32 LE),
//! stored length (u32 LE), plain length (u32 LE).

use crate::repofile::pack_header::PackEntry;
use crate::{BlobKind, Id};

const MAGIC: &[u8; 4] = b"LBIX";

#[derive(Debug, Default, Clone)]
pub(crate) struct IndexFile {
    pub packs: Vec<(Id, Vec<PackEntry>)>,
}

/// Blobs an index file lists before the next file is begun: a file stays a few MiB, far
/// below what a reader accepts (`limits::MAX_INDEX_FILE`), whatever the repository's size.
pub(crate) const BLOBS_PER_FILE: usize = 100_000;

impl IndexFile {
    /// The packs in files of at most [`BLOBS_PER_FILE`] blobs (a pack holding more has a
    /// file of its own), in their order.
    pub fn split(packs: Vec<(Id, Vec<PackEntry>)>) -> Vec<IndexFile> {
        let mut files = Vec::new();
        let mut current = IndexFile::default();
        let mut blobs = 0;
        for (pack, entries) in packs {
            if blobs > 0 && blobs + entries.len() > BLOBS_PER_FILE {
                files.push(std::mem::take(&mut current));
                blobs = 0;
            }
            blobs += entries.len();
            current.packs.push((pack, entries));
        }
        if !current.packs.is_empty() {
            files.push(current);
        }
        files
    }

    pub fn blob_count(&self) -> usize {
        self.packs.iter().map(|(_, e)| e.len()).sum()
    }

    pub fn encode(&self) -> Vec<u8> {
        let n: usize = self.packs.iter().map(|(_, e)| 36 + e.len() * 45).sum();
        let mut out = Vec::with_capacity(5 + n);
        out.extend_from_slice(MAGIC);
        out.push(1);
        for (pack, entries) in &self.packs {
            out.extend_from_slice(&pack.0);
            out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for e in entries {
                out.push(e.kind.code());
                out.extend_from_slice(&e.id.0);
                out.extend_from_slice(&e.offset.to_le_bytes());
                out.extend_from_slice(&e.length.to_le_bytes());
                out.extend_from_slice(&e.raw_length.to_le_bytes());
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < 5 || &bytes[..4] != MAGIC {
            return Err("not an index (bad magic)".into());
        }
        if bytes[4] != 1 {
            return Err(format!("index version {} is not supported", bytes[4]));
        }
        let mut r = Reader { b: bytes, at: 5 };
        let mut packs = Vec::new();
        while r.at < bytes.len() {
            let pack = r.id()?;
            let count = r.u32()? as usize;
            if count > (bytes.len() - r.at) / 45 {
                return Err("entry count larger than the file".into());
            }
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                let code = r.u8()?;
                let kind = BlobKind::from_code(code).ok_or_else(|| format!("unknown blob kind {code}"))?;
                let id = r.id()?;
                let offset = r.u32()?;
                let length = r.u32()?;
                let raw_length = r.u32()?;
                entries.push(PackEntry { kind, id, offset, length, raw_length });
            }
            packs.push((pack, entries));
        }
        Ok(IndexFile { packs })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let s = self.b.get(self.at..self.at + n).ok_or("index truncated")?;
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn id(&mut self) -> Result<Id, String> {
        let mut id = [0u8; 32];
        id.copy_from_slice(self.take(32)?);
        Ok(Id(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips_and_rejects_garbage() {
        let e = PackEntry { kind: BlobKind::Tree, id: Id::random(), offset: 7, length: 9, raw_length: 11 };
        let f = IndexFile { packs: vec![(Id::random(), vec![e.clone(), e])] };
        let back = IndexFile::decode(&f.encode()).unwrap();
        assert_eq!(back.packs, f.packs);
        let enc = f.encode();
        for cut in 0..enc.len() {
            let _ = IndexFile::decode(&enc[..cut]);
        }
        assert!(IndexFile::decode(b"LBIX\x01\x00").is_err());
    }

    #[test]
    fn an_index_is_split_into_files_of_a_bounded_number_of_blobs() {
        let e = PackEntry { kind: BlobKind::Data, id: Id::random(), offset: 0, length: 50, raw_length: 9 };
        let pack = |n: usize| (Id::random(), vec![e.clone(); n]);
        let packs = vec![pack(60_000), pack(30_000), pack(20_000), pack(250_000), pack(5)];
        let files = IndexFile::split(packs.clone());
        let counts: Vec<usize> = files.iter().map(IndexFile::blob_count).collect();
        assert_eq!(counts, [90_000, 20_000, 250_000, 5], "a pack larger than the bound has a file of its own");
        let rejoined: Vec<_> = files.into_iter().flat_map(|f| f.packs).collect();
        assert_eq!(rejoined, packs, "every pack once, in order");
    }
}
