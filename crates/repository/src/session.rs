//! One writing operation on a repository — a backup, a copy into it, an import — from its
//! lock to its snapshot. The steps are always the same and their order matters: take the
//! lock, then read the index (so the work of writers that finished meanwhile is seen), adopt
//! the packs an interrupted writer left (beside the work: see `adopt.rs`), write blobs, flush the last packs and their index,
//! and only then save the snapshot that names them. A session is dropped without committing
//! when the operation fails: what was uploaded stays indexed for the next run, and no
//! snapshot points at data that was never written.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::adopt::Adoption;
use crate::{BlobWriter, Id, LockGuard, LockKind, RepoResult, Repository, Snapshot, WriteStats};

/// How a session stands with the repository's lock.
#[derive(Debug, Clone, Copy)]
pub enum SessionLock<'a> {
    /// Take a shared lock for `operation`, waiting up to `wait` for an exclusive holder.
    Take { operation: &'a str, wait: Duration },
    /// The caller holds a lock for the whole of a larger operation (a safety backup inside
    /// its restore): asking again while a prune waits would wait for that prune, which waits
    /// for the caller.
    HeldByCaller,
}

/// What a session reuses of what the repository holds.
#[derive(Debug, Default)]
pub enum Reuse {
    /// Every blob the index lists.
    #[default]
    Indexed,
    /// Only blobs known intact: those given (just read and authenticated by the caller) and
    /// those the session reads back and authenticates itself. A damaged copy is stored again.
    Verified(HashSet<Id>),
}

/// An open writing operation; see the module's documentation.
pub struct WriteSession<'r> {
    repo: &'r Repository,
    // Declared before the lock, so dropped first: the writer's uploads end while the lock is
    // still held. Taken out by `commit`; still here on drop means abandoned.
    writer: Option<BlobWriter>,
    /// Closed before the lock goes: adoption writes an index file, under the lock only.
    adoption: Adoption,
    _lock: Option<LockGuard>,
    /// The first session of a repository being made takes its lock on this thread (see
    /// `making.rs`); `None` from it means the lock was not had, and the writer holds why.
    locking: Option<std::thread::JoinHandle<Option<LockGuard>>>,
    /// Set when the operation is to stop (see [`WriteSession::stop_when`]).
    stop: Option<Arc<AtomicBool>>,
}

impl Repository {
    /// Opens a writing session: the lock, a fresh read of the index, the adoption of packs
    /// an interrupted writer left, and a blob writer with the store's concurrency.
    pub fn write_session(&self, lock: SessionLock<'_>, reuse: Reuse) -> RepoResult<WriteSession<'_>> {
        if let (SessionLock::Take { operation, wait }, Reuse::Indexed) = (lock, &reuse) {
            if self.first_session_beside_making() {
                return self.session_beside_making(operation, wait);
            }
        }
        // The packs are listed (for adoption) from now on, beside the lock; the index is read
        // under the lock, so that the work of writers that finished meanwhile is seen. Only
        // the headers read under the lock are adopted: a pack a prune removed meanwhile no
        // longer reads, and one written since is merely left for the next run.
        let (locked, adoption) = Adoption::start(self);
        let guard = match lock {
            SessionLock::Take { operation, wait } => Some(self.lock_with_index(LockKind::Shared, operation, wait)?),
            SessionLock::HeldByCaller => {
                self.load_index()?;
                None
            }
        };
        let _ = locked.send(());
        let threads = self.store().write_concurrency();
        let writer = match reuse {
            Reuse::Indexed => BlobWriter::new(self, threads),
            Reuse::Verified(ids) => BlobWriter::verifying(self, threads, ids),
        }
        .adopting(adoption.clone());
        Ok(WriteSession { repo: self, writer: Some(writer), adoption, _lock: guard, locking: None, stop: None })
    }

    /// The first session of a repository begun beside it (see `making.rs`): the lock is taken
    /// on a thread once the repository is made, and the uploads wait for it. No index is
    /// read (the repository's own is empty) and nothing is adopted.
    fn session_beside_making(&self, operation: &str, wait: Duration) -> RepoResult<WriteSession<'_>> {
        let (writer, release) = BlobWriter::held_back(self, self.store().write_concurrency());
        let (repo, operation) = (self.clone(), operation.to_string());
        let take = move || match repo.made().and_then(|()| repo.lock(LockKind::Shared, &operation, wait)) {
            Ok(guard) => {
                release.open();
                Some(guard)
            }
            Err(e) => {
                release.fail(e);
                None
            }
        };
        // Unspawned, the closure drops its release, which fails the writer.
        let locking = std::thread::Builder::new().name("lock".into()).spawn(take).map_err(|e| {
            crate::RepoError::Store(lifeboat_storage::StoreError::Io {
                op: "starting the lock of",
                name: "locks".into(),
                source: e,
            })
        })?;
        Ok(WriteSession {
            repo: self,
            writer: Some(writer),
            adoption: Adoption::none(),
            _lock: None,
            locking: Some(locking),
            stop: None,
        })
    }
}

impl<'r> WriteSession<'r> {
    /// Where blobs go; usable from many threads at once.
    pub fn writer(&self) -> &BlobWriter {
        self.writer.as_ref().expect("a session's writer is taken only by commit, which consumes it")
    }

    /// Stops the session once `flag` is set (a cancelled job, Ctrl-C): no pack is sent after
    /// the writer sees it (those being sent finish), what was stored is indexed for the next
    /// run, and [`WriteSession::commit`] saves no snapshot but returns `RepoError::Cancelled`.
    pub fn stop_when(&mut self, flag: Arc<AtomicBool>) {
        self.writer().stop_when(flag.clone());
        self.stop = Some(flag);
    }

    /// The repository written to.
    pub fn repo(&self) -> &'r Repository {
        self.repo
    }

    /// Packs an interrupted writer had left, now indexed and reused; `None` while their
    /// adoption runs (only a blob that would otherwise be stored waits for it).
    pub fn adopted(&self) -> Option<usize> {
        self.adoption.outcome()
    }

    /// Finishes the writer (the last packs and their index), then saves the snapshot that
    /// `make` builds from the session's figures. Returns the snapshot's id and the snapshot.
    pub fn commit(mut self, make: impl FnOnce(&WriteStats) -> Snapshot) -> RepoResult<(Id, Snapshot)> {
        let writer = self.writer.take().expect("a session's writer is taken only by commit, which consumes it");
        // Under the lock from here on; a lock not had leaves its reason with the writer.
        if let Some(locking) = self.locking.take() {
            self._lock = locking.join().unwrap_or(None);
        }
        let stats: Arc<WriteStats> = writer.finish()?;
        self.adoption.close();
        // The last moment to stop: a stopped operation saves no snapshot.
        if self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Err(crate::RepoError::Cancelled);
        }
        let snapshot = make(&stats);
        let id = self.repo.save_snapshot(&snapshot)?;
        Ok((id, snapshot))
    }
}

impl Drop for WriteSession<'_> {
    fn drop(&mut self) {
        // Not committed: stop the uploads and index the packs already uploaded, so the next
        // run reuses them. No snapshot is saved.
        if let Some(w) = self.writer.take() {
            w.abandon();
        }
        self.adoption.close();
        // The lock taken beside the making goes as the session does.
        if let Some(locking) = self.locking.take() {
            let _ = locking.join();
        }
    }
}
