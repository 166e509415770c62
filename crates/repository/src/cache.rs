//! The metadata cache: index files, snapshots and folder listings (tree blobs) of one
//! repository, kept on this device so that opening a remote repository and walking its
//! backups costs a listing, not a download of everything again.
//!
//! What it trusts: nothing. Entries are kept as stored (sealed), so every read is
//! authenticated by the repository key and checked to hash to its name exactly like a read
//! from the location; an entry that fails is removed and fetched again. What it keeps is
//! decided by the location: at each open the listing of `index` and `snapshots` names what
//! exists, entries the listing lacks are dropped (another device pruned or forgot them) and
//! listed objects the cache lacks are fetched. A tree is only looked up once the (fresh)
//! index says the blob exists, so a prune elsewhere cannot make a removed listing reappear.
//! `check` reads around it.
//!
//! The cache is a help, never a requirement: a cache folder that cannot be written is
//! reported once and the repository works without it.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use crate::Id;

/// A repository's cache folder that no open has used for this long is removed by the next
/// open of another: its repository was deleted, its location dropped from the configuration,
/// or it lost the race to be made. A cache removed too early costs one fetch again.
const ABANDONED_AFTER: Duration = Duration::from_secs(90 * 24 * 3600);

/// The three kinds of object kept, each in its own folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cached {
    Index,
    Snapshot,
    Tree,
}

impl Cached {
    fn folder(self) -> &'static str {
        match self {
            Cached::Index => "index",
            Cached::Snapshot => "snapshots",
            Cached::Tree => "trees",
        }
    }
}

/// The cache folder of one repository.
pub(crate) struct MetadataCache {
    dir: PathBuf,
    /// Bytes of trees kept at most; index files and snapshots are always kept (every open
    /// needs all of them).
    limit: u64,
    broken: AtomicBool,
}

const TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This folder is Lifeboat's metadata cache: copies of what its repositories hold, fetched again when missing.\n";

impl MetadataCache {
    /// The cache of repository `id` under `root`, created when missing.
    pub(crate) fn open(root: &Path, id: &Id, limit: u64) -> std::io::Result<MetadataCache> {
        std::fs::create_dir_all(root)?;
        let tag = root.join("CACHEDIR.TAG");
        if !tag.exists() {
            let _ = std::fs::write(&tag, TAG);
        }
        let dir = root.join(id.to_hex());
        for kind in [Cached::Index, Cached::Snapshot, Cached::Tree] {
            std::fs::create_dir_all(dir.join(kind.folder()))?;
        }
        // The folder's time says when it was last used (see `remove_abandoned`).
        let _ = std::fs::File::open(&dir).and_then(|f| f.set_modified(SystemTime::now()));
        Ok(MetadataCache { dir, limit, broken: AtomicBool::new(false) })
    }

    /// Removes the cache folders of other repositories that no open has used for
    /// [`ABANDONED_AFTER`]. Only folders named as a repository id are touched; a symbolic
    /// link is never followed.
    pub(crate) fn remove_abandoned(&self) {
        let (Some(root), Some(own)) = (self.dir.parent(), self.dir.file_name()) else { return };
        let Ok(entries) = std::fs::read_dir(root) else { return };
        for e in entries.flatten() {
            let name = e.file_name();
            if name == own || name.to_str().and_then(|n| n.parse::<Id>().ok()).is_none() {
                continue;
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) && unused_for(&e, ABANDONED_AFTER) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// Removes this repository's cache folder: for a repository that will never exist (it
    /// lost the race to be made).
    pub(crate) fn remove_all(&self) {
        self.broken.store(true, Ordering::Relaxed);
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn path(&self, kind: Cached, id: &Id) -> PathBuf {
        let hex = id.to_hex();
        match kind {
            // Trees are many: spread over 256 folders.
            Cached::Tree => self.dir.join("trees").join(&hex[..2]).join(hex),
            _ => self.dir.join(kind.folder()).join(hex),
        }
    }

    /// The stored bytes of an entry, if kept. Reading a tree marks it recently used.
    pub(crate) fn get(&self, kind: Cached, id: &Id) -> Option<Vec<u8>> {
        let path = self.path(kind, id);
        let bytes = std::fs::read(&path).ok()?;
        if kind == Cached::Tree {
            if let Ok(f) = std::fs::File::options().write(true).open(&path) {
                let _ = f.set_modified(SystemTime::now());
            }
        }
        Some(bytes)
    }

    /// Keeps an entry: written under a temporary name and renamed, so that another process
    /// reading the same cache never sees part of one.
    pub(crate) fn put(&self, kind: Cached, id: &Id, sealed: &[u8]) {
        if self.broken.load(Ordering::Relaxed) {
            return;
        }
        let path = self.path(kind, id);
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let tmp = path.with_file_name(format!(".tmp-{:016x}", rand::random::<u64>()));
            let r = std::fs::File::create(&tmp)
                .and_then(|mut f| f.write_all(sealed))
                .and_then(|()| std::fs::rename(&tmp, &path));
            if r.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            r
        };
        if let Err(e) = write() {
            if !self.broken.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "the metadata cache {} cannot be written ({e}); going on without it",
                    self.dir.display()
                );
            }
        }
    }

    /// Removes an entry (damaged, or gone from the location).
    pub(crate) fn remove(&self, kind: Cached, id: &Id) {
        let _ = std::fs::remove_file(self.path(kind, id));
    }

    /// Drops the entries of `kind` that the location no longer lists.
    pub(crate) fn retain(&self, kind: Cached, listed: &HashSet<Id>) {
        let Ok(entries) = std::fs::read_dir(self.dir.join(kind.folder())) else { return };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            match name.parse::<Id>().ok() {
                Some(id) if listed.contains(&id) => {}
                Some(_) => {
                    let _ = std::fs::remove_file(e.path());
                }
                // A temporary left by a process that stopped mid-write.
                None if name.starts_with(".tmp-") && is_old(&e) => {
                    let _ = std::fs::remove_file(e.path());
                }
                None => {}
            }
        }
    }

    /// Keeps the trees under the limit: the least recently used go first, down to 80 % of it
    /// (so that eviction does not run again at every open).
    pub(crate) fn evict(&self) {
        let mut trees: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        let Ok(shards) = std::fs::read_dir(self.dir.join("trees")) else { return };
        for shard in shards.flatten() {
            let Ok(files) = std::fs::read_dir(shard.path()) else { continue };
            for f in files.flatten() {
                if let Ok(m) = f.metadata() {
                    trees.push((m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len(), f.path()));
                }
            }
        }
        let mut total: u64 = trees.iter().map(|t| t.1).sum();
        if total <= self.limit {
            return;
        }
        trees.sort_by_key(|t| t.0);
        let goal = self.limit / 5 * 4;
        for (_, len, path) in trees {
            if total <= goal {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}

fn is_old(e: &std::fs::DirEntry) -> bool {
    unused_for(e, Duration::from_secs(3600))
}

/// True when the entry was last modified longer than `age` ago.
fn unused_for(e: &std::fs::DirEntry, age: Duration) -> bool {
    e.metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|a| a > age)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, days: u64) {
        let then = SystemTime::now() - Duration::from_secs(days * 24 * 3600);
        std::fs::File::open(path).unwrap().set_modified(then).unwrap();
    }

    /// Folders of repositories no open has used for 90 days go; a recent one, this
    /// repository's own (however old), and whatever is not named as a repository stay.
    #[test]
    fn an_open_removes_the_caches_of_repositories_unused_for_ninety_days() {
        let root = tempfile::tempdir().unwrap();
        let (own, recent, abandoned) = (Id::random(), Id::random(), Id::random());
        for id in [&own, &recent, &abandoned] {
            drop(MetadataCache::open(root.path(), id, 1 << 20).unwrap());
        }
        std::fs::create_dir(root.path().join("slots")).unwrap();
        let target = tempfile::tempdir().unwrap();
        let linked = Id::random();
        std::os::unix::fs::symlink(target.path(), root.path().join(linked.to_hex())).unwrap();
        for dir in [own.to_hex(), abandoned.to_hex(), "slots".into()] {
            age(&root.path().join(dir), 91);
        }
        age(&root.path().join(recent.to_hex()), 89);
        age(target.path(), 91);

        let cache = MetadataCache::open(root.path(), &own, 1 << 20).unwrap();
        cache.remove_abandoned();
        let exists = |name: String| root.path().join(name).exists();
        assert!(!exists(abandoned.to_hex()), "unused for 91 days: removed");
        assert!(exists(own.to_hex()) && exists(recent.to_hex()), "in use: kept");
        assert!(
            exists("slots".into()) && exists(linked.to_hex()) && target.path().exists(),
            "not a cache folder: kept"
        );
        assert!(exists("CACHEDIR.TAG".into()));
    }
}
