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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UnitKind;
    use crate::unit::{Filter, Hooks};

    fn unit(name: &str, paths: &[&Path], home: &Path) -> Unit {
        let dirs = crate::Dirs {
            home: home.to_path_buf(),
            config: home.join("c"),
            data: home.join("d"),
            logs: home.join("l"),
            cache: None,
            root: false,
        };
        Unit {
            name: name.into(),
            title: name.into(),
            kind: UnitKind::Paths,
            paths: paths.iter().map(|p| (p.display().to_string(), p.to_path_buf())).collect(),
            filter: Filter::new(&[], &[], &dirs).unwrap(),
            not_included: Vec::new(),
            exclude_patterns: Vec::new(),
            commands: None,
            optional: false,
            hooks: Hooks {
                before_backup: None,
                after_backup: None,
                before_restore: None,
                after_restore: None,
                stop_while_restoring: Vec::new(),
                timeout: std::time::Duration::from_secs(1),
            },
        }
    }

    /// Finding 9 of issue 48: the progress totals of a unit of a folder and another of a
    /// folder (or a file) inside it count each file once.
    #[test]
    fn overlapping_units_are_counted_once() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        std::fs::create_dir_all(h.join("Documents/deep")).unwrap();
        std::fs::write(h.join("a"), [0; 100]).unwrap();
        std::fs::write(h.join("Documents/b"), [0; 20]).unwrap();
        std::fs::write(h.join("Documents/deep/c"), [0; 3]).unwrap();
        let all = unit("all", &[h], h);
        let docs = unit("docs", &[&h.join("Documents"), &h.join("Documents/deep/c")], h);
        let units = [&all, &docs];
        let progress = Progress::default();
        count(&units, &Overlaps::of(&units), &progress, &AtomicBool::new(false));
        let s = progress.snapshot();
        assert_eq!((s.files_total, s.bytes_total), (3, 123));
        let apart = [&all];
        assert!(Overlaps::of(&apart).is_empty(), "one unit of one path overlaps nothing");
    }
}
