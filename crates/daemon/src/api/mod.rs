//! The HTTP API (JSON; documented by docs/openapi.json, served at `/api/openapi.json`). Every
//! route but `/api/health` needs `Authorization: Bearer TOKEN`.

mod backups;
mod files;
mod info;
mod jobs;
mod metrics;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lifeboat_engine::EngineError;
use lifeboat_repository::RepoError;

use crate::state::Shared;

pub const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

pub fn router(d: Shared) -> Router {
    let protected = Router::new()
        .route("/api/backups", get(backups::list).post(backups::create))
        .route("/api/backups/upload", post(files::upload))
        .route("/api/backups/{slug}", get(backups::show).delete(backups::delete))
        .route("/api/backups/{slug}/restore", post(backups::restore))
        .route("/api/backups/{slug}/pin", post(backups::pin))
        .route("/api/backups/{slug}/download", get(files::download))
        .route("/api/jobs", get(jobs::list))
        .route("/api/jobs/{id}", get(jobs::show))
        .route("/api/jobs/{id}/events", get(jobs::events))
        .route("/api/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/units", get(info::units))
        .route("/api/locations", get(info::locations))
        .route("/api/schedules", get(info::schedules).put(info::set_schedules))
        .route("/api/schedules/{name}/run", post(info::run_schedule))
        .route("/api/events", get(info::events))
        .route("/metrics", get(metrics::metrics))
        .route("/api/openapi.json", get(openapi))
        .route_layer(middleware::from_fn_with_state(d.clone(), require_token));
    Router::new().route("/api/health", get(health)).merge(protected).fallback(not_found).with_state(d)
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

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route: see /api/openapi.json")
}

/// Compares the bearer token in constant time.
async fn require_token(State(d): State<Shared>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = d.token.as_bytes();
    let same = given.len() == expected.len() && given.bytes().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !same {
        let mut r = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "a valid token is needed: send Authorization: Bearer TOKEN (`lifeboat token` prints it)",
        )
        .into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    next.run(req).await
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
            | EngineError::BackupFile { .. } => StatusCode::BAD_REQUEST,
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
        RepoError::WrongPassword(_) => StatusCode::SERVICE_UNAVAILABLE,
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
