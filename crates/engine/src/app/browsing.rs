//! Looking inside backups: list a folder, search every backup, compare two backups (or one
//! with the device), one file's bytes or a folder as tar.

use std::io::Write;
use std::path::{Path, PathBuf};

use lifeboat_repository::{NodeKind, Repository, Snapshot};

use super::{Found, Lifeboat, Unavailable};
use crate::browse::diff::{self, Diff};
use crate::browse::dump::{self, FileReader};
use crate::browse::find::{self, FoundPath};
use crate::browse::mount::{self, BackupFs, Mounted};
use crate::browse::pattern::{normalize, within, Choice};
use crate::browse::{Entry, Located, View};
use crate::{Devices, EngineError, EngineResult};

/// What a search found, and the locations it could not search.
pub struct Search {
    pub paths: Vec<FoundPath>,
    pub unavailable: Vec<Unavailable>,
    /// How many backups were searched.
    pub backups: usize,
    /// Set when backups in repositories that do not share blob ids and chunking were
    /// searched: versions from different ones were told apart by type, size and time only.
    pub compared: Option<String>,
}

/// What a path of a backup is: a file (its bytes can be read), or a folder.
pub enum Opened {
    File(Entry, FileReader),
    Folder(Entry),
}

fn homes(snapshot: &Snapshot, me: &Path) -> Vec<PathBuf> {
    let backup_home = PathBuf::from(String::from_utf8_lossy(&snapshot.home.0).into_owned());
    vec![backup_home, me.to_path_buf()]
}

impl Lifeboat {
    /// A path as a person gave it, in the namespace of `found`'s paths (`~/…` or `/…`).
    pub fn backup_path(&self, found: &Found, path: &str) -> EngineResult<String> {
        let homes = homes(&found.snapshot, &self.dirs().home);
        let mapped = normalize(path, &homes.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
        // A unit configured with its home spelled out (`/home/nemo/notes`) keeps that path: a
        // path typed so means it when no `~` root is along it.
        let plain = normalize(path, &[])?;
        if plain != mapped {
            let roots = crate::browse::roots(&found.snapshot)?;
            let along = |p: &str| roots.iter().any(|r| within(&r.path, p) || within(p, &r.path));
            if !along(&mapped) && along(&plain) {
                return Ok(plain);
            }
        }
        Ok(mapped)
    }

    /// The entries of one folder of a backup (`None`: its unit roots), or with `recursive`
    /// every entry below it, each folder before its contents.
    pub fn list_files(&self, found: &Found, path: Option<&str>, recursive: bool) -> EngineResult<Vec<Entry>> {
        let view = View::new(&found.repo, &found.snapshot)?;
        let path = path.map(|p| self.backup_path(found, p)).transpose()?;
        if !recursive {
            return view.children(path.as_deref());
        }
        let mut out = Vec::new();
        self.walk_files(found, path.as_deref(), &mut |e| {
            out.push(e.clone());
            true
        })?;
        Ok(out)
    }

    /// Every entry below a folder of a backup (all of it with `None`), each folder before
    /// its contents, given to `visit` as the walk reaches it (it returns false to stop):
    /// nothing is gathered, so a tree of any size is listed in little memory.
    pub fn walk_files(
        &self,
        found: &Found,
        path: Option<&str>,
        visit: &mut dyn FnMut(&Entry) -> bool,
    ) -> EngineResult<()> {
        let view = View::new(&found.repo, &found.snapshot)?;
        let path = path.map(|p| self.backup_path(found, p)).transpose()?;
        view.walk(path.as_deref(), &mut |e| {
            // Below the folder, not the folder itself.
            Some(&e.path) == path.as_ref() || visit(e)
        })
    }

    /// The entry at a path of a backup.
    pub fn stat_file(&self, found: &Found, path: &str) -> EngineResult<Entry> {
        let view = View::new(&found.repo, &found.snapshot)?;
        let path = self.backup_path(found, path)?;
        Ok(match view.locate(&path)? {
            Located::Real(e) => *e,
            Located::Leading(p) => Entry::leading(p),
        })
    }

    /// Searches every backup of every location (or of one) for `patterns` (a pattern
    /// without `/` matches names), in `unit` only when given. A location that cannot be
    /// read is reported and the others are searched.
    /// Only the backups of `devices` are searched.
    pub fn find_files(
        &self,
        patterns: &[String],
        unit: Option<&str>,
        location: Option<&str>,
        devices: &Devices,
    ) -> EngineResult<Search> {
        let this = self.this_device()?;
        if patterns.is_empty() {
            return Err(EngineError::BadName {
                what: "search".into(),
                detail: "needs a pattern, such as '*.jpg'".into(),
            });
        }
        let locations: Vec<_> = match location {
            Some(name) => vec![self.location(Some(name))?],
            None => self.locations().iter().collect(),
        };
        let mut unavailable = Vec::new();
        let mut held: Vec<(Repository, Snapshot)> = Vec::new();
        for loc in locations {
            let listed = (|| -> EngineResult<Option<(Repository, Vec<Snapshot>)>> {
                let Some(repo) = self.existing_repository(loc)? else { return Ok(None) };
                let (snaps, _) = repo.snapshots()?;
                let names = crate::device::current_names(&snaps);
                let snaps = snaps.into_iter().filter(|(_, s)| devices.admits(&this, &names, s));
                Ok(Some((repo, snaps.map(|(_, s)| s).collect())))
            })();
            match listed {
                Ok(Some((repo, snaps))) => {
                    for s in snaps {
                        // A backup copied to two locations is searched once.
                        if !held.iter().any(|(_, h)| h.slug == s.slug) {
                            held.push((repo.clone(), s));
                        }
                    }
                }
                Ok(None) => {}
                Err(error) => unavailable.push(Unavailable { location: loc.name.clone(), error }),
            }
        }
        held.sort_by_key(|h| std::cmp::Reverse(h.1.date));
        let homes: Vec<PathBuf> = vec![self.dirs().home.clone()];
        let choice = Choice::new(patterns, &homes.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
        let pairs: Vec<(&Repository, &Snapshot)> = held.iter().map(|(r, s)| (r, s)).collect();
        let (paths, mixed) = find::find(&pairs, &choice, unit)?;
        let compared = mixed.then(|| {
            "versions in repositories that do not share blob ids and chunking (locations not made with --like) \
             are told apart by type, size and time"
                .to_string()
        });
        Ok(Search { paths, unavailable, backups: held.len(), compared })
    }

    /// What changed from backup `a` to backup `b`, or to the device as it is now (what a
    /// restore of `a` in place would change; `by_content`: files of the backup's size and
    /// date are compared by content too, so damage with its date intact shows).
    pub fn diff(&self, a: &Found, b: Option<&Found>, unit: Option<&str>, by_content: bool) -> EngineResult<Diff> {
        if let Some(u) = unit {
            crate::restore::units_held(
                &a.snapshot.slug,
                a.snapshot.units.iter().map(|x| x.name.as_str()),
                &[u.to_string()],
            )?;
        }
        match b {
            Some(b) => diff::between(&a.repo, &a.snapshot, &b.repo, &b.snapshot, unit),
            None => {
                let units = self.units()?;
                diff::to_device(&a.repo, &a.snapshot, &units, self.dirs(), unit, by_content)
            }
        }
    }

    /// Opens a path of a backup: a file to read, or a folder.
    pub fn open_file(&self, found: &Found, path: &str) -> EngineResult<Opened> {
        let entry = self.stat_file(found, path)?;
        match entry.node.as_ref() {
            Some(n) if n.kind == NodeKind::File => {
                let r = FileReader::new(&found.repo, n)?;
                Ok(Opened::File(entry, r))
            }
            Some(n) if n.kind != NodeKind::Dir => Err(EngineError::BadName {
                what: format!("path {}", entry.path),
                detail: format!("is a {}, which holds no bytes to give", entry.kind),
            }),
            _ => Ok(Opened::Folder(entry)),
        }
    }

    /// Mounts a read-only view of a location's backups at `at` (an empty folder):
    /// `at/SLUG/…` at the paths of the device that made each, `at/latest` the newest of this
    /// device's (`devices` given: only their backups are shown, and `latest` is their
    /// newest). The view lasts until the returned value is dropped or unmounted.
    pub fn mount(&self, at: &Path, location: Option<&str>, devices: Option<&Devices>) -> EngineResult<Mounted> {
        let meta = std::fs::metadata(at).map_err(|e| EngineError::io("reading the mount point", at, e))?;
        if !meta.is_dir() {
            return Err(EngineError::BadTarget(at.to_path_buf()));
        }
        let loc = self.location(location)?;
        let repo = self.repository(loc, false)?;
        let (snaps, _) = repo.snapshots()?;
        let this = self.this_device()?;
        let names = crate::device::current_names(&snaps);
        let shown = devices.unwrap_or(&Devices::All);
        let latest_of = devices.unwrap_or(&Devices::This);
        let snaps: Vec<Snapshot> =
            snaps.into_iter().filter(|(_, s)| shown.admits(&this, &names, s)).map(|(_, s)| s).collect();
        // Read before the view is served, so that the first program to look in does not wait.
        repo.load_index()?;
        let device_of = |s: &Snapshot| this.name_of(&names, s).to_string();
        let fs = BackupFs::new(&repo, snaps, &|s| latest_of.admits(&this, &names, s), &device_of)?;
        mount::mount(fs, at)
    }

    /// Writes a file's bytes to `out`, or a folder and everything in it as a tar stream.
    /// Returns the bytes written.
    pub fn dump(&self, found: &Found, path: &str, out: &mut dyn Write) -> EngineResult<u64> {
        match self.open_file(found, path)? {
            Opened::File(e, _) => {
                let node = e.node.as_ref().expect("a file has its node");
                dump::file(&found.repo, node, out)
            }
            Opened::Folder(e) => {
                let view = View::new(&found.repo, &found.snapshot)?;
                dump::folder(&view, &e.path, out)
            }
        }
    }
}
