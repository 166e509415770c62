//! Searching every backup for paths: each match with its distinct versions and the backups
//! holding each. A folder that is the same in two backups (same tree at the same path) is
//! searched once, so a search over many backups costs about one walk plus what changed.

use std::collections::HashMap;
use std::sync::Arc;

use lifeboat_repository::{Id, IdScheme, Node, NodeKind, Repository, Snapshot};
use serde::Serialize;

use super::pattern::{join, within, Choice};
use super::{content_id, roots, time_text};
use crate::restore::plan::kind_name;
use crate::EngineResult;

/// A path found, with every version of it that some backup holds, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct FoundPath {
    pub path: String,
    pub unit: String,
    pub versions: Vec<Version>,
}

/// One content of a path, and the backups that hold it, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct Version {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub size: u64,
    pub mtime: String,
    /// Equal for equal content.
    pub content: String,
    pub backups: Vec<String>,
    /// When the newest backup holding it was made (RFC 3339).
    pub newest: String,
    /// Which of the searched repositories' id schemes `content` is in (see [`find`]).
    #[serde(skip)]
    family: usize,
}

/// An entry a pattern matched, with what tells its versions apart.
struct Hit {
    path: String,
    kind: &'static str,
    size: u64,
    mtime: String,
    content: String,
}

impl Hit {
    fn of(path: String, node: &Node) -> Hit {
        Hit {
            path,
            kind: kind_name(node.kind),
            size: if node.kind == NodeKind::File { node.size } else { 0 },
            mtime: time_text(node.mtime),
            content: content_id(node),
        }
    }
}

/// One folder at one path: where its matches are in the answer (path, version), and the
/// folders below it that may hold more. Kept per (tree, path), so a folder unchanged between
/// backups is read once, and its matches are held once, in the answer.
struct Level {
    hits: Vec<(usize, usize)>,
    below: Vec<(Id, String)>,
}

type Memo = HashMap<(Id, String), Arc<Level>>;

/// Searches `snapshots` (newest first, each with its repository) for entries `choice`
/// matches, in `unit` only when given. Returns the paths, and whether some versions were told
/// apart by type, size and time alone.
///
/// Content ids are comparable only between repositories that share blob ids and chunking
/// (one made `like` the other): each such group is a family. Within a family a version is
/// one content; an entry from another family joins the version of the same type, size and
/// time, since its content id cannot be compared (two ids are never shown as two contents).
pub(crate) fn find(
    snapshots: &[(&Repository, &Snapshot)],
    choice: &Choice,
    unit: Option<&str>,
) -> EngineResult<(Vec<FoundPath>, bool)> {
    let mut memo: HashMap<Id, Memo> = HashMap::new();
    let mut found: Vec<FoundPath> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut families: Vec<IdScheme> = Vec::new();
    for (repo, snap) in snapshots {
        let scheme = repo.id_scheme();
        let family = match families.iter().position(|f| f.same_chunking(&scheme)) {
            Some(f) => f,
            None => {
                families.push(scheme);
                families.len() - 1
            }
        };
        let memo = memo.entry(repo.id()).or_default();
        let all = roots(snap)?;
        for root in all.iter().filter(|r| unit.is_none_or(|u| r.unit == u)) {
            let inner: Vec<&str> = all
                .iter()
                .filter(|o| o.path != root.path && within(&o.path, &root.path))
                .map(|o| o.path.as_str())
                .collect();
            // Where a hit goes in the answer: its path, and its version there.
            let mut record = |hit: Hit| -> (usize, usize) {
                let i = *at.entry(hit.path.clone()).or_insert_with(|| {
                    found.push(FoundPath { path: hit.path.clone(), unit: root.unit.clone(), versions: Vec::new() });
                    found.len() - 1
                });
                let versions = &mut found[i].versions;
                let v = match versions.iter().position(|v| {
                    v.kind == hit.kind
                        && v.mtime == hit.mtime
                        && v.size == hit.size
                        && (v.content == hit.content || v.family != family)
                }) {
                    Some(v) => v,
                    None => {
                        versions.push(Version {
                            kind: hit.kind,
                            size: hit.size,
                            mtime: hit.mtime,
                            content: hit.content,
                            backups: Vec::new(),
                            newest: snap.date.to_string(),
                            family,
                        });
                        versions.len() - 1
                    }
                };
                (i, v)
            };
            let mut hits: Vec<(usize, usize)> = Vec::new();
            if choice.matches(&root.path) {
                hits.push(record(Hit::of(root.path.clone(), &root.node)));
            }
            let mut todo: Vec<(Id, String)> = match (root.node.kind, root.node.subtree) {
                (NodeKind::Dir, Some(t)) if choice.may_match_below(&root.path) => vec![(t, root.path.clone())],
                _ => Vec::new(),
            };
            while let Some((tree, path)) = todo.pop() {
                let key = (tree, path);
                let level = match memo.get(&key) {
                    Some(l) => l.clone(),
                    None => {
                        let (raw, below) = level(repo, &tree, &key.1, choice, &inner)?;
                        let l = Arc::new(Level { hits: raw.into_iter().map(&mut record).collect(), below });
                        memo.insert(key, l.clone());
                        l
                    }
                };
                hits.extend_from_slice(&level.hits);
                todo.extend(level.below.iter().cloned());
            }
            for (i, v) in hits {
                let backups = &mut found[i].versions[v].backups;
                if !backups.contains(&snap.slug) {
                    backups.push(snap.slug.clone());
                }
            }
        }
    }
    // Newest first: by the newest backup holding a path, then by path.
    found.sort_by(|a, b| b.versions[0].newest.cmp(&a.versions[0].newest).then_with(|| a.path.cmp(&b.path)));
    Ok((found, families.len() > 1))
}

/// The matches directly in one folder, and the folders below it worth reading.
type Read = (Vec<Hit>, Vec<(Id, String)>);

fn level(repo: &Repository, tree: &Id, path: &str, choice: &Choice, inner: &[&str]) -> EngineResult<Read> {
    let mut out = (Vec::new(), Vec::new());
    for child in repo.read_tree(tree)?.nodes {
        if lifeboat_repository::check_entry_name(&child.name.0).is_err() {
            continue;
        }
        let p = join(path, &String::from_utf8_lossy(&child.name.0));
        if inner.contains(&p.as_str()) {
            // An inner unit's root: searched as that unit.
            continue;
        }
        if choice.matches(&p) {
            out.0.push(Hit::of(p.clone(), &child));
        }
        if let (NodeKind::Dir, Some(sub)) = (child.kind, child.subtree) {
            if choice.may_match_below(&p) {
                out.1.push((sub, p));
            }
        }
    }
    Ok(out)
}
