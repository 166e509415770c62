//! Units whose paths overlap (a unit of `~` and another of `~/Documents`, say): a file under
//! both is read once, and counted once in the backup's totals and in its progress.

use std::collections::{HashMap, HashSet};
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use lifeboat_repository::{Node, NodeKind};

use crate::unit::Unit;

/// The files of one backup run that more than one configured path reaches.
#[derive(Default)]
pub(crate) struct Overlaps {
    /// Configured paths that lie inside another configured path (or are configured twice):
    /// only what is under one of them can be reached twice.
    regions: Vec<PathBuf>,
    /// Entries under a region archived earlier in this run, by absolute path.
    seen: Mutex<HashMap<PathBuf, Node>>,
    /// Entries (and bytes of files) archived again: the sum of the units' totals less these
    /// is the backup's.
    pub repeated_files: AtomicU64,
    pub repeated_bytes: AtomicU64,
}

impl Overlaps {
    pub fn of(units: &[&Unit]) -> Overlaps {
        let roots: Vec<&Path> = units.iter().flat_map(|u| u.paths.iter().map(|(_, abs)| abs.as_path())).collect();
        let mut regions: Vec<PathBuf> = Vec::new();
        for (i, root) in roots.iter().enumerate() {
            let inside = roots.iter().enumerate().any(|(j, other)| i != j && root.starts_with(other));
            if inside && !regions.iter().any(|r| r == root) {
                regions.push(root.to_path_buf());
            }
        }
        Overlaps { regions, ..Overlaps::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    fn reached_twice(&self, abs: &Path) -> bool {
        self.regions.iter().any(|r| abs.starts_with(r))
    }

    /// The node archived earlier in this run for the file at `abs`, when the file is unchanged
    /// since: its content is taken from it, not read again.
    pub fn earlier(&self, abs: &Path, meta: &Metadata) -> Option<Node> {
        if !self.reached_twice(abs) {
            return None;
        }
        let seen = self.seen.lock().expect("overlaps lock");
        seen.get(abs).filter(|n| n.kind == NodeKind::File && crate::meta::unchanged(n, meta)).cloned()
    }

    /// Records an archived entry (not a folder); true when it was archived before in this run.
    pub fn record(&self, abs: &Path, node: &Node) -> bool {
        if !self.reached_twice(abs) {
            return false;
        }
        let again = self.seen.lock().expect("overlaps lock").insert(abs.to_path_buf(), node.clone()).is_some();
        if again {
            self.repeated_files.fetch_add(1, Ordering::Relaxed);
            if node.kind == NodeKind::File {
                self.repeated_bytes.fetch_add(node.size, Ordering::Relaxed);
            }
        }
        again
    }

    /// Whether a scan (the progress estimate) should count the entry at `abs`: false when it
    /// counted it already. `counted` is the scan's own record.
    pub fn first_count(&self, abs: &Path, counted: &mut HashSet<PathBuf>) -> bool {
        !self.reached_twice(abs) || counted.insert(abs.to_path_buf())
    }
}
