//! Reclaiming the space of removed backups.
//!
//! Order of writes, so that a crash at any point loses nothing: (1) blobs still needed from
//! packs being dropped are copied into new packs, (2) a new index covering every kept pack is
//! written, (3) the index files it replaces are removed, (4) the dropped packs are removed.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use rayon::prelude::*;
use serde::Serialize;

use crate::pack::{pack_id_from_name, pack_name};
use crate::repofile::index_file::IndexFile;
use crate::repofile::pack_header::PackEntry;
use crate::{BlobWriter, Id, LockKind, Node, RepoError, RepoResult, Repository, Snapshot};

/// A pack is rewritten when more than this share of it is unused.
const REPACK_UNUSED_SHARE: f64 = 0.10;

#[derive(Debug, Default, Clone, Serialize)]
pub struct PruneReport {
    pub snapshots: usize,
    pub packs_before: usize,
    pub packs_removed: usize,
    pub packs_rewritten: usize,
    pub blobs_removed: usize,
    pub bytes_freed: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Temporary objects left by writers that stopped mid-upload, removed.
    pub temporaries_removed: usize,
}

/// A temporary object this old belongs to no running write: a pack upload ends within
/// minutes, and the exclusive lock keeps other writers away while prune runs.
const ABANDONED_AFTER: Duration = Duration::from_secs(24 * 3600);

impl Repository {
    /// Every blob (data and tree) reachable from the given snapshots.
    pub fn reachable_blobs(&self, snapshots: &[(Id, Snapshot)]) -> RepoResult<HashSet<Id>> {
        let seen = Mutex::new(HashSet::new());
        let roots: Vec<&Node> =
            snapshots.iter().flat_map(|(_, s)| s.units.iter().flat_map(|u| u.roots.iter().map(|r| &r.node))).collect();
        roots.par_iter().try_for_each(|n| self.mark(n, &seen))?;
        Ok(seen.into_inner().expect("seen lock"))
    }

    fn mark(&self, node: &Node, seen: &Mutex<HashSet<Id>>) -> RepoResult<()> {
        {
            let mut s = seen.lock().expect("seen lock");
            for c in &node.content {
                s.insert(*c);
            }
        }
        if let Some(t) = node.subtree {
            if !seen.lock().expect("seen lock").insert(t) {
                return Ok(());
            }
            let tree = self.read_tree(&t)?;
            tree.nodes.par_iter().try_for_each(|n| self.mark(n, seen))?;
        }
        Ok(())
    }

    /// Removes data no backup needs. Waits up to `wait` for running backups to finish.
    pub fn prune(&self, wait: Duration, progress: &dyn Fn(&str)) -> RepoResult<PruneReport> {
        let _lock = self.lock(LockKind::Exclusive, "prune", wait)?;
        progress("loading the index");
        self.load_index_strict()?;
        let (snapshots, unreadable) = self.snapshots()?;
        if let Some((name, e)) = unreadable.into_iter().next() {
            return Err(RepoError::malformed(
                name,
                format!("{e}; prune stops rather than drop data an unreadable backup may need"),
            ));
        }
        progress("finding the data every backup needs");
        let used = self.reachable_blobs(&snapshots)?;

        let listed = self.store().list("data")?;
        let mut report = PruneReport {
            snapshots: snapshots.len(),
            packs_before: listed.len(),
            bytes_before: listed.iter().map(|o| o.size).sum(),
            ..Default::default()
        };
        let by_pack = self.inner.index.read().expect("index lock").by_pack();
        let mut rewrite: Vec<(Id, Vec<PackEntry>)> = Vec::new();
        let mut drop_packs: HashSet<Id> = HashSet::new();
        let mut indexed: HashSet<Id> = HashSet::new();
        let pack_sizes: std::collections::HashMap<&str, u64> =
            listed.iter().map(|o| (o.name.as_str(), o.size)).collect();
        for (pack, entries) in &by_pack {
            indexed.insert(*pack);
            // The pack's real size, not the sum of its indexed blobs: a blob stored twice
            // (two devices backing up the same file at once) is indexed in one pack only,
            // and the other copy is space to reclaim.
            let indexed_bytes: u64 = entries.iter().map(|e| e.length as u64).sum();
            let header = entries.len() as u64 * crate::repofile::pack_header::ENTRY_LEN as u64 + 64;
            let total = pack_sizes
                .get(pack_name(pack).as_str())
                .map(|size| size.saturating_sub(header))
                .unwrap_or(indexed_bytes)
                .max(indexed_bytes);
            let needed: Vec<PackEntry> = entries.iter().filter(|e| used.contains(&e.id)).cloned().collect();
            let unused: u64 = total - needed.iter().map(|e| e.length as u64).sum::<u64>();
            report.blobs_removed += entries.len() - needed.len();
            if needed.is_empty() {
                drop_packs.insert(*pack);
            } else if unused as f64 > total as f64 * REPACK_UNUSED_SHARE {
                rewrite.push((*pack, needed));
                drop_packs.insert(*pack);
            }
        }
        // Packs with no index entry: left by an interrupted backup. No backup refers to them
        // (a snapshot is written only after its index), and we hold the exclusive lock.
        for o in &listed {
            if let Some(id) = pack_id_from_name(&o.name) {
                if !indexed.contains(&id) {
                    drop_packs.insert(id);
                }
            }
        }

        self.inner.index.write().expect("index lock").remove_packs(&drop_packs);
        if !rewrite.is_empty() {
            progress(&format!("rewriting {} partly used packs", rewrite.len()));
            let writer = BlobWriter::new(self, self.store().write_concurrency());
            for (pack, needed) in &rewrite {
                // Only the stretch the needed blobs occupy, as the index says: never more
                // than a pack holds, whatever the file under that name has grown to.
                let start = needed.iter().map(|e| e.offset as u64).min().unwrap_or(0);
                let end = needed.iter().map(|e| e.offset as u64 + e.length as u64).max().unwrap_or(0);
                let bytes = self.read_pack_range(pack, start, end)?;
                for e in needed {
                    let sealed = bytes
                        .blob((e.offset as u64 - start) as usize, e.length as usize)
                        .ok_or_else(|| RepoError::malformed(pack_name(pack), "blob beyond the end of the pack"))?;
                    // A blob is carried into its new pack only once it is known to be the
                    // blob its id names: a repack must not give damage or a swapped blob a
                    // fresh, valid-looking home. Nothing is deleted before this loop ends.
                    let blob = self.decode_blob(&e.id, sealed, e.raw_length as usize)?;
                    writer.add_sealed(e.kind, e.id, blob.sealed(), e.raw_length)?;
                }
            }
            writer.finish()?;
            report.packs_rewritten = rewrite.len();
        }

        let old_files = self.inner.index.read().expect("index lock").files.clone();
        // The new index: every pack that stays, with the rewritten ones.
        let mut new_index = IndexFile::default();
        new_index.packs.extend(self.inner.index.read().expect("index lock").by_pack());
        progress("writing the new index");
        let written = write_split(self, new_index)?;
        for f in old_files {
            if !written.contains(&f) {
                self.store().remove(&format!("index/{}", f.to_hex()))?;
            }
        }
        progress(&format!("removing {} packs", drop_packs.len()));
        let sizes: std::collections::HashMap<String, u64> = listed.iter().map(|o| (o.name.clone(), o.size)).collect();
        for pack in &drop_packs {
            let name = pack_name(pack);
            report.bytes_freed += sizes.get(&name).copied().unwrap_or(0);
            self.store().remove(&name)?;
        }
        report.packs_removed = drop_packs.len();
        progress("removing abandoned temporary objects");
        for prefix in ["data", "index", "snapshots", "keys", "locks"] {
            for name in self.store().stale_temporaries(prefix, ABANDONED_AFTER)? {
                report.temporaries_removed += 1;
                self.store().remove(&name)?;
            }
        }
        self.load_index_strict()?;
        report.bytes_after = self.store().list("data")?.iter().map(|o| o.size).sum();
        Ok(report)
    }
}

/// Writes an index in files of at most a few thousand packs each.
fn write_split(repo: &Repository, index: IndexFile) -> RepoResult<Vec<Id>> {
    let mut out = Vec::new();
    for file in IndexFile::split(index.packs) {
        out.push(repo.write_index_file(&file)?);
    }
    Ok(out)
}
