//! The application layer: every use case of Lifeboat, put together once.
//!
//! A [`Lifeboat`] is made from the folders, the configuration and where secrets come from. It
//! builds each location once (a network location keeps its connection) and opens each
//! repository once (its key is derived once). The command line and the daemon hold one and
//! only turn its answers into text, exit codes, JSON and events; neither puts a use case
//! together itself.
//!
//! | use case | method |
//! | --- | --- |
//! | back up | [`Lifeboat::back_up`] |
//! | plan or run a restore (with the safety backup) | [`Lifeboat::restore`] |
//! | copy a backup to another location | [`Lifeboat::copy`] |
//! | export a backup file / import one | [`Lifeboat::plan_export`] / [`Lifeboat::import`] |
//! | restore from a backup file | [`Lifeboat::restore_file`] |
//! | list backups over every location | [`Lifeboat::list_backups`] |
//! | find a backup (slug, prefix, name, `latest`; by device; one location when it acts) | [`Lifeboat::pick_backup`], [`Lifeboat::find_backup`] |
//! | this device | [`Lifeboat::this_device`] |
//! | pin, remove | [`Lifeboat::pin`], [`Lifeboat::remove`] |
//! | units with sizes | [`Lifeboat::units`] |
//! | estimate | [`Lifeboat::estimate`] |
//! | check, repair, prune, unlock | [`Lifeboat::check`], [`Lifeboat::repair`], [`Lifeboat::prune`], [`Lifeboat::unlock`] |
//! | apply a schedule's retention, or rules given at once | [`Lifeboat::apply_retention`], [`Lifeboat::forget`] |
//! | survey the locations, check one | [`Lifeboat::survey_locations`], [`Lifeboat::check_location`] |
//! | list a backup's files, search every backup, compare, one file or folder | [`Lifeboat::list_files`], [`Lifeboat::find_files`], [`Lifeboat::diff`], [`Lifeboat::dump`], [`Lifeboat::open_file`] |
//! | set up this device from a backup's configuration | [`Lifeboat::setup_offer`], [`Lifeboat::setup_offer_from_file`], [`Lifeboat::apply_setup`] |
//! | keys | [`Lifeboat::keys`], [`Lifeboat::add_key`], [`Lifeboat::remove_key`], [`Lifeboat::recovery_key`] |

mod backing_up;
mod browsing;
mod listing;
mod moving;
mod restoring;
mod setting_up;
mod surveying;
mod upkeep;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use lifeboat_repository::{IdScheme, RepoError, Repository};

use crate::credentials::{self, Created, Credentials, MakeIfMissing};
use crate::location::{self, Location, LocationInfo};
use crate::unit::{self, Unit};
use crate::{Dirs, EngineError, EngineResult, LoadedConfig};

pub use backing_up::{schedule_tag, BackedUp, BackupOrder, ForgetOrder, Forgotten, RetentionOutcome};
pub use browsing::{Opened, Search};
pub use listing::{Found, Listing, Pick, Unavailable, Unreadable};
pub use moving::{Copied, FileEncryption};
pub use restoring::RestoreOrder;
pub use surveying::{LikeState, LocationCheck, LocationSurvey, RepositoryHealth};

/// What [`Lifeboat::check_like`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Likeness {
    /// The location names no `like`.
    NotAsked,
    /// It holds no repository yet: the one made there takes the other's ids and chunking.
    WhenMade,
    /// It holds one with the other's ids and chunking already.
    Already,
    /// It holds one and the other location none yet: the other's is made like it.
    OtherMadeLikeThis,
}

/// Told when a repository is created on first use (to show the recovery key).
pub type CreatedNotice = dyn Fn(&Location, &Created) + Send + Sync;

/// Lifeboat, ready to carry out any use case: see the module's table.
pub struct Lifeboat {
    dirs: Dirs,
    config: LoadedConfig,
    locations: Vec<Location>,
    default_location: String,
    credentials: Credentials,
    repos: Mutex<HashMap<String, Repository>>,
    on_created: Option<Box<CreatedNotice>>,
}

impl Lifeboat {
    pub fn new(dirs: Dirs, config: LoadedConfig, credentials: Credentials) -> Lifeboat {
        let locations = location::locations(&config.config, &dirs);
        let default_location = location::default_location_name(&config.config, &dirs);
        Lifeboat {
            dirs,
            config,
            locations,
            default_location,
            credentials,
            repos: Mutex::new(HashMap::new()),
            on_created: None,
        }
    }

    /// The folders from the environment and the configuration file (`None`: the usual one).
    pub fn load(config_file: Option<&std::path::Path>, credentials: Credentials) -> EngineResult<Lifeboat> {
        let dirs = Dirs::from_env()?;
        let config = LoadedConfig::load(config_file, &dirs)?;
        Ok(Lifeboat::new(dirs, config, credentials))
    }

    /// Reads every location directly, keeping no metadata cache (`--no-cache`).
    pub fn without_cache(mut self) -> Lifeboat {
        self.dirs.cache = None;
        self
    }

    /// Calls `notice` whenever a repository is created on first use.
    pub fn on_created(mut self, notice: Box<CreatedNotice>) -> Lifeboat {
        self.on_created = Some(notice);
        self
    }

    pub fn dirs(&self) -> &Dirs {
        &self.dirs
    }

    pub fn config(&self) -> &LoadedConfig {
        &self.config
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Every location, each built once.
    pub fn locations(&self) -> &[Location] {
        &self.locations
    }

    /// What the page and `locations list` show of each location.
    pub fn location_info(&self) -> Vec<LocationInfo> {
        location::info(&self.locations, &self.default_location)
    }

    pub fn default_location_name(&self) -> &str {
        &self.default_location
    }

    /// The named location, or the default one.
    pub fn location(&self, name: Option<&str>) -> EngineResult<&Location> {
        let wanted = name.unwrap_or(&self.default_location);
        self.locations.iter().find(|l| l.name == wanted).ok_or_else(|| EngineError::UnknownLocation {
            name: wanted.to_string(),
            known: self.locations.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    /// Every unit; the folders of local locations and of Lifeboat's logs are never backed up.
    pub fn units(&self) -> EngineResult<Vec<Unit>> {
        self.units_for(&self.dirs)
    }

    /// The named units (none: all), or which name is not a unit.
    pub fn select_units(&self, names: &[String]) -> EngineResult<Vec<Unit>> {
        let all = self.units()?;
        Ok(unit::select(&all, names)?.into_iter().cloned().collect())
    }

    /// The units with `~` understood as the home of `dirs` (a restore into another home).
    pub fn units_for(&self, dirs: &Dirs) -> EngineResult<Vec<Unit>> {
        let mut skip: Vec<PathBuf> = self.locations.iter().filter_map(|l| l.path.clone()).collect();
        skip.push(self.dirs.logs.clone());
        unit::units(&self.config.config, dirs, &skip)
    }

    /// A location's repository, opened once (with `create`, made on first use).
    pub fn repository(&self, loc: &Location, create: bool) -> EngineResult<Repository> {
        self.repository_or_made_like(loc, create, None)
    }

    /// [`Lifeboat::repository`]; one made now takes the blob ids and chunking of the
    /// location's `like` (see [`Lifeboat::like_of`]), else of `fallback` (a copy's source).
    pub(crate) fn repository_or_made_like(
        &self,
        loc: &Location,
        create: bool,
        fallback: Option<&Repository>,
    ) -> EngineResult<Repository> {
        if let Some(r) = self.still_open(loc)? {
            return Ok(r);
        }
        let how = if create { MakeIfMissing::Now } else { MakeIfMissing::No };
        let like = || Ok(self.like_of(loc)?.or_else(|| fallback.map(Repository::id_scheme)));
        let opened = credentials::open(loc, &self.dirs, &self.credentials, how, &like)?;
        if let Some(c) = &opened.created {
            self.tell_created(loc, c);
        }
        self.repos.lock().map_err(|_| EngineError::Cancelled)?.insert(loc.name.clone(), opened.repo.clone());
        Ok(opened.repo)
    }

    /// The repository this process opened at the location, while the location is still
    /// where it was opened: a memory card taken out (or put back, mounted anew) since is
    /// found again by the next open, which says it is out rather than writing beside it.
    fn still_open(&self, loc: &Location) -> EngineResult<Option<Repository>> {
        let mut repos = self.repos.lock().map_err(|_| EngineError::Cancelled)?;
        if !loc.still_where_reached() {
            repos.remove(&loc.name);
        }
        Ok(repos.get(&loc.name).cloned())
    }

    fn tell_created(&self, loc: &Location, created: &Created) {
        if let Some(notice) = &self.on_created {
            notice(loc, created);
        }
    }

    /// The repository a backup writes to. One made by this open is made beside the backup
    /// (see [`MakeIfMissing::BesideTheBackup`]): the backup settles it with
    /// [`Lifeboat::settle_made`], which tells that it was created.
    /// `unattended`: nobody is there to keep a new repository's recovery key, so none is made
    /// ([`EngineError::NoRepositoryUnattended`]).
    pub(crate) fn repository_to_back_up(
        &self,
        loc: &Location,
        unattended: bool,
    ) -> EngineResult<(Repository, Option<Created>)> {
        if let Some(r) = self.still_open(loc)? {
            return Ok((r, None));
        }
        let like = || self.like_of(loc);
        let how = if unattended { MakeIfMissing::No } else { MakeIfMissing::BesideTheBackup };
        let opened = match credentials::open(loc, &self.dirs, &self.credentials, how, &like) {
            Err(EngineError::Repo(RepoError::NotARepository(at))) if unattended => {
                return Err(EngineError::NoRepositoryUnattended { location: loc.name.clone(), at })
            }
            r => r?,
        };
        self.repos.lock().map_err(|_| EngineError::Cancelled)?.insert(loc.name.clone(), opened.repo.clone());
        Ok((opened.repo, opened.created))
    }

    /// Waits for a repository made beside its backup; once made, tells it as created. One
    /// that was not made is forgotten, so the next use opens what the location holds.
    pub(crate) fn settle_made(&self, loc: &Location, repo: &Repository, created: &Created) -> EngineResult<()> {
        match credentials::settle_made(loc, &self.dirs, repo) {
            Ok(()) => {
                self.tell_created(loc, created);
                Ok(())
            }
            Err(e) => {
                self.repos.lock().map_err(|_| EngineError::Cancelled)?.remove(&loc.name);
                Err(e)
            }
        }
    }

    /// The blob ids and chunking a repository made now at `loc` takes: those of the
    /// repository of the location it is `like`, else of one that names it as its `like` (so
    /// the two match whichever is made first); `None` when neither holds a repository yet.
    pub(crate) fn like_of(&self, loc: &Location) -> EngineResult<Option<IdScheme>> {
        let named = loc.like().into_iter().map(|l| self.location(Some(l))).collect::<EngineResult<Vec<_>>>()?;
        let naming = self.locations.iter().filter(|l| l.like() == Some(loc.name.as_str()) && l.name != loc.name);
        for other in named.into_iter().chain(naming) {
            let unavailable = |e: EngineError| EngineError::LikeUnavailable {
                location: loc.name.clone(),
                like: other.name.clone(),
                source: Box::new(e),
            };
            if let Some(repo) = self.existing_repository(other).map_err(unavailable)? {
                return Ok(Some(repo.id_scheme()));
            }
        }
        Ok(None)
    }

    /// Whether location `name` (as `lc` configures it, added or not) can be made like the
    /// location its `like` names: its place holds no repository yet (one made there takes
    /// the other's blob ids and chunking), or holds one that has them already. Refused
    /// ([`EngineError::NotLike`]) when its repository has other ones: they cannot change.
    pub fn check_like(&self, name: &str, lc: &crate::config::LocationConfig) -> EngineResult<Likeness> {
        let candidate = Location::new(name.to_string(), lc.clone(), &self.dirs);
        let Some(like) = candidate.like() else { return Ok(Likeness::NotAsked) };
        let other = self.location(Some(like))?;
        let store = candidate.store()?;
        if !Repository::exists(store.as_ref())? {
            return Ok(Likeness::WhenMade);
        }
        let none = || Ok(None);
        let here = credentials::open(&candidate, &self.dirs, &self.credentials, MakeIfMissing::No, &none)?.repo;
        let Some(there) = self.existing_repository(other)? else {
            // The other is made later, like this one (it names none, but this one names it).
            return Ok(Likeness::OtherMadeLikeThis);
        };
        if here.id_scheme().same_chunking(&there.id_scheme()) {
            Ok(Likeness::Already)
        } else {
            Err(EngineError::NotLike { location: name.to_string(), like: like.to_string() })
        }
    }

    /// A location's repository when one is there (`None`: reachable, but no backup yet). The
    /// location answering is checked first, so an absent card is an error, not "empty".
    pub fn existing_repository(&self, loc: &Location) -> EngineResult<Option<Repository>> {
        // Opening asks the location what it holds: a separate "is there one?" would be a
        // round trip more before every listing, restore and browse of a remote location.
        match self.repository(loc, false) {
            Ok(repo) => Ok(Some(repo)),
            Err(EngineError::Repo(RepoError::NotARepository(_))) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The password of a backup file: the given password file, else `$LIFEBOAT_PASSWORD`,
    /// else asked (when someone can answer). `None` when there is none.
    pub fn backup_file_password(&self, question: &str, confirm: bool) -> EngineResult<Option<String>> {
        self.credentials.file_password(question, confirm)
    }
}
