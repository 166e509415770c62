//! `/api/units`, `/api/locations`, `/api/schedules`, `/api/events`.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use lifeboat_engine::schedule::ScheduleConfig;
use lifeboat_engine::LocationInfo;
use lifeboat_engine::UnitInfo;
use serde::{Deserialize, Serialize};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;

use super::{blocking, json_body, query, ApiError, ApiResult};
use crate::events::Event;
use crate::scheduler::Decision;
use crate::schedules::{self, ScheduleView};
use crate::state::Shared;

#[derive(Deserialize)]
pub struct UnitsQuery {
    /// Also walk each unit's paths for its current size.
    #[serde(default)]
    sizes: bool,
}

pub async fn units(
    State(d): State<Shared>,
    q: Result<Query<UnitsQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<UnitInfo>>> {
    let q = query(q)?;
    blocking(move || {
        let units = d.app().units()?;
        Ok(Json(units.iter().map(|u| if q.sizes { u.info_with_size() } else { u.info() }).collect()))
    })
    .await
}

pub async fn locations(State(d): State<Shared>) -> Json<Vec<LocationInfo>> {
    Json(d.app().location_info())
}

pub async fn schedules(State(d): State<Shared>) -> Json<Vec<ScheduleView>> {
    Json(schedules::list(&d))
}

/// Replaces every schedule with those given (by name), in the configuration file.
pub async fn set_schedules(State(d): State<Shared>, body: Bytes) -> ApiResult<Json<Vec<ScheduleView>>> {
    let body: BTreeMap<String, ScheduleConfig> = json_body(&body)?;
    blocking(move || {
        let file = d.config().target_file;
        lifeboat_engine::config_edit::set_schedules(&file, &body)?;
        d.reload()?;
        Ok(Json(schedules::list(&d)))
    })
    .await
}

/// Runs a schedule now, as when it is due: its conditions are checked at each location.
pub async fn run_schedule(State(d): State<Shared>, Path(name): Path<String>) -> ApiResult<Json<Vec<Decision>>> {
    blocking(move || {
        schedules::run_now(&d, &name)
            .map(Json)
            .ok_or_else(|| ApiError::not_found(format!("no schedule {name}: see GET /api/schedules")))
    })
    .await
}

#[derive(Deserialize)]
pub struct EventsQuery {
    #[serde(default = "hundred")]
    limit: u32,
    #[serde(default)]
    kind: Option<String>,
}

fn hundred() -> u32 {
    100
}

pub async fn events(
    State(d): State<Shared>,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<Event>>> {
    let q = query(q)?;
    blocking(move || {
        d.events.list(q.limit.min(10_000), q.kind.as_deref()).map(Json).map_err(|e| ApiError::internal(e.to_string()))
    })
    .await
}

#[derive(Serialize)]
pub struct Status {
    /// Locations an enabled schedule backs up to whose newest successful backup is older
    /// than their schedule's period plus `stale_after_days` (or that have none).
    pub stale: Vec<crate::scheduler::Stale>,
    pub stale_after_days: u32,
    /// Jobs queued or running.
    pub active_jobs: usize,
    pub version: &'static str,
}

pub async fn status(State(d): State<Shared>) -> ApiResult<Json<Status>> {
    blocking(move || {
        Ok(Json(Status {
            stale: crate::scheduler::stale_locations(&d, jiff::Timestamp::now()),
            stale_after_days: d.config().config.daemon.stale_after,
            active_jobs: d.jobs.list().iter().filter(|j| !j.state().finished()).count(),
            version: env!("CARGO_PKG_VERSION"),
        }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLocation {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub path: Option<String>,
    /// The kind's other keys (docs/CONFIG.md), e.g. `host`, `bucket`, `url`.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// The repository's password or recovery key, when it already holds backups: this
    /// device gets its own key slot, so the secret itself is not kept.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub default: bool,
    /// Another location whose repository's blob ids and chunking a repository made here
    /// takes (`like` in the configuration): copies between them send only what is missing.
    #[serde(default)]
    pub like: Option<String>,
    /// An SFTP server's host key fingerprint (`SHA256:…`) the person confirmed, after an
    /// answer whose `unknown_host` showed it: recorded in the location's known_hosts file
    /// only if the server presents that very key.
    #[serde(default)]
    pub trust_host_key: Option<String>,
}

/// Adds a location to the configuration (and, given its secret, lets this device open its
/// repository). Nothing is kept when the location cannot be reached or opened, or (given
/// `like`) holds a repository whose blob ids and chunking differ from the other's.
pub async fn add_location(State(d): State<Shared>, body: Bytes) -> ApiResult<(StatusCode, Json<LocationInfo>)> {
    let req: NewLocation = json_body(&body)?;
    blocking(move || {
        let file = d.config().target_file;
        let mut keys = vec![("type".to_string(), req.kind.clone())];
        if let Some(p) = req.path.clone().filter(|p| !p.trim().is_empty()) {
            keys.push(("path".into(), p));
        }
        for (k, v) in &req.settings {
            if k == "type" || k == "path" || k == "like" {
                return Err(ApiError::bad(format!("setting {k} goes in its own field, not in settings")));
            }
            keys.push((k.clone(), v.clone()));
        }
        if let Some(like) = req.like.clone().filter(|l| !l.trim().is_empty()) {
            keys.push(("like".into(), like));
        }
        lifeboat_engine::config_edit::add_location(&file, &req.name, &keys, req.default)?;
        let connected = (|| -> ApiResult<()> {
            d.reload()?;
            let app = d.app();
            let loc = app.location(Some(&req.name))?;
            if let Some(fingerprint) = req.trust_host_key.as_deref().filter(|f| !f.trim().is_empty()) {
                loc.trust_host_key(fingerprint)?;
            }
            let store = loc.store()?;
            let exists = lifeboat_repository::Repository::exists(store.as_ref())?;
            match (exists, req.secret.as_deref().filter(|s| !s.is_empty())) {
                (true, Some(secret)) => {
                    let host = lifeboat_repository::hostname();
                    lifeboat_engine::credentials::enroll_device(loc, &d.dirs, secret, &format!("device {host}"))?;
                }
                // Backups there that nothing on this device opens: refused (wrong_key), so
                // that the page asks for their password rather than listing none.
                (true, None) => {
                    app.repository(loc, false)?;
                }
                (false, _) => {}
            }
            // An existing repository cannot take another's ids and chunking: refused.
            app.check_like(&req.name, &loc.config)?;
            Ok(())
        })();
        if let Err(e) = connected {
            let _ = lifeboat_engine::config_edit::remove_location(&file, &req.name);
            let _ = d.reload();
            return Err(e);
        }
        let info = d
            .app()
            .location_info()
            .into_iter()
            .find(|l| l.name == req.name)
            .ok_or_else(|| ApiError::internal("the new location is not in the configuration"))?;
        Ok((StatusCode::CREATED, Json(info)))
    })
    .await
}
