//! The scheduler: starts each enabled schedule's backups when due, after checking its
//! conditions (a run whose condition fails is skipped and the reason recorded); raises
//! "stale" when a scheduled location has had no successful backup for too long and "stuck"
//! when a job makes no progress. Decisions take the clock as an argument.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use lifeboat_engine::schedule::{Cadence, Condition, ScheduleConfig};
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

/// Starts the schedules that are due at `now`, then tries again the skipped runs whose
/// conditions hold now (while their period lasts). `situation` is asked only when a condition
/// is to be checked.
pub fn tick(d: &Shared, now: Timestamp, tz: &TimeZone, situation: &dyn Fn() -> Situation) {
    let config = d.config().config;
    let mut seen = None;
    let mut situation = || seen.get_or_insert_with(situation).clone();
    for (name, sc) in config.schedule.iter().filter(|(_, s)| s.enabled) {
        let Ok(cadence) = sc.cadence() else { continue };
        let last = match anchor(d, name) {
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
            let _ = d.events.set_handled(name, now);
            run_schedule(d, name, sc, &situation(), now);
        }
    }
    retry_skipped(d, now, tz, &mut situation);
}

/// When the schedule's cadence counts from: its newest run dealt with (ran or skipped), else
/// when it was first seen.
pub(crate) fn anchor(d: &Shared, name: &str) -> Result<Option<Timestamp>, crate::events::EventsError> {
    let handled = d.events.handled(name)?;
    let ran = d.events.last_run(name)?;
    Ok(match handled.max(ran) {
        Some(t) => Some(t),
        None => d.events.first_seen(name)?,
    })
}

/// Starts each skipped run whose conditions hold now, as long as its schedule's next run has
/// not come (then that run is the one to make); forgets the others.
fn retry_skipped(d: &Shared, now: Timestamp, tz: &TimeZone, situation: &mut dyn FnMut() -> Situation) {
    let Ok(pending) = d.events.pending() else { return };
    let config = d.config().config;
    let default = d.app().default_location_name().to_string();
    for p in pending {
        let sc = config.schedule.get(&p.schedule).filter(|s| s.enabled);
        let live = sc.and_then(|sc| {
            let cadence = sc.cadence().ok()?;
            let here = if sc.locations.is_empty() { p.location == default } else { sc.locations.contains(&p.location) };
            (here && cadence.next_after(p.since, tz) > now).then_some(sc)
        });
        let Some(sc) = live else {
            let _ = d.events.set_pending(&p.schedule, &p.location, None);
            continue;
        };
        if refusal(d, sc, &p.location, &situation()).is_some() {
            continue;
        }
        let _ = d.events.set_pending(&p.schedule, &p.location, None);
        tracing::info!(
            "schedule {}: backup to {} skipped ({}) runs now that its conditions hold",
            p.schedule,
            p.location,
            p.reason
        );
        let _ = d.events.set_last_run(&p.schedule, now);
        submit_backup(d, spec_of(&p.schedule, sc, &p.location));
    }
}

/// Why `sc` cannot run at `loc` now, or `None` when its conditions hold.
fn refusal(d: &Shared, sc: &ScheduleConfig, loc: &str, situation: &Situation) -> Option<String> {
    let reason = sc.when.iter().find_map(|c| situation.refuses(*c));
    if reason.is_none() && sc.when.contains(&Condition::Reachable) {
        return unreachable(d, loc);
    }
    reason
}

fn spec_of(name: &str, sc: &ScheduleConfig, loc: &str) -> BackupSpec {
    BackupSpec { units: sc.units.clone(), location: Some(loc.to_string()), name: None, schedule: Some(name.into()) }
}

/// Runs a schedule now: at each of its locations, a backup job, or a skip with its reason
/// (kept, to be tried again when the conditions hold). The schedule's last run is `now` when
/// a backup started.
pub fn run_schedule(
    d: &Shared,
    name: &str,
    sc: &ScheduleConfig,
    situation: &Situation,
    now: Timestamp,
) -> Vec<Decision> {
    let locations =
        if sc.locations.is_empty() { vec![d.app().default_location_name().to_string()] } else { sc.locations.clone() };
    let mut out = Vec::new();
    for loc in locations {
        if let Some(why) = refusal(d, sc, &loc, situation) {
            d.event(
                kind::BACKUP_SKIPPED,
                "warning",
                &format!("schedule {name}: backup to {loc} skipped: {why}"),
                About { schedule: Some(name.into()), location: Some(loc.clone()), ..Default::default() },
            );
            let _ = d.events.set_pending(name, &loc, Some((now, &why)));
            out.push(Decision { location: loc, job: None, skipped: Some(why) });
            continue;
        }
        let _ = d.events.set_pending(name, &loc, None);
        let _ = d.events.set_last_run(name, now);
        let job = submit_backup(d, spec_of(name, sc, &loc));
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
/// older than the schedule's period plus `stale_after` days (or that has none), at most once
/// a day per location.
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
            &format!(
                "location {name} has had no successful backup for longer than its schedule's period plus {days} days: {why}"
            ),
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

/// The longest time between two runs of a cadence (a few of its next runs after `now`).
fn period(cadence: &Cadence, now: Timestamp, tz: &TimeZone) -> jiff::SignedDuration {
    let mut at = cadence.next_after(now, tz);
    let mut longest = jiff::SignedDuration::ZERO;
    for _ in 0..4 {
        let next = cadence.next_after(at, tz);
        if next == Timestamp::MAX {
            break;
        }
        longest = longest.max(next.duration_since(at));
        at = next;
    }
    longest
}

pub fn stale_locations(d: &Shared, now: Timestamp) -> Vec<Stale> {
    let config = d.config().config;
    let default = d.app().default_location_name().to_string();
    let tz = TimeZone::system();
    // Each watched location with the shortest period of the schedules backing up there.
    let mut watched: BTreeMap<String, jiff::SignedDuration> = BTreeMap::new();
    for sc in config.schedule.values().filter(|s| s.enabled) {
        let p = sc.cadence().map(|c| period(&c, now, &tz)).unwrap_or(jiff::SignedDuration::ZERO);
        for loc in if sc.locations.is_empty() { vec![default.clone()] } else { sc.locations.clone() } {
            let e = watched.entry(loc).or_insert(p);
            *e = (*e).min(p);
        }
    }
    let grace = jiff::SignedDuration::from_hours(config.daemon.stale_after as i64 * 24);
    let mut stale = Vec::new();
    let app = d.app();
    for (name, period) in watched {
        let limit = now.checked_sub(period.saturating_add(grace)).unwrap_or(Timestamp::MIN);
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
        let recorded = d.events.last_success(&name).ok().flatten();
        let found = newest.as_ref().ok().copied().flatten();
        let why = match (found.max(recorded), newest) {
            (Some(t), _) if t >= limit => continue,
            (Some(t), _) => format!("the last successful backup finished {t}"),
            (None, Ok(_)) => "there is no successful backup there yet".to_string(),
            (None, Err(e)) => format!("no successful backup can be found there ({e})"),
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
            tick(&d2, now, &TimeZone::system(), &Situation::now);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use lifeboat_engine::{Dirs, LoadedConfig};

    use super::*;
    use crate::events::Events;
    use crate::state::Daemon;

    fn daemon(dir: &std::path::Path, config: &str) -> Shared {
        let dirs = Dirs {
            home: dir.into(),
            config: dir.join("c"),
            data: dir.join("d"),
            logs: dir.join("l"),
            cache: None,
            root: false,
        };
        let f = dir.join("lifeboat.toml");
        std::fs::write(&f, config).unwrap();
        let loaded = LoadedConfig::load(Some(&f), &dirs).unwrap();
        let events = Events::open(&dir.join("events.sqlite")).unwrap();
        Arc::new(Daemon::new(dirs, Some(f), loaded, None, events, String::new()))
    }

    fn at(t: &str) -> Timestamp {
        t.parse().unwrap()
    }

    /// Off Wi-Fi at 03:00 the nightly run is skipped, with why, and it is not its last run;
    /// on Wi-Fi at 03:20 it runs, without waiting for tomorrow's 03:00.
    #[test]
    fn a_run_skipped_off_wifi_runs_when_wifi_is_back_the_same_day() {
        let dir = tempfile::tempdir().unwrap();
        let d = daemon(
            dir.path(),
            &format!(
                "[location.here]\ntype = \"local\"\npath = \"{}\"\n\n[unit.docs]\npaths = [\"~/docs\"]\n\n[schedule.nightly]\nevery = \"day\"\nat = \"03:00\"\nlocations = [\"here\"]\nwhen = [\"wifi\"]\n",
                dir.path().join("repo").display()
            ),
        );
        let tz = TimeZone::UTC;
        let off = || Situation { wifi: false, ethernet: false, metered: None, mains: true };
        let on = || Situation { wifi: true, ..off() };
        let backups = || d.jobs.list().into_iter().filter(|j| j.kind == "backup").count();

        tick(&d, at("2026-12-06T12:00:00Z"), &tz, &off);
        tick(&d, at("2026-12-07T03:00:10Z"), &tz, &off);
        assert_eq!(backups(), 0);
        assert_eq!(d.events.last_run("nightly").unwrap(), None, "a skipped run is not the last run");
        let skipped = d.events.list(10, Some(kind::BACKUP_SKIPPED)).unwrap();
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].message.contains("not connected to Wi-Fi"), "{:?}", skipped[0]);
        let view = crate::schedules::list(&d);
        assert_eq!(view[0].last_run, None);
        assert_eq!(view[0].last_outcome.as_ref().map(|e| e.kind.as_str()), Some(kind::BACKUP_SKIPPED));
        assert_eq!(view[0].waiting.len(), 1, "waiting for Wi-Fi");
        assert_eq!(view[0].waiting[0].reason, "not connected to Wi-Fi");

        // Still off: it waits, saying nothing more.
        tick(&d, at("2026-12-07T03:10:00Z"), &tz, &off);
        assert_eq!((backups(), d.events.list(10, Some(kind::BACKUP_SKIPPED)).unwrap().len()), (0, 1));

        // Wi-Fi is back: it runs now, once.
        tick(&d, at("2026-12-07T03:20:00Z"), &tz, &on);
        assert_eq!(backups(), 1, "the skipped run ran when its condition held again");
        assert_eq!(d.events.last_run("nightly").unwrap(), Some(at("2026-12-07T03:20:00Z")));
        assert!(d.events.pending().unwrap().is_empty());
        tick(&d, at("2026-12-07T03:40:00Z"), &tz, &on);
        assert_eq!(backups(), 1, "and only once");
        for j in d.jobs.list() {
            j.wait();
        }
    }

    /// A skipped run not made before the schedule's next run is forgotten: that run is the one
    /// to make (and it checks its conditions again).
    #[test]
    fn a_skipped_run_waits_only_until_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let d = daemon(
            dir.path(),
            "[unit.docs]\npaths = [\"~/docs\"]\n\n[schedule.nightly]\nevery = \"day\"\nat = \"03:00\"\nwhen = [\"mains\"]\n",
        );
        let tz = TimeZone::UTC;
        let battery = || Situation { wifi: false, ethernet: false, metered: None, mains: false };
        tick(&d, at("2026-12-06T12:00:00Z"), &tz, &battery);
        tick(&d, at("2026-12-07T03:00:10Z"), &tz, &battery);
        assert_eq!(d.events.pending().unwrap().len(), 1);
        // The configuration changes its time: the pending run's period is over at once.
        let _ = d.events.set_pending("nightly", "local", Some((at("2026-12-05T03:00:10Z"), "running on battery")));
        tick(&d, at("2026-12-07T03:10:00Z"), &tz, &battery);
        assert!(d.events.pending().unwrap().is_empty(), "{:?}", d.events.pending());
        assert!(d.jobs.list().is_empty());
    }
}

#[cfg(test)]
mod period_tests {
    use super::*;

    #[test]
    fn a_schedules_period_is_the_longest_gap_between_its_runs() {
        let now: Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
        let tz = TimeZone::UTC;
        let of = |every: &str, days: &[&str]| {
            let sc = ScheduleConfig {
                every: Some(every.into()),
                days: days.iter().map(|d| d.to_string()).collect(),
                ..Default::default()
            };
            period(&sc.cadence().unwrap(), now, &tz)
        };
        let days = |n: i64| jiff::SignedDuration::from_hours(24 * n);
        assert_eq!(of("day", &[]), days(1));
        assert_eq!(of("week", &["sun"]), days(7));
        assert_eq!(of("week", &["mon", "fri"]), days(4));
        assert_eq!(of("month", &[]), days(31));
    }
}
