use std::path::PathBuf;

/// An SFTP server not in known_hosts yet (boxed in [`StoreError`], which stays small).
#[derive(Debug)]
pub struct NewHost {
    /// The location's name.
    pub name: String,
    /// `host:port` (the port only when not 22).
    pub server: String,
    /// The key's fingerprint as `ssh-keygen -l` prints it (`SHA256:…`).
    pub fingerprint: String,
    /// The known_hosts file it is not in.
    pub known_hosts: PathBuf,
}

/// What went wrong talking to a location.
///
/// Messages name the location (or object) and say what to do; they never carry a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{name} is not in the location")]
    NotFound { name: String },
    #[error("the location at {path} is not reachable: {source}; check that it is mounted and readable")]
    Unreachable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: the memory card or disk that holds {path} was taken out or unmounted: insert it and mount it, then try again")]
    Removed { location: String, path: PathBuf },
    #[error("{location} is not reachable: {cause}; check the address, the port and the network")]
    Offline { location: String, cause: String },
    #[error("{location} refused the credentials: {cause}; check the user name and the key or password")]
    AuthRefused { location: String, cause: String },
    #[error("{location}'s host key does not match the known hosts: {cause}; someone may be in between: only if you know the server was reinstalled, remove its old line from known_hosts")]
    HostKey { location: String, cause: String },
    /// The server is not in known_hosts yet: a person compares the fingerprint with the
    /// server's own (`ssh-keygen -lf` of its public host key) and trusts it.
    #[error("{location}: the server {} is not known yet (not in {}); its host key's fingerprint is {}: if that is your server's key, trust it", host.server, host.known_hosts.display(), host.fingerprint)]
    UnknownHost { location: String, host: Box<NewHost> },
    #[error("{location} does not exist: {cause}; create it or correct the configuration")]
    NoContainer { location: String, cause: String },
    #[error("{location}: {op} {name} failed: {cause}")]
    Remote { location: String, op: &'static str, name: String, cause: String, transient: bool },
    #[error("the location is full while writing {name}: free some space or choose another location")]
    Full { name: String },
    #[error(
        "the location is read-only while writing {name}: release the memory card's lock switch or mount it read-write"
    )]
    ReadOnly { name: String },
    #[error("permission denied on {name}: give this user write access to the location")]
    PermissionDenied { name: String },
    #[error("{op} {name} failed: {source}")]
    Io {
        op: &'static str,
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{name}: asked for bytes {start}..{end} but the object holds only {len}")]
    ShortRead { name: String, start: u64, end: u64, len: u64 },
    #[error("{0} is not a valid object name")]
    BadName(String),
}

impl StoreError {
    pub(crate) fn io(op: &'static str, name: &str, source: std::io::Error) -> Self {
        match source.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound { name: name.to_string() },
            std::io::ErrorKind::PermissionDenied => StoreError::PermissionDenied { name: name.to_string() },
            std::io::ErrorKind::ReadOnlyFilesystem => StoreError::ReadOnly { name: name.to_string() },
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                StoreError::Full { name: name.to_string() }
            }
            _ => StoreError::Io { op, name: name.to_string(), source },
        }
    }

    /// True when the object does not exist (as opposed to any other failure).
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }

    /// True when trying again later may succeed: a dropped connection, a timeout, a server
    /// that asked to slow down. Wrong credentials, missing buckets and full disks are not.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Offline { .. } => true,
            StoreError::Remote { transient, .. } => *transient,
            StoreError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
