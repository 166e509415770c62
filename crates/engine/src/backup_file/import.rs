//! `backups import`: a backup file becomes a backup in a repository again. File contents are
//! cut by the repository's own chunker, so what it already holds is not stored twice. The
//! snapshot is saved only after every checksum of the file matched; data of a rejected file
//! is left unreferenced for the next prune.

use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

use lifeboat_repository::{BlobKind, BlobWriter, Id, Node, NodeKind, Repository, Reuse, SessionLock, Snapshot, Tree};

use super::manifest::UnitFile;
use super::read::{tar_problem, FileReader, UnitBudget, UnitTar};
use super::restore::node_of;
use super::tarfmt::{Content, EntryKind};
use crate::progress::Progress;
use crate::restore::plan::PathMap;
use crate::{EngineError, EngineResult};

const LOCK_WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct ImportOutcome {
    pub id: Id,
    pub snapshot: Snapshot,
    /// False when the location already held this backup.
    pub imported: bool,
    pub new_bytes: u64,
}

pub fn import(
    repo: &Repository,
    input: impl Read,
    label: &str,
    passphrase: Option<&str>,
    progress: &Progress,
) -> EngineResult<ImportOutcome> {
    progress.set_phase("reading the backup file");
    let mut reader = FileReader::open(input, label)?;
    let manifest = reader.manifest().clone();
    let (existing, _) = repo.snapshots()?;
    if let Some((id, s)) =
        existing.iter().find(|(_, s)| s.slug == manifest.backup.slug && s.date == manifest.backup.date)
    {
        return Ok(ImportOutcome { id: *id, snapshot: s.clone(), imported: false, new_bytes: 0 });
    }
    let mut session = repo.write_session(SessionLock::Take { operation: "import", wait: LOCK_WAIT }, Reuse::Indexed)?;
    session.stop_when(progress.cancel.clone());
    progress.set_totals(manifest.backup.files, manifest.backup.size, true);
    // No path mapping: an imported backup keeps the paths it was made with.
    let map = PathMap::new(b"", std::path::Path::new(""), &[]);
    let mut roots: HashMap<String, Vec<Option<Node>>> = HashMap::new();
    let mut read = |unit: &UnitFile, tar: &mut UnitTar<'_>| -> EngineResult<()> {
        progress.set_phase(format!("importing {}", unit.name));
        let declared = manifest.backup.units.iter().find(|u| u.name == unit.name).map_or(0, |u| u.size);
        let mut budget = UnitBudget::new(declared);
        let nodes = unit_nodes(repo, session.writer(), unit, tar, &map, &mut budget, progress)?;
        roots.insert(unit.name.clone(), nodes);
        Ok(())
    };
    while reader.next_unit(passphrase, &mut read, &|_| true)?.is_some() {}
    reader.finish()?;
    let mut snapshot = manifest.backup.clone();
    // The configuration the file carries stays with the backup (a new device is set up from it).
    if snapshot.configuration.is_none() {
        snapshot.configuration = manifest.config.clone();
    }
    for u in &mut snapshot.units {
        let built = roots.remove(&u.name).unwrap_or_default();
        let mut kept = Vec::new();
        for (root, node) in u.roots.drain(..).zip(built.into_iter().chain(std::iter::repeat(None))) {
            if let Some(mut node) = node {
                node.name = root.node.name.clone();
                kept.push(lifeboat_repository::SnapshotRoot { node, ..root });
            }
        }
        u.roots = kept;
    }
    let (id, snapshot) = session.commit(|stats| {
        snapshot.added = stats.new_data_bytes.load(std::sync::atomic::Ordering::Relaxed);
        snapshot.stored = stats.stored_bytes.load(std::sync::atomic::Ordering::Relaxed);
        snapshot
    })?;
    Ok(ImportOutcome { id, new_bytes: snapshot.added, snapshot, imported: true })
}

/// Reads one unit's tar into nodes with stored content, then writes its folders' trees
/// bottom up. Returns each root's node, in the order of the unit's roots.
fn unit_nodes(
    repo: &Repository,
    writer: &BlobWriter,
    unit: &UnitFile,
    tar: &mut UnitTar<'_>,
    map: &PathMap,
    budget: &mut UnitBudget,
    progress: &Progress,
) -> EngineResult<Vec<Option<Node>>> {
    let chunker = repo.chunker();
    let mut nodes: Vec<(Vec<u8>, Node)> = Vec::new();
    let mut by_path: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut inode = 0u64;
    let mut folders: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    while let Some(e) = tar.next().map_err(tar_problem)? {
        if progress.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let path = e.path.strip_suffix(b"/").unwrap_or(&e.path).to_vec();
        let inside = unit
            .roots
            .iter()
            .any(|r| path.strip_prefix(r.archive.0.as_slice()).is_some_and(|rest| rest.is_empty() || rest[0] == b'/'));
        if !inside || path.split(|&b| b == b'/').any(|p| p.is_empty() || p == b".." || p == b".") {
            return Err(EngineError::BackupFile {
                file: String::new(),
                detail: format!("refused: entry {:?} is outside the unit's folders", String::from_utf8_lossy(&path)),
            });
        }
        // Every entry but a root sits in a folder listed before it (not under a symlink).
        let is_root = unit.roots.iter().any(|r| r.archive.0 == path);
        let parent = path.iter().rposition(|&b| b == b'/').map(|i| &path[..i]);
        if !is_root && !parent.is_some_and(|p| folders.contains(p)) {
            return Err(EngineError::BackupFile {
                file: String::new(),
                detail: format!(
                    "refused: entry {:?} does not lie in a folder listed before it",
                    String::from_utf8_lossy(&path)
                ),
            });
        }
        budget
            .take(&e)
            .map_err(|detail| EngineError::BackupFile { file: String::new(), detail: format!("refused: {detail}") })?;
        if e.kind == EntryKind::Dir {
            folders.insert(path.clone());
        }
        let mut node = node_of(&e, map);
        inode += 1;
        node.inode = inode;
        match e.kind {
            EntryKind::File => {
                let mut content = Content::new(tar, e.size);
                for chunk in chunker.stream(&mut content) {
                    let chunk = chunk.map_err(|err| match content_failure(&err) {
                        Some(msg) => EngineError::BackupFile { file: String::new(), detail: msg },
                        None => EngineError::BackupFile { file: String::new(), detail: super::read::damaged(&err) },
                    })?;
                    let (id, _) = writer.add(BlobKind::Data, &chunk)?;
                    node.content.push(id);
                    progress.add(0, chunk.len() as u64);
                }
                progress.add(1, 0);
            }
            EntryKind::HardLink => {
                let first = e.link.clone().unwrap_or_default();
                let Some(&i) = by_path.get(&first) else {
                    return Err(EngineError::BackupFile {
                        file: String::new(),
                        detail: format!(
                            "refused: hard link {:?} to a file not before it",
                            String::from_utf8_lossy(&path)
                        ),
                    });
                };
                let primary = &mut nodes[i].1;
                if primary.links == 1 {
                    primary.links = 2;
                } else {
                    primary.links += 1;
                }
                node.content = primary.content.clone();
                node.size = primary.size;
                node.inode = primary.inode;
                node.links = primary.links;
                let links = primary.links;
                let ino = primary.inode;
                for (_, n) in nodes.iter_mut().filter(|(_, n)| n.inode == ino && n.kind == NodeKind::File) {
                    n.links = links;
                }
            }
            _ => {}
        }
        by_path.insert(path.clone(), nodes.len());
        nodes.push((path, node));
    }
    // Children of each folder, then trees from the deepest folders up.
    let mut children: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    for (i, (path, _)) in nodes.iter().enumerate() {
        if let Some(cut) = path.iter().rposition(|&b| b == b'/') {
            children.entry(path[..cut].to_vec()).or_default().push(i);
        }
    }
    let mut order: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].1.kind == NodeKind::Dir).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(nodes[i].0.iter().filter(|&&b| b == b'/').count()));
    for i in order {
        let mut tree = Tree::default();
        if let Some(kids) = children.get(&nodes[i].0) {
            tree.nodes = kids.iter().map(|&k| nodes[k].1.clone()).collect();
        }
        tree.nodes.sort_by(|a, b| a.name.0.cmp(&b.name.0));
        let (id, _) = writer.add(BlobKind::Tree, &Repository::encode_tree(&tree))?;
        nodes[i].1.subtree = Some(id);
    }
    Ok(unit.roots.iter().map(|r| by_path.get(&r.archive.0).map(|&i| nodes[i].1.clone())).collect())
}

/// The reader's words when a chunker's read failed inside the tar.
fn content_failure(err: &std::io::Error) -> Option<String> {
    let text = err.to_string();
    (text.contains("truncated") || text.contains("ends in the middle"))
        .then(|| "the file ends inside it: the file is incomplete".to_string())
}
