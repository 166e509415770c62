//! Packs that no index lists are what an interrupted backup leaves behind (packs are written
//! before their index). Adopting them — reading their headers and indexing them — lets the
//! next backup reuse that work instead of uploading it again.

use lifeboat_storage::ObjectInfo;
use rayon::prelude::*;

use crate::pack::{pack_id_from_name, parse_header};
use crate::repofile::index_file::IndexFile;
use crate::{Id, RepoResult, Repository};

impl Repository {
    /// Indexes every pack the index does not know; returns how many were adopted. A pack
    /// whose header cannot be read is left alone (`prune` removes it). Call after
    /// [`Repository::load_index`], holding a shared lock; `listed` is the location's listing
    /// of `data`, made under that lock.
    pub(crate) fn adopt_unindexed_packs(&self, listed: &[ObjectInfo]) -> RepoResult<usize> {
        let orphans: Vec<(Id, u64)> = {
            let index = self.inner.index.read().expect("index lock");
            listed
                .iter()
                .filter_map(|o| pack_id_from_name(&o.name).map(|id| (id, o.size)))
                .filter(|(id, _)| !index.has_pack(id))
                .collect()
        };
        if orphans.is_empty() {
            return Ok(0);
        }
        let adopted: Vec<_> = orphans
            .par_iter()
            .filter_map(|(id, size)| {
                let tail = self.read_pack_range(id, size.checked_sub(4)?, *size).ok()?;
                let hlen = u32::from_le_bytes(tail.try_into().ok()?) as u64;
                let data_end = size.checked_sub(4 + hlen)?;
                let sealed = self.read_pack_range(id, data_end, size - 4).ok()?;
                let entries = parse_header(self.key(), &sealed, data_end).ok()?;
                Some((*id, entries))
            })
            .collect();
        if adopted.is_empty() {
            return Ok(0);
        }
        let file = IndexFile { packs: adopted };
        let n = file.packs.len();
        let written = self.write_index_file(&file)?;
        self.inner.index.write().expect("index lock").add_file(written, &file);
        tracing::info!("adopted {n} packs left by an interrupted backup");
        Ok(n)
    }
}
