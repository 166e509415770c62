use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::store::{check_name, check_read_length, older_than, temporary_file_name};
use crate::walk::Walk;
use crate::{ObjectInfo, Store, StoreError, StoreResult};

/// A repository in a folder of a mounted file system (a local disk, a memory card, a
/// mounted network share).
///
/// Writes go to a temporary name in the same folder, are flushed to disk, and are then
/// renamed into place, so a crash leaves either the whole object or a `.tmp-*` file that
/// nothing reads.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    /// The permissions new objects and folders get, read once from the root folder.
    modes: std::sync::OnceLock<Modes>,
    /// fsync objects and folders; off only in tests that do not care about power loss.
    durable: bool,
    /// For a memory card or USB disk: the filesystem the root must be on. Checked before
    /// every operation, so a card taken out while the store is held (a daemon keeps it for
    /// days) never sends a write to the empty mount point, which is the device's own storage.
    filesystem: Option<Filesystem>,
}

/// A mounted filesystem, as found when the store was made.
#[derive(Debug, Clone)]
pub struct Filesystem {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Its device number (`st_dev` of the mount point while mounted).
    pub device: u64,
    /// How errors name the location on it: `location NAME (removable)`.
    pub location: String,
}

impl Filesystem {
    /// Whether it is still what is mounted at its mount point.
    pub fn still_mounted(&self) -> bool {
        fs::metadata(&self.mount_point).is_ok_and(|m| m.dev() == self.device)
    }
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into(), modes: std::sync::OnceLock::new(), durable: true, filesystem: None }
    }

    /// A store on a removable filesystem: every operation first checks that the filesystem
    /// is still mounted where it was found, and fails with [`StoreError::Removed`] if not.
    pub fn on_filesystem(root: impl Into<PathBuf>, filesystem: Filesystem) -> Self {
        LocalStore { filesystem: Some(filesystem), ..LocalStore::new(root) }
    }

    /// Whether the filesystem the store was made on is still the one mounted at its mount
    /// point (always true for a store on a fixed disk).
    pub fn still_mounted(&self) -> bool {
        self.filesystem.as_ref().is_none_or(Filesystem::still_mounted)
    }

    fn mounted(&self) -> StoreResult<()> {
        if self.still_mounted() {
            Ok(())
        } else {
            Err(StoreError::Removed {
                location: self.filesystem.as_ref().map(|f| f.location.clone()).unwrap_or_default(),
                path: self.root.clone(),
            })
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes `data` whole to a temporary file beside `name` (flushed to disk), lets `place`
    /// put it at its name, and removes whatever temporary file is left.
    fn publish<T>(
        &self,
        name: &str,
        data: &[u8],
        place: impl FnOnce(&Path, &Path) -> std::io::Result<T>,
    ) -> StoreResult<T> {
        self.mounted()?;
        let path = self.path(name)?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let tmp = dir.join(temporary_file_name());
        let attempt = || -> std::io::Result<T> {
            let modes = self.modes();
            let create = || OpenOptions::new().write(true).create_new(true).mode(modes.file).open(&tmp);
            let mut f = match create() {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    make_dirs(&dir, modes.dir)?;
                    create()?
                }
                r => r?,
            };
            crate::faults::crash_point();
            f.write_all(data)?;
            if self.durable {
                f.sync_all()?;
            }
            drop(f);
            crate::faults::crash_point();
            let placed = place(&tmp, &path)?;
            if self.durable {
                File::open(&dir)?.sync_all()?;
            }
            crate::faults::crash_point();
            Ok(placed)
        };
        let result = attempt();
        // After a rename nothing is left; after a link (or a failure) the temporary file goes.
        let _ = fs::remove_file(&tmp);
        result.map_err(|e| match StoreError::io("writing", name, e) {
            // Said with the folder, so a full disk names the location that is full.
            StoreError::Full { name } => StoreError::Full { name: format!("{name} on {}", self.root.display()) },
            other => other,
        })
    }

    fn modes(&self) -> Modes {
        *self.modes.get_or_init(|| Modes::for_root(fs::metadata(&self.root).ok().map(|m| m.mode())))
    }

    /// The objects under a prefix with their times; the temporary ones instead with
    /// `temporaries`.
    fn walk(&self, prefix: &str, temporaries: bool) -> StoreResult<Vec<(ObjectInfo, std::time::SystemTime)>> {
        self.mounted()?;
        let mut walk = Walk::new(self.path(prefix)?, prefix, temporaries);
        while let Some((dir, name)) = walk.next_folder() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io("listing", &name, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| StoreError::io("listing", &name, e))?;
                let file_name = entry.file_name();
                let Some(file_name) = file_name.to_str() else { continue };
                let meta = match entry.metadata() {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(StoreError::io("listing", &format!("{name}/{file_name}"), e)),
                };
                if meta.is_dir() {
                    walk.folder(entry.path(), &name, file_name);
                } else if meta.is_file() {
                    let modified = meta.modified().unwrap_or_else(|_| std::time::SystemTime::now());
                    walk.file(&name, file_name, meta.len(), modified);
                }
            }
        }
        Ok(walk.finish())
    }

    fn path(&self, name: &str) -> StoreResult<PathBuf> {
        check_name(name)?;
        Ok(self.root.join(name))
    }
}

/// Creates a folder and its missing parents with the given permissions.
fn make_dirs(dir: &Path, mode: u32) -> std::io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(mode).create(dir)
}

/// The permissions of what the repository creates.
#[derive(Debug, Clone, Copy)]
struct Modes {
    file: u32,
    dir: u32,
}

impl Modes {
    /// Only the owner reads what a repository holds (its key slots above all): files 0600,
    /// folders 0700. A root folder its owner opened to the group or to others on purpose (a
    /// card the family's accounts share, so that a restore works under a new user name)
    /// keeps that: its objects are readable, its folders enterable, by the same.
    fn for_root(root_mode: Option<u32>) -> Modes {
        let open = root_mode.unwrap_or(0o700) & 0o055;
        Modes { file: 0o600 | (open & 0o044), dir: 0o700 | open }
    }
}

/// The repository's own folders and the objects that matter most to a local reader: the
/// root, its top folders, `config` and every key slot.
pub(crate) const PRIVATE_NAMES: [&str; 6] = ["", "config", "data", "index", "snapshots", "keys"];

impl Store for LocalStore {
    fn readable_by_others(&self) -> StoreResult<Vec<String>> {
        self.mounted()?;
        let mut names: Vec<String> = PRIVATE_NAMES.iter().map(|n| n.to_string()).collect();
        names.extend(self.list("keys")?.into_iter().map(|o| o.name));
        let mut open = Vec::new();
        for name in names {
            match fs::metadata(self.root.join(&name)) {
                Ok(m) if m.mode() & 0o077 != 0 => {
                    open.push(if name.is_empty() { self.root.display().to_string() } else { name })
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("reading", &name, e)),
            }
        }
        Ok(open)
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn prepare(&self) -> StoreResult<()> {
        self.mounted()?;
        make_dirs(&self.root, 0o700).map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => {
                StoreError::PermissionDenied { name: self.root.display().to_string() }
            }
            std::io::ErrorKind::ReadOnlyFilesystem => StoreError::ReadOnly { name: self.root.display().to_string() },
            _ => StoreError::Unreachable { path: self.root.clone(), source: e },
        })
    }

    fn write(&self, name: &str, data: &[u8]) -> StoreResult<()> {
        self.publish(name, data, |tmp, path| fs::rename(tmp, path))
    }

    fn write_new(&self, name: &str, data: &[u8]) -> StoreResult<bool> {
        // link() fails if the name exists: the atomic "create if absent" of POSIX.
        self.publish(name, data, |tmp, path| match fs::hard_link(tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        })
    }

    fn read_at_most(&self, name: &str, max: u64) -> StoreResult<Result<Vec<u8>, u64>> {
        self.mounted()?;
        let path = self.path(name)?;
        // Never through a link, never a FIFO (opening one would wait for a writer), never
        // more than the size the file had when opened.
        let f = OpenOptions::new()
            .read(true)
            .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
            .open(&path)
            .map_err(|e| StoreError::io("opening", name, e))?;
        let meta = f.metadata().map_err(|e| StoreError::io("reading", name, e))?;
        if !meta.is_file() {
            return Err(StoreError::io("reading", name, std::io::Error::other("not a regular file")));
        }
        if meta.len() > max {
            return Ok(Err(meta.len()));
        }
        let mut buf = Vec::with_capacity(meta.len() as usize);
        f.take(meta.len()).read_to_end(&mut buf).map_err(|e| StoreError::io("reading", name, e))?;
        Ok(Ok(buf))
    }

    fn read(&self, name: &str, range: Option<Range<u64>>) -> StoreResult<Vec<u8>> {
        self.mounted()?;
        let path = self.path(name)?;
        let mut f = File::open(&path).map_err(|e| StoreError::io("opening", name, e))?;
        match range {
            None => {
                let mut buf = Vec::new();
                f.read_to_end(&mut buf).map_err(|e| StoreError::io("reading", name, e))?;
                Ok(buf)
            }
            Some(r) => {
                let want = usize::try_from(r.end.saturating_sub(r.start)).unwrap_or(usize::MAX);
                let mut buf = vec![0u8; want];
                let mut done = 0;
                while done < want {
                    let n = f
                        .read_at(&mut buf[done..], r.start + done as u64)
                        .map_err(|e| StoreError::io("reading", name, e))?;
                    if n == 0 {
                        check_read_length(name, &r, done, || f.seek(SeekFrom::End(0)).unwrap_or(0))?;
                    }
                    done += n;
                }
                Ok(buf)
            }
        }
    }

    fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>> {
        Ok(self.walk(prefix, false)?.into_iter().map(|(o, _)| o).collect())
    }

    fn stale_temporaries(&self, prefix: &str, age: std::time::Duration) -> StoreResult<Vec<String>> {
        Ok(self.walk(prefix, true)?.into_iter().filter(|(_, t)| older_than(*t, age)).map(|(o, _)| o.name).collect())
    }

    fn size(&self, name: &str) -> StoreResult<u64> {
        self.mounted()?;
        let path = self.path(name)?;
        fs::metadata(&path).map(|m| m.len()).map_err(|e| StoreError::io("reading", name, e))
    }

    fn remove(&self, name: &str) -> StoreResult<()> {
        self.mounted()?;
        let path = self.path(name)?;
        crate::faults::crash_point();
        match fs::remove_file(&path) {
            Ok(()) => {
                crate::faults::crash_point();
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("removing", name, e)),
        }
    }

    fn connections(&self) -> usize {
        // A disk answers at once: as many as there are cores to decode what is read.
        std::thread::available_parallelism().map_or(2, |n| n.get()).min(8)
    }

    fn write_concurrency(&self) -> usize {
        // A local disk takes one large sequential write at a time best; each pack in flight
        // costs its size in memory.
        1
    }

    fn free_space(&self) -> Option<u64> {
        let stat = nix_statvfs(&self.root)?;
        Some(stat)
    }
}

fn nix_statvfs(path: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(path).ok()?;
    Some(st.blocks_available() as u64 * st.fragment_size() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_store_passes_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("repo"));
        crate::conformance::run(&store);
    }
}
