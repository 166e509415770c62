//! Reading many blobs at once, pack by pack: each pack is visited once, in the order of its
//! name, and only the stretches that hold wanted blobs are read (nearby blobs in one read),
//! so a restore of many small files costs a few large reads rather than one read per blob.
//! The reads run on as many threads as the location takes connections, ahead of the decoding
//! and writing (which use the rayon pool), inside a read-ahead budget: on a link with a long
//! round trip the waits overlap, and memory stays bounded however many reads are queued.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::index::BlobLocation;
use crate::parallel::{self, Budget};
use crate::{Id, RepoError, RepoResult, Repository};

/// Wanted blobs closer than this in a pack are read together.
const MERGE_GAP: u64 = 256 * 1024;
/// A read covers at most this much (several blobs), bounding each thread's memory.
const MAX_READ: u64 = 4 * 1024 * 1024;
/// Bytes fetched and not yet given to `on_blob`, across every reading thread.
const READ_AHEAD: u64 = 32 * 1024 * 1024;

/// What [`Repository::read_blobs`] calls with each blob: its id, and its plain bytes
/// (authenticated, and hashing to the id) or why no copy could be read.
pub type OnBlob<'a> = dyn Fn(&Id, RepoResult<Vec<u8>>) + Sync + 'a;

/// A blob to read: where it is, and its position in the caller's list (not its id: a
/// restore wants hundreds of thousands, and the position is an eighth of the id's size).
struct Wanted {
    at: BlobLocation,
    of: u32,
}

impl Repository {
    /// The plain length of a blob, from the index alone.
    pub fn blob_length(&self, id: &Id) -> Option<u64> {
        self.index_ready().ok()?;
        self.inner.index.read().expect("index lock").get(id).map(|(_, l)| l.raw_length as u64)
    }

    /// Reads every blob of `ids` once (repeats are read once and given once), fetching on
    /// the location's connections and decoding on the calling rayon pool, and gives each to
    /// `on_blob` as it is decoded. A copy that cannot
    /// be read or authenticated is read again from any other stored copy before it is given
    /// as an error; a blob the index does not know is given as [`RepoError::MissingBlob`].
    /// Blobs are given in no particular order. Fails, giving nothing, only when the index
    /// cannot be read.
    pub fn read_blobs(&self, ids: &[Id], on_blob: &OnBlob<'_>) -> RepoResult<()> {
        self.index_ready()?;
        // One flat list, sorted by pack and offset: a restore asks for tens of thousands of
        // blobs, and a map of maps would cost several times their size on a small device.
        let mut wanted: Vec<Wanted> = Vec::with_capacity(ids.len());
        let mut pack_ids: HashMap<u32, Id> = HashMap::new();
        let mut missing = Vec::new();
        {
            let index = self.inner.index.read().expect("index lock");
            for (of, id) in ids.iter().enumerate() {
                match (index.get(id), u32::try_from(of)) {
                    (Some((pack, at)), Ok(of)) => {
                        pack_ids.insert(at.pack, pack);
                        wanted.push(Wanted { at, of });
                    }
                    // Beyond four billion blobs (which no memory holds): read one by one.
                    (Some(_), Err(_)) => on_blob(id, self.read_blob(id)),
                    (None, _) => missing.push(*id),
                }
            }
        }
        missing.sort_unstable();
        missing.dedup();
        for id in &missing {
            on_blob(id, Err(RepoError::MissingBlob(*id)));
        }
        let id_of = |w: &Wanted| &ids[w.of as usize];
        // Packs in the order of their names.
        let mut by_name: Vec<(Id, u32)> = pack_ids.iter().map(|(n, id)| (*id, *n)).collect();
        by_name.sort_unstable();
        let rank: HashMap<u32, usize> = by_name.iter().enumerate().map(|(r, (_, n))| (*n, r)).collect();
        let rank_of = |w: &Wanted| rank.get(&w.at.pack).copied().unwrap_or(usize::MAX);
        wanted.sort_unstable_by(|a, b| (rank_of(a), a.at.offset, id_of(a)).cmp(&(rank_of(b), b.at.offset, id_of(b))));
        // A repeated id has one location, so its copies are next to each other.
        wanted.dedup_by(|a, b| id_of(a) == id_of(b));
        let reads: Vec<(&Id, &[Wanted])> = wanted
            .chunk_by(|a, b| a.at.pack == b.at.pack)
            .filter_map(|blobs| Some((pack_ids.get(&blobs.first()?.at.pack)?, blobs)))
            .flat_map(|(pack, blobs)| ranges(blobs).into_iter().map(move |g| (pack, g)))
            .collect();
        let budget = Budget::new(READ_AHEAD);
        parallel::for_each(self.connections(), &reads, |(pack, group)| {
            let _share = budget.take(span(group));
            self.read_group(pack, group, ids, on_blob);
        });
        Ok(())
    }

    /// One read of a pack covering `group`, then each blob decoded from it.
    fn read_group(&self, pack: &Id, group: &[Wanted], ids: &[Id], on_blob: &OnBlob<'_>) {
        let Some(first) = group.first() else { return };
        let start = first.at.offset as u64;
        let end = start + span(group);
        let bytes = match self.read_pack_range(pack, start, end) {
            Ok(b) if b.len() as u64 == end - start => b,
            Ok(_) => {
                let why = format!("pack {} is shorter than the index says", pack.short());
                group.par_iter().for_each(|w| {
                    let id = &ids[w.of as usize];
                    on_blob(id, self.read_again(id, &why))
                });
                return;
            }
            Err(e) => {
                let why = format!("pack {} cannot be read: {e}", pack.short());
                group.par_iter().for_each(|w| {
                    let id = &ids[w.of as usize];
                    on_blob(id, self.read_again(id, &why))
                });
                return;
            }
        };
        group.par_iter().for_each(|w| {
            let id = &ids[w.of as usize];
            let s = (w.at.offset as u64 - start) as usize;
            let opened = match bytes.blob(s, w.at.length as usize) {
                Some(sealed) => self.decode_blob(id, sealed, w.at.raw_length as usize).map(|b| b.into_plain()),
                None => {
                    Err(RepoError::Unreadable { what: format!("blob {}", id.short()), why: "beyond the read".into() })
                }
            };
            match opened {
                Ok(plain) => on_blob(id, Ok(plain)),
                Err(e) => on_blob(id, self.read_again(id, &e.to_string())),
            }
        });
    }

    /// A blob whose copy in a pack could not be used, from any copy (the same one included:
    /// a read may fail once). When none serves, the first failure says why.
    fn read_again(&self, id: &Id, why: &str) -> RepoResult<Vec<u8>> {
        self.read_blob(id)
            .map_err(|_| RepoError::Unreadable { what: format!("blob {}", id.short()), why: why.to_string() })
    }
}

/// The bytes one read of `group` covers.
fn span(group: &[Wanted]) -> u64 {
    let start = group.first().map_or(0, |w| w.at.offset as u64);
    let end = group.iter().map(|w| w.at.offset as u64 + w.at.length as u64).max().unwrap_or(start);
    end - start
}

/// Groups wanted blobs (sorted by offset) into reads of nearby blobs, each at most MAX_READ
/// long (or one blob, when a blob is larger).
fn ranges(wanted: &[Wanted]) -> Vec<&[Wanted]> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < wanted.len() {
        let start = wanted[i].at.offset as u64;
        let mut end = start + wanted[i].at.length as u64;
        let mut j = i + 1;
        while j < wanted.len() {
            let (o, l) = (wanted[j].at.offset as u64, wanted[j].at.length as u64);
            if o > end + MERGE_GAP || o + l - start > MAX_READ {
                break;
            }
            end = end.max(o + l);
            j += 1;
        }
        out.push(&wanted[i..j]);
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(offset: u32, length: u32) -> Wanted {
        Wanted { at: BlobLocation { pack: 0, kind: crate::BlobKind::Data, offset, length, raw_length: length }, of: 0 }
    }

    #[test]
    fn nearby_blobs_are_read_together_and_no_read_grows_past_its_bound() {
        let gap = MERGE_GAP as u32;
        let big = MAX_READ as u32;
        let wanted = [w(0, 100), w(100 + gap, 10), w(200 + 3 * gap, 10), w(300 + 4 * gap, big)];
        let groups: Vec<usize> = ranges(&wanted).iter().map(|g| g.len()).collect();
        assert_eq!(groups, vec![2, 1, 1]);
    }
}
