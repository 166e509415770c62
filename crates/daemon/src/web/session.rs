//! Sign-in sessions for the web page. A session is a random id in an HttpOnly,
//! SameSite=Strict cookie; state-changing requests must also carry the session's CSRF token
//! in a header, which another site's page can neither read nor send.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, Method};

pub const COOKIE: &str = "lifeboat_session";
pub const CSRF_HEADER: &str = "x-lifeboat-csrf";

/// A session ends after this long without a request…
const IDLE: Duration = Duration::from_secs(12 * 3600);
/// …and after this long in any case.
const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Failed sign-ins allowed per minute before further attempts are turned away.
const FAILURES_PER_MINUTE: usize = 10;

struct Session {
    csrf: String,
    created: Instant,
    last_seen: Instant,
}

#[derive(Default)]
pub struct Sessions {
    /// Keyed by the BLAKE3 hash of the cookie's value, so a lookup's timing says nothing
    /// about the ids that exist.
    live: Mutex<HashMap<[u8; 32], Session>>,
    failures: Mutex<VecDeque<Instant>>,
}

/// A new session's cookie value and CSRF token.
pub struct NewSession {
    pub id: String,
    pub csrf: String,
}

/// What a request's cookie and headers prove.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// A live session, and (for a state-changing method) its CSRF token.
    Valid,
    NoSession,
    /// A live session, but a state-changing request without the right CSRF token or from
    /// another site.
    Forged,
}

fn key(id: &str) -> [u8; 32] {
    *blake3::hash(id.as_bytes()).as_bytes()
}

pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Sessions {
    pub fn create(&self) -> NewSession {
        let id = hex::encode(rand::random::<[u8; 32]>());
        let csrf = hex::encode(rand::random::<[u8; 32]>());
        let now = Instant::now();
        let mut live = self.live.lock().expect("sessions lock");
        live.retain(|_, s| alive(s, now));
        live.insert(key(&id), Session { csrf: csrf.clone(), created: now, last_seen: now });
        NewSession { id, csrf }
    }

    pub fn end(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers) {
            self.live.lock().expect("sessions lock").remove(&key(&id));
        }
    }

    /// The CSRF token of the request's live session.
    pub fn csrf(&self, headers: &HeaderMap) -> Option<String> {
        let id = cookie(headers)?;
        let now = Instant::now();
        let mut live = self.live.lock().expect("sessions lock");
        let s = live.get_mut(&key(&id)).filter(|s| alive(s, now))?;
        s.last_seen = now;
        Some(s.csrf.clone())
    }

    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Check {
        let Some(csrf) = self.csrf(headers) else { return Check::NoSession };
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Check::Valid;
        }
        // Browsers say where a request comes from; one from another site is refused even
        // with the right token.
        let cross = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v != "same-origin" && v != "none");
        let given = headers.get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or(b"");
        if cross || !same(given, csrf.as_bytes()) {
            return Check::Forged;
        }
        Check::Valid
    }

    /// Notes a failed sign-in; false when there have been too many lately.
    pub fn allow_attempt(&self) -> bool {
        let now = Instant::now();
        let mut f = self.failures.lock().expect("failures lock");
        while f.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60)) {
            f.pop_front();
        }
        f.len() < FAILURES_PER_MINUTE
    }

    pub fn failed(&self) {
        self.failures.lock().expect("failures lock").push_back(Instant::now());
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    now.duration_since(s.last_seen) < IDLE && now.duration_since(s.created) < MAX_AGE
}

/// The session cookie's value, if the request has one.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// The Set-Cookie value for a session (`None`: one that removes the cookie).
pub fn set_cookie(id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}", MAX_AGE.as_secs()),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_cookie(id: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(&format!("other=1; {COOKIE}={id}")).unwrap());
        h
    }

    #[test]
    fn a_session_needs_its_csrf_token_to_change_anything() {
        let s = Sessions::default();
        let new = s.create();
        let mut h = with_cookie(&new.id);
        assert_eq!(s.check(&Method::GET, &h), Check::Valid);
        assert_eq!(s.check(&Method::POST, &h), Check::Forged);
        h.insert(CSRF_HEADER, HeaderValue::from_str(&new.csrf).unwrap());
        assert_eq!(s.check(&Method::POST, &h), Check::Valid);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert_eq!(s.check(&Method::DELETE, &h), Check::Forged);
        assert_eq!(s.check(&Method::GET, &with_cookie("0000")), Check::NoSession);
        s.end(&h);
        assert_eq!(s.check(&Method::GET, &h), Check::NoSession);
    }

    #[test]
    fn too_many_failed_sign_ins_are_turned_away() {
        let s = Sessions::default();
        for _ in 0..FAILURES_PER_MINUTE {
            assert!(s.allow_attempt());
            s.failed();
        }
        assert!(!s.allow_attempt());
    }
}
