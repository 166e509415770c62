//! What the daemon holds while it runs: the configuration (reloaded when schedules change),
//! the event history, the jobs, and the repositories it has opened (keys are derived once).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use lifeboat_engine::credentials::Credentials;
use lifeboat_engine::{Dirs, EngineResult, Lifeboat, LoadedConfig};

use crate::events::{About, Event, Events};
use crate::jobs::Jobs;
use crate::notify;

pub struct Daemon {
    pub dirs: Dirs,
    /// `--config`, when given.
    pub config_file: Option<PathBuf>,
    /// The application layer, made again when the configuration is reloaded (its locations
    /// and opened repositories with it).
    app: RwLock<Arc<Lifeboat>>,
    /// The configuration file as it was when last read: a file changed since is read again.
    read_as: Mutex<Option<FileStamp>>,
    pub password_file: Option<PathBuf>,
    pub events: Events,
    pub jobs: Jobs,
    pub token: String,
    pub sessions: crate::web::session::Sessions,
    pub started: jiff::Timestamp,
}

fn application(dirs: &Dirs, config: LoadedConfig, password_file: &Option<PathBuf>) -> Lifeboat {
    let credentials = Credentials { password_file: password_file.clone(), prompt: None };
    Lifeboat::new(dirs.clone(), config, credentials).on_created(Box::new(|loc, _| {
        tracing::warn!(
            "created a new repository in {}; its recovery key is shown by `lifeboat key recovery`",
            loc.describe()
        )
    }))
}

/// What tells a changed file apart: where it is on disk, its size and its times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

impl Daemon {
    pub fn new(
        dirs: Dirs,
        config_file: Option<PathBuf>,
        config: LoadedConfig,
        password_file: Option<PathBuf>,
        events: Events,
        token: String,
    ) -> Daemon {
        let read_as = Mutex::new(stamp(&config.target_file));
        let app = application(&dirs, config, &password_file);
        Daemon {
            dirs,
            config_file,
            app: RwLock::new(Arc::new(app)),
            read_as,
            password_file,
            events,
            jobs: Jobs::default(),
            token,
            sessions: Default::default(),
            started: jiff::Timestamp::now(),
        }
    }

    /// The application layer as the configuration is now: a configuration file edited since
    /// it was read is read again first (a stat per call; no watcher to miss an edit or to
    /// race with one). A job keeps the one it started with, whatever reloads happen meanwhile.
    pub fn app(&self) -> Arc<Lifeboat> {
        self.reload_if_changed();
        self.current()
    }

    fn current(&self) -> Arc<Lifeboat> {
        self.app.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn reload_if_changed(&self) {
        let file = self.current().config().target_file.clone();
        let now = stamp(&file);
        {
            let mut read_as = self.read_as.lock().unwrap_or_else(|e| e.into_inner());
            if *read_as == now {
                return;
            }
            // Tried once per change: a file saved half-edited is not parsed on every call.
            *read_as = now;
        }
        match self.reload() {
            Ok(()) => tracing::info!("{} changed: configuration read again", file.display()),
            Err(e) => tracing::warn!(
                "{} changed but cannot be used ({e}); the configuration read before stays",
                file.display()
            ),
        }
    }

    pub fn config(&self) -> LoadedConfig {
        self.app().config().clone()
    }

    /// Reads the configuration file again (after an edit); the old one stays on error.
    pub fn reload(&self) -> EngineResult<()> {
        let file = self.current().config().target_file.clone();
        *self.read_as.lock().unwrap_or_else(|e| e.into_inner()) = stamp(&file);
        let fresh = LoadedConfig::load(self.config_file.as_deref(), &self.dirs)?;
        *self.app.write().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(application(&self.dirs, fresh, &self.password_file));
        Ok(())
    }

    /// Records an event and passes it to the configured notifications.
    pub fn event(&self, kind: &str, level: &str, message: &str, about: About) -> Option<Event> {
        match self.events.record(kind, level, message, &about) {
            Ok(e) => {
                notify::send(&self.app().config().config.daemon, &e);
                Some(e)
            }
            Err(e) => {
                tracing::error!("{e}");
                None
            }
        }
    }
}

pub type Shared = Arc<Daemon>;
