//! Verifying a repository: structure always, every byte with `read_data`. Damage is reported
//! with the backups and files it affects.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use rayon::prelude::*;
use serde::Serialize;

use crate::index::IndexBuilder;
use crate::pack::{pack_id_from_name, pack_name};
use crate::pack_read::WholePack;
use crate::{Id, Node, NodeKind, RepoResult, Repository};

#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Read and authenticate every blob, not only the structure.
    pub read_data: bool,
}

/// One thing wrong, and what it affects.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckProblem {
    pub what: String,
    /// `backup SLUG, unit U: path` for every file or folder that cannot be restored whole.
    pub affected: Vec<String>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct CheckReport {
    pub snapshots: usize,
    pub packs: usize,
    pub packs_read: usize,
    pub blobs: usize,
    pub problems: Vec<CheckProblem>,
    /// Harmless findings (e.g. packs left by an interrupted backup that prune will remove).
    pub notes: Vec<String>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Damaged blobs of one pack with the reason, and a note on its header when that is damaged.
type PackFindings = (Vec<(Id, String)>, Option<String>);

struct Walk<'a> {
    repo: &'a Repository,
    bad: &'a HashMap<Id, String>,
    clean_trees: Mutex<HashSet<Id>>,
    affected: Mutex<BTreeMap<String, Vec<String>>>,
}

impl Walk<'_> {
    /// Returns true when nothing under `node` is damaged.
    fn node(&self, node: &Node, path: &str) -> bool {
        let mut ok = true;
        for c in &node.content {
            if let Some(reason) = self.bad.get(c) {
                self.affect(reason, path);
                ok = false;
            } else if !self.repo.has_blob(c) {
                self.affect(&format!("data blob {} is missing", c.short()), path);
                ok = false;
            }
        }
        if node.kind == NodeKind::Dir {
            if let Some(t) = node.subtree {
                if self.clean_trees.lock().expect("walk lock").contains(&t) {
                    return ok;
                }
                let tree = match self.bad.get(&t) {
                    Some(reason) => Err(reason.clone()),
                    None => self.repo.read_tree(&t).map_err(|e| format!("folder listing {}: {e}", t.short())),
                };
                match tree {
                    Ok(tree) => {
                        let all: Vec<bool> = tree
                            .nodes
                            .par_iter()
                            .map(|n| match crate::check_entry_name(&n.name.0) {
                                Ok(()) => self.node(n, &format!("{path}/{}", n.name.display())),
                                Err(e) => {
                                    self.affect(&format!("{e}: a restore refuses it"), path);
                                    false
                                }
                            })
                            .collect();
                        if all.iter().all(|b| *b) {
                            self.clean_trees.lock().expect("walk lock").insert(t);
                        } else {
                            ok = false;
                        }
                    }
                    Err(reason) => {
                        self.affect(&reason, &format!("{path}/ (everything in it)"));
                        ok = false;
                    }
                }
            }
        }
        ok
    }

    fn affect(&self, reason: &str, path: &str) {
        self.affected.lock().expect("walk lock").entry(reason.to_string()).or_default().push(path.to_string());
    }
}

impl Repository {
    /// Checks the repository. Damage never stops the check: everything readable is checked.
    /// Reads the location itself, never the metadata cache.
    pub fn check(&self, options: CheckOptions, progress: &(dyn Fn(&str) + Sync)) -> RepoResult<CheckReport> {
        let plain = self.uncached();
        let report = plain.check_location(options, progress)?;
        self.take_index_of(&plain);
        Ok(report)
    }

    fn check_location(&self, options: CheckOptions, progress: &(dyn Fn(&str) + Sync)) -> RepoResult<CheckReport> {
        let mut report = CheckReport::default();
        progress("reading the index");
        let index = Mutex::new(IndexBuilder::default());
        let unreadable = Mutex::new(Vec::new());
        self.each_index_file(|name, r| match r {
            Ok((id, file)) => index.lock().expect("index lock").add_file(id, &file),
            Err(e) => unreadable.lock().expect("problems lock").push(CheckProblem {
                what: format!("{name}: {e} (the blobs it lists count as missing)"),
                affected: vec![],
            }),
        })?;
        let mut unreadable = unreadable.into_inner().expect("problems lock");
        unreadable.sort_by(|a, b| a.what.cmp(&b.what));
        report.problems.extend(unreadable);
        let index = index.into_inner().expect("index lock").finish();
        let by_pack = index.by_pack();
        report.blobs = index.blob_count();
        self.set_index(index);

        progress("listing packs");
        let listed = self.store().list("data")?;
        report.packs = listed.len();
        let sizes: HashMap<Id, u64> =
            listed.iter().filter_map(|o| Some((pack_id_from_name(&o.name)?, o.size))).collect();
        let mut bad: HashMap<Id, String> = HashMap::new();
        for (pack, blobs) in &by_pack {
            let end = blobs.iter().map(|e| e.offset as u64 + e.length as u64).max().unwrap_or(0);
            match sizes.get(pack) {
                None => {
                    let reason = format!("pack {} is missing", pack.short());
                    for e in blobs {
                        bad.insert(e.id, reason.clone());
                    }
                }
                Some(size) if *size < end + 4 => {
                    let reason = format!("pack {} is truncated ({size} bytes)", pack.short());
                    for e in blobs {
                        if e.offset as u64 + e.length as u64 > *size {
                            bad.insert(e.id, reason.clone());
                        }
                    }
                }
                Some(_) => {}
            }
        }
        let unindexed = sizes.keys().filter(|p| !by_pack.contains_key(p)).count();
        if unindexed > 0 {
            report.notes.push(format!(
                "{unindexed} packs are not in the index (left by an interrupted backup); `lifeboat prune` removes them"
            ));
        }

        if options.read_data {
            let packs: Vec<(&Id, &Vec<crate::repofile::pack_header::PackEntry>)> =
                by_pack.iter().filter(|(p, _)| sizes.contains_key(p)).collect();
            let done = std::sync::atomic::AtomicUsize::new(0);
            let total = packs.len();
            let found: Vec<PackFindings> = packs
                .par_iter()
                .map(|(pack, blobs)| {
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    if n.is_multiple_of(16) || n == total {
                        progress(&format!("read {n} of {total} packs"));
                    }
                    let size = sizes.get(*pack).copied().unwrap_or(0);
                    let end = blobs.iter().map(|e| e.offset as u64 + e.length as u64).max().unwrap_or(0);
                    let (bytes, header) = match self.read_whole_pack(pack, size, Some(end)) {
                        Ok(WholePack { bytes: Some(bytes), header }) => (bytes, header),
                        Ok(WholePack { bytes: None, header }) => {
                            let reason =
                                format!("pack {} cannot be read: {}", pack.short(), header.err().unwrap_or_default());
                            return (blobs.iter().map(|e| (e.id, reason.clone())).collect(), None);
                        }
                        Err(e) => {
                            let reason = format!("pack {} cannot be read: {e}", pack.short());
                            return (blobs.iter().map(|e| (e.id, reason.clone())).collect(), None);
                        }
                    };
                    let header = header.err().map(|e| {
                        format!("{}: header damaged ({e}); its blobs are intact and indexed", pack_name(pack))
                    });
                    let damaged = blobs
                        .iter()
                        .filter_map(|e| {
                            let damaged = || (e.id, format!("pack {}: blob {} is damaged", pack.short(), e.id.short()));
                            match bytes.blob(e.offset as usize, e.length as usize) {
                                Some(sealed) => {
                                    self.decode_blob(&e.id, sealed, e.raw_length as usize).err().map(|_| damaged())
                                }
                                // Beyond what could be read of the pack: as good as damaged.
                                None => Some(damaged()),
                            }
                        })
                        .collect();
                    (damaged, header)
                })
                .collect();
            report.packs_read = total;
            for (damaged, header) in found {
                bad.extend(damaged);
                if let Some(h) = header {
                    report.problems.push(CheckProblem { what: h, affected: vec![] });
                }
            }
        }

        progress("checking every backup");
        let (snapshots, unreadable) = self.snapshots()?;
        report.snapshots = snapshots.len() + unreadable.len();
        for (name, e) in unreadable {
            report.problems.push(CheckProblem { what: format!("{name}: {e}"), affected: vec![] });
        }
        let walk = Walk {
            repo: self,
            bad: &bad,
            clean_trees: Mutex::new(HashSet::new()),
            affected: Mutex::new(BTreeMap::new()),
        };
        for (_, snap) in &snapshots {
            if let Err(e) = snap.check_paths() {
                report.problems.push(CheckProblem {
                    what: format!("backup {}: {e}: a restore refuses it; remove the backup", snap.slug),
                    affected: vec![],
                });
            }
            for unit in &snap.units {
                for root in &unit.roots {
                    walk.node(&root.node, &format!("backup {}, unit {}: {}", snap.slug, unit.name, root.path));
                }
            }
        }
        for (what, mut affected) in walk.affected.into_inner().expect("walk lock") {
            affected.sort();
            report.problems.push(CheckProblem { what, affected });
        }
        progress("checking the key slots");
        self.check_key_slots(&mut report)?;
        let open = self.store().readable_by_others()?;
        if !open.is_empty() {
            report.notes.push(format!(
                "warning: other users of this machine can read {} of this repository ({}): they could copy a key slot and guess passwords offline; run `chmod -R go-rwx` on the repository folder",
                open.len(),
                open.iter().take(4).cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        // Damaged blobs no backup uses are still damage in the repository.
        let reported: HashSet<&String> = report.problems.iter().map(|p| &p.what).collect();
        let mut unused: Vec<String> = bad.values().filter(|r| !reported.contains(r)).cloned().collect();
        unused.sort();
        unused.dedup();
        for what in unused {
            report.problems.push(CheckProblem { what: format!("{what} (no backup uses it)"), affected: vec![] });
        }
        Ok(report)
    }
}

impl Repository {
    /// Every key slot must parse, and its check must match (the holder of the master key can
    /// verify any slot made since slots carry one).
    fn check_key_slots(&self, report: &mut CheckReport) -> RepoResult<()> {
        if let Some(problem) = self.config_state().problem() {
            report.problems.push(CheckProblem {
                what: format!("{problem}: run `lifeboat check --repair` to write it back"),
                affected: vec![],
            });
        }
        let mut recovery = false;
        let mut without_copy: Vec<String> = Vec::new();
        for o in self.store().list("keys")? {
            let bytes = match crate::limits::read_listed(self.store().as_ref(), &o, crate::limits::MAX_SMALL_OBJECT) {
                Err(crate::RepoError::Store(e)) if e.is_not_found() => continue,
                // Larger than any slot: refused unread, reported as an unreadable slot.
                Err(crate::RepoError::Malformed { .. }) => Vec::new(),
                r => r?,
            };
            let fix = "run `lifeboat check --repair` to remove it, then add the password or key it held again (`lifeboat key add`)";
            let slot = match serde_json::from_slice::<crate::repofile::keyfile::KeyFile>(&bytes) {
                Err(e) => {
                    report.problems.push(CheckProblem {
                        what: format!("key slot {} cannot be read ({e}): {fix}", o.name),
                        affected: vec![],
                    });
                    continue;
                }
                Ok(slot) => slot,
            };
            let state = crate::keys::verify_slot(self.key(), &slot);
            if let Some(why) = crate::keys::kdf_beyond_ceiling(&slot.kdf) {
                if state != crate::keys::SlotState::Intact {
                    report.problems.push(CheckProblem {
                        what: format!(
                            "key slot {} was not made with this repository's key and {why}: every open skips it; `lifeboat check --repair` removes it",
                            o.name
                        ),
                        affected: vec![],
                    });
                    continue;
                }
            }
            match state {
                crate::keys::SlotState::Damaged => report.problems.push(CheckProblem {
                    what: format!("key slot {} ({:?}, {}) is damaged: {fix}", o.name, slot.kind, slot.label),
                    affected: vec![],
                }),
                crate::keys::SlotState::Unverifiable => report.notes.push(format!(
                    "key slot {} was made by an older Lifeboat: only its own secret can verify it",
                    o.name
                )),
                crate::keys::SlotState::Intact => {
                    recovery |= slot.kind == crate::KeyKind::Recovery;
                    let copy_opens = crate::keys::config_copy(&slot).is_some_and(|c| self.key().open(&c, None).is_ok());
                    if slot.config.is_none() {
                        without_copy.push(o.name.clone());
                    } else if !copy_opens {
                        // The copy is outside the slot's check: its own seal finds the damage.
                        report.problems.push(CheckProblem {
                            what: format!(
                                "key slot {} ({:?}, {}): its copy of the repository config is damaged; run `lifeboat check --repair` to write it again",
                                o.name, slot.kind, slot.label
                            ),
                            affected: vec![],
                        });
                    }
                }
            }
        }
        if !recovery {
            report.problems.push(CheckProblem {
                what: "the repository has no intact recovery key slot: the recovery key of your emergency kit no longer opens it; run `lifeboat check --repair` (or `lifeboat key recovery`) to add it again".into(),
                affected: vec![],
            });
        }
        if !without_copy.is_empty() {
            // An older Lifeboat made such slots; a damaged field name reads the same way, so each
            // is named.
            report.notes.push(format!(
                "key slots {} carry no copy of the repository config (made by an older Lifeboat, or the copy's field was damaged): `lifeboat check --repair` adds one, so that a damaged config is rebuilt exactly",
                without_copy.join(", ")
            ));
        }
        Ok(())
    }
}
