//! What changed from one backup to another, or from a backup to the device as it is now
//! (what restoring it would change): added, removed and modified paths, a modification said
//! to be of the content, of the metadata only, or of the kind of entry. A folder whose tree
//! is the same in both backups is not read.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use lifeboat_repository::{Id, Node, NodeKind, Repository, Snapshot, Timestamp};
use serde::Serialize;

use super::pattern::join;
use super::{roots, RootRef};
use crate::restore::plan::kind_name;
use crate::unit::Unit;
use crate::{Dirs, EngineResult};

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub size: u64,
    pub unit: String,
    /// For a modification: `content`, `metadata` (mode, owner, time or extended attributes
    /// only) or `type` (a file became a folder, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what: Option<&'static str>,
    /// For a modification: the size before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_size: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Diff {
    pub added: Vec<Change>,
    pub removed: Vec<Change>,
    pub modified: Vec<Change>,
    /// Bytes of the files added and removed.
    pub added_bytes: u64,
    pub removed_bytes: u64,
    /// Folders of the device that could not be read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// How files were compared, when not by their blob ids: two backups in repositories
    /// that do not share blob ids and chunking (locations not made `like` each other) are
    /// compared by reading the data of every file whose size is the same in both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compared: Option<String>,
}

/// What the blob ids of two backups' repositories tell about their content.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ids {
    /// Same id key and chunking: equal files have equal blob lists, and only they.
    Comparable,
    /// Same id key, other chunking: equal lists mean equal files; unequal ones tell nothing.
    SameKey,
    /// Different id keys: ids tell nothing about the other side's content.
    Unrelated,
}

/// One side's entry: from a backup's tree, or from the device.
#[derive(Clone)]
struct Item {
    kind: NodeKind,
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timestamp,
    what: Holds,
}

#[derive(Clone)]
enum Holds {
    Blobs(Vec<Id>, Vec<(Vec<u8>, Vec<u8>)>),
    Tree(Option<Id>),
    Target(Vec<u8>),
    Other(Option<u64>),
    /// On the device, at this path.
    Live(PathBuf),
}

impl Item {
    fn of(node: &Node) -> Item {
        let what = match node.kind {
            NodeKind::File => Holds::Blobs(
                node.content.clone(),
                node.xattrs.iter().map(|x| (x.name.0.clone(), x.value.clone())).collect(),
            ),
            NodeKind::Dir => Holds::Tree(node.subtree),
            NodeKind::Symlink => Holds::Target(node.target.as_ref().map(|t| t.0.clone()).unwrap_or_default()),
            _ => Holds::Other(node.rdev),
        };
        Item {
            kind: node.kind,
            size: node.size,
            mode: node.mode & 0o7777,
            uid: node.uid,
            gid: node.gid,
            mtime: node.mtime,
            what,
        }
    }

    fn live(path: &Path, m: &std::fs::Metadata) -> Item {
        Item {
            kind: crate::meta::kind_of(m),
            size: if m.is_file() { m.len() } else { 0 },
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            mtime: Timestamp(m.mtime(), m.mtime_nsec() as u32),
            what: Holds::Live(path.to_path_buf()),
        }
    }
}

/// Where the entries of each side come from.
enum Side<'a> {
    Backup(&'a Repository),
    /// The device; `units` for what each unit excludes (never in a backup, so no change).
    Device {
        units: &'a [Unit],
        dirs: &'a Dirs,
    },
}

struct Differ<'a> {
    a: &'a Repository,
    /// Between two backups: what their blob ids tell.
    ids: Ids,
    /// Against the device: a file of the backup's size and time is compared by content too.
    by_content: bool,
    b: Side<'a>,
    /// Paths of every unit root: an inner root is compared as itself, not inside its outer.
    roots: Vec<String>,
    out: Diff,
}

/// From backup `a` to backup `b` (both in `repo`s that can read them).
pub(crate) fn between(
    ra: &Repository,
    a: &Snapshot,
    rb: &Repository,
    b: &Snapshot,
    unit: Option<&str>,
) -> EngineResult<Diff> {
    let (ra_roots, rb_roots) = (pick(roots(a)?, unit), pick(roots(b)?, unit));
    let (sa, sb) = (ra.id_scheme(), rb.id_scheme());
    let ids = if sa.same_chunking(&sb) {
        Ids::Comparable
    } else if sa.same_ids(&sb) {
        Ids::SameKey
    } else {
        Ids::Unrelated
    };
    let mut d = Differ {
        a: ra,
        ids,
        by_content: false,
        b: Side::Backup(rb),
        roots: union(&ra_roots, &rb_roots),
        out: Diff::default(),
    };
    let mut by_path: BTreeMap<String, (Option<RootRef>, Option<RootRef>)> = BTreeMap::new();
    for r in ra_roots {
        let k = r.path.clone();
        by_path.entry(k).or_default().0 = Some(r);
    }
    for r in rb_roots {
        let k = r.path.clone();
        by_path.entry(k).or_default().1 = Some(r);
    }
    for (path, (x, y)) in by_path {
        let unit = x.as_ref().or(y.as_ref()).map(|r| r.unit.clone()).unwrap_or_default();
        d.compare(&path, &unit, x.map(|r| Item::of(&r.node)), y.map(|r| Item::of(&r.node)))?;
    }
    if ids != Ids::Comparable {
        d.out.compared = Some(
            "by reading the data of files of equal size: the two backups are in repositories that do not share \
             blob ids and chunking (locations not made with --like)"
                .into(),
        );
    }
    Ok(d.finish())
}

/// From backup `a` to the device as it is now (`~` is this user's home). `by_content`: a
/// file whose size and time match the backup's is read and compared with it too, as an
/// in-place restore does (at the backup's chunk boundaries, reading nothing from the location).
pub(crate) fn to_device(
    repo: &Repository,
    a: &Snapshot,
    units: &[Unit],
    dirs: &Dirs,
    unit: Option<&str>,
    by_content: bool,
) -> EngineResult<Diff> {
    let ra_roots = pick(roots(a)?, unit);
    let all: Vec<String> = ra_roots.iter().map(|r| r.path.clone()).collect();
    if by_content {
        repo.load_index()?;
    }
    let mut d = Differ {
        a: repo,
        ids: Ids::Comparable,
        by_content,
        b: Side::Device { units, dirs },
        roots: all,
        out: Diff::default(),
    };
    for r in ra_roots {
        let live = dirs.expand(&r.path);
        let here = std::fs::symlink_metadata(&live).ok().map(|m| Item::live(&live, &m));
        d.compare(&r.path, &r.unit, Some(Item::of(&r.node)), here)?;
    }
    Ok(d.finish())
}

fn pick(roots: Vec<RootRef>, unit: Option<&str>) -> Vec<RootRef> {
    roots.into_iter().filter(|r| unit.is_none_or(|u| r.unit == u)).collect()
}

fn union(a: &[RootRef], b: &[RootRef]) -> Vec<String> {
    let mut all: Vec<String> = a.iter().chain(b).map(|r| r.path.clone()).collect();
    all.sort();
    all.dedup();
    all
}

impl Differ<'_> {
    fn finish(mut self) -> Diff {
        for list in [&mut self.out.added, &mut self.out.removed, &mut self.out.modified] {
            list.sort_by(|x, y| x.path.cmp(&y.path));
        }
        self.out
    }

    fn change(path: &str, unit: &str, item: &Item, what: Option<&'static str>, old: Option<u64>) -> Change {
        Change {
            path: path.to_string(),
            kind: kind_name(item.kind),
            size: if item.kind == NodeKind::File { item.size } else { 0 },
            unit: unit.to_string(),
            what,
            old_size: old,
        }
    }

    fn compare(&mut self, path: &str, unit: &str, a: Option<Item>, b: Option<Item>) -> EngineResult<()> {
        match (a, b) {
            (None, None) => Ok(()),
            (Some(a), None) => self.gone(path, unit, &a, true),
            (None, Some(b)) => self.gone(path, unit, &b, false),
            (Some(a), Some(b)) if a.kind != b.kind => {
                self.out.modified.push(Self::change(path, unit, &b, Some("type"), Some(a.size)));
                self.below(path, unit, &a, true)?;
                self.below(path, unit, &b, false)
            }
            (Some(a), Some(b)) => {
                let same_meta = a.mode == b.mode && a.uid == b.uid && a.gid == b.gid;
                if a.kind == NodeKind::Dir {
                    // A folder's time moves with whatever changes in it: no change of its own.
                    if !same_meta {
                        self.out.modified.push(Self::change(path, unit, &b, Some("metadata"), None));
                    }
                    if let (Holds::Tree(x), Holds::Tree(y)) = (&a.what, &b.what) {
                        // Equal tree ids are equal folders only under one id key.
                        if x == y && self.ids != Ids::Unrelated {
                            return Ok(());
                        }
                    }
                    return self.children_of_both(path, unit, &a, &b);
                }
                match self.same_content(&a, &b)? {
                    false => self.out.modified.push(Self::change(path, unit, &b, Some("content"), Some(a.size))),
                    true if !same_meta || a.mtime != b.mtime || !self.same_xattrs(&a, &b) => {
                        self.out.modified.push(Self::change(path, unit, &b, Some("metadata"), None))
                    }
                    true => {}
                }
                Ok(())
            }
        }
    }

    /// An entry only one side has, with everything in it.
    fn gone(&mut self, path: &str, unit: &str, item: &Item, removed: bool) -> EngineResult<()> {
        let c = Self::change(path, unit, item, None, None);
        if removed {
            self.out.removed_bytes += c.size;
            self.out.removed.push(c);
        } else {
            self.out.added_bytes += c.size;
            self.out.added.push(c);
        }
        self.below(path, unit, item, removed)
    }

    fn below(&mut self, path: &str, unit: &str, item: &Item, removed: bool) -> EngineResult<()> {
        if item.kind != NodeKind::Dir {
            return Ok(());
        }
        let side_a = removed;
        for (name, child) in self.children(item, side_a)? {
            let p = join(path, &name);
            if self.roots.contains(&p) {
                continue;
            }
            self.gone(&p, unit, &child, removed)?;
        }
        Ok(())
    }

    fn children_of_both(&mut self, path: &str, unit: &str, a: &Item, b: &Item) -> EngineResult<()> {
        let mut names: BTreeMap<String, (Option<Item>, Option<Item>)> = BTreeMap::new();
        for (n, i) in self.children(a, true)? {
            names.entry(n).or_default().0 = Some(i);
        }
        for (n, i) in self.children(b, false)? {
            names.entry(n).or_default().1 = Some(i);
        }
        for (name, (x, y)) in names {
            let p = join(path, &name);
            if self.roots.contains(&p) {
                continue;
            }
            self.compare(&p, unit, x, y)?;
        }
        Ok(())
    }

    /// A folder's entries, by name.
    fn children(&mut self, item: &Item, side_a: bool) -> EngineResult<Vec<(String, Item)>> {
        match &item.what {
            Holds::Tree(Some(t)) => {
                let repo = match (&self.b, side_a) {
                    (_, true) => self.a,
                    (Side::Backup(r), false) => *r,
                    (Side::Device { .. }, false) => return Ok(Vec::new()),
                };
                Ok(repo
                    .read_tree(t)?
                    .nodes
                    .iter()
                    .filter(|n| lifeboat_repository::check_entry_name(&n.name.0).is_ok())
                    .map(|n| (String::from_utf8_lossy(&n.name.0).into_owned(), Item::of(n)))
                    .collect())
            }
            Holds::Live(dir) => {
                let Side::Device { units, dirs } = &self.b else { return Ok(Vec::new()) };
                let rd = match std::fs::read_dir(dir) {
                    Ok(rd) => rd,
                    Err(e) => {
                        self.out.problems.push(format!("{}: cannot be read: {e}", dir.display()));
                        return Ok(Vec::new());
                    }
                };
                let unit = units.iter().find(|u| u.paths.iter().any(|(_, p)| dir.starts_with(p)));
                let root = unit.and_then(|u| {
                    u.paths.iter().map(|(_, p)| p).filter(|p| dir.starts_with(p)).max_by_key(|p| p.as_os_str().len())
                });
                let mut out = Vec::new();
                for e in rd.flatten() {
                    let p = e.path();
                    let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
                    if let (Some(u), Some(root)) = (unit, root) {
                        let rel = p.strip_prefix(root).unwrap_or(&p);
                        if u.filter.excludes(&p, rel, m.is_dir()) {
                            continue;
                        }
                    }
                    // What Lifeboat keeps for itself (staging copies of a restore) is no change.
                    if p.starts_with(&dirs.data) {
                        continue;
                    }
                    out.push((String::from_utf8_lossy(e.file_name().as_bytes()).into_owned(), Item::live(&p, &m)));
                }
                Ok(out)
            }
            _ => Ok(Vec::new()),
        }
    }

    fn same_xattrs(&self, a: &Item, b: &Item) -> bool {
        match (&a.what, &b.what) {
            (Holds::Blobs(_, x), Holds::Blobs(_, y)) => x == y,
            // The device's attributes are not read for a diff.
            _ => true,
        }
    }

    /// Whether two entries of one kind hold the same: blobs, link target or device number;
    /// against the device, a file of the same size and time is taken as the same (as the
    /// restore's plan does), one of the same size and another time is read and compared.
    fn same_content(&self, a: &Item, b: &Item) -> EngineResult<bool> {
        Ok(match (&a.what, &b.what) {
            (Holds::Blobs(x, _), Holds::Blobs(y, _)) => match self.ids {
                _ if a.size != b.size => false,
                Ids::Comparable => x == y,
                Ids::SameKey if x == y => true,
                Ids::SameKey | Ids::Unrelated => self.same_data(x, y)?,
            },
            (Holds::Target(x), Holds::Target(y)) => x == y,
            (Holds::Other(x), Holds::Other(y)) => x == y,
            (Holds::Blobs(ids, _), Holds::Live(p)) => {
                if a.size != b.size {
                    false
                } else if a.mtime == b.mtime && self.by_content {
                    use crate::restore::content::{compare, Content};
                    match compare(self.a, p, ids) {
                        Content::Same => true,
                        Content::Differs => false,
                        // Lengths unknown to the index, or the file unreadable: read it whole.
                        Content::Unknown => self.same_bytes(ids, p)?,
                    }
                } else if a.mtime == b.mtime {
                    true
                } else {
                    self.same_bytes(ids, p)?
                }
            }
            (Holds::Target(t), Holds::Live(p)) => {
                std::fs::read_link(p).map(|l| l.as_os_str().as_bytes() == t.as_slice()).unwrap_or(false)
            }
            (Holds::Other(r), Holds::Live(p)) => {
                std::fs::symlink_metadata(p).map(|m| r.is_none_or(|r| m.rdev() == r)).unwrap_or(false)
            }
            _ => false,
        })
    }

    /// Whether blobs `x` of the first backup's repository hold the same bytes as blobs `y`
    /// of the second's, read side by side, a blob of each at a time, until they differ.
    fn same_data(&self, x: &[Id], y: &[Id]) -> EngineResult<bool> {
        let Side::Backup(rb) = self.b else { return Ok(false) };
        let (mut left, mut right) = (Bytes::new(self.a, x), Bytes::new(rb, y));
        loop {
            let n = {
                let (l, r) = (left.ahead()?, right.ahead()?);
                if l.is_empty() || r.is_empty() {
                    return Ok(l.is_empty() && r.is_empty());
                }
                let n = l.len().min(r.len());
                if l[..n] != r[..n] {
                    return Ok(false);
                }
                n
            };
            left.at += n;
            right.at += n;
        }
    }

    fn same_bytes(&self, ids: &[Id], path: &Path) -> EngineResult<bool> {
        let mut f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(_) => return Ok(false),
        };
        let mut buf = Vec::new();
        for id in ids {
            let blob = self.a.read_blob(id)?;
            buf.resize(blob.len(), 0);
            if f.read_exact(&mut buf).is_err() || buf != blob {
                return Ok(false);
            }
        }
        let mut rest = [0u8; 1];
        Ok(matches!(f.read(&mut rest), Ok(0)))
    }
}

/// A file's bytes in a backup, a blob at a time.
struct Bytes<'a> {
    repo: &'a Repository,
    ids: std::slice::Iter<'a, Id>,
    blob: Vec<u8>,
    at: usize,
}

impl<'a> Bytes<'a> {
    fn new(repo: &'a Repository, ids: &'a [Id]) -> Self {
        Bytes { repo, ids: ids.iter(), blob: Vec::new(), at: 0 }
    }

    /// The bytes not yet compared of the current blob, the next blob read when it is done;
    /// empty at the end.
    fn ahead(&mut self) -> EngineResult<&[u8]> {
        while self.at == self.blob.len() {
            let Some(id) = self.ids.next() else { break };
            self.blob = self.repo.read_blob(id)?;
            self.at = 0;
        }
        Ok(&self.blob[self.at..])
    }
}
