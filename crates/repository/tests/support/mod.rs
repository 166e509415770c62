//! What the repository's integration tests share: an in-memory repository, and backups of
//! one file made the way a write session makes them.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use lifeboat_repository::{
    BlobKind, Id, KeyKind, Node, NodeKind, RawBytes, Repository, Reuse, SessionLock, Snapshot, SnapshotRoot,
    SnapshotStatus, SnapshotUnit, Timestamp,
};
use lifeboat_storage::{MemoryStore, Store};

pub const WAIT: Duration = Duration::from_secs(5);
pub const NO_WAIT: Duration = Duration::ZERO;
/// A device key as Lifeboat generates one: 32 base32 characters.
pub const DEVICE_KEY: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

pub fn new_repo() -> (Arc<MemoryStore>, Repository) {
    let store = Arc::new(MemoryStore::new());
    let secret = lifeboat_repository::Secret::new(DEVICE_KEY);
    let repo = Repository::init(store.clone() as Arc<dyn Store>, &secret, KeyKind::Device).expect("init");
    (store, repo)
}

pub fn reopen(store: &Arc<MemoryStore>) -> Repository {
    let secret = lifeboat_repository::Secret::new(DEVICE_KEY);
    Repository::open(store.clone() as Arc<dyn Store>, &secret).expect("open")
}

pub fn take() -> SessionLock<'static> {
    SessionLock::Take { operation: "test", wait: WAIT }
}

pub fn file(name: &str, content: Vec<Id>, size: u64) -> Node {
    Node {
        name: RawBytes(name.as_bytes().to_vec()),
        kind: NodeKind::File,
        mode: 0o600,
        mtime: Timestamp(1_700_000_000, 0),
        ctime: Timestamp(1_700_000_000, 0),
        uid: 1000,
        gid: 1000,
        user: None,
        group: None,
        size,
        inode: 1,
        device: 1,
        links: 1,
        content,
        subtree: None,
        target: None,
        rdev: None,
        xattrs: Vec::new(),
    }
}

pub fn snapshot(slug: &str, roots: Vec<Node>) -> Snapshot {
    let now = jiff::Timestamp::from_second(1_700_000_000).expect("a valid time");
    let size = roots.iter().map(|n| n.size).sum();
    Snapshot {
        configuration: None,
        version: 1,
        slug: slug.to_string(),
        name: slug.to_string(),
        date: now,
        finished: now,
        host: "test".into(),
        device_id: None,
        device: None,
        user: "test".into(),
        uid: 1000,
        home: RawBytes(b"/home/test".to_vec()),
        full: false,
        status: SnapshotStatus::Completed,
        protected: false,
        pinned: false,
        units: vec![SnapshotUnit {
            name: "notes".into(),
            title: "Notes".into(),
            kind: "files".into(),
            status: SnapshotStatus::Completed,
            warnings: Vec::new(),
            error: None,
            files: roots.len() as u64,
            dirs: 0,
            size,
            not_included: Vec::new(),
            remove_on_restore: Vec::new(),
            roots: roots
                .into_iter()
                .map(|node| SnapshotRoot {
                    path: format!("~/{}", String::from_utf8_lossy(&node.name.0)),
                    absolute: RawBytes(b"/home/test".to_vec()),
                    node,
                    selection: false,
                })
                .collect(),
        }],
        size,
        files: 1,
        added: 0,
        stored: 0,
        read: 0,
        tags: Vec::new(),
        program: "test".into(),
    }
}

/// Backs up one file of `data` as backup `slug`; returns the blob's id.
pub fn back_up(repo: &Repository, slug: &str, data: &[u8]) -> Id {
    let session = repo.write_session(take(), Reuse::Indexed).expect("session");
    let (id, _) = session.writer().add(BlobKind::Data, data).expect("add");
    let len = data.len() as u64;
    session.commit(|_| snapshot(slug, vec![file(slug, vec![id], len)])).expect("commit");
    id
}

pub fn objects(store: &MemoryStore, folder: &str) -> Vec<String> {
    store.names().into_iter().filter(|n| n.starts_with(&format!("{folder}/"))).collect()
}

/// What a [`Watched`] store calls before each read, with the object's name.
pub type Hold = Box<dyn Fn(&str) + Send + Sync>;

/// A store over a [`MemoryStore`] that counts the bytes read from each object, and does what
/// someone else at the location would do at a chosen moment: grows an object right after a
/// listing of its folder (between the listing and the read that trusts its sizes), or holds
/// reads (`hold`, called before each read) to see how many a reader has in flight.
pub struct Watched {
    pub inner: Arc<MemoryStore>,
    read: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// (folder whose listing triggers it, object to grow, bytes to add)
    pub grow: std::sync::Mutex<Vec<(String, String, usize)>>,
    pub hold: Option<Hold>,
    pub connections: usize,
}

impl Watched {
    pub fn new(inner: &Arc<MemoryStore>) -> Arc<Watched> {
        Arc::new(Watched::holding(inner, None, 4))
    }

    pub fn holding(inner: &Arc<MemoryStore>, hold: Option<Hold>, connections: usize) -> Watched {
        Watched { inner: inner.clone(), read: Default::default(), grow: Default::default(), hold, connections }
    }

    /// Bytes read from `name` so far.
    pub fn read_of(&self, name: &str) -> u64 {
        self.read.lock().expect("lock").get(name).copied().unwrap_or(0)
    }

    pub fn reads(&self) -> std::collections::HashMap<String, u64> {
        self.read.lock().expect("lock").clone()
    }

    /// The repository at this store, opened with the device key.
    pub fn open(self: &Arc<Self>) -> Repository {
        let secret = lifeboat_repository::Secret::new(DEVICE_KEY);
        Repository::open(self.clone() as Arc<dyn Store>, &secret).expect("open")
    }

    fn count(&self, name: &str, n: u64) {
        *self.read.lock().expect("lock").entry(name.to_string()).or_default() += n;
    }
}

impl Store for Watched {
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
        if let Some(hold) = &self.hold {
            hold(name);
        }
        let bytes = self.inner.read(name, range)?;
        self.count(name, bytes.len() as u64);
        Ok(bytes)
    }
    fn read_at_most(&self, name: &str, max: u64) -> lifeboat_storage::StoreResult<Result<Vec<u8>, u64>> {
        let r = self.inner.read_at_most(name, max)?;
        self.count(name, r.as_ref().map_or(0, |b| b.len() as u64));
        Ok(r)
    }
    fn list(&self, prefix: &str) -> lifeboat_storage::StoreResult<Vec<lifeboat_storage::ObjectInfo>> {
        let listed = self.inner.list(prefix)?;
        let mut grow = self.grow.lock().expect("lock");
        let (now, later): (Vec<_>, Vec<_>) = grow.drain(..).partition(|(folder, _, _)| folder == prefix);
        *grow = later;
        for (_, name, by) in now {
            self.inner.tamper(&name, |bytes| bytes.resize(bytes.len() + by, 0)).expect("grow");
        }
        Ok(listed)
    }
    fn size(&self, name: &str) -> lifeboat_storage::StoreResult<u64> {
        self.inner.size(name)
    }
    fn remove(&self, name: &str) -> lifeboat_storage::StoreResult<()> {
        self.inner.remove(name)
    }
    fn connections(&self) -> usize {
        self.connections
    }
}
