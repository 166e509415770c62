//! Keeping a repository healthy and its keys in order: check, repair, prune, unlock, keys,
//! and the estimate of a backup before it is made.

use std::time::Duration;

use lifeboat_repository::{
    CheckOptions, CheckReport, KeyInfo, KeyKind, PruneReport, RecoveryKey, RepairReport, Repository, Secret,
};

use super::Lifeboat;
use crate::estimate::{self, UnitEstimate};
use crate::location::Location;
use crate::{unit, EngineResult, Progress};

/// How long a prune waits for running backups.
const PRUNE_WAIT: Duration = Duration::from_secs(30 * 60);

impl Lifeboat {
    fn opened(&self, location: Option<&str>) -> EngineResult<(&Location, Repository)> {
        let loc = self.location(location)?;
        Ok((loc, self.repository(loc, false)?))
    }

    /// Checks a location's repository (with `read_data`, every byte).
    pub fn check(
        &self,
        location: Option<&str>,
        read_data: bool,
        progress: &(dyn Fn(&str) + Sync),
    ) -> EngineResult<CheckReport> {
        Ok(self.opened(location)?.1.check(CheckOptions { read_data }, progress)?)
    }

    /// Repairs what the repository itself can, then checks every byte of what is left.
    pub fn repair(
        &self,
        location: Option<&str>,
        progress: &(dyn Fn(&str) + Sync),
    ) -> EngineResult<(RepairReport, CheckReport)> {
        let (_, repo) = self.opened(location)?;
        let repaired = repo.repair(progress)?;
        // After a repair, every byte is read: what is left damaged must be named.
        let checked = repo.check(CheckOptions { read_data: true }, progress)?;
        Ok((repaired, checked))
    }

    /// Reclaims the space of removed backups.
    pub fn prune(&self, location: Option<&str>, progress: &dyn Fn(&str)) -> EngineResult<(&Location, PruneReport)> {
        let (loc, repo) = self.opened(location)?;
        Ok((loc, repo.prune(PRUNE_WAIT, progress)?))
    }

    /// Removes the locks of processes that died; how many.
    pub fn unlock(&self, location: Option<&str>) -> EngineResult<(&Location, usize)> {
        let (loc, repo) = self.opened(location)?;
        Ok((loc, repo.remove_stale_locks()?))
    }

    pub fn keys(&self, location: Option<&str>) -> EngineResult<Vec<KeyInfo>> {
        Ok(self.opened(location)?.1.keys()?)
    }

    /// Adds a password that opens the repository.
    pub fn add_key(&self, location: Option<&str>, password: &str, label: &str) -> EngineResult<KeyInfo> {
        Ok(self.opened(location)?.1.add_key(&Secret::new(password), KeyKind::Password, label)?)
    }

    /// Whether schedules and hooks (nobody to ask, no password given) can open the location's
    /// repository: see [`crate::credentials::opens_unattended`].
    pub fn opens_unattended(&self, location: Option<&str>) -> EngineResult<crate::credentials::UnattendedOpen> {
        crate::credentials::opens_unattended(self.location(location)?, &self.dirs)
    }

    /// Adds a key kept on this device (a device key slot and its file), so that schedules and
    /// hooks open a password-protected repository unattended. Returns the slot and the file.
    pub fn add_device_key(&self, location: Option<&str>, label: &str) -> EngineResult<(KeyInfo, std::path::PathBuf)> {
        let (loc, repo) = self.opened(location)?;
        let label = if label.is_empty() { "this device, for unattended backups" } else { label };
        crate::credentials::add_device_key(&repo, loc, &self.dirs, label)
    }

    /// Removes a key by (a prefix of) its id; never the last one.
    pub fn remove_key(&self, location: Option<&str>, id_prefix: &str) -> EngineResult<KeyInfo> {
        Ok(self.opened(location)?.1.remove_key(id_prefix)?)
    }

    /// The repository's recovery key (it opens the repository without any password).
    pub fn recovery_key(&self, location: Option<&str>) -> EngineResult<(&Location, RecoveryKey)> {
        let (loc, repo) = self.opened(location)?;
        Ok((loc, repo.recovery_key()?))
    }

    /// What a backup of these units (none: all) would read and add, against the location's
    /// repository when it has one.
    pub fn estimate(
        &self,
        units: &[String],
        location: Option<&str>,
        progress: &Progress,
    ) -> EngineResult<(&Location, Vec<UnitEstimate>)> {
        let all = self.units()?;
        let chosen = unit::select(&all, units)?;
        let loc = self.location(location)?;
        // An unreachable location does not stop an estimate (everything then counts as new);
        // a repository there that does not open does.
        let there = loc.store().and_then(|s| Ok(Repository::exists(s.as_ref())?));
        let repo = match there {
            Ok(true) => Some(self.repository(loc, false)?),
            _ => None,
        };
        Ok((loc, estimate::estimate(repo.as_ref(), &self.dirs, &chosen, progress)?))
    }
}
