//! Searching every backup for paths: each match with its distinct versions and the backups
//! holding each. A folder that is the same in two backups (same tree at the same path) is
//! searched once, so a search over many backups costs about one walk plus what changed.

use std::collections::HashMap;

use lifeboat_repository::{Id, Node, NodeKind, Repository, Snapshot};
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
}

/// Matches in one folder tree at one path, memoised by both.
type Memo = HashMap<(Id, String), Vec<(String, Node)>>;

/// Searches `snapshots` (newest first, each with its repository) for entries `choice`
/// matches, in `unit` only when given.
pub(crate) fn find(
    snapshots: &[(&Repository, &Snapshot)],
    choice: &Choice,
    unit: Option<&str>,
) -> EngineResult<Vec<FoundPath>> {
    let mut memo: HashMap<Id, Memo> = HashMap::new();
    // path → (unit, [(content key, version)])
    let mut found: Vec<FoundPath> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for (repo, snap) in snapshots {
        let memo = memo.entry(repo.id()).or_default();
        let all = roots(snap)?;
        for root in all.iter().filter(|r| unit.is_none_or(|u| r.unit == u)) {
            let inner: Vec<&str> = all
                .iter()
                .filter(|o| o.path != root.path && within(&o.path, &root.path))
                .map(|o| o.path.as_str())
                .collect();
            let mut hits = Vec::new();
            if choice.matches(&root.path) {
                hits.push((root.path.clone(), root.node.clone()));
            }
            if root.node.kind == NodeKind::Dir && choice.may_match_below(&root.path) {
                hits.extend(matches_below(repo, &root.path, &root.node, choice, &inner, memo)?);
            }
            for (path, node) in hits {
                let i = *at.entry(path.clone()).or_insert_with(|| {
                    found.push(FoundPath { path: path.clone(), unit: root.unit.clone(), versions: Vec::new() });
                    found.len() - 1
                });
                let content = content_id(&node);
                let mtime = time_text(node.mtime);
                let size = if node.kind == NodeKind::File { node.size } else { 0 };
                let versions = &mut found[i].versions;
                match versions.iter_mut().find(|v| v.content == content && v.mtime == mtime && v.size == size) {
                    Some(v) => {
                        if !v.backups.contains(&snap.slug) {
                            v.backups.push(snap.slug.clone());
                        }
                    }
                    None => versions.push(Version {
                        kind: kind_name(node.kind),
                        size,
                        mtime,
                        content,
                        backups: vec![snap.slug.clone()],
                        newest: snap.date.to_string(),
                    }),
                }
            }
        }
    }
    // Newest first: by the newest backup holding a path, then by path.
    found.sort_by(|a, b| b.versions[0].newest.cmp(&a.versions[0].newest).then_with(|| a.path.cmp(&b.path)));
    Ok(found)
}

fn matches_below(
    repo: &Repository,
    path: &str,
    node: &Node,
    choice: &Choice,
    inner: &[&str],
    memo: &mut Memo,
) -> EngineResult<Vec<(String, Node)>> {
    let Some(sub) = node.subtree else { return Ok(Vec::new()) };
    let key = (sub, path.to_string());
    if let Some(hit) = memo.get(&key) {
        return Ok(hit.clone());
    }
    let mut out = Vec::new();
    for child in repo.read_tree(&sub)?.nodes {
        if lifeboat_repository::check_entry_name(&child.name.0).is_err() {
            continue;
        }
        let p = join(path, &String::from_utf8_lossy(&child.name.0));
        if inner.contains(&p.as_str()) {
            // An inner unit's root: searched as that unit.
            continue;
        }
        if choice.matches(&p) {
            out.push((p.clone(), child.clone()));
        }
        if child.kind == NodeKind::Dir && choice.may_match_below(&p) {
            out.extend(matches_below(repo, &p, &child, choice, inner, memo)?);
        }
    }
    memo.insert(key, out.clone());
    Ok(out)
}
