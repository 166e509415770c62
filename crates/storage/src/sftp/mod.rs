use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::StreamExt;
use russh::client;
use russh::keys::{self, PrivateKeyWithHashAlg};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::StatusCode;
use tokio::sync::Mutex;

use crate::runtime::{block_on_for, limit_for, REQUEST_LIMIT};
use crate::store::{check_name, check_read_length, older_than};
use crate::walk::Walk;
use crate::{ObjectInfo, Store, StoreError, StoreResult};

mod channel;
mod host_key;

use channel::Channel;
use host_key::{HostKeyChecker, HostKeyError};

/// How the server's host key is checked.
#[derive(Debug, Clone)]
pub enum HostKeyCheck {
    /// It must be recorded in this known_hosts file.
    KnownHosts(PathBuf),
    /// Recorded in this file on first contact, checked afterwards (trust on first use).
    LearnInto(PathBuf),
    /// Recorded in this file if the key the server presents has this fingerprint
    /// (`SHA256:…`), which a person confirmed; any other key is refused as unknown.
    Confirmed { known_hosts: PathBuf, fingerprint: String },
}

impl HostKeyCheck {
    /// The known_hosts file the key is checked against (and recorded in).
    pub fn known_hosts(&self) -> &std::path::Path {
        match self {
            HostKeyCheck::KnownHosts(p) | HostKeyCheck::LearnInto(p) => p,
            HostKeyCheck::Confirmed { known_hosts, .. } => known_hosts,
        }
    }
}

/// Where and how to reach an SFTP server.
#[derive(Clone)]
pub struct SftpConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Folder on the server holding the repository (relative to the login folder unless it
    /// starts with `/`).
    pub path: String,
    pub key_file: Option<PathBuf>,
    pub password: Option<String>,
    pub host_key: HostKeyCheck,
}

impl std::fmt::Debug for SftpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(f, "sftp://{}@{}:{}/{}", self.user, self.host, self.port, self.path)
    }
}

/// A repository in a folder of an SFTP server (OpenSSH's, a NAS's).
///
/// One SSH connection carries a few SFTP channels, opened on first use and again after the
/// connection breaks. Requests go to the channels in turn: each channel has its own flow
/// window (OpenSSH's is 2 MiB, which alone caps an upload at 40 MiB/s at a 50 ms round
/// trip) and its own server process. Writes go to a temporary name and are renamed into
/// place, so an interrupted upload never leaves a partial object under its real name.
pub struct SftpStore {
    config: SftpConfig,
    label: String,
    /// The location's name, for the errors that tell which command helps.
    name: String,
    conn: Mutex<Option<Arc<Connection>>>,
}

struct Connection {
    channels: Vec<Channel>,
    next: AtomicUsize,
    // Keeps the SSH session open for as long as its channels are used.
    handle: client::Handle<HostKeyChecker>,
}

impl Connection {
    /// The channel for the next operation (a file's requests all go to one channel: its
    /// handle is that channel's).
    fn channel(&self) -> &Channel {
        &self.channels[self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len()]
    }
}

/// SFTP channels opened on the connection. OpenSSH's server allows ten sessions on one
/// connection; one that allows fewer gets as many as it takes.
const CHANNELS: usize = 4;

/// The top folders of a repository.
const REPOSITORY_FOLDERS: [&str; 5] = ["keys", "snapshots", "index", "locks", "data"];

/// Folders a listing reads at once, over every channel: a repository's `data` has 256
/// shard folders, which this many at a time read in two batches of round trips.
const FOLDER_READS: usize = 128;

impl SftpStore {
    pub fn new(label: impl Into<String>, config: SftpConfig) -> Self {
        let label = label.into();
        SftpStore { config, name: label.clone(), label, conn: Mutex::new(None) }
    }

    /// The location's name as the configuration spells it (errors name it for the command
    /// that trusts a new server's key).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Records the server's host key in the location's known_hosts file if its fingerprint
    /// is `fingerprint` (`SHA256:…`, as `ssh-keygen -l` prints it, confirmed by a person);
    /// nothing is recorded when the server is already known. A different key is refused: as
    /// unknown when the server is new, as not matching when known_hosts holds another.
    pub fn trust_host_key(&self, fingerprint: &str) -> StoreResult<()> {
        let check = HostKeyCheck::Confirmed {
            known_hosts: self.config.host_key.known_hosts().to_path_buf(),
            fingerprint: fingerprint.to_string(),
        };
        let outcome = block_on_for(REQUEST_LIMIT, async { self.handshake(check).await.map(drop) });
        outcome.unwrap_or_else(|| Err(self.offline("the server did not answer in time".into())))
    }

    /// The server cannot be reached: named, with the cause in plain words.
    fn offline(&self, cause: String) -> StoreError {
        let c = &self.config;
        StoreError::Offline {
            location: self.label.clone(),
            server: format!("the SFTP server at {}:{}", c.host, c.port),
            cause: crate::error::network_cause(&cause).map(str::to_string).unwrap_or(cause),
        }
    }

    fn remote_path(&self, name: &str) -> String {
        let base = self.config.path.trim_end_matches('/');
        if base.is_empty() {
            name.to_string()
        } else {
            format!("{base}/{name}")
        }
    }

    /// Runs one operation on the connection (opening it first if needed), within a time
    /// limit; a broken connection is dropped so that the next call reconnects.
    fn run<T, F, Fut>(&self, op: &'static str, name: &str, bytes: u64, f: F) -> StoreResult<T>
    where
        F: FnOnce(Arc<Connection>) -> Fut,
        Fut: std::future::Future<Output = Result<T, SftpError>>,
    {
        let outcome = block_on_for(limit_for(bytes), async {
            let conn = self.connection().await?;
            match f(conn).await {
                Ok(v) => Ok(v),
                Err(e) => {
                    if is_connection_error(&e) {
                        *self.conn.lock().await = None;
                    }
                    Err(self.map_error(op, name, e))
                }
            }
        });
        match outcome {
            Some(r) => r,
            None => {
                // The connection may be wedged; start afresh next time.
                block_on_for(REQUEST_LIMIT, async { *self.conn.lock().await = None });
                Err(StoreError::Remote {
                    location: self.label.clone(),
                    op,
                    name: name.to_string(),
                    cause: "the server did not answer in time".into(),
                    transient: true,
                })
            }
        }
    }

    async fn connection(&self) -> StoreResult<Arc<Connection>> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            if !c.handle.is_closed() {
                return Ok(c.clone());
            }
        }
        let conn = Arc::new(self.connect().await?);
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Opens the SSH connection and checks the server's host key as `check` says (not yet
    /// logged in).
    async fn handshake(&self, check: HostKeyCheck) -> StoreResult<client::Handle<HostKeyChecker>> {
        let c = &self.config;
        let checker = HostKeyChecker { host: c.host.clone(), port: c.port, check };
        let ssh_config = Arc::new(client::Config {
            inactivity_timeout: Some(Duration::from_secs(300)),
            keepalive_interval: Some(Duration::from_secs(30)),
            // What the server may send before we acknowledge: at a 50 ms round trip the
            // default 2 MiB caps a download at 40 MiB/s however many reads are in flight.
            window_size: 16 << 20,
            channel_buffer_size: 512,
            // Requests are small and each waits on its answer: Nagle's algorithm would hold
            // one back until the previous packet's acknowledgement, a round trip more.
            nodelay: true,
            preferred: preferred_algorithms(),
            ..Default::default()
        });
        match client::connect(ssh_config, (c.host.as_str(), c.port), checker).await {
            Ok(h) => Ok(h),
            Err(HostKeyError::Unknown { fingerprint }) => Err(StoreError::UnknownHost {
                location: self.label.clone(),
                host: Box::new(crate::NewHost {
                    name: self.name.clone(),
                    server: if c.port == 22 { c.host.clone() } else { format!("{}:{}", c.host, c.port) },
                    fingerprint,
                    known_hosts: c.host_key.known_hosts().to_path_buf(),
                }),
            }),
            Err(HostKeyError::Refused(why)) => Err(StoreError::HostKey { location: self.label.clone(), cause: why }),
            Err(HostKeyError::Ssh(e)) => Err(self.offline(describe_ssh_error(&e))),
        }
    }

    async fn connect(&self) -> StoreResult<Connection> {
        let c = &self.config;
        let offline = |cause: String| self.offline(cause);
        let mut handle = self.handshake(c.host_key.clone()).await?;
        let authenticated = if let Some(key_file) = &c.key_file {
            let key = keys::load_secret_key(key_file, None).map_err(|e| StoreError::AuthRefused {
                location: self.label.clone(),
                cause: format!("the key file {} could not be read: {e}", key_file.display()),
            })?;
            let hash = handle.best_supported_rsa_hash().await.ok().flatten().flatten();
            handle
                .authenticate_publickey(c.user.clone(), PrivateKeyWithHashAlg::new(Arc::new(key), hash))
                .await
                .map_err(|e| offline(describe_ssh_error(&e)))?
                .success()
        } else if let Some(password) = &c.password {
            handle
                .authenticate_password(c.user.clone(), password.clone())
                .await
                .map_err(|e| offline(describe_ssh_error(&e)))?
                .success()
        } else {
            return Err(StoreError::AuthRefused {
                location: self.label.clone(),
                cause: "no key_file or password is configured".into(),
            });
        };
        if !authenticated {
            return Err(StoreError::AuthRefused {
                location: self.label.clone(),
                cause: format!("the server did not accept user {:?} with the configured key or password", c.user),
            });
        }
        // The channels opened side by side; at least one must open.
        let opened = futures_util::future::join_all((0..CHANNELS).map(|_| Channel::open(&handle))).await;
        let mut channels = Vec::new();
        let mut refused = None;
        for c in opened {
            match c {
                Ok(c) => channels.push(c),
                Err(why) => refused = Some(why),
            }
        }
        if channels.is_empty() {
            return Err(offline(refused.unwrap_or_else(|| "no SFTP channel could be opened".into())));
        }
        Ok(Connection { channels, next: AtomicUsize::new(0), handle })
    }

    fn map_error(&self, op: &'static str, name: &str, e: SftpError) -> StoreError {
        match &e {
            SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile => {
                StoreError::NotFound { name: name.to_string() }
            }
            SftpError::Status(s) if s.status_code == StatusCode::PermissionDenied => {
                StoreError::PermissionDenied { name: format!("{} on {}", name, self.label) }
            }
            _ => StoreError::Remote {
                location: self.label.clone(),
                op,
                name: name.to_string(),
                cause: e.to_string(),
                transient: is_connection_error(&e),
            },
        }
    }

    /// The objects under a prefix with their times (seconds since 1970, where the server
    /// gives them); the temporary ones instead with `temporaries`.
    fn walk(&self, prefix: &str, temporaries: bool) -> StoreResult<Vec<(ObjectInfo, Option<u32>)>> {
        check_name(prefix)?;
        let root = self.remote_path(prefix);
        let prefix = prefix.to_string();
        let out = self.run("listing", &prefix.clone(), 0, |c| async move {
            let mut walk = Walk::new(root, &prefix, temporaries);
            // The folders of a level are read at once over the channels (each read is two
            // round trips: open, then its entries): a repository's `data/` has up to 256
            // shard folders, which one after another cost a second per 2 ms of round trip.
            loop {
                let level = walk.take_folders();
                if level.is_empty() {
                    break;
                }
                let reads = futures_util::stream::iter(level.into_iter().map(|(dir, name)| {
                    let channel = c.channel();
                    async move { (channel.list(&dir).await, dir, name) }
                }))
                .buffer_unordered(FOLDER_READS);
                let mut reads = std::pin::pin!(reads);
                while let Some((entries, dir, name)) = reads.next().await {
                    let entries = match entries {
                        Ok(e) => e,
                        Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => continue,
                        Err(e) => return Err(e),
                    };
                    for entry in entries {
                        let (file_name, meta) = (entry.filename, entry.attrs);
                        if meta.is_dir() {
                            walk.folder(format!("{dir}/{file_name}"), &name, &file_name);
                        } else if meta.is_regular() {
                            walk.file(&name, &file_name, meta.size.unwrap_or(0), meta.mtime);
                        }
                    }
                }
            }
            Ok(walk.finish())
        })?;
        Ok(out)
    }
}

impl Store for SftpStore {
    fn readable_by_others(&self) -> StoreResult<Vec<String>> {
        let mut names: Vec<String> = crate::local::PRIVATE_NAMES.iter().map(|n| n.to_string()).collect();
        names.extend(self.list("keys")?.into_iter().map(|o| o.name));
        let paths: Vec<(String, String)> = names
            .into_iter()
            .map(|n| {
                let path = if n.is_empty() {
                    self.config.path.trim_end_matches('/').to_string()
                } else {
                    self.remote_path(&n)
                };
                (n, path)
            })
            .collect();
        self.run("reading", "the repository's permissions", 0, |c| async move {
            let mut open = Vec::new();
            for (name, path) in paths {
                let path = if path.is_empty() { ".".to_string() } else { path };
                match c.channel().stat(&path).await {
                    Ok(m) if m.permissions.is_some_and(|p| p & 0o077 != 0) => {
                        open.push(if name.is_empty() { path } else { name })
                    }
                    Ok(_) => {}
                    Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(open)
        })
    }

    fn describe(&self) -> String {
        format!("sftp://{}@{}:{}/{}", self.config.user, self.config.host, self.config.port, self.config.path)
    }

    fn prepare(&self) -> StoreResult<()> {
        let root = self.config.path.trim_end_matches('/').to_string();
        if root.is_empty() {
            return Ok(());
        }
        self.run("creating", &root.clone(), 0, |c| async move {
            c.channel().make_dirs(&root).await?;
            // The repository's folders made now, side by side, so that its first writes do
            // not each find their folder missing first.
            let made = futures_util::future::join_all(REPOSITORY_FOLDERS.iter().map(|f| {
                let path = format!("{root}/{f}");
                let channel = c.channel();
                async move { channel.make_dirs(&path).await }
            }))
            .await;
            made.into_iter().collect::<Result<Vec<()>, _>>().map(|_| ())
        })
    }

    fn write(&self, name: &str, data: &[u8]) -> StoreResult<()> {
        check_name(name)?;
        let path = self.remote_path(name);
        self.run("writing", name, data.len() as u64, |c| async move { c.channel().place(&path, data, true).await })
            .map(|_| ())
    }

    fn write_new(&self, name: &str, data: &[u8]) -> StoreResult<bool> {
        check_name(name)?;
        let path = self.remote_path(name);
        self.run("writing", name, data.len() as u64, |c| async move { c.channel().place(&path, data, false).await })
    }

    fn read(&self, name: &str, range: Option<Range<u64>>) -> StoreResult<Vec<u8>> {
        check_name(name)?;
        let path = self.remote_path(name);
        let want = range.as_ref().map(|r| r.end.saturating_sub(r.start)).unwrap_or(64 << 20);
        let wanted = range.clone();
        let (buf, total) = self.run("reading", name, want, |c| async move { c.channel().read(&path, wanted).await })?;
        if let Some(r) = range {
            check_read_length(name, &r, buf.len(), || total)?;
        }
        Ok(buf)
    }

    fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>> {
        Ok(self.walk(prefix, false)?.into_iter().map(|(o, _)| o).collect())
    }

    fn stale_temporaries(&self, prefix: &str, age: Duration) -> StoreResult<Vec<String>> {
        let old =
            |t: Option<u32>| t.is_some_and(|t| older_than(std::time::UNIX_EPOCH + Duration::from_secs(t as u64), age));
        Ok(self.walk(prefix, true)?.into_iter().filter(|(_, t)| old(*t)).map(|(o, _)| o.name).collect())
    }

    fn size(&self, name: &str) -> StoreResult<u64> {
        check_name(name)?;
        let path = self.remote_path(name);
        self.run("reading", name, 0, |c| async move { Ok(c.channel().stat(&path).await?.size.unwrap_or(0)) })
    }

    fn remove(&self, name: &str) -> StoreResult<()> {
        check_name(name)?;
        let path = self.remote_path(name);
        match self.run("removing", name, 0, |c| async move { c.channel().remove(&path).await }) {
            Err(e) if e.is_not_found() => Ok(()),
            r => r,
        }
    }

    fn connections(&self) -> usize {
        // Requests are pipelined on every channel: four in flight on each hide the round trip.
        4 * CHANNELS
    }

    fn write_concurrency(&self) -> usize {
        // A pack in flight on each channel.
        CHANNELS
    }

    fn free_space(&self) -> Option<u64> {
        let root = if self.config.path.is_empty() { ".".to_string() } else { self.config.path.clone() };
        self.run("asking free space of", "the folder", 0, |c| async move { Ok(c.channel().free_space(&root).await) })
            .ok()
            .flatten()
    }
}

fn is_connection_error(e: &SftpError) -> bool {
    match e {
        SftpError::IO(_) | SftpError::Timeout | SftpError::UnexpectedBehavior(_) => true,
        SftpError::Status(s) => matches!(s.status_code, StatusCode::NoConnection | StatusCode::ConnectionLost),
        _ => false,
    }
}

fn describe_ssh_error(e: &russh::Error) -> String {
    match e {
        russh::Error::IO(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// russh's choices, with AES-GCM put first where the processor has AES instructions: there it
/// costs both ends (sshd too) several times less per byte than ChaCha20-Poly1305, the
/// bottleneck of a restore over SFTP on a small machine. Without them (a Raspberry Pi 4's
/// Cortex-A72) ChaCha20 is the faster and stays first.
fn preferred_algorithms() -> russh::Preferred {
    let mut preferred = russh::Preferred::default();
    if aes_in_hardware() {
        let mut ciphers: Vec<russh::cipher::Name> = preferred.cipher.iter().copied().collect();
        ciphers.sort_by_key(|c| *c != russh::cipher::AES_256_GCM && *c != russh::cipher::AES_128_GCM);
        preferred.cipher = ciphers.into();
    }
    preferred
}

fn aes_in_hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes") && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

#[cfg(test)]
mod cipher_tests {
    #[test]
    fn aes_gcm_leads_exactly_where_the_processor_has_aes_instructions() {
        let preferred = super::preferred_algorithms();
        let first = preferred.cipher.first().copied();
        let gcm = [russh::cipher::AES_256_GCM, russh::cipher::AES_128_GCM];
        assert_eq!(first.is_some_and(|c| gcm.contains(&c)), super::aes_in_hardware(), "{:?}", preferred.cipher);
        // Nothing added or dropped: the same choices, in another order.
        let mut ours: Vec<_> = preferred.cipher.iter().map(|c| c.as_ref().to_string()).collect();
        let mut theirs: Vec<_> = russh::Preferred::default().cipher.iter().map(|c| c.as_ref().to_string()).collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs);
    }
}
