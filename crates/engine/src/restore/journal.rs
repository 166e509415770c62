//! The journal of a restore in progress, in the data folder: what it restores, where its
//! temporary names are, and how far it got. A restore killed while writing beside the
//! destination changed nothing but those names, and the next restore removes them. One killed
//! while putting things in place left some paths restored and others not: until it is
//! finished (`--resume`, which runs it again) or undone (`--undo`, which restores its safety
//! backup), every restore refuses to start, and says so.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::handles::{self, Folders};
use super::RestoreMode;
use crate::paths::Dirs;
use crate::{EngineError, EngineResult};

/// How far a restore got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Writing beside the destination: nothing the restore changes has changed yet.
    Writing,
    /// Putting in place: some paths may be restored, others not yet.
    Committing,
}

/// What a restore asked for, enough to run it again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Asked {
    pub units: Vec<String>,
    pub target: Option<PathBuf>,
    pub mode: RestoreMode,
    pub map_paths: Vec<(PathBuf, PathBuf)>,
    pub home: PathBuf,
    pub paths: Vec<String>,
    pub trust_dates: bool,
}

/// One restore's journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    pub id: String,
    /// The backup restored.
    pub slug: String,
    pub started: String,
    pub phase: Phase,
    /// The backup of what the restore replaces and deletes, once made.
    pub safety_backup: Option<String>,
    pub asked: Asked,
    /// The folders that hold the restore's temporary names.
    folders: Vec<PathBuf>,
    /// The folders it made under temporary names (and its rooms), with their inodes: after a
    /// crash, only those very folders are removed with what they hold.
    #[serde(default)]
    made: Vec<MadeFolder>,
}

/// A folder a restore made under a temporary name: in `folder`, as `name`, the inode `ino` of
/// the device `dev`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MadeFolder {
    folder: PathBuf,
    name: String,
    dev: u64,
    ino: u64,
}

fn folder(dirs: &Dirs) -> PathBuf {
    dirs.data.join("restores")
}

impl Journal {
    /// Starts the journal of restore `id`, before anything is written.
    pub(crate) fn begin(
        dirs: &Dirs,
        id: &str,
        slug: &str,
        asked: Asked,
        folders: Vec<PathBuf>,
    ) -> EngineResult<Journal> {
        let j = Journal {
            id: id.to_string(),
            slug: slug.to_string(),
            started: jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
            phase: Phase::Writing,
            safety_backup: None,
            asked,
            folders,
            made: Vec::new(),
        };
        j.save(dirs)?;
        Ok(j)
    }

    fn path(&self, dirs: &Dirs) -> PathBuf {
        folder(dirs).join(format!("{}.json", self.id))
    }

    /// Writes the journal whole (a new file renamed over the old one, synced).
    fn save(&self, dirs: &Dirs) -> EngineResult<()> {
        let dir = folder(dirs);
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::io("creating", &dir, e))?;
        let path = self.path(dirs);
        let tmp = path.with_extension("json.new");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&dir)?.sync_all()
        };
        write().map_err(|e| EngineError::io("writing the restore journal", &path, e))
    }

    /// Everything is written beside the destination: the restore starts putting it in place.
    pub(crate) fn committing(&mut self, dirs: &Dirs, safety_backup: Option<String>) -> EngineResult<()> {
        self.phase = Phase::Committing;
        self.safety_backup = safety_backup;
        self.save(dirs)
    }

    /// The folders the restore made under temporary names, and their inodes.
    pub(crate) fn made(&mut self, dirs: &Dirs, made: Vec<super::write::MadeFolder>) -> EngineResult<()> {
        if made.is_empty() {
            return Ok(());
        }
        self.made = made
            .into_iter()
            .map(|(folder, name, (dev, ino))| MadeFolder {
                folder,
                name: name.to_string_lossy().into_owned(),
                dev,
                ino,
            })
            .collect();
        self.save(dirs)
    }

    /// The restore ended (done, or given up with nothing changed).
    pub(crate) fn end(self, dirs: &Dirs) {
        let _ = std::fs::remove_file(self.path(dirs));
    }

    /// Removes whatever the restore left under its temporary names: a folder only while it is
    /// one the journal says it made (else only when empty), with what it holds
    /// (`handles::remove_made`). Returns what was left, and why.
    pub(crate) fn clean(&self) -> Vec<String> {
        let folders = Folders::default();
        let tag = super::write::temp_tag(&self.id);
        let mut left = Vec::new();
        let mut dirs: Vec<&PathBuf> = self.folders.iter().chain(self.made.iter().map(|m| &m.folder)).collect();
        dirs.sort();
        dirs.dedup();
        for f in dirs {
            let Ok(dir) = folders.dir(f) else { continue };
            for name in handles::entries(&dir).unwrap_or_default() {
                if !name.to_string_lossy().starts_with(&tag) {
                    continue;
                }
                let made = self.made.iter().find(|m| &m.folder == f && name == m.name.as_str()).map(|m| (m.dev, m.ino));
                if let Err(e) = handles::remove_made(&dir, &name, made) {
                    left.push(format!("{}: not removed: {e}", f.join(&name).display()));
                }
            }
        }
        left
    }
}

/// The journals of restores that did not end, oldest first. Unreadable ones are skipped.
pub fn interrupted(dirs: &Dirs) -> Vec<Journal> {
    let Ok(rd) = std::fs::read_dir(folder(dirs)) else { return Vec::new() };
    let mut found: Vec<Journal> = rd
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| read(&e.path()))
        .collect();
    found.sort_by(|a, b| a.started.cmp(&b.started));
    found
}

/// A journal lists a restore's folders: far below this even for millions of files.
const MAX_JOURNAL: u64 = 256 << 20;

fn read(path: &Path) -> Option<Journal> {
    if std::fs::symlink_metadata(path).ok()?.len() > MAX_JOURNAL {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Before a restore starts: the leftovers of restores killed while writing are removed (they
/// changed nothing), and one killed while putting things in place stops it.
pub(crate) fn settle(dirs: &Dirs, left: &dyn Fn(&str)) -> EngineResult<()> {
    for j in interrupted(dirs) {
        match j.phase {
            Phase::Writing => {
                for l in j.clean() {
                    left(&l);
                }
                j.end(dirs);
            }
            Phase::Committing => {
                return Err(EngineError::InterruptedRestore {
                    slug: j.slug.clone(),
                    started: j.started.clone(),
                    undo: j.safety_backup.is_some(),
                })
            }
        }
    }
    Ok(())
}
