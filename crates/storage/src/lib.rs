//! Where repositories live.
//!
//! A [`Store`] is a flat namespace of immutable objects addressed by slash-separated names
//! (`data/ab/ab12…`, `snapshots/…`). The repository crate writes every object whole and
//! never modifies one, so a backend only has to offer atomic whole-object writes, ranged
//! reads, listing and removal. Every backend passes the same conformance suite
//! (`conformance`, with the `testing` feature).
//!
//! The `testing` feature adds what tests need and release binaries must not hold: the
//! conformance suite, an in-memory store (`MemoryStore`), a counting allocator for the tests
//! that bound memory (`counting_alloc`), and live fault hooks
//! ([`faults`]; without the feature they are empty functions).

mod error;
mod local;
mod metered;
mod retry;
mod runtime;
mod s3_keys;
mod service;
mod sftp;
mod smb;
mod store;
pub mod tls;
mod walk;

/// The contracts every backend keeps, as one suite (for the backends' tests).
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
/// A counting global allocator (for the tests that bound memory).
#[cfg(any(test, feature = "testing"))]
pub mod counting_alloc;
pub mod faults;
#[cfg(any(test, feature = "testing"))]
mod memory;

/// Shared bytes: what a pack upload hands to the location without a copy.
pub use bytes::Bytes;
pub use error::{NewHost, StoreError, StoreResult};
pub use local::{Filesystem, LocalStore};
#[cfg(any(test, feature = "testing"))]
pub use memory::MemoryStore;
pub use metered::{Metered, Traffic};
pub use retry::Retrying;
pub use service::{DriveKind, ServiceConfig, ServiceStore};
pub use sftp::{HostKeyCheck, SftpConfig, SftpStore};
pub use smb::{SmbConfig, SmbStore};
pub use store::{ObjectInfo, Store};
