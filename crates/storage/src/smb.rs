use std::io::{ErrorKind as IoKind, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::sync::Mutex;

use pavao::{SmbClient, SmbCredentials, SmbDirentType, SmbError, SmbOpenOptions, SmbOptions};

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

/// A repository in a folder of an SMB share, through Samba's client library.
///
/// libsmbclient is not safe to drive from several threads at once, so requests go one at a
/// time; a broken connection is reopened on the next request. Writes go to a temporary name
/// and are renamed into place.
pub struct SmbStore {
    config: SmbConfig,
    label: String,
    client: Mutex<Option<SmbClient>>,
}

impl SmbStore {
    /// The objects under a prefix with their times; the temporary ones instead with
    /// `temporaries`.
    fn walk(&self, prefix: &str, temporaries: bool) -> StoreResult<Vec<(ObjectInfo, std::time::SystemTime)>> {
        check_name(prefix)?;
        let root = self.path(prefix);
        let out = self.run("listing", prefix, |c| {
            let mut walk = Walk::new(root, prefix, temporaries);
            while let Some((dir, name)) = walk.next_folder() {
                // libsmbclient reports a missing folder as a bad descriptor; ask first.
                match c.stat(&dir) {
                    Err(SmbError::Io(io)) if io.kind() == IoKind::NotFound => continue,
                    r => r?,
                };
                let entries = match c.list_dir(&dir) {
                    Ok(e) => e,
                    Err(SmbError::Io(io)) if io.kind() == IoKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                for entry in entries {
                    let file_name = entry.name();
                    let full = format!("{dir}/{file_name}");
                    match entry.get_type() {
                        SmbDirentType::Dir => walk.folder(full, &name, file_name),
                        // Each size costs a request: asked only of the files listed.
                        SmbDirentType::File if walk.wants_file(file_name) => match c.stat(&full) {
                            Ok(st) => walk.file(&name, file_name, st.size, st.modified),
                            // Removed since the folder was read.
                            Err(SmbError::Io(io)) if io.kind() == IoKind::NotFound => {}
                            Err(e) => return Err(e),
                        },
                        _ => {}
                    }
                }
            }
            Ok(walk.finish())
        })?;
        Ok(out)
    }

    pub fn new(label: impl Into<String>, config: SmbConfig) -> Self {
        SmbStore { config, label: label.into(), client: Mutex::new(None) }
    }

    fn path(&self, name: &str) -> String {
        let base = self.config.path.trim_matches('/');
        if base.is_empty() {
            format!("/{name}")
        } else {
            format!("/{base}/{name}")
        }
    }

    /// Runs `f` with the client, connecting first if needed; a failure that looks like a
    /// lost connection drops the client so that the next call reconnects.
    fn run<T>(
        &self,
        op: &'static str,
        name: &str,
        f: impl FnOnce(&SmbClient) -> Result<T, SmbError>,
    ) -> StoreResult<T> {
        let mut slot =
            self.client.lock().map_err(|_| self.remote(op, name, "a previous request panicked".into(), false))?;
        if slot.is_none() {
            let c = &self.config;
            let mut credentials = SmbCredentials::default()
                .server(format!("smb://{}:{}", c.host, c.port))
                .share(format!("/{}", c.share.trim_matches('/')))
                .username(&c.username)
                .password(&c.password);
            if let Some(d) = &c.domain {
                credentials = credentials.workgroup(d);
            }
            let options = SmbOptions::default().no_auto_anonymous_login(true).case_sensitive(true);
            let client = SmbClient::new(credentials, options).map_err(|e| self.map_error(op, name, e))?;
            // The library connects on the first request: make it one whose failure says
            // clearly what is wrong.
            match client.stat("/").map_err(|e| self.map_error("opening", "the share", e)) {
                Ok(_) => {}
                Err(StoreError::NotFound { .. }) => {
                    return Err(StoreError::NoContainer {
                        location: self.label.clone(),
                        cause: format!("the server has no share {:?}", c.share),
                    })
                }
                Err(StoreError::PermissionDenied { .. }) => {
                    return Err(StoreError::AuthRefused {
                        location: self.label.clone(),
                        cause: format!("the server did not accept user {:?} with this password", c.username),
                    })
                }
                Err(e) => return Err(e),
            }
            *slot = Some(client);
        }
        let Some(client) = slot.as_ref() else { unreachable!("connected above") };
        match f(client) {
            Ok(v) => Ok(v),
            Err(e) => {
                let mapped = self.map_error(op, name, e);
                if mapped.is_transient() {
                    *slot = None;
                }
                Err(mapped)
            }
        }
    }

    fn remote(&self, op: &'static str, name: &str, cause: String, transient: bool) -> StoreError {
        StoreError::Remote { location: self.label.clone(), op, name: name.to_string(), cause, transient }
    }

    fn map_error(&self, op: &'static str, name: &str, e: SmbError) -> StoreError {
        let SmbError::Io(io) = &e else { return self.remote(op, name, e.to_string(), false) };
        let location = self.label.clone();
        match io.raw_os_error().map(nix::errno::Errno::from_raw) {
            Some(nix::errno::Errno::ECONNREFUSED)
            | Some(nix::errno::Errno::EHOSTUNREACH)
            | Some(nix::errno::Errno::ENETUNREACH)
            | Some(nix::errno::Errno::ETIMEDOUT)
            | Some(nix::errno::Errno::ECONNRESET)
            | Some(nix::errno::Errno::EPIPE) => StoreError::Offline { location, cause: io.to_string() },
            Some(nix::errno::Errno::ENOSPC) | Some(nix::errno::Errno::EDQUOT) => {
                StoreError::Full { name: format!("{name} on {location}") }
            }
            _ => match io.kind() {
                IoKind::NotFound => StoreError::NotFound { name: name.to_string() },
                IoKind::PermissionDenied => StoreError::PermissionDenied { name: format!("{name} on {location}") },
                _ => self.remote(op, name, io.to_string(), matches!(io.kind(), IoKind::TimedOut | IoKind::Interrupted)),
            },
        }
    }

    fn make_parents(client: &SmbClient, path: &str) -> Result<(), SmbError> {
        let mut prefix = String::new();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            prefix.push('/');
            prefix.push_str(part);
            if let Err(e) = client.mkdir(&prefix, 0o755.into()) {
                let exists = matches!(&e, SmbError::Io(io) if io.kind() == IoKind::AlreadyExists);
                if !exists {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn upload(client: &SmbClient, path: &str, data: &[u8], exclusive: bool) -> Result<(), SmbError> {
        let options = || SmbOpenOptions::default().create(true).write(true).truncate(true).exclusive(exclusive);
        let mut file = match client.open_with(path, options()) {
            Err(SmbError::Io(io)) if io.kind() == IoKind::NotFound => {
                Self::make_parents(client, path)?;
                client.open_with(path, options())?
            }
            r => r?,
        };
        file.write_all(data).map_err(SmbError::Io)?;
        file.flush().map_err(SmbError::Io)?;
        Ok(())
    }

    fn temporary(path: &str) -> String {
        temporary_beside(path)
    }
}

impl Store for SmbStore {
    fn describe(&self) -> String {
        let c = &self.config;
        format!("smb://{}:{}/{}/{}", c.host, c.port, c.share, c.path.trim_matches('/'))
    }

    fn prepare(&self) -> StoreResult<()> {
        let probe = self.path("x");
        self.run("creating", "the folder", |c| Self::make_parents(c, &probe))
    }

    fn write(&self, name: &str, data: &[u8]) -> StoreResult<()> {
        check_name(name)?;
        let path = self.path(name);
        self.run("writing", name, |c| {
            let tmp = Self::temporary(&path);
            let result = Self::upload(c, &tmp, data, false).and_then(|_| match c.rename(&tmp, &path) {
                Ok(()) => Ok(()),
                // Some servers do not replace on rename; the repository only rewrites a name
                // it owns (its lock).
                Err(_) => {
                    let _ = c.unlink(&path);
                    c.rename(&tmp, &path)
                }
            });
            if result.is_err() {
                let _ = c.unlink(&tmp);
            }
            result
        })
    }

    fn write_new(&self, name: &str, data: &[u8]) -> StoreResult<bool> {
        check_name(name)?;
        let path = self.path(name);
        // O_EXCL on the real name: of several writers exactly one creates it. The object is
        // small (the repository's config) and written in one request.
        self.run("writing", name, |c| match Self::upload(c, &path, data, true) {
            Ok(()) => Ok(true),
            Err(SmbError::Io(io)) if io.kind() == IoKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        })
    }

    fn read(&self, name: &str, range: Option<Range<u64>>) -> StoreResult<Vec<u8>> {
        check_name(name)?;
        let path = self.path(name);
        let (data, total) = self.run("reading", name, |c| {
            let mut file = c.open_with(&path, SmbOpenOptions::default().read(true))?;
            let mut buf = Vec::new();
            match &range {
                None => {
                    file.read_to_end(&mut buf).map_err(SmbError::Io)?;
                    Ok((buf, 0))
                }
                Some(r) => {
                    file.seek(SeekFrom::Start(r.start)).map_err(SmbError::Io)?;
                    (&mut file).take(r.end.saturating_sub(r.start)).read_to_end(&mut buf).map_err(SmbError::Io)?;
                    let total = if (buf.len() as u64) < r.end - r.start { c.stat(&path)?.size } else { 0 };
                    Ok((buf, total))
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
        self.run("reading", name, |c| Ok(c.stat(&path)?.size))
    }

    fn remove(&self, name: &str) -> StoreResult<()> {
        check_name(name)?;
        let path = self.path(name);
        match self.run("removing", name, |c| c.unlink(&path)) {
            Err(e) if e.is_not_found() => Ok(()),
            r => r,
        }
    }

    fn connections(&self) -> usize {
        // Requests are serialised through one client.
        1
    }

    fn write_concurrency(&self) -> usize {
        // Requests are serialised through one client.
        1
    }

    fn free_space(&self) -> Option<u64> {
        self.run("asking free space of", "the share", |c| c.statvfs("/")).ok().map(|s| s.bavail * s.frsize.max(s.bsize))
    }
}
