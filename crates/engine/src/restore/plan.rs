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
}

pub(crate) struct Plan {
    pub items: Vec<Item>,
    /// Folders whose listing could not be read: their contents are not restored.
    pub problems: Vec<String>,
    /// The destination of each unit root, for messages.
    pub roots: Vec<(String, PathBuf)>,
}

/// Where a unit root lands: its written path under this user's home, re-rooted under
/// `target` when one is given.
pub(crate) fn destination(written: &str, dirs: &Dirs, target: Option<&Path>) -> PathBuf {
    let on_device = dirs.expand(written);
    match target {
        Some(t) => reroot(t, &on_device),
        None => on_device,
    }
}

/// `elsewhere`: destinations of units whose data does not go back to a device path (the
/// exported data of `command` units), by unit name.
pub(crate) fn build(
    repo: &Repository,
    snapshot: &Snapshot,
    units: &[String],
    dirs: &Dirs,
    target: Option<&Path>,
    elsewhere: &std::collections::HashMap<String, PathBuf>,
) -> Plan {
    let items = Mutex::new(Vec::new());
    let problems = Mutex::new(Vec::new());
    let mut roots = Vec::new();
    for unit in snapshot.units.iter().filter(|u| units.is_empty() || units.contains(&u.name)) {
        for root in &unit.roots {
            let dest = match elsewhere.get(&unit.name) {
                Some(d) => d.clone(),
                None => destination(&root.path, dirs, target),
            };
            roots.push((unit.name.clone(), dest.clone()));
            walk(repo, &root.node, dest, 0, &items, &problems);
        }
    }
    Plan { items: items.into_inner().expect("plan lock"), problems: problems.into_inner().expect("plan lock"), roots }
}

fn walk(
    repo: &Repository,
    node: &Node,
    path: PathBuf,
    depth: usize,
    items: &Mutex<Vec<Item>>,
    problems: &Mutex<Vec<String>>,
) {
    if node.kind == NodeKind::Dir {
        if let Some(t) = node.subtree {
            match repo.read_tree(&t) {
                Ok(tree) => tree.nodes.par_iter().for_each(|child| {
                    let name = child.name.as_os_str();
                    // A name that would climb out of its folder cannot come from a real file
                    // system: refuse it rather than write outside the target.
                    if name.is_empty() || name == "." || name == ".." || child.name.0.contains(&b'/') {
                        problems.lock().expect("plan lock").push(format!(
                            "{}: refused entry {:?}",
                            path.display(),
                            child.name
                        ));
                        return;
                    }
                    walk(repo, child, path.join(name), depth + 1, items, problems)
                }),
                Err(e) => {
                    problems.lock().expect("plan lock").push(format!("{}: contents not restored: {e}", path.display()))
                }
            }
        }
    }
    items.lock().expect("plan lock").push(Item { path, node: node.clone(), depth });
}
