//! Lifeboat's repository: a deduplicated, compressed and encrypted store of backups inside a
//! [`lifeboat_storage::Store`].
//!
//! The public surface is what a caller needs to write and read backups:
//! [`Repository`] (open, create, read), [`BlobWriter`] (store data and trees),
//! the on-disk types [`Tree`], [`Node`] and [`Snapshot`], and the maintenance operations
//! [`Repository::prune`] and [`Repository::check`]. docs/FORMAT.md describes the bytes.

mod adopt;
mod blob;
mod blob_reader;
mod cache;
mod check;
mod chunker;
mod crypto;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod id;
mod id_scheme;
mod index;
mod keys;
mod limits;
mod lock;
mod making;
mod pack;
mod pack_read;
mod parallel;
mod prune;
mod raw_bytes;
mod repair;
mod repo;
mod repo_config;
mod repofile;
mod safe_path;
mod session;
mod writer;

pub use blob::BlobKind;
pub use blob_reader::OnBlob;
pub use check::{CheckOptions, CheckProblem, CheckReport};
pub use chunker::{Chunker, WHOLE_READ_LIMIT};
pub use error::{RepoError, RepoResult};
pub use id::Id;
pub use id_scheme::IdScheme;
pub use keys::{KeyInfo, KeyKind, RecoveryKey, Secret};
pub use lock::{LockGuard, LockKind};
pub use prune::PruneReport;
pub use raw_bytes::RawBytes;
pub use repair::RepairReport;
pub use repo::{hostname, username, BlobPayload, Empty, Found, RememberedSlot, Repository, SnapshotList, Unlocked};
pub use repo_config::ConfigState;
pub use repofile::snapshot::{Snapshot, SnapshotRoot, SnapshotStatus, SnapshotUnit};
pub use repofile::tree::{Node, NodeKind, Timestamp, Tree, Xattr};
pub use safe_path::{check_entry_name, check_relative, check_root_path, check_unit_name};
pub use session::{Reuse, SessionLock, WriteSession};
pub use writer::{BlobWriter, WriteStats};

/// The repository format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
