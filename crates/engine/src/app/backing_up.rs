//! Backing up, and a schedule's retention afterwards.

use std::time::Duration;

use lifeboat_repository::{PruneReport, Snapshot, SnapshotStatus};

use super::Lifeboat;
use crate::backup::{self, BackupRequest};
use crate::location::Location;
use crate::retention::{self, Candidate};
use crate::{unit, BackupInfo, EngineResult, Progress, RunLog};

/// A backup to make.
#[derive(Debug, Clone, Default)]
pub struct BackupOrder {
    /// Units by name (none: every unit, a full backup).
    pub units: Vec<String>,
    /// The location (none: the default one).
    pub location: Option<String>,
    pub name: Option<String>,
    pub tags: Vec<String>,
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

    /// Makes a backup. `log` makes the run's log once its slug is known.
    pub fn back_up(
        &self,
        order: BackupOrder,
        progress: &Progress,
        log: impl FnOnce(&str) -> RunLog,
    ) -> EngineResult<BackedUp> {
        let all = self.units()?;
        let chosen = unit::select(&all, &order.units)?;
        let full = order.units.is_empty() || chosen.len() == all.len();
        let loc = self.location(order.location.as_deref())?;
        let repo = self.repository(loc, true)?;
        let slug = backup::new_slug(&repo)?;
        let log = log(&slug);
        let req = BackupRequest { units: chosen, full, name: order.name, slug, tags: order.tags, safety: None };
        let (id, snapshot) = backup::run(&repo, &self.dirs, req, progress, &log)?;
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
    /// then reclaims their space. Backups of other schedules and pinned ones are kept.
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
        let repo = self.repository(self.location(Some(location))?, false)?;
        let (snaps, _) = repo.snapshots()?;
        let tag = schedule_tag(schedule);
        let candidates: Vec<Candidate> = snaps
            .iter()
            .map(|(_, s)| Candidate {
                slug: s.slug.clone(),
                date: s.date,
                pinned: s.pinned,
                successful: s.status != SnapshotStatus::Failed,
                schedule: s.tags.iter().find(|t| **t == tag).map(|_| schedule.to_string()),
            })
            .collect();
        let tz = jiff::tz::TimeZone::system();
        let removed = retention::to_remove(&sc.retention, schedule, &candidates, jiff::Timestamp::now(), &tz);
        if removed.is_empty() {
            return Ok(RetentionOutcome::default());
        }
        for slug in &removed {
            if let Some((id, _)) = snaps.iter().find(|(_, s)| &s.slug == slug) {
                repo.remove_snapshot(id)?;
            }
        }
        progress.set_phase("reclaiming space");
        let pruned = repo.prune(PRUNE_WAIT, &|m| log(&format!("INFO prune: {m}")))?;
        Ok(RetentionOutcome { removed, pruned: Some(pruned) })
    }
}

/// The tag a schedule's backups carry, by which its retention knows them.
pub fn schedule_tag(schedule: &str) -> String {
    format!("schedule:{schedule}")
}
