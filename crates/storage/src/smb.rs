use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use smb2::client::Connection;
use smb2::{ClientConfig, ErrorKind, RenameOptions, SmbClient, Tree};
use tokio::sync::Mutex;

use crate::runtime::{block_on_for, limit_for, REQUEST_LIMIT};
use crate::store::{check_name, check_read_length, older_than, temporary_beside};
use crate::walk::Walk;
use crate::{ObjectInfo, Store, StoreError, StoreResult};

/// Where and how to reach an SMB share (Windows, Samba, a NAS), without mounting it.
#[derive(Clone)]
pub struct SmbConfig {
    pub host: String,
    pub port: u16,
    pub share: String,
    /// Folder inside the share holding the repository.
    pub path: String,
    pub username: String,
    pub password: String,
    pub domain: Option<String>,
}

impl std::fmt::Debug for SmbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(f, "smb://{}@{}:{}/{}/{}", self.username, self.host, self.port, self.share, self.path)
    }
}

/// A repository in a folder of an SMB share (SMB 2 and 3), through a client written in Rust:
/// nothing to install, and requests from several threads are multiplexed over one session.
///
/// A broken session is dropped and opened again on the next request. Writes go to a
/// temporary name and are renamed into place.
pub struct SmbStore {
    config: SmbConfig,
    label: String,
    session: Mutex<Option<Arc<Session>>>,
}

/// One signed-in session with the share open. Requests clone the connection: the clones
/// share one socket and the server's credits, each waiting for its own answer.
struct Session {
    tree: Arc<Tree>,
    conn: Connection,
    // Holds the session the tree was opened on for as long as it is used.
    _client: SmbClient,
}

impl SmbStore {
    pub fn new(label: impl Into<String>, config: SmbConfig) -> Self {
        SmbStore { config, label: label.into(), session: Mutex::new(None) }
    }

    /// The path of `name` inside the share.
    fn path(&self, name: &str) -> String {
        let base = self.config.path.trim_matches('/');
        match (base.is_empty(), name.is_empty()) {
            (true, _) => name.to_string(),
            (false, true) => base.to_string(),
            (false, false) => format!("{base}/{name}"),
        }
    }

    /// Runs one operation with the session (opening it first if needed), within a time
    /// limit; a failure of the session itself drops it, so that the next call reconnects.
    fn run<T, F, Fut>(&self, op: &'static str, name: &str, bytes: u64, f: F) -> StoreResult<T>
    where
        F: FnOnce(Arc<Tree>, Connection) -> Fut,
        Fut: std::future::Future<Output = Result<T, smb2::Error>>,
    {
        let outcome = block_on_for(limit_for(bytes), async {
            let session = self.session().await?;
            match f(session.tree.clone(), session.conn.clone()).await {
                Ok(v) => Ok(v),
                Err(e) => {
                    if session_is_gone(&e) {
                        *self.session.lock().await = None;
                    }
                    Err(self.map_error(op, name, e))
                }
            }
        });
        match outcome {
            Some(r) => r,
            None => {
                // The session may be wedged; start afresh next time.
                block_on_for(REQUEST_LIMIT, async { *self.session.lock().await = None });
                Err(self.remote(op, name, "the server did not answer in time".into(), true))
            }
        }
    }

    async fn session(&self) -> StoreResult<Arc<Session>> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let session = Arc::new(self.connect().await?);
        *slot = Some(session.clone());
        Ok(session)
    }

    async fn connect(&self) -> StoreResult<Session> {
        let c = &self.config;
        let config = ClientConfig {
            addr: format!("{}:{}", c.host, c.port),
            timeout: REQUEST_LIMIT,
            username: c.username.clone(),
            password: c.password.clone(),
            domain: c.domain.clone().unwrap_or_default(),
            // A backup repository sits in one share on one server: a referral elsewhere is
            // not followed.
            dfs_enabled: false,
            ..Default::default()
        };
        let mut client = SmbClient::connect(config).await.map_err(|e| match e.kind() {
            ErrorKind::AuthRequired | ErrorKind::GuestSessionRefused | ErrorKind::AccessDenied => {
                StoreError::AuthRefused {
                    location: self.label.clone(),
                    cause: format!("the server did not accept user {:?} with this password", c.username),
                }
            }
            _ => self.offline(&e),
        })?;
        let share = c.share.trim_matches('/');
        let tree = client.connect_share(share).await.map_err(|e| match e.kind() {
            ErrorKind::NotFound => StoreError::NoContainer {
                location: self.label.clone(),
                cause: format!("the server has no share {share:?}"),
            },
            ErrorKind::AccessDenied | ErrorKind::AuthRequired => StoreError::AuthRefused {
                location: self.label.clone(),
                cause: format!("user {:?} may not open the share {share:?}", c.username),
            },
            _ => self.map_error("opening", "the share", e),
        })?;
        let conn = client.connection().clone();
        Ok(Session { tree: Arc::new(tree), conn, _client: client })
    }

    /// The server did not answer: in plain words where the failure is a common one.
    fn offline(&self, e: &smb2::Error) -> StoreError {
        let text = e.to_string();
        tracing::debug!("{}: {text}", self.label);
        StoreError::Offline {
            location: self.label.clone(),
            server: format!("the SMB server at {}:{}", self.config.host, self.config.port),
            cause: crate::error::network_cause(&text).map(str::to_string).unwrap_or(text),
        }
    }

    fn remote(&self, op: &'static str, name: &str, cause: String, transient: bool) -> StoreError {
        StoreError::Remote { location: self.label.clone(), op, name: name.to_string(), cause, transient }
    }

    fn map_error(&self, op: &'static str, name: &str, e: smb2::Error) -> StoreError {
        let location = self.label.clone();
        match e.kind() {
            ErrorKind::NotFound => StoreError::NotFound { name: name.to_string() },
            ErrorKind::AccessDenied => StoreError::PermissionDenied { name: format!("{name} on {location}") },
            ErrorKind::DiskFull => StoreError::Full { name: format!("{name} on {location}") },
            ErrorKind::ConnectionLost => self.offline(&e),
            ErrorKind::AuthRequired => StoreError::AuthRefused {
                location,
                cause: format!("the server no longer accepts user {:?}: {e}", self.config.username),
            },
            // Dropped above: the next attempt signs in again.
            ErrorKind::SessionExpired => self.remote(op, name, e.to_string(), true),
            kind => self.remote(op, name, e.to_string(), e.is_retryable() || kind == ErrorKind::TimedOut),
        }
    }

    /// The objects under a prefix with their times; the temporary ones instead with
    /// `temporaries`.
    fn walk(&self, prefix: &str, temporaries: bool) -> StoreResult<Vec<(ObjectInfo, SystemTime)>> {
        check_name(prefix)?;
        let root = self.path(prefix);
        self.run("listing", prefix, 0, |tree, mut conn| async move {
            let mut walk = Walk::new(root, prefix, temporaries);
            while let Some((dir, name)) = walk.next_folder() {
                let entries = match tree.list_directory(&mut conn, &dir).await {
                    Ok(entries) => entries,
                    // A prefix nothing was written under yet.
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                for entry in entries {
                    let file_name = entry.name.as_str();
                    if file_name == "." || file_name == ".." {
                        continue;
                    }
                    let full = if dir.is_empty() { file_name.to_string() } else { format!("{dir}/{file_name}") };
                    if entry.is_directory {
                        walk.folder(full, &name, file_name);
                    } else if walk.wants_file(file_name) {
                        // The listing carries sizes and times: no request per file.
                        let modified = entry.modified.to_system_time().unwrap_or(SystemTime::UNIX_EPOCH);
                        walk.file(&name, file_name, entry.size, modified);
                    }
                }
            }
            Ok(walk.finish())
        })
    }

    async fn make_parents(tree: &Tree, conn: &mut Connection, path: &str) -> Result<(), smb2::Error> {
        let mut prefix = String::new();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            match tree.create_directory(conn, &prefix).await {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes `data` to `path` (replacing what is there), making the folders above it first
    /// when they are missing.
    async fn upload(tree: &Tree, conn: &mut Connection, path: &str, data: &[u8]) -> Result<(), smb2::Error> {
        match tree.write_file(conn, path, data).await {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Self::make_parents(tree, conn, path).await?;
                tree.write_file(conn, path, data).await?;
            }
            r => {
                r?;
            }
        }
        Ok(())
    }
}

/// Whether the session behind a failed request is gone, so the next request must open a
/// new one.
fn session_is_gone(e: &smb2::Error) -> bool {
    matches!(e.kind(), ErrorKind::ConnectionLost | ErrorKind::TimedOut | ErrorKind::SessionExpired)
}

impl Store for SmbStore {
    fn describe(&self) -> String {
        let c = &self.config;
        format!("smb://{}:{}/{}/{}", c.host, c.port, c.share, c.path.trim_matches('/'))
    }

    fn prepare(&self) -> StoreResult<()> {
        let probe = self.path("x");
        self.run("creating", "the folder", 0, |tree, mut conn| async move {
            Self::make_parents(&tree, &mut conn, &probe).await
        })
    }

    fn write(&self, name: &str, data: &[u8]) -> StoreResult<()> {
        check_name(name)?;
        let path = self.path(name);
        self.run("writing", name, data.len() as u64, |tree, mut conn| async move {
            let tmp = temporary_beside(&path);
            let mut result = Self::upload(&tree, &mut conn, &tmp, data).await;
            if result.is_ok() {
                let replace = RenameOptions::new().replace_if_exists(true);
                result = tree.rename_with(&mut conn, &tmp, &path, replace).await;
            }
            if result.is_err() {
                let _ = tree.delete_file(&mut conn, &tmp).await;
            }
            result
        })
    }

    fn write_new(&self, name: &str, data: &[u8]) -> StoreResult<bool> {
        check_name(name)?;
        let path = self.path(name);
        // Created only if the name is free, decided by the server: of several writers exactly
        // one creates it. The object is small (the repository's config) and goes in one
        // compound request, so no one sees it half written.
        self.run("writing", name, data.len() as u64, |tree, mut conn| async move {
            let first = match tree.write_file_compound_exclusive(&mut conn, &path, data).await {
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    Self::make_parents(&tree, &mut conn, &path).await?;
                    tree.write_file_compound_exclusive(&mut conn, &path, data).await
                }
                r => r,
            };
            match first {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    fn read(&self, name: &str, range: Option<Range<u64>>) -> StoreResult<Vec<u8>> {
        check_name(name)?;
        let path = self.path(name);
        let want = range.as_ref().map(|r| r.end.saturating_sub(r.start)).unwrap_or(64 << 20);
        let wanted = range.clone();
        let (data, total) = self.run("reading", name, want, |tree, mut conn| async move {
            match wanted {
                None => Ok((tree.read_file_pipelined(&mut conn, &path).await?, 0)),
                Some(r) => {
                    let reader = tree.open_file_reader(conn, &path).await?;
                    let total = reader.size();
                    let read = reader.read_at(r.start, r.end.saturating_sub(r.start)).await;
                    let closed = reader.close().await;
                    let data = read?;
                    closed?;
                    Ok((data, total))
                }
            }
        })?;
        if let Some(r) = range {
            check_read_length(name, &r, data.len(), || total)?;
        }
        Ok(data)
    }

    fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>> {
        Ok(self.walk(prefix, false)?.into_iter().map(|(o, _)| o).collect())
    }

    fn stale_temporaries(&self, prefix: &str, age: std::time::Duration) -> StoreResult<Vec<String>> {
        Ok(self.walk(prefix, true)?.into_iter().filter(|(_, t)| older_than(*t, age)).map(|(o, _)| o.name).collect())
    }

    fn size(&self, name: &str) -> StoreResult<u64> {
        check_name(name)?;
        let path = self.path(name);
        self.run("reading", name, 0, |tree, mut conn| async move { Ok(tree.stat(&mut conn, &path).await?.size) })
    }

    fn remove(&self, name: &str) -> StoreResult<()> {
        check_name(name)?;
        let path = self.path(name);
        match self.run("removing", name, 0, |tree, mut conn| async move { tree.delete_file(&mut conn, &path).await }) {
            Err(e) if e.is_not_found() => Ok(()),
            r => r,
        }
    }

    fn connections(&self) -> usize {
        // Requests are multiplexed over one session: eight in flight hide the round trip.
        8
    }

    fn write_concurrency(&self) -> usize {
        // Packs go over one session; two in flight keep it busy.
        2
    }

    fn free_space(&self) -> Option<u64> {
        self.run("asking free space of", "the share", 0, |tree, mut conn| async move { tree.fs_info(&mut conn).await })
            .ok()
            .map(|s| s.free_bytes)
    }
}
