//! Restoring: a backup of a location's repository, or a backup file.

use std::io::Read;
use std::path::PathBuf;

use super::{Found, Lifeboat};
use crate::backup_file::{self, FileRestoreRequest, Manifest};
use crate::restore::{self, RestoreMode, RestoreReport, RestoreRequest};
use crate::{EngineError, EngineResult, Progress, RunLog};

/// A restore to plan (`dry_run`) or run.
#[derive(Debug, Clone, Default)]
pub struct RestoreOrder {
    /// Units by name (none: every unit the backup holds).
    pub units: Vec<String>,
    /// Restore under this folder (absolute); none: in place.
    pub target: Option<PathBuf>,
    pub mode: RestoreMode,
    /// `OLD=NEW` path mappings.
    pub map_paths: Vec<(PathBuf, PathBuf)>,
    /// The home folder `~` paths land in (absolute; another user's, say); none: this user's.
    pub home: Option<PathBuf>,
    /// Only work out the plan; change nothing.
    pub dry_run: bool,
    /// In place: first back up what the restore replaces and deletes.
    pub safety_backup: bool,
    /// Create device nodes (as root only; backup files, which can carry them).
    pub devices: bool,
    /// Only these paths of the backup: files or folders, globs allowed (a pattern without
    /// `/` matches names); none: every entry of the units.
    pub paths: Vec<String>,
    /// A file whose size and date match the backup's is taken as unchanged without comparing
    /// its content (by default it is compared, so a damaged file is repaired).
    pub trust_dates: bool,
    /// In place, a backup of another device is restored only when this names its device
    /// (`--from-device`): its files replace this device's.
    pub from_device: Option<String>,
    /// In place, restore a `sqlite` unit's database even while another process has it open
    /// for writing (by default that is refused, naming the process).
    pub force: bool,
}

impl Lifeboat {
    /// Plans or runs the restore of a backup found with [`Lifeboat::find_backup`]. `log`
    /// makes the run's log (not called for a dry run).
    pub fn restore(
        &self,
        found: &Found,
        order: RestoreOrder,
        progress: &Progress,
        log: impl FnOnce(&str) -> RunLog,
    ) -> EngineResult<RestoreReport> {
        // Another device's files in place of this one's are a decision, never a default.
        let in_place = order.target.is_none() && !order.dry_run;
        if in_place && !found.this_device && !order.from_device.as_deref().is_some_and(|d| found.is_from(d)) {
            return Err(EngineError::OtherDevice { slug: found.snapshot.slug.clone(), device: found.device.clone() });
        }
        let device = self.this_device()?;
        let dirs = self.dirs_for(&order)?;
        // The safety backup and replace mode's excludes are about the files of the home
        // restored into, not this user's.
        let configured = self.units_for(&dirs)?;
        let log = if order.dry_run { RunLog::none() } else { log(&found.snapshot.slug) };
        let req = RestoreRequest {
            units: order.units,
            target: order.target,
            dry_run: order.dry_run,
            configured,
            mode: order.mode,
            map_paths: order.map_paths,
            safety_backup: order.safety_backup,
            paths: order.paths,
            trust_dates: order.trust_dates,
            device: Some(device),
            force: order.force,
        };
        restore::run(&found.repo, &found.snapshot, &dirs, &req, progress, &log)
    }

    /// Plans or runs the restore of a backup file read from `input` (named `label` in
    /// messages), with its password when its units are encrypted.
    pub fn restore_file(
        &self,
        input: impl Read,
        label: &str,
        order: RestoreOrder,
        passphrase: Option<String>,
        progress: &Progress,
        log: impl FnOnce(&str) -> RunLog,
    ) -> EngineResult<(Manifest, RestoreReport)> {
        if !order.paths.is_empty() {
            return Err(EngineError::BadName {
                what: "--path".into(),
                detail: "chooses paths of a backup in a location; a backup file is restored by units: import it first (`backups import`)".into(),
            });
        }
        let dirs = self.dirs_for(&order)?;
        // With no configuration there is nothing of this device's units to keep.
        let configured = self.units_for(&dirs).unwrap_or_default();
        let log = if order.dry_run { RunLog::none() } else { log("file") };
        let req = FileRestoreRequest {
            units: order.units,
            target: order.target,
            mode: order.mode,
            dry_run: order.dry_run,
            configured,
            passphrase,
            devices: order.devices,
            map_paths: order.map_paths,
            force: order.force,
        };
        backup_file::restore(input, label, &dirs, &req, progress, &log)
    }

    /// The restore that stopped while putting files in place, if one did: the error every
    /// restore gives until it is finished or undone, for front ends to say at once.
    pub fn interrupted_restore(&self) -> Option<EngineError> {
        use crate::restore::journal::{self, Phase};
        journal::interrupted(&self.dirs).into_iter().rfind(|j| j.phase == Phase::Committing).map(|j| {
            EngineError::InterruptedRestore { slug: j.slug, started: j.started, undo: j.safety_backup.is_some() }
        })
    }

    /// Takes up the restore that was interrupted while putting files in place (see
    /// `restore::journal`): its leftovers are removed, and the backup and order returned run
    /// it again (`undo`: restore its safety backup instead, which puts back everything it
    /// changed). Either way the journal ends here; the run made next keeps its own.
    pub fn take_interrupted_restore(&self, undo: bool) -> EngineResult<(String, RestoreOrder)> {
        use crate::restore::journal::{self, Phase};
        // Restores killed while writing changed nothing but their temporary names: gone now.
        let (writing, committing): (Vec<_>, Vec<_>) =
            journal::interrupted(&self.dirs).into_iter().partition(|j| j.phase == Phase::Writing);
        for j in writing {
            for l in j.clean() {
                tracing::warn!("{l}");
            }
            j.end(&self.dirs);
        }
        let j = committing.into_iter().next_back().ok_or(EngineError::NoInterruptedRestore)?;
        let home = Some(j.asked.home.clone());
        let taken = if undo {
            let Some(safety) = j.safety_backup.clone() else {
                return Err(EngineError::CannotUndo { slug: j.slug.clone() });
            };
            (safety, RestoreOrder { home, safety_backup: false, ..RestoreOrder::default() })
        } else {
            let a = j.asked.clone();
            let order = RestoreOrder {
                units: a.units,
                target: a.target,
                mode: a.mode,
                map_paths: a.map_paths,
                home,
                paths: a.paths,
                trust_dates: a.trust_dates,
                // What it replaced is in the first run's safety backup already.
                safety_backup: false,
                ..RestoreOrder::default()
            };
            (j.slug.clone(), order)
        };
        for l in j.clean() {
            tracing::warn!("{l}");
        }
        j.end(&self.dirs);
        Ok(taken)
    }

    /// The folders a restore works with: `~` is the home asked for. Relative folders are
    /// refused here, whoever asks: the front ends resolve them against what they know.
    fn dirs_for(&self, order: &RestoreOrder) -> EngineResult<crate::Dirs> {
        for (what, p) in [("target", &order.target), ("home", &order.home)] {
            if let Some(p) = p.as_ref().filter(|p| !p.is_absolute()) {
                return Err(EngineError::BadName {
                    what: format!("the {what} {}", p.display()),
                    detail: "is relative: give an absolute path".into(),
                });
            }
        }
        let mut dirs = self.dirs.clone();
        if let Some(h) = &order.home {
            dirs.home = h.clone();
        }
        Ok(dirs)
    }
}
