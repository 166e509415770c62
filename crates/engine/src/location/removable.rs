//! Memory cards and USB disks: a location that is only there when its filesystem is.
//!
//! Before anything is written, the folder must be on a mounted filesystem other than the
//! root's, so that a missing card never fills the phone's own storage through an empty mount
//! point. With `uuid` or `label` the filesystem is found wherever it is mounted.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use lifeboat_storage::Filesystem;

/// A removable filesystem found mounted.
#[derive(Debug, Clone)]
pub struct Mounted {
    /// The folder holding the repository. A card mounted read-only is found too: it can be
    /// listed and restored from, and a write fails with the store's read-only error.
    pub folder: PathBuf,
    /// The filesystem it is on, which the store checks is still mounted before every
    /// operation.
    pub filesystem: Filesystem,
}

struct Mount {
    device: u64,
    point: PathBuf,
    source: String,
}

/// Where the repository of a removable location is now, or why it cannot be used, in one
/// sentence that says what to do.
pub fn find(name: &str, path: &str, uuid: Option<&str>, label: Option<&str>) -> Result<Mounted, String> {
    let mounts = mounts();
    let (mount, folder) = match (uuid, label) {
        (None, None) => {
            let folder = PathBuf::from(path);
            if !folder.is_absolute() {
                return Err(format!(
                    "location {name}: path {path:?} must be absolute (or give the card's uuid or label)"
                ));
            }
            let mount = mount_holding(&mounts, &folder).ok_or_else(|| not_mounted(name, &folder))?;
            (mount, folder)
        }
        (uuid, label) => {
            let (what, link) = match (uuid, label) {
                (Some(u), _) => (format!("uuid {u}"), Path::new("/dev/disk/by-uuid").join(u)),
                (None, Some(l)) => (format!("label {l}"), Path::new("/dev/disk/by-label").join(l)),
                (None, None) => unreachable!("handled above"),
            };
            let device = std::fs::canonicalize(&link).map_err(|_| {
                format!("location {name}: no memory card or disk with {what} is inserted: insert it (lsblk -f lists what is there)")
            })?;
            let mount = mount_of_device(&mounts, &device).ok_or_else(|| {
                if is_locked(&device) {
                    format!(
                        "location {name}: the card with {what} ({}) is locked (encrypted): unlock it, for example with udisksctl unlock -b {}, then mount it",
                        device.display(),
                        device.display()
                    )
                } else {
                    format!(
                        "location {name}: the card with {what} ({}) is inserted but not mounted: mount it, for example with udisksctl mount -b {}",
                        device.display(),
                        device.display()
                    )
                }
            })?;
            let folder = if Path::new(path).is_absolute() {
                let folder = PathBuf::from(path);
                if !folder.starts_with(&mount.point) {
                    return Err(format!(
                        "location {name}: the card with {what} is mounted at {}, not under {path}: make path relative to the card (path = \"lifeboat\") to find it wherever it is mounted",
                        mount.point.display()
                    ));
                }
                folder
            } else {
                mount.point.join(path)
            };
            (mount, folder)
        }
    };
    let root_device = std::fs::metadata("/").map(|m| m.dev()).ok();
    if mount.point == Path::new("/") || Some(mount.device) == root_device {
        return Err(not_mounted(name, &folder));
    }
    tracing::debug!("location {name}: {} from {}", mount.point.display(), mount.source);
    // The device number as stat tells it, which is what the store compares with later.
    let device = std::fs::metadata(&mount.point).map(|m| m.dev()).map_err(|_| not_mounted(name, &folder))?;
    Ok(Mounted {
        folder,
        filesystem: Filesystem {
            mount_point: mount.point.clone(),
            device,
            location: format!("location {name} (removable)"),
        },
    })
}

fn not_mounted(name: &str, folder: &Path) -> String {
    format!(
        "location {name}: no memory card or disk is mounted at {} (it would land on this device's own storage): insert the card and mount it there",
        folder.display()
    )
}

/// The mount whose point is the longest prefix of `folder` (the folder need not exist yet).
fn mount_holding<'a>(mounts: &'a [Mount], folder: &Path) -> Option<&'a Mount> {
    // Resolve symlinks of the part that exists, so /media/card → /run/media/u/card works.
    let mut existing = folder.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        rest.push(existing.file_name()?.to_os_string());
        existing = existing.parent()?.to_path_buf();
    }
    let mut real = std::fs::canonicalize(&existing).ok()?;
    for part in rest.into_iter().rev() {
        real.push(part);
    }
    mounts.iter().filter(|m| real.starts_with(&m.point)).max_by_key(|m| m.point.as_os_str().len())
}

fn mount_of_device<'a>(mounts: &'a [Mount], device: &Path) -> Option<&'a Mount> {
    let rdev = std::fs::metadata(device).ok().filter(|m| m.file_type().is_block_device()).map(|m| m.rdev());
    if let Some(found) = mounts.iter().find(|m| Some(m.device) == rdev || Path::new(&m.source) == device) {
        return Some(found);
    }
    // An unlocked encrypted card is mounted through its mapper device (a "holder").
    let dev_name = device.file_name()?.to_str()?;
    let holders = std::fs::read_dir(format!("/sys/class/block/{dev_name}/holders")).ok()?;
    for holder in holders.flatten() {
        let dev = std::fs::read_to_string(holder.path().join("dev")).ok()?;
        let (major, minor) = dev.trim().split_once(':')?;
        let id = nix::sys::stat::makedev(major.parse().ok()?, minor.parse().ok()?);
        if let Some(m) = mounts.iter().find(|m| m.device == id) {
            return Some(m);
        }
    }
    None
}

/// A LUKS header at the start of the device: an encrypted card that is not opened.
fn is_locked(device: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 6];
    std::fs::File::open(device).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && magic == *b"LUKS\xba\xbe"
}

fn mounts() -> Vec<Mount> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else { return Vec::new() };
    text.lines()
        .filter_map(|line| {
            // id parent major:minor root point options [optional…] - fstype source superoptions
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let (major, minor) = f.get(2)?.split_once(':')?;
            let source = right.split(' ').nth(1).unwrap_or("").to_string();
            Some(Mount {
                device: nix::sys::stat::makedev(major.parse().ok()?, minor.parse().ok()?),
                point: PathBuf::from(unescape(f.get(4)?)),
                source,
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as octal escapes.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/media/my\040card"), "/media/my card");
        assert_eq!(unescape(r"/plain"), "/plain");
    }

    #[test]
    fn a_folder_on_the_root_filesystem_is_refused() {
        let err = find("card", "/lifeboat-test-no-such-card/backups", None, None).unwrap_err();
        assert!(err.contains("no memory card or disk is mounted"), "{err}");
        assert!(!Path::new("/lifeboat-test-no-such-card").exists());
    }
}
