//! A model-based test of restores. Each case draws, from one seed: a unit layout (nested and
//! overlapping units, excludes, a `sqlite` unit inside a `paths` unit's folder), a random tree
//! (files of every size, folders, empty folders, symlinks, hard links, odd names), a random
//! change to the device after the backup (edits, deletions, additions, a file becoming a
//! folder or a symlink and back), then a random restore (units, mode, in place / under a
//! target / into another home, from the repository or from a backup file). Then, on the real
//! file system:
//!
//! - the dry run's plan lists every path the real run changed, and every path it says is
//!   created or deleted was;
//! - every path the plan says becomes the backup's entry is that entry (kind, content, mode,
//!   time, link target), every path it keeps is as it was, and nothing else moved;
//! - restoring the safety backup of an in-place restore gives back the exact tree of before.
//!
//! `LIFEBOAT_MODEL_CASES=N` sets the number of cases (300 by default), `LIFEBOAT_MODEL_SEED=S`
//! the first seed (random by default); a failure prints the seed that reproduces it.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backup::{self, BackupRequest};
use crate::backup_file::{self, ExportRequest, FileRestoreRequest};
use crate::browse::pattern::within;
use crate::restore::{self, Action, RestoreMode, RestoreReport, RestoreRequest};
use crate::{Dirs, Progress, RunLog};
use lifeboat_repository::{KeyKind, RecoveryKey, Repository};
use lifeboat_storage::LocalStore;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64: every seed, even 0, gives a good stream.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

const NAMES: &[&str] = &[
    "notes.txt",
    "with space",
    "ünïcødé",
    "-leading-dash",
    ".hidden",
    "semi;colon",
    "draft.tmp",
    "cache",
    "photo.jpg",
    "x",
    "y",
    "deep",
];

/// What a restore must reproduce of an entry (its folder's time apart: see `significant`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Facts {
    kind: u32,
    mode: u32,
    size: u64,
    mtime: (i64, i64),
    content: Option<[u8; 32]>,
    target: Option<Vec<u8>>,
}

impl Facts {
    fn is_dir(&self) -> bool {
        self.kind == libc::S_IFDIR
    }
    /// Without a folder's time, which moves whenever something in it does.
    fn significant(&self) -> Facts {
        let mut f = self.clone();
        if f.is_dir() {
            f.mtime = (0, 0);
        }
        f
    }
}

fn facts_of(path: &Path) -> Option<Facts> {
    let m = std::fs::symlink_metadata(path).ok()?;
    let kind = m.mode() & libc::S_IFMT;
    let content = (kind == libc::S_IFREG).then(|| *blake3::hash(&std::fs::read(path).unwrap()).as_bytes());
    let target = (kind == libc::S_IFLNK).then(|| std::fs::read_link(path).unwrap().as_os_str().as_bytes().to_vec());
    Some(Facts {
        kind,
        mode: if kind == libc::S_IFLNK { 0 } else { m.mode() & 0o7777 },
        size: if kind == libc::S_IFREG { m.len() } else { 0 },
        mtime: if kind == libc::S_IFLNK { (0, 0) } else { (m.mtime(), m.mtime_nsec()) },
        content,
        target,
    })
}

/// Every entry under each of `roots` (and the roots themselves), by absolute path.
fn state(roots: &[&Path]) -> BTreeMap<PathBuf, Facts> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<PathBuf> = roots.iter().map(|r| r.to_path_buf()).collect();
    while let Some(p) = stack.pop() {
        let Some(f) = facts_of(&p) else { continue };
        if f.is_dir() {
            for e in std::fs::read_dir(&p).unwrap().flatten() {
                stack.push(e.path());
            }
        }
        out.insert(p, f);
    }
    out
}

fn set_mtime(path: &Path, secs: i64) {
    let t = nix::sys::time::TimeSpec::new(secs, 0);
    nix::sys::stat::utimensat(None, path, &t, &t, nix::sys::stat::UtimensatFlags::NoFollowSymlink).unwrap();
}

/// Writes a random tree into `dir` (which exists). Returns the files made, for hard links.
fn fill(rng: &mut Rng, dir: &Path, depth: u32, files: &mut Vec<PathBuf>) {
    for _ in 0..rng.below(6) {
        let name = *rng.pick(NAMES);
        let path = dir.join(name);
        if path.symlink_metadata().is_ok() {
            continue;
        }
        match rng.below(10) {
            0..=4 => {
                let size = match rng.below(10) {
                    0 => 0,
                    1..=7 => rng.below(5000) as usize,
                    8 => 40_000,
                    _ => 1_500_000 + rng.below(1_000_000) as usize,
                };
                std::fs::write(&path, rng.bytes(size)).unwrap();
                if rng.chance(15) {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
                }
                set_mtime(&path, 1_600_000_000 + rng.below(1000) as i64);
                files.push(path);
            }
            5 | 6 if depth < 3 => {
                std::fs::create_dir(&path).unwrap();
                fill(rng, &path, depth + 1, files);
                set_mtime(&path, 1_600_000_000 + rng.below(1000) as i64);
            }
            7 => {
                std::fs::create_dir(&path).unwrap();
                set_mtime(&path, 1_600_000_000);
            }
            8 => {
                let target = if rng.chance(50) { PathBuf::from("../x") } else { dir.join("x") };
                std::os::unix::fs::symlink(target, &path).unwrap();
            }
            _ => {
                if let Some(first) = files.last() {
                    std::fs::hard_link(first, &path).unwrap();
                }
            }
        }
    }
}

/// A random change to one place below `dir`.
fn change(rng: &mut Rng, dir: &Path) {
    if !dir.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        return;
    }
    let all: Vec<PathBuf> = state(&[dir]).into_keys().filter(|p| p != dir).collect();
    let Some(p) = (!all.is_empty()).then(|| rng.pick(&all).clone()) else {
        std::fs::write(dir.join("added"), rng.bytes(100)).unwrap();
        return;
    };
    let is_dir = p.symlink_metadata().is_ok_and(|m| m.is_dir());
    let is_file = p.symlink_metadata().is_ok_and(|m| m.is_file());
    let remove = |p: &Path| {
        if p.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(p).unwrap()
        } else {
            std::fs::remove_file(p).unwrap()
        }
    };
    match rng.below(8) {
        0 if is_file => {
            let n = rng.below(3000) as usize;
            std::fs::write(&p, rng.bytes(n)).unwrap()
        }
        1 if is_file => set_mtime(&p, 1_700_000_000 + rng.below(1000) as i64),
        2 => remove(&p),
        // (Never through a link an earlier change left at that name.)
        3 if is_dir && p.join("added later").symlink_metadata().is_err() => {
            std::fs::write(p.join("added later"), rng.bytes(50)).unwrap()
        }
        4 => {
            // A file becomes a folder, or a folder a file.
            remove(&p);
            if is_dir {
                std::fs::write(&p, rng.bytes(10)).unwrap();
            } else {
                std::fs::create_dir(&p).unwrap();
                std::fs::write(p.join("inside"), rng.bytes(10)).unwrap();
            }
        }
        5 => {
            remove(&p);
            std::os::unix::fs::symlink("/nonexistent/elsewhere", &p).unwrap();
        }
        6 if is_file => std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap_or(()),
        _ => {
            let parent = if is_dir { p.clone() } else { p.parent().unwrap().to_path_buf() };
            let folder = parent.join("new folder");
            if folder.symlink_metadata().is_err() {
                std::fs::create_dir(&folder).unwrap();
                std::fs::write(folder.join("new file"), rng.bytes(77)).unwrap();
            }
        }
    }
}

fn db_rows(db: &Path) -> Option<i64> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).ok()
}

struct Case {
    seed: u64,
    dir: tempfile::TempDir,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Dest {
    InPlace,
    Target,
    OtherHome,
}

impl Case {
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn other(&self) -> PathBuf {
        self.dir.path().join("other")
    }
    fn target(&self) -> PathBuf {
        self.dir.path().join("target")
    }
    fn dirs(&self, home: PathBuf) -> Dirs {
        let d = self.dir.path();
        Dirs { home, config: d.join("config"), data: d.join("data"), logs: d.join("logs"), cache: None, root: false }
    }

    fn run(&self) -> Result<String, String> {
        let mut rng = Rng(self.seed);
        let home = self.home();
        for d in [home.clone(), self.other(), self.target()] {
            std::fs::create_dir_all(d).unwrap();
        }
        // The unit layout: a always; inner (nested, excluded by a or not), a database inside
        // a's folder, and d beside it, each maybe.
        let mut toml = String::new();
        let mut a_excludes: Vec<&str> = Vec::new();
        if rng.chance(50) {
            a_excludes.push("*.tmp");
        }
        if rng.chance(30) {
            a_excludes.push("cache");
        }
        let inner = rng.chance(50);
        if inner && rng.chance(60) {
            a_excludes.push("inner");
        }
        let database = rng.chance(40);
        if database && rng.chance(70) {
            a_excludes.push("db.sqlite*");
        }
        let quoted = |v: &[&str]| v.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>().join(", ");
        toml.push_str(&format!("[unit.a]\npaths = [\"~/a\"]\nexclude = [{}]\n", quoted(&a_excludes)));
        if inner {
            toml.push_str("[unit.inner]\npaths = [\"~/a/inner\"]\n");
        }
        if database {
            toml.push_str("[unit.db]\ntype = \"sqlite\"\ndatabase = \"~/a/db.sqlite\"\n");
        }
        let d_unit = rng.chance(50);
        if d_unit {
            toml.push_str("[unit.d]\npaths = [\"~/d\"]\n");
        }
        let config = crate::config::parse(&toml, Path::new("model.toml")).map_err(|e| e.to_string())?;

        // The device: the units' folders, and a folder no unit holds.
        let mut files = Vec::new();
        for sub in ["a", "a/inner", "d", "outside"] {
            std::fs::create_dir_all(home.join(sub)).unwrap();
            fill(&mut rng, &home.join(sub), 1, &mut files);
        }
        if database {
            let c = rusqlite::Connection::open(home.join("a/db.sqlite")).unwrap();
            c.execute_batch("CREATE TABLE t (v BLOB);").unwrap();
            for _ in 0..1 + rng.below(20) {
                c.execute("INSERT INTO t (v) VALUES (?1)", [rng.bytes(100)]).unwrap();
            }
        }
        for sub in ["a/inner", "a", "d", "outside"] {
            set_mtime(&home.join(sub), 1_600_000_000 + rng.below(1000) as i64);
        }
        let rows_at_backup = db_rows(&home.join("a/db.sqlite"));
        let at_backup = state(&[&home]);

        let dirs = self.dirs(home.clone());
        let store = Arc::new(LocalStore::new(self.dir.path().join("repo")));
        let repo =
            Repository::init(store, &RecoveryKey::random().as_secret(), KeyKind::Device).map_err(|e| e.to_string())?;
        let units = crate::unit::units(&config, &dirs, &[]).map_err(|e| e.to_string())?;
        let req = BackupRequest {
            units: units.iter().collect(),
            full: true,
            name: None,
            slug: backup::new_slug(&repo).map_err(|e| e.to_string())?,
            tags: vec![],
            safety: None,
            existing: Vec::new(),
            device: None,
            unattended: None,
            configuration: None,
        };
        let (_, snapshot) =
            backup::run(&repo, &dirs, req, &Progress::default(), &RunLog::none()).map_err(|e| e.to_string())?;

        // The device moves on.
        for _ in 0..1 + rng.below(5) {
            let sub = *rng.pick(&["a", "a", "a/inner", "d", "outside"]);
            change(&mut rng, &home.join(sub));
        }
        if database && rng.chance(50) {
            if let Ok(c) = rusqlite::Connection::open(home.join("a/db.sqlite")) {
                let _ = c.execute("INSERT INTO t (v) VALUES (x'00')", []);
            }
        }

        // The restore.
        let names: Vec<String> = snapshot.units.iter().map(|u| u.name.clone()).collect();
        let chosen: Vec<String> = if rng.chance(40) {
            Vec::new()
        } else {
            let mut c: Vec<String> = names.iter().filter(|_| rng.chance(50)).cloned().collect();
            if c.is_empty() {
                c.push(rng.pick(&names).clone());
            }
            c
        };
        let mode = if rng.chance(50) { RestoreMode::Merge } else { RestoreMode::Replace };
        let dest = *rng.pick(&[Dest::InPlace, Dest::InPlace, Dest::Target, Dest::OtherHome]);
        let from_file = rng.chance(30);
        // Sometimes only some paths of the backup: entries it holds, found by browsing it.
        let mut held = Vec::new();
        crate::browse::View::new(&repo, &snapshot)
            .and_then(|v| {
                v.walk(None, &mut |e| {
                    held.push(e.path.clone());
                    true
                })
            })
            .map_err(|e| e.to_string())?;
        let chosen_paths: Vec<String> = if !from_file && rng.chance(30) && !held.is_empty() {
            (0..1 + rng.below(2)).map(|_| rng.pick(&held).clone()).collect()
        } else {
            Vec::new()
        };
        let chosen = if chosen_paths.is_empty() { chosen } else { Vec::new() };
        if dest == Dest::OtherHome {
            // Another user, with notes of their own where the units go.
            for sub in ["a", "d"] {
                std::fs::create_dir_all(self.other().join(sub)).unwrap();
                fill(&mut rng, &self.other().join(sub), 2, &mut Vec::new());
            }
        }
        let restore_home = if dest == Dest::OtherHome { self.other() } else { home.clone() };
        let rdirs = self.dirs(restore_home.clone());
        let configured = crate::unit::units(&config, &rdirs, &[]).map_err(|e| e.to_string())?;
        let target = (dest == Dest::Target).then(|| self.target());
        let describe = format!(
            "units {chosen:?} of {names:?} (a excludes {a_excludes:?}), paths {chosen_paths:?}, {mode:?}, {dest:?}, {}",
            if from_file { "from a backup file" } else { "from the repository" }
        );
        let file = if from_file {
            let export = backup_file::plan_export(&repo, &snapshot, ExportRequest { passphrase: None, config: None })
                .map_err(|e| e.to_string())?;
            let mut bytes = Vec::new();
            export.write(&mut bytes, &Progress::default()).map_err(|e| e.to_string())?;
            Some(bytes)
        } else {
            None
        };
        let run = |dry_run: bool| -> Result<RestoreReport, String> {
            match &file {
                Some(bytes) => {
                    let req = FileRestoreRequest {
                        units: chosen.clone(),
                        target: target.clone(),
                        mode,
                        dry_run,
                        configured: configured.clone(),
                        passphrase: None,
                        devices: false,
                        map_paths: vec![],
                        force: false,
                    };
                    backup_file::restore(&bytes[..], "model", &rdirs, &req, &Progress::default(), &RunLog::none())
                        .map(|(_, r)| r)
                        .map_err(|e| e.to_string())
                }
                None => {
                    let req = RestoreRequest {
                        units: chosen.clone(),
                        target: target.clone(),
                        dry_run,
                        configured: configured.clone(),
                        mode,
                        map_paths: vec![],
                        safety_backup: true,
                        paths: chosen_paths.clone(),
                        trust_dates: false,
                        device: None,
                        force: false,
                    };
                    restore::run(&repo, &snapshot, &rdirs, &req, &Progress::default(), &RunLog::none())
                        .map_err(|e| e.to_string())
                }
            }
        };
        let watched = [home.as_path(), &self.other(), &self.target()];
        let before = state(&watched);
        let dry = run(true).map_err(|e| format!("{describe}: dry run: {e}"))?;
        if state(&watched) != before {
            return Err(format!("{describe}: the dry run changed the device"));
        }
        let report = run(false).map_err(|e| format!("{describe}: {e}"))?;
        if !report.problems.is_empty() {
            return Err(format!("{describe}: problems: {:?}", report.problems));
        }
        let after = state(&watched);

        // Where the backup's entries land: the home's paths, re-homed or re-rooted.
        let land = |p: &Path| -> PathBuf {
            let rel = p.strip_prefix(&home).unwrap();
            match dest {
                Dest::InPlace => p.to_path_buf(),
                Dest::OtherHome => self.other().join(rel),
                Dest::Target => self.target().join(p.strip_prefix("/").unwrap()),
            }
        };
        let expected: BTreeMap<PathBuf, &Facts> = at_backup.iter().map(|(p, f)| (land(p), f)).collect();
        let roots: Vec<PathBuf> = dry.roots.iter().map(|(_, p)| PathBuf::from(p)).collect();
        let plan: BTreeMap<PathBuf, Action> = dry.plan.iter().map(|s| (PathBuf::from(&s.path), s.action)).collect();
        let is_db = |p: &Path| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("db.sqlite"));
        let paths: BTreeSet<&PathBuf> = before.keys().chain(after.keys()).collect();
        for p in paths {
            let (b, a) = (before.get(p), after.get(p));
            let moved = b.map(Facts::significant) != a.map(Facts::significant);
            // Folders made on the way to a root under --target or in another home.
            let on_the_way = roots.iter().any(|r| r.starts_with(p) && r != p);
            match plan.get(p) {
                None if moved && !on_the_way => {
                    return Err(format!("{describe}: {} changed but is not in the plan: {b:?} -> {a:?}", p.display()))
                }
                None => {}
                Some(Action::Create) if b.is_some() && !on_the_way => {
                    return Err(format!("{describe}: {} was to be created but existed", p.display()))
                }
                Some(Action::Delete) if a.is_some() => {
                    return Err(format!("{describe}: {} was to be deleted but is there", p.display()))
                }
                Some(Action::Keep) if moved => {
                    return Err(format!("{describe}: {} was to be kept but changed", p.display()))
                }
                Some(Action::Create | Action::Replace | Action::Unchanged) => {
                    let want = expected.get(p).map(|f| f.significant());
                    let got = a.map(Facts::significant);
                    let same = match (&want, &got) {
                        (Some(w), Some(g)) if is_db(p) => w.kind == g.kind,
                        (Some(w), Some(g)) if w.kind == libc::S_IFLNK => {
                            // Absolute links into the old home follow the data.
                            let t = w.target.clone().map(|t| {
                                let t = PathBuf::from(std::ffi::OsStr::from_bytes(&t));
                                match (dest, t.strip_prefix(&home)) {
                                    (Dest::OtherHome, Ok(rel)) => self.other().join(rel).into_os_string().into_vec(),
                                    _ => t.into_os_string().into_vec(),
                                }
                            });
                            g.kind == w.kind && g.target == t
                        }
                        (Some(w), Some(g)) => w == g,
                        _ => false,
                    };
                    if !same {
                        return Err(format!(
                            "{describe}: {} is not the backup's entry: want {want:?}, got {got:?}",
                            p.display()
                        ));
                    }
                }
                _ => {}
            }
        }
        // With paths, nothing changes but them and the folders leading to them.
        if !chosen_paths.is_empty() {
            let base = match dest {
                Dest::InPlace => home.clone(),
                Dest::OtherHome => self.other(),
                Dest::Target => self.target().join(home.strip_prefix("/").unwrap()),
            };
            for step in dry.plan.iter().filter(|s| s.action.changes()) {
                let Ok(rel) = Path::new(&step.path).strip_prefix(&base) else { continue };
                let written = if rel.as_os_str().is_empty() { "~".to_string() } else { format!("~/{}", rel.display()) };
                let inside = chosen_paths.iter().any(|c| within(&written, c) || within(c, &written));
                if !inside {
                    return Err(format!("{describe}: {} changes, but lies along no chosen path", step.path));
                }
            }
        }
        let db_chosen = chosen_paths.is_empty() || chosen_paths.iter().any(|c| within("~/a/db.sqlite", c));
        if database && db_chosen && (chosen.is_empty() || chosen.iter().any(|u| u == "db")) {
            let db = land(&home.join("a/db.sqlite"));
            if db_rows(&db) != rows_at_backup {
                return Err(format!(
                    "{describe}: the database has {:?} rows, the backup {rows_at_backup:?}",
                    db_rows(&db)
                ));
            }
        }

        // The undo: restoring the safety backup gives back the tree of before, exactly.
        let mut undone = false;
        if let Some(s) = &report.safety_backup {
            let (_, safety) = repo.find_snapshot(&s.slug).map_err(|e| e.to_string())?;
            let req = RestoreRequest {
                units: vec![],
                target: None,
                dry_run: false,
                configured: configured.clone(),
                mode: RestoreMode::Merge,
                map_paths: vec![],
                safety_backup: false,
                paths: vec![],
                trust_dates: false,
                device: None,
                force: false,
            };
            let undo = restore::run(&repo, &safety, &rdirs, &req, &Progress::default(), &RunLog::none())
                .map_err(|e| format!("{describe}: undo: {e}"))?;
            if !undo.problems.is_empty() {
                return Err(format!("{describe}: undo problems: {:?}", undo.problems));
            }
            let now = state(&watched);
            for p in before.keys().chain(now.keys()).collect::<BTreeSet<_>>() {
                let (b, n) = (before.get(p), now.get(p));
                let differs = match (b, n) {
                    (Some(b), Some(n)) if is_db(p) => b.kind != n.kind,
                    (b, n) => b != n,
                };
                if differs {
                    return Err(format!("{describe}: after the undo {} is {n:?}, was {b:?}", p.display()));
                }
            }
            undone = true;
        } else if dest != Dest::Target
            && file.is_none()
            && dry.plan.iter().any(|s| matches!(s.action, Action::Replace | Action::Delete))
        {
            return Err(format!("{describe}: an in-place restore that replaces or deletes made no safety backup"));
        }
        let source = if from_file { "file" } else { "repository" };
        Ok(format!("{mode:?} {dest:?} from the {source}{}", if undone { ", undone" } else { "" }))
    }
}

use std::os::unix::ffi::OsStringExt;

#[test]
fn random_restores_do_exactly_what_their_plan_says_and_their_safety_backup_undoes_them() {
    let cases: u64 = std::env::var("LIFEBOAT_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let first: u64 = std::env::var("LIFEBOAT_MODEL_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand_seed);
    eprintln!("model test: {cases} cases from seed {first} (LIFEBOAT_MODEL_SEED={first} repeats them)");
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..cases {
        let seed = first.wrapping_add(i);
        let case = Case { seed, dir: tempfile::tempdir().unwrap() };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case.run()));
        let repeat = format!("LIFEBOAT_MODEL_SEED={seed} LIFEBOAT_MODEL_CASES=1");
        match outcome {
            Ok(Ok(what)) => *kinds.entry(what).or_default() += 1,
            Ok(Err(e)) => panic!("case with seed {seed} failed ({repeat}): {e}"),
            Err(_) => panic!("case with seed {seed} panicked ({repeat}); its message is above"),
        }
    }
    for (k, n) in &kinds {
        eprintln!("  {n:>5}  {k}");
    }
}

fn rand_seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    t.as_nanos() as u64 ^ u64::from(std::process::id())
}

/// A snapshot planted by a hostile writer whose unit root climbs out (or whose folder listing
/// names `..`) is refused before anything is written, and `check` names it.
#[test]
fn a_snapshot_whose_paths_climb_out_is_refused_and_reported_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join("notes")).unwrap();
    std::fs::write(home.join("notes/a"), "a").unwrap();
    let victim = dir.path().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("keep"), "must stay").unwrap();
    let dirs = Dirs {
        home: home.clone(),
        config: dir.path().join("c"),
        data: dir.path().join("d"),
        logs: dir.path().join("l"),
        cache: None,
        root: false,
    };
    let store = Arc::new(LocalStore::new(dir.path().join("repo")));
    let repo = Repository::init(store, &RecoveryKey::random().as_secret(), KeyKind::Device).unwrap();
    let config = crate::config::parse("[unit.notes]\npaths = [\"~/notes\"]\n", Path::new("t.toml")).unwrap();
    let units = crate::unit::units(&config, &dirs, &[]).unwrap();
    let req = BackupRequest {
        units: units.iter().collect(),
        full: true,
        name: None,
        slug: backup::new_slug(&repo).unwrap(),
        tags: vec![],
        safety: None,
        existing: Vec::new(),
        device: None,
        unattended: None,
        configuration: None,
    };
    let (_, good) = backup::run(&repo, &dirs, req, &Progress::default(), &RunLog::none()).unwrap();
    let climbing = format!("/{}{}", "../".repeat(12), victim.strip_prefix("/").unwrap().display());
    for bad in [climbing.as_str(), "notes", "~/../../x"] {
        let mut planted = good.clone();
        planted.slug = format!("bad{}", bad.len());
        planted.units[0].roots[0].path = bad.to_string();
        repo.save_snapshot(&planted).unwrap();
        for target in [None, Some(dir.path().join("target"))] {
            let req = RestoreRequest {
                units: vec![],
                target: target.clone(),
                dry_run: false,
                configured: units.clone(),
                mode: RestoreMode::Replace,
                map_paths: vec![],
                safety_backup: true,
                paths: vec![],
                trust_dates: false,
                device: None,
                force: false,
            };
            let e = restore::run(&repo, &planted, &dirs, &req, &Progress::default(), &RunLog::none()).unwrap_err();
            assert!(e.to_string().contains("refused"), "{bad}: {e}");
            assert_eq!(std::fs::read_to_string(victim.join("keep")).unwrap(), "must stay");
            assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 1, "{bad}: wrote into the victim");
            assert!(target.is_none_or(|t| !t.exists()), "{bad}: wrote into the target");
        }
    }
    let report = repo.check(lifeboat_repository::CheckOptions { read_data: false }, &|_| {}).unwrap();
    let named: Vec<&str> = report.problems.iter().map(|p| p.what.as_str()).filter(|w| w.contains("refuses")).collect();
    assert_eq!(named.len(), 3, "check names each planted backup: {:?}", report.problems);
}
