//! `/api/units`, `/api/locations`, `/api/schedules`, `/api/events`.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use lifeboat_engine::location::LocationInfo;
use lifeboat_engine::schedule::ScheduleConfig;
use lifeboat_engine::unit::UnitInfo;
use serde::{Deserialize, Serialize};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;

use super::{blocking, json_body, query, ApiError, ApiResult};
use crate::conditions::Situation;
use crate::events::Event;
use crate::scheduler::Decision;
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
        let units = d.units()?;
        Ok(Json(units.iter().map(|u| if q.sizes { u.info_with_size() } else { u.info() }).collect()))
    })
    .await
}

pub async fn locations(State(d): State<Shared>) -> Json<Vec<LocationInfo>> {
    Json(lifeboat_engine::location::info(&d.config().config, &d.dirs))
}

#[derive(Serialize)]
pub struct ScheduleView {
    pub name: String,
    #[serde(flatten)]
    pub config: ScheduleConfig,
    /// RFC 3339, when enabled.
    pub next_run: Option<String>,
    pub last_run: Option<String>,
}

fn views(d: &Shared) -> Vec<ScheduleView> {
    let tz = jiff::tz::TimeZone::system();
    let now = jiff::Timestamp::now();
    d.config()
        .config
        .schedule
        .iter()
        .map(|(name, sc)| {
            let last = d.events.last_run(name).ok().flatten();
            let next = sc
                .enabled
                .then(|| sc.cadence().ok())
                .flatten()
                .map(|c| c.next_after(last.unwrap_or(now).max(now), &tz))
                .filter(|t| *t < jiff::Timestamp::MAX)
                .map(|t| t.to_string());
            ScheduleView {
                name: name.clone(),
                config: sc.clone(),
                next_run: next,
                last_run: last.map(|t| t.to_string()),
            }
        })
        .collect()
}

pub async fn schedules(State(d): State<Shared>) -> Json<Vec<ScheduleView>> {
    Json(views(&d))
}

/// Replaces every schedule with those given (by name), in the configuration file.
pub async fn set_schedules(State(d): State<Shared>, body: Bytes) -> ApiResult<Json<Vec<ScheduleView>>> {
    let body: BTreeMap<String, ScheduleConfig> = json_body(&body)?;
    blocking(move || {
        let file = d.config().target_file;
        lifeboat_engine::config_edit::set_schedules(&file, &body)?;
        d.reload()?;
        Ok(Json(views(&d)))
    })
    .await
}

/// Runs a schedule now, as when it is due: its conditions are checked at each location.
pub async fn run_schedule(State(d): State<Shared>, Path(name): Path<String>) -> ApiResult<Json<Vec<Decision>>> {
    blocking(move || {
        let sc = d.config().config.schedule.get(&name).cloned().ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, format!("no schedule {name}: see GET /api/schedules"))
        })?;
        let _ = d.events.set_last_run(&name, jiff::Timestamp::now());
        Ok(Json(crate::scheduler::run_schedule(&d, &name, &sc, &Situation::now())))
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
        d.events
            .list(q.limit.min(10_000), q.kind.as_deref())
            .map(Json)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    })
    .await
}
