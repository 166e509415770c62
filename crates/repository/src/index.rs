//! The in-memory index: where every blob is, merged from all index files.
//!
//! Every command that reads blobs holds the index whole, and a device with 1 GiB may hold a
//! repository of millions of blobs (or one shared by many devices), so it is kept compact: one
//! array of 52-byte entries sorted by id, found by binary search within the range a table of id
//! prefixes gives (ids are uniform hashes, so each range is a handful of entries), beside a
//! small hash map of the blobs added since the array was last merged (a write session's new
//! packs). A hash map of every blob held about 90 bytes a blob; the array holds 52 and a few
//! for the prefix table (docs/ARCHITECTURE.md, "Inside the repository crate").

use std::collections::{HashMap, HashSet};

use crate::repofile::index_file::IndexFile;
use crate::repofile::pack_header::PackEntry;
use crate::{BlobKind, Id};

#[derive(Debug, Clone, Copy)]
pub(crate) struct BlobLocation {
    pub pack: u32,
    pub kind: BlobKind,
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
}

/// One blob in the sorted array.
#[derive(Clone, Copy)]
struct Entry {
    id: Id,
    location: BlobLocation,
}

/// Blobs added one pack at a time are merged into the sorted array once they are this many,
/// or an eighth of the array if that is more: merges cost a pass over the array each, and the
/// array grows by at least an eighth between them, so their cost stays in proportion to the
/// blobs added.
const MERGE_AT: usize = 16_384;

/// The prefix table has at most 2^16 ranges (256 KiB for a repository of millions of blobs)
/// and about one range for every 4 blobs below that.
const MAX_PREFIX_BITS: u32 = 16;

#[derive(Default)]
pub(crate) struct Index {
    packs: Vec<Id>,
    pack_numbers: HashMap<Id, u32>,
    /// One entry per blob, the copy this index uses first, sorted by id.
    sorted: Vec<Entry>,
    /// How many leading bits of an id select its range in `starts`.
    prefix_bits: u32,
    /// Where each prefix's range of `sorted` begins; one more than the ranges, the last being
    /// `sorted.len()`. Empty while `sorted` is.
    starts: Vec<u32>,
    /// Blobs added since `sorted` was last merged; none of them is in `sorted`.
    recent: HashMap<Id, BlobLocation>,
    /// Further copies of blobs stored in more than one pack: two writers stored the same
    /// blob, or a blob was stored again after its first copy was found damaged. A read that
    /// finds one copy damaged tries these.
    others: HashMap<Id, Vec<BlobLocation>>,
    /// Index files the entries came from (names under `index/`).
    pub files: Vec<Id>,
}

impl Index {
    /// Adds the blobs of one pack, looked up at once (a write session's pack just stored).
    pub fn add_pack(&mut self, pack: Id, entries: &[PackEntry]) {
        let number = self.pack_number(pack);
        for e in entries {
            let location = location(number, e);
            match self.primary(&e.id) {
                None => {
                    self.recent.insert(e.id, location);
                }
                Some(first) if first.pack != number => self.add_other(e.id, location),
                Some(_) => {}
            }
        }
        if self.recent.len() >= MERGE_AT.max(self.sorted.len() / 8) {
            self.merge_recent();
        }
    }

    /// Adds everything an index file lists.
    pub fn add_file(&mut self, id: Id, file: &IndexFile) {
        for (pack, entries) in &file.packs {
            self.add_pack(*pack, entries);
        }
        self.files.push(id);
    }

    /// Every known copy of a blob, the one this index uses first.
    pub fn locations(&self, id: &Id) -> Vec<(Id, BlobLocation)> {
        let first = self.primary(id).into_iter();
        let rest = self.others.get(id).into_iter().flatten().copied();
        first.chain(rest).map(|l| (self.packs[l.pack as usize], l)).collect()
    }

    /// Forgets every blob location in the given packs.
    pub fn remove_packs(&mut self, packs: &HashSet<Id>) {
        let numbers: HashSet<u32> = packs.iter().filter_map(|p| self.pack_numbers.get(p).copied()).collect();
        self.sorted.retain(|e| !numbers.contains(&e.location.pack));
        self.recent.retain(|_, l| !numbers.contains(&l.pack));
        self.others.retain(|_, ls| {
            ls.retain(|l| !numbers.contains(&l.pack));
            !ls.is_empty()
        });
        self.index_prefixes();
        // A blob whose used copy went keeps another one.
        let orphans: Vec<Id> = self.others.keys().filter(|id| self.primary(id).is_none()).copied().collect();
        for id in orphans {
            if let Some(mut ls) = self.others.remove(&id) {
                self.recent.insert(id, ls.remove(0));
                if !ls.is_empty() {
                    self.others.insert(id, ls);
                }
            }
        }
    }

    pub fn has_pack(&self, pack: &Id) -> bool {
        self.pack_numbers.contains_key(pack)
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.primary(id).is_some()
    }

    pub fn get(&self, id: &Id) -> Option<(Id, BlobLocation)> {
        self.primary(id).map(|l| (self.packs[l.pack as usize], l))
    }

    pub fn blob_count(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    /// Every blob, grouped by the pack holding the copy this index uses, in pack order.
    pub fn by_pack(&self) -> HashMap<Id, Vec<PackEntry>> {
        let mut out: HashMap<Id, Vec<PackEntry>> = HashMap::new();
        let all = self.sorted.iter().map(|e| (&e.id, &e.location)).chain(self.recent.iter());
        for (id, l) in all {
            out.entry(self.packs[l.pack as usize]).or_default().push(PackEntry {
                kind: l.kind,
                id: *id,
                offset: l.offset,
                length: l.length,
                raw_length: l.raw_length,
            });
        }
        for v in out.values_mut() {
            v.sort_by_key(|e| e.offset);
        }
        out
    }

    fn pack_number(&mut self, pack: Id) -> u32 {
        pack_number(&mut self.packs, &mut self.pack_numbers, pack)
    }

    fn add_other(&mut self, id: Id, location: BlobLocation) {
        let others = self.others.entry(id).or_default();
        if !others.iter().any(|l| l.pack == location.pack) {
            others.push(location);
        }
    }

    /// The copy of a blob this index uses first.
    fn primary(&self, id: &Id) -> Option<BlobLocation> {
        if let Some(l) = self.recent.get(id) {
            return Some(*l);
        }
        let range = self.range_of(id)?;
        let candidates = self.sorted.get(range)?;
        candidates.binary_search_by(|e| e.id.cmp(id)).ok().map(|i| candidates[i].location)
    }

    /// The part of `sorted` where an id would be.
    fn range_of(&self, id: &Id) -> Option<std::ops::Range<usize>> {
        let p = prefix(id, self.prefix_bits);
        let start = *self.starts.get(p)? as usize;
        let end = *self.starts.get(p + 1)? as usize;
        Some(start..end)
    }

    /// Moves `recent` into `sorted`, merging from the back in place: no second copy of the
    /// array is made.
    fn merge_recent(&mut self) {
        if self.recent.is_empty() {
            return;
        }
        let mut new: Vec<Entry> =
            std::mem::take(&mut self.recent).into_iter().map(|(id, location)| Entry { id, location }).collect();
        new.sort_unstable_by_key(|e| e.id);
        let old = self.sorted.len();
        self.sorted.reserve_exact(new.len());
        self.sorted.extend_from_slice(&new);
        let (mut i, mut j, mut k) = (old, new.len(), old + new.len());
        while j > 0 {
            k -= 1;
            if i > 0 && self.sorted[i - 1].id > new[j - 1].id {
                self.sorted[k] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[k] = new[j - 1];
                j -= 1;
            }
        }
        self.index_prefixes();
    }

    /// Rebuilds the prefix table for `sorted` as it is.
    fn index_prefixes(&mut self) {
        let n = self.sorted.len();
        self.starts.clear();
        if n == 0 {
            self.prefix_bits = 0;
            self.starts.shrink_to_fit();
            return;
        }
        // About one range for every 4 blobs, up to the table's largest size.
        self.prefix_bits = (usize::BITS - (n / 4).leading_zeros()).min(MAX_PREFIX_BITS);
        let ranges = 1usize << self.prefix_bits;
        self.starts.reserve_exact(ranges + 1);
        let mut at = 0usize;
        for p in 0..ranges {
            while at < n && prefix(&self.sorted[at].id, self.prefix_bits) < p {
                at += 1;
            }
            self.starts.push(position(at));
        }
        self.starts.push(position(n));
    }
}

/// Builds an index from many index files at once (opening a repository, checking it): the
/// entries are gathered unsorted and sorted once, so loading takes no more memory than the
/// index it makes, whatever order the files arrive in.
#[derive(Default)]
pub(crate) struct IndexBuilder {
    packs: Vec<Id>,
    pack_numbers: HashMap<Id, u32>,
    entries: Vec<Entry>,
    files: Vec<Id>,
}

impl IndexBuilder {
    pub fn add_file(&mut self, id: Id, file: &IndexFile) {
        // Exactly: a vector grown by doubling would hold up to twice the index at its peak.
        self.entries.reserve_exact(file.packs.iter().map(|(_, e)| e.len()).sum());
        for (pack, entries) in &file.packs {
            let number = pack_number(&mut self.packs, &mut self.pack_numbers, *pack);
            self.entries.extend(entries.iter().map(|e| Entry { id: e.id, location: location(number, e) }));
        }
        self.files.push(id);
    }

    pub fn finish(self) -> Index {
        let IndexBuilder { packs, pack_numbers, mut entries, files } = self;
        // The copy used first is the one in the pack with the lowest id: the same whichever
        // order the index files were read in.
        entries.sort_unstable_by(|a, b| {
            a.id.cmp(&b.id).then_with(|| packs[a.location.pack as usize].cmp(&packs[b.location.pack as usize]))
        });
        let mut others: HashMap<Id, Vec<BlobLocation>> = HashMap::new();
        let mut kept = 0usize;
        for i in 0..entries.len() {
            let e = entries[i];
            if kept > 0 && entries[kept - 1].id == e.id {
                let first = entries[kept - 1].location.pack;
                let copies = others.entry(e.id).or_default();
                if e.location.pack != first && !copies.iter().any(|l| l.pack == e.location.pack) {
                    copies.push(e.location);
                }
            } else {
                entries[kept] = e;
                kept += 1;
            }
        }
        entries.truncate(kept);
        others.retain(|_, copies| !copies.is_empty());
        let mut index = Index { packs, pack_numbers, sorted: entries, others, files, ..Index::default() };
        index.index_prefixes();
        index
    }
}

fn pack_number(packs: &mut Vec<Id>, numbers: &mut HashMap<Id, u32>, pack: Id) -> u32 {
    *numbers.entry(pack).or_insert_with(|| {
        packs.push(pack);
        (packs.len() - 1) as u32
    })
}

fn location(pack: u32, e: &PackEntry) -> BlobLocation {
    BlobLocation { pack, kind: e.kind, offset: e.offset, length: e.length, raw_length: e.raw_length }
}

/// The first `bits` bits of an id (at most 16).
fn prefix(id: &Id, bits: u32) -> usize {
    if bits == 0 {
        return 0;
    }
    (u16::from_be_bytes([id.0[0], id.0[1]]) >> (16 - bits)) as usize
}

/// A position in the sorted array, as the prefix table keeps it: an index of more than
/// 4 billion blobs (200 GiB of entries) is beyond any device this runs on, and saturating
/// keeps every range in bounds.
fn position(at: usize) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> Id {
        Id(*blake3::hash(&n.to_le_bytes()).as_bytes())
    }

    fn entry(n: u64, offset: u32) -> PackEntry {
        PackEntry { kind: BlobKind::Data, id: id(n), offset, length: 10, raw_length: 8 }
    }

    fn pack(n: u64) -> Id {
        id(1_000_000 + n)
    }

    #[test]
    fn blobs_added_by_pack_and_by_file_are_found_the_same_way() {
        let mut incremental = Index::default();
        let mut builder = IndexBuilder::default();
        for p in 0..40u64 {
            let entries: Vec<PackEntry> = (0..1_000).map(|i| entry(p * 1_000 + i, i as u32 * 10)).collect();
            incremental.add_pack(pack(p), &entries);
            builder.add_file(id(5_000_000 + p), &IndexFile { packs: vec![(pack(p), entries)] });
        }
        let built = builder.finish();
        for index in [&incremental, &built] {
            assert_eq!(index.blob_count(), 40_000);
            for n in 0..40_000u64 {
                let (p, l) = index.get(&id(n)).expect("every blob is found");
                assert_eq!(p, pack(n / 1_000));
                assert_eq!(l.offset, (n % 1_000) as u32 * 10);
            }
            assert!(!index.contains(&id(40_000)));
        }
    }

    #[test]
    fn a_blob_in_two_packs_keeps_both_copies_and_loses_only_the_removed_one() {
        for use_builder in [false, true] {
            let mut index = if use_builder {
                let mut b = IndexBuilder::default();
                b.add_file(id(9), &IndexFile { packs: vec![(pack(1), vec![entry(7, 0)])] });
                b.add_file(id(10), &IndexFile { packs: vec![(pack(2), vec![entry(7, 50)])] });
                b.finish()
            } else {
                let mut i = Index::default();
                i.add_pack(pack(1), &[entry(7, 0)]);
                i.add_pack(pack(2), &[entry(7, 50)]);
                i
            };
            assert_eq!(index.blob_count(), 1);
            assert_eq!(index.locations(&id(7)).len(), 2);
            let first = index.get(&id(7)).expect("found").0;
            index.remove_packs(&HashSet::from([first]));
            let (left, _) = index.get(&id(7)).expect("the other copy is used now");
            assert_ne!(left, first);
            assert_eq!(index.locations(&id(7)).len(), 1);
        }
    }

    #[test]
    fn merged_blobs_stay_sorted_and_removing_packs_keeps_the_rest_found() {
        let mut index = Index::default();
        for p in 0..100u64 {
            let entries: Vec<PackEntry> = (0..500).map(|i| entry(p * 500 + i, i as u32)).collect();
            index.add_pack(pack(p), &entries);
        }
        assert!(index.sorted.windows(2).all(|w| w[0].id < w[1].id));
        index.remove_packs(&(0..50u64).map(pack).collect());
        assert_eq!(index.blob_count(), 25_000);
        assert!(!index.contains(&id(0)));
        assert!((25_000..50_000u64).all(|n| index.contains(&id(n))));
    }
}
