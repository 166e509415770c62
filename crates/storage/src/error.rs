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
    /// The server did not answer at all. `server` says which, in a person's words ("the S3
    /// server at http://…"); `cause` is short ("connection refused").
    #[error("cannot reach {server} ({cause}): check that it is running, the network, and the address in {location}")]
    Offline { location: String, server: String, cause: String },
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
    /// A folder the configuration names as existing (in a WebDAV `url`) is not on the server;
    /// the folders under it (`root`) are made by the first backup.
    #[error("the folder {folder} does not exist on {server}: create it, or correct the url of {location}")]
    NoFolder { location: String, server: String, folder: String },
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

/// A failure to talk to a server, in a few plain words, from the text of an error and its
/// causes: the same words whichever library (HTTP, SSH, SMB) failed. `None` when the text is
/// not one of these; the library's own text is then for `--verbose` only.
pub(crate) fn network_cause(text: &str) -> Option<&'static str> {
    const WORDS: &[(&[&str], &str)] = &[
        (&["connection refused"], "connection refused"),
        (
            &[
                "dns error",
                "failed to lookup address",
                "name or service not known",
                "no such host",
                "temporary failure in name resolution",
            ],
            "its host name is not known",
        ),
        (&["no route to host", "host is unreachable"], "no route to the host"),
        (&["network is unreachable"], "the network is unreachable"),
        (&["timed out", "deadline has elapsed"], "it did not answer in time"),
        (&["connection reset"], "the connection was reset"),
        (&["certificate"], "its TLS certificate is not trusted"),
        (
            &["broken pipe", "connection closed", "connection aborted", "unexpected eof", "incomplete message"],
            "the connection was closed",
        ),
    ];
    let lower = text.to_ascii_lowercase();
    WORDS.iter().find(|(keys, _)| keys.iter().any(|k| lower.contains(k))).map(|(_, words)| *words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_failures_are_told_in_plain_words() {
        let refused = "Unexpected (temporary) at list, context: { url: http://127.0.0.1:9/b, called: reqwest::send } \
                       => send http request, source: error sending request: client error (Connect): tcp connect \
                       error: Connection refused (os error 111)";
        assert_eq!(network_cause(refused), Some("connection refused"));
        assert_eq!(network_cause("Connection refused (os error 111)"), Some("connection refused"));
        assert_eq!(
            network_cause("dns error: failed to lookup address information"),
            Some("its host name is not known")
        );
        assert_eq!(network_cause("Unexpected (permanent) at write, status: 409"), None);
        let offline = StoreError::Offline {
            location: "location cloud (s3)".into(),
            server: "the S3 server at http://127.0.0.1:9".into(),
            cause: "connection refused".into(),
        };
        assert_eq!(
            offline.to_string(),
            "cannot reach the S3 server at http://127.0.0.1:9 (connection refused): check that it is running, \
             the network, and the address in location cloud (s3)"
        );
    }
}
