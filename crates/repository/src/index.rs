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
            self.blobs.entry(e.id).or_insert(BlobLocation {
                pack: number,
                kind: e.kind,
                offset: e.offset,
                length: e.length,
                raw_length: e.raw_length,
            });
        }
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
