//! Storing blobs: dedup against the index, seal, gather into packs, upload on worker threads,
//! and record index files as packs land.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender};
use lifeboat_storage::Bytes;

use crate::adopt::Adoption;
use crate::cache::Cached;
use crate::crypto::worth_compressing;
use crate::pack::{pack_name, FinishedPack, PackBuilder};
use crate::repofile::index_file::{IndexFile, BLOBS_PER_FILE};
use crate::{BlobKind, Id, RepoError, RepoResult, Repository};

/// Threads writing a pack's folder listings into the metadata cache.
const CACHE_WRITERS: usize = 4;

/// Packs uploaded between two index files, so an interrupted backup leaves most of its
/// work findable by the next one.
const PACKS_PER_INDEX: usize = 16;

/// Counters of a writing session, readable while it runs.
#[derive(Debug, Default)]
pub struct WriteStats {
    /// Blobs that were new to the repository.
    pub new_blobs: AtomicU64,
    /// Plain bytes of new blobs.
    pub new_bytes: AtomicU64,
    /// Plain bytes of new file content (data blobs): the part of `new_bytes` that files add,
    /// without the folder listings.
    pub new_data_bytes: AtomicU64,
    /// Bytes written to the location (sealed blobs and pack headers), counted once each pack
    /// is stored whole.
    pub stored_bytes: AtomicU64,
    /// Bytes of sealed blobs put into packs for the location, stored or not yet: with
    /// `stored_sealed_bytes`, how far the uploads are behind what was read.
    pub sealed_bytes: AtomicU64,
    /// The part of `sealed_bytes` in packs stored whole (`stored_bytes` less the pack
    /// headers): `sealed_bytes` less this is what still waits to reach the location.
    pub stored_sealed_bytes: AtomicU64,
    /// Blobs already present.
    pub known_blobs: AtomicU64,
    pub packs: AtomicU64,
}

/// A session that stores blobs in a repository. Use from many threads at once; call
/// [`BlobWriter::finish`] to flush the last packs and write the index.
pub struct BlobWriter {
    repo: Repository,
    pending: Mutex<HashSet<Id>>,
    data: Mutex<PackBuilder>,
    trees: Mutex<PackBuilder>,
    tx: Option<Sender<FinishedPack>>,
    uploaders: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
    /// When true, nothing is written: used to estimate what a backup would add.
    dry_run: bool,
    /// Set for a session that must not lean on stored copies it has not checked (a safety
    /// backup): blobs known to be intact. A stored blob not in it is read back and
    /// authenticated before it is reused, and stored again when that fails.
    verified: Option<Mutex<HashSet<Id>>>,
    /// The session's adoption of an interrupted writer's packs: a blob the index lacks
    /// waits for it, since an adopted pack may hold it.
    adoption: Option<Adoption>,
}

struct Shared {
    repo: Repository,
    failed: AtomicBool,
    error: Mutex<Option<Arc<RepoError>>>,
    /// Set by whoever wants the writer to stop (a cancelled job, Ctrl-C): no pack is sent
    /// after it is seen; those already stored stay and are indexed.
    stop: OnceLock<Arc<AtomicBool>>,
    unindexed: Mutex<IndexFile>,
    stats: Arc<WriteStats>,
    /// Buffers of uploaded packs, reused for the next ones: fresh 16 MiB buffers would each
    /// cost the kernel 4,096 zeroed pages.
    spare: Mutex<Vec<Vec<u8>>>,
    /// True while the uploads are held back ([`BlobWriter::held_back`]).
    held: Mutex<bool>,
    released: std::sync::Condvar,
    /// Finished packs not yet stored (uploading, or waiting for an upload thread), and the
    /// most of them a worker may add to: one per upload thread and one waiting.
    finished: Mutex<Finished>,
    room: std::sync::Condvar,
    most_finished: usize,
}

#[derive(Default)]
struct Finished {
    now: usize,
    /// The most there ever were, and how many times a worker waited for room (for tests).
    peak: usize,
    waited: usize,
}

impl Shared {
    fn finished(&self) -> std::sync::MutexGuard<'_, Finished> {
        self.finished.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn pack_finished(&self) {
        let mut finished = self.finished();
        finished.now += 1;
        finished.peak = finished.peak.max(finished.now);
    }

    fn pack_gone(&self) {
        let mut finished = self.finished();
        finished.now = finished.now.saturating_sub(1);
        self.room.notify_all();
    }

    /// Waits while as many finished packs as allowed are in memory. Without it, every worker
    /// that filled a pack while the uploads were busy (or held back) would keep one more.
    fn wait_for_room(&self) {
        let mut finished = self.finished();
        if finished.now >= self.most_finished {
            finished.waited += 1;
        }
        while finished.now >= self.most_finished {
            finished = self.room.wait(finished).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    fn release(&self) {
        *self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = false;
        self.released.notify_all();
    }

    fn wait_released(&self) {
        let mut held = self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while *held {
            held = self.released.wait(held).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    fn stopped(&self) -> bool {
        self.stop.get().is_some_and(|s| s.load(Ordering::SeqCst))
    }

    fn fail(&self, e: RepoError) {
        self.failed.store(true, Ordering::SeqCst);
        let mut slot = self.error.lock().expect("error lock");
        if slot.is_none() {
            *slot = Some(Arc::new(e));
        }
    }

    fn upload(&self, pack: FinishedPack) -> RepoResult<()> {
        // Shared, not copied: an HTTP client holds the body it sends, and a pack held twice
        // for every upload in flight is a backup's largest memory.
        let bytes = Bytes::from(pack.bytes);
        // Folder listings just written are kept: the next backup reads them back. A file
        // each, written while the pack travels and several at once (hundreds of small files
        // at the end of a backup, where nothing else overlaps them). An entry whose pack then
        // fails to upload is never read: the index does not name it.
        let trees: Vec<_> = pack.entries.iter().filter(|e| e.kind == BlobKind::Tree).collect();
        let stored = std::thread::scope(|scope| {
            if let (Some(cache), false) = (self.repo.cache(), trees.is_empty()) {
                scope.spawn(|| {
                    crate::parallel::for_each(CACHE_WRITERS, &trees, |e| {
                        cache.put(Cached::Tree, &e.id, &bytes[e.offset as usize..(e.offset + e.length) as usize]);
                    })
                });
            }
            self.repo.store().write_shared(&pack_name(&pack.id), bytes.clone())
        });
        stored?;
        self.stats.stored_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let sealed: u64 = pack.entries.iter().map(|e| u64::from(e.length)).sum();
        self.stats.stored_sealed_bytes.fetch_add(sealed, Ordering::Relaxed);
        let n = self.stats.packs.fetch_add(1, Ordering::Relaxed) + 1;
        // The buffer comes back for the next pack when the location kept no hold of it.
        if let Ok(buffer) = bytes.try_into_mut() {
            let mut spare = self.spare.lock().expect("spare lock");
            if spare.is_empty() {
                let mut b = Vec::from(buffer);
                b.clear();
                spare.push(b);
            }
        }
        self.repo.inner.index.write().expect("index lock").add_pack(pack.id, &pack.entries);
        let batch = {
            let mut un = self.unindexed.lock().expect("index batch lock");
            un.packs.push((pack.id, pack.entries));
            if un.packs.len() >= PACKS_PER_INDEX || un.blob_count() >= BLOBS_PER_FILE {
                Some(std::mem::take(&mut *un))
            } else {
                None
            }
        };
        if let Some(batch) = batch {
            self.write_index(batch)?;
        }
        lifeboat_storage::faults::pause_point(|| format!("pack {n} of the session stored"));
        Ok(())
    }

    /// Writes the index of the packs stored but not yet indexed, as far as the location lets
    /// it: a writer that stops early leaves them findable by the next run.
    fn index_the_rest(&self) {
        let rest = std::mem::take(&mut *self.unindexed.lock().expect("index batch lock"));
        if !rest.packs.is_empty() {
            let _ = self.write_index(rest);
        }
    }

    fn write_index(&self, batch: IndexFile) -> RepoResult<()> {
        let id = self.repo.write_index_file(&batch)?;
        self.repo.inner.index.write().expect("index lock").files.push(id);
        Ok(())
    }
}

thread_local! {
    /// Each thread seals into one buffer it keeps, instead of a fresh allocation per blob.
    static SEALED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl BlobWriter {
    /// Starts a writer with `threads` concurrent uploads (outside this crate, through
    /// [`Repository::write_session`]).
    pub(crate) fn new(repo: &Repository, threads: usize) -> Self {
        Self::start(repo, threads, false, false)
    }

    /// A writer whose uploads wait until the returned [`Release`] is opened (its session's
    /// lock is held) or failed (the reason becomes the writer's error). Meanwhile blobs are
    /// sealed and packed as usual, and the packs wait in the workers that filled them.
    pub(crate) fn held_back(repo: &Repository, threads: usize) -> (Self, Release) {
        let w = Self::start(repo, threads, false, true);
        let release = Release { shared: w.shared.clone(), settled: false };
        (w, release)
    }

    /// A session that computes what would be new without writing anything.
    pub fn dry_run(repo: &Repository) -> Self {
        Self::start(repo, 0, true, false)
    }

    /// A session that reuses a stored blob only once it is known intact: those in `verified`
    /// (just read and authenticated by the caller), or those it reads back and authenticates
    /// itself. A damaged or missing copy is stored again from the data given.
    pub(crate) fn verifying(repo: &Repository, threads: usize, verified: HashSet<Id>) -> Self {
        let mut w = Self::start(repo, threads, false, false);
        w.verified = Some(Mutex::new(verified));
        w
    }

    /// Whether the repository's copy of `id` can be reused by this session.
    fn reusable(&self, id: &Id) -> bool {
        if !self.repo.has_blob(id) {
            let adopted = self.adoption.as_ref().map_or(0, Adoption::wait);
            if adopted == 0 || !self.repo.has_blob(id) {
                return false;
            }
        }
        let Some(verified) = &self.verified else { return true };
        if verified.lock().expect("verified lock").contains(id) {
            return true;
        }
        let intact = self.repo.read_blob(id).is_ok();
        if intact {
            verified.lock().expect("verified lock").insert(*id);
        }
        intact
    }

    fn start(repo: &Repository, threads: usize, dry_run: bool, held: bool) -> Self {
        let shared = Arc::new(Shared {
            repo: repo.clone(),
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
            stop: OnceLock::new(),
            unindexed: Mutex::new(IndexFile::default()),
            stats: Arc::new(WriteStats::default()),
            spare: Mutex::new(Vec::new()),
            held: Mutex::new(held),
            released: std::sync::Condvar::new(),
            finished: Mutex::default(),
            room: std::sync::Condvar::new(),
            most_finished: threads + 1,
        });
        // A finished pack is handed straight to a free upload thread (the worker that filled
        // it waits meanwhile): at most `threads` uploading, one waiting, two building, and one
        // spare buffer are in memory at once.
        let (tx, rx) = bounded::<FinishedPack>(0);
        let uploaders = (0..threads)
            .map(|i| {
                let rx = rx.clone();
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("upload-{i}"))
                    .spawn(move || {
                        // Held back, a thread takes no pack: they wait in the workers that
                        // filled them, as many as while every upload is busy.
                        shared.wait_released();
                        for pack in rx {
                            if shared.stopped() {
                                shared.fail(RepoError::Cancelled);
                            }
                            if !shared.failed.load(Ordering::SeqCst) {
                                if let Err(e) = shared.upload(pack) {
                                    shared.fail(e);
                                }
                            }
                            shared.pack_gone();
                        }
                    })
                    .expect("spawning an upload thread")
            })
            .collect();
        BlobWriter {
            repo: repo.clone(),
            pending: Mutex::new(HashSet::new()),
            data: Mutex::new(PackBuilder::default()),
            trees: Mutex::new(PackBuilder::default()),
            tx: Some(tx),
            uploaders,
            shared,
            dry_run,
            verified: None,
            adoption: None,
        }
    }

    /// This writer waits for `adoption` before storing a blob the index lacks.
    pub(crate) fn adopting(mut self, adoption: Adoption) -> Self {
        self.adoption = Some(adoption);
        self
    }

    /// The writer stops sending packs once `flag` is set (see [`WriteSession::stop_when`]).
    ///
    /// [`WriteSession::stop_when`]: crate::WriteSession::stop_when
    pub(crate) fn stop_when(&self, flag: Arc<AtomicBool>) {
        let _ = self.shared.stop.set(flag);
    }

    pub fn stats(&self) -> Arc<WriteStats> {
        self.shared.stats.clone()
    }

    fn check_failed(&self) -> RepoResult<()> {
        if self.shared.stopped() {
            self.shared.fail(RepoError::Cancelled);
        }
        if self.shared.failed.load(Ordering::SeqCst) {
            let e = self.shared.error.lock().expect("error lock").clone();
            return Err(RepoError::Writer(e.unwrap_or_else(|| Arc::new(RepoError::Cancelled))));
        }
        Ok(())
    }

    /// Stores a blob unless the repository (or this session) has it already. Returns its id
    /// and whether it was new.
    pub fn add(&self, kind: BlobKind, plaintext: &[u8]) -> RepoResult<(Id, bool)> {
        let id = self.repo.blob_id(plaintext);
        let new = self.add_with_id(kind, id, plaintext)?;
        Ok((id, new))
    }

    /// As [`BlobWriter::add`], for a caller that computed the id already.
    pub fn add_with_id(&self, kind: BlobKind, id: Id, plaintext: &[u8]) -> RepoResult<bool> {
        self.check_failed()?;
        let stats = &self.shared.stats;
        if self.reusable(&id) || !self.pending.lock().expect("pending lock").insert(id) {
            stats.known_blobs.fetch_add(1, Ordering::Relaxed);
            return Ok(false);
        }
        stats.new_blobs.fetch_add(1, Ordering::Relaxed);
        stats.new_bytes.fetch_add(plaintext.len() as u64, Ordering::Relaxed);
        if kind == BlobKind::Data {
            stats.new_data_bytes.fetch_add(plaintext.len() as u64, Ordering::Relaxed);
        }
        if self.dry_run {
            return Ok(true);
        }
        self.repo.wait_while_deriving();
        let compress = kind == BlobKind::Tree || worth_compressing(plaintext);
        SEALED.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            self.repo.key().seal_into(plaintext, compress, &mut buf);
            let r = self.push(kind, id, &buf, plaintext.len() as u32);
            if buf.capacity() > 16 << 20 {
                *buf = Vec::new();
            }
            r
        })?;
        Ok(true)
    }

    /// Stores an already sealed blob as it is (prune copies blobs without opening them).
    pub(crate) fn add_sealed(&self, kind: BlobKind, id: Id, sealed: &[u8], raw_length: u32) -> RepoResult<()> {
        self.check_failed()?;
        if !self.pending.lock().expect("pending lock").insert(id) {
            return Ok(());
        }
        self.push(kind, id, sealed, raw_length)
    }

    fn push(&self, kind: BlobKind, id: Id, sealed: &[u8], raw_length: u32) -> RepoResult<()> {
        if !self.dry_run {
            self.shared.wait_for_room();
        }
        let builder = match kind {
            BlobKind::Data => &self.data,
            BlobKind::Tree => &self.trees,
        };
        let full = {
            let mut b = builder.lock().expect("pack lock");
            if b.is_empty() {
                if let Some(spare) = self.shared.spare.lock().expect("spare lock").pop() {
                    b.reuse(spare);
                }
            }
            b.add(kind, id, sealed, raw_length);
            self.shared.stats.sealed_bytes.fetch_add(sealed.len() as u64, Ordering::Relaxed);
            if b.len() >= self.repo.pack_size() {
                Some(std::mem::take(&mut *b))
            } else {
                None
            }
        };
        if let Some(b) = full {
            self.send(b)?;
        }
        Ok(())
    }

    fn send(&self, builder: PackBuilder) -> RepoResult<()> {
        let pack = builder.finish(self.repo.key());
        let tx = self.tx.as_ref().ok_or(RepoError::Cancelled)?;
        self.shared.pack_finished();
        if tx.send(pack).is_err() {
            self.shared.pack_gone();
            return Err(RepoError::Cancelled);
        }
        self.check_failed()
    }

    /// Uploads what is left, waits for every upload, and writes the index of this session.
    pub fn finish(mut self) -> RepoResult<Arc<WriteStats>> {
        let mut sent = Ok(());
        if !self.dry_run {
            for b in [&self.data, &self.trees] {
                let b = std::mem::take(&mut *b.lock().expect("pack lock"));
                if sent.is_ok() && !b.is_empty() {
                    sent = self.send(b);
                }
            }
        }
        self.tx.take();
        for h in self.uploaders.drain(..) {
            let _ = h.join();
        }
        if let Err(e) = sent.and_then(|()| self.check_failed()) {
            // Stopped or failed on the way: what was stored is indexed for the next run.
            self.shared.index_the_rest();
            return Err(e);
        }
        let rest = std::mem::take(&mut *self.shared.unindexed.lock().expect("index batch lock"));
        if !rest.packs.is_empty() {
            self.shared.write_index(rest)?;
        }
        Ok(self.shared.stats.clone())
    }

    /// Stops without writing what is buffered. Packs already uploaded stay (and are indexed),
    /// so a later run reuses them.
    pub fn abandon(mut self) {
        self.tx.take();
        for h in self.uploaders.drain(..) {
            let _ = h.join();
        }
        self.shared.index_the_rest();
    }
}

/// Lets a held-back writer's uploads go, once; see [`BlobWriter::held_back`]. Dropped
/// unsettled (its holder failed on the way), it fails the writer.
pub(crate) struct Release {
    shared: Arc<Shared>,
    settled: bool,
}

impl Release {
    pub(crate) fn open(mut self) {
        self.settled = true;
        self.shared.release();
    }

    pub(crate) fn fail(mut self, e: RepoError) {
        self.settled = true;
        self.shared.fail(e);
        self.shared.release();
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if !self.settled {
            self.shared.fail(RepoError::Cancelled);
            self.shared.release();
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        self.tx.take();
        for h in self.uploaders.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyKind, Secret};
    use lifeboat_storage::{MemoryStore, Store};

    /// Workers that fill packs faster than they are stored (here: uploads held back) keep no
    /// more finished packs than one per upload thread and one waiting: the others wait for
    /// room before they add to a pack, and all of it is stored once the uploads go.
    #[test]
    fn finished_packs_in_memory_stay_within_one_per_upload_and_one_waiting() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let secret = Secret::new("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
        let repo = Repository::init(store, &secret, KeyKind::Device).unwrap();
        let (writer, release) = BlobWriter::held_back(&repo, 2);
        let blob = |worker: u64, i: u64| -> Vec<u8> {
            let mut x = worker * 1_000_003 + i + 1;
            (0..1 << 20)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        };
        let ids = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4u64)
                .map(|w| {
                    let (writer, blob) = (&writer, &blob);
                    scope.spawn(move || {
                        (0..24).map(|i| writer.add(BlobKind::Data, &blob(w, i)).unwrap().0).collect::<Vec<_>>()
                    })
                })
                .collect();
            // Held back until a worker was refused room: the budget was reached and kept.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while writer.shared.finished().waited == 0 {
                assert!(std::time::Instant::now() < deadline, "no worker ever waited for room");
                std::thread::yield_now();
            }
            release.open();
            workers.into_iter().flat_map(|w| w.join().unwrap()).collect::<Vec<_>>()
        });
        let peak = writer.shared.finished().peak;
        writer.finish().unwrap();
        assert!(peak <= 3, "{peak} finished packs were in memory at once");
        for id in ids {
            assert!(repo.has_blob(&id));
        }
    }
}
