use std::path::PathBuf;

use lifeboat_repository::RepoError;
use lifeboat_storage::StoreError;

/// What went wrong, in words that say what to do.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("configuration {path}: {detail}")]
    Config { path: PathBuf, detail: String },
    #[error("no unit named {name}: the units are {known} (see `lifeboat units list`)")]
    UnknownUnit { name: String, known: String },
    #[error("no profile named {name}: the profiles are {known}")]
    UnknownProfile { name: String, known: String },
    #[error("no location named {name}: the locations are {known}")]
    UnknownLocation { name: String, known: String },
    #[error("location {name}: {detail}")]
    LocationConfig { name: String, detail: String },
    #[error("{reason}")]
    LocationUnavailable { reason: String },
    #[error("backup {slug} holds no unit named {unit}: it holds {held}")]
    UnitNotInBackup { slug: String, unit: String, held: String },
    #[error("no password for the repository at {location}: give --password-file FILE or set LIFEBOAT_PASSWORD")]
    NoPassword { location: String },
    #[error("the password file {path} cannot be read: {source}")]
    PasswordFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the password file {0} is empty: write the password into it")]
    EmptyPassword(PathBuf),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the home folder of this user is unknown: set HOME")]
    NoHome,
    #[error("the target {0} is not a folder: give a folder to restore into")]
    BadTarget(PathBuf),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("unit {unit}: {reason}; nothing was restored")]
    Hook { unit: String, reason: String },
    #[error("backup file {file}: {detail}")]
    BackupFile { file: String, detail: String },
    #[error("the operation was cancelled")]
    Cancelled,
    #[error("backup {slug} is refused: {detail}; nothing was restored (`lifeboat check` names what is wrong)")]
    UnsafeBackup { slug: String, detail: String },
    #[error("refused: the restore would write {path}, which is outside {bound}; nothing was restored")]
    Outside { path: PathBuf, bound: PathBuf },
    #[error(
        "not enough room on the file system of {path}: the restore writes {need} bytes and {free} are free; \
         free some space or restore elsewhere with --target; nothing was restored"
    )]
    NoRoom { path: PathBuf, need: u64, free: u64 },
    #[error("{what} {detail}")]
    BadName { what: String, detail: String },
    #[error("the safety backup {slug} could not hold all of unit {unit} ({problem}); nothing was restored: restore with --target DIR, or with --no-safety-backup if you are sure")]
    SafetyBackup { slug: String, unit: String, problem: String },
    #[error("{failed} entries could not be restored ({first}); nothing was changed on this device: restore with --target DIR to get what can be read")]
    RestoreIncomplete { failed: usize, first: String },
}

impl EngineError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io { op, path: path.into(), source }
    }
}

pub type EngineResult<T> = Result<T, EngineError>;
