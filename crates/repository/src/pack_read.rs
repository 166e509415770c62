//! Every read of a pack file. What comes back is [`PackBytes`]: sealed blobs and a sealed
//! header, never plain bytes, and never more than a pack of this repository can hold, so a
//! file planted or grown under `data/` by someone who can write to the location costs a
//! bounded read, not the device's memory.

use crate::pack::{max_header_len, pack_name, PackBytes};
use crate::repofile::pack_header::PackEntry;
use crate::{Id, RepoResult, Repository};

/// A pack read for all its blobs (check, repair): the bytes that could be read safely, and
/// its header or why it cannot be used.
pub(crate) struct WholePack {
    /// From the pack's start; `None` when nothing could be read safely.
    pub bytes: Option<PackBytes>,
    pub header: Result<Vec<PackEntry>, String>,
}

impl Repository {
    /// Reads a byte range of a pack file.
    pub(crate) fn read_pack_range(&self, pack: &Id, start: u64, end: u64) -> RepoResult<PackBytes> {
        Ok(PackBytes::new(self.inner.store.read(&pack_name(pack), Some(start..end))?))
    }

    /// The largest pack read in one request: what a writer makes, with room for its last
    /// blob. A larger one (a folder listing beyond the pack size, or a planted file) is read
    /// header first.
    pub(crate) fn usual_pack_len(&self) -> u64 {
        2 * self.pack_size() as u64 + (1 << 20)
    }

    /// Reads a pack whose listed size is `size` for all its blobs. A pack of usual size is
    /// read in one request. A larger one is read header first, the header's length bounded
    /// by what a pack of that size can have; then only as far as its header (or, when that
    /// is unusable, the index: `indexed_end`) says its blobs go.
    pub(crate) fn read_whole_pack(&self, pack: &Id, size: u64, indexed_end: Option<u64>) -> RepoResult<WholePack> {
        if size <= self.usual_pack_len() {
            // As long as listed: a pack grown since reads short, and its header fails.
            let bytes = self.read_pack_range(pack, 0, size)?;
            let header = bytes.header(self.key());
            return Ok(WholePack { bytes: Some(bytes), header });
        }
        let header = self.read_header_within(pack, size)?;
        let data_end = match &header {
            Ok(entries) => entries.last().map_or(0, |e| e.offset as u64 + e.length as u64),
            Err(_) => match indexed_end {
                Some(end) if end <= size => end,
                _ => return Ok(WholePack { bytes: None, header }),
            },
        };
        let bytes = self.read_pack_range(pack, 0, data_end)?;
        Ok(WholePack { bytes: Some(bytes), header })
    }

    /// A pack's header read from its end, without reading more than a pack of `size` bytes
    /// can have as a header. `Err` inside: the header is unusable, and why.
    pub(crate) fn read_header_within(&self, pack: &Id, size: u64) -> RepoResult<Result<Vec<PackEntry>, String>> {
        let Some(trailer_at) = size.checked_sub(4) else {
            return Ok(Err("shorter than its length field".into()));
        };
        let Some(hlen) = self.read_pack_range(pack, trailer_at, size)?.trailer() else {
            return Ok(Err("its length field cannot be read".into()));
        };
        self.read_header_claimed(pack, size, hlen)
    }

    /// A pack's header of the length `hlen` its trailer claims, read only when a pack of
    /// `size` bytes can have one that long.
    pub(crate) fn read_header_claimed(
        &self,
        pack: &Id,
        size: u64,
        hlen: u64,
    ) -> RepoResult<Result<Vec<PackEntry>, String>> {
        let Some(trailer_at) = size.checked_sub(4) else {
            return Ok(Err("shorter than its length field".into()));
        };
        let Some(data_end) = trailer_at.checked_sub(hlen) else {
            return Ok(Err(format!("header length {hlen} exceeds the pack")));
        };
        if hlen > max_header_len(data_end, self.pack_size() as u64) {
            return Ok(Err(format!(
                "its trailer claims a header of {hlen} bytes, more than a pack of {size} bytes can have: not read"
            )));
        }
        Ok(self.read_pack_range(pack, data_end, trailer_at)?.sealed_header(self.key(), data_end))
    }
}
