//! The HTTP API (JSON; documented by docs/openapi.json, served at `/api/openapi.json`). Every
//! route but `/api/health` and signing in needs `Authorization: Bearer TOKEN` or the web page's
//! session (see `web`).

pub(crate) mod backups;
mod files;
pub(crate) mod info;
mod jobs;
mod logs;
mod metrics;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lifeboat_engine::EngineError;
use lifeboat_repository::RepoError;

use crate::state::Shared;
use crate::web;

pub const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

pub fn router(d: Shared) -> Router {
    let protected = Router::new()
        .route("/api/backups", get(backups::list).post(backups::create))
        .route("/api/backups/upload", post(files::upload))
        .route("/api/backups/{slug}", get(backups::show).delete(backups::delete))
        .route("/api/backups/{slug}/restore", post(backups::restore))
        .route("/api/backups/{slug}/pin", post(backups::pin))
        .route("/api/backups/{slug}/download", get(files::download))
        .route("/api/backups/{slug}/copy", post(backups::copy))
        .route("/api/logs", get(logs::list))
        .route("/api/logs/{name}", get(logs::show))
        .route("/api/status", get(info::status))
        .route("/api/jobs", get(jobs::list))
        .route("/api/jobs/{id}", get(jobs::show))
        .route("/api/jobs/{id}/events", get(jobs::events))
        .route("/api/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/units", get(info::units))
        .route("/api/locations", get(info::locations).post(info::add_location))
        .route("/api/schedules", get(info::schedules).put(info::set_schedules))
        .route("/api/schedules/{name}/run", post(info::run_schedule))
        .route("/api/events", get(info::events))
        .route("/metrics", get(metrics::metrics))
        .route("/api/openapi.json", get(openapi))
        .route_layer(middleware::from_fn_with_state(d.clone(), require_auth));
    Router::new()
        .route("/api/health", get(health))
        .merge(protected)
        .merge(web::routes())
        .fallback(web::fallback)
        .with_state(d)
}

async fn health(State(d): State<Shared>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "started": d.started.to_string(),
    }))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Lets through the bearer token (compared in constant time) or the page's session with its
/// CSRF token.
async fn require_auth(State(d): State<Shared>, req: Request, next: Next) -> Response {
    match web::caller(&d, req.method(), req.headers()) {
        web::Caller::Token | web::Caller::Session => next.run(req).await,
        c => web::refusal(&c),
    }
}

/// An error as the API returns it: a status and `{"error": "words that say what to do"}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let status = match &e {
            EngineError::UnknownUnit { .. }
            | EngineError::UnknownLocation { .. }
            | EngineError::UnknownProfile { .. }
            | EngineError::UnitNotInBackup { .. }
            | EngineError::BadTarget(_)
            | EngineError::Config { .. }
            | EngineError::LocationConfig { .. }
            | EngineError::BackupFile { .. }
            | EngineError::BadName { .. }
            | EngineError::UnsafeBackup { .. }
            | EngineError::Outside { .. } => StatusCode::BAD_REQUEST,
            EngineError::NoRoom { .. } => StatusCode::INSUFFICIENT_STORAGE,
            // The location's state (a card not inserted, a server down), not the daemon's.
            EngineError::LocationUnavailable { .. } | EngineError::Store(_) => StatusCode::CONFLICT,
            EngineError::NoPassword { .. } | EngineError::PasswordFile { .. } | EngineError::EmptyPassword(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            EngineError::Repo(r) => return r_status(r, e.to_string()),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> ApiError {
        let msg = e.to_string();
        r_status(&e, msg)
    }
}

fn r_status(e: &RepoError, msg: String) -> ApiError {
    let status = match e {
        RepoError::NoSuchSnapshot(_) => StatusCode::NOT_FOUND,
        RepoError::AmbiguousSnapshot(_) => StatusCode::BAD_REQUEST,
        RepoError::Locked { .. } => StatusCode::CONFLICT,
        RepoError::WrongPassword(_) | RepoError::KeySlotsDamaged { .. } | RepoError::OpenBudget { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        RepoError::Store(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, msg)
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON request body, read by hand so a malformed one gets the API's own JSON error (400)
/// rather than the framework's plain-text one. An empty body is `{}`.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let body = if body.iter().all(|b| b.is_ascii_whitespace()) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad(format!("the request body is not what this route takes: {e}")))
}

/// Query parameters, with the API's own error when they do not parse.
pub fn query<T>(q: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>) -> ApiResult<T> {
    q.map(|axum::extract::Query(v)| v).map_err(|e| ApiError::bad(format!("bad query parameters: {}", e.body_text())))
}

/// Runs blocking engine work off the async threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}"))))
}
