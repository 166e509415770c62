//! `/api/backups`: list, create, show, delete, restore, pin.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use lifeboat_engine::app::{BackupOrder, Found, Pick};
use lifeboat_engine::BackupDetails;
use lifeboat_engine::{BackupInfo, Devices, EngineError};
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
        // `?location=NAME` lists one location, which must exist.
        // Every device's backups unless `?device=NAME` names one.
        let devices = at.devices().unwrap_or(Devices::All);
        let listing = d.app().list_backups(at.location.as_deref(), &devices)?;
        let unavailable = listing
            .unavailable
            .iter()
            .map(|u| Unavailable { location: u.location.clone(), reason: ApiError::of(&u.error).message })
            .collect();
        Ok(Json(Listing { backups: listing.backups, unavailable }))
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
        let order = BackupOrder {
            units: spec.units.clone(),
            location: spec.location.clone(),
            name: spec.name.clone(),
            tags: Vec::new(),
            unattended: false,
        };
        d.app().check_backup_order(&order)?;
        let spec = BackupSpec { schedule: None, ..spec };
        Ok((StatusCode::ACCEPTED, Json(Started { job: crate::scheduler::submit_backup(&d, spec) })))
    })
    .await
}

/// `?location=NAME`: which location's copy of a backup is meant (a copied backup has the same
/// slug in each); without it, the only location holding it (a route that changes something
/// refuses a backup found in several). `?device=NAME` or `?all_devices=true`: among whose
/// backups `latest` (and a prefix) is looked for; without them `latest` is this device's.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct At {
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub all_devices: bool,
}

impl At {
    /// The devices named, if any.
    pub fn devices(&self) -> Option<Devices> {
        (self.device.is_some() || self.all_devices)
            .then(|| Devices::from_args(self.device.as_deref(), self.all_devices))
    }
}

pub type AtQuery = Result<Query<At>, QueryRejection>;

/// The backup a slug names, where it is, and its repository. `acting`: the route changes
/// something (a backup in several locations is refused until one is named).
pub(crate) fn find(d: &Shared, slug: &str, at: &At, acting: bool) -> ApiResult<Found> {
    // Slugs are hex digits (or `latest`): anything else never reaches a location.
    let hex = !slug.is_empty() && slug.len() <= 64 && slug.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex && slug != "latest" {
        return Err(ApiError::not_found(format!("no backup {slug:?}: backups are named by hex digits, or latest")));
    }
    let pick = Pick { location: at.location.clone(), except: None, devices: at.devices(), acting };
    Ok(d.app().pick_backup(slug, &pick)?)
}

pub async fn show(State(d): State<Shared>, Path(slug): Path<String>, at: AtQuery) -> ApiResult<Json<BackupDetails>> {
    let at = super::query(at)?;
    blocking(move || Ok(Json(find(&d, &slug, &at, false)?.details(&d.dirs.logs)))).await
}

#[derive(Serialize)]
pub struct Deleted {
    pub deleted: String,
    pub location: String,
}

pub async fn delete(State(d): State<Shared>, Path(slug): Path<String>, at: AtQuery) -> ApiResult<Json<Deleted>> {
    let at = super::query(at)?;
    blocking(move || {
        let found = find(&d, &slug, &at, true)?;
        d.app().remove(&found)?;
        let (loc, snap) = (found.location, found.snapshot);
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
        let found = find(&d, &slug, &at, !spec.dry_run)?;
        let snap = &found.snapshot;
        for u in &spec.units {
            if !snap.units.iter().any(|su| &su.name == u) {
                return Err(EngineError::UnitNotInBackup {
                    slug: snap.slug.clone(),
                    unit: u.clone(),
                    held: snap.units.iter().map(|u| u.name.as_str()).collect::<Vec<_>>().join(", "),
                }
                .into());
            }
        }
        if spec.dry_run {
            // The plan is answered at once: reading trees and the device is quick next to a
            // restore, and nothing is written.
            let plan = work::restore_plan(&d, &found, &spec)?;
            let plan = serde_json::to_value(&plan).map_err(|e| ApiError::internal(e.to_string()))?;
            return Ok((StatusCode::OK, Json(plan)));
        }
        // Refused before a job starts: another device's backup in place, unless the request
        // names that device (`from_device`), and a relative folder.
        let decided = spec.from_device.as_deref().is_some_and(|f| found.is_from(f));
        if spec.target.is_none() && !found.this_device && !decided {
            return Err(EngineError::OtherDevice { slug: snap.slug.clone(), device: found.device.clone() }.into());
        }
        for (what, p) in [("target", &spec.target), ("home", &spec.home)] {
            if let Some(p) = p.as_ref().filter(|p| !p.is_absolute()) {
                return Err(ApiError::bad(format!("{what} {} must be an absolute path", p.display())));
            }
        }
        let (loc, snap) = (&found.location, &found.snapshot);
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
        let found = find(&d, &slug, &at, true)?;
        Ok(Json(d.app().pin(&found, pinned)?))
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
        let found = find(&d, &slug, &at, false)?;
        let app = d.app();
        let to = app.location(Some(&req.to))?;
        if to.name == found.location.name {
            return Err(EngineError::SameLocation { slug: found.snapshot.slug, location: to.name.clone() }.into());
        }
        let d2 = d.clone();
        let (from, to, slug) = (found.location.name.clone(), to.name.clone(), found.snapshot.slug.clone());
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

/// The configuration the backup recorded (units, schedules, locations; no secrets), as this
/// device would take it.
pub async fn setup_offer(
    State(d): State<Shared>,
    Path(slug): Path<String>,
    at: AtQuery,
) -> ApiResult<Json<lifeboat_engine::setup::SetupOffer>> {
    let at = super::query(at)?;
    blocking(move || {
        let found = find(&d, &slug, &at, false)?;
        Ok(Json(d.app().setup_offer_of(&found)?))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The secrets the backup does not carry, given again: `{"LOCATION": {"KEY": "value"}}`.
    #[serde(default)]
    secrets: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

/// Adds the configuration the backup recorded to this device's configuration file (what it
/// has already by name is kept), with the secrets given again.
pub async fn apply_setup(
    State(d): State<Shared>,
    Path(slug): Path<String>,
    at: AtQuery,
    body: Bytes,
) -> ApiResult<Json<lifeboat_engine::setup::SetupApplied>> {
    let at = super::query(at)?;
    let req: SetupRequest = json_body(&body)?;
    blocking(move || {
        let found = find(&d, &slug, &at, false)?;
        let app = d.app();
        let offer = app.setup_offer_of(&found)?;
        for (loc, keys) in &req.secrets {
            let Some(offered) = offer.locations.iter().find(|l| &l.name == loc) else {
                return Err(ApiError::bad(format!("the backup's configuration has no location {loc}")));
            };
            if let Some(k) = keys.keys().find(|k| !offered.secrets.contains(k)) {
                return Err(ApiError::bad(format!("location {loc} takes no secret {k} here")));
            }
        }
        let applied = app.apply_setup(&offer, &req.secrets)?;
        d.reload()?;
        Ok(Json(applied))
    })
    .await
}
