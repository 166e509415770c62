//! The Backups page: served at `/` by the daemon, signed in with the API token or the
//! password `lifeboat passwd` sets. Everything but the sign-in page and its assets needs a
//! session; pages without one are sent to `/signin`, API requests get 401.

mod assets;
mod next;
pub mod password;
pub mod session;

use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::api::{json_body, ApiError, ApiResult};
use crate::state::Shared;
use session::{same, Check};

/// Routes open without a session: the sign-in page, its assets, and signing in.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/signin", get(signin_page))
        .route("/assets/{file}", get(asset))
        .route("/api/session", get(session_info).post(sign_in).delete(sign_out))
}

/// Who is asking: the bearer token, a session, or neither.
pub enum Caller {
    Token,
    Session,
    Nobody,
    Forged,
}

pub fn caller(d: &Shared, method: &Method, headers: &HeaderMap) -> Caller {
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if let Some(given) = bearer {
        return if same(given.as_bytes(), d.token.as_bytes()) { Caller::Token } else { Caller::Nobody };
    }
    match d.sessions.check(method, headers) {
        Check::Valid => Caller::Session,
        Check::NoSession => Caller::Nobody,
        Check::Forged => Caller::Forged,
    }
}

/// The refusal for a request that is not signed in.
pub fn refusal(c: &Caller) -> Response {
    match c {
        Caller::Forged => ApiError::refused(
            StatusCode::FORBIDDEN,
            "this request did not come from the Backups page (its CSRF token is missing or wrong): reload the page and try again",
        )
        .into_response(),
        _ => {
            let mut r = ApiError::refused(
                StatusCode::UNAUTHORIZED,
                "a valid token is needed: send Authorization: Bearer TOKEN (`lifeboat token` prints it), or sign in on the page",
            )
            .into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
    }
}

/// Headers for every page: only this origin's scripts and styles, no framing, no referrer.
fn page(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                 frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// The sign-in page; once signed in, a redirect to where the person was headed (`next`, a
/// page of this site only: `next.rs`). The page's script comes back here after signing in,
/// so this check is the only one.
async fn signin_page(State(d): State<Shared>, method: Method, req: Request) -> Response {
    if matches!(caller(&d, &method, req.headers()), Caller::Session) {
        let next = next::from_query(req.uri().query()).unwrap_or_default();
        return Redirect::to(&next::destination(&next)).into_response();
    }
    page(assets::SIGNIN_PAGE)
}

async fn asset(State(d): State<Shared>, method: Method, headers: HeaderMap, Path(file): Path<String>) -> Response {
    let Some(a) = assets::find(&file) else {
        return ApiError::not_found(format!("no file {file} in the page's assets")).into_response();
    };
    if !a.public {
        let c = caller(&d, &method, &headers);
        if !matches!(c, Caller::Session | Caller::Token) {
            return refusal(&c);
        }
    }
    (
        [
            (header::CONTENT_TYPE, a.content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        a.body,
    )
        .into_response()
}

/// Any other path: an API route that does not exist (after the caller is known, so nothing
/// is learnt without a session), or a page of the app (its one shell; the script routes).
pub async fn fallback(State(d): State<Shared>, req: Request) -> Response {
    let c = caller(&d, req.method(), req.headers());
    let signed_in = matches!(c, Caller::Session | Caller::Token);
    let path = req.uri().path();
    if path.starts_with("/api/") || path == "/api" || *req.method() != Method::GET {
        if !signed_in {
            return refusal(&c);
        }
        return ApiError::not_found("no such route: see /api/openapi.json").into_response();
    }
    if !signed_in {
        // The path asked for, as a page of this site (a path such as `//host/…` is not one).
        let next = next::destination(req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/"));
        return Redirect::to(&format!("/signin?next={}", encode(&next))).into_response();
    }
    page(assets::APP_PAGE)
}

/// Percent-encodes a path for a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignInBody {
    /// The API token or the password.
    secret: String,
}

#[derive(Serialize)]
pub struct SessionInfo {
    /// Send it as `X-Lifeboat-CSRF` with every request that changes something.
    pub csrf: String,
}

/// A sign-in's body is read before anyone is known to be signing in: it gets a deadline and
/// a size, so that a connection trickling one is not kept busy (busy connections are the ones
/// never closed to make room for others: `connections.rs`).
const SIGN_IN_BODY_TIME: Duration = Duration::from_secs(10);
const SIGN_IN_BODY_MAX: usize = 64 * 1024;

async fn sign_in(
    State(d): State<Shared>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    body: Body,
) -> ApiResult<Response> {
    let body = match tokio::time::timeout(SIGN_IN_BODY_TIME, axum::body::to_bytes(body, SIGN_IN_BODY_MAX)).await {
        Ok(Ok(body)) => body,
        _ => {
            return Err(ApiError::bad(format!(
                "the sign-in request did not arrive whole within {} s, or is larger than {} KiB",
                SIGN_IN_BODY_TIME.as_secs(),
                SIGN_IN_BODY_MAX / 1024
            )))
        }
    };
    let req: SignInBody = json_body(&body)?;
    let client = session::Client::from(peer.ip());
    if !d.sessions.begin_attempt(client) {
        return Err(ApiError::refused(
            StatusCode::TOO_MANY_REQUESTS,
            "too many sign-ins from this address in the last minute: wait a minute and try again",
        ));
    }
    let d2 = d.clone();
    let secret = req.secret;
    // Argon2 takes a moment: off the async threads.
    let ok = tokio::task::spawn_blocking(move || {
        same(secret.trim().as_bytes(), d2.token.as_bytes()) || password::matches(&d2.dirs.data, &secret)
    })
    .await
    .unwrap_or(false);
    if !ok {
        return Err(ApiError::refused(
            StatusCode::UNAUTHORIZED,
            "that is neither the API token nor the page's password: `lifeboat token` prints the token, `lifeboat passwd` sets a password",
        ));
    }
    d.sessions.succeeded(client);
    let new = d.sessions.create();
    let mut r = Json(SessionInfo { csrf: new.csrf }).into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(Some(&new.id))) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

async fn session_info(State(d): State<Shared>, headers: HeaderMap) -> ApiResult<Json<SessionInfo>> {
    match d.sessions.csrf(&headers) {
        Some(csrf) => Ok(Json(SessionInfo { csrf })),
        None => Err(ApiError::refused(
            StatusCode::UNAUTHORIZED,
            "not signed in: sign in with the API token or the password",
        )),
    }
}

async fn sign_out(State(d): State<Shared>, method: Method, headers: HeaderMap) -> Response {
    let c = caller(&d, &method, &headers);
    if !matches!(c, Caller::Session) {
        return refusal(&c);
    }
    d.sessions.end(&headers);
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(None)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}
