//! Locations: where backups are kept. Each holds one repository.
//!
//! A [`Location`] is what the configuration says; [`Location::store`] reaches it: a folder,
//! a memory card checked to be mounted, an SFTP server, a storage service. Network kinds are
//! wrapped in retries with backoff, and every kind in a meter that counts the bytes sent and
//! keeps them under `upload_limit`.

pub mod removable;
pub mod settings;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use lifeboat_storage::{LocalStore, Metered, Retrying, ServiceStore, SftpStore, SmbStore, Store, Traffic};
use serde::Serialize;

use crate::config::{Config, LocationConfig, LocationKind};
use crate::paths::Dirs;
use crate::{EngineError, EngineResult};

use settings::Settings;

#[derive(Clone)]
pub struct Location {
    pub name: String,
    pub kind: LocationKind,
    pub config: LocationConfig,
    /// The folder, for kinds that are folders on this machine (for removable ones, where the
    /// configuration expects it; [`Location::store`] finds where it really is).
    pub path: Option<PathBuf>,
    dirs: Dirs,
    // Reached once per process: a network location keeps its connection.
    reached: Arc<Mutex<Option<Reached>>>,
}

#[derive(Clone)]
struct Reached {
    store: Arc<dyn Store>,
    traffic: Arc<Traffic>,
    /// For a memory card or disk: the filesystem it was found on. Each use of the location
    /// checks it is still mounted, and finds the card again if not (taken out, or put back
    /// and mounted anew).
    filesystem: Option<lifeboat_storage::Filesystem>,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Location").field("name", &self.name).field("kind", &self.kind).finish()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LocationInfo {
    pub name: String,
    pub kind: String,
    pub path: Option<String>,
    pub default: bool,
}

impl Location {
    pub(crate) fn new(name: String, lc: LocationConfig, dirs: &Dirs) -> Location {
        let path = match lc.kind {
            // A card's relative path is a folder on the card, wherever it is mounted: known
            // once the card is found.
            LocationKind::Removable => lc.path.as_deref().map(|p| dirs.expand(p)).filter(|p| p.is_absolute()),
            LocationKind::Local => lc.path.as_deref().map(|p| dirs.expand(p)),
            _ => None,
        };
        Location { name, kind: lc.kind, config: lc, path, dirs: dirs.clone(), reached: Arc::default() }
    }

    /// The location's storage, reached (and for removable media, checked) on first use.
    pub fn store(&self) -> EngineResult<Arc<dyn Store>> {
        Ok(self.reach()?.store)
    }

    /// False once a memory card or disk this location was reached on is no longer mounted
    /// where it was found (taken out, or put back as a new mount): what was opened through
    /// it must be opened again. Always true for other kinds.
    pub fn still_where_reached(&self) -> bool {
        self.reached.lock().ok().is_none_or(|r| {
            r.as_ref().and_then(|r| r.filesystem.as_ref()).is_none_or(lifeboat_storage::Filesystem::still_mounted)
        })
    }

    /// Bytes sent to and read from this location by this process so far.
    pub fn traffic(&self) -> Option<Arc<Traffic>> {
        self.reached.lock().ok().and_then(|r| r.as_ref().map(|r| r.traffic.clone()))
    }

    /// True for locations reached over a network.
    pub fn is_remote(&self) -> bool {
        !matches!(self.kind, LocationKind::Local | LocationKind::Removable)
    }

    fn reach(&self) -> EngineResult<Reached> {
        let mut slot = self.reached.lock().map_err(|_| EngineError::Cancelled)?;
        if let Some(r) = slot.as_ref() {
            if r.filesystem.as_ref().is_none_or(lifeboat_storage::Filesystem::still_mounted) {
                return Ok(r.clone());
            }
            *slot = None;
        }
        let bad = |detail: String| EngineError::LocationConfig { name: self.name.clone(), detail };
        let s = Settings::new(&self.name, &self.config, &self.dirs);
        let line = (s.upload_limit().map_err(bad)?, s.connections().map_err(bad)?);
        let mut filesystem = None;
        let (store, traffic): (Arc<dyn Store>, Arc<Traffic>) = match self.kind {
            LocationKind::Local => {
                let path = self.path.clone().ok_or_else(|| bad("path is missing".into()))?;
                metered(LocalStore::new(path), line)
            }
            LocationKind::Removable => {
                let path = s.required("path").map_err(bad)?;
                let uuid = s.get("uuid").map_err(bad)?;
                let label = s.get("label").map_err(bad)?;
                let found = removable::find(&self.name, &path, uuid.as_deref(), label.as_deref())
                    .map_err(|reason| EngineError::LocationUnavailable { reason })?;
                filesystem = Some(found.filesystem.clone());
                metered(LocalStore::on_filesystem(found.folder, found.filesystem), line)
            }
            LocationKind::Sftp => {
                let config = s.sftp().map_err(bad)?;
                metered(Retrying::new(SftpStore::new(self.label(), config).named(&self.name)), line)
            }
            LocationKind::Smb => {
                let config = s.smb().map_err(bad)?;
                metered(Retrying::new(SmbStore::new(self.label(), config)), line)
            }
            LocationKind::S3
            | LocationKind::Webdav
            | LocationKind::Dropbox
            | LocationKind::Onedrive
            | LocationKind::Gdrive => {
                let config = s.service().map_err(bad)?;
                let store = ServiceStore::new(self.label(), &config)?;
                metered(Retrying::new(store), line)
            }
        };
        let r = Reached { store, traffic, filesystem };
        *slot = Some(r.clone());
        Ok(r)
    }

    /// Records an SFTP server's host key in the location's known_hosts file, if the key it
    /// presents has `fingerprint` (`SHA256:…`, which the person compared with the server's
    /// own); a server already known stays as it is, a key that differs is refused.
    pub fn trust_host_key(&self, fingerprint: &str) -> EngineResult<()> {
        if self.kind != LocationKind::Sftp {
            return Err(EngineError::LocationConfig {
                name: self.name.clone(),
                detail: "only an SFTP location has a host key to trust".into(),
            });
        }
        let bad = |detail: String| EngineError::LocationConfig { name: self.name.clone(), detail };
        let config = Settings::new(&self.name, &self.config, &self.dirs).sftp().map_err(bad)?;
        let store = SftpStore::new(self.label(), config).named(&self.name);
        store.trust_host_key(fingerprint)?;
        // Reached again with the key now known.
        if let Ok(mut slot) = self.reached.lock() {
            *slot = None;
        }
        Ok(())
    }

    /// The location's own repository secret (`repository_password`, `repository_password_file`
    /// or `"$VARIABLE"`), which unattended runs use for a password-protected repository.
    pub fn repository_password(&self) -> EngineResult<Option<String>> {
        Settings::new(&self.name, &self.config, &self.dirs)
            .get("repository_password")
            .map_err(|detail| EngineError::LocationConfig { name: self.name.clone(), detail })
    }

    /// The location whose repository's blob ids and chunking a repository made here takes
    /// (`like = "NAME"`), so equal content has equal ids in both (docs/CONFIG.md).
    pub fn like(&self) -> Option<&str> {
        self.config.other.get("like").and_then(|v| v.as_str())
    }

    /// How errors name this location: `location NAME (KIND)`.
    fn label(&self) -> String {
        format!("location {} ({})", self.name, self.kind.as_str())
    }

    pub fn describe(&self) -> String {
        match &self.path {
            Some(p) => format!("{} ({})", self.name, p.display()),
            None => match self.store() {
                Ok(s) => format!("{} ({})", self.name, s.describe()),
                Err(_) => self.name.clone(),
            },
        }
    }
}

/// The store behind its meter: `line` is the location's upload limit and connections.
fn metered<S: Store + 'static>(store: S, line: (Option<u64>, Option<usize>)) -> (Arc<dyn Store>, Arc<Traffic>) {
    let m = Metered::new(store, line.0).with_connections(line.1);
    let traffic = m.traffic();
    (Arc::new(m), traffic)
}

/// The configured locations; with none configured, `local` in the data folder.
pub fn locations(config: &Config, dirs: &Dirs) -> Vec<Location> {
    let mut out: Vec<Location> =
        config.location.iter().map(|(name, lc)| Location::new(name.clone(), lc.clone(), dirs)).collect();
    // The implicit location stays while it holds backups, whatever else is configured: a
    // location added later must not hide the backups made before it.
    let implicit = dirs.data.join("backups");
    let holds_backups = implicit.join("config").exists() || implicit.join("keys").is_dir();
    if !out.iter().any(|l| l.name == "local")
        && (out.is_empty() || config.default_location.as_deref() == Some("local") || holds_backups)
    {
        let lc = LocationConfig {
            kind: LocationKind::Local,
            path: Some(dirs.data.join("backups").display().to_string()),
            ..Default::default()
        };
        out.insert(0, Location::new("local".into(), lc, dirs));
    }
    out
}

pub fn default_location_name(config: &Config, dirs: &Dirs) -> String {
    config
        .default_location
        .clone()
        .unwrap_or_else(|| locations(config, dirs).first().map(|l| l.name.clone()).unwrap_or_else(|| "local".into()))
}

/// The named location, or the default one.
pub(crate) fn info(all: &[Location], default: &str) -> Vec<LocationInfo> {
    all.iter()
        .map(|l| LocationInfo {
            default: l.name == default,
            name: l.name.clone(),
            kind: l.kind.as_str().into(),
            path: l.path.as_ref().map(|p| p.display().to_string()),
        })
        .collect()
}
