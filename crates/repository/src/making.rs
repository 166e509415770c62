//! A repository made while its first backup already works.
//!
//! Making a repository takes a key derivation (Argon2: a few tenths of a second) and, over a
//! network, a round trip each for the key slots and the config, then the first writer's lock,
//! before anything may be stored. The first backup's reading, chunking, compressing and
//! sealing need none of that: only the master key and the config, which are chosen first.
//! So [`crate::Empty::begin`] returns the repository at once and stores it on a thread:
//!
//! - every write to the location waits until the key slots and the config are stored
//!   ([`Gated`]): nothing of this process lands in a location before the repository that
//!   owns it, whoever writes;
//! - the first write session takes its lock on a thread as well, and its uploads wait for
//!   that lock (see `session.rs`): packs are built meanwhile and sent once allowed;
//! - blobs are sealed only once the key is derived (see `Making::derived`), the rest of
//!   the backup (reading, chunking) goes on meanwhile;
//! - that session reads no index and adopts nothing: a repository made a moment ago holds
//!   no work of an earlier writer (another process's work there is only not reused).
//!
//! When the making fails — above all when another process made a repository at the same
//! place first (`AlreadyExists`) — the first session fails with that error, nothing but the
//! withdrawn key slots was stored, and the caller starts again on the repository that is
//! there ([`crate::Repository::made`] tells it).

use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex};

use lifeboat_storage::{Bytes, ObjectInfo, Store, StoreError, StoreResult};

use crate::{RepoError, RepoResult};

/// The making of one repository: under way, done, or failed.
#[derive(Default)]
pub(crate) struct Making {
    state: Mutex<State>,
    settled: Condvar,
    /// Taken by the first write session, which runs beside the making.
    first_session: std::sync::atomic::AtomicBool,
    /// Set once the key derivation is done. Until then sealing waits: the derivation is the
    /// making's only long computation, and sharing the cores with compression would delay
    /// the first upload by as much as it saves (on two cores, 0.2 s became 0.35 to 0.7 s).
    derived: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
enum State {
    #[default]
    UnderWay,
    Made,
    /// The error goes to the first who asks for the outcome, the words to those after; a
    /// race lost to another process's repository (`AlreadyExists`) is told as such to all.
    Failed {
        error: Option<RepoError>,
        words: String,
        taken_by: Option<String>,
    },
}

impl Making {
    /// Records how the making ended and wakes everyone waiting on it.
    pub(crate) fn settle(&self, outcome: RepoResult<()>) {
        let mut state = self.lock();
        *state = match outcome {
            Ok(()) => State::Made,
            Err(e) => State::Failed {
                words: e.to_string(),
                taken_by: match &e {
                    RepoError::AlreadyExists(location) => Some(location.clone()),
                    _ => None,
                },
                error: Some(e),
            },
        };
        self.settled.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait(&self) -> std::sync::MutexGuard<'_, State> {
        let mut state = self.lock();
        while matches!(*state, State::UnderWay) {
            state = self.settled.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state
    }

    /// Waits for the making. A failure is given as its error to the first caller, and in
    /// words after that (`AlreadyExists` always as itself: whoever asks must open theirs).
    pub(crate) fn outcome(&self) -> RepoResult<()> {
        match &mut *self.wait() {
            State::UnderWay | State::Made => Ok(()),
            // Not the one the words name (the first asker has it), but one as grave.
            State::Failed { error, words, taken_by } => Err(error.take().unwrap_or_else(|| match taken_by {
                Some(location) => RepoError::AlreadyExists(location.clone()),
                None => RepoError::Unmade { why: words.clone() },
            })),
        }
    }

    /// The key derivation is done: sealing may go on.
    pub(crate) fn mark_derived(&self) {
        let _state = self.lock();
        self.derived.store(true, std::sync::atomic::Ordering::Release);
        self.settled.notify_all();
    }

    /// Waits until the key derivation is done (or the making ended).
    pub(crate) fn wait_derived(&self) {
        if self.derived.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let mut state = self.lock();
        while !self.derived.load(std::sync::atomic::Ordering::Acquire) && matches!(*state, State::UnderWay) {
            state = self.settled.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// True while it runs.
    pub(crate) fn under_way(&self) -> bool {
        matches!(*self.lock(), State::UnderWay)
    }

    /// Whether the caller is the repository's first write session (asked once per session).
    pub(crate) fn take_first_session(&self) -> bool {
        !self.first_session.swap(true, std::sync::atomic::Ordering::SeqCst)
    }
}

/// A location whose writes wait for the repository to be made there (reads go through: until
/// then there is nothing of it to read).
pub(crate) struct Gated {
    inner: Arc<dyn Store>,
    making: Arc<Making>,
}

impl Gated {
    pub(crate) fn new(inner: Arc<dyn Store>, making: Arc<Making>) -> Self {
        Gated { inner, making }
    }

    fn wait(&self, op: &'static str, name: &str) -> StoreResult<()> {
        match &*self.making.wait() {
            State::Failed { words, .. } => Err(StoreError::Remote {
                location: self.inner.describe(),
                op,
                name: name.to_string(),
                cause: format!("the repository was not made there ({words})"),
                transient: false,
            }),
            State::UnderWay | State::Made => Ok(()),
        }
    }
}

impl Store for Gated {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn prepare(&self) -> StoreResult<()> {
        self.wait("prepare", "")?;
        self.inner.prepare()
    }
    fn write(&self, name: &str, data: &[u8]) -> StoreResult<()> {
        self.wait("write", name)?;
        self.inner.write(name, data)
    }
    fn write_shared(&self, name: &str, data: Bytes) -> StoreResult<()> {
        self.wait("write", name)?;
        self.inner.write_shared(name, data)
    }
    fn write_new(&self, name: &str, data: &[u8]) -> StoreResult<bool> {
        self.wait("write", name)?;
        self.inner.write_new(name, data)
    }
    fn read_at_most(&self, name: &str, max: u64) -> StoreResult<Result<Vec<u8>, u64>> {
        self.inner.read_at_most(name, max)
    }
    fn read(&self, name: &str, range: Option<Range<u64>>) -> StoreResult<Vec<u8>> {
        self.inner.read(name, range)
    }
    fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>> {
        self.inner.list(prefix)
    }
    fn size(&self, name: &str) -> StoreResult<u64> {
        self.inner.size(name)
    }
    fn remove(&self, name: &str) -> StoreResult<()> {
        self.wait("remove", name)?;
        self.inner.remove(name)
    }
    fn write_concurrency(&self) -> usize {
        self.inner.write_concurrency()
    }
    fn connections(&self) -> usize {
        self.inner.connections()
    }
    fn stale_temporaries(&self, prefix: &str, age: std::time::Duration) -> StoreResult<Vec<String>> {
        self.inner.stale_temporaries(prefix, age)
    }
    fn readable_by_others(&self) -> StoreResult<Vec<String>> {
        self.inner.readable_by_others()
    }
    fn free_space(&self) -> Option<u64> {
        self.inner.free_space()
    }
}
