//! Counting what a first backup will read, beside it, so the progress display can show a
//! percentage and an ETA without delaying the backup itself.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::overlap::Overlaps;
use crate::progress::Progress;
use crate::unit::Unit;

/// Counts each file once, however many of the units' paths reach it.
pub(crate) fn count(units: &[&Unit], overlaps: &Overlaps, progress: &Progress, done: &AtomicBool) {
    let mut counted = std::collections::HashSet::new();
    let mut files = 0u64;
    let mut bytes = 0u64;
    for unit in units {
        for (_, abs) in &unit.paths {
            let mut stack = vec![(abs.to_path_buf(), Path::new("").to_path_buf())];
            while let Some((dir, rel)) = stack.pop() {
                if done.load(Ordering::Relaxed) || progress.is_cancelled() {
                    return;
                }
                let Ok(meta) = std::fs::symlink_metadata(&dir) else { continue };
                if !meta.is_dir() {
                    if !overlaps.first_count(&dir, &mut counted) {
                        continue;
                    }
                    files += 1;
                    bytes += meta.size();
                    continue;
                }
                let Ok(rd) = std::fs::read_dir(&dir) else { continue };
                for e in rd.flatten() {
                    let child = e.path();
                    let child_rel = rel.join(e.file_name());
                    let Ok(ft) = e.file_type() else { continue };
                    if unit.filter.excludes(&child, &child_rel, ft.is_dir()) {
                        continue;
                    }
                    if ft.is_dir() {
                        stack.push((child, child_rel));
                    } else if overlaps.first_count(&child, &mut counted) {
                        files += 1;
                        if ft.is_file() {
                            bytes += e.metadata().map(|m| m.size()).unwrap_or(0);
                        }
                    }
                }
                progress.set_totals(files, bytes, false);
            }
        }
    }
    progress.set_totals(files, bytes, true);
}
