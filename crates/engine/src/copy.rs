//! `backups copy`: the same backup in a second location, sending only what it lacks.
//!
//! Repositories made like one another (`like`, or a destination this copy made) share their
//! id key and chunking: a blob keeps its id, one the destination's index holds is skipped
//! unread, and only what it lacks is read, sealed again under its own encryption key and
//! sent. Between repositories with their own id keys a blob's id differs: each blob the
//! backup needs is read from the source, its id computed with the destination's key, and
//! stored only if the destination does not hold it yet (as the source chunked it, so data the
//! destination stored from its own backups rarely matches). Trees are rewritten with the
//! destination's ids, bottom up, and the snapshot is saved last, as a backup saves it.

use std::collections::HashMap;
use std::time::Duration;

use lifeboat_repository::{BlobKind, BlobWriter, Id, Node, Repository, Reuse, SessionLock, Snapshot};
use std::sync::atomic::Ordering;

use crate::progress::Progress;
use crate::{EngineError, EngineResult};

const LOCK_WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct CopyOutcome {
    /// The backup in the destination.
    pub id: Id,
    pub snapshot: Snapshot,
    /// False when the destination already held this backup.
    pub copied: bool,
    /// Blobs the destination lacked, and their plaintext size.
    pub new_blobs: u64,
    pub new_bytes: u64,
}

pub fn copy(src: &Repository, dst: &Repository, slug: &str, progress: &Progress) -> EngineResult<CopyOutcome> {
    let (_, snapshot) = src.find_snapshot(slug)?;
    let (existing, _) = dst.snapshots()?;
    if let Some((id, s)) = existing.iter().find(|(_, s)| s.slug == snapshot.slug && s.date == snapshot.date) {
        return Ok(CopyOutcome { id: *id, snapshot: s.clone(), copied: false, new_blobs: 0, new_bytes: 0 });
    }
    let mut session = dst.write_session(SessionLock::Take { operation: "copy", wait: LOCK_WAIT }, Reuse::Indexed)?;
    session.stop_when(progress.cancel.clone());
    progress.set_phase("copying");
    progress.set_totals(
        snapshot.units.iter().map(|u| u.files).sum(),
        snapshot.units.iter().map(|u| u.size).sum(),
        true,
    );
    // With the same id key (one repository made like the other), ids match and blobs the
    // destination holds need not even be read.
    let same_ids = src.id_scheme().same_ids(&dst.id_scheme());
    let mut copier = Copier { src, dst, writer: session.writer(), same_ids, trees: HashMap::new(), progress };
    let mut out = snapshot.clone();
    for unit in &mut out.units {
        for root in &mut unit.roots {
            copier.node(&mut root.node)?;
        }
    }
    let (mut new_blobs, mut new_bytes) = (0, 0);
    let (id, snapshot) = session.commit(|stats| {
        new_blobs = stats.new_blobs.load(Ordering::Relaxed);
        new_bytes = stats.new_bytes.load(Ordering::Relaxed);
        out
    })?;
    Ok(CopyOutcome { id, snapshot, copied: true, new_blobs, new_bytes })
}

struct Copier<'a> {
    src: &'a Repository,
    dst: &'a Repository,
    writer: &'a BlobWriter,
    same_ids: bool,
    trees: HashMap<Id, Id>,
    progress: &'a Progress,
}

impl Copier<'_> {
    fn node(&mut self, node: &mut Node) -> EngineResult<()> {
        if self.progress.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        for id in node.content.iter_mut() {
            *id = self.blob(*id)?;
        }
        if node.kind == lifeboat_repository::NodeKind::File {
            self.progress.add(1, node.size);
        }
        if let Some(sub) = node.subtree {
            node.subtree = Some(self.tree(sub)?);
        }
        Ok(())
    }

    fn blob(&mut self, id: Id) -> EngineResult<Id> {
        if self.same_ids && self.dst.has_blob(&id) {
            return Ok(id);
        }
        let data = self.src.read_blob(&id)?;
        let new = if self.same_ids { id } else { self.dst.blob_id(&data) };
        self.writer.add_with_id(BlobKind::Data, new, &data)?;
        Ok(new)
    }

    fn tree(&mut self, id: Id) -> EngineResult<Id> {
        if let Some(done) = self.trees.get(&id) {
            return Ok(*done);
        }
        let mut tree = self.src.read_tree(&id)?;
        for node in &mut tree.nodes {
            self.node(node)?;
        }
        let (new, _) = self.writer.add(BlobKind::Tree, &Repository::encode_tree(&tree))?;
        self.trees.insert(id, new);
        Ok(new)
    }
}
