//! Cooperation between processes sharing a repository.
//!
//! Writers of new data (backups, imports) take shared locks and run side by side. Removing
//! data (prune) takes the exclusive lock: it announces itself first, then waits until every
//! shared holder has finished, and shared holders that arrive meanwhile step back until it is
//! done. So prune never deletes a blob that a running backup has just decided to reuse.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::parallel::joined;
use crate::repofile::lockfile::LockFile;
use crate::{Id, RepoError, RepoResult, Repository};

/// A lock not refreshed for this long belongs to a process that died.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);
const POLL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    Shared,
    Exclusive,
}

/// Held while an operation runs; the lock file is refreshed in the background and removed on
/// drop.
pub struct LockGuard {
    repo: Repository,
    name: String,
    stop: Arc<(Mutex<bool>, Condvar)>,
    refresher: Option<JoinHandle<()>>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        {
            let (m, c) = &*self.stop;
            *m.lock().expect("lock stop") = true;
            c.notify_all();
        }
        if let Some(h) = self.refresher.take() {
            let _ = h.join();
        }
        let _ = self.repo.store().remove(&self.name);
    }
}

struct Holder {
    name: String,
    file: LockFile,
}

impl Holder {
    fn describe(&self) -> String {
        format!(
            "{} on {} (pid {}, since {})",
            self.file.operation,
            self.file.host,
            self.file.pid,
            self.file.created.strftime("%Y-%m-%d %H:%M")
        )
    }
}

impl Repository {
    fn lock_file(&self, kind: LockKind, operation: &str) -> LockFile {
        let now = jiff::Timestamp::now();
        LockFile {
            kind,
            host: crate::repo::hostname(),
            pid: std::process::id(),
            user: crate::repo::username(),
            operation: operation.to_string(),
            created: now,
            refreshed: now,
        }
    }

    fn write_lock(&self, name: &str, file: &LockFile) -> RepoResult<()> {
        let sealed = self.key().seal(&serde_json::to_vec(file).expect("locks serialise"), false);
        Ok(self.store().write(name, &sealed)?)
    }

    /// The live locks other than `own`, read in parallel: a backup's lock costs one listing
    /// and, with nobody else there, no read at all.
    fn other_holders(&self, own: &str) -> RepoResult<Vec<Holder>> {
        // A lock larger than any Lifeboat writes is planted: it cannot be a holder's.
        let listed: Vec<lifeboat_storage::ObjectInfo> = self
            .store()
            .list("locks")?
            .into_iter()
            .filter(|o| o.name != own && crate::limits::within(o, crate::limits::MAX_SMALL_OBJECT).is_ok())
            .collect();
        let read = crate::parallel::map(self.connections(), &listed, |o| {
            let name = &o.name;
            let sealed = crate::limits::read_as_listed(self.store().as_ref(), name, o.size).ok()?;
            let plain = self.key().open(&sealed, None).ok()?;
            let file = serde_json::from_slice::<LockFile>(&plain).ok()?;
            (!is_stale(&file)).then(|| Holder { name: name.clone(), file })
        });
        Ok(read.into_iter().flatten().collect())
    }

    /// Removes lock files left by processes that died. Returns how many went.
    pub fn remove_stale_locks(&self) -> RepoResult<usize> {
        let mut n = 0;
        for o in self.store().list("locks")? {
            if crate::limits::within(&o, crate::limits::MAX_SMALL_OBJECT).is_err() {
                // Larger than any lock: planted, removed as a stale lock is.
                self.store().remove(&o.name)?;
                n += 1;
                continue;
            }
            let Ok(sealed) = crate::limits::read_as_listed(self.store().as_ref(), &o.name, o.size) else { continue };
            let stale =
                match self.key().open(&sealed, None).ok().and_then(|p| serde_json::from_slice::<LockFile>(&p).ok()) {
                    Some(f) => is_stale(&f),
                    None => true,
                };
            if stale {
                self.store().remove(&o.name)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Takes a lock for `operation`, waiting up to `wait` for conflicting holders.
    pub fn lock(&self, kind: LockKind, operation: &str, wait: Duration) -> RepoResult<LockGuard> {
        Ok(self.lock_beside(kind, operation, wait, || ())?.0)
    }

    /// Takes a lock for `operation` and reads the index under it, for what must see every
    /// writer's finished work (a backup reusing blobs, a restore).
    ///
    /// The index is listed beside the lock's own listing of the holders, a round trip sooner
    /// than after it, and that is as safe: both listings begin once this lock is written.
    /// A prune deletes only after it has written its own lock and listed no shared one, so
    /// a prune deleting while the index is listed wrote its lock before this one was
    /// written, is in the holders' listing, and this attempt steps back and throws its index
    /// listing away. A prune that writes its lock later sees this one and deletes nothing.
    pub fn lock_with_index(&self, kind: LockKind, operation: &str, wait: Duration) -> RepoResult<LockGuard> {
        let (guard, listed) = self.lock_beside(kind, operation, wait, || self.store().list("index"))?;
        self.load_index_listed(listed?)?;
        Ok(guard)
    }

    /// Takes a lock, running `beside` next to the listing of the holders on each attempt;
    /// returns what it gave on the attempt that took the lock.
    fn lock_beside<T: Send>(
        &self,
        kind: LockKind,
        operation: &str,
        wait: Duration,
        beside: impl Fn() -> T + Sync,
    ) -> RepoResult<(LockGuard, T)> {
        let deadline = std::time::Instant::now() + wait;
        let name = format!("locks/{}", Id::random().to_hex());
        let file = self.lock_file(kind, operation);
        let beside = &beside;
        let along = loop {
            self.write_lock(&name, &file)?;
            let (others, along) = std::thread::scope(|s| {
                let along = s.spawn(beside);
                (self.other_holders(&name), joined(along))
            });
            let others = match others {
                Ok(o) => o,
                Err(e) => {
                    let _ = self.store().remove(&name);
                    return Err(e);
                }
            };
            let blocker = match kind {
                LockKind::Shared => others.iter().find(|h| h.file.kind == LockKind::Exclusive),
                LockKind::Exclusive => others
                    .iter()
                    .find(|h| h.file.kind == LockKind::Shared || (h.file.created, &h.name) < (file.created, &name)),
            };
            let Some(blocker) = blocker else { break along };
            let holder = blocker.describe();
            // A shared holder steps back so that a waiting prune can finish; an exclusive
            // one keeps its announcement unless an older prune is ahead of it.
            let step_back = kind == LockKind::Shared || blocker.file.kind == LockKind::Exclusive;
            if step_back {
                self.store().remove(&name)?;
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.store().remove(&name);
                return Err(RepoError::Locked { holder });
            }
            tracing::info!("waiting for {holder}");
            std::thread::sleep(POLL);
        };
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let refresher = {
            let repo = self.clone();
            let name = name.clone();
            let stop = stop.clone();
            let mut file = file.clone();
            std::thread::Builder::new()
                .name("lock-refresh".into())
                .spawn(move || {
                    let (m, c) = &*stop;
                    let mut stopped = m.lock().expect("lock stop");
                    while !*stopped {
                        let (g, timeout) = c.wait_timeout(stopped, REFRESH_EVERY).expect("lock stop");
                        stopped = g;
                        if *stopped {
                            return;
                        }
                        if timeout.timed_out() {
                            file.refreshed = jiff::Timestamp::now();
                            let _ = repo.write_lock(&name, &file);
                        }
                    }
                })
                .expect("spawning the lock refresher")
        };
        Ok((LockGuard { repo: self.clone(), name, stop, refresher: Some(refresher) }, along))
    }
}

fn is_stale(file: &LockFile) -> bool {
    let age = jiff::Timestamp::now().duration_since(file.refreshed);
    if age.as_secs() > STALE_AFTER.as_secs() as i64 {
        return true;
    }
    // On this host we can tell at once whether the holder is still alive.
    if file.host == crate::repo::hostname() {
        let pid = nix::unistd::Pid::from_raw(file.pid as i32);
        if file.pid != std::process::id() && nix::sys::signal::kill(pid, None).is_err() {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use lifeboat_storage::LocalStore;

    use super::*;
    use crate::{KeyKind, Secret};

    fn repo() -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::new(dir.path().join("repo")));
        let repo = Repository::init(store, &Secret::new("pw"), KeyKind::Password).unwrap();
        (dir, repo)
    }

    #[test]
    fn backups_share_and_prune_excludes() {
        let (_d, repo) = repo();
        let now = Duration::ZERO;
        let a = repo.lock(LockKind::Shared, "backup", now).unwrap();
        let b = repo.lock(LockKind::Shared, "backup", now).expect("two backups at once");
        let err = repo.lock(LockKind::Exclusive, "prune", now).err().expect("prune waits for backups");
        assert!(matches!(err, RepoError::Locked { .. }), "{err}");
        drop(a);
        drop(b);
        let p = repo.lock(LockKind::Exclusive, "prune", now).expect("prune once backups are done");
        assert!(repo.lock(LockKind::Shared, "backup", now).is_err(), "a backup waits for prune");
        assert!(repo.lock(LockKind::Exclusive, "prune", now).is_err(), "one prune at a time");
        drop(p);
        drop(repo.lock(LockKind::Shared, "backup", now).unwrap());
        assert!(repo.store().list("locks").unwrap().is_empty(), "locks are removed when released");
    }

    /// The index comes with the lock from a listing made under it: another writer's work,
    /// finished after this handle was opened, is seen.
    #[test]
    fn a_lock_with_index_sees_what_writers_finished_before_it() {
        let (_d, repo) = repo();
        let other = Repository::open(repo.store().clone(), &Secret::new("pw")).unwrap();
        other.load_index().unwrap();
        let writer = crate::BlobWriter::new(&other, 1);
        let (id, _) = writer.add(crate::BlobKind::Data, b"written elsewhere").unwrap();
        writer.finish().unwrap();
        let _guard = repo.lock_with_index(LockKind::Shared, "backup", Duration::ZERO).unwrap();
        assert!(repo.inner.index_loaded.load(std::sync::atomic::Ordering::Acquire));
        assert!(repo.has_blob(&id));
    }

    /// The index listed beside an attempt that steps back for a prune is thrown away with
    /// the attempt: it may be the prune's half-done work.
    #[test]
    fn an_index_listed_beside_a_refused_lock_is_not_kept() {
        let (_d, repo) = repo();
        let prune = repo.lock(LockKind::Exclusive, "prune", Duration::ZERO).unwrap();
        let err =
            repo.lock_with_index(LockKind::Shared, "backup", Duration::ZERO).err().expect("a backup waits for prune");
        assert!(matches!(err, RepoError::Locked { .. }), "{err}");
        assert!(!repo.inner.index_loaded.load(std::sync::atomic::Ordering::Acquire), "no index from a refused attempt");
        drop(prune);
        assert_eq!(repo.store().list("locks").unwrap().len(), 0, "the refused attempt left no lock");
    }

    #[test]
    fn a_lock_of_a_dead_process_is_stale() {
        let (_d, repo) = repo();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let mut file = repo.lock_file(LockKind::Shared, "backup");
        file.pid = pid;
        repo.write_lock("locks/dead", &file).unwrap();
        drop(repo.lock(LockKind::Exclusive, "prune", Duration::ZERO).expect("the dead holder does not block"));
        assert_eq!(repo.remove_stale_locks().unwrap(), 1);
        assert!(repo.store().list("locks").unwrap().is_empty());
    }
}
