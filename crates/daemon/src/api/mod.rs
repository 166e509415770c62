//! The HTTP API (JSON; documented by docs/openapi.json, served at `/api/openapi.json`). Every
//! route but `/api/health` and signing in needs `Authorization: Bearer TOKEN` or the web page's
//! session (see `web`).

pub(crate) mod backups;
mod browse;
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
use lifeboat_engine::{EngineError, ErrorKind, Remedy};
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
        .route("/api/backups/{slug}/setup", get(backups::setup_offer).post(backups::apply_setup))
        .route("/api/backups/{slug}/download", get(files::download))
        .route("/api/backups/{slug}/copy", post(backups::copy))
        .route("/api/backups/{slug}/files", get(browse::files))
        .route("/api/backups/{slug}/file", get(browse::file))
        .route("/api/backups/{slug}/diff", get(browse::diff))
        .route("/api/search", get(browse::search))
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

/// An error as the API returns it: a status and `{"error": "words that say what to do",
/// "kind": "…"}`, the kind being the engine's one classification (docs/CONFIG.md, "Errors").
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// None for refusals of the HTTP layer itself (signing in, the token, CSRF, rate limits).
    pub kind: Option<ErrorKind>,
    pub message: String,
    /// An SFTP server not known yet: its key's fingerprint, which a person may confirm
    /// (`"unknown_host": {"location", "server", "fingerprint"}` in the body).
    pub unknown_host: Option<lifeboat_engine::UnknownHost>,
}

impl ApiError {
    /// An error of the API's own (a route's input), of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError { status: status(kind), kind: Some(kind), message: message.into(), unknown_host: None }
    }

    /// A refusal of the HTTP layer (not signed in, a forged request, too many attempts).
    pub fn refused(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, kind: None, message: message.into(), unknown_host: None }
    }

    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::BadInput, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Internal, message)
    }

    /// Any error of the layers below, classified once by the engine.
    pub fn of(e: &(dyn std::error::Error + 'static)) -> ApiError {
        let (kind, fix) = lifeboat_engine::classify(e);
        let mut message = e.to_string();
        if let Some(r) = fix {
            message.push_str(": ");
            message.push_str(remedy(r));
        }
        let unknown_host = lifeboat_engine::unknown_host(e);
        if unknown_host.is_some() {
            message.push_str(" (compare the fingerprint with the server's own, then confirm it)");
        }
        ApiError { unknown_host, ..ApiError::new(kind, message) }
    }
}

/// The one HTTP status of each kind of error.
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::BadInput => StatusCode::BAD_REQUEST,
        ErrorKind::WrongKey => StatusCode::FORBIDDEN,
        // The location's state (a card not inserted, a server down), not the daemon's.
        ErrorKind::LocationUnavailable => StatusCode::FAILED_DEPENDENCY,
        ErrorKind::Damaged => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Interrupted => StatusCode::GONE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A remedy in the API's words: for whoever drives it (the page, an automation), not a
/// command to type.
pub fn remedy(r: Remedy) -> &'static str {
    match r {
        Remedy::CreateRepository => "a first backup to this location (POST /api/backups) creates it",
        Remedy::Check => "the repository should be checked for damage",
        Remedy::CheckData => "the repository should be checked for damage, reading all of its data",
        Remedy::Repair => "the repository should be checked and repaired",
        Remedy::RetryPassword => "give the right password, or the recovery key",
        Remedy::ThenRepair => "once opened, the repository should be checked and repaired",
        Remedy::ThenCheck => "once opened, the repository should be checked",
        Remedy::Unlock => "if its holder died, the stale lock must be removed",
        Remedy::ListBackups => "GET /api/backups lists the backups",
        Remedy::ListKeys => "the repository's keys are listed on the device",
        Remedy::ListUnits => "GET /api/units lists the units",
        Remedy::GivePassword => "give the backup file's password",
        Remedy::GiveRepositoryPassword => {
            "the backups there are password protected and this device keeps no key for them: keep one on \
             the device once (key add --device, with the password), or set the location's repository_password_file"
        }
        Remedy::RestoreElsewhere => "restore into a target folder to get what can be read",
        Remedy::RestoreElsewhereOrUnsafe => "restore into a target folder instead",
        Remedy::NameLocation => "GET /api/backups lists the backups and their locations",
        Remedy::ListFiles => "GET /api/backups/{slug}/files lists what a backup holds",
        Remedy::ResumeOrUndo => {
            "finish it with `lifeboat backups restore --resume` or undo it with `lifeboat backups restore --undo`"
        }
        Remedy::Resume => "finish it with `lifeboat backups restore --resume`",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = match self.kind {
            Some(kind) => serde_json::json!({ "error": self.message, "kind": kind }),
            None => serde_json::json!({ "error": self.message }),
        };
        if let Some(host) = self.unknown_host {
            body["unknown_host"] = serde_json::json!(host);
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        ApiError::of(&e)
    }
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> ApiError {
        ApiError::of(&e)
    }
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
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(ApiError::internal(format!("internal error: {e}"))))
}
