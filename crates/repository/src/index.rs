//! The in-memory index: where every blob is, merged from all index files.

use std::collections::HashMap;

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

#[derive(Default)]
pub(crate) struct Index {
    packs: Vec<Id>,
    pack_numbers: HashMap<Id, u32>,
    blobs: HashMap<Id, BlobLocation>,
    /// Further copies of blobs stored in more than one pack: two writers stored the same
    /// blob, or a blob was stored again after its first copy was found damaged. A read that
    /// finds one copy damaged tries these.
    others: HashMap<Id, Vec<BlobLocation>>,
    /// Index files the entries came from (names under `index/`).
    pub files: Vec<Id>,
}

impl Index {
    pub fn add_pack(&mut self, pack: Id, entries: &[PackEntry]) {
        let number = *self.pack_numbers.entry(pack).or_insert_with(|| {
            self.packs.push(pack);
            (self.packs.len() - 1) as u32
        });
        self.blobs.reserve(entries.len());
        for e in entries {
            let loc = BlobLocation {
                pack: number,
                kind: e.kind,
                offset: e.offset,
                length: e.length,
                raw_length: e.raw_length,
            };
            match self.blobs.entry(e.id) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(loc);
                }
                std::collections::hash_map::Entry::Occupied(o) => {
                    if o.get().pack != number {
                        let others = self.others.entry(e.id).or_default();
                        if !others.iter().any(|l| l.pack == number) {
                            others.push(loc);
                        }
                    }
                }
            }
        }
    }

    /// Every known copy of a blob, the one this index uses first.
    pub fn locations(&self, id: &Id) -> Vec<(Id, BlobLocation)> {
        let first = self.blobs.get(id).into_iter();
        let rest = self.others.get(id).into_iter().flatten();
        first.chain(rest).map(|l| (self.packs[l.pack as usize], *l)).collect()
    }

    /// Adds everything an index file lists.
    pub fn add_file(&mut self, id: Id, file: &crate::repofile::index_file::IndexFile) {
        for (pack, entries) in &file.packs {
            self.add_pack(*pack, entries);
        }
        self.files.push(id);
    }

    /// Forgets every blob location in the given packs.
    pub fn remove_packs(&mut self, packs: &std::collections::HashSet<Id>) {
        let numbers: std::collections::HashSet<u32> =
            packs.iter().filter_map(|p| self.pack_numbers.get(p).copied()).collect();
        self.blobs.retain(|_, l| !numbers.contains(&l.pack));
        self.others.retain(|_, ls| {
            ls.retain(|l| !numbers.contains(&l.pack));
            !ls.is_empty()
        });
        // A blob whose used copy went keeps another one.
        let orphans: Vec<Id> = self.others.keys().filter(|id| !self.blobs.contains_key(id)).copied().collect();
        for id in orphans {
            if let Some(mut ls) = self.others.remove(&id) {
                self.blobs.insert(id, ls.remove(0));
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
        self.blobs.contains_key(id)
    }

    pub fn get(&self, id: &Id) -> Option<(Id, BlobLocation)> {
        self.blobs.get(id).map(|l| (self.packs[l.pack as usize], *l))
    }

    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    /// Every blob, grouped by the pack holding the copy this index uses, in pack order.
    pub fn by_pack(&self) -> HashMap<Id, Vec<PackEntry>> {
        let mut out: HashMap<Id, Vec<PackEntry>> = HashMap::new();
        for (id, l) in &self.blobs {
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
}
