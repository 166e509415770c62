use lifeboat_storage::StoreError;

use crate::Id;

/// What went wrong in the repository. What a person can do about it is the front end's to say
/// (the engine names it: `EngineError::remedy`), so these words never name a command.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("there is no Lifeboat repository at {0}")]
    NotARepository(String),
    #[error("a repository already exists at {0}")]
    AlreadyExists(String),
    /// The making of a repository begun beside its first backup failed, as told before.
    #[error("the repository was not made: {why}")]
    Unmade { why: String },
    #[error("wrong password for the repository at {0}")]
    WrongPassword(String),
    #[error(
        "no key slot of the repository at {location} opens with this secret, and {unreadable} key slots are damaged: open it with the recovery key from your emergency kit"
    )]
    KeySlotsDamaged { location: String, unreadable: usize },
    #[error(
        "no key slot of the repository at {location} opened with this secret within {seconds} s ({untried} slots left untried): someone who can write there may have added slots to slow every open; open it with the recovery key from your emergency kit"
    )]
    OpenBudget { location: String, seconds: u64, untried: usize },
    #[error("the repository at {location} uses format {found}, this Lifeboat reads {supported}: upgrade Lifeboat")]
    UnsupportedVersion { location: String, found: u32, supported: u32 },
    #[error("{what} failed authentication: it was damaged or tampered with")]
    Corrupt { what: String },
    #[error(
        "{what} holds what belongs under {} (renamed or copied by someone who can write to the location)", actual.to_hex()
    )]
    Misnamed { what: String, actual: Id, sealed: Vec<u8> },
    #[error("{what} is malformed ({detail})")]
    Malformed { what: String, detail: String },
    #[error("{what} cannot be read: {why}")]
    Unreadable { what: String, why: String },
    #[error("blob {0} is missing from the index")]
    MissingBlob(Id),
    #[error("the repository is locked by {holder}: wait for it to finish")]
    Locked { holder: String },
    #[error("no backup matches {0}")]
    NoSuchSnapshot(String),
    #[error("{0} matches several backups: give more of the slug")]
    AmbiguousSnapshot(String),
    #[error("cannot remove the last key of the repository: add another key first")]
    LastKey,
    #[error("no key {0} in the repository")]
    NoSuchKey(String),
    #[error("key derivation failed: {0}")]
    Kdf(String),
    #[error("the operation was cancelled")]
    Cancelled,
    /// What stopped a blob writer, as each of its threads sees it: every thread that adds a
    /// blob after the failure gets the same error, so whichever of them is reported says what
    /// happened (the location is read-only, say), never only "cancelled". Whoever decides by
    /// the kind of error matches on [`RepoError::cause`].
    #[error("{0}")]
    Writer(std::sync::Arc<RepoError>),
}

impl RepoError {
    /// The error itself, whichever writer thread reported it.
    pub fn cause(&self) -> &RepoError {
        match self {
            RepoError::Writer(e) => e.cause(),
            e => e,
        }
    }
}

impl RepoError {
    pub(crate) fn malformed(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        RepoError::Malformed { what: what.into(), detail: detail.to_string() }
    }
}

pub type RepoResult<T> = Result<T, RepoError>;
