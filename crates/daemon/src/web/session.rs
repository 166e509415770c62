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
/// Sign-ins allowed per minute from one client before its further attempts are turned away.
/// Each is counted when it starts, before the secret is checked, so parallel requests cannot
/// get more checked; a success gives its attempt back.
const ATTEMPTS_PER_MINUTE: usize = 10;
/// Clients remembered at most: a flood from many addresses cannot grow memory without end.
const CLIENTS_REMEMBERED: usize = 4096;

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
    attempts: Mutex<HashMap<Client, VecDeque<Instant>>>,
}

/// Who is signing in, for the limit: an IPv4 address, or an IPv6 /64 (one household or
/// machine holds a whole /64, so counting single addresses would count nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Client(u128);

impl From<std::net::IpAddr> for Client {
    fn from(ip: std::net::IpAddr) -> Self {
        match ip {
            std::net::IpAddr::V4(v4) => Client(u32::from(v4) as u128),
            std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client(u32::from(v4) as u128),
                None => Client((u128::from(v6) & !((1u128 << 64) - 1)) | 1),
            },
        }
    }
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

    /// Counts a sign-in attempt from `client` before its secret is checked; false (and not
    /// counted) when the client has made too many in the last minute.
    pub fn begin_attempt(&self, client: Client) -> bool {
        let now = Instant::now();
        let mut all = self.attempts.lock().expect("attempts lock");
        if all.len() >= CLIENTS_REMEMBERED {
            all.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) <= Duration::from_secs(60)));
        }
        if all.len() >= CLIENTS_REMEMBERED && !all.contains_key(&client) {
            // Still full of clients active this minute: a flood; turn newcomers away.
            return false;
        }
        let q = all.entry(client).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60)) {
            q.pop_front();
        }
        if q.len() >= ATTEMPTS_PER_MINUTE {
            return false;
        }
        q.push_back(now);
        true
    }

    /// A sign-in that succeeded does not count against its client.
    pub fn succeeded(&self, client: Client) {
        if let Some(q) = self.attempts.lock().expect("attempts lock").get_mut(&client) {
            q.pop_back();
        }
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
    fn too_many_sign_ins_from_one_client_are_turned_away_and_others_are_not() {
        let s = Sessions::default();
        let a = Client::from("192.0.2.7".parse::<std::net::IpAddr>().unwrap());
        let b = Client::from("192.0.2.8".parse::<std::net::IpAddr>().unwrap());
        for _ in 0..ATTEMPTS_PER_MINUTE {
            assert!(s.begin_attempt(a));
        }
        assert!(!s.begin_attempt(a));
        assert!(s.begin_attempt(b));
        s.succeeded(b);
        let v6 = |t: &str| Client::from(t.parse::<std::net::IpAddr>().unwrap());
        assert_eq!(v6("2001:db8:1:2::1"), v6("2001:db8:1:2:ffff::9"));
        assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
    }
}
