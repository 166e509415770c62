//! `check --repair`: rebuilds what the repository itself can rebuild, and says what it cannot.
//!
//! - The index, from the packs: every pack is read whole, its blobs authenticated, and one new
//!   index file lists the intact ones (a pack whose header is damaged is indexed from the old
//!   index's entries for it, where they still authenticate). The new file is written before
//!   the old ones are removed, so a crash leaves at worst two indexes that agree.
//!   Damaged or missing blobs leave the index, so the next backup stores that data again.
//! - Snapshots that cannot be read (no one can restore them) are removed; their data stays
//!   until the next prune.
//! - Key slots that are damaged or unreadable are removed, never the one in use; the secret
//!   they held must be added again.
//!
//! Files whose data is gone stay unrestorable: the report names them (via `check`).

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;

use crate::keys::{verify_slot, SlotState};
use crate::lock::LockKind;
use crate::pack::pack_id_from_name;
use crate::pack_read::WholePack;
use crate::repofile::index_file::IndexFile;
use crate::repofile::keyfile::KeyFile;
use crate::repofile::pack_header::PackEntry;
use crate::{ConfigState, Id, KeyKind, RepoError, RepoResult, Repository};

#[derive(Debug, Default, Clone, Serialize)]
pub struct RepairReport {
    /// Packs and blobs the rebuilt index lists.
    pub packs_indexed: usize,
    pub blobs_indexed: usize,
    /// Index files replaced by the rebuilt one.
    pub index_files_replaced: usize,
    /// What was repaired, in words.
    pub repaired: Vec<String>,
    /// What could not be, in words: lost blobs, removed backups and key slots.
    pub lost: Vec<String>,
}

/// How long repair waits for other writers to finish.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

impl Repository {
    pub fn repair(&self, progress: &(dyn Fn(&str) + Sync)) -> RepoResult<RepairReport> {
        let plain = self.uncached();
        let report = plain.repair_location(progress)?;
        self.take_index_of(&plain);
        Ok(report)
    }

    /// [`Repository::repair`] on the location's bytes alone.
    fn repair_location(&self, progress: &(dyn Fn(&str) + Sync)) -> RepoResult<RepairReport> {
        let _lock = self.lock(LockKind::Exclusive, "repair", LOCK_WAIT)?;
        let mut report = RepairReport::default();

        progress("reading the old index");
        let mut old_files = Vec::new();
        let mut old_entries: HashMap<Id, Vec<PackEntry>> = HashMap::new();
        for (name, r) in self.read_index_files()? {
            if let Ok((_, file)) = &r {
                for (pack, entries) in &file.packs {
                    old_entries.entry(*pack).or_default().extend(entries.iter().cloned());
                }
            }
            old_files.push(name);
        }

        progress("reading every pack");
        let listed = self.store().list("data")?;
        let on_disk: HashSet<Id> = listed.iter().filter_map(|o| pack_id_from_name(&o.name)).collect();
        for (pack, entries) in &old_entries {
            if !on_disk.contains(pack) {
                report.lost.push(format!("pack {} is missing: its {} blobs are gone", pack.short(), entries.len()));
            }
        }
        let total = listed.len();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let salvaged: Vec<Salvage> = listed
            .par_iter()
            .filter_map(|o| Some((pack_id_from_name(&o.name)?, o.size)))
            .map(|(pack, size)| {
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n.is_multiple_of(16) || n == total {
                    progress(&format!("read {n} of {total} packs"));
                }
                self.salvage_pack(&pack, size, old_entries.get(&pack))
            })
            .collect();
        let mut healthy = Vec::new();
        let mut broken = Vec::new();
        for sv in salvaged {
            report.lost.extend(sv.lost);
            if sv.header_damaged {
                broken.push((sv.pack, sv.good));
            } else if !sv.good.is_empty() {
                healthy.push((sv.pack, sv.good.into_iter().map(|(e, _)| e).collect::<Vec<PackEntry>>()));
            }
        }

        // The intact blobs of packs whose header is damaged go into new packs (with their own
        // index file), written while the old index still lists them: a crash here loses nothing.
        let mut index = crate::index::Index::default();
        for (pack, entries) in &healthy {
            index.add_pack(*pack, entries);
        }
        self.set_index(index);
        if !broken.is_empty() {
            progress("rewriting the intact blobs of damaged packs");
            let writer = crate::BlobWriter::new(self, 1);
            for (pack, blobs) in &broken {
                for (entry, plain) in blobs {
                    writer.add_with_id(entry.kind, entry.id, plain)?;
                }
                report.repaired.push(format!(
                    "pack {}: its header was damaged; its {} intact blobs were written into a new pack",
                    pack.short(),
                    blobs.len()
                ));
            }
            writer.finish()?;
        }

        progress("writing the rebuilt index");
        report.packs_indexed = healthy.len();
        let mut keep = HashSet::new();
        for file in IndexFile::split(healthy) {
            keep.insert(format!("index/{}", self.write_index_file(&file)?.to_hex()));
        }
        let now: HashSet<String> = self.store().list("index")?.into_iter().map(|o| o.name).collect();
        for name in old_files.iter().filter(|n| !keep.contains(*n) && now.contains(*n)) {
            self.store().remove(name)?;
            report.index_files_replaced += 1;
        }
        self.load_index()?;
        for (pack, _) in &broken {
            self.store().remove(&crate::pack::pack_name(pack))?;
        }
        let count = self.inner.index.read().expect("index lock").blob_count();
        report.blobs_indexed = count;

        progress("removing backups that cannot be read");
        let (_, unreadable) = self.snapshots()?;
        for (name, e) in unreadable {
            if let RepoError::Misnamed { sealed, actual, .. } = &e {
                // Authentic, under another backup's name: put it back under its own.
                let right = format!("snapshots/{}", actual.to_hex());
                self.store().write(&right, sealed)?;
                self.store().remove(&name)?;
                report.repaired.push(format!("{name} held the backup named {right}: moved back"));
                continue;
            }
            self.store().remove(&name)?;
            report.lost.push(format!("{name} could not be read ({e}): removed; its data stays until the next prune"));
        }

        progress("checking the config and the key slots");
        self.repair_key_slots(&mut report)?;
        Ok(report)
    }

    /// A pack's intact blobs (with their plaintext when its header is damaged, so they can be
    /// written again), and the blobs lost from it, in words.
    fn salvage_pack(&self, pack: &Id, size: u64, indexed: Option<&Vec<PackEntry>>) -> Salvage {
        let mut sv = Salvage { pack: *pack, good: Vec::new(), lost: Vec::new(), header_damaged: false };
        let indexed_end = indexed.map(|es| es.iter().map(|e| e.offset as u64 + e.length as u64).max().unwrap_or(0));
        let (bytes, header) = match self.read_whole_pack(pack, size, indexed_end) {
            Ok(WholePack { bytes: Some(bytes), header }) => (bytes, header),
            Ok(WholePack { bytes: None, header }) => {
                sv.lost.push(format!(
                    "pack {}: {} and no index lists it: its blobs are lost",
                    pack.short(),
                    header.err().unwrap_or_default()
                ));
                return sv;
            }
            Err(e) => {
                sv.lost.push(format!("pack {} cannot be read: {e}", pack.short()));
                return sv;
            }
        };
        let entries = match header {
            Ok(e) => e,
            Err(why) => {
                sv.header_damaged = true;
                match indexed {
                    Some(old) => {
                        let mut seen = HashSet::new();
                        old.iter().filter(|e| seen.insert(e.id)).cloned().collect()
                    }
                    None => {
                        sv.lost.push(format!(
                            "pack {}: header {why} and no index lists it: its blobs are lost",
                            pack.short()
                        ));
                        return sv;
                    }
                }
            }
        };
        for e in entries {
            let plain = bytes
                .blob(e.offset as usize, e.length as usize)
                .and_then(|sealed| self.decode_blob(&e.id, sealed, e.raw_length as usize).ok())
                .map(|blob| blob.into_plain());
            match plain {
                Some(p) => sv.good.push((e, if sv.header_damaged { p } else { Vec::new() })),
                None => {
                    sv.lost.push(format!("pack {}: blob {} is damaged and was dropped", pack.short(), e.id.short()))
                }
            }
        }
        sv
    }
}

impl Repository {
    /// Writes a damaged or missing config back, removes damaged slots and slots no Lifeboat
    /// made that ask beyond the ceiling, gives every intact slot a copy of the config, and
    /// makes sure the recovery slot exists.
    fn repair_key_slots(&self, report: &mut RepairReport) -> RepoResult<()> {
        if let Some(problem) = self.config_state().problem() {
            self.store().write("config", &self.inner.config_sealed)?;
            let how = match self.config_state() {
                ConfigState::Rebuilt { .. } => "rebuilt from the master key",
                _ => "written back from the copy",
            };
            *self.inner.config_state.write().expect("config state lock") = ConfigState::Intact;
            report.repaired.push(format!("{problem}: {how}"));
        }
        let copy = crate::keys::encode_config_copy(&self.inner.config_sealed);
        let mut copies_added = 0;
        for o in self.store().list("keys")? {
            let Some(id) = pack_id_from_name(&o.name) else {
                self.store().remove(&o.name)?;
                report.lost.push(format!("{} is not a key slot's name: removed", o.name));
                continue;
            };
            let bytes = match crate::limits::read_listed(self.store().as_ref(), &o, crate::limits::MAX_SMALL_OBJECT) {
                Err(RepoError::Store(e)) if e.is_not_found() => continue,
                // Larger than any slot: refused unread, removed as an unreadable one.
                Err(RepoError::Malformed { .. }) => Vec::new(),
                r => r?,
            };
            let (why, slot) = match serde_json::from_slice::<KeyFile>(&bytes) {
                Err(e) => (format!("unreadable ({e})"), None),
                Ok(slot) => match verify_slot(self.key(), &slot) {
                    SlotState::Damaged => ("damaged".to_string(), None),
                    SlotState::Unverifiable => match crate::keys::kdf_beyond_ceiling(&slot.kdf) {
                        Some(beyond) => (format!("not made with this repository's key, and {beyond}"), None),
                        None => continue,
                    },
                    SlotState::Intact => (String::new(), Some(slot)),
                },
            };
            match slot {
                None if id == self.inner.key_slot => {}
                None => {
                    self.store().remove(&o.name)?;
                    report.lost.push(format!(
                        "key slot {} was {why}: removed; add the password or key it held again (`lifeboat key add`)",
                        id.short()
                    ));
                }
                Some(mut slot) => {
                    let has_copy = crate::keys::config_copy(&slot).is_some_and(|c| self.key().open(&c, None).is_ok());
                    if !has_copy {
                        slot.config = Some(copy.clone());
                        // Written over the same name (atomically): the slot stays where its
                        // secret finds it, and `check` stays covering the fields it covered.
                        self.store().write(&o.name, &serde_json::to_vec_pretty(&slot).expect("key serialises"))?;
                        copies_added += 1;
                    }
                }
            }
        }
        if copies_added > 0 {
            report.repaired.push(format!("{copies_added} key slots were given a copy of the repository config"));
        }
        let has_recovery = self.keys()?.iter().any(|k| k.kind == KeyKind::Recovery);
        if !has_recovery {
            self.ensure_recovery_slot()?;
            report.repaired.push("the recovery key slot was missing: added again, for the same recovery key".into());
        }
        Ok(())
    }
}

/// What could be saved of one pack.
struct Salvage {
    pack: Id,
    /// Intact blobs; their plaintext only when the header is damaged (they are rewritten).
    good: Vec<(PackEntry, Vec<u8>)>,
    lost: Vec<String>,
    header_damaged: bool,
}
