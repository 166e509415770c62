//! The repository's operations at their own depth: write sessions, adoption of an interrupted
//! writer's packs, prune, check and repair, on an in-memory store that a test can damage
//! directly (the end-to-end suite reaches them only through the binary).

use std::sync::Arc;

use lifeboat_repository::{BlobKind, CheckOptions, KeyKind, Repository, Reuse};
use lifeboat_storage::{MemoryStore, Store};

mod support;

use support::*;

#[test]
fn a_committed_session_is_a_backup_another_process_reads() {
    let (store, repo) = new_repo();
    let id = back_up(&repo, "first", b"the notes of a whole year");
    let fresh = reopen(&store);
    let (snapshots, unreadable) = fresh.snapshots().expect("list");
    assert!(unreadable.is_empty());
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0].1.slug, "first");
    assert_eq!(fresh.read_blob(&id).expect("read"), b"the notes of a whole year");
    assert!(fresh.check(CheckOptions { read_data: true }, &|_| {}).expect("check").is_clean());
}

#[test]
fn a_session_dropped_before_commit_saves_no_backup_and_releases_its_lock() {
    let (store, repo) = new_repo();
    {
        let session = repo.write_session(take(), Reuse::Indexed).expect("session");
        session.writer().add(BlobKind::Data, b"half a backup").expect("add");
        // Dropped: the operation failed.
    }
    assert!(objects(&store, "snapshots").is_empty(), "no snapshot names data that was never committed");
    assert!(objects(&store, "locks").is_empty(), "the lock went with the session");
    // An exclusive operation can start at once.
    repo.prune(NO_WAIT, &|_| {}).expect("prune right after");
}

#[test]
fn packs_an_interrupted_writer_left_are_adopted_by_the_next_session_and_not_uploaded_again() {
    let (store, repo) = new_repo();
    let data = b"uploaded before the power went".to_vec();
    back_up(&repo, "first", &data);
    // The crash came after the pack and before its index and snapshot.
    for name in objects(&store, "index").into_iter().chain(objects(&store, "snapshots")) {
        store.remove(&name).expect("remove");
    }
    let packs_before = objects(&store, "data");
    assert_eq!(packs_before.len(), 1);

    let check = reopen(&store).check(CheckOptions::default(), &|_| {}).expect("check");
    assert!(check.notes.iter().any(|n| n.contains("not in the index")), "check notes the leftover: {:?}", check.notes);

    let repo = reopen(&store);
    let session = repo.write_session(take(), Reuse::Indexed).expect("session");
    // The blob the index lacks waits for the adoption beside the session, then is reused.
    let (_, new) = session.writer().add(BlobKind::Data, &data).expect("add");
    assert!(!new, "the adopted pack's blob is reused, not stored again");
    assert_eq!(session.adopted(), Some(1));
    let len = data.len() as u64;
    let id = repo.blob_id(&data);
    session.commit(|_| snapshot("second", vec![file("f", vec![id], len)])).expect("commit");
    assert_eq!(objects(&store, "data"), packs_before, "nothing uploaded again");
    assert!(reopen(&store).check(CheckOptions { read_data: true }, &|_| {}).expect("check").is_clean());
}

#[test]
fn prune_removes_what_no_backup_needs_and_keeps_every_byte_of_the_rest() {
    let (store, repo) = new_repo();
    let kept = back_up(&repo, "kept", b"what stays");
    back_up(&repo, "gone", b"what a removed backup alone held");
    let (snapshots, _) = repo.snapshots().expect("list");
    let (gone, _) = snapshots.iter().find(|(_, s)| s.slug == "gone").expect("gone");
    repo.remove_snapshot(gone).expect("remove");

    let report = repo.prune(WAIT, &|_| {}).expect("prune");
    assert_eq!(report.snapshots, 1);
    assert_eq!(
        (report.blobs_removed, report.packs_removed),
        (1, 1),
        "the removed backup's blob and its pack go: {report:?}"
    );
    assert!(report.bytes_after < report.bytes_before);
    let fresh = reopen(&store);
    assert_eq!(fresh.read_blob(&kept).expect("kept blob"), b"what stays");
    assert!(fresh.check(CheckOptions { read_data: true }, &|_| {}).expect("check").is_clean());
}

#[test]
fn check_names_the_backup_a_damaged_pack_hurts_and_repair_rebuilds_a_lost_index() {
    let (store, repo) = new_repo();
    let id = back_up(&repo, "precious", b"a file that must come back");
    let pack = objects(&store, "data").pop().expect("a pack");

    // The index is lost: repair rebuilds it from the packs' headers.
    for name in objects(&store, "index") {
        store.remove(&name).expect("remove");
    }
    let fresh = reopen(&store);
    let report = fresh.check(CheckOptions::default(), &|_| {}).expect("check");
    assert!(!report.is_clean(), "a backup whose blobs no index lists is a problem");
    let repaired = fresh.repair(&|_| {}).expect("repair");
    assert!(repaired.packs_indexed >= 1, "{repaired:?}");
    let fresh = reopen(&store);
    assert!(fresh.check(CheckOptions { read_data: true }, &|_| {}).expect("check").is_clean());
    assert_eq!(fresh.read_blob(&id).expect("read"), b"a file that must come back");

    // One byte of the data goes bad: check reads it and names the backup it hurts.
    store.tamper(&pack, |bytes| bytes[40] ^= 0x01).expect("tamper");
    let report = reopen(&store).check(CheckOptions { read_data: true }, &|_| {}).expect("check");
    assert!(!report.is_clean());
    let affected: Vec<&String> = report.problems.iter().flat_map(|p| &p.affected).collect();
    assert!(affected.iter().any(|a| a.contains("precious")), "the damaged backup is named: {:?}", report.problems);
}

/// The snapshots listed while a repository is opened spare its first listing one round trip,
/// once; whatever must see every backup written before its own lock (prune) lists again.
#[test]
fn the_listing_made_while_opening_serves_its_first_caller_once_and_never_a_prune() {
    let (store, repo) = new_repo();
    back_up(&repo, "first", b"made before the open");
    let slugs = |r: &Repository| -> Vec<String> {
        let (mut list, unreadable) = r.snapshots_listed_at_open().expect("list");
        assert!(unreadable.is_empty());
        list.sort_by(|a, b| a.1.slug.cmp(&b.1.slug));
        list.into_iter().map(|(_, s)| s.slug).collect()
    };
    assert_eq!(slugs(&repo), ["first"], "a repository just made, then backed up through its own handle");
    let opened = reopen(&store);
    back_up(&repo, "later", b"made after the open");
    assert_eq!(slugs(&opened), ["first"], "the listing of the open");
    assert_eq!(slugs(&opened), ["first", "later"], "listed again: the open's listing serves once");
    let opened = reopen(&store);
    back_up(&opened, "own", b"made through the opened handle");
    assert_eq!(slugs(&opened), ["first", "later", "own"], "a handle's own backup is never hidden by its open");
    let id = reopen(&store).snapshots().expect("list").0.into_iter().find(|(_, s)| s.slug == "own").expect("own").0;
    let opened = reopen(&store);
    opened.remove_snapshot(&id).expect("remove");
    assert_eq!(slugs(&opened), ["first", "later"], "nor is a backup it removed shown");

    // A backup finished between an open and a prune: its data stays.
    let opened = reopen(&store);
    let last = back_up(&repo, "last", b"finished while the prune waited to begin");
    opened.prune(WAIT, &|_| {}).expect("prune");
    assert_eq!(
        reopen(&store).read_blob(&last).expect("the last backup's blob"),
        b"finished while the prune waited to begin"
    );
    assert!(reopen(&store).check(CheckOptions { read_data: true }, &|_| {}).expect("check").is_clean());
}

/// A store that says when the packs were listed, so a test can act between that listing and
/// what follows it.
struct ListingSignal {
    inner: Arc<MemoryStore>,
    listed: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

impl Store for ListingSignal {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn prepare(&self) -> lifeboat_storage::StoreResult<()> {
        self.inner.prepare()
    }
    fn write(&self, name: &str, data: &[u8]) -> lifeboat_storage::StoreResult<()> {
        self.inner.write(name, data)
    }
    fn write_new(&self, name: &str, data: &[u8]) -> lifeboat_storage::StoreResult<bool> {
        self.inner.write_new(name, data)
    }
    fn read(&self, name: &str, range: Option<std::ops::Range<u64>>) -> lifeboat_storage::StoreResult<Vec<u8>> {
        self.inner.read(name, range)
    }
    fn list(&self, prefix: &str) -> lifeboat_storage::StoreResult<Vec<lifeboat_storage::ObjectInfo>> {
        let listed = self.inner.list(prefix);
        if prefix == "data" {
            if let Some(tell) = self.listed.lock().expect("signal lock").take() {
                let _ = tell.send(());
            }
        }
        listed
    }
    fn size(&self, name: &str) -> lifeboat_storage::StoreResult<u64> {
        self.inner.size(name)
    }
    fn remove(&self, name: &str) -> lifeboat_storage::StoreResult<()> {
        self.inner.remove(name)
    }
}

/// A session lists the packs while it waits for its lock. A pack in that listing which a
/// prune removes before the lock is granted is not adopted (its header no longer reads), and
/// its data is stored again: the index never names a pack that is gone.
#[test]
fn a_pack_listed_before_the_lock_and_pruned_meanwhile_is_not_adopted() {
    let (store, repo) = new_repo();
    back_up(&repo, "first", b"a backup that stays");
    let data = b"uploaded by a backup that was interrupted".to_vec();
    let (packs_before, indexes_before, snapshots_before) =
        (objects(&store, "data"), objects(&store, "index"), objects(&store, "snapshots"));
    back_up(&repo, "interrupted", &data);
    // What an interruption leaves: the pack, without its index file or snapshot.
    for name in objects(&store, "index").into_iter().chain(objects(&store, "snapshots")) {
        if !indexes_before.contains(&name) && !snapshots_before.contains(&name) {
            store.remove(&name).expect("remove");
        }
    }
    let orphan = objects(&store, "data").into_iter().find(|p| !packs_before.contains(p)).expect("the orphan pack");

    let prune = repo.lock(lifeboat_repository::LockKind::Exclusive, "prune", WAIT).expect("a prune's lock");
    let (tell, listed) = std::sync::mpsc::channel();
    let watched: Arc<dyn Store> =
        Arc::new(ListingSignal { inner: store.clone(), listed: std::sync::Mutex::new(Some(tell)) });
    let secret = lifeboat_repository::Secret::new(DEVICE_KEY);
    let writer = Repository::open(watched, &secret).expect("open");
    let data_again = data.clone();
    let session = std::thread::spawn(move || {
        let session = writer.write_session(take(), Reuse::Indexed).expect("session");
        let (id, new) = session.writer().add(BlobKind::Data, &data_again).expect("add");
        let adopted = session.adopted();
        let len = data_again.len() as u64;
        session.commit(|_| snapshot("again", vec![file("f", vec![id], len)])).expect("commit");
        (adopted, new, id)
    });
    listed.recv().expect("the session listed the packs");
    // The prune removes the pack no index names, then lets go of its lock.
    store.remove(&orphan).expect("prune removes the orphan");
    drop(prune);
    let (adopted, new, id) = session.join().expect("the session's thread");
    assert_eq!(adopted, Some(0), "a pack gone before the lock was adopted");
    assert!(new, "the blob of the removed pack is stored again, not taken as present");
    let fresh = reopen(&store);
    assert_eq!(fresh.read_blob(&id).expect("read"), data);
    assert!(fresh.check(CheckOptions { read_data: true }, &|_| {}).expect("check").is_clean());
}

/// A store that notes every write and removal, in order, as `write NAME` / `remove NAME`.
struct Recording {
    inner: Arc<MemoryStore>,
    noted: std::sync::Mutex<Vec<String>>,
}

impl Recording {
    fn new(inner: Arc<MemoryStore>) -> Arc<Recording> {
        Arc::new(Recording { inner, noted: Default::default() })
    }

    fn note(&self, op: &str, name: &str) {
        self.noted.lock().unwrap().push(format!("{op} {name}"));
    }

    fn noted(&self) -> Vec<String> {
        self.noted.lock().unwrap().clone()
    }
}

impl Store for Recording {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn prepare(&self) -> lifeboat_storage::StoreResult<()> {
        self.inner.prepare()
    }
    fn write(&self, name: &str, data: &[u8]) -> lifeboat_storage::StoreResult<()> {
        self.note("write", name);
        self.inner.write(name, data)
    }
    fn write_new(&self, name: &str, data: &[u8]) -> lifeboat_storage::StoreResult<bool> {
        self.note("write", name);
        self.inner.write_new(name, data)
    }
    fn read(&self, name: &str, range: Option<std::ops::Range<u64>>) -> lifeboat_storage::StoreResult<Vec<u8>> {
        self.inner.read(name, range)
    }
    fn list(&self, prefix: &str) -> lifeboat_storage::StoreResult<Vec<lifeboat_storage::ObjectInfo>> {
        self.inner.list(prefix)
    }
    fn size(&self, name: &str) -> lifeboat_storage::StoreResult<u64> {
        self.inner.size(name)
    }
    fn remove(&self, name: &str) -> lifeboat_storage::StoreResult<()> {
        self.note("remove", name);
        self.inner.remove(name)
    }
}

fn empty_location(store: &Arc<Recording>) -> lifeboat_repository::Empty {
    match Repository::locate(store.clone() as Arc<dyn Store>).expect("locate") {
        Err(empty) => empty,
        Ok(_) => panic!("an empty store held a repository"),
    }
}

/// A repository made beside its first backup (the backup packs while the key slots and the
/// config are stored): nothing but its key slots reaches the location before its config, its
/// lock comes before any pack, and the result is a repository like any other.
#[test]
fn a_repository_made_beside_its_first_backup_stores_nothing_before_its_config() {
    let memory = Arc::new(MemoryStore::new());
    let store = Recording::new(memory.clone());
    let secret = lifeboat_repository::Secret::new(DEVICE_KEY);
    let repo = empty_location(&store).begin(&secret, KeyKind::Device).expect("begin");
    // More than a pack's worth, so that packs fill (and wait) while the making may still run.
    let data: Vec<u8> = (0..40u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let id = back_up(&repo, "first", &data);
    repo.made().expect("made");
    assert!(!repo.being_made());
    assert!(repo.made_slot().is_some(), "the slot it was made with is known, to be remembered");

    let noted = store.noted();
    let config = noted.iter().position(|n| n == "write config").expect("the config was written");
    assert!(noted[..config].iter().all(|n| n.starts_with("write keys/")), "before the config: {noted:?}");
    assert_eq!(config, 2, "a slot for the secret and one for the recovery key: {noted:?}");
    let lock = noted.iter().position(|n| n.starts_with("write locks/")).expect("a lock was taken");
    let first_pack = noted.iter().position(|n| n.starts_with("write data/")).expect("packs were written");
    assert!(config < lock && lock < first_pack, "config, then the lock, then packs: {noted:?}");
    assert!(noted.last().is_some_and(|n| n.starts_with("remove locks/")), "the lock goes last: {noted:?}");

    let fresh = reopen(&memory);
    assert_eq!(fresh.id(), repo.id());
    assert_eq!(fresh.read_blob(&id).expect("read"), data);
    assert_eq!(fresh.snapshots().expect("snapshots").0.len(), 1);
    assert!(objects(&memory, "locks").is_empty());
    assert!(fresh.check(CheckOptions { read_data: true }, &|_| {}).expect("check").is_clean());
}

/// Two processes found the location empty; the other made its repository first. The one
/// making its own beside its backup learns it from its session (`AlreadyExists`, to open
/// theirs) and leaves nothing behind: not a slot, a lock, a pack or a backup.
#[test]
fn a_repository_made_beside_a_backup_that_another_made_first_leaves_nothing_behind() {
    let memory = Arc::new(MemoryStore::new());
    let store = Recording::new(memory.clone());
    let (late, early) = (empty_location(&store), empty_location(&store));
    let winner = early.create(&lifeboat_repository::Secret::new(DEVICE_KEY), KeyKind::Device).expect("create");
    let slots = objects(&memory, "keys");

    let other = lifeboat_repository::Secret::new("ZYXWVUTSRQPONMLKJIHGFEDCBA765432");
    let repo = late.begin(&other, KeyKind::Device).expect("begin");
    let session = repo.write_session(take(), Reuse::Indexed).expect("session");
    let data = vec![7u8; 20 << 20];
    // The blob may be refused already (the making failed first) or accepted into a pack.
    let added = session.writer().add(BlobKind::Data, &data);
    let committed = added.and_then(|(id, _)| session.commit(|_| snapshot("lost", vec![file("f", vec![id], 1)])));
    // Told by the writer's thread or by the session: the cause either way.
    assert!(
        matches!(committed.as_ref().map_err(|e| e.cause()), Err(lifeboat_repository::RepoError::AlreadyExists(_))),
        "the session tells the race lost: {:?}",
        committed.err()
    );
    assert!(matches!(repo.made(), Err(lifeboat_repository::RepoError::AlreadyExists(_))));

    assert_eq!(objects(&memory, "keys"), slots, "only the winner's slots");
    for folder in ["data", "index", "snapshots", "locks"] {
        assert!(objects(&memory, folder).is_empty(), "{folder} holds the loser's work");
    }
    assert_eq!(reopen(&memory).id(), winner.id());
}

/// A location that takes no more packs: a card mounted read-only after the repository was made.
struct NoMorePacks(Arc<MemoryStore>);

impl Store for NoMorePacks {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn prepare(&self) -> lifeboat_storage::StoreResult<()> {
        self.0.prepare()
    }
    fn write(&self, name: &str, data: &[u8]) -> lifeboat_storage::StoreResult<()> {
        if name.starts_with("data/") {
            return Err(lifeboat_storage::StoreError::ReadOnly { name: name.to_string() });
        }
        self.0.write(name, data)
    }
    fn write_new(&self, name: &str, data: &[u8]) -> lifeboat_storage::StoreResult<bool> {
        if name.starts_with("data/") {
            return Err(lifeboat_storage::StoreError::ReadOnly { name: name.to_string() });
        }
        self.0.write_new(name, data)
    }
    fn read(&self, name: &str, range: Option<std::ops::Range<u64>>) -> lifeboat_storage::StoreResult<Vec<u8>> {
        self.0.read(name, range)
    }
    fn list(&self, prefix: &str) -> lifeboat_storage::StoreResult<Vec<lifeboat_storage::ObjectInfo>> {
        self.0.list(prefix)
    }
    fn size(&self, name: &str) -> lifeboat_storage::StoreResult<u64> {
        self.0.size(name)
    }
    fn remove(&self, name: &str) -> lifeboat_storage::StoreResult<()> {
        self.0.remove(name)
    }
}

#[test]
fn every_thread_that_adds_after_a_failed_upload_is_told_the_failure_not_cancelled() {
    let (memory, _) = new_repo();
    let repo = Repository::open(
        Arc::new(NoMorePacks(memory)) as Arc<dyn Store>,
        &lifeboat_repository::Secret::new(DEVICE_KEY),
    )
    .expect("open");
    let session = repo.write_session(take(), Reuse::Indexed).expect("session");
    // Blobs of a few MiB fill packs, whose uploads fail; each add after that says why.
    let mut told = Vec::new();
    for i in 0..64u64 {
        // Incompressible: a xorshift stream.
        let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (i + 1);
        let blob: Vec<u8> = (0..(2usize << 20) / 8)
            .flat_map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()
            })
            .collect();
        if let Err(e) = session.writer().add(BlobKind::Data, &blob) {
            told.push(e.to_string());
            if told.len() == 3 {
                break;
            }
        }
    }
    assert_eq!(told.len(), 3, "the failed uploads stop the writer");
    for e in &told {
        assert!(e.contains("read-only"), "each caller is told the location is read-only, not {e:?}");
    }
}
