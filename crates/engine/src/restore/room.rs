//! Room first: a restore that cannot fit is refused before it writes anything. Home
//! Assistant asks its users to check this by hand before a migration.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use lifeboat_repository::NodeKind;

use super::plan::Plan;
use crate::{EngineError, EngineResult};

/// What an entry costs beyond its data: its inode and a folder entry, roughly one block.
const PER_ENTRY: u64 = 4096;

/// Refuses the plan when a file system it writes to lacks the room for what it writes there.
/// Staging copies keep the old files (hard links) until the swap, so everything written counts,
/// rounded up to whole blocks.
pub(crate) fn check(plan: &Plan) -> EngineResult<()> {
    let mut blocks: HashMap<usize, u64> = HashMap::new();
    let written = plan.items.iter().filter(|i| i.writes()).map(|item| {
        let block = *blocks
            .entry(item.root)
            .or_insert_with(|| existing_ancestor(&plan.roots[item.root].work).map_or(4096, |(_, _, b)| b));
        let data = if item.node.kind == NodeKind::File && item.node.links <= 1 { item.node.size } else { 0 };
        (plan.roots[item.root].work.as_path(), data.div_ceil(block) * block + PER_ENTRY)
    });
    check_needs(written)
}

/// Refuses when the bytes to write under each path, added up per file system, exceed what is
/// free there.
pub(crate) fn check_needs<'a>(needs: impl Iterator<Item = (&'a Path, u64)>) -> EngineResult<()> {
    // Per file system: (a folder on it, bytes needed).
    let mut need: HashMap<u64, (PathBuf, u64)> = HashMap::new();
    let mut devices: HashMap<&Path, Option<(u64, PathBuf, u64)>> = HashMap::new();
    for (path, bytes) in needs {
        let dev = devices.entry(path).or_insert_with(|| existing_ancestor(path));
        let Some((dev, at, _)) = dev.clone() else { continue };
        let e = need.entry(dev).or_insert((at, 0));
        e.1 = e.1.saturating_add(bytes);
    }
    for (at, bytes) in need.into_values() {
        let Some(free) = free_bytes(&at) else { continue };
        if bytes > free {
            return Err(EngineError::NoRoom { path: at, need: bytes, free });
        }
    }
    Ok(())
}

/// The nearest folder that exists on the way to `path`: its device, itself, its block size.
fn existing_ancestor(path: &Path) -> Option<(u64, PathBuf, u64)> {
    path.ancestors().find_map(|a| {
        let m = std::fs::metadata(a).ok()?;
        Some((m.dev(), a.to_path_buf(), m.blksize().max(512)))
    })
}

/// Bytes this process may still write on the file system holding `path` (root may use the
/// blocks kept for it).
fn free_bytes(path: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(path).ok()?;
    let blocks = if nix::unistd::geteuid().is_root() { st.blocks_free() } else { st.blocks_available() };
    Some((blocks as u64).saturating_mul(st.fragment_size() as u64))
}
