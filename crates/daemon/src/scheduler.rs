//! The scheduler: starts each enabled schedule's backups when due, after checking its
//! conditions (a run whose condition fails is skipped and the reason recorded); raises
//! "stale" when a scheduled location has had no successful backup for too long and "stuck"
//! when a job makes no progress. Decisions take the clock as an argument.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use lifeboat_engine::schedule::{Condition, ScheduleConfig};
use lifeboat_repository::{Repository, SnapshotStatus};
use serde::Serialize;

use crate::conditions::Situation;
use crate::events::{kind, About};
use crate::state::Shared;
use crate::work::{self, BackupSpec};

/// How often the scheduler looks.
pub const TICK: Duration = Duration::from_secs(20);
/// How often a stale location is reported again.
const STALE_REPEAT_HOURS: i64 = 24;

/// What a schedule's run did at one location.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub location: String,
    /// The backup job started, or none when skipped.
    pub job: Option<u64>,
    /// Why it was skipped.
    pub skipped: Option<String>,
}

/// Starts the schedules that are due at `now`.
pub fn tick(d: &Shared, now: Timestamp, tz: &TimeZone) {
    let config = d.config().config;
    for (name, sc) in config.schedule.iter().filter(|(_, s)| s.enabled) {
        let Ok(cadence) = sc.cadence() else { continue };
        let last = match d.events.last_run(name).and_then(|l| Ok(l.or(d.events.first_seen(name)?))) {
            Ok(Some(t)) => t,
            Ok(None) => {
                // First seen now: its first run is its next time, not a catch-up. This is not a
                // run, so the schedule's last run stays unknown.
                let _ = d.events.set_first_seen(name, now);
                continue;
            }
            Err(e) => {
                tracing::error!("{e}");
                continue;
            }
        };
        if cadence.due(last, now, tz) {
            let _ = d.events.set_last_run(name, now);
            run_schedule(d, name, sc, &Situation::now());
        }
    }
}

/// Runs a schedule now: at each of its locations, a backup job, or a skip with its reason.
pub fn run_schedule(d: &Shared, name: &str, sc: &ScheduleConfig, situation: &Situation) -> Vec<Decision> {
    let locations =
        if sc.locations.is_empty() { vec![d.app().default_location_name().to_string()] } else { sc.locations.clone() };
    let mut out = Vec::new();
    for loc in locations {
        let mut reason = sc.when.iter().find_map(|c| situation.refuses(*c));
        if reason.is_none() && sc.when.contains(&Condition::Reachable) {
            reason = unreachable(d, &loc);
        }
        if let Some(why) = reason {
            d.event(
                kind::BACKUP_SKIPPED,
                "warning",
                &format!("schedule {name}: backup to {loc} skipped: {why}"),
                About { schedule: Some(name.into()), location: Some(loc.clone()), ..Default::default() },
            );
            out.push(Decision { location: loc, job: None, skipped: Some(why) });
            continue;
        }
        let spec = BackupSpec {
            units: sc.units.clone(),
            location: Some(loc.clone()),
            name: None,
            schedule: Some(name.into()),
        };
        let job = submit_backup(d, spec);
        out.push(Decision { location: loc, job: Some(job), skipped: None });
    }
    out
}

/// Starts a backup job; returns its id.
pub fn submit_backup(d: &Shared, spec: BackupSpec) -> u64 {
    let loc = spec.location.clone().unwrap_or_else(|| d.app().default_location_name().to_string());
    let spec = BackupSpec { location: Some(loc.clone()), ..spec };
    let d2 = d.clone();
    let job = d.jobs.submit(
        "backup",
        Some(loc),
        work::describe_backup(&spec),
        Box::new(move |j| work::backup(&d2, j, &spec)),
    );
    job.id
}

/// Why a location cannot be used now, or `None` when it answers.
fn unreachable(d: &Shared, name: &str) -> Option<String> {
    let app = d.app();
    let loc = match app.location(Some(name)) {
        Ok(l) => l,
        Err(e) => return Some(e.to_string()),
    };
    match loc.store().and_then(|s| Ok(Repository::exists(s.as_ref())?)) {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

/// Raises "stale" for each location of an enabled schedule whose newest successful backup is
/// older than `stale_after` days (or that has none), at most once a day per location.
pub fn check_stale(d: &Shared, now: Timestamp) {
    let days = d.config().config.daemon.stale_after;
    for Stale { location: name, why } in stale_locations(d, now) {
        let reported = d.events.stale_reported(&name).ok().flatten();
        let repeat = now.checked_sub(STALE_REPEAT_HOURS.hours()).unwrap_or(Timestamp::MIN);
        if reported.is_some_and(|r| r > repeat) {
            continue;
        }
        let _ = d.events.set_stale_reported(&name, Some(now));
        d.event(
            kind::STALE,
            "warning",
            &format!("location {name} has had no successful backup for over {days} days: {why}"),
            About { location: Some(name.clone()), ..Default::default() },
        );
    }
}

/// A location an enabled schedule backs up to, whose newest successful backup is too old.
#[derive(Debug, Clone, Serialize)]
pub struct Stale {
    pub location: String,
    /// Why, in words: when the last one finished, or that there is none.
    pub why: String,
}

pub fn stale_locations(d: &Shared, now: Timestamp) -> Vec<Stale> {
    let config = d.config().config;
    let default = d.app().default_location_name().to_string();
    let watched: BTreeSet<String> = config
        .schedule
        .values()
        .filter(|s| s.enabled)
        .flat_map(|s| if s.locations.is_empty() { vec![default.clone()] } else { s.locations.clone() })
        .collect();
    let limit = now.checked_sub((config.daemon.stale_after as i64 * 24).hours()).unwrap_or(Timestamp::MIN);
    let mut stale = Vec::new();
    let app = d.app();
    for name in watched {
        let newest = app.location(Some(&name)).and_then(|loc| {
            let Some(repo) = app.existing_repository(loc)? else { return Ok(None) };
            let (snaps, _) = repo.snapshots()?;
            // Another device's backups there do not make this one's fresh.
            let this = app.this_device()?;
            let mine = snaps.iter().filter(|(_, s)| s.status != SnapshotStatus::Failed && this.owns(s));
            Ok(mine.map(|(_, s)| s.finished).max())
        });
        // A location out of reach now (a card taken out) is not thereby without backups: the
        // history of this device says when one last succeeded there.
        let recorded = || d.events.last_success(&name).ok().flatten();
        let why = match newest {
            Ok(Some(t)) if t >= limit => continue,
            Err(_) if recorded().is_some_and(|t| t >= limit) => continue,
            Ok(Some(t)) => format!("the last successful backup finished {t}"),
            Ok(None) => "there is no successful backup there yet".to_string(),
            Err(e) => format!("no successful backup can be found there ({e})"),
        };
        stale.push(Stale { location: name, why });
    }
    stale
}

/// Raises "stuck" once for each job with no progress for `stuck_after` minutes.
pub fn check_stuck(d: &Shared) {
    let limit = Duration::from_secs(d.config().config.daemon.stuck_after as u64 * 60);
    for job in d.jobs.list() {
        if job.newly_stuck(limit) {
            d.event(
                kind::STUCK,
                "warning",
                &format!(
                    "job {} ({}) has made no progress for {} minutes: cancel it or look at its log",
                    job.id,
                    job.description,
                    limit.as_secs() / 60
                ),
                About { location: job.location.clone(), job: Some(job.id), ..Default::default() },
            );
        }
    }
}

/// The scheduler's loop, until `stop` turns true.
pub async fn run(d: Shared, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut last_stale = Timestamp::MIN;
    loop {
        let d2 = d.clone();
        let stale_due = Timestamp::now().checked_sub(1.hour()).is_ok_and(|t| t >= last_stale);
        if stale_due {
            last_stale = Timestamp::now();
        }
        let _ = tokio::task::spawn_blocking(move || {
            let now = Timestamp::now();
            tick(&d2, now, &TimeZone::system());
            if stale_due {
                check_stale(&d2, now);
            }
            check_stuck(&d2);
        })
        .await;
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => return,
        }
    }
}
