use lifeboat_storage::StoreError;

use crate::Id;

/// What went wrong in the repository, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("there is no Lifeboat repository at {0}: run `lifeboat backups new` to create one")]
    NotARepository(String),
    #[error("a repository already exists at {0}")]
    AlreadyExists(String),
    #[error("wrong password for the repository at {0}: try again, or use the recovery key from your emergency kit")]
    WrongPassword(String),
    #[error(
        "no key slot of the repository at {location} opens with this secret, and {unreadable} key slots are damaged: open it with the recovery key from your emergency kit, then run `lifeboat check --repair`"
    )]
    KeySlotsDamaged { location: String, unreadable: usize },
    #[error(
        "no key slot of the repository at {location} opened with this secret within {seconds} s ({untried} slots left untried): someone who can write there may have added slots to slow every open; open it with the recovery key from your emergency kit, then run `lifeboat check`"
    )]
    OpenBudget { location: String, seconds: u64, untried: usize },
    #[error("the repository at {location} uses format {found}, this Lifeboat reads {supported}: upgrade Lifeboat")]
    UnsupportedVersion { location: String, found: u32, supported: u32 },
    #[error("{what} failed authentication: it was damaged or tampered with; run `lifeboat check --read-data`")]
    Corrupt { what: String },
    #[error(
        "{what} holds what belongs under {} (renamed or copied by someone who can write to the location); run `lifeboat check --repair`", actual.to_hex()
    )]
    Misnamed { what: String, actual: Id, sealed: Vec<u8> },
    #[error("{what} is malformed ({detail}); run `lifeboat check`")]
    Malformed { what: String, detail: String },
    #[error("blob {0} is missing from the index; run `lifeboat check`")]
    MissingBlob(Id),
    #[error("the repository is locked by {holder}: wait for it to finish, or if it died, remove the stale lock with `lifeboat unlock`")]
    Locked { holder: String },
    #[error("no backup matches {0}: see `lifeboat backups list`")]
    NoSuchSnapshot(String),
    #[error("{0} matches several backups: give more of the slug")]
    AmbiguousSnapshot(String),
    #[error("cannot remove the last key of the repository: add another key first")]
    LastKey,
    #[error("no key {0} in the repository: see `lifeboat key list`")]
    NoSuchKey(String),
    #[error("key derivation failed: {0}")]
    Kdf(String),
    #[error("the operation was cancelled")]
    Cancelled,
}

impl RepoError {
    pub(crate) fn malformed(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        RepoError::Malformed { what: what.into(), detail: detail.to_string() }
    }
}

pub type RepoResult<T> = Result<T, RepoError>;
