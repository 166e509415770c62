use std::ops::Range;
use std::time::Duration;

use opendal::{services, Buffer, EntryMode, ErrorKind, Operator};

use crate::error::network_cause;
use crate::runtime::{block_on_for, limit_for, REQUEST_LIMIT};
use crate::store::{check_name, check_read_length, is_temporary, older_than, temporary_beside};
use crate::{ObjectInfo, Store, StoreError, StoreResult};

/// A storage service reached through Apache OpenDAL, with the keys Lifeboat's configuration
/// gives it. Secrets are already resolved; none of them is ever printed.
#[derive(Clone)]
pub enum ServiceConfig {
    S3 {
        endpoint: Option<String>,
        region: Option<String>,
        bucket: String,
        root: String,
        access_key_id: Option<String>,
        secret_access_key: Option<String>,
    },
    Webdav {
        url: String,
        root: String,
        username: Option<String>,
        password: Option<String>,
    },
    /// Dropbox, OneDrive and Google Drive: an OAuth refresh token with the application's
    /// client credentials (or a short-lived access token).
    Drive {
        kind: DriveKind,
        root: String,
        refresh_token: Option<String>,
        access_token: Option<String>,
        client_id: Option<String>,
        client_secret: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveKind {
    Dropbox,
    Onedrive,
    Gdrive,
}

/// A repository on a storage service: S3-compatible object storage, WebDAV (Nextcloud,
/// ownCloud), Dropbox, OneDrive, Google Drive.
///
/// Every object is written with one request; services whose writes are not atomic (WebDAV
/// servers may show a partial file during an upload) get a temporary name and a rename.
pub struct ServiceStore {
    op: Operator,
    /// For WebDAV: the server's address and credentials, for the one request OpenDAL does
    /// not make (a MOVE that refuses to replace).
    webdav: Option<WebdavMove>,
    label: String,
    description: String,
    /// The server in a person's words, for messages: "the S3 server at http://…".
    server: String,
    /// For WebDAV: the folder the url names, which must exist (the root's folders under it
    /// are made by the first backup).
    url_folder: Option<String>,
    rename_into_place: bool,
    create_if_absent: bool,
}

/// Takes a user name and password written inside a URL (`https://user:pass@host/dav`) out of
/// it, into the separate keys where those are not given, so that no message, listing or log
/// ever shows them with the address.
fn credentials_out_of(
    label: &str,
    url: &str,
    username: &Option<String>,
    password: &Option<String>,
) -> StoreResult<(String, Option<String>, Option<String>)> {
    let mut parsed = reqwest::Url::parse(url).map_err(|e| StoreError::Remote {
        location: label.to_string(),
        op: "configuring",
        name: "the location".into(),
        // Never the URL itself: it may hold a password.
        cause: format!("its url is not a URL ({e}): write it as https://host/path"),
        transient: false,
    })?;
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let in_user = (!parsed.username().is_empty()).then(|| decode(parsed.username()));
    let in_password = parsed.password().map(decode);
    // Both setters fail only for URLs that cannot have credentials, which then have none.
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    Ok((parsed.to_string(), username.clone().or(in_user), password.clone().or(in_password)))
}

impl ServiceStore {
    pub fn new(label: impl Into<String>, config: &ServiceConfig) -> StoreResult<Self> {
        crate::tls::install_provider();
        // OpenDAL's services and HTTP client (reqwest with rustls) are installed once per process.
        static HTTP: std::sync::Once = std::sync::Once::new();
        HTTP.call_once(|| {
            opendal::install_default();
            opendal_http_transport_reqwest::install_default();
        });
        let label = label.into();
        let bad = |e: opendal::Error| StoreError::Remote {
            location: label.clone(),
            op: "configuring",
            name: "the location".into(),
            cause: e.message().to_string(),
            transient: false,
        };
        let (server, url_folder) = server_of(config);
        let (op, description, rename_into_place) = match config {
            ServiceConfig::S3 { endpoint, region, bucket, root, access_key_id, secret_access_key } => {
                let mut b = services::S3::default().bucket(bucket).root(&absolute(root)).disable_config_load();
                if let Some(e) = endpoint {
                    b = b.endpoint(e);
                }
                // Most S3-compatible servers ignore the region but the signature needs one.
                b = b.region(region.as_deref().unwrap_or("us-east-1"));
                match (access_key_id, secret_access_key) {
                    // Not `.access_key_id().secret_access_key()`: those keys would be logged
                    // in full at debug level (s3_keys.rs).
                    (Some(id), Some(secret)) => b = b.credential_provider_chain(crate::s3_keys::only(id, secret)),
                    _ => b = b.skip_signature(),
                }
                let at = endpoint.as_deref().unwrap_or("s3");
                (Operator::new(b).map_err(bad)?, format!("{at}/{bucket}{}", absolute(root)), false)
            }
            ServiceConfig::Webdav { url, root, username, password } => {
                let (url, username, password) = credentials_out_of(&label, url, username, password)?;
                let (url, username, password) = (&url, &username, &password);
                let mut b = services::Webdav::default().endpoint(url).root(&absolute(root));
                if let Some(u) = username {
                    b = b.username(u);
                }
                if let Some(p) = password {
                    b = b.password(p);
                }
                (Operator::new(b).map_err(bad)?, format!("{}{}", url.trim_end_matches('/'), absolute(root)), true)
            }
            ServiceConfig::Drive { kind, root, refresh_token, access_token, client_id, client_secret } => {
                let root = absolute(root);
                // The three drives' builders take the same OAuth keys.
                macro_rules! drive {
                    ($builder:expr) => {{
                        let mut b = $builder.root(&root);
                        if let Some(v) = refresh_token {
                            b = b.refresh_token(v);
                        }
                        if let Some(v) = access_token {
                            b = b.access_token(v);
                        }
                        if let Some(v) = client_id {
                            b = b.client_id(v);
                        }
                        if let Some(v) = client_secret {
                            b = b.client_secret(v);
                        }
                        Operator::new(b)
                    }};
                }
                let op = match kind {
                    DriveKind::Dropbox => drive!(services::Dropbox::default()),
                    DriveKind::Onedrive => drive!(services::Onedrive::default()),
                    DriveKind::Gdrive => drive!(services::Gdrive::default()),
                }
                .map_err(bad)?;
                let name = match kind {
                    DriveKind::Dropbox => "dropbox",
                    DriveKind::Onedrive => "onedrive",
                    DriveKind::Gdrive => "gdrive",
                };
                (op, format!("{name}:{root}"), false)
            }
        };
        let cap = op.info().capability();
        let webdav = match config {
            ServiceConfig::Webdav { url, root, username, password } => {
                let (url, username, password) = credentials_out_of(&label, url, username, password)?;
                Some(WebdavMove {
                    base: format!("{}{}", url.trim_end_matches('/'), absolute(root)),
                    url: url.clone(),
                    url_folder_seen: Default::default(),
                    username,
                    password,
                    client: reqwest::Client::new(),
                })
            }
            _ => None,
        };
        Ok(ServiceStore {
            webdav,
            server,
            url_folder,
            rename_into_place: rename_into_place && cap.rename,
            create_if_absent: cap.write_with_if_not_exists,
            op,
            label,
            description,
        })
    }

    fn run<T>(
        &self,
        op: &'static str,
        name: &str,
        bytes: u64,
        fut: impl std::future::Future<Output = opendal::Result<T>>,
    ) -> StoreResult<T> {
        match block_on_for(limit_for(bytes), fut) {
            Some(r) => r.map_err(|e| self.map_error(op, name, e)),
            None => Err(StoreError::Remote {
                location: self.label.clone(),
                op,
                name: name.to_string(),
                cause: "the service did not answer in time".into(),
                transient: true,
            }),
        }
    }

    /// The one place an OpenDAL error becomes a [`StoreError`]: classified (unreachable,
    /// credentials refused, missing, full, other) and told in plain words. Its own text, with
    /// URLs and the HTTP client's context, is logged at debug level (`--verbose`).
    fn map_error(&self, op: &'static str, name: &str, e: opendal::Error) -> StoreError {
        let text = error_text(&e);
        tracing::debug!("{}: {op} {name}: {text}", self.label);
        let lower = text.to_ascii_lowercase();
        let location = self.label.clone();
        let status = http_status(&text);
        if lower.contains("nosuchbucket") || lower.contains("bucket does not exist") {
            return StoreError::NoContainer { location, cause: "the bucket does not exist".into() };
        }
        // RFC 4918: MKCOL answers 409 when the folder above is missing. OpenDAL makes the
        // root's folders one by one from the url's folder down, so it is the url's folder.
        if status == Some(409) && lower.contains("mkcol") {
            let folder = self.url_folder.clone().unwrap_or_else(|| "/".into());
            return StoreError::NoFolder { location, server: self.server.clone(), folder };
        }
        if lower.contains("invalidaccesskeyid")
            || lower.contains("signaturedoesnotmatch")
            || lower.contains("accessdenied")
            || status == Some(401)
            || lower.contains("401 unauthorized")
            || lower.contains("invalid_grant")
        {
            return StoreError::AuthRefused { location, cause: plain_cause(&e, &text, status) };
        }
        if lower.contains("quotaexceeded") || lower.contains("insufficient storage") || status == Some(507) {
            return StoreError::Full { name: format!("{name} on {location}") };
        }
        if status.is_none() {
            let cause = network_cause(&text).or_else(|| {
                (lower.contains("error sending request") || lower.contains("error trying to connect"))
                    .then_some("no answer")
            });
            if let Some(cause) = cause {
                return StoreError::Offline { location, server: self.server.clone(), cause: cause.into() };
            }
        }
        match e.kind() {
            ErrorKind::NotFound => StoreError::NotFound { name: name.to_string() },
            ErrorKind::PermissionDenied => StoreError::AuthRefused { location, cause: plain_cause(&e, &text, status) },
            kind => StoreError::Remote {
                location,
                op,
                name: name.to_string(),
                cause: plain_cause(&e, &text, status),
                // What OpenDAL marks permanent (a 409, a 400) fails the same way each time:
                // it is told at once, never retried.
                transient: e.is_temporary() || kind == ErrorKind::RateLimited,
            },
        }
    }

    /// For WebDAV, when the folder the url names is not on the server: nothing under it can
    /// be listed or made, and an empty listing would hide that. (The root's own folders are
    /// made by the first backup: their absence is no error.)
    fn url_folder_missing(&self) -> Option<StoreError> {
        let dav = self.webdav.as_ref()?;
        if dav.url_folder_seen.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        match block_on_for(REQUEST_LIMIT, dav.url_folder_exists()) {
            Some(Ok(false)) => Some(StoreError::NoFolder {
                location: self.label.clone(),
                server: self.server.clone(),
                folder: self.url_folder.clone().unwrap_or_else(|| "/".into()),
            }),
            _ => None,
        }
    }

    async fn put(&self, path: &str, data: Buffer) -> opendal::Result<()> {
        if !self.rename_into_place {
            self.op.write(path, data).await?;
            return Ok(());
        }
        let tmp = temporary_beside(path);
        let result = async {
            self.op.write(&tmp, data).await?;
            self.op.rename(&tmp, path).await
        }
        .await;
        if result.is_err() {
            let _ = self.op.delete(&tmp).await;
        }
        result
    }
}

impl Store for ServiceStore {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn prepare(&self) -> StoreResult<()> {
        // Listing proves the address, the credentials and the bucket in one request.
        self.run("listing", "the location", 0, async {
            match self.op.list_with("/").limit(1).await {
                Err(e) if e.kind() == ErrorKind::NotFound && !error_text(&e).contains("NoSuchBucket") => {
                    self.op.create_dir("/").await
                }
                r => r.map(|_| ()),
            }
        })
    }

    fn write(&self, name: &str, data: &[u8]) -> StoreResult<()> {
        check_name(name)?;
        self.run("writing", name, data.len() as u64, self.put(name, Buffer::from(data.to_vec())))
    }

    fn write_shared(&self, name: &str, data: crate::Bytes) -> StoreResult<()> {
        check_name(name)?;
        self.run("writing", name, data.len() as u64, self.put(name, Buffer::from(data)))
    }

    fn write_new(&self, name: &str, data: &[u8]) -> StoreResult<bool> {
        check_name(name)?;
        if self.create_if_absent {
            return self.run("writing", name, data.len() as u64, async {
                match self.op.write_with(name, Buffer::from(data.to_vec())).if_not_exists(true).await {
                    Ok(_) => Ok(true),
                    Err(e) if e.kind() == ErrorKind::ConditionNotMatch => Ok(false),
                    Err(e) => Err(e),
                }
            });
        }
        if let Some(dav) = &self.webdav {
            // Upload under a temporary name, then MOVE with `Overwrite: F`: the server
            // refuses if the name exists (RFC 4918), atomically.
            let tmp = temporary_beside(name);
            self.run("writing", name, data.len() as u64, self.op.write(&tmp, Buffer::from(data.to_vec())))?;
            // 423 Locked: another client is moving onto the name this instant; once it is
            // done the name exists (412) or is free again, so ask again after a moment.
            let mut wait = std::time::Duration::from_millis(20);
            let moved = loop {
                match block_on_for(REQUEST_LIMIT, dav.move_no_replace(&tmp, name)) {
                    Some(Ok(Some(created))) => break Ok(created),
                    Some(Ok(None)) if wait < std::time::Duration::from_secs(5) => {
                        std::thread::sleep(wait);
                        wait *= 2;
                    }
                    Some(Ok(None)) => break Err("the server kept the name locked (423 to MOVE)".to_string()),
                    Some(Err(e)) => break Err(e),
                    None => break Err("the server did not answer in time".into()),
                }
            };
            let _ = self.run("removing", &tmp, 0, self.op.delete(&tmp));
            return moved.map_err(|cause| StoreError::Remote {
                location: self.label.clone(),
                op: "writing",
                name: name.to_string(),
                cause,
                transient: false,
            });
        }
        // No conditional write here: check, write, and read back. Two devices creating one
        // repository in the same instant could both think they won; the read-back makes the
        // loser see the winner's object in all but that instant.
        match self.size(name) {
            Ok(_) => return Ok(false),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        self.write(name, data)?;
        Ok(self.read(name, None)? == data)
    }

    fn read(&self, name: &str, range: Option<Range<u64>>) -> StoreResult<Vec<u8>> {
        check_name(name)?;
        match range {
            None => Ok(self.run("reading", name, 64 << 20, self.op.read(name))?.to_vec()),
            Some(r) => {
                let want = r.end.saturating_sub(r.start);
                if want == 0 {
                    return Ok(Vec::new());
                }
                let got = self.run("reading", name, want, async { self.op.read_with(name).range(r.clone()).await });
                let got = match got {
                    Ok(b) => b.to_vec(),
                    Err(StoreError::Remote { .. }) | Err(StoreError::NotFound { .. })
                        if self.size(name).is_ok_and(|len| len < r.end) =>
                    {
                        Vec::new()
                    }
                    Err(e) => return Err(e),
                };
                if (got.len() as u64) < want {
                    let len = self.size(name)?;
                    check_read_length(name, &r, got.len(), || len)?;
                }
                Ok(got)
            }
        }
    }

    fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>> {
        check_name(prefix)?;
        let dir = format!("{prefix}/");
        let entries = match self.run("listing", prefix, 0, async { self.op.list_with(&dir).recursive(true).await }) {
            Err(e) if e.is_not_found() => Vec::new(),
            r => r?,
        };
        // WebDAV lists a missing folder as empty.
        if entries.is_empty() {
            if let Some(e) = self.url_folder_missing() {
                return Err(e);
            }
        }
        let mut out = Vec::new();
        for entry in entries {
            let meta = entry.metadata();
            if meta.mode() != EntryMode::FILE {
                continue;
            }
            let name = entry.path().trim_start_matches('/').to_string();
            if name.rsplit('/').next().is_some_and(is_temporary) {
                continue;
            }
            // Some listings leave the size out; ask. An object removed since it was listed is
            // not there any more.
            let size = if meta.content_length() > 0 {
                meta.content_length()
            } else {
                match self.size(&name) {
                    Ok(size) => size,
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => return Err(e),
                }
            };
            out.push(ObjectInfo { name, size });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn stale_temporaries(&self, prefix: &str, age: Duration) -> StoreResult<Vec<String>> {
        check_name(prefix)?;
        let dir = format!("{prefix}/");
        let entries = match self.run("listing", prefix, 0, async { self.op.list_with(&dir).recursive(true).await }) {
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            r => r?,
        };
        Ok(entries
            .into_iter()
            .filter(|e| e.metadata().mode() == EntryMode::FILE)
            .filter(|e| e.path().rsplit('/').next().is_some_and(is_temporary))
            // A service that gives no time is not trusted with an age: the object stays.
            .filter(|e| e.metadata().last_modified().is_some_and(|t| older_than(t.into(), age)))
            .map(|e| e.path().trim_start_matches('/').to_string())
            .collect())
    }

    fn size(&self, name: &str) -> StoreResult<u64> {
        check_name(name)?;
        Ok(self.run("reading", name, 0, self.op.stat(name))?.content_length())
    }

    fn remove(&self, name: &str) -> StoreResult<()> {
        check_name(name)?;
        match self.run("removing", name, 0, self.op.delete(name)) {
            Err(e) if e.is_not_found() => Ok(()),
            r => r,
        }
    }

    fn connections(&self) -> usize {
        // Each request is its own HTTP exchange, cheap to run side by side.
        16
    }

    fn write_concurrency(&self) -> usize {
        // Object stores reward parallel uploads; each pack in flight costs its size in memory.
        4
    }
}

fn absolute(root: &str) -> String {
    format!("/{}", root.trim_matches('/'))
}

/// The error and its causes, one line.
fn error_text(e: &opendal::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.replace('\n', " ")
}

/// The server of a configuration as messages name it, and for WebDAV the folder its url names.
fn server_of(config: &ServiceConfig) -> (String, Option<String>) {
    match config {
        ServiceConfig::S3 { endpoint: Some(e), .. } => (format!("the S3 server at {}", address_of(e).0), None),
        ServiceConfig::S3 { endpoint: None, .. } => ("Amazon S3".into(), None),
        ServiceConfig::Webdav { url, .. } => {
            let (address, folder) = address_of(url);
            (format!("the WebDAV server at {address}"), Some(folder))
        }
        ServiceConfig::Drive { kind: DriveKind::Dropbox, .. } => ("Dropbox".into(), None),
        ServiceConfig::Drive { kind: DriveKind::Onedrive, .. } => ("OneDrive".into(), None),
        ServiceConfig::Drive { kind: DriveKind::Gdrive, .. } => ("Google Drive".into(), None),
    }
}

/// A URL's scheme, host and port (never a user or password written in it), and its folder.
fn address_of(url: &str) -> (String, String) {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let folder = percent_encoding::percent_decode_str(u.path().trim_end_matches('/')).decode_utf8_lossy();
            let folder = if folder.is_empty() { "/".to_string() } else { folder.into_owned() };
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            (format!("{}://{}{port}", u.scheme(), u.host_str().unwrap_or("")), folder)
        }
        Err(_) => ("its url".into(), "/".into()),
    }
}

/// The HTTP status a service answered, where the error carries its response.
fn http_status(text: &str) -> Option<u16> {
    let at = text.find("status: ")? + "status: ".len();
    text[at..].get(..3)?.parse().ok().filter(|s| (100..600).contains(s))
}

/// Why a request failed, in a few words: the server's answer (status, and an S3 error code),
/// a network failure, or OpenDAL's own message without its context.
fn plain_cause(e: &opendal::Error, text: &str, status: Option<u16>) -> String {
    if let Some(status) = status {
        let reason = reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
        let code = text
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map(|(code, _)| format!(" ({code})"))
            .unwrap_or_default();
        return format!("the server answered {status} {reason}{code}").replace("  ", " ");
    }
    if let Some(words) = network_cause(text) {
        return words.into();
    }
    let message: String = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    let mut short: String = message.chars().take(120).collect();
    if short.len() < message.len() {
        short.push('…');
    }
    if short.is_empty() {
        e.kind().to_string()
    } else {
        short
    }
}

struct WebdavMove {
    base: String,
    /// The url as configured (without credentials), above the root.
    url: String,
    /// Set once the url's folder was found on the server: it is not asked again.
    url_folder_seen: std::sync::atomic::AtomicBool,
    username: Option<String>,
    password: Option<String>,
    client: reqwest::Client,
}

impl WebdavMove {
    /// Whether the folder the url names is on the server: a PROPFIND of it alone. Only a
    /// clear "no" (404, or 409 for a folder above it missing) is false.
    async fn url_folder_exists(&self) -> Result<bool, String> {
        let method = reqwest::Method::from_bytes(b"PROPFIND").map_err(|e| e.to_string())?;
        let mut req = self.client.request(method, format!("{}/", self.url.trim_end_matches('/'))).header("Depth", "0");
        if let Some(user) = &self.username {
            req = req.basic_auth(user, self.password.as_deref());
        }
        let status = req.send().await.map_err(|e| e.to_string())?.status();
        let exists = !matches!(status.as_u16(), 404 | 409);
        if status.is_success() {
            self.url_folder_seen.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(exists)
    }

    /// `Ok(Some(true))` when moved, `Ok(Some(false))` when the destination exists, `Ok(None)`
    /// when it is locked by another client's request.
    async fn move_no_replace(&self, from: &str, to: &str) -> Result<Option<bool>, String> {
        let method = reqwest::Method::from_bytes(b"MOVE").map_err(|e| e.to_string())?;
        let mut req = self
            .client
            .request(method, format!("{}/{from}", self.base))
            .header("Destination", format!("{}/{to}", self.base))
            .header("Overwrite", "F");
        if let Some(user) = &self.username {
            req = req.basic_auth(user, self.password.as_deref());
        }
        let status = req.send().await.map_err(|e| e.to_string())?.status();
        match status.as_u16() {
            200..=299 => Ok(Some(true)),
            412 => Ok(Some(false)),
            423 => Ok(None),
            code => Err(format!("the server answered {code} to MOVE")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_is_named_by_its_address_without_credentials_and_its_answer_by_its_status() {
        assert_eq!(
            address_of("https://anna:secret@cloud.example:8443/remote.php/dav/files/anna/"),
            ("https://cloud.example:8443".to_string(), "/remote.php/dav/files/anna".to_string())
        );
        assert_eq!(address_of("http://127.0.0.1:9000").1, "/");
        let text = "Unexpected (permanent) at write, context: { service_operation: Mkcol, uri: \
                    http://127.0.0.1:1/x/, response: Parts { status: 409, version: HTTP/1.1 } }";
        assert_eq!(http_status(text), Some(409));
        assert_eq!(http_status("Unexpected (temporary) at list => send http request"), None);
        let e = opendal::Error::new(ErrorKind::Unexpected, "<Error><Code>SlowDown</Code></Error>");
        assert_eq!(
            plain_cause(&e, "response: Parts { status: 503 } <Code>SlowDown</Code>", Some(503)),
            "the server answered 503 Service Unavailable (SlowDown)"
        );
    }
}
