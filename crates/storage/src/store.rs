use std::ops::Range;

use crate::StoreResult;

/// One object as listed by [`Store::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Full name, e.g. `data/ab/ab12…`.
    pub name: String,
    pub size: u64,
}

/// The storage interface every location kind implements.
///
/// Contracts, relied on by the repository and checked by [`crate::conformance`]:
/// - Names are relative, slash-separated, made of `[A-Za-z0-9._-]` segments; never `..`.
/// - [`Store::write`] is atomic: a reader sees either no object or the whole object, never a
///   prefix, even if the process dies mid-write. Writing a name that exists replaces it whole
///   (the repository only does so with identical bytes).
/// - [`Store::read`] with a range returns exactly that many bytes or fails with
///   `ShortRead`; a missing object fails with `NotFound`.
/// - [`Store::list`] returns every object whose name starts with `prefix/`, recursively,
///   including those written by other processes before the call began.
/// - [`Store::remove`] of a missing object succeeds (removal is idempotent).
/// - All methods may be called from many threads at once.
pub trait Store: Send + Sync {
    /// A short human description, e.g. `/var/lib/lifeboat/backups`.
    fn describe(&self) -> String;
    /// Makes the location ready to hold a repository (creates its folder).
    fn prepare(&self) -> StoreResult<()>;
    /// Writes a whole object atomically.
    fn write(&self, name: &str, data: &[u8]) -> StoreResult<()>;
    /// Writes a whole object atomically, given as shared bytes: a backend whose client takes
    /// its own copy of a body (HTTP) takes these instead, so a pack in flight is held once.
    fn write_shared(&self, name: &str, data: crate::Bytes) -> StoreResult<()> {
        self.write(name, &data)
    }
    /// Writes a whole object only if no object of that name exists, atomically: of several
    /// processes racing, exactly one gets `Ok(true)`; the others get `Ok(false)` and the
    /// object stays as the winner wrote it. Used for the one object that names a repository.
    fn write_new(&self, name: &str, data: &[u8]) -> StoreResult<bool>;
    /// Reads a whole object, or the given byte range of it.
    fn read(&self, name: &str, range: Option<Range<u64>>) -> StoreResult<Vec<u8>>;
    /// Reads a whole object of at most `max` bytes; `Ok(Err(size))` when it is larger. For an
    /// object whose size no listing gave (the config): a backend that can learn the size
    /// with the read itself refuses before reading; the others read it, then refuse.
    fn read_at_most(&self, name: &str, max: u64) -> StoreResult<Result<Vec<u8>, u64>> {
        let bytes = self.read(name, None)?;
        Ok(if bytes.len() as u64 > max { Err(bytes.len() as u64) } else { Ok(bytes) })
    }
    /// Lists the objects under a prefix (`data`, `index`, …).
    fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>>;
    /// The size of an object.
    fn size(&self, name: &str) -> StoreResult<u64>;
    /// Removes an object; missing objects are not an error.
    fn remove(&self, name: &str) -> StoreResult<()>;
    /// How many objects are best written at once (more for high-latency remote locations).
    fn write_concurrency(&self) -> usize {
        4
    }
    /// How many requests are best made at once: reads of index files, snapshots and packs go
    /// this wide (more for high-latency remote locations, where each waits a round trip).
    fn connections(&self) -> usize {
        4
    }
    /// Temporary objects (`.tmp-*`, which [`Store::list`] never shows) under `prefix` last
    /// written longer than `age` ago: what a writer that stopped mid-upload left behind.
    /// [`Store::remove`] takes their names.
    fn stale_temporaries(&self, _prefix: &str, _age: std::time::Duration) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }
    /// The repository's folders and objects that users other than its owner may read or
    /// enter (where the location has permissions: local folders and SFTP), for `check`.
    fn readable_by_others(&self) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }
    /// Free space at the location in bytes, where the location can tell.
    fn free_space(&self) -> Option<u64> {
        None
    }
}

/// True when a listed name is one of the temporary objects writes go through.
pub(crate) fn is_temporary(file_name: &str) -> bool {
    file_name.starts_with(TEMPORARY_PREFIX)
}

const TEMPORARY_PREFIX: &str = ".tmp-";

/// A fresh name for a temporary object: what every backend writes under before the object
/// takes its real name, so a reader never sees part of an object.
pub(crate) fn temporary_file_name() -> String {
    format!("{TEMPORARY_PREFIX}{:016x}", rand::random::<u64>())
}

/// A temporary name in the same folder as `path` (slash-separated, as the backend spells its
/// paths), so that moving it into place is a rename within one folder.
pub(crate) fn temporary_beside(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{}", temporary_file_name()),
        None => temporary_file_name(),
    }
}

/// Holds a ranged read to its contract: exactly the bytes asked for, or `ShortRead` naming
/// the object's real length (asked of `length` only then).
pub(crate) fn check_read_length(
    name: &str,
    range: &std::ops::Range<u64>,
    got: usize,
    length: impl FnOnce() -> u64,
) -> StoreResult<()> {
    if (got as u64) < range.end.saturating_sub(range.start) {
        return Err(crate::StoreError::ShortRead {
            name: name.to_string(),
            start: range.start,
            end: range.end,
            len: length(),
        });
    }
    Ok(())
}

/// True when something last written at `modified` is older than `age`.
pub(crate) fn older_than(modified: std::time::SystemTime, age: std::time::Duration) -> bool {
    std::time::SystemTime::now().duration_since(modified).is_ok_and(|d| d > age)
}

pub(crate) fn check_name(name: &str) -> StoreResult<()> {
    let ok = !name.is_empty()
        && name.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(crate::StoreError::BadName(name.to_string()))
    }
}
