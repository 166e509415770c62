use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use lifeboat_storage::{ObjectInfo, Store};

use crate::cache::{Cached, MetadataCache};
use crate::crypto::{MasterKey, OpenError, SealedBlob, VerifiedBlob};
use crate::index::{BlobLocation, Index, IndexBuilder};
use crate::keys::{self, slot_name};
use crate::limits;
use crate::making::{Gated, Making};
use crate::pack::pack_name;
use crate::parallel::joined;
use crate::repo_config::{self, ConfigState, LoadedConfig, PACK_SIZE};
use crate::repofile::config::RepoConfig;
use crate::repofile::index_file::IndexFile;
use crate::repofile::keyfile::KeyFile;
use crate::{
    BlobKind, Chunker, Id, IdScheme, KeyInfo, KeyKind, RecoveryKey, RepoError, RepoResult, Secret, Snapshot, Tree,
    FORMAT_VERSION,
};

/// An index file's id and contents.
pub(crate) type IndexEntry = (Id, IndexFile);

/// Stored bytes of index files read at once when the index is loaded (about three times that
/// held while they are decoded).
const INDEX_READ_BUDGET: u64 = 16 << 20;

/// Readable snapshots (oldest first), and the names of unreadable ones with the reason.
/// A blob's stored payload; see [`Repository::read_blob_payload`].
pub enum BlobPayload {
    Zstd(Vec<u8>),
    Raw(Vec<u8>),
}

pub type SnapshotList = (Vec<(Id, Snapshot)>, Vec<(String, RepoError)>);

/// An opened repository. Cheap to clone; every clone shares the key and the index.
#[derive(Clone)]
pub struct Repository {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    pub key: MasterKey,
    pub config: RepoConfig,
    /// The sealed config: what every new key slot keeps a copy of.
    pub config_sealed: Vec<u8>,
    /// What opening found of the `config` object; `Intact` again once repair writes it.
    pub config_state: RwLock<ConfigState>,
    pub chunker: Chunker,
    pub index: RwLock<Index>,
    /// Set once the index files were read: until then no blob is looked up (an empty index
    /// would call every blob missing), see [`Repository::index_ready`].
    pub index_loaded: std::sync::atomic::AtomicBool,
    /// The slot that opened the repository.
    pub key_slot: Id,
    pub key_kind: KeyKind,
    /// The metadata cache on this device, once [`Repository::use_cache`] set it.
    pub cache: OnceLock<MetadataCache>,
    /// Tree packs fetched whole into the cache by this process, so each is fetched once.
    pub cached_tree_packs: Mutex<HashSet<Id>>,
    /// Set once this process saw (or made) the recovery key's slot.
    pub recovery_slot_known: std::sync::atomic::AtomicBool,
    /// The slot this process made when it created the repository.
    pub made_slot: OnceLock<RememberedSlot>,
    /// Set for a repository begun by [`Empty::begin`]: its making, under way or over.
    pub making: OnceLock<Arc<Making>>,
    /// The location's snapshots as listed while the repository was found, for
    /// [`Repository::snapshots_listed_at_open`]; taken by its first call.
    pub listed_at_open: Mutex<Option<(Instant, Vec<ObjectInfo>)>>,
}

/// How long a listing of snapshots made while opening may stand in for a fresh one.
const OPEN_LISTING_FRESH: Duration = Duration::from_secs(10);

/// The label of the recovery key's slot.
const RECOVERY_LABEL: &str = "recovery key";

/// A repository found at a location, not yet opened: its key slots' listing and its config
/// as read. See [`Repository::find`].
pub struct Found {
    store: Arc<dyn Store>,
    listed: Vec<ObjectInfo>,
    config: Option<Vec<u8>>,
    /// The snapshots' listing, asked beside the rest (`None`: it failed; asked again later).
    snapshots: Option<(Instant, Vec<ObjectInfo>)>,
    /// The slots, read when a secret is first tried on them.
    read: OnceLock<keys::ReadSlots>,
}

impl Found {
    fn slots(&self) -> RepoResult<&keys::ReadSlots> {
        if let Some(read) = self.read.get() {
            return Ok(read);
        }
        let read = keys::read_slots(self.store.as_ref(), &self.listed, self.store.connections().max(1))?;
        Ok(self.read.get_or_init(|| read))
    }

    /// Opens the repository with a password, recovery key or device key. A damaged or
    /// missing `config` does not stop it (see [`ConfigState`]): a warning says so, and
    /// [`Repository::config_state`] tells `check`.
    pub fn open(&self, secret: &Secret) -> RepoResult<Repository> {
        let describe = self.store.describe();
        let read = self.slots()?;
        let opened = keys::open_any(&read.slots, read.unreadable, secret, &describe)?;
        let loaded = repo_config::load(&describe, self.config.clone(), &opened.key, &read.slots, opened.slot)?;
        if let Some(problem) = loaded.state.problem() {
            tracing::warn!("{describe}: {problem}: run `lifeboat check --repair` to write it back");
        }
        Ok(self.with_listing(Repository::assemble(self.store.clone(), opened.key, loaded, opened.slot, opened.kind)))
    }

    fn with_listing(&self, repo: Repository) -> Repository {
        *repo.inner.listed_at_open.lock().expect("listing lock") = self.snapshots.clone();
        repo
    }

    /// Opens the repository with a slot this device remembered and unlocked, without reading
    /// the slots: `None` (open it with [`Found::open`]) unless the location still lists that
    /// slot and holds an intact config its key opens. A slot removed from the location (a
    /// password withdrawn) therefore opens nothing, whatever the device kept.
    pub fn open_unlocked(&self, unlocked: &Unlocked) -> RepoResult<Option<Repository>> {
        // The location's slots must be those seen when the slot was remembered: a slot added
        // since (planted, perhaps) is read and warned about on the usual path, every time.
        let Some(mut listed) = self.listed_ids() else { return Ok(None) };
        listed.sort();
        if listed != unlocked.slots || !listed.contains(&unlocked.slot) {
            return Ok(None);
        }
        let Some(config) = &self.config else { return Ok(None) };
        let describe = self.store.describe();
        let loaded = repo_config::load(&describe, Some(config.clone()), &unlocked.key, &[], unlocked.slot)?;
        if !matches!(loaded.state, ConfigState::Intact) {
            return Ok(None);
        }
        let repo = Repository::assemble(self.store.clone(), unlocked.key.clone(), loaded, unlocked.slot, unlocked.kind);
        Ok(Some(self.with_listing(repo)))
    }

    /// The bytes of a slot as the location holds them, once the slots were read: what a
    /// device keeps as its [`RememberedSlot`].
    /// `None` too while any slot is unreadable or asks a derivation beyond the ceiling: then
    /// every open reads the slots and says so.
    pub fn stored_slot(&self, id: &Id) -> Option<RememberedSlot> {
        let read = self.read.get()?;
        let suspect = read.slots.iter().any(|(_, f)| keys::kdf_beyond_ceiling(&f.kdf).is_some());
        if read.unreadable > 0 || suspect {
            return None;
        }
        let (_, bytes) = read.stored.iter().find(|(i, _)| i == id)?;
        let mut slots = self.listed_ids()?;
        slots.sort();
        Some(RememberedSlot { id: *id, bytes: bytes.clone(), slots })
    }

    /// The ids of the listed key slots; `None` when a name is not one.
    fn listed_ids(&self) -> Option<Vec<Id>> {
        self.listed.iter().map(|o| crate::pack::pack_id_from_name(&o.name)).collect()
    }
}

/// A location that held no repository when [`Repository::locate`] looked: neither a config
/// nor a key slot.
pub struct Empty {
    store: Arc<dyn Store>,
    like: Option<IdScheme>,
}

impl Empty {
    /// The repository made here gets `scheme`'s id key, chunker sizes and seed (another
    /// repository's, see [`Repository::id_scheme`]), so that equal content has equal blob
    /// ids in both; its encryption key is its own.
    pub fn like(mut self, scheme: IdScheme) -> Self {
        self.like = Some(scheme);
        self
    }

    /// Makes a repository here as [`Repository::init`] does, without asking the location
    /// again whether it holds one (of several processes creating one at once, one still wins;
    /// the others get `AlreadyExists`).
    pub fn create(self, secret: &Secret, kind: KeyKind) -> RepoResult<Repository> {
        let store = self.store.clone();
        Repository::create(self.store, secret, kind, self.like.as_ref(), move || Ok(store.prepare()?))
    }

    /// Makes a repository here beside the work of its first backup: see `making.rs` and
    /// [`Repository::made`], which the caller asks before it reports the repository made.
    pub fn begin(self, secret: &Secret, kind: KeyKind) -> RepoResult<Repository> {
        Repository::begin(self.store, secret, kind, self.like.as_ref())
    }
}

/// A key slot a device opened the repository with before, kept on the device as the location
/// holds it (the master key sealed under the secret's derivation, nothing more). Unlocking it
/// while the location is still being read takes the key derivation (Argon2, a few tenths of
/// a second) and the reading of the slots off the time a command waits; it opens the
/// repository only while the location still lists the slot ([`Found::open_unlocked`]).
#[derive(Debug, Clone)]
pub struct RememberedSlot {
    pub id: Id,
    pub bytes: Vec<u8>,
    /// Every slot the location listed then, sorted: the slot is used only while the location
    /// lists exactly these.
    pub slots: Vec<Id>,
}

/// A remembered slot opened with a secret.
pub struct Unlocked {
    slot: Id,
    kind: KeyKind,
    key: MasterKey,
    slots: Vec<Id>,
}

impl RememberedSlot {
    /// The master key this slot holds for `secret`, if it is this slot's secret.
    pub fn unlock(&self, secret: &Secret) -> Option<Unlocked> {
        let (kind, key) = keys::open_stored(&self.bytes, secret)?;
        let mut slots = self.slots.clone();
        slots.sort();
        Some(Unlocked { slot: self.id, kind, key, slots })
    }
}

impl Repository {
    /// True when the location holds a repository: it has a `config`, or key slots (whose
    /// copies rebuild a config that was lost; a new repository must never be made over them).
    pub fn exists(store: &dyn Store) -> RepoResult<bool> {
        // Both asked at once: one round trip whichever answers.
        let (config, keys) = std::thread::scope(|scope| {
            let keys = scope.spawn(|| store.list("keys"));
            (store.size("config"), joined(keys))
        });
        match config {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(!keys?.is_empty()),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a repository: a random master key, a slot for `secret`, and a recovery slot.
    /// Of several processes creating one at the same place, one wins; the others get
    /// `AlreadyExists` and should open it instead.
    pub fn init(store: Arc<dyn Store>, secret: &Secret, kind: KeyKind) -> RepoResult<Repository> {
        store.prepare()?;
        if Self::exists(store.as_ref())? {
            return Err(RepoError::AlreadyExists(store.describe()));
        }
        Self::create(store, secret, kind, None, || Ok(()))
    }

    /// [`Repository::init`] after the location was found without one; `prepare` makes it
    /// ready while the key is derived.
    fn create(
        store: Arc<dyn Store>,
        secret: &Secret,
        kind: KeyKind,
        like: Option<&IdScheme>,
        prepare: impl FnOnce() -> RepoResult<()> + Send,
    ) -> RepoResult<Repository> {
        let (repo, plan) = Self::unstored(store.clone(), kind, like);
        let made = repo.store_new(store.as_ref(), plan, secret, prepare, || {})?;
        repo.note_made(made);
        Ok(repo)
    }

    /// A new repository, not yet stored: a random master key and config (with `like`'s id
    /// key and chunking), and the ids of its two key slots (for its secret, then for the
    /// recovery key).
    fn unstored(store: Arc<dyn Store>, kind: KeyKind, like: Option<&IdScheme>) -> (Repository, [Id; 2]) {
        let (key, id, chunker) = crate::id_scheme::new_keys(like);
        let config =
            RepoConfig { version: FORMAT_VERSION, id, created: jiff::Timestamp::now(), chunker, pack_size: PACK_SIZE };
        let sealed = repo_config::seal(&key, &config);
        let loaded = LoadedConfig { config, sealed, state: ConfigState::Intact };
        let slots = [Id::random(), Id::random()];
        let repo = Self::assemble(store, key, loaded, slots[0], kind);
        // A repository just made holds no backup: nothing to list. The recovery key's slot
        // is among those it is made with.
        *repo.inner.listed_at_open.lock().expect("listing lock") = Some((Instant::now(), Vec::new()));
        repo.inner.recovery_slot_known.store(true, std::sync::atomic::Ordering::Relaxed);
        (repo, slots)
    }

    /// Stores this new repository in `store`: its key slots first (side by side), so that
    /// whoever sees the config can also open it (each carries a copy of the config, so a slot
    /// seen before the config opens too), then the config, created only where none is. Of
    /// several processes making one at the same place, one wins; the others withdraw their
    /// slots and get `AlreadyExists`. Returns the slot made for `secret`, as stored.
    fn store_new(
        &self,
        store: &dyn Store,
        slot_ids: [Id; 2],
        secret: &Secret,
        prepare: impl FnOnce() -> RepoResult<()> + Send,
        derived: impl FnOnce(),
    ) -> RepoResult<RememberedSlot> {
        let (key, sealed) = (self.key(), &self.inner.config_sealed);
        let recovery = RecoveryKey::derived_from(key).as_secret();
        let kinds = [(secret, self.inner.key_kind, ""), (&recovery, KeyKind::Recovery, RECOVERY_LABEL)];
        let (made, prepared) = std::thread::scope(|scope| {
            let prepared = scope.spawn(prepare);
            let made = kinds.map(|(secret, kind, label)| keys::make_slot(key, secret, kind, label, sealed));
            derived();
            (made, joined(prepared))
        });
        prepared?;
        let [slot, recovery_slot] = made;
        let slots = [slot?, recovery_slot?]
            .map(|slot| serde_json::to_vec_pretty(&slot).expect("key serialises"))
            .into_iter()
            .zip(slot_ids)
            .map(|(bytes, id)| (id, bytes))
            .collect::<Vec<_>>();
        let written = crate::parallel::map(2, &slots, |(id, bytes)| store.write(&slot_name(id), bytes));
        let withdraw = || {
            for (id, _) in &slots {
                let _ = store.remove(&slot_name(id));
            }
        };
        if let Some(e) = written.into_iter().find_map(Result::err) {
            withdraw();
            return Err(e.into());
        }
        match store.write_new("config", sealed) {
            Ok(true) => {}
            Ok(false) => {
                withdraw();
                return Err(RepoError::AlreadyExists(store.describe()));
            }
            Err(e) => {
                withdraw();
                return Err(e.into());
            }
        }
        let mut all = slot_ids.to_vec();
        all.sort();
        let (id, bytes) = slots.into_iter().next().expect("two slots were made");
        Ok(RememberedSlot { id, bytes, slots: all })
    }

    fn note_made(&self, slot: RememberedSlot) {
        let _ = self.inner.made_slot.set(slot);
    }

    /// Makes a repository where [`Repository::locate`] found none, beside the work of its
    /// first backup (see `making.rs`): returned at once, usable for writing blobs; its slots
    /// and config are stored on a thread while the caller reads and packs, and every write to
    /// the location waits for them. [`Repository::made`] tells how the making ended.
    fn begin(store: Arc<dyn Store>, secret: &Secret, kind: KeyKind, like: Option<&IdScheme>) -> RepoResult<Repository> {
        let making = Arc::new(Making::default());
        let gated: Arc<dyn Store> = Arc::new(Gated::new(store.clone(), making.clone()));
        let (repo, plan) = Self::unstored(gated, kind, like);
        let _ = repo.inner.making.set(making.clone());
        // Its index is known: empty, and the first session reads none.
        repo.set_index(Index::default());
        let (maker, secret) = (repo.clone(), secret.clone());
        let run = move || {
            lifeboat_storage::faults::pause_point(|| "make the repository".to_string());
            let prepare = || Ok(store.prepare()?);
            let derived = || making.mark_derived();
            let made =
                maker.store_new(store.as_ref(), plan, &secret, prepare, derived).map(|slot| maker.note_made(slot));
            making.settle(made);
        };
        std::thread::Builder::new().name("make-repository".into()).spawn(run).map_err(|e| {
            RepoError::Store(lifeboat_storage::StoreError::Io {
                op: "starting the making of",
                name: "config".into(),
                source: e,
            })
        })?;
        Ok(repo)
    }

    /// For a repository begun by [`Empty::begin`]: waits until it is made, and tells how that
    /// ended (`AlreadyExists` when another process made one there first: nothing of this one
    /// was stored, open theirs). `Ok` at once for any other repository.
    pub fn made(&self) -> RepoResult<()> {
        self.inner.making.get().map_or(Ok(()), |m| m.outcome())
    }

    /// True while a repository begun by [`Empty::begin`] is still being made.
    pub fn being_made(&self) -> bool {
        self.inner.making.get().is_some_and(|m| m.under_way())
    }

    /// Waits, in a repository being made, until its key is derived: see `making.rs`.
    pub(crate) fn wait_while_deriving(&self) {
        if let Some(m) = self.inner.making.get() {
            m.wait_derived();
        }
    }

    /// The making this repository's first write session runs beside, taken once.
    pub(crate) fn first_session_beside_making(&self) -> bool {
        self.inner.making.get().is_some_and(|m| m.take_first_session())
    }

    /// The key slot this process made when it created the repository, as stored: what the
    /// device remembers, as after an open.
    pub fn made_slot(&self) -> Option<&RememberedSlot> {
        self.inner.made_slot.get()
    }

    /// Opens a repository with a password, recovery key or device key. A damaged or missing
    /// `config` does not stop it (see [`ConfigState`]): a warning says so, and
    /// [`Repository::config_state`] tells `check`.
    pub fn open(store: Arc<dyn Store>, secret: &Secret) -> RepoResult<Repository> {
        let describe = store.describe();
        Self::find(store)?.ok_or(RepoError::NotARepository(describe))?.open(secret)
    }

    /// Reads what opening takes — the key slots' listing and the config, side by side — or
    /// `None` when the location holds no repository (neither a config nor a key slot).
    /// Secrets are then tried with [`Found::open`] (which reads the slots once, side by
    /// side), or a remembered slot with [`Found::open_unlocked`] (which reads none).
    pub fn find(store: Arc<dyn Store>) -> RepoResult<Option<Found>> {
        Ok(Self::locate(store)?.ok())
    }

    /// [`Repository::find`], or the location found [`Empty`], where a repository can be made
    /// without asking the location again.
    pub fn locate(store: Arc<dyn Store>) -> RepoResult<Result<Found, Empty>> {
        let (listed, config, snapshots) = std::thread::scope(|scope| {
            // A config larger than any is not kept: it reads as a damaged one, for which a
            // key slot's copy stands in.
            let config =
                scope.spawn(|| store.read_at_most("config", limits::MAX_SMALL_OBJECT).map(|r| r.unwrap_or_default()));
            // Nearly every command lists the snapshots next: asked now, it costs no wait.
            let snapshots = scope.spawn(|| store.list("snapshots").ok().map(|l| (Instant::now(), l)));
            let listed = store.list("keys");
            (listed, joined(config), joined(snapshots))
        });
        let listed = listed?;
        let config = match config {
            Ok(sealed) => Some(sealed),
            Err(e) if e.is_not_found() => None,
            // A location that fails to answer is not a missing config.
            Err(e) => return Err(e.into()),
        };
        if config.is_none() && listed.is_empty() {
            return Ok(Err(Empty { store, like: None }));
        }
        Ok(Ok(Found { store, listed, config, snapshots, read: OnceLock::new() }))
    }

    /// The key slot this repository was opened with.
    pub fn key_slot(&self) -> Id {
        self.inner.key_slot
    }

    /// What opening found of the `config` object.
    pub fn config_state(&self) -> ConfigState {
        self.inner.config_state.read().expect("config state lock").clone()
    }

    fn assemble(store: Arc<dyn Store>, key: MasterKey, loaded: LoadedConfig, key_slot: Id, key_kind: KeyKind) -> Self {
        let LoadedConfig { config, sealed: config_sealed, state: config_state } = loaded;
        let seed = crate::id_scheme::chunker_seed(&key, &config.id);
        let chunker = Chunker::new(config.chunker, seed);
        Repository {
            inner: Arc::new(Inner {
                store,
                key,
                config,
                config_sealed,
                config_state: RwLock::new(config_state),
                chunker,
                index: RwLock::new(Index::default()),
                index_loaded: Default::default(),
                key_slot,
                key_kind,
                cache: OnceLock::new(),
                cached_tree_packs: Mutex::default(),
                recovery_slot_known: Default::default(),
                made_slot: OnceLock::new(),
                making: OnceLock::new(),
                listed_at_open: Mutex::default(),
            }),
        }
    }

    /// Keeps index files, snapshots and folder listings of this repository in a cache folder
    /// under `root` (one folder per repository id), trimming its listings to `limit` bytes.
    /// A cache that cannot be made is reported and done without.
    pub fn use_cache(&self, root: &Path, limit: u64) {
        match MetadataCache::open(root, &self.id(), limit) {
            Ok(cache) => {
                cache.evict();
                cache.remove_abandoned();
                let _ = self.inner.cache.set(cache);
            }
            Err(e) => {
                tracing::warn!("the metadata cache in {} cannot be used ({e}); going on without it", root.display())
            }
        }
    }

    /// Removes this repository's cache folder and keeps nothing more in it: for a repository
    /// that lost the race to be made, whose id no repository will ever have.
    pub fn discard_cache(&self) {
        if let Some(cache) = self.cache() {
            cache.remove_all();
        }
    }

    pub(crate) fn cache(&self) -> Option<&MetadataCache> {
        self.inner.cache.get()
    }

    /// The same repository without the cache, with an index of its own: what `check` and
    /// repair read, since they must see the location's bytes and nothing else.
    pub(crate) fn uncached(&self) -> Repository {
        self.forget_open_listing();
        if self.cache().is_none() {
            return self.clone();
        }
        let i = &self.inner;
        Repository {
            inner: Arc::new(Inner {
                store: i.store.clone(),
                key: i.key.clone(),
                config: i.config.clone(),
                config_sealed: i.config_sealed.clone(),
                config_state: RwLock::new(self.config_state()),
                chunker: i.chunker,
                index: RwLock::new(Index::default()),
                index_loaded: Default::default(),
                key_slot: i.key_slot,
                key_kind: i.key_kind,
                cache: OnceLock::new(),
                cached_tree_packs: Mutex::default(),
                recovery_slot_known: Default::default(),
                made_slot: OnceLock::new(),
                making: OnceLock::new(),
                listed_at_open: Mutex::default(),
            }),
        }
    }

    /// After a check or repair on [`Repository::uncached`]: the index and config state it
    /// found are this repository's too.
    pub(crate) fn take_index_of(&self, other: &Repository) {
        if Arc::ptr_eq(&self.inner, &other.inner) {
            return;
        }
        *self.inner.config_state.write().expect("config state lock") = other.config_state();
        if other.inner.index_loaded.load(std::sync::atomic::Ordering::Acquire) {
            self.set_index(std::mem::take(&mut *other.inner.index.write().expect("index lock")));
        }
    }

    /// Requests the location takes at once.
    pub(crate) fn connections(&self) -> usize {
        self.inner.store.connections().max(1)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn id(&self) -> Id {
        self.inner.config.id
    }

    /// What turns content into blob ids here: to make another repository like this one
    /// ([`Empty::like`]), or to ask whether two repositories' ids can be compared.
    pub fn id_scheme(&self) -> IdScheme {
        let seed = crate::id_scheme::chunker_seed(&self.inner.key, &self.inner.config.id);
        IdScheme { id_key: self.inner.key.id_key(), chunker: self.inner.config.chunker, seed }
    }

    pub fn chunker(&self) -> Chunker {
        self.inner.chunker
    }

    /// True when opened with a password a person chose (not a device or recovery key).
    pub fn opened_with_password(&self) -> bool {
        self.inner.key_kind == KeyKind::Password
    }

    pub(crate) fn key(&self) -> &MasterKey {
        &self.inner.key
    }

    pub(crate) fn pack_size(&self) -> usize {
        self.inner.config.pack_size as usize
    }

    /// Reads every index file. Call once after opening, and again after taking a lock that
    /// must see other writers' work. An index file that cannot be read is skipped with a
    /// warning: its blobs count as missing, so backups that do not need them still restore
    /// (and a backup stores that data again). Returns how many were skipped.
    pub fn load_index(&self) -> RepoResult<usize> {
        self.load_index_listed(self.inner.store.list("index")?)
    }

    /// [`Repository::load_index`] from a listing of `index/` just made.
    pub(crate) fn load_index_listed(&self, listed: Vec<ObjectInfo>) -> RepoResult<usize> {
        let index = Mutex::new(IndexBuilder::default());
        let skipped = AtomicUsize::new(0);
        let failed = Mutex::new(None);
        self.each_listed_index_file(listed, |name, r| match r {
            Ok((id, file)) => index.lock().expect("index lock").add_file(id, &file),
            // Damage, or removed meanwhile by a prune; a location that fails is an error.
            Err(e @ (RepoError::Corrupt { .. } | RepoError::Malformed { .. } | RepoError::Misnamed { .. })) => {
                tracing::warn!("{name} is unreadable ({e}); its blobs count as missing: run `lifeboat check --repair`");
                skipped.fetch_add(1, Ordering::Relaxed);
            }
            Err(RepoError::Store(e)) if e.is_not_found() => {}
            Err(e) => {
                failed.lock().expect("error lock").get_or_insert(e);
            }
        });
        if let Some(e) = failed.into_inner().expect("error lock") {
            return Err(e);
        }
        self.set_index(index.into_inner().expect("index lock").finish());
        Ok(skipped.into_inner())
    }

    /// Puts a freshly read index in place.
    pub(crate) fn set_index(&self, index: Index) {
        *self.inner.index.write().expect("index lock") = index;
        self.inner.index_loaded.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Reads the index files unless that was done: every lookup of a blob goes through
    /// here, so that no reader can look blobs up in an index never loaded (and take every
    /// blob for missing). Writers call [`Repository::load_index`] themselves, under their
    /// lock, to see other writers' work.
    pub(crate) fn index_ready(&self) -> RepoResult<()> {
        if !self.inner.index_loaded.load(std::sync::atomic::Ordering::Acquire) {
            self.load_index()?;
        }
        Ok(())
    }

    /// Reads every index file, failing on any that cannot be read: for what removes data
    /// (prune), which must not take an unreadable index's packs for leftovers.
    pub(crate) fn load_index_strict(&self) -> RepoResult<()> {
        let index = Mutex::new(IndexBuilder::default());
        let failed = Mutex::new(None);
        self.each_listed_index_file(self.inner.store.list("index")?, |_, r| match r {
            Ok((id, file)) => index.lock().expect("index lock").add_file(id, &file),
            Err(e) => {
                failed.lock().expect("error lock").get_or_insert(e);
            }
        });
        if let Some(e) = failed.into_inner().expect("error lock") {
            return Err(e);
        }
        self.set_index(index.into_inner().expect("index lock").finish());
        Ok(())
    }

    /// Every index file, read in parallel: its name, and its contents or why they failed.
    /// Those the cache holds are read from it; those it holds that the location no longer
    /// lists (another device pruned) are dropped from it.
    pub(crate) fn read_index_files(&self) -> RepoResult<Vec<(String, RepoResult<IndexEntry>)>> {
        let read = Mutex::new(Vec::new());
        self.each_index_file(|name, r| read.lock().expect("files lock").push((name, r)))?;
        Ok(read.into_inner().expect("files lock"))
    }

    /// [`Repository::read_index_files`], each file handed to `each` as it is read and
    /// dropped after, so that no more than a few are held at once (an index of millions of
    /// blobs spans dozens of files).
    pub(crate) fn each_index_file(&self, each: impl Fn(String, RepoResult<IndexEntry>) + Sync) -> RepoResult<()> {
        self.each_listed_index_file(self.inner.store.list("index")?, each);
        Ok(())
    }

    /// The index files of a listing of `index/`, read as [`Repository::each_index_file`] does.
    fn each_listed_index_file(&self, listed: Vec<ObjectInfo>, each: impl Fn(String, RepoResult<IndexEntry>) + Sync) {
        let ids: Vec<(ObjectInfo, Option<Id>)> =
            listed.into_iter().map(|o| (o.clone(), crate::pack::pack_id_from_name(&o.name))).collect();
        if let Some(cache) = self.cache() {
            cache.retain(Cached::Index, &ids.iter().filter_map(|(_, id)| *id).collect());
        }
        // Each file read is held about three times over (sealed, opened, decoded) until it is
        // handed on: a budget keeps a remote location's many connections from holding dozens
        // of them at once.
        let budget = crate::parallel::Budget::new(INDEX_READ_BUDGET);
        crate::parallel::for_each(self.connections(), &ids, |(o, id)| {
            let _share = budget.take(o.size);
            let r = limits::within(o, limits::MAX_INDEX_FILE)
                .and_then(|()| id.ok_or_else(|| RepoError::malformed(o.name.clone(), "not an id")))
                .and_then(|id| Ok((id, self.read_index_file_listed(&id, Some(o.size))?)));
            each(o.name.clone(), r);
        });
    }

    /// An index file, read as long as its listing said (`listed`) when it was listed.
    fn read_index_file_listed(&self, id: &Id, listed: Option<u64>) -> RepoResult<IndexFile> {
        let name = format!("index/{}", id.to_hex());
        self.read_named(Cached::Index, &name, id, listed, |plain| {
            IndexFile::decode(plain).map_err(|e| RepoError::malformed(&name, e))
        })
    }

    /// Reads an object named by the hash of its stored bytes (an index file, a snapshot):
    /// from the cache when it holds a copy that opens, else from the location, keeping what
    /// was read. A cached copy that fails is dropped and read again.
    fn read_named<T>(
        &self,
        kind: Cached,
        name: &str,
        id: &Id,
        listed: Option<u64>,
        decode: impl Fn(&[u8]) -> RepoResult<T>,
    ) -> RepoResult<T> {
        let cache = self.cache();
        if let Some(sealed) = cache.and_then(|c| c.get(kind, id)) {
            match self.open_named(name, id, &sealed, &decode) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    tracing::debug!("the cached copy of {name} is unusable ({e}); reading it again");
                    if let Some(c) = cache {
                        c.remove(kind, id);
                    }
                }
            }
        }
        let sealed = match listed {
            Some(size) => limits::read_as_listed(self.inner.store.as_ref(), name, size)?,
            None => self.inner.store.read(name, None)?,
        };
        let v = self.open_named(name, id, &sealed, &decode)?;
        if let Some(c) = cache {
            c.put(kind, id, &sealed);
        }
        Ok(v)
    }

    /// Authenticates and decodes an object, then checks it is named by its content.
    fn open_named<T>(
        &self,
        name: &str,
        id: &Id,
        sealed: &[u8],
        decode: &impl Fn(&[u8]) -> RepoResult<T>,
    ) -> RepoResult<T> {
        let plain = self.open_object(sealed, None, name)?;
        let v = decode(&plain)?;
        named_by_content(name, id, sealed)?;
        Ok(v)
    }

    pub(crate) fn write_index_file(&self, file: &IndexFile) -> RepoResult<Id> {
        let sealed = self.inner.key.seal(&file.encode(), true);
        let id = Id::of_stored(&sealed);
        self.inner.store.write(&format!("index/{}", id.to_hex()), &sealed)?;
        if let Some(c) = self.cache() {
            c.put(Cached::Index, &id, &sealed);
        }
        Ok(id)
    }

    pub(crate) fn open_object(&self, sealed: &[u8], raw_len: Option<usize>, what: &str) -> RepoResult<Vec<u8>> {
        self.inner.key.open(sealed, raw_len).map_err(|e| match e {
            OpenError::Auth | OpenError::NotItsId => RepoError::Corrupt { what: what.to_string() },
            OpenError::Decompress(d) => RepoError::malformed(what, d),
        })
    }

    /// True when the index knows the blob.
    pub fn has_blob(&self, id: &Id) -> bool {
        // An index that cannot be read answers "not held": the blob is then stored again.
        let _ = self.index_ready();
        self.inner.index.read().expect("index lock").contains(id)
    }

    pub fn blob_count(&self) -> usize {
        self.inner.index.read().expect("index lock").blob_count()
    }

    /// Reads, decrypts, decompresses and verifies one blob. When the copy the index uses is
    /// damaged, every other stored copy is tried before giving up.
    pub fn read_blob(&self, id: &Id) -> RepoResult<Vec<u8>> {
        self.read_verified(id, |blob| blob.into_plain())
    }

    /// A blob as stored, decrypted but not decompressed: a zstd frame, or the plain bytes
    /// when compressing did not help. Backup files splice these frames into their `.tar.zst`
    /// streams rather than compressing the data again. Verified as [`Repository::read_blob`]
    /// is (the frame is decompressed and hashed): a blob swapped for another of the same
    /// length is refused here too.
    pub fn read_blob_payload(&self, id: &Id) -> RepoResult<BlobPayload> {
        self.read_verified(id, |blob| match blob.into_payload() {
            (true, frame) => BlobPayload::Zstd(frame),
            (false, plain) => BlobPayload::Raw(plain),
        })
    }

    /// Every read of a single blob: from the cache (folder listings), else from each stored
    /// copy in turn, each opened and checked against `id` before `take` sees it.
    fn read_verified<T>(&self, id: &Id, take: impl Fn(VerifiedBlob<'_>) -> T) -> RepoResult<T> {
        self.index_ready()?;
        let copies = self.inner.index.read().expect("index lock").locations(id);
        // A folder listing is looked up in the cache only once the index (read afresh from
        // the location) says it exists: a listing pruned elsewhere is not served.
        let cache = self.cache().filter(|_| copies.first().is_some_and(|(_, l)| l.kind == BlobKind::Tree));
        if let Some((cache, (_, loc))) = cache.zip(copies.first()) {
            if let Some(stored) = cache.get(Cached::Tree, id) {
                match self.decode_blob(id, SealedBlob::new(&stored), loc.raw_length as usize) {
                    Ok(blob) => return Ok(take(blob)),
                    Err(e) => {
                        tracing::debug!(
                            "the cached copy of folder listing {} is unusable ({e}); reading it again",
                            id.short()
                        );
                        cache.remove(Cached::Tree, id);
                    }
                }
            }
            if let Some(stored) = self.fetch_tree_pack(cache, id, &copies) {
                if let Ok(blob) = self.decode_blob(id, SealedBlob::new(&stored), loc.raw_length as usize) {
                    return Ok(take(blob));
                }
            }
        }
        let mut first_error = None;
        for (pack, loc) in copies {
            let read = self.read_pack_range(&pack, loc.offset as u64, loc.offset as u64 + loc.length as u64);
            let opened = read.and_then(|bytes| {
                let sealed = bytes.blob(0, loc.length as usize).ok_or_else(|| RepoError::Unreadable {
                    what: format!("blob {}", id.short()),
                    why: format!("pack {} is shorter than the index says", pack.short()),
                })?;
                let blob = self.decode_blob(id, sealed, loc.raw_length as usize)?;
                if let Some(c) = cache {
                    c.put(Cached::Tree, id, blob.sealed());
                }
                Ok(take(blob))
            });
            match opened {
                Ok(v) => return Ok(v),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(RepoError::MissingBlob(*id)))
    }

    /// The first time a folder listing's pack is needed, the whole tree pack is fetched into
    /// the cache (one request for all the listings a walk will want from it, instead of one
    /// round trip per folder); returns the wanted listing's stored bytes, unverified (the
    /// caller opens them).
    fn fetch_tree_pack(&self, cache: &MetadataCache, id: &Id, copies: &[(Id, BlobLocation)]) -> Option<Vec<u8>> {
        let (pack, _) = copies.first()?;
        if !self.inner.cached_tree_packs.lock().expect("tree packs lock").insert(*pack) {
            return None;
        }
        // A pack larger than any this repository writes is not fetched whole.
        let size = self.inner.store.size(&pack_name(pack)).ok()?;
        if size > self.usual_pack_len() {
            return None;
        }
        let whole = self.read_whole_pack(pack, size, None).ok()?;
        let (bytes, entries) = (whole.bytes?, whole.header.ok()?);
        let mut wanted = None;
        for e in entries.iter().filter(|e| e.kind == BlobKind::Tree) {
            // Kept as stored: each is opened and checked against its id when it is read back.
            let Some(sealed) = bytes.blob(e.offset as usize, e.length as usize) else { continue };
            cache.put(Cached::Tree, &e.id, sealed.stored());
            if e.id == *id {
                wanted = Some(sealed.stored().to_vec());
            }
        }
        wanted
    }

    /// Opens a blob's sealed bytes and checks they hash to its id: what every read of a blob
    /// goes through.
    pub(crate) fn decode_blob<'a>(
        &self,
        id: &Id,
        sealed: SealedBlob<'a>,
        raw_length: usize,
    ) -> RepoResult<VerifiedBlob<'a>> {
        let what = || format!("blob {}", id.short());
        self.inner.key.open_blob(id, sealed, raw_length).map_err(|e| match e {
            OpenError::Auth | OpenError::NotItsId => RepoError::Corrupt { what: what() },
            OpenError::Decompress(d) => RepoError::malformed(what(), d),
        })
    }

    /// What [`Repository::read_blob_payload`] will return, from the index alone: whether it
    /// is a zstd frame, and its length. A payload is stored compressed only when that made it
    /// strictly shorter than the plain bytes, so equal lengths mean plain bytes.
    pub fn blob_payload_len(&self, id: &Id) -> Option<(bool, u64)> {
        self.index_ready().ok()?;
        let (_, loc) = self.inner.index.read().expect("index lock").get(id)?;
        let payload = (loc.length as usize).checked_sub(crate::crypto::OVERHEAD)? as u64;
        Some((payload < loc.raw_length as u64, payload))
    }

    /// The id a blob with this content has.
    pub fn blob_id(&self, plaintext: &[u8]) -> Id {
        self.inner.key.blob_id(plaintext)
    }

    pub fn read_tree(&self, id: &Id) -> RepoResult<Tree> {
        let plain = self.read_blob(id)?;
        serde_json::from_slice(&plain).map_err(|e| RepoError::malformed(format!("tree {}", id.short()), e))
    }

    /// Serialises a tree for storage; returns its bytes (store them with a `BlobWriter`).
    pub fn encode_tree(tree: &Tree) -> Vec<u8> {
        serde_json::to_vec(tree).expect("trees serialise")
    }

    /// Writes a snapshot; its file name is the hash of its stored bytes. A unit's warnings
    /// beyond [`limits::MAX_WARNINGS`] are kept as a count (the run's log lists every one), so
    /// that no snapshot is saved larger than a reader accepts.
    pub fn save_snapshot(&self, snapshot: &Snapshot) -> RepoResult<Id> {
        self.forget_open_listing();
        let capped;
        let snapshot = if snapshot.units.iter().any(|u| u.warnings.len() > limits::MAX_WARNINGS) {
            capped = limits::cap_warnings(snapshot.clone());
            &capped
        } else {
            snapshot
        };
        let plain = serde_json::to_vec(snapshot).expect("snapshots serialise");
        let sealed = self.inner.key.seal(&plain, true);
        if sealed.len() as u64 > limits::MAX_SNAPSHOT {
            return Err(RepoError::malformed(
                format!("backup {}", snapshot.slug),
                format!("its record would be {} MiB, more than a reader accepts", sealed.len() >> 20),
            ));
        }
        let id = Id::of_stored(&sealed);
        self.inner.store.write(&format!("snapshots/{}", id.to_hex()), &sealed)?;
        if let Some(c) = self.cache() {
            c.put(Cached::Snapshot, &id, &sealed);
        }
        Ok(id)
    }

    pub fn remove_snapshot(&self, id: &Id) -> RepoResult<()> {
        self.forget_open_listing();
        if let Some(c) = self.cache() {
            c.remove(Cached::Snapshot, id);
        }
        Ok(self.inner.store.remove(&format!("snapshots/{}", id.to_hex()))?)
    }

    /// Replaces a snapshot with a changed copy (pinning, renaming): the new one is written
    /// before the old one goes, so a crash leaves two copies, never none.
    pub fn replace_snapshot(&self, old: &Id, snapshot: &Snapshot) -> RepoResult<Id> {
        let new = self.save_snapshot(snapshot)?;
        if new != *old {
            self.remove_snapshot(old)?;
        }
        Ok(new)
    }

    pub fn read_snapshot(&self, id: &Id) -> RepoResult<Snapshot> {
        self.read_snapshot_listed(id, None)
    }

    /// A snapshot, read as long as its listing said (`listed`) when it was listed.
    fn read_snapshot_listed(&self, id: &Id, listed: Option<u64>) -> RepoResult<Snapshot> {
        let name = format!("snapshots/{}", id.to_hex());
        self.read_named(Cached::Snapshot, &name, id, listed, |plain| {
            serde_json::from_slice(plain).map_err(|e| RepoError::malformed(&name, e))
        })
    }

    /// Every readable snapshot, oldest first, and the names of those that could not be read.
    /// One listing, then the snapshots the cache lacks read in parallel.
    pub fn snapshots(&self) -> RepoResult<SnapshotList> {
        self.forget_open_listing();
        self.snapshots_of(self.inner.store.list("snapshots")?)
    }

    /// The listing made while opening serves only while nothing else touched the snapshots
    /// through this repository: not after a listing, a snapshot written or removed, or a
    /// check or repair (which may move one).
    fn forget_open_listing(&self) {
        self.inner.listed_at_open.lock().expect("listing lock").take();
    }

    /// [`Repository::snapshots`], from the listing made while the repository was opened when
    /// nothing touched the snapshots through this repository since (see
    /// `forget_open_listing`) and that listing is a few seconds old at most: a round trip
    /// less for a command that begins by choosing among the backups (a backup's name and
    /// parent, a listing shown). Never for anything that must see every snapshot written
    /// before a lock it took (prune, check): those call [`Repository::snapshots`].
    pub fn snapshots_listed_at_open(&self) -> RepoResult<SnapshotList> {
        let taken = self.inner.listed_at_open.lock().expect("listing lock").take();
        match taken {
            Some((at, listed)) if at.elapsed() <= OPEN_LISTING_FRESH => self.snapshots_of(listed),
            _ => self.snapshots(),
        }
    }

    fn snapshots_of(&self, listed: Vec<ObjectInfo>) -> RepoResult<SnapshotList> {
        let ids: Vec<(ObjectInfo, Option<Id>)> =
            listed.into_iter().map(|o| (o.clone(), crate::pack::pack_id_from_name(&o.name))).collect();
        if let Some(cache) = self.cache() {
            cache.retain(Cached::Snapshot, &ids.iter().filter_map(|(_, id)| *id).collect());
        }
        let results = crate::parallel::map(self.connections(), &ids, |(o, id)| {
            let r = limits::within(o, limits::MAX_SNAPSHOT)
                .and_then(|()| id.ok_or_else(|| RepoError::malformed(o.name.clone(), "not an id")))
                .and_then(|id| Ok((id, self.read_snapshot_listed(&id, Some(o.size))?)));
            (o.name.clone(), r)
        });
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (name, r) in results {
            match r {
                Ok(s) => good.push(s),
                Err(e) => bad.push((name, e)),
            }
        }
        // Two copies of one backup can exist after an interrupted replace: keep one.
        good.sort_by(|a, b| a.1.date.cmp(&b.1.date).then(a.1.slug.cmp(&b.1.slug)).then(a.0.cmp(&b.0)));
        good.dedup_by(|a, b| a.1.slug == b.1.slug);
        Ok((good, bad))
    }

    /// Finds a snapshot by its slug or a unique prefix of it.
    /// A slug named exactly is taken from the listing made while opening (a round trip less
    /// for a restore or browse); anything else, "latest" included, from a fresh listing, so a
    /// backup another device made a moment ago is never missed or passed over.
    pub fn find_snapshot(&self, slug: &str) -> RepoResult<(Id, Snapshot)> {
        self.find_snapshot_among(slug, &|_| true)
    }

    /// [`Repository::find_snapshot`] among the backups `among` admits (a device's): `latest`
    /// is their newest, and a prefix or a name need only be unique among them.
    pub fn find_snapshot_among(&self, slug: &str, among: &dyn Fn(&Snapshot) -> bool) -> RepoResult<(Id, Snapshot)> {
        let fresh = matches!(&*self.inner.listed_at_open.lock().expect("listing lock"),
            Some((at, _)) if at.elapsed() <= OPEN_LISTING_FRESH);
        if slug != "latest" && fresh {
            let (listed, _) = self.snapshots_listed_at_open()?;
            if let Some(found) = listed.into_iter().find(|(_, s)| s.slug == slug && among(s)) {
                return Ok(found);
            }
        }
        let (mut all, _) = self.snapshots()?;
        all.retain(|(_, s)| among(s));
        if slug == "latest" {
            // The newest backup that holds something: a failed one is listed, not chosen.
            return all
                .into_iter()
                .filter(|(_, s)| s.status != crate::SnapshotStatus::Failed)
                .max_by_key(|(_, s)| s.date)
                .ok_or_else(|| RepoError::NoSuchSnapshot(slug.to_string()));
        }
        let (mut matches, others): (Vec<_>, Vec<_>) = all.into_iter().partition(|(_, s)| s.slug.starts_with(slug));
        if let Some(i) = matches.iter().position(|(_, s)| s.slug == slug) {
            return Ok(matches.swap_remove(i));
        }
        if matches.is_empty() {
            // A backup's name, when no slug starts so.
            matches = others.into_iter().filter(|(_, s)| s.name == slug).collect();
        }
        match matches.len() {
            0 => Err(RepoError::NoSuchSnapshot(slug.to_string())),
            1 => Ok(matches.remove(0)),
            _ => Err(RepoError::AmbiguousSnapshot(slug.to_string())),
        }
    }

    // ----- key slots -----

    pub fn keys(&self) -> RepoResult<Vec<KeyInfo>> {
        let listed = self.inner.store.list("keys")?;
        let listed: Vec<ObjectInfo> =
            listed.into_iter().filter(|o| limits::within(o, limits::MAX_SMALL_OBJECT).is_ok()).collect();
        let read = crate::parallel::map(self.connections(), &listed, |o| {
            limits::read_as_listed(self.inner.store.as_ref(), &o.name, o.size)
        });
        let mut out = Vec::new();
        for (o, bytes) in listed.iter().zip(read) {
            let bytes = match bytes {
                Err(e) if e.is_not_found() => continue,
                r => r?,
            };
            let Ok(file) = serde_json::from_slice::<KeyFile>(&bytes) else { continue };
            let id = o.name.rsplit('/').next().unwrap_or_default().to_string();
            out.push(KeyInfo {
                current: id == self.inner.key_slot.to_hex(),
                id,
                kind: file.kind,
                label: file.label,
                created: file.created,
                host: file.host,
                user: file.user,
            });
        }
        out.sort_by_key(|k| k.created);
        Ok(out)
    }

    pub fn add_key(&self, secret: &Secret, kind: KeyKind, label: &str) -> RepoResult<KeyInfo> {
        let slot = keys::make_slot(&self.inner.key, secret, kind, label, &self.inner.config_sealed)?;
        let id = Id::random();
        self.inner.store.write(&slot_name(&id), &serde_json::to_vec_pretty(&slot).expect("key serialises"))?;
        Ok(KeyInfo {
            id: id.to_hex(),
            kind,
            label: slot.label,
            created: slot.created,
            host: slot.host,
            user: slot.user,
            current: false,
        })
    }

    /// Removes a key slot by id or unique id prefix; the last slot that is not the recovery
    /// slot cannot go.
    pub fn remove_key(&self, id_prefix: &str) -> RepoResult<KeyInfo> {
        let all = self.keys()?;
        let matching: Vec<&KeyInfo> = all.iter().filter(|k| k.id.starts_with(id_prefix)).collect();
        let [target] = matching.as_slice() else {
            return Err(RepoError::NoSuchKey(id_prefix.to_string()));
        };
        let remaining = all.iter().filter(|k| k.id != target.id && k.kind != KeyKind::Recovery).count();
        if remaining == 0 && target.kind != KeyKind::Recovery {
            return Err(RepoError::LastKey);
        }
        self.inner.store.remove(&format!("keys/{}", target.id))?;
        Ok((*target).clone())
    }

    /// The recovery key of the emergency kit; makes sure a slot for it exists.
    pub fn recovery_key(&self) -> RepoResult<RecoveryKey> {
        self.ensure_recovery_slot()
    }

    pub(crate) fn ensure_recovery_slot(&self) -> RepoResult<RecoveryKey> {
        let rk = RecoveryKey::derived_from(&self.inner.key);
        let known = &self.inner.recovery_slot_known;
        if known.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(rk);
        }
        let has = self.keys()?.iter().any(|k| k.kind == KeyKind::Recovery);
        if !has {
            self.add_key(&rk.as_secret(), KeyKind::Recovery, RECOVERY_LABEL)?;
        }
        known.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(rk)
    }

    /// Bytes the repository occupies at its location.
    pub fn stored_size(&self) -> RepoResult<u64> {
        let mut total = 0;
        for prefix in ["data", "index", "snapshots", "keys", "locks"] {
            total += self.inner.store.list(prefix)?.iter().map(|o| o.size).sum::<u64>();
        }
        Ok(total)
    }
}

/// Index files and snapshots are named by the hash of their stored bytes: one under another
/// name was renamed or copied there by someone else, and must not stand for that name.
fn named_by_content(what: &str, id: &Id, sealed: &[u8]) -> RepoResult<()> {
    let actual = Id::of_stored(sealed);
    if actual == *id {
        Ok(())
    } else {
        Err(RepoError::Misnamed { what: what.to_string(), actual, sealed: sealed.to_vec() })
    }
}

/// This machine's host name, as recorded in key slots, locks and backups.
pub fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "unknown".into())
}

/// The name of the user running Lifeboat.
pub fn username() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BlobWriter;

    /// The bug of the daemon's copy: a repository opened afresh was read before its index
    /// was loaded, and every blob was "missing from the index". No reader can do that now.
    #[test]
    fn a_freshly_opened_repository_reads_blobs_without_being_told_to_load_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(lifeboat_storage::LocalStore::new(dir.path().to_path_buf()));
        let secret = Secret::new("correct horse");
        let repo = Repository::init(store.clone(), &secret, KeyKind::Password).unwrap();
        repo.load_index().unwrap();
        let writer = BlobWriter::new(&repo, 1);
        let (id, _) = writer.add(BlobKind::Data, b"what a backup holds").unwrap();
        writer.finish().unwrap();

        let fresh = Repository::open(store, &secret).unwrap();
        assert_eq!(fresh.read_blob(&id).unwrap(), b"what a backup holds");
        assert!(fresh.has_blob(&id));
        assert!(fresh.blob_length(&id).is_some());
    }

    /// A slot a device remembered opens the repository without the slots being read, and
    /// only while the location lists it: a withdrawn password opens nothing, whatever the
    /// device kept; a damaged copy or another secret unlocks nothing.
    #[test]
    fn a_remembered_slot_opens_only_while_the_location_lists_it() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(lifeboat_storage::LocalStore::new(dir.path().to_path_buf()));
        let secret = Secret::new("correct horse");
        let made = Repository::init(store.clone(), &secret, KeyKind::Password).unwrap();
        let found = Repository::find(store.clone()).unwrap().unwrap();
        assert!(found.stored_slot(&made.key_slot()).is_none(), "no slot read before a secret is tried");
        let repo = found.open(&secret).unwrap();
        let remembered = found.stored_slot(&repo.key_slot()).expect("the slot that opened it, as stored");

        assert!(remembered.unlock(&Secret::new("wrong horse")).is_none());
        let mut slot: serde_json::Value = serde_json::from_slice(&remembered.bytes).unwrap();
        let sealed = slot["master"].as_str().unwrap().to_string();
        let flipped = if sealed.starts_with('A') { 'B' } else { 'A' };
        slot["master"] = serde_json::Value::String(format!("{flipped}{}", &sealed[1..]));
        let damaged = RememberedSlot { bytes: serde_json::to_vec(&slot).unwrap(), ..remembered.clone() };
        assert!(damaged.unlock(&secret).is_none(), "a damaged copy unlocks nothing");

        let unlocked = remembered.unlock(&secret).expect("its own secret unlocks it");
        let made_slot = made.made_slot().expect("the creator knows the slot it made");
        assert_eq!(
            (made_slot.id, &made_slot.bytes, &made_slot.slots),
            (remembered.id, &remembered.bytes, &remembered.slots)
        );
        let again = Repository::find(store.clone()).unwrap().unwrap();
        let fast = again.open_unlocked(&unlocked).unwrap().expect("opened from the remembered slot");
        assert_eq!(fast.id(), made.id());
        assert_eq!(fast.key_slot(), made.key_slot());

        // A slot added at the location since: the slots are read as usual (and a planted one
        // warned about), not skipped.
        let added = made.add_key(&Secret::new("another horse"), KeyKind::Password, "laptop").unwrap();
        let grown = Repository::find(store.clone()).unwrap().unwrap();
        assert!(grown.open_unlocked(&unlocked).unwrap().is_none(), "a slot added since went unread");
        store.remove(&format!("keys/{}", added.id)).unwrap();

        // The password withdrawn at the location (its slot removed; the recovery slot stays).
        store.remove(&keys::slot_name(&made.key_slot())).unwrap();
        let after = Repository::find(store.clone()).unwrap().unwrap();
        assert!(after.open_unlocked(&unlocked).unwrap().is_none(), "a withdrawn slot opened the repository");
        assert!(matches!(after.open(&secret), Err(RepoError::WrongPassword(_))));
    }

    /// A repository made like another, opened again from its location (made at once or beside
    /// its first backup), gives content the other's ids and cuts files where the other does;
    /// its encryption key and recovery key are its own.
    #[test]
    fn a_repository_made_like_another_keeps_its_ids_and_chunking_once_stored() {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let stores: Vec<Arc<dyn Store>> = dirs
            .iter()
            .map(|d| Arc::new(lifeboat_storage::LocalStore::new(d.path().to_path_buf())) as Arc<dyn Store>)
            .collect();
        let secret = Secret::new("correct horse");
        let first = Repository::init(stores[0].clone(), &secret, KeyKind::Password).unwrap();
        let empty = |store: &Arc<dyn Store>| match Repository::locate(store.clone()).unwrap() {
            Err(empty) => empty,
            Ok(_) => panic!("an empty folder held a repository"),
        };
        let now = empty(&stores[1]).like(first.id_scheme()).create(&secret, KeyKind::Password).unwrap();
        let beside = empty(&stores[2]).like(first.id_scheme()).begin(&secret, KeyKind::Password).unwrap();
        beside.made().unwrap();
        assert!(now.id_scheme().same_ids(&first.id_scheme()) && beside.id_scheme().same_ids(&first.id_scheme()));
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..6_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let cuts = |r: &Repository| r.chunker().cut(&data).map(|c| r.blob_id(c)).collect::<Vec<_>>();
        for store in &stores[1..] {
            let again = Repository::open(store.clone(), &secret).unwrap();
            assert!(again.id_scheme().same_chunking(&first.id_scheme()));
            assert_eq!(cuts(&again), cuts(&first));
            assert!(cuts(&first).len() > 1, "the data is cut in several chunks");
            assert_ne!(again.id(), first.id());
            assert_ne!(again.recovery_key().unwrap().to_string(), first.recovery_key().unwrap().to_string());
            assert!(first.key().open(&again.key().seal(b"sealed", false), None).is_err());
        }
        let other = Repository::init(
            Arc::new(lifeboat_storage::LocalStore::new(tempfile::tempdir().unwrap().path().to_path_buf())),
            &secret,
            KeyKind::Password,
        )
        .unwrap();
        assert!(!other.id_scheme().same_ids(&first.id_scheme()));
    }

    /// Creating where the location was found empty asks nothing again; of two processes that
    /// both found it empty, the second gets `AlreadyExists`, withdraws its slots and leaves
    /// the first's repository as it was.
    #[test]
    fn a_location_found_empty_gets_one_repository_however_many_create_it() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(lifeboat_storage::LocalStore::new(dir.path().to_path_buf()));
        let (Err(first), Err(second)) =
            (Repository::locate(store.clone()).unwrap(), Repository::locate(store.clone()).unwrap())
        else {
            panic!("an empty folder held a repository");
        };
        let secret = Secret::new("correct horse");
        let made = first.create(&secret, KeyKind::Password).unwrap();
        assert!(made.snapshots_listed_at_open().unwrap().0.is_empty());
        let slots = store.list("keys").unwrap();
        assert!(matches!(
            second.create(&Secret::new("other horse"), KeyKind::Password),
            Err(RepoError::AlreadyExists(_))
        ));
        assert_eq!(store.list("keys").unwrap(), slots, "the loser's slots were withdrawn, the winner's kept");
        let Ok(found) = Repository::locate(store.clone()).unwrap() else { panic!("the repository made was not found") };
        assert_eq!(found.open(&secret).unwrap().id(), made.id());
    }

    /// Until this change prune wrote the index in files of 2000 packs (`chunks(2000)`) and
    /// repair wrote it as one file; such files stay in every repository that ran them. 2000
    /// packs of 16 MiB whose blobs average 16 KiB (a mail folder, source trees) list 2 million
    /// blobs: a sealed file of about 80 MiB, more than `limits::MAX_INDEX_FILE`. It is now
    /// refused, its blobs count as missing (restores of the backups that need them fail, a
    /// backup stores them all again) and `prune`'s strict index load refuses to run.
    #[test]
    fn an_index_file_as_prune_wrote_it_before_the_split_is_still_read() {
        use crate::repofile::index_file::IndexFile;
        use crate::repofile::pack_header::PackEntry;
        let store = Arc::new(lifeboat_storage::MemoryStore::new());
        let secret = Secret::new("correct horse");
        let repo = Repository::init(store.clone(), &secret, KeyKind::Password).unwrap();
        repo.load_index().unwrap();
        let writer = BlobWriter::new(&repo, 1);
        let (id, _) = writer.add(BlobKind::Data, b"what a backup holds").unwrap();
        writer.finish().unwrap();
        let mut packs: Vec<(Id, Vec<PackEntry>)> =
            repo.inner.index.read().expect("index lock").by_pack().into_iter().collect();
        for _ in 1..2000 {
            // Blobs of 1 to 32 KiB as stored, 16 KiB on average, one after another.
            let mut offset = 0u32;
            let entries = (0..1000)
                .map(|_| {
                    let length = 1024 + rand::random::<u32>() % (31 * 1024);
                    let e = PackEntry {
                        kind: BlobKind::Data,
                        id: Id::random(),
                        offset,
                        length,
                        raw_length: length - crate::crypto::OVERHEAD as u32,
                    };
                    offset += length;
                    e
                })
                .collect();
            packs.push((Id::random(), entries));
        }
        let old: Vec<String> = store.list("index").unwrap().into_iter().map(|o| o.name).collect();
        let written = repo.write_index_file(&IndexFile { packs }).unwrap();
        for name in old {
            store.remove(&name).unwrap();
        }
        let size = store.size(&format!("index/{}", written.to_hex())).unwrap();
        // Larger than the first bound tried (64 MiB), which refused such files.
        assert!(size > 64 << 20, "the file as prune wrote it: {size} bytes");
        let fresh = Repository::open(store, &secret).unwrap();
        assert_eq!(fresh.read_blob(&id).unwrap(), b"what a backup holds");
    }
}
