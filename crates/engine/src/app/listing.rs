//! Listing backups over every location, finding one, pinning and removing it.

use lifeboat_repository::{Id, RepoError, Repository, Snapshot};

use super::Lifeboat;
use crate::device::current_names;
use crate::location::Location;
use crate::{BackupInfo, Device, Devices, EngineError, EngineResult};

/// The backups of the locations asked for, newest first.
pub struct Listing {
    pub backups: Vec<BackupInfo>,
    /// Locations that could not be read (a card not inserted, a server down): the others'
    /// backups are still listed.
    pub unavailable: Vec<Unavailable>,
    /// Backups that are there but cannot be read.
    pub unreadable: Vec<Unreadable>,
    /// How many locations were asked.
    pub asked: usize,
}

pub struct Unavailable {
    pub location: String,
    pub error: EngineError,
}

pub struct Unreadable {
    pub location: String,
    pub name: String,
    pub error: RepoError,
}

/// A backup, where it is, and its repository.
pub struct Found {
    pub location: Location,
    pub repo: Repository,
    pub id: Id,
    pub snapshot: Snapshot,
    /// The name of the device that made it, as this device sees it (its newest name).
    pub device: String,
    /// Whether this device made it.
    pub this_device: bool,
}

impl Found {
    pub fn info(&self) -> BackupInfo {
        let mut info = BackupInfo::new(&self.id, &self.snapshot, &self.location.name);
        info.device = self.device.clone();
        info.this_device = self.this_device;
        info
    }

    /// Everything about it, with its log when this device made it.
    pub fn details(&self, logs: &std::path::Path) -> crate::catalog::BackupDetails {
        let mut details = crate::catalog::BackupDetails::new(&self.id, &self.snapshot, &self.location.name, logs);
        details.info.device = self.device.clone();
        details.info.this_device = self.this_device;
        details
    }

    /// Whether `from_device` (a restore's `--from-device`) names its device: by the name it
    /// is shown with, the name it recorded, or its id.
    pub fn is_from(&self, from_device: &str) -> bool {
        from_device == self.device
            || from_device == self.snapshot.device_name()
            || self.snapshot.device_id.as_deref() == Some(from_device)
    }
}

/// How a backup is looked for (see [`Lifeboat::pick_backup`]).
#[derive(Debug, Clone, Default)]
pub struct Pick {
    /// Only in this location (none: wherever it is, the default location first).
    pub location: Option<String>,
    /// Never in this location (the destination of a copy).
    pub except: Option<String>,
    /// Among these devices' backups (`--device`, `--all-devices`). None: `latest` is this
    /// device's newest, and a slug, prefix or name may be any device's.
    pub devices: Option<Devices>,
    /// The command changes something (remove, restore, export, pin): a backup found in
    /// several locations is refused until one is named, rather than one taken silently.
    pub acting: bool,
}

impl Lifeboat {
    /// This device: its id (none before its first backup made one) and its name
    /// (`device_name`, else the host name).
    pub fn this_device(&self) -> EngineResult<Device> {
        Ok(Device {
            id: crate::device::read_id(&self.dirs.config)?,
            name: self.config.config.device_name.clone().unwrap_or_else(crate::host),
            host: crate::host(),
        })
    }

    /// This device, its id made now if it has none yet (a backup records it).
    pub(crate) fn device_for_backup(&self) -> EngineResult<Device> {
        let id = crate::device::make_id(&self.dirs.config)?;
        Ok(Device { id: Some(id), ..self.this_device()? })
    }

    /// The backups of one location (`Some`), or of every location, newest first, of the
    /// devices asked for.
    pub fn list_backups(&self, location: Option<&str>, devices: &Devices) -> EngineResult<Listing> {
        let this = self.this_device()?;
        let locations: Vec<&Location> = match location {
            Some(name) => vec![self.location(Some(name))?],
            None => self.locations().iter().collect(),
        };
        let mut listing =
            Listing { backups: Vec::new(), unavailable: Vec::new(), unreadable: Vec::new(), asked: locations.len() };
        for loc in locations {
            let listed = (|| -> EngineResult<Option<_>> {
                let Some(repo) = self.existing_repository(loc)? else { return Ok(None) };
                Ok(Some(repo.snapshots_listed_at_open()?))
            })();
            match listed {
                Ok(Some((snaps, bad))) => {
                    let names = current_names(&snaps);
                    listing.backups.extend(
                        snaps
                            .iter()
                            .filter(|(_, s)| devices.admits(&this, &names, s))
                            .map(|(id, s)| BackupInfo::new(id, s, &loc.name).seen_from(&this, &names, s)),
                    );
                    listing.unreadable.extend(bad.into_iter().map(|(name, error)| Unreadable {
                        location: loc.name.clone(),
                        name,
                        error,
                    }));
                }
                Ok(None) => {}
                Err(error) => listing.unavailable.push(Unavailable { location: loc.name.clone(), error }),
            }
        }
        listing.backups.sort_by(|a, b| b.date.cmp(&a.date));
        Ok(listing)
    }

    /// The backup a slug (or a unique prefix of one, a name, or `latest`: this device's
    /// newest) names: in the named location, else in the default one, else in the first other
    /// location holding it (`backups list` shows every location, so a slug from it works
    /// without saying where it lives). `except` leaves a location out (the destination of a
    /// copy). For reading; a command that changes something uses [`Lifeboat::pick_backup`].
    pub fn find_backup(&self, slug: &str, location: Option<&str>, except: Option<&str>) -> EngineResult<Found> {
        let pick =
            Pick { location: location.map(str::to_string), except: except.map(str::to_string), ..Pick::default() };
        self.pick_backup(slug, &pick)
    }

    /// The backup a slug, a unique prefix of one, a name or `latest` names, looked for as
    /// `pick` says. This is the one resolver of what a person names: every front end and
    /// every command comes here.
    pub fn pick_backup(&self, slug: &str, pick: &Pick) -> EngineResult<Found> {
        let this = self.this_device()?;
        let devices = pick.devices.clone().unwrap_or_default();
        let filtered = pick.devices.is_some() || slug == "latest";
        let find = |loc: &Location, repo: Repository| -> EngineResult<Found> {
            let names = match &devices {
                Devices::Named(_) if filtered => current_names(&repo.snapshots()?.0),
                _ => Default::default(),
            };
            let (id, snapshot) = repo.find_snapshot_among(slug, &|s| !filtered || devices.admits(&this, &names, s))?;
            let names = if names.is_empty() && snapshot.device_id.is_some() && !this.owns(&snapshot) {
                current_names(&repo.snapshots_listed_at_open()?.0)
            } else {
                names
            };
            Ok(Found {
                device: this.name_of(&names, &snapshot).to_string(),
                this_device: this.owns(&snapshot),
                location: loc.clone(),
                repo,
                id,
                snapshot,
            })
        };
        if let Some(name) = &pick.location {
            let loc = self.location(Some(name))?;
            let repo = self.repository(loc, false)?;
            return find(loc, repo);
        }
        let mut order: Vec<&Location> =
            self.locations().iter().filter(|l| Some(l.name.as_str()) != pick.except.as_deref()).collect();
        order.sort_by_key(|l| l.name != self.default_location_name());
        // A command that changes something looks in every location: the same backup in two
        // (a copy) is for the person to choose, not for the order of the locations.
        let every = pick.acting && slug != "latest";
        let mut held: Vec<Found> = Vec::new();
        // What the default location said, when it could not answer: a better reason than
        // "no location holds it" when nothing else does.
        let mut first_error: Option<EngineError> = None;
        for loc in order {
            let repo = match self.existing_repository(loc) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            match find(loc, repo) {
                Ok(found) if !every => return Ok(found),
                Ok(found) => held.push(found),
                Err(EngineError::Repo(RepoError::NoSuchSnapshot(_))) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match held.len() {
            0 => Err(first_error.unwrap_or(EngineError::NotHeld { slug: slug.to_string() })),
            1 => Ok(held.remove(0)),
            _ => Err(EngineError::InSeveralLocations {
                slug: slug.to_string(),
                locations: held.iter().map(|f| f.location.name.as_str()).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// Pins a backup (retention never removes it) or unpins it.
    pub fn pin(&self, found: &Found, pinned: bool) -> EngineResult<BackupInfo> {
        let mut snap = found.snapshot.clone();
        snap.pinned = pinned;
        let new = found.repo.replace_snapshot(&found.id, &snap)?;
        let mut info = BackupInfo::new(&new, &snap, &found.location.name);
        info.device = found.device.clone();
        info.this_device = found.this_device;
        Ok(info)
    }

    /// Removes a backup; its space is reclaimed by the next prune.
    pub fn remove(&self, found: &Found) -> EngineResult<()> {
        Ok(found.repo.remove_snapshot(&found.id)?)
    }
}
