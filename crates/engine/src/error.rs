use std::path::PathBuf;

use lifeboat_repository::RepoError;
use lifeboat_storage::StoreError;

/// What went wrong, in words that say what to do.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("configuration {path}: {detail}")]
    Config { path: PathBuf, detail: String },
    #[error("no unit named {name}: the units are {known}")]
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
    #[error("no password for the repository at {location}")]
    NoPassword { location: String },
    #[error("the configuration in the backup is refused: {detail}")]
    SetupRefused { detail: String },
    #[error("backup {slug} carries no configuration of Lifeboat's (it was made before backups recorded it, or is a safety backup): choose a newer backup")]
    NoConfiguration { slug: String },
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
    #[error("unit {unit}: {detail}; nothing was restored")]
    DatabaseInUse { unit: String, detail: String },
    #[error("backup file {file}: {detail}")]
    BackupFile { file: String, detail: String },
    #[error("backup file {file}: {detail}")]
    BackupFilePassword { file: String, detail: String },
    #[error(
        "backup {slug} is not password protected, so its file would hold its data unencrypted: \
         encrypt it with a password, or say that it may be unencrypted ({how})"
    )]
    UnencryptedExport { slug: String, how: &'static str },
    #[error(
        "backup file {file}: this file asks for {mib} MiB of memory to open, and Lifeboat's own ask for \
         {most} MiB: it is refused before its password is tried (it was not made by Lifeboat, or was altered)"
    )]
    BackupFileCost { file: String, mib: u64, most: u64 },
    #[error("the operation was cancelled")]
    Cancelled,
    /// An unattended backup (a hook, a schedule) found no repository: it makes none, since
    /// nobody is there to keep the recovery key of a new one.
    #[error(
        "no repository at {at}: an unattended backup makes none; make it once by hand with `lifeboat backups new \
         --location {location}` (it shows the recovery key to keep)"
    )]
    NoRepositoryUnattended { location: String, at: String },
    /// An unattended backup saved as failed (a unit stored nothing it had): see
    /// `BackupOrder::unattended`.
    #[error("backup {slug} failed: {detail}")]
    BackupFailed { slug: String, detail: String },
    /// A failure with nothing more to say than its words (a thread that could not start, a
    /// job that stopped on a bug).
    #[error("{0}")]
    Internal(String),
    #[error("backup {slug} is refused: {detail}; nothing was restored")]
    UnsafeBackup { slug: String, detail: String },
    #[error("refused: the restore would write {path}, which is outside {bound}; nothing was restored")]
    Outside { path: PathBuf, bound: PathBuf },
    #[error(
        "not enough room on the file system of {path}: the restore writes {} and {} is free; \
         free some space or restore elsewhere; nothing was restored",
        crate::size::iec(*need),
        crate::size::iec(*free)
    )]
    NoRoom { path: PathBuf, need: u64, free: u64 },
    #[error("{what} {detail}")]
    BadName { what: String, detail: String },
    #[error("backup {slug} is already in location {location}: copy it to another location")]
    SameLocation { slug: String, location: String },
    #[error(
        "location {location} already holds a repository whose blob ids and chunking differ from those of {like}; \
         an existing repository cannot change them: add {location} without --like, or give it an empty place"
    )]
    NotLike { location: String, like: String },
    #[error(
        "location {location} has no repository yet and is to be made like {like}, whose repository cannot be \
         read now ({source}): make it readable, or remove like from [location.{location}] or [location.{like}]"
    )]
    LikeUnavailable {
        location: String,
        like: String,
        #[source]
        source: Box<EngineError>,
    },
    #[error("backup {slug} holds nothing at {path}")]
    PathNotInBackup { slug: String, path: String },
    #[error("no backup matches {slug} in any location")]
    NotHeld { slug: String },
    #[error("backup {slug} is in several locations ({locations}): name one with --location")]
    InSeveralLocations { slug: String, locations: String },
    #[error(
        "backup {slug} is from device {device}, not this one: restoring it in place puts that device's files here; \
         pass --from-device {device} to do so, or restore it under --target"
    )]
    OtherDevice { slug: String, device: String },
    #[error("the safety backup {slug} could not hold all of unit {unit} ({problem}); nothing was restored")]
    SafetyBackup { slug: String, unit: String, problem: String },
    #[error("{failed} entries could not be restored ({first}); nothing was changed on this device")]
    RestoreIncomplete { failed: usize, first: String },
    /// A restore that went on past what it could not restore (under a target folder): what
    /// could be restored was.
    #[error("not everything was restored: {not_restored} not restored, the first: {first}")]
    NotAllRestored { not_restored: u64, first: String },
    #[error(
        "the restore of backup {slug} started {started} stopped while putting files in place, so some paths are restored and others not"
    )]
    InterruptedRestore { slug: String, started: String, undo: bool },
    #[error("no restore was interrupted while putting files in place on this device (the leftovers of any stopped earlier are removed)")]
    NoInterruptedRestore,
    #[error(
        "the interrupted restore of backup {slug} made no safety backup (--no-safety-backup), so it cannot be undone"
    )]
    CannotUndo { slug: String },
    #[error(
        "no log {what} in {dir}: logs are kept on the device that ran the job (`lifeboat logs --list` lists them)"
    )]
    NoLog { what: String, dir: PathBuf },
    #[error(
        "this device already keeps a key for location {location} in {file}; remove that file first to make a new one"
    )]
    DeviceKeyExists { location: String, file: PathBuf },
}

/// What kind of failure an error is. This is the one classification: the command line's exit
/// codes and the API's HTTP statuses are both mapped from it (the table in docs/CONFIG.md,
/// "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// What was asked for does not exist: a backup, a key, a repository.
    NotFound,
    /// The request itself is wrong: an unknown unit or location, a bad name or path, a
    /// malformed configuration.
    BadInput,
    /// No secret opens the repository or backup file, or there is no way to get one.
    WrongKey,
    /// The location cannot be used now: a card not inserted, a server down, a disk full.
    LocationUnavailable,
    /// What was read is damaged or was tampered with: the repository, a backup, a backup file.
    Damaged,
    /// The state of things stops it: the repository is busy, the backup is already there,
    /// the device has no room.
    Conflict,
    /// It was cancelled.
    Interrupted,
    /// Anything else: the message says why.
    Internal,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::NotFound,
        ErrorKind::BadInput,
        ErrorKind::WrongKey,
        ErrorKind::LocationUnavailable,
        ErrorKind::Damaged,
        ErrorKind::Conflict,
        ErrorKind::Interrupted,
        ErrorKind::Internal,
    ];

    /// The name used in the API's error bodies and in docs/CONFIG.md.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::BadInput => "bad_input",
            ErrorKind::WrongKey => "wrong_key",
            ErrorKind::LocationUnavailable => "location_unavailable",
            ErrorKind::Damaged => "damaged",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Internal => "internal",
        }
    }
}

/// What a person can do about an error. The engine only names it: the command line says it
/// as a command to run, the API in its own words (`remedy` in its error bodies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// Make the first backup, which creates the repository.
    CreateRepository,
    /// Check the repository.
    Check,
    /// Check the repository, reading all data.
    CheckData,
    /// Repair the repository.
    Repair,
    /// Try the password again, or use the recovery key.
    RetryPassword,
    /// Once opened (with the recovery key), repair it.
    ThenRepair,
    /// Once opened (with the recovery key), check it.
    ThenCheck,
    /// Remove a stale lock.
    Unlock,
    /// See which backups there are.
    ListBackups,
    /// See which keys there are.
    ListKeys,
    /// See which units there are.
    ListUnits,
    /// Give the secret that opens it.
    GivePassword,
    /// Give the secret that opens a repository, or keep one for unattended runs (a device key
    /// or the location's `repository_password`).
    GiveRepositoryPassword,
    /// Restore elsewhere (a target folder) to get what can be read.
    RestoreElsewhere,
    /// Restore elsewhere, or without the safety backup when sure.
    RestoreElsewhereOrUnsafe,
    /// Name the location that holds it.
    NameLocation,
    /// See what the backup holds.
    ListFiles,
    /// Finish an interrupted restore, or undo it.
    ResumeOrUndo,
    /// Finish an interrupted restore.
    Resume,
}

impl EngineError {
    /// The one classification of this error (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            EngineError::Config { .. }
            | EngineError::UnknownUnit { .. }
            | EngineError::UnknownProfile { .. }
            | EngineError::UnknownLocation { .. }
            | EngineError::LocationConfig { .. }
            | EngineError::UnitNotInBackup { .. }
            | EngineError::NoHome
            | EngineError::BadTarget(_)
            | EngineError::InSeveralLocations { .. }
            | EngineError::OtherDevice { .. }
            | EngineError::BadName { .. }
            | EngineError::SetupRefused { .. } => K::BadInput,
            EngineError::NotHeld { .. }
            | EngineError::NoConfiguration { .. }
            | EngineError::PathNotInBackup { .. }
            | EngineError::NoLog { .. }
            | EngineError::NoInterruptedRestore
            | EngineError::NoRepositoryUnattended { .. } => K::NotFound,
            EngineError::LocationUnavailable { .. } => K::LocationUnavailable,
            EngineError::LikeUnavailable { source, .. } => source.kind(),
            EngineError::NoPassword { .. }
            | EngineError::PasswordFile { .. }
            | EngineError::EmptyPassword(_)
            | EngineError::BackupFilePassword { .. } => K::WrongKey,
            EngineError::UnencryptedExport { .. } => K::BadInput,
            EngineError::BackupFile { .. }
            | EngineError::BackupFileCost { .. }
            | EngineError::UnsafeBackup { .. }
            | EngineError::Outside { .. } => K::Damaged,
            EngineError::NoRoom { .. }
            | EngineError::SafetyBackup { .. }
            | EngineError::SameLocation { .. }
            | EngineError::NotLike { .. }
            | EngineError::DeviceKeyExists { .. }
            | EngineError::InterruptedRestore { .. }
            | EngineError::DatabaseInUse { .. }
            | EngineError::CannotUndo { .. } => K::Conflict,
            EngineError::Cancelled => K::Interrupted,
            EngineError::Repo(r) => repo_kind(r),
            EngineError::Store(s) => store_kind(s),
            EngineError::Io { .. }
            | EngineError::Hook { .. }
            | EngineError::BackupFailed { .. }
            | EngineError::RestoreIncomplete { .. }
            | EngineError::NotAllRestored { .. }
            | EngineError::Internal(_) => K::Internal,
        }
    }

    /// What a person can do about it, when there is something to do.
    pub fn remedy(&self) -> Option<Remedy> {
        match self {
            EngineError::UnknownUnit { .. } => Some(Remedy::ListUnits),
            EngineError::NoPassword { .. } => Some(Remedy::GiveRepositoryPassword),
            EngineError::BackupFilePassword { .. } => Some(Remedy::GivePassword),
            EngineError::UnsafeBackup { .. } => Some(Remedy::Check),
            EngineError::SafetyBackup { .. } => Some(Remedy::RestoreElsewhereOrUnsafe),
            EngineError::RestoreIncomplete { .. } => Some(Remedy::RestoreElsewhere),
            EngineError::InterruptedRestore { undo: true, .. } => Some(Remedy::ResumeOrUndo),
            EngineError::InterruptedRestore { undo: false, .. } | EngineError::CannotUndo { .. } => {
                Some(Remedy::Resume)
            }
            EngineError::NotHeld { .. } => Some(Remedy::NameLocation),
            EngineError::PathNotInBackup { .. } => Some(Remedy::ListFiles),
            EngineError::Repo(r) => repo_remedy(r),
            EngineError::LikeUnavailable { source, .. } => source.remedy(),
            _ => None,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io { op, path: path.into(), source }
    }
}

fn repo_kind(e: &RepoError) -> ErrorKind {
    use ErrorKind as K;
    match e {
        RepoError::Store(s) => store_kind(s),
        RepoError::NotARepository(_) | RepoError::NoSuchSnapshot(_) | RepoError::NoSuchKey(_) => K::NotFound,
        RepoError::AmbiguousSnapshot(_) | RepoError::UnsupportedVersion { .. } => K::BadInput,
        RepoError::WrongPassword(_) | RepoError::KeySlotsDamaged { .. } | RepoError::OpenBudget { .. } => K::WrongKey,
        RepoError::Corrupt { .. }
        | RepoError::Misnamed { .. }
        | RepoError::Malformed { .. }
        | RepoError::Unreadable { .. }
        | RepoError::MissingBlob(_) => K::Damaged,
        RepoError::AlreadyExists(_) | RepoError::Locked { .. } | RepoError::LastKey => K::Conflict,
        RepoError::Cancelled => K::Interrupted,
        RepoError::Writer(e) => repo_kind(e),
        RepoError::Kdf(_) | RepoError::Unmade { .. } => K::Internal,
    }
}

fn repo_remedy(e: &RepoError) -> Option<Remedy> {
    Some(match e.cause() {
        RepoError::NotARepository(_) => Remedy::CreateRepository,
        RepoError::WrongPassword(_) => Remedy::RetryPassword,
        RepoError::KeySlotsDamaged { .. } => Remedy::ThenRepair,
        RepoError::OpenBudget { .. } => Remedy::ThenCheck,
        RepoError::Corrupt { .. } => Remedy::CheckData,
        RepoError::Misnamed { .. } => Remedy::Repair,
        RepoError::Malformed { .. } | RepoError::Unreadable { .. } | RepoError::MissingBlob(_) => Remedy::Check,
        RepoError::Locked { .. } => Remedy::Unlock,
        RepoError::NoSuchSnapshot(_) => Remedy::ListBackups,
        RepoError::NoSuchKey(_) => Remedy::ListKeys,
        _ => return None,
    })
}

fn store_kind(e: &StoreError) -> ErrorKind {
    match e {
        // An object the repository refers to is gone, or holds less than it should.
        StoreError::NotFound { .. } | StoreError::ShortRead { .. } | StoreError::BadName(_) => ErrorKind::Damaged,
        StoreError::Unreachable { .. }
        | StoreError::Removed { .. }
        | StoreError::Offline { .. }
        | StoreError::AuthRefused { .. }
        | StoreError::HostKey { .. }
        | StoreError::UnknownHost { .. }
        | StoreError::NoContainer { .. }
        | StoreError::NoFolder { .. }
        | StoreError::Remote { .. }
        | StoreError::Full { .. }
        | StoreError::ReadOnly { .. }
        | StoreError::PermissionDenied { .. }
        | StoreError::Io { .. } => ErrorKind::LocationUnavailable,
    }
}

/// The kind and remedy of an error from any layer under the front ends: the first engine,
/// repository or storage error in its chain of sources; anything else is internal.
pub fn classify(e: &(dyn std::error::Error + 'static)) -> (ErrorKind, Option<Remedy>) {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(e) = c.downcast_ref::<EngineError>() {
            return (e.kind(), e.remedy());
        }
        if let Some(r) = c.downcast_ref::<RepoError>() {
            return (repo_kind(r), repo_remedy(r));
        }
        if let Some(s) = c.downcast_ref::<StoreError>() {
            return (store_kind(s), None);
        }
        cause = c.source();
    }
    (ErrorKind::Internal, None)
}

/// An SFTP server that is not in known_hosts yet, as a front end offers it to be trusted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnknownHost {
    /// The location's name.
    pub location: String,
    /// `host:port`.
    pub server: String,
    /// The key's fingerprint as `ssh-keygen -l` prints it (`SHA256:…`).
    pub fingerprint: String,
}

/// The unknown SFTP server behind an error, if that is what it is (the first error of the
/// engine, repository or storage in its chain, as [`classify`] reads it).
pub fn unknown_host(e: &(dyn std::error::Error + 'static)) -> Option<UnknownHost> {
    fn of_store(s: &StoreError) -> Option<UnknownHost> {
        match s {
            StoreError::UnknownHost { host, .. } => Some(UnknownHost {
                location: host.name.clone(),
                server: host.server.clone(),
                fingerprint: host.fingerprint.clone(),
            }),
            _ => None,
        }
    }
    fn of_repo(r: &RepoError) -> Option<UnknownHost> {
        match r.cause() {
            RepoError::Store(s) => of_store(s),
            _ => None,
        }
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(e) = c.downcast_ref::<EngineError>() {
            return match e {
                EngineError::Repo(r) => of_repo(r),
                EngineError::Store(s) => of_store(s),
                EngineError::LikeUnavailable { source, .. } => unknown_host(source.as_ref()),
                _ => None,
            };
        }
        if let Some(r) = c.downcast_ref::<RepoError>() {
            return of_repo(r);
        }
        if let Some(s) = c.downcast_ref::<StoreError>() {
            return of_store(s);
        }
        cause = c.source();
    }
    None
}

pub type EngineResult<T> = Result<T, EngineError>;
