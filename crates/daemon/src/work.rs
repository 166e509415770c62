//! The work of jobs: backups (with their schedule's retention), restores, prunes. Each
//! records its outcome as an event.

use std::path::PathBuf;
use std::sync::Arc;

use lifeboat_engine::app::{schedule_tag, BackedUp, BackupOrder, Found, RestoreOrder};
use lifeboat_engine::{BackupInfo, EngineError, EngineResult, Progress, RunLog};
use lifeboat_engine::{RestoreMode, RestoreReport};
use serde::{Deserialize, Serialize};

use crate::events::{kind, About};
use crate::jobs::{Job, Outcome};
use crate::state::Shared;

/// A backup to make.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSpec {
    /// Units (none: all, a full backup).
    #[serde(default)]
    pub units: Vec<String>,
    /// The location (default: the default location).
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// The schedule making it, whose retention then applies.
    #[serde(skip)]
    pub schedule: Option<String>,
}

pub fn describe_backup(spec: &BackupSpec) -> String {
    let what =
        if spec.units.is_empty() { "full backup".to_string() } else { format!("backup of {}", spec.units.join(", ")) };
    match &spec.schedule {
        Some(s) => format!("{what} (schedule {s})"),
        None => what,
    }
}

fn log_for(d: &Shared, job: &Arc<Job>, op: &str, slug: &str) -> RunLog {
    let j = job.clone();
    RunLog::create(&d.dirs.logs, op, slug, None).with_tap(Box::new(move |line| j.log_line(line)))
}

pub fn backup(d: &Shared, job: &Arc<Job>, spec: &BackupSpec) -> Outcome {
    let about = |slug: Option<String>| About {
        schedule: spec.schedule.clone(),
        location: job.location.clone(),
        slug,
        job: Some(job.id),
    };
    let app = d.app();
    let order = BackupOrder {
        units: spec.units.clone(),
        location: spec.location.clone(),
        name: spec.name.clone(),
        tags: spec.schedule.as_deref().map(schedule_tag).into_iter().collect(),
        // A schedule runs with nobody there: it makes no repository (nobody would see its
        // recovery key) and fails a unit that stores nothing it had.
        unattended: spec.schedule.is_some(),
    };
    let result = app.back_up(order, &job.progress, |slug| log_for(d, job, "backup", slug));
    let cancelled = job.progress.is_cancelled();
    let (k, level, message) = backup_event(&result, &describe_backup(spec), cancelled);
    d.event(k, level, &message, about(result.as_ref().ok().map(|done| done.info.slug.clone())));
    match result {
        // An unattended backup saved as failed is a failed job: no retention after it.
        Ok(done) if done.failed() => Err(EngineError::BackupFailed {
            slug: done.info.slug.clone(),
            detail: done
                .snapshot
                .units
                .iter()
                .filter_map(|u| Some(format!("unit {}: {}", u.name, u.error.as_ref()?)))
                .collect::<Vec<_>>()
                .join("; "),
        }),
        Ok(done) => {
            let (info, problems) = (&done.info, &done.problems);
            if let Some(loc) = &job.location {
                let _ = d.events.set_stale_reported(loc, None);
            }
            let mut value = json(info)?;
            value["problems"] = problems.clone().into();
            if let Some(s) = &spec.schedule {
                let j = job.clone();
                let log = move |line: &str| j.log_line(line);
                match app.apply_retention(s, &info.location, &job.progress, &log) {
                    Ok(r) => {
                        if !r.removed.is_empty() {
                            d.event(
                                kind::RETENTION,
                                "info",
                                &format!(
                                    "schedule {s} removed {}: {}",
                                    crate::events::count(r.removed.len() as u64, "backup", "backups"),
                                    r.removed.join(", ")
                                ),
                                About {
                                    schedule: Some(s.clone()),
                                    location: Some(info.location.clone()),
                                    slug: None,
                                    job: Some(job.id),
                                },
                            );
                        }
                        if let Some(p) = &r.pruned {
                            d.event(
                                kind::PRUNE,
                                "info",
                                &format!(
                                    "prune of {}: {} removed",
                                    info.location,
                                    crate::events::count(p.packs_removed as u64, "pack", "packs")
                                ),
                                About {
                                    location: Some(info.location.clone()),
                                    job: Some(job.id),
                                    ..Default::default()
                                },
                            );
                        }
                        value["retention_removed"] = r.removed.into();
                    }
                    Err(e) => {
                        d.event(
                            kind::RETENTION,
                            "error",
                            &format!("retention of schedule {s} failed: {}", words(&e)),
                            about(None),
                        );
                    }
                }
            }
            Ok(value)
        }
        Err(e) => Err(e),
    }
}

/// The event of a backup's outcome — kind, level and message — the same for the daemon's jobs
/// and the command line's backups. `what` says what was asked for (`full backup (schedule
/// nightly)`), for a backup that failed before it had a slug.
pub fn backup_event(
    result: &EngineResult<BackedUp>,
    what: &str,
    cancelled: bool,
) -> (&'static str, &'static str, String) {
    match result {
        Ok(done) => {
            let (info, problems) = (&done.info, &done.problems);
            let (k, level, said) = match info.status {
                "completed" => (kind::BACKUP_COMPLETED, "info", "completed".to_string()),
                "failed" => (kind::BACKUP_FAILED, "error", format!("failed: {}", problems.join("; "))),
                _ => (
                    kind::BACKUP_WARNINGS,
                    "warning",
                    if problems.is_empty() {
                        format!("completed with {}", crate::events::count(info.warnings as u64, "warning", "warnings"))
                    } else {
                        format!("completed with warnings: {}", problems.join("; "))
                    },
                ),
            };
            (k, level, format!("backup {} \"{}\" {said}", info.slug, info.name))
        }
        Err(e) => {
            let cancelled = cancelled || e.kind() == lifeboat_engine::ErrorKind::Interrupted;
            let said = if cancelled { "was cancelled".to_string() } else { format!("failed: {}", words(e)) };
            (if cancelled { kind::CANCELLED } else { kind::BACKUP_FAILED }, "error", format!("{what} {said}"))
        }
    }
}

/// An error in the API's words, for events.
fn words(e: &EngineError) -> String {
    crate::api::ApiError::of(e).message
}

fn json(v: &impl Serialize) -> Result<serde_json::Value, EngineError> {
    serde_json::to_value(v).map_err(|e| EngineError::Internal(format!("cannot show the result: {e}")))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreSpec {
    #[serde(default)]
    pub units: Vec<String>,
    /// Restore under this folder (absolute); none: in place, after a safety backup.
    #[serde(default)]
    pub target: Option<PathBuf>,
    #[serde(default)]
    pub mode: RestoreMode,
    /// The home folder `~` paths land in (absolute; another user's, say); default: the
    /// daemon's user's.
    #[serde(default)]
    pub home: Option<PathBuf>,
    /// Only work out the plan: what each path becomes, and why; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Only these paths of the backup (files or folders, `~/…` or `/…`; globs allowed, a
    /// pattern without `/` matches names); none: all of the units.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Take a file whose size and date match the backup's as unchanged without comparing its
    /// content (by default it is compared, so a file damaged on the device is repaired).
    #[serde(default)]
    pub trust_dates: bool,
    /// In place, a backup another device made is restored only when this names its device.
    #[serde(default)]
    pub from_device: Option<String>,
    /// In place, restore a `sqlite` unit's database even while another process has it open
    /// for writing (by default that is refused, naming the process).
    #[serde(default)]
    pub force: bool,
}

impl RestoreSpec {
    fn order(&self) -> RestoreOrder {
        RestoreOrder {
            units: self.units.clone(),
            target: self.target.clone(),
            mode: self.mode,
            map_paths: Vec::new(),
            home: self.home.clone(),
            dry_run: self.dry_run,
            safety_backup: true,
            devices: false,
            paths: self.paths.clone(),
            trust_dates: self.trust_dates,
            from_device: self.from_device.clone(),
            force: self.force,
        }
    }
}

/// The plan of a restore, without running it (the API's `dry_run`).
pub fn restore_plan(d: &Shared, found: &Found, spec: &RestoreSpec) -> EngineResult<RestoreReport> {
    let order = RestoreOrder { dry_run: true, ..spec.order() };
    d.app().restore(found, order, &Progress::default(), |_| RunLog::none())
}

pub fn restore(d: &Shared, job: &Arc<Job>, slug: &str, location: &str, spec: &RestoreSpec) -> Outcome {
    let about =
        || About { location: Some(location.into()), slug: Some(slug.into()), job: Some(job.id), ..Default::default() };
    let result = (|| -> Outcome {
        let app = d.app();
        let found = app.find_backup(slug, Some(location), None)?;
        let order = RestoreOrder { dry_run: false, ..spec.order() };
        let report = app.restore(&found, order, &job.progress, |slug| log_for(d, job, "restore", slug))?;
        if let Some(s) = &report.safety_backup {
            job.log_line(&format!("INFO safety backup {} of what the restore replaced and deleted", s.slug));
        }
        let mut v = json(&report)?;
        if let Some(s) = &report.safety_backup {
            v["safety_backup"] = s.slug.clone().into();
        }
        // Something not restored fails the job, as it fails the command line's restore; its
        // result still says what was restored.
        if report.not_restored > 0 {
            job.set_result(v);
            let first = report.problems.first().cloned().unwrap_or_default();
            return Err(EngineError::NotAllRestored { not_restored: report.not_restored, first });
        }
        Ok(v)
    })();
    match &result {
        Ok(v) => {
            let problems = v["problems"].as_array().map(|a| a.len()).unwrap_or(0);
            let (level, words) = if problems == 0 {
                ("info", "finished".to_string())
            } else {
                ("warning", format!("finished with {}", crate::events::count(problems as u64, "warning", "warnings")))
            };
            d.event(kind::RESTORE, level, &format!("restore of backup {slug} {words}"), about());
        }
        Err(e) => {
            d.event(kind::RESTORE_FAILED, "error", &format!("restore of backup {slug} failed: {}", words(e)), about());
        }
    }
    result
}

pub fn copy(d: &Shared, job: &Arc<Job>, slug: &str, from: &str, to: &str) -> Outcome {
    let about =
        || About { location: Some(to.into()), slug: Some(slug.into()), job: Some(job.id), ..Default::default() };
    job.log_line(&format!("INFO copying backup {slug} from {from} to {to}"));
    let result = d.app().copy(slug, Some(from), to, &job.progress).and_then(|c| {
        let mut v = json(&BackupInfo::new(&c.outcome.id, &c.outcome.snapshot, to))?;
        v["copied"] = c.outcome.copied.into();
        v["new_bytes"] = c.outcome.new_bytes.into();
        Ok(v)
    });
    match &result {
        Ok(_) => d.event(kind::COPY, "info", &format!("backup {slug} copied from {from} to {to}"), about()),
        Err(e) => {
            d.event(kind::COPY_FAILED, "error", &format!("copy of backup {slug} to {to} failed: {}", words(e)), about())
        }
    };
    result
}
