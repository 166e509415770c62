//! The largest object of each kind Lifeboat reads whole. Each is far above what Lifeboat
//! itself writes (docs/RELIABILITY.md gives both), so only a file planted or grown by someone
//! who can write to the location meets one: it is refused from its listed size, before a
//! byte of it is read, instead of being read into memory whole.

use lifeboat_storage::ObjectInfo;

use crate::{RepoError, RepoResult};

/// A writer starts a new index file every 16 packs or 100,000 blobs, prune every 100,000
/// blobs: at most ~45 bytes a blob, so a few tens of MiB even when its last pack holds
/// hundreds of thousands of tiny blobs.
pub(crate) const MAX_INDEX_FILE: u64 = 64 << 20;
/// A snapshot is its metadata and its units' roots and warnings.
pub(crate) const MAX_SNAPSHOT: u64 = 64 << 20;
/// A key slot, a lock, the config: a few hundred bytes each.
pub(crate) const MAX_SMALL_OBJECT: u64 = 1 << 20;

/// Refuses a listed object larger than `max`, naming it.
pub(crate) fn within(o: &ObjectInfo, max: u64) -> RepoResult<()> {
    if o.size > max {
        return Err(RepoError::malformed(
            &o.name,
            format!("{} MiB, more than any such file Lifeboat writes ({} MiB): not read", o.size >> 20, max >> 20),
        ));
    }
    Ok(())
}
