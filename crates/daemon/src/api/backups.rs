//! `/api/backups`: list, create, show, delete, restore, pin.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use lifeboat_engine::{BackupInfo, Location};
use lifeboat_repository::{Id, Repository, Snapshot};
use serde::{Deserialize, Serialize};

use axum::body::Bytes;

use super::{blocking, json_body, ApiError, ApiResult};
use crate::events::{kind, About};
use crate::state::Shared;
use crate::work::{self, BackupSpec, RestoreSpec};

#[derive(Serialize)]
pub struct Listing {
    pub backups: Vec<BackupInfo>,
    /// Locations that could not be read, and why.
    pub unavailable: Vec<Unavailable>,
}

#[derive(Serialize)]
pub struct Unavailable {
    pub location: String,
    pub reason: String,
}

pub async fn list(State(d): State<Shared>, at: AtQuery) -> ApiResult<Json<Listing>> {
    let at = super::query(at)?;
    blocking(move || {
        let mut backups = Vec::new();
        let mut unavailable = Vec::new();
        // `?location=NAME` lists one location, which must exist.
        let locations = match &at.location {
            Some(name) => vec![d.location(Some(name))?],
            None => d.locations(),
        };
        for loc in locations {
            let listed = (|| -> Result<Option<_>, ApiError> {
                let Some(repo) = d.existing_repo(&loc)? else { return Ok(None) };
                Ok(Some(repo.snapshots()?))
            })();
            match listed {
                Ok(Some((snaps, _))) => backups.extend(snaps.iter().map(|(id, s)| BackupInfo::new(id, s, &loc.name))),
                Ok(None) => {}
                Err(e) => unavailable.push(Unavailable { location: loc.name.clone(), reason: e.message }),
            }
        }
        backups.sort_by(|a, b| b.date.cmp(&a.date));
        Ok(Json(Listing { backups, unavailable }))
    })
    .await
}

#[derive(Serialize)]
pub struct Started {
    pub job: u64,
}

pub async fn create(State(d): State<Shared>, body: Bytes) -> ApiResult<(StatusCode, Json<Started>)> {
    let spec: BackupSpec = json_body(&body)?;
    blocking(move || {
        // Refuse what cannot work before starting a job for it.
        let all = d.units()?;
        lifeboat_engine::unit::select(&all, &spec.units)?;
        d.location(spec.location.as_deref())?;
        if let Some(n) = &spec.name {
            lifeboat_engine::backup::check_name("the backup's name", n)?;
        }
        let spec = BackupSpec { schedule: None, ..spec };
        Ok((StatusCode::ACCEPTED, Json(Started { job: crate::scheduler::submit_backup(&d, spec) })))
    })
    .await
}

/// `?location=NAME`: which location's copy of a backup is meant (a copied backup has the same
/// slug in each); without it, the first location holding it.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct At {
    #[serde(default)]
    pub location: Option<String>,
}

pub type AtQuery = Result<Query<At>, QueryRejection>;

/// The location holding a backup, its repository, and the backup.
pub(crate) fn find(d: &Shared, slug: &str, at: &At) -> ApiResult<(Location, Repository, Id, Snapshot)> {
    if slug.is_empty() || slug.len() > 64 || !slug.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::not_found(format!("no backup {slug:?}: backups are named by hex digits")));
    }
    let locations = match &at.location {
        Some(name) => vec![d.location(Some(name))?],
        None => d.locations(),
    };
    for loc in locations {
        let Ok(Some(repo)) = d.existing_repo(&loc) else { continue };
        if let Ok((id, snap)) = repo.find_snapshot(slug) {
            return Ok((loc, repo, id, snap));
        }
    }
    let place = at.location.as_deref().map(|l| format!("location {l}")).unwrap_or_else(|| "any location".into());
    Err(ApiError::not_found(format!("no backup {slug} in {place}: see GET /api/backups")))
}

#[derive(Serialize)]
pub struct Details {
    #[serde(flatten)]
    pub info: BackupInfo,
    pub unit_details: Vec<UnitDetail>,
    /// Where the backup's log is, if this device made it.
    pub log: Option<String>,
}

#[derive(Serialize)]
pub struct UnitDetail {
    pub name: String,
    pub title: String,
    pub kind: String,
    pub status: String,
    pub files: u64,
    pub size: u64,
    pub paths: Vec<String>,
    pub warnings: Vec<String>,
    pub error: Option<String>,
    pub not_included: Vec<String>,
}

pub fn details(loc: &Location, id: &Id, snap: &Snapshot, logs: &std::path::Path) -> Details {
    Details {
        info: BackupInfo::new(id, snap, &loc.name),
        unit_details: snap
            .units
            .iter()
            .map(|u| UnitDetail {
                name: u.name.clone(),
                title: u.title.clone(),
                kind: u.kind.clone(),
                status: u.status.as_str().into(),
                files: u.files,
                size: u.size,
                paths: u.roots.iter().map(|r| r.path.clone()).collect(),
                warnings: u.warnings.clone(),
                error: u.error.clone(),
                not_included: u.not_included.clone(),
            })
            .collect(),
        log: lifeboat_engine::runlog::find(logs, Some(&snap.slug)).map(|p| p.display().to_string()),
    }
}

pub async fn show(State(d): State<Shared>, Path(slug): Path<String>, at: AtQuery) -> ApiResult<Json<Details>> {
    let at = super::query(at)?;
    blocking(move || {
        let (loc, _, id, snap) = find(&d, &slug, &at)?;
        Ok(Json(details(&loc, &id, &snap, &d.dirs.logs)))
    })
    .await
}

#[derive(Serialize)]
pub struct Deleted {
    pub deleted: String,
    pub location: String,
}

pub async fn delete(State(d): State<Shared>, Path(slug): Path<String>, at: AtQuery) -> ApiResult<Json<Deleted>> {
    let at = super::query(at)?;
    blocking(move || {
        let (loc, repo, id, snap) = find(&d, &slug, &at)?;
        repo.remove_snapshot(&id)?;
        d.event(
            kind::DELETED,
            "info",
            &format!("backup {} \"{}\" deleted (space is reclaimed by the next prune)", snap.slug, snap.name),
            About { location: Some(loc.name.clone()), slug: Some(snap.slug.clone()), ..Default::default() },
        );
        Ok(Json(Deleted { deleted: snap.slug, location: loc.name }))
    })
    .await
}

pub async fn restore(
    State(d): State<Shared>,
    Path(slug): Path<String>,
    at: AtQuery,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let at = super::query(at)?;
    let spec: RestoreSpec = json_body(&body)?;
    blocking(move || {
        for (what, p) in [("target", &spec.target), ("home", &spec.home)] {
            if let Some(p) = p.as_ref().filter(|p| !p.is_absolute()) {
                return Err(ApiError::bad(format!("{what} {} must be an absolute path", p.display())));
            }
        }
        let (loc, _, _, snap) = find(&d, &slug, &at)?;
        for u in &spec.units {
            if !snap.units.iter().any(|su| &su.name == u) {
                return Err(ApiError::bad(format!(
                    "backup {slug} holds no unit {u}: it holds {}",
                    snap.units.iter().map(|u| u.name.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        if spec.dry_run {
            // The plan is answered at once: reading trees and the device is quick next to a
            // restore, and nothing is written.
            let plan = work::restore_plan(&d, &snap.slug, &loc.name, &spec)?;
            let plan = serde_json::to_value(&plan).map_err(|e| ApiError::internal(e.to_string()))?;
            return Ok((StatusCode::OK, Json(plan)));
        }
        let d2 = d.clone();
        let location = loc.name.clone();
        let slug2 = snap.slug.clone();
        let job = d.jobs.submit(
            "restore",
            Some(loc.name.clone()),
            format!("restore of backup {}", snap.slug),
            Box::new(move |j| work::restore(&d2, j, &slug2, &location, &spec)),
        );
        let started = serde_json::to_value(Started { job: job.id }).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok((StatusCode::ACCEPTED, Json(started)))
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    #[serde(default = "yes")]
    pub pinned: bool,
}

fn yes() -> bool {
    true
}

pub async fn pin(
    State(d): State<Shared>,
    Path(slug): Path<String>,
    at: AtQuery,
    body: Bytes,
) -> ApiResult<Json<BackupInfo>> {
    let at = super::query(at)?;
    let pinned = json_body::<PinRequest>(&body)?.pinned;
    blocking(move || {
        let (loc, repo, id, mut snap) = find(&d, &slug, &at)?;
        snap.pinned = pinned;
        let new = repo.replace_snapshot(&id, &snap)?;
        Ok(Json(BackupInfo::new(&new, &snap, &loc.name)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyRequest {
    /// The location to copy to.
    pub to: String,
}

/// Copies a backup to another location (only the data it lacks is sent), as a job.
pub async fn copy(
    State(d): State<Shared>,
    Path(slug): Path<String>,
    at: AtQuery,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Started>)> {
    let at = super::query(at)?;
    let req: CopyRequest = json_body(&body)?;
    blocking(move || {
        let (loc, _, _, snap) = find(&d, &slug, &at)?;
        let to = d.location(Some(&req.to))?;
        if to.name == loc.name {
            return Err(ApiError::bad(format!("backup {slug} is already in {}: choose another location", loc.name)));
        }
        let d2 = d.clone();
        let (from, to, slug) = (loc.name.clone(), to.name.clone(), snap.slug.clone());
        let job = d.jobs.submit(
            "copy",
            Some(to.clone()),
            format!("copy of backup {slug} from {from} to {to}"),
            Box::new(move |j| work::copy(&d2, j, &slug, &from, &to)),
        );
        Ok((StatusCode::ACCEPTED, Json(Started { job: job.id })))
    })
    .await
}
