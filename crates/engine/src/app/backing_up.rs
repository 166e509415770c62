//! Backing up, and a schedule's retention afterwards.

use std::time::Duration;

use lifeboat_repository::{PruneReport, Snapshot, SnapshotStatus};

use super::Lifeboat;
use crate::backup::{self, BackupRequest};
use crate::location::Location;
use crate::retention::{self, Candidate, Policy};
use crate::{runlog, unit, BackupInfo, Devices, EngineError, EngineResult, Progress, RunLog, Unit};

/// A backup to make.
#[derive(Debug, Clone, Default)]
pub struct BackupOrder {
    /// Units by name (none: every unit, a full backup).
    pub units: Vec<String>,
    /// The location (none: the default one).
    pub location: Option<String>,
    pub name: Option<String>,
    pub tags: Vec<String>,
    /// Nobody is there (a hook, a schedule): no repository is made where there is none, and
    /// a unit that stores no files while it had some (or, named or not optional, none of
    /// whose paths exist) fails the backup, instead of a "completed" backup of nothing.
    pub unattended: bool,
}

/// A backup made.
pub struct BackedUp {
    pub info: BackupInfo,
    pub snapshot: Snapshot,
    pub location: Location,
    /// Bytes sent to the location by this process.
    pub uploaded: u64,
    /// Each unit that failed, in words.
    pub problems: Vec<String>,
}

impl BackedUp {
    pub fn completed(&self) -> bool {
        self.snapshot.status == SnapshotStatus::Completed
    }

    /// Saved as failed: an unattended backup one of whose units stored nothing (see
    /// [`BackupOrder::unattended`]).
    pub fn failed(&self) -> bool {
        self.snapshot.status == SnapshotStatus::Failed
    }
}

/// What a schedule's retention did.
#[derive(Debug, Default)]
pub struct RetentionOutcome {
    /// Slugs of the backups removed.
    pub removed: Vec<String>,
    /// The prune that reclaimed their space, when any was removed.
    pub pruned: Option<PruneReport>,
}

/// How long a prune after retention waits for other writers.
const PRUNE_WAIT: Duration = Duration::from_secs(30 * 60);

impl Lifeboat {
    /// Refuses, before any work starts, an order that cannot be carried out: unknown units
    /// or location, a bad name or tag.
    pub fn check_backup_order(&self, order: &BackupOrder) -> EngineResult<()> {
        let all = self.units()?;
        unit::select(&all, &order.units)?;
        self.location(order.location.as_deref())?;
        if let Some(n) = &order.name {
            backup::check_name("the backup's name", n)?;
        }
        for t in &order.tags {
            backup::check_name("a tag", t)?;
        }
        Ok(())
    }

    /// Makes a backup. `log` makes the run's log once its slug is known; a run that fails
    /// before a backup is begun (the location out of reach, no key) still gets a log, under
    /// [`runlog::NOT_STARTED`], that says why.
    pub fn back_up(
        &self,
        order: BackupOrder,
        progress: &Progress,
        log: impl FnOnce(&str) -> RunLog,
    ) -> EngineResult<BackedUp> {
        // A mistyped order (an unknown unit or location) is refused as it is, not logged as a
        // failed run.
        let all = self.units()?;
        let chosen: Vec<Unit> = unit::select(&all, &order.units)?.into_iter().cloned().collect();
        let full = order.units.is_empty() || chosen.len() == all.len();
        let loc = self.location(order.location.as_deref())?;
        let begun = self
            .device_for_backup()
            .and_then(|device| Ok((device, self.repository_to_back_up(loc, order.unattended)?)));
        let begun = begun.and_then(|(device, (repo, created))| {
            let existing = repo.snapshots_listed_at_open();
            // A repository being made is settled whatever happens next.
            if let (Err(_), Some(c)) = (&existing, &created) {
                let _ = self.settle_made(loc, &repo, c);
            }
            Ok((existing?.0, repo, created, device))
        });
        let (existing, mut repo, created, device) = match begun {
            Ok(b) => b,
            Err(e) => {
                let log = log(runlog::NOT_STARTED);
                log.error(&format!("the backup was not started: {e}"));
                return Err(e);
            }
        };
        let slug = backup::slug_among(&existing);
        let log = log(&slug);
        log.info(&format!("backup {slug} of {} to location {}", unit_names(&chosen), loc.name));
        // The configuration travels with the backup (a new device is set up from it); a file
        // that cannot be read now only leaves it out.
        let configuration = self.configuration_without_secrets().ok().flatten();
        let request = |slug: String, existing| BackupRequest {
            units: chosen.iter().collect(),
            full,
            name: order.name.clone(),
            slug,
            tags: order.tags.clone(),
            safety: None,
            existing,
            device: Some(device.clone()),
            unattended: order.unattended.then_some(backup::Unattended { named: !order.units.is_empty() }),
            configuration: configuration.clone(),
        };
        let mut ran = backup::run(&repo, &self.dirs, request(slug, existing), progress, &log);
        if let Some(created) = &created {
            match self.settle_made(loc, &repo, created) {
                Ok(()) => {}
                Err(EngineError::Repo(lifeboat_repository::RepoError::AlreadyExists(_))) => {
                    // Another process made a repository there at the same moment, and nothing
                    // of this one was stored: the backup starts again in theirs.
                    log.info("another process made the repository at the same moment; backing up into theirs");
                    progress.start_over();
                    repo = self.repository(loc, false)?;
                    let existing = repo.snapshots_listed_at_open()?.0;
                    let slug = backup::slug_among(&existing);
                    ran = backup::run(&repo, &self.dirs, request(slug, existing), progress, &log);
                }
                // The making's error is the run's, unless the run had its own.
                Err(e) => ran = ran.and(Err(e)),
            }
        }
        let (id, snapshot) = ran.inspect_err(|e| {
            if progress.is_cancelled() || e.kind() == crate::ErrorKind::Interrupted {
                log.error(
                    "the backup was interrupted: no backup was saved; the data already stored is reused by the \
                     next backup",
                );
            } else {
                log.error(&format!("the backup failed: {e}"));
            }
        })?;
        let problems = snapshot
            .units
            .iter()
            .filter_map(|u| u.error.as_ref().map(|e| format!("unit {} failed: {e}", u.name)))
            .collect();
        Ok(BackedUp {
            info: BackupInfo::new(&id, &snapshot, &loc.name),
            snapshot,
            location: loc.clone(),
            uploaded: loc.traffic().map(|t| t.sent()).unwrap_or(0),
            problems,
        })
    }

    /// Removes the backups of `schedule` at `location` that its retention does not keep,
    /// then reclaims their space. Only this device's backups of that schedule are counted
    /// and removed: a schedule of the same name on another device sharing the location is
    /// another schedule. Backups of other schedules and pinned ones are kept.
    pub fn apply_retention(
        &self,
        schedule: &str,
        location: &str,
        progress: &Progress,
        log: &(dyn Fn(&str) + Sync),
    ) -> EngineResult<RetentionOutcome> {
        let Some(sc) = self.config.config.schedule.get(schedule) else { return Ok(RetentionOutcome::default()) };
        if sc.retention.is_empty() {
            return Ok(RetentionOutcome::default());
        }
        progress.set_phase("applying retention");
        let tag = schedule_tag(schedule);
        let order = ForgetOrder {
            policy: sc.retention.clone(),
            tags: vec![tag],
            dry_run: false,
            prune: true,
            devices: Devices::This,
        };
        let done = self.forget(Some(location), order, progress, log)?;
        Ok(RetentionOutcome { removed: done.removed.into_iter().map(|b| b.slug).collect(), pruned: done.pruned })
    }

    /// Removes the backups of a location that the order's rules do not keep, among those with
    /// all its tags (no tags: every backup) of the devices it names (by default this
    /// device's), then reclaims their space unless told not to. Pinned backups and the
    /// newest successful backup among those counted always stay.
    pub fn forget(
        &self,
        location: Option<&str>,
        order: ForgetOrder,
        progress: &Progress,
        log: &(dyn Fn(&str) + Sync),
    ) -> EngineResult<Forgotten> {
        if order.policy.is_empty() {
            return Err(EngineError::BadName {
                what: "backups forget".into(),
                detail: "needs at least one rule: --keep-last, --keep-within, --keep-daily, --keep-weekly or \
                         --keep-monthly"
                    .into(),
            });
        }
        let loc = self.location(location)?;
        let repo = self.repository(loc, false)?;
        let (snaps, _) = repo.snapshots()?;
        let this = self.this_device()?;
        let names = crate::device::current_names(&snaps);
        // Another device's backups are neither counted nor removed, nor protect anything.
        let snaps: Vec<_> = snaps.into_iter().filter(|(_, s)| order.devices.admits(&this, &names, s)).collect();
        let chosen = |s: &Snapshot| order.tags.iter().all(|t| s.tags.contains(t));
        let candidates: Vec<Candidate> = snaps
            .iter()
            .map(|(_, s)| Candidate {
                slug: s.slug.clone(),
                date: s.date,
                pinned: s.pinned,
                successful: s.status != SnapshotStatus::Failed,
                schedule: chosen(s).then(String::new),
            })
            .collect();
        let tz = jiff::tz::TimeZone::system();
        let removed = retention::to_remove_among(
            &order.policy,
            &candidates,
            &|c| c.schedule.is_some(),
            jiff::Timestamp::now(),
            &tz,
        );
        let mut done = Forgotten { location: loc.name.clone(), ..Default::default() };
        for (id, s) in snaps.iter().filter(|(_, s)| chosen(s)) {
            let info = BackupInfo::new(id, s, &loc.name).seen_from(&this, &names, s);
            if removed.contains(&s.slug) {
                if !order.dry_run {
                    repo.remove_snapshot(id)?;
                    log(&format!("INFO removed backup {} \"{}\" ({})", s.slug, s.name, s.date));
                }
                done.removed.push(info);
            } else {
                done.kept.push(info);
            }
        }
        done.removed.sort_by(|a, b| b.date.cmp(&a.date));
        done.kept.sort_by(|a, b| b.date.cmp(&a.date));
        if !order.dry_run && order.prune && !done.removed.is_empty() {
            progress.set_phase("reclaiming space");
            done.pruned = Some(repo.prune(PRUNE_WAIT, &|m| log(&format!("INFO prune: {m}")))?);
        }
        Ok(done)
    }
}

/// Which backups `forget` removes.
#[derive(Debug, Clone, Default)]
pub struct ForgetOrder {
    pub policy: Policy,
    /// Only backups with all of these tags are counted and removed (none: every backup).
    pub tags: Vec<String>,
    /// Say what would be removed; remove nothing.
    pub dry_run: bool,
    /// Reclaim the space of what was removed at once.
    pub prune: bool,
    /// Whose backups are counted and removed (by default this device's).
    pub devices: Devices,
}

/// What `forget` removed (or would remove) and kept, newest first.
#[derive(Debug, Default, serde::Serialize)]
pub struct Forgotten {
    pub location: String,
    pub removed: Vec<BackupInfo>,
    pub kept: Vec<BackupInfo>,
    #[serde(skip)]
    pub pruned: Option<PruneReport>,
}

fn unit_names(units: &[Unit]) -> String {
    units.iter().map(|u| u.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// The tag a schedule's backups carry, by which its retention knows them.
pub fn schedule_tag(schedule: &str) -> String {
    format!("schedule:{schedule}")
}
