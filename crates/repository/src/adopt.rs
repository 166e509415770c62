//! Packs that no index lists are what an interrupted backup leaves behind (packs are written
//! before their index). Adopting them — reading their headers and indexing them — lets the
//! next backup reuse that work instead of uploading it again.
//!
//! A write session adopts beside its work ([`Adoption`]): the listing of packs goes out before
//! the session's lock, the headers are read under it, and only a blob that would otherwise be
//! stored waits for the adoption. An unchanged backup never waits on the listing (on S3 the
//! longest request it makes).

use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex};

use lifeboat_storage::ObjectInfo;

use crate::pack::{max_header_len, pack_id_from_name};
use crate::parallel::Budget;
use crate::repofile::index_file::IndexFile;
use crate::{Id, RepoResult, Repository};

/// Bytes of pack headers read and not yet parsed, across the adoption's threads.
const HEADERS_AT_ONCE: u64 = 32 * 1024 * 1024;

impl Repository {
    /// Indexes every pack the index does not know; returns how many were adopted. A pack
    /// whose header cannot be read is left alone (`prune` removes it). Call after
    /// [`Repository::load_index`], holding a shared lock; `listed` is the location's listing
    /// of `data`, made under that lock or while it was being taken (a pack a prune removed
    /// before the lock was had no longer reads, and is left out).
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
        // Threads of its own, not rayon's: a writer waiting for this adoption may be on
        // rayon's pool itself. Headers read at once are bounded in bytes as well as in count.
        let budget = Budget::new(HEADERS_AT_ONCE);
        let adopted: Vec<_> = crate::parallel::map(self.connections(), &orphans, |(id, size)| {
            // The trailer first, then the header it claims within a bounded number of bytes
            // read at once across the threads (a real header is a few KiB).
            let claimed = self.read_pack_range(id, size.checked_sub(4)?, *size).ok()?.trailer()?;
            let _share = budget.take(claimed.min(max_header_len(*size, self.pack_size() as u64)));
            match self.read_header_claimed(id, *size, claimed).ok()? {
                Ok(entries) => Some((*id, entries)),
                Err(why) => {
                    tracing::warn!(
                        "pack {} is not indexed and its header is unusable ({why}): prune removes it",
                        id.short()
                    );
                    None
                }
            }
        })
        .into_iter()
        .flatten()
        .collect();
        if adopted.is_empty() {
            return Ok(0);
        }
        let n = adopted.len();
        for file in IndexFile::split(adopted) {
            let written = self.write_index_file(&file)?;
            self.inner.index.write().expect("index lock").add_file(written, &file);
        }
        tracing::info!("adopted {n} packs left by an interrupted backup");
        Ok(n)
    }
}

/// The adoption of one write session, running on a thread of its own.
#[derive(Clone)]
pub(crate) struct Adoption {
    shared: Arc<(Mutex<AdoptionState>, Condvar)>,
}

#[derive(Default)]
struct AdoptionState {
    /// Packs adopted, once the adoption is over (or was given up).
    outcome: Option<usize>,
    /// Headers are being read and the index file written: under the session's lock, which
    /// therefore waits for it.
    adopting: bool,
    /// The session ended: an adoption not begun by then never begins.
    closed: bool,
}

impl Adoption {
    /// Lists the packs now; adopts once the returned sender says the session holds its lock
    /// and has read the index. Dropping the sender unsent (the lock was not had) ends it.
    pub(crate) fn start(repo: &Repository) -> (Sender<()>, Adoption) {
        let adoption = Adoption { shared: Arc::default() };
        let (ready, locked) = mpsc::channel::<()>();
        let (repo, this) = (repo.clone(), adoption.clone());
        let run = move || {
            let listed = repo.store().list("data");
            if locked.recv().is_err() || !this.begin() {
                return this.end(0);
            }
            let adopted = listed.map_err(crate::RepoError::from).and_then(|l| repo.adopt_unindexed_packs(&l));
            this.end(adopted.unwrap_or_else(|e| {
                tracing::warn!("packs left by an interrupted backup were not adopted ({e}); prune removes them");
                0
            }));
        };
        if let Err(e) = std::thread::Builder::new().name("adopt".into()).spawn(run) {
            tracing::warn!("packs left by an interrupted backup are not looked for: {e}");
            adoption.end(0);
        }
        (ready, adoption)
    }

    /// No adoption: for a session on a repository just made, which holds no earlier work.
    pub(crate) fn none() -> Adoption {
        let adoption = Adoption { shared: Arc::default() };
        adoption.end(0);
        adoption
    }

    fn state(&self) -> std::sync::MutexGuard<'_, AdoptionState> {
        self.shared.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn begin(&self) -> bool {
        let mut st = self.state();
        st.adopting = !st.closed;
        st.adopting
    }

    fn end(&self, adopted: usize) {
        let mut st = self.state();
        st.adopting = false;
        st.outcome.get_or_insert(adopted);
        self.shared.1.notify_all();
    }

    /// Packs adopted, waiting for the adoption to end.
    pub(crate) fn wait(&self) -> usize {
        let mut st = self.state();
        while st.outcome.is_none() {
            st = self.shared.1.wait(st).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        st.outcome.unwrap_or(0)
    }

    /// Packs adopted, if the adoption is over.
    pub(crate) fn outcome(&self) -> Option<usize> {
        self.state().outcome
    }

    /// Ends the adoption for a session letting go of its lock: one not begun never begins
    /// (its listing may still be on the way), one under way is waited for.
    pub(crate) fn close(&self) {
        let mut st = self.state();
        st.closed = true;
        while st.adopting {
            st = self.shared.1.wait(st).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}
