//! What the daemon holds while it runs: the configuration (reloaded when schedules change),
//! the event history, the jobs, and the repositories it has opened (keys are derived once).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use lifeboat_engine::credentials::{self, Credentials};
use lifeboat_engine::{location, unit, Dirs, EngineResult, LoadedConfig, Location, Unit};
use lifeboat_repository::Repository;

use crate::events::{About, Event, Events};
use crate::jobs::Jobs;
use crate::notify;

pub struct Daemon {
    pub dirs: Dirs,
    /// `--config`, when given.
    pub config_file: Option<PathBuf>,
    config: RwLock<LoadedConfig>,
    pub password_file: Option<PathBuf>,
    pub events: Events,
    pub jobs: Jobs,
    repos: Mutex<HashMap<String, Repository>>,
    pub token: String,
    pub sessions: crate::web::session::Sessions,
    pub started: jiff::Timestamp,
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
        Daemon {
            dirs,
            config_file,
            config: RwLock::new(config),
            password_file,
            events,
            jobs: Jobs::default(),
            repos: Mutex::new(HashMap::new()),
            token,
            sessions: Default::default(),
            started: jiff::Timestamp::now(),
        }
    }

    pub fn config(&self) -> LoadedConfig {
        self.config.read().expect("config lock").clone()
    }

    /// Reads the configuration file again (after an edit); the old one stays on error.
    pub fn reload(&self) -> EngineResult<()> {
        let fresh = LoadedConfig::load(self.config_file.as_deref(), &self.dirs)?;
        *self.config.write().expect("config lock") = fresh;
        self.repos.lock().expect("repos lock").clear();
        Ok(())
    }

    pub fn locations(&self) -> Vec<Location> {
        location::locations(&self.config().config, &self.dirs)
    }

    pub fn location(&self, name: Option<&str>) -> EngineResult<Location> {
        location::location(&self.config().config, &self.dirs, name)
    }

    /// Every unit; local locations' folders and the logs are never backed up.
    pub fn units(&self) -> EngineResult<Vec<Unit>> {
        self.units_for(&self.dirs)
    }

    /// The units with `~` understood as the home of `dirs` (a restore into another home).
    pub fn units_for(&self, dirs: &lifeboat_engine::Dirs) -> EngineResult<Vec<Unit>> {
        let mut skip: Vec<PathBuf> = self.locations().into_iter().filter_map(|l| l.path).collect();
        skip.push(self.dirs.logs.clone());
        unit::units(&self.config().config, dirs, &skip)
    }

    /// A location's repository, opened once (with `create`, made on first use).
    pub fn repo(&self, loc: &Location, create: bool) -> EngineResult<Repository> {
        if let Some(r) = self.repos.lock().expect("repos lock").get(&loc.name) {
            return Ok(r.clone());
        }
        let creds = Credentials { password_file: self.password_file.clone(), prompt: None };
        let opened = credentials::open(loc, &self.dirs, &creds, create)?;
        if opened.created.is_some() {
            tracing::warn!(
                "created a new repository in {}; its recovery key is shown by `lifeboat key recovery`",
                loc.describe()
            );
        }
        self.repos.lock().expect("repos lock").insert(loc.name.clone(), opened.repo.clone());
        Ok(opened.repo)
    }

    /// A location's repository when one is there (`None`: reachable, but no backup yet). The
    /// location answering is checked first, so an absent card is an error, not "empty".
    pub fn existing_repo(&self, loc: &Location) -> EngineResult<Option<Repository>> {
        let store = loc.store()?;
        if !Repository::exists(store.as_ref())? {
            return Ok(None);
        }
        self.repo(loc, false).map(Some)
    }

    /// Records an event and passes it to the configured notifications.
    pub fn event(&self, kind: &str, level: &str, message: &str, about: About) -> Option<Event> {
        match self.events.record(kind, level, message, &about) {
            Ok(e) => {
                notify::send(&self.config().config.daemon, &e);
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
