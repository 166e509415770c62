//! The work of jobs: backups (with their schedule's retention), restores, prunes. Each
//! records its outcome as an event.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lifeboat_engine::backup::{self, BackupRequest};
use lifeboat_engine::restore::{self, RestoreMode, RestoreReport, RestoreRequest};
use lifeboat_engine::retention::{self, Candidate};
use lifeboat_engine::{unit, BackupInfo, Dirs, EngineResult, Progress, RunLog};
use lifeboat_repository::SnapshotStatus;
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
    let result = (|| -> Result<(BackupInfo, Vec<String>), String> {
        let all = d.units().map_err(|e| e.to_string())?;
        let chosen = unit::select(&all, &spec.units).map_err(|e| e.to_string())?;
        let full = spec.units.is_empty() || chosen.len() == all.len();
        let loc = d.location(spec.location.as_deref()).map_err(|e| e.to_string())?;
        let repo = d.repo(&loc, true).map_err(|e| e.to_string())?;
        let slug = backup::new_slug(&repo).map_err(|e| e.to_string())?;
        let log = log_for(d, job, "backup", &slug);
        let mut tags = Vec::new();
        if let Some(s) = &spec.schedule {
            tags.push(format!("schedule:{s}"));
        }
        let req = BackupRequest { units: chosen, full, name: spec.name.clone(), slug, tags, safety: None };
        let (id, snap) = backup::run(&repo, &d.dirs, req, &job.progress, &log).map_err(|e| e.to_string())?;
        let info = BackupInfo::new(&id, &snap, &loc.name);
        let mut problems = Vec::new();
        for u in &snap.units {
            if let Some(e) = &u.error {
                problems.push(format!("unit {} failed: {e}", u.name));
            }
        }
        Ok((info, problems))
    })();
    match result {
        Ok((info, problems)) => {
            let (k, level, words) = match info.status {
                "completed" => (kind::BACKUP_COMPLETED, "info", "completed".to_string()),
                "failed" => (kind::BACKUP_FAILED, "error", format!("failed: {}", problems.join("; "))),
                _ => (
                    kind::BACKUP_WARNINGS,
                    "warning",
                    if problems.is_empty() {
                        format!("completed with {} warnings", info.warnings)
                    } else {
                        format!("completed with warnings: {}", problems.join("; "))
                    },
                ),
            };
            d.event(
                k,
                level,
                &format!("backup {} \"{}\" {words}", info.slug, info.name),
                about(Some(info.slug.clone())),
            );
            if let Some(loc) = &job.location {
                let _ = d.events.set_stale_reported(loc, None);
            }
            let mut value = serde_json::to_value(&info).map_err(|e| e.to_string())?;
            value["problems"] = problems.clone().into();
            if let Some(s) = &spec.schedule {
                match apply_retention(d, job, s, &info.location) {
                    Ok(removed) => value["retention_removed"] = removed.into(),
                    Err(e) => {
                        d.event(
                            kind::RETENTION,
                            "error",
                            &format!("retention of schedule {s} failed: {e}"),
                            about(None),
                        );
                    }
                }
            }
            Ok(value)
        }
        Err(e) => {
            let words = if job.progress.is_cancelled() { "was cancelled".to_string() } else { format!("failed: {e}") };
            let k = if job.progress.is_cancelled() { kind::CANCELLED } else { kind::BACKUP_FAILED };
            d.event(k, "error", &format!("{} {words}", describe_backup(spec)), about(None));
            Err(e)
        }
    }
}

/// Removes the schedule's backups its retention does not keep, then reclaims their space.
fn apply_retention(d: &Shared, job: &Arc<Job>, schedule: &str, location: &str) -> Result<Vec<String>, String> {
    let config = d.config().config;
    let Some(sc) = config.schedule.get(schedule) else { return Ok(Vec::new()) };
    if sc.retention.is_empty() {
        return Ok(Vec::new());
    }
    job.progress.set_phase("applying retention");
    let loc = d.location(Some(location)).map_err(|e| e.to_string())?;
    let repo = d.repo(&loc, false).map_err(|e| e.to_string())?;
    let (snaps, _) = repo.snapshots().map_err(|e| e.to_string())?;
    let tag = format!("schedule:{schedule}");
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
    let remove = retention::to_remove(&sc.retention, schedule, &candidates, jiff::Timestamp::now(), &tz);
    if remove.is_empty() {
        return Ok(remove);
    }
    for slug in &remove {
        if let Some((id, _)) = snaps.iter().find(|(_, s)| &s.slug == slug) {
            repo.remove_snapshot(id).map_err(|e| e.to_string())?;
        }
    }
    d.event(
        kind::RETENTION,
        "info",
        &format!("schedule {schedule} removed {} backups: {}", remove.len(), remove.join(", ")),
        About { schedule: Some(schedule.into()), location: Some(location.into()), slug: None, job: Some(job.id) },
    );
    job.progress.set_phase("reclaiming space");
    let j = job.clone();
    let report = repo
        .prune(Duration::from_secs(30 * 60), &move |m| j.log_line(&format!("INFO prune: {m}")))
        .map_err(|e| e.to_string())?;
    d.event(
        kind::PRUNE,
        "info",
        &format!("prune of {location}: {} packs removed", report.packs_removed),
        About { location: Some(location.into()), job: Some(job.id), ..Default::default() },
    );
    Ok(remove)
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
}

/// A restore's folders and request as the daemon runs it: `~` is the home asked for, and
/// the units are understood in that home.
fn restore_request(d: &Shared, spec: &RestoreSpec, dry_run: bool) -> EngineResult<(Dirs, RestoreRequest)> {
    let mut dirs = d.dirs.clone();
    if let Some(h) = &spec.home {
        dirs.home = h.clone();
    }
    // The safety backup and replace mode's excludes are about that home's files, not the
    // daemon user's.
    let configured = d.units_for(&dirs)?;
    let req = RestoreRequest {
        units: spec.units.clone(),
        target: spec.target.clone(),
        dry_run,
        configured,
        mode: spec.mode,
        map_paths: Vec::new(),
        safety_backup: true,
    };
    Ok((dirs, req))
}

/// The plan of a restore, without running it (the API's `dry_run`).
pub fn restore_plan(d: &Shared, slug: &str, location: &str, spec: &RestoreSpec) -> EngineResult<RestoreReport> {
    let loc = d.location(Some(location))?;
    let repo = d.repo(&loc, false)?;
    let (_, snap) = repo.find_snapshot(slug)?;
    let (dirs, req) = restore_request(d, spec, true)?;
    restore::run(&repo, &snap, &dirs, &req, &Progress::default(), &RunLog::none())
}

pub fn restore(d: &Shared, job: &Arc<Job>, slug: &str, location: &str, spec: &RestoreSpec) -> Outcome {
    let about =
        || About { location: Some(location.into()), slug: Some(slug.into()), job: Some(job.id), ..Default::default() };
    let result = (|| -> Result<serde_json::Value, String> {
        let loc = d.location(Some(location)).map_err(|e| e.to_string())?;
        let repo = d.repo(&loc, false).map_err(|e| e.to_string())?;
        let (_, snap) = repo.find_snapshot(slug).map_err(|e| e.to_string())?;
        let (dirs, req) = restore_request(d, spec, false).map_err(|e| e.to_string())?;
        let log = log_for(d, job, "restore", slug);
        let report = restore::run(&repo, &snap, &dirs, &req, &job.progress, &log).map_err(|e| e.to_string())?;
        if let Some(s) = &report.safety_backup {
            job.log_line(&format!("INFO safety backup {} of what the restore replaced and deleted", s.slug));
        }
        let mut v = serde_json::to_value(&report).map_err(|e| e.to_string())?;
        if let Some(s) = &report.safety_backup {
            v["safety_backup"] = s.slug.clone().into();
        }
        Ok(v)
    })();
    match &result {
        Ok(v) => {
            let problems = v["problems"].as_array().map(|a| a.len()).unwrap_or(0);
            let (level, words) = if problems == 0 {
                ("info", "finished".to_string())
            } else {
                ("warning", format!("finished with {problems} problems"))
            };
            d.event(kind::RESTORE, level, &format!("restore of backup {slug} {words}"), about());
        }
        Err(e) => {
            d.event(kind::RESTORE_FAILED, "error", &format!("restore of backup {slug} failed: {e}"), about());
        }
    }
    result
}

pub fn copy(d: &Shared, job: &Arc<Job>, slug: &str, from: &str, to: &str) -> Outcome {
    let about =
        || About { location: Some(to.into()), slug: Some(slug.into()), job: Some(job.id), ..Default::default() };
    let result = (|| -> Result<serde_json::Value, String> {
        let src = d.location(Some(from)).and_then(|l| d.repo(&l, false)).map_err(|e| e.to_string())?;
        let dst = d.location(Some(to)).and_then(|l| d.repo(&l, true)).map_err(|e| e.to_string())?;
        job.log_line(&format!("INFO copying backup {slug} from {from} to {to}"));
        let o = lifeboat_engine::copy::copy(&src, &dst, slug, &job.progress).map_err(|e| e.to_string())?;
        let info = BackupInfo::new(&o.id, &o.snapshot, to);
        let mut v = serde_json::to_value(&info).map_err(|e| e.to_string())?;
        v["copied"] = o.copied.into();
        v["new_bytes"] = o.new_bytes.into();
        Ok(v)
    })();
    match &result {
        Ok(_) => d.event(kind::COPY, "info", &format!("backup {slug} copied from {from} to {to}"), about()),
        Err(e) => d.event(kind::COPY_FAILED, "error", &format!("copy of backup {slug} to {to} failed: {e}"), about()),
    };
    result
}
