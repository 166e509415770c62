//! What a restore will write: every entry of the chosen units with its destination path.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lifeboat_repository::{Node, NodeKind, Repository, Snapshot};
use rayon::prelude::*;

use crate::paths::{reroot, Dirs};

pub(crate) struct Item {
    pub path: PathBuf,
    pub node: Node,
    pub depth: usize,
    /// Index of the unit root (in `Plan::roots`) the entry belongs to.
    pub root: usize,
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

pub(crate) struct Plan {
    pub items: Vec<Item>,
    /// Folders whose listing could not be read: their contents are not restored.
    pub problems: Vec<String>,
    /// Where each unit root is written (its staging path when staged).
    pub roots: Vec<(String, PathBuf)>,
    /// For staged roots, where the staging path is swapped in when everything is written.
    pub finals: Vec<Option<PathBuf>>,
}

/// The staging path beside `dest`, on the same file system, for an atomic swap.
pub(crate) fn staging_path(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dest.with_file_name(format!(".{name}.lifeboat-restore"))
}

/// Where a unit root lands: its written path under this user's home, re-rooted under
/// `target` when one is given.
pub(crate) fn destination(written: &str, dirs: &Dirs, target: Option<&Path>, map: &PathMap) -> PathBuf {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let expanded = dirs.expand(written);
    let on_device = match map.map(expanded.as_os_str().as_bytes()) {
        Some(m) if !written.starts_with('~') => PathBuf::from(std::ffi::OsString::from_vec(m)),
        _ => expanded,
    };
    match target {
        Some(t) => reroot(t, &on_device),
        None => on_device,
    }
}

/// `elsewhere`: destinations of units whose data does not go back to a device path (the
/// exported data of `command` units), by unit name.
/// What to plan: the backup, the units chosen, and where things go.
pub(crate) struct PlanRequest<'a> {
    pub snapshot: &'a Snapshot,
    pub units: &'a [String],
    pub dirs: &'a Dirs,
    pub target: Option<&'a Path>,
    pub elsewhere: &'a std::collections::HashMap<String, PathBuf>,
    pub map: &'a PathMap,
    pub stage: bool,
}

pub(crate) fn build(repo: &Repository, req: PlanRequest) -> Plan {
    let PlanRequest { snapshot, units, dirs, target, elsewhere, map, stage } = req;
    let items = Mutex::new(Vec::new());
    let problems = Mutex::new(Vec::new());
    let mut roots = Vec::new();
    let mut finals = Vec::new();
    for unit in snapshot.units.iter().filter(|u| units.is_empty() || units.contains(&u.name)) {
        for root in &unit.roots {
            let dest = match elsewhere.get(&unit.name) {
                Some(d) => d.clone(),
                None => destination(&root.path, dirs, target, map),
            };
            let (dest, last) = if stage && !elsewhere.contains_key(&unit.name) {
                (staging_path(&dest), Some(dest))
            } else {
                (dest, None)
            };
            roots.push((unit.name.clone(), dest.clone()));
            finals.push(last);
            let ctx = Walk { repo, items: &items, problems: &problems, map, root: roots.len() - 1 };
            ctx.walk(&root.node, dest, 0);
        }
    }
    Plan {
        items: items.into_inner().expect("plan lock"),
        problems: problems.into_inner().expect("plan lock"),
        roots,
        finals,
    }
}

struct Walk<'a> {
    repo: &'a Repository,
    items: &'a Mutex<Vec<Item>>,
    problems: &'a Mutex<Vec<String>>,
    map: &'a PathMap,
    root: usize,
}

impl Walk<'_> {
    fn walk(&self, node: &Node, path: PathBuf, depth: usize) {
        if node.kind == NodeKind::Dir {
            if let Some(t) = node.subtree {
                match self.repo.read_tree(&t) {
                    Ok(tree) => tree.nodes.par_iter().for_each(|child| {
                        let name = child.name.as_os_str();
                        // A name that would climb out of its folder cannot come from a real
                        // file system: refuse it rather than write outside the target.
                        if name.is_empty() || name == "." || name == ".." || child.name.0.contains(&b'/') {
                            self.problem(format!("{}: refused entry {:?}", path.display(), child.name));
                            return;
                        }
                        self.walk(child, path.join(name), depth + 1)
                    }),
                    Err(e) => self.problem(format!("{}: contents not restored: {e}", path.display())),
                }
            }
        }
        let mut node = node.clone();
        // An absolute symlink into the old home (or a mapped path) follows the data.
        if let Some(t) = node.target.as_mut() {
            if t.0.starts_with(b"/") {
                if let Some(m) = self.map.map(&t.0) {
                    t.0 = m;
                }
            }
        }
        self.items.lock().expect("plan lock").push(Item { path, node, depth, root: self.root });
    }

    fn problem(&self, msg: String) {
        self.problems.lock().expect("plan lock").push(msg);
    }
}
