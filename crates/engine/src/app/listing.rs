//! Listing backups over every location, finding one, pinning and removing it.

use lifeboat_repository::{Id, RepoError, Repository, Snapshot};

use super::Lifeboat;
use crate::location::Location;
use crate::{BackupInfo, EngineError, EngineResult};

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
}

impl Found {
    pub fn info(&self) -> BackupInfo {
        BackupInfo::new(&self.id, &self.snapshot, &self.location.name)
    }

    /// Everything about it, with its log when this device made it.
    pub fn details(&self, logs: &std::path::Path) -> crate::catalog::BackupDetails {
        crate::catalog::BackupDetails::new(&self.id, &self.snapshot, &self.location.name, logs)
    }
}

impl Lifeboat {
    /// The backups of one location (`Some`), or of every location, newest first; with
    /// `host`, only those made on that device.
    pub fn list_backups(&self, location: Option<&str>, host: Option<&str>) -> EngineResult<Listing> {
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
                    listing.backups.extend(
                        snaps
                            .iter()
                            .filter(|(_, s)| host.is_none_or(|h| s.host == h))
                            .map(|(id, s)| BackupInfo::new(id, s, &loc.name)),
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

    /// The backup a slug (or a unique prefix of one) names: in the named location, else in
    /// the default one, else in the first other location holding it (`backups list` shows
    /// every location, so a slug from it works without saying where it lives). `except`
    /// leaves a location out (the destination of a copy).
    pub fn find_backup(&self, slug: &str, location: Option<&str>, except: Option<&str>) -> EngineResult<Found> {
        if let Some(name) = location {
            let loc = self.location(Some(name))?;
            let repo = self.repository(loc, false)?;
            let (id, snapshot) = repo.find_snapshot(slug)?;
            return Ok(Found { location: loc.clone(), repo, id, snapshot });
        }
        let mut order: Vec<&Location> = self.locations().iter().filter(|l| Some(l.name.as_str()) != except).collect();
        order.sort_by_key(|l| l.name != self.default_location_name());
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
            match repo.find_snapshot(slug) {
                Ok((id, snapshot)) => return Ok(Found { location: loc.clone(), repo, id, snapshot }),
                Err(RepoError::NoSuchSnapshot(_)) => {}
                Err(e) => {
                    first_error.get_or_insert(e.into());
                }
            }
        }
        Err(first_error.unwrap_or(EngineError::NotHeld { slug: slug.to_string() }))
    }

    /// Pins a backup (retention never removes it) or unpins it.
    pub fn pin(&self, found: &Found, pinned: bool) -> EngineResult<BackupInfo> {
        let mut snap = found.snapshot.clone();
        snap.pinned = pinned;
        let new = found.repo.replace_snapshot(&found.id, &snap)?;
        Ok(BackupInfo::new(&new, &snap, &found.location.name))
    }

    /// Removes a backup; its space is reclaimed by the next prune.
    pub fn remove(&self, found: &Found) -> EngineResult<()> {
        Ok(found.repo.remove_snapshot(&found.id)?)
    }
}
