//! `lifeboat estimate`: per unit, how many files and bytes a backup would read, and how much of
//! that would be new to the location. Runs the backup pipeline without writing anything.

use std::sync::atomic::Ordering;

use lifeboat_repository::{BlobWriter, Repository};
use serde::Serialize;

use crate::backup;
use crate::paths::Dirs;
use crate::progress::Progress;
use crate::runlog::RunLog;
use crate::unit::Unit;
use crate::EngineResult;

#[derive(Debug, Clone, Serialize)]
pub struct UnitEstimate {
    pub unit: String,
    pub title: String,
    pub files: u64,
    pub bytes: u64,
    /// Bytes that the location does not hold yet (before compression).
    pub new_bytes: u64,
    pub warnings: Vec<String>,
}

/// Estimates each unit against `repo` (or, with no repository yet, counts everything new).
pub fn estimate(
    repo: Option<&Repository>,
    dirs: &Dirs,
    units: &[&Unit],
    progress: &Progress,
) -> EngineResult<Vec<UnitEstimate>> {
    let previous = match repo {
        Some(repo) => {
            repo.load_index()?;
            Some(backup::previous(repo, units)?)
        }
        None => None,
    };
    let mut out = Vec::new();
    for unit in units {
        if unit.commands.is_some() {
            out.push(UnitEstimate {
                unit: unit.name.clone(),
                title: unit.title.clone(),
                files: 0,
                bytes: 0,
                new_bytes: 0,
                warnings: vec!["the size of a command unit is known once its export has run".into()],
            });
            continue;
        }
        let log = RunLog::none();
        match repo.zip(previous.as_ref()) {
            Some((repo, previous)) => {
                let writer = BlobWriter::dry_run(repo);
                let stats = writer.stats();
                let s = backup::dry_unit(repo, dirs, unit, previous, &writer, progress, &log)?;
                drop(writer);
                out.push(UnitEstimate {
                    unit: unit.name.clone(),
                    title: unit.title.clone(),
                    files: s.files,
                    bytes: s.size,
                    // What the unit's files add: never more than they hold (folder listings,
                    // which a backup also stores, are not the unit's size either).
                    new_bytes: stats.new_data_bytes.load(Ordering::Relaxed).min(s.size),
                    warnings: s.warnings,
                });
            }
            None => {
                let (files, bytes) = backup::count_unit(unit, progress);
                out.push(UnitEstimate {
                    unit: unit.name.clone(),
                    title: unit.title.clone(),
                    files,
                    bytes,
                    new_bytes: bytes,
                    warnings: vec![],
                });
            }
        }
    }
    Ok(out)
}
