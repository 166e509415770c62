//! The largest object of each kind Lifeboat reads whole. Each is far above what Lifeboat
//! itself writes (docs/RELIABILITY.md gives both), so only a file planted or grown by someone
//! who can write to the location meets one: it is refused from its listed size, before a
//! byte of it is read, instead of being read into memory whole.

use lifeboat_storage::{ObjectInfo, Store, StoreResult};

use crate::{RepoError, RepoResult, Snapshot};

/// A writer starts a new index file every 16 packs or 100,000 blobs, prune every 100,000
/// blobs: at most ~45 bytes a blob, so a few tens of MiB even when its last pack holds
/// hundreds of thousands of tiny blobs.
/// Older builds wrote larger files (prune: 2,000 packs to a file; repair: the whole index), so
/// the bound leaves room for those of any repository a device can hold in memory.
pub(crate) const MAX_INDEX_FILE: u64 = 256 << 20;
/// A snapshot is its metadata and its units' roots and warnings.
pub(crate) const MAX_SNAPSHOT: u64 = 64 << 20;
/// A key slot, a lock, the config: a few hundred bytes each.
pub(crate) const MAX_SMALL_OBJECT: u64 = 1 << 20;

/// Warnings a snapshot keeps per unit; the rest are counted.
pub(crate) const MAX_WARNINGS: usize = 10_000;

/// The snapshot with each unit's warnings beyond [`MAX_WARNINGS`] replaced by their count.
pub(crate) fn cap_warnings(mut snapshot: Snapshot) -> Snapshot {
    for unit in &mut snapshot.units {
        if unit.warnings.len() > MAX_WARNINGS {
            let more = unit.warnings.len() - MAX_WARNINGS;
            unit.warnings.truncate(MAX_WARNINGS);
            unit.warnings.push(format!("… and {more} more warnings: the run's log lists every one"));
        }
    }
    snapshot
}

/// Reads a listed object within `max`, and never more than its listed size: one grown since
/// its listing (or replaced by something larger) reads short, and fails authentication.
pub(crate) fn read_listed(store: &dyn Store, o: &ObjectInfo, max: u64) -> RepoResult<Vec<u8>> {
    within(o, max)?;
    Ok(read_as_listed(store, &o.name, o.size)?)
}

/// An object read as long as its listing said it was.
pub(crate) fn read_as_listed(store: &dyn Store, name: &str, size: u64) -> StoreResult<Vec<u8>> {
    match size {
        0 => store.read(name, None),
        n => store.read(name, Some(0..n)),
    }
}

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
