//! Reading an entry's metadata into a [`Node`], and putting it back on restore.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Mutex;

use lifeboat_repository::{Node, NodeKind, RawBytes, Timestamp, Xattr};
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;

use crate::restore::entry::Entry;

/// Caches of user and group names by id.
#[derive(Default)]
pub(crate) struct NameCache {
    users: Mutex<HashMap<u32, Option<String>>>,
    groups: Mutex<HashMap<u32, Option<String>>>,
}

impl NameCache {
    fn user(&self, uid: u32) -> Option<String> {
        self.users
            .lock()
            .expect("name cache")
            .entry(uid)
            .or_insert_with(|| nix::unistd::User::from_uid(uid.into()).ok().flatten().map(|u| u.name))
            .clone()
    }
    fn group(&self, gid: u32) -> Option<String> {
        self.groups
            .lock()
            .expect("name cache")
            .entry(gid)
            .or_insert_with(|| nix::unistd::Group::from_gid(gid.into()).ok().flatten().map(|g| g.name))
            .clone()
    }
}

pub(crate) fn kind_of(meta: &Metadata) -> NodeKind {
    let ft = meta.file_type();
    if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_symlink() {
        NodeKind::Symlink
    } else if ft.is_fifo() {
        NodeKind::Fifo
    } else if ft.is_socket() {
        NodeKind::Socket
    } else if ft.is_char_device() {
        NodeKind::CharDevice
    } else if ft.is_block_device() {
        NodeKind::BlockDevice
    } else {
        NodeKind::File
    }
}

/// The node of an entry, without content or subtree.
pub(crate) fn node_from(name: &OsStr, abs: &Path, meta: &Metadata, names: &NameCache) -> std::io::Result<Node> {
    let kind = kind_of(meta);
    let target =
        if kind == NodeKind::Symlink { Some(RawBytes::from_os(std::fs::read_link(abs)?.as_os_str())) } else { None };
    Ok(Node {
        name: RawBytes::from_os(name),
        kind,
        mode: meta.mode() & 0o7777,
        mtime: Timestamp(meta.mtime(), meta.mtime_nsec() as u32),
        ctime: Timestamp(meta.ctime(), meta.ctime_nsec() as u32),
        uid: meta.uid(),
        gid: meta.gid(),
        user: names.user(meta.uid()),
        group: names.group(meta.gid()),
        size: if kind == NodeKind::File { meta.size() } else { 0 },
        inode: meta.ino(),
        device: meta.dev(),
        links: meta.nlink(),
        content: Vec::new(),
        subtree: None,
        target,
        rdev: matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice).then(|| meta.rdev()),
        xattrs: read_xattrs(abs),
    })
}

fn read_xattrs(abs: &Path) -> Vec<Xattr> {
    let Ok(names) = xattr::list(abs) else { return Vec::new() };
    let mut out: Vec<Xattr> = names
        .filter_map(|n| {
            let value = xattr::get(abs, &n).ok().flatten()?;
            Some(Xattr { name: RawBytes::from_os(&n), value })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Whether a file can be taken from the previous backup without reading it.
pub(crate) fn unchanged(old: &Node, meta: &Metadata) -> bool {
    old.kind == NodeKind::File
        && old.size == meta.size()
        && old.mtime == Timestamp(meta.mtime(), meta.mtime_nsec() as u32)
        && old.ctime == Timestamp(meta.ctime(), meta.ctime_nsec() as u32)
        && old.inode == meta.ino()
        && (old.size == 0 || !old.content.is_empty())
}

fn timespec(t: Timestamp) -> TimeSpec {
    TimeSpec::new(t.0, t.1 as i64)
}

/// Sets a node's extended attributes. Failures on the `security.` and `trusted.` namespaces
/// are expected without root and not reported then.
fn apply_xattrs(path: &Path, node: &Entry, as_root: bool, problems: &mut Vec<String>) {
    set_xattrs(&|name, value| xattr::set(path, name, value), node, as_root, problems)
}

type SetXattr<'a> = dyn Fn(&OsStr, &[u8]) -> std::io::Result<()> + 'a;

fn set_xattrs(set: &SetXattr<'_>, node: &Entry, as_root: bool, problems: &mut Vec<String>) {
    for x in node.xattrs() {
        if let Err(e) = set(x.name.as_os_str(), &x.value) {
            if !(x.name.0.starts_with(b"security.") || x.name.0.starts_with(b"trusted.")) || as_root {
                problems.push(format!("extended attribute {}: {e}", x.name.display()));
            }
        }
    }
}

/// Applies ownership (as root), xattrs, permission bits and times to a restored entry,
/// without following a symlink. Returns what could not be applied.
pub(crate) fn apply(path: &Path, node: &Entry, as_root: bool, owner: Option<(u32, u32)>) -> Vec<String> {
    let mut problems = Vec::new();
    let is_link = node.kind == NodeKind::Symlink;
    if as_root {
        let (uid, gid) = owner.unwrap_or((node.uid, node.gid));
        if let Err(e) = std::os::unix::fs::lchown(path, Some(uid), Some(gid)) {
            problems.push(format!("owner: {e}"));
        }
    }
    apply_xattrs(path, node, as_root, &mut problems);
    if !is_link {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(node.mode)) {
            problems.push(format!("permissions: {e}"));
        }
    }
    let m = timespec(node.mtime);
    if let Err(e) = utimensat(None, path, &m, &m, UtimensatFlags::NoFollowSymlink) {
        problems.push(format!("times: {e}"));
    }
    problems
}

/// Like [`apply`], on an open file (fewer path lookups on the hot path of a restore). For a
/// file this restore created (`fresh`), owner and mode are set only where they differ from
/// what creation gave it: on a large restore that spares two journaled inode updates a file.
pub(crate) fn apply_fd(
    file: &std::fs::File,
    node: &Entry,
    as_root: bool,
    owner: Option<(u32, u32)>,
    fresh: bool,
) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut problems = Vec::new();
    let now = if fresh { file.metadata().ok() } else { None };
    if as_root {
        let (uid, gid) = owner.unwrap_or((node.uid, node.gid));
        let same = now.as_ref().is_some_and(|m| m.uid() == uid && m.gid() == gid);
        if !same {
            if let Err(e) = std::os::unix::fs::fchown(file, Some(uid), Some(gid)) {
                problems.push(format!("owner: {e}"));
            }
        }
    }
    set_xattrs(&|name, value| xattr::FileExt::set_xattr(file, name, value), node, as_root, &mut problems);
    // fchown clears setuid and setgid, so special bits always need the mode set again.
    let mode_ok = now.as_ref().is_some_and(|m| m.mode() & 0o7777 == node.mode) && node.mode & 0o6000 == 0;
    if !mode_ok {
        if let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(node.mode)) {
            problems.push(format!("permissions: {e}"));
        }
    }
    let m = timespec(node.mtime);
    if let Err(e) = nix::sys::stat::futimens(std::os::fd::AsRawFd::as_raw_fd(file), &m, &m) {
        problems.push(format!("times: {e}"));
    }
    problems
}

/// Like [`apply`], for the entry `name` of the folder held open as `dir` (a symlink, FIFO or
/// device node, which are not opened): nothing is reached through a symlink. By name, so only
/// where nobody else can change the names in `dir` (a restore's own room, or a folder only
/// root or this user can change): elsewhere the name may hold another entry by now.
pub(crate) fn apply_at(
    dir: &crate::restore::handles::Dir,
    name: &OsStr,
    node: &Entry,
    as_root: bool,
    owner: Option<(u32, u32)>,
) -> Vec<String> {
    use nix::fcntl::AtFlags;
    use std::os::fd::AsRawFd;
    let mut problems = Vec::new();
    let fd = Some(dir.as_raw_fd());
    if as_root {
        let (uid, gid) = owner.unwrap_or((node.uid, node.gid));
        let ids = (Some(nix::unistd::Uid::from_raw(uid)), Some(nix::unistd::Gid::from_raw(gid)));
        if let Err(e) = nix::unistd::fchownat(fd, name, ids.0, ids.1, AtFlags::AT_SYMLINK_NOFOLLOW) {
            problems.push(format!("owner: {e}"));
        }
    }
    let through = crate::restore::handles::through(dir, name);
    apply_xattrs(&through, node, as_root, &mut problems);
    if node.kind != NodeKind::Symlink {
        let mode = nix::sys::stat::Mode::from_bits_truncate(node.mode);
        if let Err(e) = nix::sys::stat::fchmodat(fd, name, mode, nix::sys::stat::FchmodatFlags::NoFollowSymlink) {
            problems.push(format!("permissions: {e}"));
        }
    }
    let m = timespec(node.mtime);
    if let Err(e) = utimensat(fd, name, &m, &m, UtimensatFlags::NoFollowSymlink) {
        problems.push(format!("times: {e}"));
    }
    problems
}
