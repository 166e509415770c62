//! Where the secret that opens a repository comes from: `--password-file`,
//! `$LIFEBOAT_PASSWORD`, a device key kept in the configuration folder, or a prompt. On a
//! fresh machine with none of these, a random device key is created.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use lifeboat_repository::{Found, IdScheme, KeyKind, RecoveryKey, RememberedSlot, Repository, Secret, Unlocked};

use crate::config::LocationKind;
use crate::location::Location;
use crate::paths::Dirs;
use crate::{EngineError, EngineResult};

/// Asks a person for a password; `confirm` asks twice. `None` when nobody can answer.
pub type Prompt = dyn Fn(&str, bool) -> Option<String> + Send + Sync;

pub struct Credentials {
    pub password_file: Option<PathBuf>,
    pub prompt: Option<Box<Prompt>>,
}

/// What happened when a repository was created on first use.
#[derive(Debug, Clone)]
pub struct Created {
    /// Set when a random device key was generated and saved there.
    pub device_key_file: Option<PathBuf>,
    pub recovery_key: RecoveryKey,
}

pub struct Opened {
    pub repo: Repository,
    /// Set when this open made the repository; with [`MakeIfMissing::BesideTheBackup`] it is
    /// still being made, and made only once [`Repository::made`] says so.
    pub created: Option<Created>,
}

/// What an open does where the location holds no repository yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MakeIfMissing {
    /// Nothing: no repository is an error.
    No,
    /// Makes one before returning.
    Now,
    /// Makes one on a thread while the first backup already reads and packs (its uploads wait
    /// for it): see `Repository::begin`. The caller settles it with [`settle_made`].
    BesideTheBackup,
}

impl Credentials {
    /// The password of a backup file: the password file, else `$LIFEBOAT_PASSWORD`, else
    /// asked (when someone can answer). `None` when there is none.
    pub fn file_password(&self, question: &str, confirm: bool) -> EngineResult<Option<String>> {
        if let Some(secret) = self.explicit_text()? {
            return Ok(Some(secret));
        }
        Ok(self.prompt.as_ref().and_then(|p| p(question, confirm)))
    }

    fn explicit(&self) -> EngineResult<Option<Secret>> {
        Ok(self.explicit_text()?.map(Secret::new))
    }

    fn explicit_text(&self) -> EngineResult<Option<String>> {
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| EngineError::PasswordFile { path: path.clone(), source })?;
            let pw = text.strip_suffix('\n').unwrap_or(&text);
            let pw = pw.strip_suffix('\r').unwrap_or(pw);
            if pw.is_empty() {
                return Err(EngineError::EmptyPassword(path.clone()));
            }
            return Ok(Some(pw.to_string()));
        }
        if let Ok(pw) = std::env::var("LIFEBOAT_PASSWORD") {
            if !pw.is_empty() {
                return Ok(Some(pw));
            }
        }
        Ok(None)
    }
}

pub fn device_key_file(dirs: &Dirs, location: &Location) -> PathBuf {
    dirs.key_dir().join(format!("{}.key", location.name))
}

fn read_device_key(path: &PathBuf) -> Option<Secret> {
    let text = std::fs::read_to_string(path).ok()?;
    RecoveryKey::parse(text.trim()).map(|k| k.as_secret())
}

fn save_device_key(path: &PathBuf, key: &RecoveryKey) -> EngineResult<()> {
    if let Some(dir) = path.parent() {
        crate::paths::private_dir(dir).map_err(|e| EngineError::io("creating", dir, e))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    // Written whole under a temporary name, then linked into place: another process on this
    // device never reads a half-written key, and if it made one first, theirs is the key.
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        writeln!(f, "{key}")?;
        f.sync_all()?;
        match std::fs::hard_link(&tmp, path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    };
    let r = write();
    let _ = std::fs::remove_file(&tmp);
    r.map_err(|e| EngineError::io("creating", path, e))
}

/// Where this device keeps the key slot it last opened a location's repository with: in the
/// cache folder (none with `--no-cache`), named by the location's name and address.
fn remembered_slot_path(dirs: &Dirs, location: &Location) -> Option<PathBuf> {
    let who = blake3::hash(format!("{}\n{}", location.name, location.describe()).as_bytes());
    Some(dirs.cache.as_ref()?.join("slots").join(&who.to_hex()[..32]))
}

/// A remembered slot: its id on the first line, every slot the location listed on the second
/// (space-separated), then the slot as the location holds it. Anything else is no remembered
/// slot (the location is read as usual).
fn read_remembered_slot(path: &std::path::Path) -> Option<RememberedSlot> {
    let text = std::fs::read(path).ok()?;
    let first = text.iter().position(|b| *b == b'\n')?;
    let second = first + 1 + text[first + 1..].iter().position(|b| *b == b'\n')?;
    let id = std::str::from_utf8(&text[..first]).ok()?.parse().ok()?;
    let slots = std::str::from_utf8(&text[first + 1..second]).ok()?;
    let slots = slots.split(' ').map(|s| s.parse().ok()).collect::<Option<Vec<_>>>()?;
    Some(RememberedSlot { id, bytes: text[second + 1..].to_vec(), slots })
}

/// Keeps the slot a secret opened (0600, in a 0700 folder: it is the master key sealed under
/// the secret's derivation, as the location holds it). A cache that cannot be written only
/// costs the next open its derivation.
fn remember_slot(path: &std::path::Path, slot: &RememberedSlot) {
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            crate::paths::private_dir(dir)?;
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        let slots: Vec<String> = slot.slots.iter().map(|id| id.to_hex()).collect();
        let written = writeln!(f, "{}\n{}", slot.id.to_hex(), slots.join(" ")).and_then(|()| f.write_all(&slot.bytes));
        let placed = written.and_then(|()| std::fs::rename(&tmp, path));
        if placed.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        placed
    };
    if let Err(e) = write() {
        tracing::debug!("the key slot could not be remembered in {} ({e})", path.display());
    }
}

/// Bytes of folder listings the metadata cache keeps of one repository (index files and
/// backups are always all kept): enough for every listing of a few million folders.
const CACHED_LISTINGS: u64 = 1 << 30;

/// What a repository made now takes its blob ids and chunking from (another repository's,
/// see [`lifeboat_repository::Empty::like`]); asked only when one is made.
pub type Like<'a> = &'a dyn Fn() -> EngineResult<Option<IdScheme>>;

/// Opens the location's repository, creating it first when `create` is set and there is none
/// (with the blob ids and chunking `like` gives, if any).
/// A repository over a network keeps its metadata in this device's cache (docs/CONFIG.md).
pub fn open(
    location: &Location,
    dirs: &Dirs,
    creds: &Credentials,
    create: MakeIfMissing,
    like: Like<'_>,
) -> EngineResult<Opened> {
    let opened = open_uncached(location, dirs, creds, create, like)?;
    // A folder on this machine reads as fast as a cache would: no copy of it is kept.
    let local = matches!(location.kind, LocationKind::Local | LocationKind::Removable);
    if let (Some(dir), false) = (&dirs.cache, local) {
        opened.repo.use_cache(dir, CACHED_LISTINGS);
    }
    Ok(opened)
}

fn open_uncached(
    location: &Location,
    dirs: &Dirs,
    creds: &Credentials,
    create: MakeIfMissing,
    like: Like<'_>,
) -> EngineResult<Opened> {
    let store = location.store()?;
    let key_file = device_key_file(dirs, location);
    let explicit = creds.explicit()?;
    // The location's own secrets first (its configured repository password, this device's
    // key for it): they are meant for this repository, while a password given to the command
    // or set in the environment may be another location's.
    let own: Vec<Secret> =
        location.repository_password()?.map(Secret::new).into_iter().chain(read_device_key(&key_file)).collect();
    let secrets: Vec<&Secret> = own.iter().chain(explicit.iter()).collect();
    // The slot this device opened it with last time is unlocked (the key derivation, the
    // slow part of opening) while the location is read.
    let remembered_at = remembered_slot_path(dirs, location);
    let remembered = remembered_at.as_deref().and_then(read_remembered_slot);
    let (found, unlocked) = std::thread::scope(|scope| {
        let unlocked = scope.spawn(|| remembered.as_ref().and_then(|r| secrets.iter().find_map(|s| r.unlock(s))));
        (Repository::locate(store.clone()), unlocked.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    let empty = match found? {
        Ok(found) => return open_found(&found, unlocked.as_ref(), &secrets, remembered_at.as_deref(), creds, location),
        Err(empty) => empty,
    };
    if create == MakeIfMissing::No {
        return Err(lifeboat_repository::RepoError::NotARepository(location.describe()).into());
    }
    let empty = match like()? {
        Some(scheme) => empty.like(scheme),
        None => empty,
    };
    let explicit = match location.repository_password()? {
        Some(own) => Some(Secret::new(own)),
        None => explicit,
    };
    let (secret, kind, saved) = if let Some(s) = explicit {
        (s, KeyKind::Password, None)
    } else if let Some(s) = read_device_key(&key_file) {
        (s, KeyKind::Device, Some(key_file.clone()))
    } else if let Some(pw) =
        creds.prompt.as_ref().and_then(|p| p(&format!("New password for backups in {}: ", location.describe()), true))
    {
        (Secret::new(pw), KeyKind::Password, None)
    } else {
        save_device_key(&key_file, &RecoveryKey::random())?;
        let key = read_device_key(&key_file).ok_or_else(|| {
            EngineError::io("reading", &key_file, std::io::Error::other("the device key file is not a key"))
        })?;
        (key, KeyKind::Device, Some(key_file.clone()))
    };
    let made = match create {
        MakeIfMissing::BesideTheBackup => empty.begin(&secret, kind),
        _ => empty.create(&secret, kind),
    };
    let repo = match made {
        Err(lifeboat_repository::RepoError::AlreadyExists(_)) => {
            // Another process created it a moment ago: open theirs.
            return Ok(Opened { repo: Repository::open(store, &secret)?, created: None });
        }
        r => r?,
    };
    if let Some(path) = &remembered_at {
        remember_made_slot(path, &repo);
    }
    let recovery_key = repo.recovery_key()?;
    Ok(Opened { repo, created: Some(Created { device_key_file: saved, recovery_key }) })
}

/// Keeps the slot this process made the repository with, once it is made (a repository
/// still being made is settled by [`settle_made`], which comes back here).
fn remember_made_slot(path: &Path, repo: &Repository) {
    if let Some(slot) = repo.made_slot() {
        remember_slot(path, slot);
    }
}

/// For a repository opened with [`MakeIfMissing::BesideTheBackup`]: waits until it is made
/// and remembers its slot as [`open`] does. `AlreadyExists` says another process made one
/// there first and nothing of this one was stored: open theirs and start again.
pub fn settle_made(location: &Location, dirs: &Dirs, repo: &Repository) -> EngineResult<()> {
    if let Err(e) = repo.made() {
        if matches!(e, lifeboat_repository::RepoError::AlreadyExists(_)) {
            repo.discard_cache();
        }
        return Err(e.into());
    }
    if let Some(path) = remembered_slot_path(dirs, location) {
        remember_made_slot(&path, repo);
    }
    Ok(())
}

/// Opens a repository the location holds: with the slot this device remembered, else with
/// each secret in turn, else with a password asked for.
fn open_found(
    found: &Found,
    unlocked: Option<&Unlocked>,
    secrets: &[&Secret],
    remembered_at: Option<&Path>,
    creds: &Credentials,
    location: &Location,
) -> EngineResult<Opened> {
    if let Some(repo) = unlocked.map(|u| found.open_unlocked(u)).transpose()?.flatten() {
        return Ok(Opened { repo, created: None });
    }
    let opened = |repo: Repository| {
        if let (Some(path), Some(slot)) = (remembered_at, found.stored_slot(&repo.key_slot())) {
            remember_slot(path, &slot);
        }
        Opened { repo, created: None }
    };
    // A secret that does not open it gives way to the next; the last refusal is the answer.
    let mut refused = None;
    for secret in secrets {
        match found.open(secret) {
            Ok(repo) => return Ok(opened(repo)),
            Err(e @ lifeboat_repository::RepoError::WrongPassword(_)) => refused = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(e) = refused {
        return Err(e.into());
    }
    match creds.prompt.as_ref().and_then(|p| p(&format!("Password for {}: ", location.describe()), false)) {
        Some(pw) => Ok(opened(found.open(&Secret::new(pw))?)),
        None => Err(EngineError::NoPassword { location: location.describe() }),
    }
}

/// What a run with nobody to ask and no password given (a schedule, a hook) finds at a
/// location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnattendedOpen {
    /// Its `repository_password` or this device's key opens the repository.
    Opens,
    /// The repository needs a password such a run does not have.
    NeedsPassword,
    /// There is no repository: such a run makes none (nobody would keep its recovery key).
    NoRepository,
}

/// Whether a run with nobody to ask and no password given (a schedule, a hook) can open the
/// location's repository: by its `repository_password` or this device's key.
pub fn opens_unattended(location: &Location, dirs: &Dirs) -> EngineResult<UnattendedOpen> {
    let Some(found) = Repository::find(location.store()?)? else {
        return Ok(UnattendedOpen::NoRepository);
    };
    let own = location
        .repository_password()?
        .map(Secret::new)
        .into_iter()
        .chain(read_device_key(&device_key_file(dirs, location)));
    for secret in own {
        if found.open(&secret).is_ok() {
            return Ok(UnattendedOpen::Opens);
        }
    }
    Ok(UnattendedOpen::NeedsPassword)
}

/// Lets this device open an existing repository on its own: opens it with `secret` (its
/// password or recovery key), adds a device key slot and saves that key (0600) where `open`
/// finds it. Used when a new machine connects to the backups of an old one.
pub fn enroll_device(location: &Location, dirs: &Dirs, secret: &str, label: &str) -> EngineResult<Repository> {
    let store = location.store()?;
    let repo = Repository::open(store, &Secret::new(secret))?;
    let key_file = device_key_file(dirs, location);
    if let Some(existing) = read_device_key(&key_file) {
        if Repository::open(location.store()?, &existing).is_ok() {
            return Ok(repo);
        }
        return Err(EngineError::io(
            "replacing",
            &key_file,
            std::io::Error::other("this device already has a key for another repository under that location's name"),
        ));
    }
    add_device_key(&repo, location, dirs, label)?;
    Ok(repo)
}

/// Adds a device key slot to an open repository and saves the key where `open` finds it, so
/// that unattended runs on this device (schedules, hooks) open it without a password. Refused
/// when this device already keeps a key for the location.
pub fn add_device_key(
    repo: &Repository,
    location: &Location,
    dirs: &Dirs,
    label: &str,
) -> EngineResult<(lifeboat_repository::KeyInfo, PathBuf)> {
    let key_file = device_key_file(dirs, location);
    if key_file.exists() {
        return Err(EngineError::DeviceKeyExists { location: location.name.clone(), file: key_file });
    }
    // The slot first: a key file that opens nothing would be worse than a slot never used.
    let key = RecoveryKey::random();
    let info = repo.add_key(&key.as_secret(), KeyKind::Device, label)?;
    save_device_key(&key_file, &key)?;
    Ok((info, key_file))
}
