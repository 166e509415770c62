//! Looking inside backups without restoring them: one folder's entries or all below it, a
//! search over every backup, what changed between two backups (or since one), and one
//! file's bytes. Paths are the backup's own: a unit root as written in the configuration
//! (`~/notes`) and the entries below it; folders that only lead to roots (`~`, `/etc`) are
//! shown as folders too.

pub(crate) mod diff;
pub(crate) mod dump;
pub(crate) mod find;
pub(crate) mod mount;
pub(crate) mod pattern;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lifeboat_repository::{Id, Node, NodeKind, Repository, Snapshot, Tree};
use serde::Serialize;

use crate::restore::plan::kind_name;
use crate::{EngineError, EngineResult};
use pattern::{join, within};

/// One entry of a backup, as listings show it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub path: String,
    /// `file`, `dir`, `symlink`, `fifo`, `socket`, `chardev`, `blockdev`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub size: u64,
    /// RFC 3339.
    pub mtime: String,
    pub unit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip)]
    pub(crate) node: Option<Node>,
}

impl Entry {
    pub(crate) fn of(path: String, unit: &str, node: &Node) -> Entry {
        Entry {
            path,
            kind: kind_name(node.kind),
            mode: node.mode,
            size: if node.kind == NodeKind::File { node.size } else { 0 },
            mtime: time_text(node.mtime),
            unit: unit.to_string(),
            target: node.target.as_ref().map(|t| String::from_utf8_lossy(&t.0).into_owned()),
            user: node.user.clone(),
            group: node.group.clone(),
            node: Some(node.clone()),
        }
    }

    /// A folder that only leads to unit roots: no node of its own.
    pub(crate) fn leading(path: String) -> Entry {
        Entry {
            path,
            kind: "dir",
            mode: 0o755,
            size: 0,
            mtime: String::new(),
            unit: String::new(),
            target: None,
            user: None,
            group: None,
            node: None,
        }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == "dir"
    }
}

pub(crate) fn time_text(t: lifeboat_repository::Timestamp) -> String {
    jiff::Timestamp::new(t.0, t.1 as i32).map(|t| t.to_string()).unwrap_or_default()
}

/// A unit root of a backup in the namespace of its paths.
#[derive(Debug, Clone)]
pub(crate) struct RootRef {
    pub unit: String,
    pub path: String,
    pub node: Node,
}

/// The roots a browse sees: every root of every unit but `command` units' exported data (it
/// is no path of the device). Each path was checked by `Snapshot::check_paths`.
pub(crate) fn roots(snapshot: &Snapshot) -> EngineResult<Vec<RootRef>> {
    snapshot.check_paths().map_err(|detail| EngineError::UnsafeBackup { slug: snapshot.slug.clone(), detail })?;
    let mut out = Vec::new();
    for u in snapshot.units.iter().filter(|u| u.kind != "command") {
        for r in &u.roots {
            out.push(RootRef { unit: u.name.clone(), path: r.path.clone(), node: r.node.clone() });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// What a path of a backup is.
pub(crate) enum Located {
    /// An entry of a unit.
    Real(Box<Entry>),
    /// A folder that leads to unit roots.
    Leading(String),
}

/// Trees a view keeps read; past this many it starts afresh (a mount lives long).
const TREES_KEPT: usize = 4096;

/// A backup's entries, read from its trees on demand.
pub(crate) struct View {
    repo: Repository,
    slug: String,
    roots: Vec<RootRef>,
    trees: Mutex<HashMap<Id, Arc<Tree>>>,
}

impl View {
    pub fn new(repo: &Repository, snapshot: &Snapshot) -> EngineResult<View> {
        Ok(View { repo: repo.clone(), slug: snapshot.slug.clone(), roots: roots(snapshot)?, trees: Mutex::default() })
    }

    /// The same, with paths under the backup's home spelled out (`/home/nemo/notes`): the
    /// paths of the device that made it, as a mount shows them.
    pub fn absolute(repo: &Repository, snapshot: &Snapshot) -> EngineResult<View> {
        let mut view = View::new(repo, snapshot)?;
        let home = String::from_utf8_lossy(&snapshot.home.0).trim_end_matches('/').to_string();
        for r in &mut view.roots {
            if r.path == "~" {
                r.path = if home.is_empty() { "/".into() } else { home.clone() };
            } else if let Some(rest) = r.path.strip_prefix("~/") {
                r.path = format!("{home}/{rest}");
            }
        }
        view.roots.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(view)
    }

    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    fn tree(&self, id: &Id) -> EngineResult<Arc<Tree>> {
        if let Some(t) = self.trees.lock().map_err(|_| EngineError::Cancelled)?.get(id) {
            return Ok(t.clone());
        }
        let tree = Arc::new(self.repo.read_tree(id)?);
        let mut kept = self.trees.lock().map_err(|_| EngineError::Cancelled)?;
        if kept.len() >= TREES_KEPT {
            kept.clear();
        }
        kept.insert(*id, tree.clone());
        Ok(tree)
    }

    fn not_held(&self, path: &str) -> EngineError {
        EngineError::PathNotInBackup { slug: self.slug.clone(), path: path.to_string() }
    }

    /// The entry at `path` (normalized).
    pub fn locate(&self, path: &str) -> EngineResult<Located> {
        // The innermost root holding the path: an inner unit's root is its own entry.
        let holder = self.roots.iter().filter(|r| within(path, &r.path)).max_by_key(|r| r.path.len());
        if let Some(root) = holder {
            let mut node = root.node.clone();
            let rest = &path[root.path.len()..];
            for name in rest.split('/').filter(|c| !c.is_empty()) {
                let Some(sub) = node.subtree.filter(|_| node.kind == NodeKind::Dir) else {
                    return Err(self.not_held(path));
                };
                let tree = self.repo.read_tree(&sub)?;
                node =
                    tree.nodes.into_iter().find(|n| n.name.0 == name.as_bytes()).ok_or_else(|| self.not_held(path))?;
            }
            return Ok(Located::Real(Box::new(Entry::of(path.to_string(), &root.unit, &node))));
        }
        if path == "/" || self.roots.iter().any(|r| within(&r.path, path)) {
            return Ok(Located::Leading(path.to_string()));
        }
        Err(self.not_held(path))
    }

    /// The entries of the folder at `path`, sorted by name; with no path, the unit roots
    /// (and the folders leading to them) at the top.
    pub fn children(&self, path: Option<&str>) -> EngineResult<Vec<Entry>> {
        let Some(path) = path else {
            return Ok(self.roots.iter().map(|r| Entry::of(r.path.clone(), &r.unit, &r.node)).collect());
        };
        match self.locate(path)? {
            Located::Real(e) => self.children_of(&e, true),
            Located::Leading(dir) => {
                let mut out: Vec<Entry> = Vec::new();
                for r in self.roots.iter().filter(|r| within(&r.path, &dir) && r.path != dir) {
                    let rest = if dir == "/" { &r.path[1..] } else { &r.path[dir.len() + 1..] };
                    let next = join(&dir, rest.split('/').next().unwrap_or(rest));
                    if out.iter().any(|e| e.path == next) {
                        continue;
                    }
                    match self.roots.iter().find(|x| x.path == next) {
                        Some(x) => out.push(Entry::of(next, &x.unit, &x.node)),
                        None => out.push(Entry::leading(next)),
                    }
                }
                if dir == "/" && self.roots.iter().any(|r| r.path.starts_with('~')) {
                    out.insert(0, Entry::leading("~".into()));
                }
                out.sort_by(|a, b| a.path.cmp(&b.path));
                Ok(out)
            }
        }
    }

    /// The entry named `name` in the folder `parent` (a real entry), without walking from the
    /// root: what a mount's lookups ask, one component at a time.
    pub fn child(&self, parent: &Entry, name: &str) -> EngineResult<Option<Entry>> {
        let p = join(&parent.path, name);
        if let Some(r) = self.roots.iter().find(|r| r.path == p) {
            return Ok(Some(Entry::of(p, &r.unit, &r.node)));
        }
        let Some(node) = parent.node.as_ref() else {
            return match self.locate(&p) {
                Ok(Located::Real(e)) => Ok(Some(*e)),
                Ok(Located::Leading(l)) => Ok(Some(Entry::leading(l))),
                Err(EngineError::PathNotInBackup { .. }) => Ok(None),
                Err(e) => Err(e),
            };
        };
        let (NodeKind::Dir, Some(sub)) = (node.kind, node.subtree) else { return Ok(None) };
        let tree = self.tree(&sub)?;
        Ok(find_node(&tree, name.as_bytes()).map(|n| Entry::of(p, &parent.unit, n)))
    }

    /// The entries of a real entry's folder (itself, for a file), sorted by name. `keep`: keep
    /// the tree read in the cache (a walk reads each tree once and does not).
    fn children_of(&self, e: &Entry, keep: bool) -> EngineResult<Vec<Entry>> {
        let Some(node) = e.node.as_ref() else { return self.children(Some(&e.path)) };
        let path = e.path.as_str();
        let mut out = Vec::new();
        if let (NodeKind::Dir, Some(sub)) = (node.kind, node.subtree) {
            let tree = if keep { self.tree(&sub)? } else { Arc::new(self.repo.read_tree(&sub)?) };
            for child in tree.nodes.iter() {
                lifeboat_repository::check_entry_name(&child.name.0).map_err(|detail| EngineError::UnsafeBackup {
                    slug: self.slug.clone(),
                    detail: detail.to_string(),
                })?;
                let p = join(path, &String::from_utf8_lossy(&child.name.0));
                // An inner unit's root shows as that unit's entry.
                match self.roots.iter().find(|r| r.path == p) {
                    Some(r) => out.push(Entry::of(p, &r.unit, &r.node)),
                    None => out.push(Entry::of(p, &e.unit, child)),
                }
            }
        } else if node.kind != NodeKind::Dir {
            out.push(e.clone());
        }
        // Inner roots the folder's own tree does not hold.
        for r in self.roots.iter().filter(|r| parent_of(&r.path) == Some(path)) {
            if !out.iter().any(|x| x.path == r.path) {
                out.push(Entry::of(r.path.clone(), &r.unit, &r.node));
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Every entry at and below `path` (all of the backup with none), depth first, each
    /// folder before what is in it. `visit` may stop the walk by returning false.
    pub fn walk(&self, path: Option<&str>, visit: &mut dyn FnMut(&Entry) -> bool) -> EngineResult<()> {
        let start: Vec<Entry> = match path {
            None => self
                .roots
                .iter()
                .filter(|r| !self.inside_other_root(r))
                .map(|r| Entry::of(r.path.clone(), &r.unit, &r.node))
                .collect(),
            Some(p) => match self.locate(p)? {
                Located::Real(e) => vec![*e],
                Located::Leading(_) => self.children(Some(p))?,
            },
        };
        for e in start {
            if !self.walk_entry(e, visit)? {
                break;
            }
        }
        Ok(())
    }

    fn inside_other_root(&self, r: &RootRef) -> bool {
        self.roots.iter().any(|o| o.path != r.path && within(&r.path, &o.path))
    }

    fn walk_entry(&self, e: Entry, visit: &mut dyn FnMut(&Entry) -> bool) -> EngineResult<bool> {
        if !visit(&e) {
            return Ok(false);
        }
        if e.is_dir() {
            for child in self.children_of(&e, false)? {
                if !self.walk_entry(child, visit)? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

/// A tree's entry by name: trees are sorted by the bytes of their names.
fn find_node<'t>(tree: &'t Tree, name: &[u8]) -> Option<&'t Node> {
    match tree.nodes.binary_search_by(|n| n.name.0.as_slice().cmp(name)) {
        Ok(i) => tree.nodes.get(i),
        // A tree written out of order (by a hostile writer) is still searched.
        Err(_) => tree.nodes.iter().find(|n| n.name.0 == name),
    }
}

fn parent_of(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// A short id of what an entry holds: equal for equal content (a file's blobs, a folder's
/// tree, a link's target).
pub(crate) fn content_id(node: &Node) -> String {
    let mut h = blake3::Hasher::new();
    h.update(kind_name(node.kind).as_bytes());
    for id in &node.content {
        h.update(id.to_string().as_bytes());
    }
    if let Some(s) = node.subtree {
        h.update(s.to_string().as_bytes());
    }
    if let Some(t) = &node.target {
        h.update(&t.0);
    }
    h.finalize().to_hex()[..16].to_string()
}
