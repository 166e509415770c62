//! A read-only FUSE view of a location's backups: `MOUNTPOINT/SLUG/…` holds each backup's
//! files at the paths of the device that made it, `MOUNTPOINT/latest` leads to the newest,
//! and `MOUNTPOINT/by-device/DEVICE/DATE NAME` leads to each backup by device, then date.
//! Content is read from the packs when a program reads it, one blob at a time per open file;
//! folders' trees are kept in a bounded cache. A read that fails answers EIO and is logged;
//! the mount stays up.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen, Request,
};
use lifeboat_repository::{NodeKind, Repository, Snapshot, SnapshotStatus};

use super::dump::FileReader;
use super::pattern::join;
use super::{Entry, Located, View};
use crate::{EngineError, EngineResult};

/// What the kernel may keep of an answer: a backup never changes.
const TTL: Duration = Duration::from_secs(3600);

/// An inode of the mount.
#[derive(Clone)]
enum Ino {
    Root,
    /// `latest`: a symlink to the newest backup's folder.
    Latest(String),
    /// An entry of backup `backup` at `path` (absolute, in that backup's view).
    Entry {
        backup: usize,
        path: String,
        entry: Box<Entry>,
    },
    /// A backup's own folder.
    Backup(usize),
    /// `by-device`: a folder per device.
    Devices,
    /// `by-device/DEVICE`: that device's backups, oldest first.
    Device(usize),
    /// `by-device/DEVICE/DATE NAME`: a symlink to a backup's folder.
    Link(String),
}

/// The name of a folder or link of the mount made from a name a person chose: no `/`, no NUL.
fn file_name(s: &str) -> String {
    let cleaned: String = s.chars().map(|c| if c == '/' || c == '\0' { '_' } else { c }).collect();
    match cleaned.as_str() {
        "" | "." | ".." => format!("_{cleaned}"),
        _ => cleaned,
    }
}

/// `by-device`: a folder per device.
struct ByDevice {
    ino: u64,
    devices: Vec<DeviceFolder>,
}

/// `by-device/DEVICE`: its inode, and its backups by date (each a link's name and inode).
struct DeviceFolder {
    name: String,
    ino: u64,
    links: Vec<(String, u64)>,
}

struct Inodes {
    all: Vec<Ino>,
    by_path: HashMap<(usize, String), u64>,
}

pub(crate) struct BackupFs {
    views: Vec<View>,
    slugs: Vec<String>,
    dates: Vec<SystemTime>,
    latest: Option<String>,
    by_device: ByDevice,
    inodes: Mutex<Inodes>,
    open: Mutex<HashMap<u64, Arc<Mutex<FileReader>>>>,
    next_fh: AtomicU64,
    uid: u32,
    gid: u32,
}

fn time_of(t: lifeboat_repository::Timestamp) -> SystemTime {
    if t.0 >= 0 {
        UNIX_EPOCH + Duration::new(t.0 as u64, t.1.min(999_999_999))
    } else {
        UNIX_EPOCH - Duration::from_secs(t.0.unsigned_abs())
    }
}

impl BackupFs {
    /// `latest_of`: the backups `latest` may lead to (a device's); `device_of`: the name of
    /// the device that made a backup.
    pub fn new(
        repo: &Repository,
        snapshots: Vec<Snapshot>,
        latest_of: &dyn Fn(&Snapshot) -> bool,
        device_of: &dyn Fn(&Snapshot) -> String,
    ) -> EngineResult<BackupFs> {
        let mut snapshots = snapshots;
        snapshots.sort_by(|a, b| a.slug.cmp(&b.slug));
        let latest = snapshots
            .iter()
            .filter(|s| s.status != SnapshotStatus::Failed && latest_of(s))
            .max_by_key(|s| s.date)
            .map(|s| s.slug.clone());
        let mut views = Vec::new();
        for s in &snapshots {
            views.push(View::absolute(repo, s)?);
        }
        let dates =
            snapshots.iter().map(|s| UNIX_EPOCH + Duration::from_secs(s.date.as_second().max(0) as u64)).collect();
        let mut all = vec![Ino::Root];
        if let Some(l) = &latest {
            all.push(Ino::Latest(l.clone()));
        }
        let mut grouped: std::collections::BTreeMap<String, Vec<&Snapshot>> = Default::default();
        for s in &snapshots {
            grouped.entry(file_name(&device_of(s))).or_default().push(s);
        }
        all.push(Ino::Devices);
        let mut by_device = ByDevice { ino: all.len() as u64, devices: Vec::new() };
        let tz = jiff::tz::TimeZone::system();
        for (device, mut backups) in grouped {
            all.push(Ino::Device(by_device.devices.len()));
            let device_ino = all.len() as u64;
            backups.sort_by(|a, b| a.date.cmp(&b.date).then(a.slug.cmp(&b.slug)));
            let mut links: Vec<(String, u64)> = Vec::new();
            for s in backups {
                let when = s.date.to_zoned(tz.clone()).strftime("%Y-%m-%d %H.%M.%S").to_string();
                let mut name = file_name(&format!("{when} {}", s.name));
                // Two backups of one name in one second: the slug tells them apart.
                if links.iter().any(|(n, _)| n == &name) {
                    name = file_name(&format!("{when} {} ({})", s.name, s.slug));
                }
                all.push(Ino::Link(format!("../../{}", s.slug)));
                links.push((name, all.len() as u64));
            }
            by_device.devices.push(DeviceFolder { name: device, ino: device_ino, links });
        }
        Ok(BackupFs {
            by_device,
            views,
            slugs: snapshots.iter().map(|s| s.slug.clone()).collect(),
            dates,
            latest,
            inodes: Mutex::new(Inodes { all, by_path: HashMap::new() }),
            open: Mutex::default(),
            next_fh: AtomicU64::new(1),
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        })
    }

    fn get(&self, ino: INodeNo) -> Option<Ino> {
        let inodes = self.inodes.lock().ok()?;
        inodes.all.get((ino.0 as usize).checked_sub(1)?).cloned()
    }

    /// The inode of an entry, made on first sight.
    fn ino_of(&self, backup: usize, entry: Entry) -> u64 {
        let Ok(mut inodes) = self.inodes.lock() else { return 0 };
        let key = (backup, entry.path.clone());
        if let Some(&ino) = inodes.by_path.get(&key) {
            return ino;
        }
        inodes.all.push(Ino::Entry { backup, path: entry.path.clone(), entry: Box::new(entry) });
        let ino = inodes.all.len() as u64;
        inodes.by_path.insert(key, ino);
        ino
    }

    fn backup_ino(&self, backup: usize) -> u64 {
        let Ok(mut inodes) = self.inodes.lock() else { return 0 };
        if let Some(i) = inodes.all.iter().position(|x| matches!(x, Ino::Backup(b) if *b == backup)) {
            return i as u64 + 1;
        }
        inodes.all.push(Ino::Backup(backup));
        inodes.all.len() as u64
    }

    fn dir_attr(&self, ino: u64, when: SystemTime) -> FileAttr {
        FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: when,
            mtime: when,
            ctime: when,
            crtime: when,
            kind: FileType::Directory,
            perm: 0o555,
            nlink: 2,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            flags: 0,
            blksize: 4096,
        }
    }

    fn attr(&self, ino: u64, what: &Ino) -> FileAttr {
        match what {
            Ino::Root => self.dir_attr(ino, self.dates.iter().max().copied().unwrap_or(UNIX_EPOCH)),
            Ino::Backup(b) => self.dir_attr(ino, self.dates[*b]),
            Ino::Devices | Ino::Device(_) => self.dir_attr(ino, self.dates.iter().max().copied().unwrap_or(UNIX_EPOCH)),
            Ino::Link(target) => FileAttr {
                size: target.len() as u64,
                kind: FileType::Symlink,
                perm: 0o777,
                nlink: 1,
                ..self.dir_attr(ino, self.dates.iter().max().copied().unwrap_or(UNIX_EPOCH))
            },
            Ino::Latest(slug) => FileAttr {
                size: slug.len() as u64,
                kind: FileType::Symlink,
                perm: 0o777,
                nlink: 1,
                ..self.dir_attr(ino, self.dates.iter().max().copied().unwrap_or(UNIX_EPOCH))
            },
            Ino::Entry { entry, .. } => {
                let Some(node) = entry.node.as_ref() else { return self.dir_attr(ino, UNIX_EPOCH) };
                let kind = match node.kind {
                    NodeKind::File => FileType::RegularFile,
                    NodeKind::Dir => FileType::Directory,
                    NodeKind::Symlink => FileType::Symlink,
                    NodeKind::Fifo => FileType::NamedPipe,
                    NodeKind::Socket => FileType::Socket,
                    NodeKind::CharDevice => FileType::CharDevice,
                    NodeKind::BlockDevice => FileType::BlockDevice,
                };
                let size = match node.kind {
                    NodeKind::File => node.size,
                    NodeKind::Symlink => node.target.as_ref().map_or(0, |t| t.0.len() as u64),
                    _ => 0,
                };
                let mtime = time_of(node.mtime);
                FileAttr {
                    ino: INodeNo(ino),
                    size,
                    blocks: size.div_ceil(512),
                    atime: mtime,
                    mtime,
                    ctime: time_of(node.ctime),
                    crtime: mtime,
                    kind,
                    // Read-only: what the backup says, without write bits.
                    perm: (node.mode & 0o7555) as u16,
                    nlink: if node.kind == NodeKind::Dir { 2 } else { 1 },
                    uid: node.uid,
                    gid: node.gid,
                    rdev: node.rdev.unwrap_or(0) as u32,
                    flags: 0,
                    blksize: 4096,
                }
            }
        }
    }

    /// The entries of a folder of the mount: (inode, kind, name).
    fn list(&self, what: &Ino) -> EngineResult<Vec<(u64, FileType, String)>> {
        let children = |backup: usize, path: &str| -> EngineResult<Vec<(u64, FileType, String)>> {
            let entries = self.views[backup].children(Some(path))?;
            Ok(entries
                .into_iter()
                .map(|e| {
                    let name = e.path.rsplit('/').next().unwrap_or_default().to_string();
                    let kind = if e.is_dir() {
                        FileType::Directory
                    } else if e.kind == "symlink" {
                        FileType::Symlink
                    } else {
                        FileType::RegularFile
                    };
                    (self.ino_of(backup, e), kind, name)
                })
                .collect())
        };
        match what {
            Ino::Root => {
                let mut out: Vec<_> = (0..self.slugs.len())
                    .map(|b| (self.backup_ino(b), FileType::Directory, self.slugs[b].clone()))
                    .collect();
                if self.latest.is_some() {
                    out.push((2, FileType::Symlink, "latest".into()));
                }
                out.push((self.by_device.ino, FileType::Directory, "by-device".into()));
                Ok(out)
            }
            Ino::Devices => {
                Ok(self.by_device.devices.iter().map(|f| (f.ino, FileType::Directory, f.name.clone())).collect())
            }
            Ino::Device(d) => Ok(self.by_device.devices[*d]
                .links
                .iter()
                .map(|(name, ino)| (*ino, FileType::Symlink, name.clone()))
                .collect()),
            Ino::Backup(b) => children(*b, "/"),
            Ino::Entry { backup, path, entry } if entry.is_dir() => children(*backup, path),
            _ => Err(EngineError::BadName { what: "entry".into(), detail: "is not a folder".into() }),
        }
    }

    fn lookup_in(&self, parent: &Ino, name: &str) -> EngineResult<Option<(u64, Ino)>> {
        let found = |backup: usize, path: String| -> EngineResult<Option<(u64, Ino)>> {
            match self.views[backup].locate(&path) {
                Ok(Located::Real(e)) => {
                    let ino = self.ino_of(backup, *e);
                    Ok(self.get(INodeNo(ino)).map(|i| (ino, i)))
                }
                Ok(Located::Leading(p)) => {
                    let ino = self.ino_of(backup, Entry::leading(p));
                    Ok(self.get(INodeNo(ino)).map(|i| (ino, i)))
                }
                Err(EngineError::PathNotInBackup { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        };
        match parent {
            Ino::Root if name == "latest" => Ok(self.latest.as_ref().map(|l| (2, Ino::Latest(l.clone())))),
            Ino::Root if name == "by-device" => Ok(Some((self.by_device.ino, Ino::Devices))),
            Ino::Devices => Ok(self
                .by_device
                .devices
                .iter()
                .enumerate()
                .find(|(_, f)| f.name == name)
                .map(|(d, f)| (f.ino, Ino::Device(d)))),
            Ino::Device(d) => Ok(self.by_device.devices[*d]
                .links
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, ino)| self.get(INodeNo(*ino)).map(|i| (*ino, i)))),
            Ino::Root => Ok(self.slugs.iter().position(|s| s == name).map(|b| (self.backup_ino(b), Ino::Backup(b)))),
            Ino::Backup(b) => found(*b, join("/", name)),
            Ino::Entry { backup, entry, .. } if entry.is_dir() => match self.views[*backup].child(entry, name)? {
                Some(e) => {
                    let ino = self.ino_of(*backup, e);
                    Ok(self.get(INodeNo(ino)).map(|i| (ino, i)))
                }
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }
}

fn io_error(what: &str, e: impl std::fmt::Display) -> Errno {
    tracing::warn!("mount: {what}: {e}");
    Errno::EIO
}

impl Filesystem for BackupFs {
    fn init(&mut self, _req: &Request, config: &mut fuser::KernelConfig) -> std::io::Result<()> {
        // Larger reads ahead: a file read in order asks for more at once, and the reader
        // decodes the blobs of each request in parallel.
        let _ = config.set_max_readahead(1 << 20);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(p) = self.get(parent) else { return reply.error(Errno::ENOENT) };
        let name = String::from_utf8_lossy(name.as_bytes()).into_owned();
        match self.lookup_in(&p, &name) {
            Ok(Some((ino, what))) => reply.entry(&TTL, &self.attr(ino, &what), Generation(0)),
            Ok(None) => reply.error(Errno::ENOENT),
            Err(e) => reply.error(io_error(&format!("looking up {name}"), e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.get(ino) {
            Some(what) => reply.attr(&TTL, &self.attr(ino.0, &what)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.get(ino) {
            Some(Ino::Latest(slug)) => reply.data(slug.as_bytes()),
            Some(Ino::Link(target)) => reply.data(target.as_bytes()),
            Some(Ino::Entry { entry, .. }) => match entry.node.as_ref().and_then(|n| n.target.as_ref()) {
                Some(t) => reply.data(&t.0),
                None => reply.error(Errno::EINVAL),
            },
            _ => reply.error(Errno::EINVAL),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let Some(what) = self.get(ino) else { return reply.error(Errno::ENOENT) };
        let listed = match self.list(&what) {
            Ok(l) => l,
            Err(e) => return reply.error(io_error("listing a folder", e)),
        };
        let mut all =
            vec![(ino.0, FileType::Directory, ".".to_string()), (ino.0, FileType::Directory, "..".to_string())];
        all.extend(listed);
        for (i, (child, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        let Some(Ino::Entry { backup, entry, .. }) = self.get(ino) else { return reply.error(Errno::EINVAL) };
        let Some(node) = entry.node.as_ref().filter(|n| n.kind == NodeKind::File) else {
            return reply.error(Errno::EINVAL);
        };
        match FileReader::new(self.views[backup].repo(), node) {
            Ok(r) => {
                let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut open) = self.open.lock() {
                    open.insert(fh, Arc::new(Mutex::new(r)));
                }
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
            }
            Err(e) => reply.error(io_error(&format!("opening {}", entry.path), e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        // The table is held only to find the file: reads of other files go on meanwhile.
        let reader = match self.open.lock() {
            Ok(open) => open.get(&fh.0).cloned(),
            Err(_) => return reply.error(Errno::EIO),
        };
        let Some(reader) = reader else { return reply.error(Errno::EINVAL) };
        let Ok(mut r) = reader.lock() else { return reply.error(Errno::EIO) };
        r.seek_to(offset);
        let mut buf = vec![0u8; size as usize];
        let mut got = 0;
        while got < buf.len() {
            match r.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => return reply.error(io_error("reading a file", e)),
            }
        }
        reply.data(&buf[..got]);
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: fuser::ReplyEmpty,
    ) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&fh.0);
        }
        reply.ok();
    }
}

/// A mounted view; dropping it unmounts.
pub struct Mounted {
    session: Option<fuser::BackgroundSession>,
}

impl Mounted {
    /// Whether the view was unmounted from outside (`fusermount3 -u`).
    pub fn is_finished(&self) -> bool {
        self.session.as_ref().is_none_or(|s| s.guard.is_finished())
    }

    /// Unmounts and waits for the view's thread.
    pub fn unmount(mut self) -> EngineResult<()> {
        if let Some(s) = self.session.take() {
            if !s.guard.is_finished() {
                s.umount_and_join().map_err(|e| EngineError::io("unmounting", "the mount point", e))?;
            }
        }
        Ok(())
    }
}

pub(crate) fn mount(fs: BackupFs, at: &Path) -> EngineResult<Mounted> {
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::RO,
        fuser::MountOption::FSName("lifeboat".into()),
        fuser::MountOption::Subtype("lifeboat".into()),
    ];
    config.n_threads = Some(crate::workers::cores().max(2));
    let session = fuser::spawn_mount(fs, at, &config).map_err(|e| EngineError::io("mounting backups at", at, e))?;
    Ok(Mounted { session: Some(session) })
}
