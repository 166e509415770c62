use serde::{Deserialize, Serialize};

use crate::LockKind;

/// `locks/<id>`: sealed JSON naming who holds the repository and since when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LockFile {
    pub kind: LockKind,
    pub host: String,
    pub pid: u32,
    pub user: String,
    pub operation: String,
    pub created: jiff::Timestamp,
    /// Rewritten every few minutes while the holder runs; a lock not refreshed for
    /// [`crate::lock::STALE_AFTER`] is stale.
    pub refreshed: jiff::Timestamp,
}
