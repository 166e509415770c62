//! The restore plan: where every unit root lands, which entries of the backup are written, and
//! what each destination path is now and becomes. It is computed once, before anything is
//! touched, for every kind of restore (from a repository or a backup file; in place, under
//! `--target`, into another home; merge or replace): the dry run prints it, the safety backup
//! covers exactly its replaced and deleted paths, and the run carries out exactly it.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lifeboat_repository::{Node, NodeKind, Repository};
use rayon::prelude::*;
use serde::Serialize;

use super::entry::Entry;
use super::RestoreMode;
use crate::browse::pattern::{join, Choice};
use crate::paths::{reroot, Dirs};
use crate::unit::Unit;
use crate::{EngineError, EngineResult};

/// What a restore does to one destination path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Nothing is there: the backup's entry is written.
    Create,
    /// Something else is there: it becomes the backup's entry.
    Replace,
    /// It is there, the backup does not hold it, and it goes (replace mode, undo lists).
    Delete,
    /// It is there, the backup does not hold it, and it stays (the reason says why).
    Keep,
    /// It is already as in the backup.
    Unchanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::Keep => "keep",
            Action::Unchanged => "unchanged",
        }
    }

    /// Whether the path is different after the restore.
    pub fn changes(self) -> bool {
        matches!(self, Action::Create | Action::Replace | Action::Delete)
    }
}

/// One line of the plan: a destination path (where it is on this device), what it becomes,
/// and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    pub path: String,
    /// `file`, `dir`, `symlink`, …: what the path becomes (what it is, for keep and delete).
    pub kind: &'static str,
    pub unit: String,
    pub why: &'static str,
}

/// A unit root of the restore.
pub(crate) struct Root {
    pub unit: String,
    /// The unit's kind in the backup (`paths`, `sqlite`, `command`).
    pub kind: String,
    /// The path as the backup stores it (`~/notes`).
    pub written: String,
    /// Where it lands on this device.
    pub dest: PathBuf,
    /// Where its entries are written: its staging copy, a place inside the staging copy of the
    /// root it lies in, or `dest` itself.
    pub work: PathBuf,
    /// It has a staging copy of its own, swapped in at the end.
    pub staged: bool,
    /// The root of this restore it lies inside, when there is one.
    pub outer: Option<usize>,
    /// The backup holds only chosen entries of this root: what it lacks always stays.
    pub selection: bool,
    /// A `command` unit's exported data, which goes to an area of its own, not a device path.
    pub elsewhere: bool,
}

impl Root {
    /// The working path of a final destination path inside this root.
    pub fn work_path(&self, dest: &Path) -> PathBuf {
        under(&self.work, dest.strip_prefix(&self.dest).unwrap_or(Path::new("")))
    }
}

/// `base` joined with `rel`, where an empty `rel` is `base` itself (no trailing slash).
pub(crate) fn under(base: &Path, rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    }
}

/// An entry of the backup that the restore handles. The plan holds one per entry of the
/// backup, so it holds only what cannot be worked out again: its destination and node. Where
/// it is written ([`Plan::work_path`]) follows from its root; its step is made when listed.
/// The entry is boxed so that the plan's vector, which grows and is sorted while the trees are
/// read, moves small items: a restore of 80,000 entries must fit a 128 MiB device.
pub(crate) struct Item {
    /// Where it ends up on this device.
    pub dest: PathBuf,
    pub node: Box<Entry>,
    /// Index of its root in `Plan::roots`.
    pub root: usize,
    pub action: Action,
    pub why: &'static str,
    /// What a staging copy takes of what stands at `dest` now.
    pub carry: Carry,
    /// Its owner's user and group names in the plan's [`NameTable`] (the node holds none).
    pub names: u32,
}

impl Item {
    /// An entry found in the backup, before the plan compares it with the device; its owner's
    /// names go into `names`.
    pub fn found(root: usize, mut dest: PathBuf, mut node: Node, names: &mut NameTable) -> Item {
        // Held for the whole restore, once per entry: no spare capacity, only what a restore
        // writes (an [`Entry`]), and the owner's names once per distinct pair.
        dest.shrink_to_fit();
        let names = names.intern((node.user.take(), node.group.take()));
        let node = Box::new(Entry::from(node));
        Item { dest, node, root, action: Action::Create, why: "it is not on this device", carry: Carry::Drop, names }
    }

    /// The entry must be written (a folder is always made sure of and given its metadata).
    pub fn writes(&self) -> bool {
        self.node.kind == NodeKind::Dir || self.action != Action::Unchanged
    }

    /// A folder the restore makes anew: what lies in it is new too.
    fn fresh(&self) -> bool {
        self.node.kind == NodeKind::Dir && self.carry == Carry::Drop
    }
}

/// An entry's owner as the backup names it: user and group names (`None` where the backup
/// has only the numbers).
pub(crate) type OwnerNames = (Option<String>, Option<String>);

/// The owner names of a plan's items, each distinct pair held once: a restore of 300,000
/// files of one owner holds one pair, not 600,000 small strings.
pub(crate) struct NameTable {
    list: Vec<OwnerNames>,
    at: HashMap<OwnerNames, u32>,
}

impl Default for NameTable {
    fn default() -> Self {
        // Position 0 is "no names" (the owner goes by number).
        let none: OwnerNames = (None, None);
        NameTable { list: vec![none.clone()], at: HashMap::from([(none, 0)]) }
    }
}

impl NameTable {
    fn intern(&mut self, names: OwnerNames) -> u32 {
        if let Some(&i) = self.at.get(&names) {
            return i;
        }
        // More distinct owners than a u32 counts cannot be in memory; were it so, the rest
        // would go by number.
        let Ok(i) = u32::try_from(self.list.len()) else { return 0 };
        self.list.push(names.clone());
        self.at.insert(names, i);
        i
    }

    /// The names at position `i` (no names for a position it does not hold).
    pub fn get(&self, i: u32) -> &OwnerNames {
        self.list.get(i as usize).unwrap_or(&self.list[0])
    }
}

/// The item at `dest` in items sorted by destination; of two at one path (two roots at
/// one place), the later, as the later root is written over the earlier.
fn item_at<'a>(items: &'a [Item], dest: &Path) -> Option<&'a Item> {
    let end = items.partition_point(|i| i.dest.as_path() <= dest);
    items[..end].last().filter(|i| i.dest == dest)
}

/// A step of the plan as it is looked at: an item's, or one about what the device has.
pub(crate) struct StepView<'a> {
    pub action: Action,
    pub path: &'a Path,
    pub why: &'static str,
}

/// What a staging copy takes from an entry that is on the device now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Carry {
    /// The entry as it is, with everything in it (files hard-linked, no data copied).
    Whole,
    /// A folder of its own, filled entry by entry.
    Descend,
    /// Nothing: the restore writes something else there, or removes it.
    Drop,
}

pub(crate) struct Plan {
    pub roots: Vec<Root>,
    /// The backup's entries, sorted by destination.
    pub items: Vec<Item>,
    /// What the device has that the backup lacks, kept or deleted, and what an undo list
    /// or a restored database's journal removes.
    others: Vec<Step>,
    /// Final paths to remove, parents before what is in them.
    pub deletes: Vec<PathBuf>,
    /// Folders whose listing could not be read: their contents are not restored.
    pub problems: Vec<String>,
    /// The owner names of the items.
    pub names: NameTable,
    /// What stood at each path the plan replaces or deletes when it looked: the restore
    /// changes such a path only while it still is that.
    pub seen: HashMap<PathBuf, Seen>,
}

/// An entry on the device as the plan saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    kind: u32,
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

impl Seen {
    pub fn of(m: &std::fs::Metadata) -> Seen {
        Seen {
            kind: m.mode() & libc::S_IFMT,
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }

    pub fn of_stat(st: &nix::sys::stat::FileStat) -> Seen {
        Seen {
            kind: st.st_mode & libc::S_IFMT,
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime: (st.st_mtime, st.st_mtime_nsec),
        }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == libc::S_IFDIR
    }

    /// Its device and inode.
    pub fn ids(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// Whether `now` is still the entry seen: the same inode, of the same size and time (a
    /// folder: the same folder, whose times move with what is in it). Not its change time,
    /// which the restore itself moves when it renames or unlinks another name of it.
    pub fn still(&self, now: &Seen) -> bool {
        if self.is_dir() {
            now.kind == self.kind && now.ids() == self.ids()
        } else {
            self == now
        }
    }
}

impl Plan {
    /// Files and bytes the restore writes.
    pub fn to_write(&self) -> (u64, u64) {
        let written = self.items.iter().filter(|i| i.node.kind != NodeKind::Dir && i.action != Action::Unchanged);
        let (mut files, mut bytes) = (0, 0);
        for i in written {
            files += 1;
            if i.node.kind == NodeKind::File {
                bytes += i.node.size;
            }
        }
        (files, bytes)
    }

    pub fn count(&self, action: Action) -> u64 {
        self.steps().filter(|s| s.action == action).count() as u64
    }

    /// Every destination path the plan looked at, with what becomes of it.
    pub fn steps(&self) -> impl Iterator<Item = StepView<'_>> {
        let items = self.items.iter().map(|i| StepView { action: i.action, path: &i.dest, why: i.why });
        let others = self.others.iter().map(|s| StepView { action: s.action, path: Path::new(&s.path), why: s.why });
        items.chain(others)
    }

    /// The plan as a list of steps sorted by path (what a dry run shows).
    pub fn listing(&self) -> Vec<Step> {
        let items = self.items.iter().map(|i| Step {
            action: i.action,
            path: i.dest.display().to_string(),
            kind: kind_name(i.node.kind),
            unit: self.roots[i.root].unit.clone(),
            why: i.why,
        });
        let mut list: Vec<Step> = items.chain(self.others.iter().cloned()).collect();
        list.sort_by(|a, b| a.path.cmp(&b.path));
        list
    }

    /// The item at `dest`, if the backup holds it.
    pub fn item_at(&self, dest: &Path) -> Option<&Item> {
        item_at(&self.items, dest)
    }
}

/// The staging path beside `dest`, on the same file system, for an atomic swap.
pub(crate) fn staging_path(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dest.with_file_name(format!(".{name}.lifeboat-restore"))
}

/// How paths of the device that made the backup become paths of this one: its home becomes
/// this user's home, and `--map-path OLD=NEW` rules apply (longest OLD first).
pub(crate) struct PathMap {
    rules: Vec<(Vec<u8>, Vec<u8>)>,
}

impl PathMap {
    pub fn new(old_home: &[u8], new_home: &Path, extra: &[(PathBuf, PathBuf)]) -> PathMap {
        use std::os::unix::ffi::OsStrExt;
        let mut rules: Vec<(Vec<u8>, Vec<u8>)> =
            extra.iter().map(|(a, b)| (a.as_os_str().as_bytes().to_vec(), b.as_os_str().as_bytes().to_vec())).collect();
        let new_home = new_home.as_os_str().as_bytes();
        if !old_home.is_empty() && old_home != new_home {
            rules.push((old_home.to_vec(), new_home.to_vec()));
        }
        rules.sort_by_key(|(a, _)| std::cmp::Reverse(a.len()));
        PathMap { rules }
    }

    /// The mapped path, when a rule applies to `p` (equal to OLD, or below it).
    pub fn map(&self, p: &[u8]) -> Option<Vec<u8>> {
        self.rules.iter().find_map(|(old, new)| {
            let rest = p.strip_prefix(old.as_slice())?;
            (rest.is_empty() || rest[0] == b'/').then(|| [new.as_slice(), rest].concat())
        })
    }
}

/// Where a unit root lands: its written path under this user's home, re-rooted under
/// `target` when one is given. The written path was checked (`check_root_path`).
pub(crate) fn destination(written: &str, dirs: &Dirs, target: Option<&Path>, map: &PathMap) -> PathBuf {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let expanded = dirs.expand(written);
    let on_device = match map.map(expanded.as_os_str().as_bytes()) {
        Some(m) if !written.starts_with('~') => PathBuf::from(OsString::from_vec(m)),
        _ => expanded,
    };
    match target {
        Some(t) => reroot(t, &on_device),
        None => on_device,
    }
}

/// A unit root as the backup describes it, before the plan places it.
#[derive(Clone)]
pub(crate) struct RootSpec {
    pub unit: String,
    pub kind: String,
    pub written: String,
    pub dest: PathBuf,
    pub selection: bool,
    pub elsewhere: bool,
}

/// Places the roots: which lies inside which, and where each is written. With `stage`, a
/// root that lies inside no other gets a staging copy beside itself; one that lies inside
/// another is written at its place inside that root's staging copy, so the outer swap
/// carries it and nothing of it sits in a folder the swap removes.
pub(crate) fn layout(specs: Vec<RootSpec>, stage: bool, target: Option<&Path>) -> EngineResult<Vec<Root>> {
    let mut roots: Vec<Root> = specs
        .into_iter()
        .map(|s| Root {
            work: s.dest.clone(),
            unit: s.unit,
            kind: s.kind,
            written: s.written,
            dest: s.dest,
            staged: false,
            outer: None,
            selection: s.selection,
            elsewhere: s.elsewhere,
        })
        .collect();
    for r in &roots {
        // The names were checked; this is the boundary that keeps it so whatever comes next.
        let bound = match target {
            Some(t) if !r.elsewhere => t,
            _ => Path::new("/"),
        };
        if !r.dest.is_absolute() || !r.dest.starts_with(bound) || r.dest.components().any(|c| c.as_os_str() == "..") {
            return Err(EngineError::Outside { path: r.dest.clone(), bound: bound.to_path_buf() });
        }
    }
    // The innermost root that holds each one (the first of two equal paths holds the second).
    for i in 0..roots.len() {
        if roots[i].elsewhere {
            continue;
        }
        let holder = (0..roots.len())
            .filter(|&j| j != i && !roots[j].elsewhere)
            .filter(|&j| {
                let (inner, outer) = (&roots[i].dest, &roots[j].dest);
                inner.starts_with(outer) && (inner != outer || j < i)
            })
            .max_by_key(|&j| (roots[j].dest.components().count(), std::cmp::Reverse(j)));
        roots[i].outer = holder;
    }
    if stage {
        // Outer roots first, so an inner one is placed inside its holder's staging copy.
        let mut order: Vec<usize> = (0..roots.len()).collect();
        order.sort_by_key(|&i| roots[i].dest.components().count());
        for i in order {
            if roots[i].elsewhere {
                continue;
            }
            match roots[i].outer {
                Some(o) => {
                    let w = roots[o].work_path(&roots[i].dest);
                    roots[i].work = w;
                }
                None => {
                    roots[i].work = staging_path(&roots[i].dest);
                    roots[i].staged = true;
                }
            }
        }
    }
    Ok(roots)
}

/// What decides that an entry on the device which the backup lacks stays in replace mode.
pub(crate) struct Keeper<'a> {
    /// The configured units, resolved for the destination's home.
    pub configured: &'a [Unit],
    /// The units this restore restores.
    pub restored: &'a [String],
}

impl Keeper<'_> {
    /// Why `path`, on the device but not in the backup, stays in replace mode (None: it goes).
    fn reason(&self, root: &Root, path: &Path, is_dir: bool) -> Option<&'static str> {
        let rel = path.strip_prefix(&root.dest).unwrap_or(path);
        let own = self.configured.iter().find(|u| u.name == root.unit);
        if own.is_some_and(|u| u.filter.excludes(path, rel, is_dir)) {
            return Some("the unit excludes it");
        }
        // A unit whose path lies inside this root keeps its data when only the outer unit is
        // restored (the Home Assistant recorder database inside the configuration folder).
        let other = self.configured.iter().filter(|u| u.name != root.unit && !self.restored.contains(&u.name));
        for u in other {
            let inner = |p: &PathBuf| p.starts_with(&root.dest) && p != &root.dest && path.starts_with(p);
            if u.paths.iter().any(|(_, p)| inner(p)) {
                return Some("it belongs to another unit, not restored now");
            }
        }
        None
    }
}

/// Reads the backup's trees below each root into items (in parallel), skipping what lies in
/// an inner root: the inner root restores that part. With `choice`, only the chosen entries
/// (and everything in a chosen folder) are items, with the folders that lead to them.
pub(crate) fn items_from_trees(
    repo: &Repository,
    roots: &[Root],
    nodes: &[Node],
    map: &PathMap,
    choice: Option<&Choice>,
) -> PlanItems {
    let out = Mutex::new(PlanItems::default());
    for (i, (root, node)) in roots.iter().zip(nodes).enumerate() {
        let inner: HashSet<&Path> = roots.iter().filter(|r| r.outer == Some(i)).map(|r| r.dest.as_path()).collect();
        let ctx = TreeWalk { repo, out: &out, map, root: i, inner: &inner, choice };
        // A root inside a chosen folder is chosen whole.
        let chosen = choice.is_some_and(|c| c.chooses(&root.written));
        ctx.walk(node.clone(), root.dest.clone(), root.written.clone(), chosen);
    }
    out.into_inner().expect("plan lock")
}

#[derive(Default)]
pub(crate) struct PlanItems {
    pub items: Vec<Item>,
    pub problems: Vec<String>,
    /// Folders that are items only because they lead to chosen entries: what the device has
    /// in them beside those stays, whatever the mode.
    pub leading: HashSet<PathBuf>,
    pub names: NameTable,
}

impl PlanItems {
    /// Adds an entry found in the backup.
    pub fn push(&mut self, root: usize, dest: PathBuf, node: Node) {
        let item = Item::found(root, dest, node, &mut self.names);
        self.items.push(item);
    }
}

struct TreeWalk<'a> {
    repo: &'a Repository,
    out: &'a Mutex<PlanItems>,
    map: &'a PathMap,
    root: usize,
    inner: &'a HashSet<&'a Path>,
    choice: Option<&'a Choice>,
}

impl TreeWalk<'_> {
    /// Walks `node` at `dest` (`written`: its path in the backup's namespace); `chosen`: a
    /// folder it lies in was chosen. Returns whether it became an item.
    fn walk(&self, mut node: Node, dest: PathBuf, written: String, chosen: bool) -> bool {
        let chosen = chosen || self.choice.is_none_or(|c| c.matches(&written));
        let mut leads = false;
        if node.kind == NodeKind::Dir && (chosen || self.choice.is_some_and(|c| c.may_match_below(&written))) {
            if let Some(t) = node.subtree {
                match self.repo.read_tree(&t) {
                    Ok(tree) => {
                        leads = tree
                            .nodes
                            .into_par_iter()
                            .map(|child| {
                                // A name that would climb out of its folder cannot come from a
                                // real file system: refuse it rather than write outside the target.
                                if let Err(e) = lifeboat_repository::check_entry_name(&child.name.0) {
                                    self.problem(format!("{}: refused: {e}", dest.display()));
                                    return false;
                                }
                                let path = dest.join(child.name.as_os_str());
                                if self.inner.contains(path.as_path()) {
                                    return false;
                                }
                                let w = join(&written, &String::from_utf8_lossy(&child.name.0));
                                self.walk(child, path, w, chosen)
                            })
                            .reduce(|| false, |a, b| a || b)
                    }
                    Err(e) => self.problem(format!("{}: contents not restored: {e}", dest.display())),
                }
            }
        }
        if !chosen && !leads {
            return false;
        }
        // An absolute symlink into the old home (or a mapped path) follows the data.
        if let Some(t) = node.target.as_mut() {
            if t.0.starts_with(b"/") {
                if let Some(m) = self.map.map(&t.0) {
                    t.0 = m;
                }
            }
        }
        let mut out = self.out.lock().expect("plan lock");
        if !chosen {
            out.leading.insert(dest.clone());
        }
        out.push(self.root, dest, node);
        true
    }

    fn problem(&self, msg: String) {
        self.out.lock().expect("plan lock").problems.push(msg);
    }
}

/// The owner (uid, gid) an entry gets on this device, from its node and its owner's names;
/// `None`: owners are not set (not restoring as root).
pub(crate) type OwnerOf<'a> = dyn Fn(&Entry, &OwnerNames) -> Option<(u32, u32)> + Sync + 'a;

/// How the plan compares what is on the device with the backup.
pub(crate) struct Compare<'a> {
    pub mode: RestoreMode,
    pub keeper: Keeper<'a>,
    /// The owner an entry gets (as root); None compares no owners.
    pub owner: &'a OwnerOf<'a>,
    /// The repository to compare file contents with, when a file's size and date match;
    /// `None` trusts them (`--trust-dates`, or a backup file, which has no index).
    pub content: Option<&'a Repository>,
}

/// The items that are files whose size and time match the backup's but whose content does
/// not: damaged on this device (bit rot, a write that kept the date). Read in parallel.
fn damaged_in_place(items: &[Item], repo: &Repository) -> HashSet<usize> {
    items
        .par_iter()
        .enumerate()
        .filter(|(_, it)| it.node.kind == NodeKind::File && it.node.links <= 1)
        .filter(|(_, it)| {
            std::fs::symlink_metadata(&it.dest).is_ok_and(|m| {
                m.file_type().is_file()
                    && m.len() == it.node.size
                    && m.mtime() == it.node.mtime.0
                    && m.mtime_nsec() as u32 == it.node.mtime.1
            })
        })
        .filter(|(_, it)| super::content::compare(repo, &it.dest, &it.node.content) == super::content::Content::Differs)
        .map(|(k, _)| k)
        .collect()
}

/// Builds the plan: each item compared with what is at its destination now, and what is
/// there that the backup lacks decided on.
/// `remove`: paths (by unit) the restore removes when the backup does not hold them (a
/// safety backup's undo list).
pub(crate) fn build(roots: Vec<Root>, mut found: PlanItems, remove: &[(String, PathBuf)], cmp: &Compare) -> Plan {
    // Sorted by destination, parents before what is in them: what lies in a folder the
    // restore makes anew is new too, and is never looked up through whatever stands at that
    // folder's place now (a symlink there leads elsewhere). The sort is stable, so of two
    // items at one path the later root's stays the later.
    let mut items = std::mem::take(&mut found.items);
    items.sort_by(|a, b| a.dest.cmp(&b.dest));
    // One item per entry of the backup: no room for growth is kept beside them.
    items.shrink_to_fit();
    let damaged = cmp.content.map(|repo| damaged_in_place(&items, repo)).unwrap_or_default();
    let mut steps = Steps::default();
    // What an undo list removes goes first (unless the backup holds it), so that nothing
    // below decides to keep it.
    for (unit, path) in remove {
        if item_at(&items, path).is_some() {
            continue;
        }
        if let Ok(m) = std::fs::symlink_metadata(path) {
            steps.push(Action::Delete, path, live_kind(&m), unit, "the restore this backup undoes made it");
            steps.carry.insert(path.clone(), Carry::Drop);
            if m.is_dir() {
                steps.delete_inside(path, unit);
            }
        }
    }
    for k in 0..items.len() {
        let item = &items[k];
        let (dest, node) = (&item.dest, &item.node);
        let r = &roots[item.root];
        let in_fresh = dest.parent().and_then(|p| item_at(&items[..k], p)).is_some_and(Item::fresh);
        let (action, why) = if in_fresh {
            (Action::Create, "the folder it is in is new")
        } else if damaged.contains(&k) {
            (Action::Replace, CONTENT_DIFFERS)
        } else {
            compare(dest, node, found.names.get(item.names), cmp.owner)
        };
        // The folder that stands there now, looked at once: one that stays is written into
        // only while it is that very folder (`Folders::expect`).
        let live = if in_fresh { None } else { std::fs::symlink_metadata(dest).ok() };
        let live_dir = live.as_ref().is_some_and(|m| m.is_dir());
        if action == Action::Replace && live_dir && node.kind != NodeKind::Dir {
            // A folder replaced by something else goes with everything in it.
            steps.delete_inside(dest, &r.unit);
        }
        let carry = match (action, node.kind) {
            (Action::Unchanged | Action::Replace, NodeKind::Dir) if live_dir => Carry::Descend,
            (Action::Unchanged, _) => Carry::Whole,
            _ => Carry::Drop,
        };
        if let Some(m) = live.as_ref().filter(|_| node.kind == NodeKind::Dir && carry == Carry::Descend) {
            steps.seen.insert(dest.clone(), Seen::of(m));
        }
        if node.kind == NodeKind::Dir && carry == Carry::Descend {
            let inner: Vec<&Path> =
                roots.iter().filter(|x| x.outer == Some(item.root)).map(|x| x.dest.as_path()).collect();
            let leading = found.leading.contains(dest);
            if let Ok(rd) = std::fs::read_dir(dest) {
                for e in rd.flatten() {
                    let path = e.path();
                    if item_at(&items, &path).is_some() || inner.contains(&path.as_path()) {
                        continue;
                    }
                    let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                    extra(&mut steps, r, &path, is_dir, cmp, leading);
                }
            }
        }
        if action == Action::Replace {
            if let Ok(m) = std::fs::symlink_metadata(dest) {
                steps.seen.insert(dest.clone(), Seen::of(&m));
            }
        }
        let item = &mut items[k];
        (item.action, item.why, item.carry) = (action, why, carry);
    }
    // The folders the roots go in, where no entry of the backup is: written into only while
    // they are the folders seen now (`Folders::expect`).
    for r in &roots {
        let Some(parent) = r.dest.parent().filter(|p| item_at(&items, p).is_none()) else { continue };
        if let Some(m) = std::fs::symlink_metadata(parent).ok().filter(|m| m.is_dir()) {
            steps.seen.entry(parent.to_path_buf()).or_insert_with(|| Seen::of(&m));
        }
    }
    for r in &roots {
        if r.kind == "sqlite" {
            for suffix in ["-wal", "-shm", "-journal"] {
                let mut side = r.dest.as_os_str().to_owned();
                side.push(suffix);
                let side = PathBuf::from(side);
                if let Ok(m) = std::fs::symlink_metadata(&side) {
                    steps.push(Action::Delete, &side, live_kind(&m), &r.unit, "the old database's journal");
                    steps.carry.insert(side, Carry::Drop);
                }
            }
        }
    }
    steps.deletes.sort();
    Plan {
        roots,
        items,
        others: steps.list,
        deletes: steps.deletes,
        problems: found.problems,
        names: found.names,
        seen: steps.seen,
    }
}

#[derive(Default)]
struct Steps {
    list: Vec<Step>,
    carry: HashMap<PathBuf, Carry>,
    deletes: Vec<PathBuf>,
    seen: HashMap<PathBuf, Seen>,
}

impl Steps {
    fn push(&mut self, action: Action, path: &Path, kind: &'static str, unit: &str, why: &'static str) {
        if action == Action::Delete {
            self.deletes.push(path.to_path_buf());
            if let Ok(m) = std::fs::symlink_metadata(path) {
                self.seen.insert(path.to_path_buf(), Seen::of(&m));
            }
        }
        self.list.push(Step { action, path: path.display().to_string(), kind, unit: unit.to_string(), why });
    }

    /// Everything inside a folder that goes.
    fn delete_inside(&mut self, dir: &Path, unit: &str) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let path = e.path();
            let Ok(m) = std::fs::symlink_metadata(&path) else { continue };
            self.push(Action::Delete, &path, live_kind(&m), unit, "the folder it is in is replaced");
            self.carry.insert(path.clone(), Carry::Drop);
            if m.is_dir() {
                self.delete_inside(&path, unit);
            }
        }
    }
}

/// An entry on the device that the backup lacks: kept or deleted. Returns whether anything
/// of it stays.
/// `leading`: the folder it is in is restored only to lead to chosen entries.
fn extra(steps: &mut Steps, root: &Root, path: &Path, is_dir: bool, cmp: &Compare, leading: bool) -> bool {
    if steps.carry.contains_key(path) {
        // Decided already (an undo list removes it).
        return false;
    }
    let kind = std::fs::symlink_metadata(path).map(|m| live_kind(&m)).unwrap_or("file");
    let why = if root.selection {
        Some("the backup holds only chosen entries here")
    } else if leading {
        Some("only the chosen paths are restored")
    } else if cmp.mode == RestoreMode::Merge {
        Some("merge keeps what the backup does not hold")
    } else {
        cmp.keeper.reason(root, path, is_dir)
    };
    if let Some(why) = why {
        steps.push(Action::Keep, path, kind, &root.unit, why);
        steps.carry.insert(path.to_path_buf(), Carry::Whole);
        return true;
    }
    // Replace mode: it goes, but for what inside it is kept (what a unit excludes stays).
    let mut kept = false;
    if is_dir {
        if let Ok(rd) = std::fs::read_dir(path) {
            for e in rd.flatten() {
                let child_dir = e.file_type().is_ok_and(|t| t.is_dir());
                kept |= extra(steps, root, &e.path(), child_dir, cmp, false);
            }
        }
    }
    if kept {
        steps.push(Action::Keep, path, kind, &root.unit, "it holds entries that stay");
        steps.carry.insert(path.to_path_buf(), Carry::Descend);
    } else {
        steps.push(Action::Delete, path, kind, &root.unit, "replace removes what the backup does not hold");
        steps.carry.insert(path.to_path_buf(), Carry::Drop);
    }
    kept
}

/// The reason of a file whose size and date match the backup's but whose content does not.
pub(crate) const CONTENT_DIFFERS: &str = "its content differs from the backup though its size and date match";

/// The reason of a folder that is as in the backup but for its time.
pub(crate) const FOLDER_TIME_ONLY: &str = "only its time differs; the restore sets it as in the backup";

/// What becomes of the entry at `dest`, and why.
fn compare(dest: &Path, node: &Entry, names: &OwnerNames, owner: &OwnerOf<'_>) -> (Action, &'static str) {
    let Ok(m) = std::fs::symlink_metadata(dest) else { return (Action::Create, "it is not on this device") };
    if crate::meta::kind_of(&m) != node.kind {
        return (Action::Replace, "something of another kind is there");
    }
    let times = m.mtime() == node.mtime.0 && m.mtime_nsec() as u32 == node.mtime.1;
    let mode = m.mode() & 0o7777 == node.mode & 0o7777;
    let owned = owner(node, names).is_none_or(|(u, g)| (m.uid(), m.gid()) == (u, g));
    let same = match node.kind {
        NodeKind::File if node.links > 1 => return (Action::Replace, "hard links are restored anew"),
        NodeKind::File => m.len() == node.size && times && mode && owned,
        NodeKind::Symlink => {
            std::fs::read_link(dest).ok().map(|t| t.into_os_string()) == node.target().map(|t| t.to_os_string())
                && owned
        }
        // A folder's time moves whenever something in it changes: on its own that is no
        // change worth listing, though the restore sets it (and the safety backup keeps it).
        NodeKind::Dir if mode && owned && !times => return (Action::Unchanged, FOLDER_TIME_ONLY),
        NodeKind::Dir => mode && owned,
        _ => mode && owned && (m.rdev() == node.rdev().unwrap_or(m.rdev())),
    };
    if same {
        (Action::Unchanged, "it is as in the backup")
    } else if node.kind == NodeKind::Dir {
        (Action::Replace, "the folder's mode or owner differs")
    } else {
        (Action::Replace, "it differs from the backup")
    }
}

pub(crate) fn kind_name(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::File => "file",
        NodeKind::Dir => "dir",
        NodeKind::Symlink => "symlink",
        NodeKind::Fifo => "fifo",
        NodeKind::Socket => "socket",
        NodeKind::CharDevice => "chardev",
        NodeKind::BlockDevice => "blockdev",
    }
}

fn live_kind(m: &std::fs::Metadata) -> &'static str {
    kind_name(crate::meta::kind_of(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_repository::RawBytes;

    #[test]
    fn an_item_is_small_and_keeps_no_spare_capacity() {
        // The plan holds one item per entry of the backup for the whole restore: on a device
        // with 128 MiB, 80,000 entries of a few hundred bytes each are already most of it.
        assert!(std::mem::size_of::<Item>() <= 64, "an item is {} bytes", std::mem::size_of::<Item>());
        let mut dest = PathBuf::from("/home/ann");
        dest.push("notes.txt");
        let mut node = Node {
            name: RawBytes(b"notes.txt".to_vec()),
            kind: NodeKind::File,
            mode: 0o644,
            mtime: Default::default(),
            ctime: Default::default(),
            uid: 1000,
            gid: 1000,
            user: None,
            group: None,
            size: 0,
            inode: 1,
            device: 1,
            links: 1,
            content: Vec::new(),
            subtree: None,
            target: None,
            rdev: None,
            xattrs: Vec::new(),
        };
        node.content.reserve(16);
        node.user = Some("ann".into());
        node.group = Some("users".into());
        let mut names = NameTable::default();
        let item = Item::found(0, dest.clone(), node.clone(), &mut names);
        assert_eq!(item.dest.capacity(), item.dest.as_os_str().len());
        // The owner's names are held once by the table, not by each item.
        assert_eq!(names.get(item.names), &(Some("ann".to_string()), Some("users".to_string())));
        let again = Item::found(0, dest.clone(), node.clone(), &mut names);
        assert_eq!(again.names, item.names);
        node.user = None;
        let other = Item::found(0, dest, node, &mut names);
        assert_ne!(other.names, item.names);
        assert_eq!(names.get(other.names), &(None, Some("users".to_string())));
        assert_eq!(names.get(u32::MAX), &(None, None));
    }
}
