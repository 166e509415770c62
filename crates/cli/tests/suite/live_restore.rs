//! Restores that work on the live tree (issue 42): no staging copy of a unit root beside it,
//! every file written beside its destination and renamed into place, each path checked again
//! before it is replaced or deleted, and no symlink followed below the destination.
//!
//! - A user (not root) restores in place with the default configuration (the unit `~`): one
//!   file, and the whole home. Only what is restored changes: the home and the other files keep
//!   their inodes, and a shell whose working folder is `~` is not left in a deleted folder.
//! - Work saved while a restore runs (a new file, an editor's save over a file the restore
//!   replaces) is kept, in merge and in replace mode; the backup's version of the edited file is
//!   put beside it as `NAME.restored-SLUG`, and the restore says so and fails.
//! - Root never writes outside the destination when the owner of the folders swaps each of them
//!   for a symlink to a root-only folder at the pause `commit of SLUG` (in place, under
//!   `--target`, one `--path`, `--from-file`), nor while she swaps them back and forth all along.
//! - Root sets metadata only on what the restore made, and removes only what it made: files of
//!   root's she renames over the temporary names of a symlink and a FIFO keep their owner and
//!   mode; a folder she puts at a temporary name left by a killed restore is not emptied.
//!
//! The tests with users need root (CI runs as root) and skip otherwise. A restore killed in the
//! middle is covered by faults.rs and restore_modes.rs; bit rot by restore_plan.rs.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::*;

/// How long a restore of these small trees may take to reach its pause point, or to end.
const PATIENCE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Users

/// A real user made for one test (`useradd -m`), removed with her home when dropped.
struct User {
    name: String,
    home: PathBuf,
}

impl User {
    fn create(role: &str) -> User {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("{role}{}n{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let _ = Command::new("userdel").args(["-r", &name]).output();
        let out = Command::new("useradd").args(["-m", "-s", "/bin/sh", &name]).output().expect("useradd");
        assert!(out.status.success(), "useradd {name}: {}", stderr(&out));
        let home = PathBuf::from(format!("/home/{name}"));
        User { name, home }
    }

    /// Runs `sh -c script` as this user, with `args` as $1, $2, …; insists on success and
    /// returns what it printed.
    fn sh(&self, script: &str, args: &[&Path]) -> String {
        let out = Command::new("runuser")
            .args(["-u", &self.name, "--", "sh", "-c", script, "sh"])
            .args(args)
            .current_dir(&self.home)
            .env("HOME", &self.home)
            .output()
            .expect("runuser");
        assert!(out.status.success(), "as {}: {script}: {}", self.name, stderr(&out));
        stdout(&out)
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("userdel").args(["-r", &self.name]).output();
    }
}

/// The test binary copied where any user may run it, removed when dropped.
struct Binary(tempfile::TempDir);

impl Binary {
    fn new() -> Binary {
        let dir = tempfile::Builder::new().prefix("lifeboat-live-").tempdir_in("/tmp").unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::copy(env!("CARGO_BIN_EXE_lifeboat"), dir.path().join("lifeboat")).unwrap();
        fs::set_permissions(dir.path().join("lifeboat"), fs::Permissions::from_mode(0o755)).unwrap();
        Binary(dir)
    }

    /// lifeboat run by `user` with the default configuration: no configuration file, no
    /// password, the default folders of her home.
    fn run_as(&self, user: &User, args: &[&str]) -> Output {
        Command::new("runuser")
            .args(["-u", &user.name, "--", "env", "-i", "PATH=/usr/bin:/bin", "TZ=UTC"])
            .arg(format!("HOME={}", user.home.display()))
            .arg(self.0.path().join("lifeboat"))
            .args(args)
            .current_dir(&user.home)
            .stdin(Stdio::null())
            .output()
            .expect("runuser")
    }
}

// ---------------------------------------------------------------------------------------------
// Pause points

const STOP: &str = "\u{0}stop";

/// A lifeboat process started with `LIFEBOAT_PAUSE_AT`: [`Paused::wait`] until it stops there
/// (failing, not hanging, when it never does), act, then [`Paused::finish`]. Later pause points
/// whose description also holds the text are resumed as they come.
struct Paused {
    child: Child,
    at: String,
    pause: PathBuf,
    out: PathBuf,
    err: PathBuf,
    pauses: mpsc::Receiver<String>,
    go: Option<mpsc::Sender<()>>,
    listener: Option<std::thread::JoinHandle<()>>,
}

impl Paused {
    fn start(sb: &Sandbox, mut cmd: Command, at: &str) -> Paused {
        let pause = pause_dir(sb);
        // Opened for reading and writing, the FIFO never blocks this side, and holds the STOP
        // line that ends the listener.
        let fifo = fs::File::options().read(true).write(true).open(pause.join("paused")).unwrap();
        let (tx, pauses) = mpsc::channel();
        let (go, go_rx) = mpsc::channel::<()>();
        let dir = pause.clone();
        let listener = std::thread::spawn(move || {
            let mut held = true;
            for line in BufReader::new(fifo).lines() {
                let Ok(line) = line else { break };
                if line == STOP {
                    break;
                }
                let _ = tx.send(line);
                if held {
                    if go_rx.recv().is_err() {
                        break;
                    }
                    held = false;
                }
                resume(&dir);
            }
        });
        let (out, err) = (sb.dir.path().join("paused-run.out"), sb.dir.path().join("paused-run.err"));
        let child = cmd
            .env("LIFEBOAT_PAUSE_AT", at)
            .env("LIFEBOAT_PAUSE_DIR", &pause)
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .expect("starting lifeboat");
        Paused { child, at: at.to_string(), pause, out, err, pauses, go: Some(go), listener: Some(listener) }
    }

    /// Waits until the process stops at the pause point; returns its description.
    fn wait(&mut self) -> String {
        let started = Instant::now();
        loop {
            match self.pauses.recv_timeout(Duration::from_millis(100)) {
                Ok(what) => return what,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the pause listener ended"),
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the process never paused at {:?}: it ended first ({status}); stderr:\n{}",
                    self.at,
                    fs::read_to_string(&self.err).unwrap_or_default()
                );
            }
            assert!(started.elapsed() < PATIENCE, "the process did not reach {:?} in {PATIENCE:?}", self.at);
        }
    }

    /// Lets the process go on to its end; returns what it said.
    fn finish(mut self) -> Output {
        if let Some(go) = &self.go {
            let _ = go.send(());
        }
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(started.elapsed() < PATIENCE, "the process did not end in {PATIENCE:?} after it was resumed");
            let _ = self.pauses.recv_timeout(Duration::from_millis(50));
        };
        Output { status, stdout: fs::read(&self.out).unwrap(), stderr: fs::read(&self.err).unwrap() }
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.go = None;
        // A reader on `resume` lets a listener caught opening it go on; then the STOP line
        // ends it.
        let _reader = fs::File::options().read(true).custom_flags(libc::O_NONBLOCK).open(self.pause.join("resume"));
        if let Ok(mut f) =
            fs::File::options().write(true).custom_flags(libc::O_NONBLOCK).open(self.pause.join("paused"))
        {
            let _ = writeln!(f, "{STOP}");
        }
        if let Some(l) = self.listener.take() {
            let _ = l.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn inode(p: &Path) -> u64 {
    fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).ino()
}

/// Every entry of a folder (not below it) with its inode.
fn inodes_in(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), inode(&e.path())))
        .collect();
    v.sort();
    v
}

/// A process whose working folder is `dir`, as a shell left in it: it lives until dropped.
struct Resident(Child);

impl Resident {
    fn in_dir(dir: &Path) -> Resident {
        Resident(Command::new("cat").current_dir(dir).stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap())
    }

    /// Its working folder as the kernel names it (`… (deleted)` once removed).
    fn cwd(&self) -> PathBuf {
        fs::read_link(format!("/proc/{}/cwd", self.0.id())).unwrap()
    }
}

impl Drop for Resident {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| format!("<{}: {e}>", p.display()))
}

/// An editor's save: the new text written to a temporary file, renamed over the old one.
fn save_like_an_editor(path: &Path, text: &str) {
    let tmp = path.with_file_name(format!(".{}.swp", path.file_name().unwrap().to_string_lossy()));
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

// ---------------------------------------------------------------------------------------------
// A user restores in place with the default configuration

/// A user with `~/doc.txt`, `~/notes/n.txt` and a backup of her home made with the default
/// configuration, then `~/doc.txt` edited. None when not root.
fn user_with_a_home_backup() -> Option<(User, Binary)> {
    if !is_root() {
        eprintln!("skipped: creating a user needs root");
        return None;
    }
    let user = User::create("lbhome");
    let bin = Binary::new();
    user.sh("mkdir notes && printf 'as backed up' > doc.txt && printf 'n' > notes/n.txt", &[]);
    let out = bin.run_as(&user, &["backups", "new", "--quiet"]);
    assert!(out.status.success(), "backup as {}: {}", user.name, stderr(&out));
    user.sh("printf 'edited after the backup' > doc.txt", &[]);
    Some((user, bin))
}

#[test]
fn a_user_restores_one_file_of_her_home_in_place_and_nothing_else_moves() {
    let Some((user, bin)) = user_with_a_home_backup() else { return };
    let home = &user.home;
    let shell = Resident::in_dir(home);
    let (home_ino, notes_ino) = (inode(home), inode(&home.join("notes")));
    let mut others = inodes_in(home);
    others.retain(|(n, _)| n != "doc.txt");
    let in_notes = inodes_in(&home.join("notes"));

    // What a shell makes of `--path ~/doc.txt`.
    let doc = home.join("doc.txt");
    let out = bin.run_as(&user, &["backups", "restore", "latest", "--path", doc.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "restore of ~/doc.txt as {} ({:?}): {}", user.name, out.status.code(), stderr(&out));
    assert_eq!(read(&doc), "as backed up");
    assert_eq!(inode(home), home_ino, "the home folder is the same folder");
    assert_eq!(shell.cwd(), *home, "a shell in ~ is not left in a deleted folder");
    let mut now = inodes_in(home);
    now.retain(|(n, _)| n != "doc.txt");
    assert_eq!(now, others, "every other entry of the home is untouched, and nothing is left beside them");
    assert_eq!(inode(&home.join("notes")), notes_ino);
    assert_eq!(inodes_in(&home.join("notes")), in_notes);
}

#[test]
fn a_user_restores_her_whole_home_in_place_and_it_stays_the_same_folder() {
    let Some((user, bin)) = user_with_a_home_backup() else { return };
    let home = &user.home;
    user.sh("rm notes/n.txt && printf 'after' > later.txt", &[]);
    let shell = Resident::in_dir(home);
    let (home_ino, notes_ino) = (inode(home), inode(&home.join("notes")));
    let names = |dir: &Path| inodes_in(dir).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    let before = names(home);

    let out = bin.run_as(&user, &["backups", "restore", "latest", "--quiet"]);
    assert!(out.status.success(), "restore of ~ as {} ({:?}): {}", user.name, out.status.code(), stderr(&out));
    assert_eq!(read(&home.join("doc.txt")), "as backed up");
    assert_eq!(read(&home.join("notes/n.txt")), "n");
    assert_eq!(read(&home.join("later.txt")), "after", "merge keeps what the backup lacks");
    assert_eq!(inode(home), home_ino, "the home folder is the same folder");
    assert_eq!(inode(&home.join("notes")), notes_ino, "a restored folder is the same folder");
    assert_eq!(shell.cwd(), *home, "a shell in ~ is not left in a deleted folder");
    assert_eq!(names(home), before, "nothing is left beside the home's entries");
}

// ---------------------------------------------------------------------------------------------
// Work saved while a restore runs

/// Backs up ~/notes, changes it so that the restore replaces `a.txt` and `sub/edited.txt`
/// and recreates `sub/gone.txt`, pauses the restore once planned, and meanwhile saves
/// `sub/edited.txt` as an editor does and writes `sub/new.txt` (and in replace mode saves
/// `later.txt`, which the plan deletes). Returns what went wrong.
fn work_saved_during_the_restore(mode: &str) -> Vec<String> {
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\n");
    let notes = sb.home.join("notes");
    fs::create_dir_all(notes.join("sub")).unwrap();
    fs::write(notes.join("a.txt"), "a as backed up").unwrap();
    fs::write(notes.join("sub/edited.txt"), "edited.txt as backed up").unwrap();
    fs::write(notes.join("sub/gone.txt"), "gone.txt as backed up").unwrap();
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    fs::write(notes.join("a.txt"), "a changed").unwrap();
    fs::write(notes.join("sub/edited.txt"), "edited.txt changed before the restore").unwrap();
    fs::remove_file(notes.join("sub/gone.txt")).unwrap();
    fs::write(notes.join("later.txt"), "later.txt written after the backup").unwrap();

    let mut cmd = sb.command();
    cmd.args(["backups", "restore", &slug, "--mode", mode, "--quiet"]);
    let mut run = Paused::start(&sb, cmd, &format!("restore {slug}"));
    run.wait();
    save_like_an_editor(&notes.join("sub/edited.txt"), "the user's work, saved during the restore");
    fs::write(notes.join("sub/new.txt"), "a new file, written during the restore").unwrap();
    if mode == "replace" {
        save_like_an_editor(&notes.join("later.txt"), "later.txt saved again during the restore");
    }
    let out = run.finish();
    let err = stderr(&out);

    let mut wrong = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            wrong.push(what);
        }
    };
    let edited = read(&notes.join("sub/edited.txt"));
    expect(
        edited == "the user's work, saved during the restore",
        format!("sub/edited.txt lost the user's save: {edited:?}"),
    );
    let new = read(&notes.join("sub/new.txt"));
    expect(new == "a new file, written during the restore", format!("sub/new.txt: {new:?}"));
    let sibling = notes.join(format!("sub/edited.txt.restored-{slug}"));
    let kept = read(&sibling);
    expect(
        kept == "edited.txt as backed up",
        format!("the backup's version is not at {}: {kept:?}", sibling.display()),
    );
    expect(err.contains("changed while restoring: kept"), "stderr does not say `changed while restoring: kept`".into());
    expect(
        err.contains(&format!("edited.txt.restored-{slug}")),
        "stderr does not name where the backup's version is".into(),
    );
    let code = out.status.code();
    expect(
        code != Some(0) && code != Some(3),
        format!("exit code {code:?}: a restore that kept a file is not a success"),
    );
    // The rest of the restore was done.
    expect(read(&notes.join("a.txt")) == "a as backed up", format!("a.txt: {:?}", read(&notes.join("a.txt"))));
    let gone = read(&notes.join("sub/gone.txt"));
    expect(gone == "gone.txt as backed up", format!("sub/gone.txt: {gone:?}"));
    if mode == "replace" {
        let later = read(&notes.join("later.txt"));
        expect(
            later == "later.txt saved again during the restore",
            format!("later.txt, saved during the restore: {later:?}"),
        );
    }
    let names = |dir: &Path| inodes_in(dir).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    let (top, sub) = (names(&notes), names(&notes.join("sub")));
    expect(top == ["a.txt", "later.txt", "sub"], format!("~/notes holds {top:?}"));
    let in_sub = ["edited.txt".to_string(), format!("edited.txt.restored-{slug}"), "gone.txt".into(), "new.txt".into()];
    expect(sub == in_sub, format!("~/notes/sub holds {sub:?}"));
    if !wrong.is_empty() {
        wrong.push(format!("exit {code:?}, stderr:\n{err}"));
    }
    wrong
}

#[test]
fn work_saved_while_a_merge_restore_runs_is_kept() {
    let wrong = work_saved_during_the_restore("merge");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn work_saved_while_a_replace_restore_runs_is_kept() {
    let wrong = work_saved_during_the_restore("replace");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Root never writes outside the destination

/// A user's folder `~/docs` backed up by root (unit `/home/NAME/docs`), then changed by her so
/// that a replace restore replaces, creates and deletes in every folder; and a root-only
/// folder (0700) holding root's own files and folders named like every entry of the tree.
struct Attack {
    user: User,
    sb: Sandbox,
    docs: PathBuf,
    slug: String,
    root_only: PathBuf,
    before: std::collections::BTreeMap<PathBuf, EntryFacts>,
    before_folders: Folders,
}

const TREE: &[(&str, &str)] = &[
    ("a.txt", "a"),
    ("b.txt", "b"),
    ("one/c.txt", "c"),
    ("one/c2.txt", "c2"),
    ("one/two/d.txt", "d"),
    ("one/two/d2.txt", "d2"),
    ("three/e.txt", "e"),
    ("three/e2.txt", "e2"),
];

impl Attack {
    fn new() -> Option<Attack> {
        if !is_root() {
            eprintln!("skipped: creating a user needs root");
            return None;
        }
        let user = User::create("lbalice");
        let docs = user.home.join("docs");
        let mut script = String::from("set -e; mkdir -p docs/one/two docs/three");
        for (path, text) in TREE {
            script.push_str(&format!("; printf '{text} as backed up' > docs/{path}"));
        }
        user.sh(&script, &[]);
        let sb = Sandbox::new(&format!("[unit.docs]\npaths = [\"{}\"]\n", docs.display()));
        let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
        // In each folder: one file edited (replaced), one removed (created), one added
        // (deleted by replace mode).
        user.sh(
            "set -e; cd docs; printf x > a.txt; rm b.txt; printf x > later-top.txt; \
             printf x > one/c.txt; rm one/c2.txt; printf x > one/later-one.txt; \
             printf x > one/two/d.txt; rm one/two/d2.txt; printf x > one/two/later-two.txt; \
             printf x > three/e.txt; rm three/e2.txt; printf x > three/later-three.txt",
            &[],
        );
        let root_only = sb.dir.path().join("root-only");
        fs::create_dir(&root_only).unwrap();
        fs::set_permissions(&root_only, fs::Permissions::from_mode(0o700)).unwrap();
        let names = TREE.iter().flat_map(|(p, _)| p.split('/')).chain([
            "later-top.txt",
            "later-one.txt",
            "later-two.txt",
            "later-three.txt",
            "docs",
        ]);
        for name in names {
            let p = root_only.join(name);
            if p.exists() {
                continue;
            }
            if name.ends_with(".txt") {
                fs::write(&p, format!("root's own {name}")).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
            } else {
                fs::create_dir(&p).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(0o700)).unwrap();
            }
        }
        let before = facts(&root_only);
        let before_folders = folders(&root_only);
        Some(Attack { user, sb, docs, slug, root_only, before, before_folders })
    }

    /// As the user, swaps `top` and every real folder below it (deepest first) for a symlink
    /// to the root-only folder, `mv D D.x && ln -s ROOT-ONLY D`: each one she may (not those
    /// in a folder of root's).
    fn swap_folders(&self, top: &Path) {
        let mut dirs: Vec<PathBuf> =
            walkdir(top).into_iter().filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())).collect();
        dirs.push(top.to_path_buf());
        dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        let mut args: Vec<&Path> = vec![&self.root_only];
        args.extend(dirs.iter().map(PathBuf::as_path));
        let swapped = self.user.sh(
            r#"t=$1; shift; n=0; for d; do mv "$d" "$d.x" 2>/dev/null && ln -s "$t" "$d" && n=$((n+1)); done; echo $n"#,
            &args,
        );
        assert_ne!(swapped.trim(), "0", "she swapped none of {dirs:?}");
    }

    /// Fails unless the root-only folder is exactly as it was: no entry new, changed or gone.
    fn assert_nothing_written_outside(&self, what: &str, out: &Output) {
        let after = facts(&self.root_only);
        let new: Vec<_> = after.keys().filter(|k| !self.before.contains_key(*k)).collect();
        let gone: Vec<_> = self.before.keys().filter(|k| !after.contains_key(*k)).collect();
        let changed: Vec<_> =
            self.before.iter().filter(|(k, v)| after.get(*k).is_some_and(|a| a != *v)).map(|(k, _)| k).collect();
        assert!(
            new.is_empty() && gone.is_empty() && changed.is_empty(),
            "{what}: root wrote outside the destination, into the root-only folder: \
             {} new {new:?}, changed {changed:?}, gone {gone:?}\nexit {:?}, stderr:\n{}",
            new.len(),
            out.status.code(),
            stderr(out)
        );
        assert_eq!(
            folders(&self.root_only),
            self.before_folders,
            "{what}: the root-only folder or one in it was written in, or its owner or mode changed"
        );
        assert_ne!(out.status.code(), Some(101), "{what}: a panic: {}", stderr(out));
    }

    /// Runs `lifeboat ARGS` as root, and at `commit of SLUG` swaps the folders from
    /// `top` down.
    fn restore_swapping_at_written(&self, args: &[&str], top: &Path) -> Output {
        let mut cmd = self.sb.command();
        cmd.args(args);
        let mut run = Paused::start(&self.sb, cmd, &format!("commit of {}", self.slug));
        let at = run.wait();
        assert!(at.contains(&self.slug), "{at}");
        self.swap_folders(top);
        run.finish()
    }
}

/// A folder's own mode, owner and time, and the times of the folders in it: what `facts`
/// leaves out, and what a file written and removed again, or a chown through a link, changes.
type Folders = ((u32, u32, u32, i64, i64), std::collections::BTreeMap<PathBuf, (i64, i64)>);

fn folders(p: &Path) -> Folders {
    let m = fs::symlink_metadata(p).unwrap();
    ((m.mode(), m.uid(), m.gid(), m.mtime(), m.mtime_nsec()), dir_mtimes(p))
}

#[test]
fn root_restoring_in_place_writes_nothing_through_folders_swapped_for_symlinks() {
    let Some(a) = Attack::new() else { return };
    let out = a.restore_swapping_at_written(
        &["backups", "restore", &a.slug, "--mode", "replace", "--no-safety-backup", "--quiet"],
        &a.docs,
    );
    a.assert_nothing_written_outside("in place", &out);
}

#[test]
fn root_restoring_under_a_target_writes_nothing_through_folders_swapped_for_symlinks() {
    let Some(a) = Attack::new() else { return };
    // A folder of hers to restore into, restored once and then changed by her, so that the
    // second restore replaces, creates and deletes there too.
    let target = a.user.home.join("restore-here");
    a.user.sh("mkdir restore-here", &[]);
    let t = target.to_str().unwrap();
    a.sb.ok(&["backups", "restore", &a.slug, "--target", t, "--quiet"]);
    let there = rerooted(&target, &a.docs);
    a.user.sh(r#"set -e; cd "$1"; printf y > a.txt; rm one/c.txt; printf y > one/two/extra.txt"#, &[&there]);
    let live = facts(&a.docs);
    let out = a.restore_swapping_at_written(
        &["backups", "restore", &a.slug, "--target", t, "--mode", "replace", "--quiet"],
        &target,
    );
    a.assert_nothing_written_outside("under --target", &out);
    assert_eq!(facts(&a.docs), live, "a restore under --target changed the live folder");
}

#[test]
fn root_restoring_one_path_writes_nothing_through_folders_swapped_for_symlinks() {
    let Some(a) = Attack::new() else { return };
    // d2.txt was removed after the backup: the restore creates it, three folders down.
    let d2 = a.docs.join("one/two/d2.txt");
    let out = a.restore_swapping_at_written(
        &["backups", "restore", &a.slug, "--path", d2.to_str().unwrap(), "--no-safety-backup", "--quiet"],
        &a.docs,
    );
    a.assert_nothing_written_outside("--path", &out);
}

#[test]
fn root_restoring_a_backup_file_writes_nothing_through_folders_swapped_for_symlinks() {
    let Some(a) = Attack::new() else { return };
    let file = a.sb.dir.path().join("docs.tar");
    a.sb.ok(&["backups", "export", &a.slug, "-o", file.to_str().unwrap(), "--quiet"]);
    let out = a.restore_swapping_at_written(
        &["backups", "restore", "--from-file", file.to_str().unwrap(), "--mode", "replace", "--quiet"],
        &a.docs,
    );
    a.assert_nothing_written_outside("--from-file", &out);
}

/// Swaps, as long as the stop file is absent (and a bounded number of times), every real
/// folder below TOP for a symlink to TARGET and back, deepest first; prints how many rounds.
const RACER: &str = r#"
import os, sys
stop, top, target, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
done = 0
for done in range(1, rounds + 1):
    if os.path.exists(stop):
        break
    dirs = []
    for parent, names, _ in os.walk(top):
        dirs += [os.path.join(parent, n) for n in names if not n.endswith(".x")]
    dirs = [d for d in dirs if not os.path.islink(d)]
    dirs.sort(key=lambda d: -d.count("/"))
    swapped = []
    for d in dirs:
        try:
            os.rename(d, d + ".x")
            os.symlink(target, d)
            swapped.append(d)
        except OSError:
            pass
    for d in reversed(swapped):
        try:
            if os.path.islink(d):
                os.unlink(d)
            os.rename(d + ".x", d)
        except OSError:
            pass
    if done == 1:
        print("racing", flush=True)
print(done, flush=True)
"#;

/// The user's racing process; stopped (and waited for) when dropped, before she is removed.
struct Racer {
    child: Child,
    stop: PathBuf,
}

impl Racer {
    fn start(user: &User, top: &Path, target: &Path) -> Racer {
        let stop = user.home.join(".stop-racing");
        let mut child = Command::new("runuser")
            .args(["-u", &user.name, "--", "python3", "-c", RACER])
            .arg(&stop)
            .arg(top)
            .arg(target)
            .arg("200000")
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut first).unwrap();
        assert_eq!(first.trim(), "racing", "the racer started");
        Racer { child, stop }
    }

    /// Stops it; returns how many rounds it swapped.
    fn stop(mut self) -> String {
        fs::write(&self.stop, "").unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(self.child.stdout.as_mut().unwrap(), &mut rest).unwrap();
        rest.trim().to_string()
    }
}

impl Drop for Racer {
    fn drop(&mut self) {
        let _ = fs::write(&self.stop, "");
        let _ = self.child.wait();
    }
}

#[test]
fn root_restoring_while_the_user_swaps_folders_back_and_forth_writes_nothing_outside() {
    let Some(a) = Attack::new() else { return };
    // More files, so that each restore lasts long enough to meet the swaps.
    let mut script = String::from("set -e");
    for d in ["docs", "docs/one", "docs/one/two", "docs/three"] {
        script.push_str(&format!("; for i in $(seq 1 40); do printf x > {d}/many-$i.bin; done"));
    }
    a.user.sh(&script, &[]);
    let first = a.sb.backup(&[])["slug"].as_str().unwrap().to_string();
    // Every file changed, a file removed and one added in each folder: restoring one backup
    // over the other replaces, creates and deletes in every folder.
    a.user.sh(
        "set -e; cd docs; for d in . one one/two three; do for f in $d/many-*.bin; do printf y > $f; done; \
         rm $d/many-1.bin; printf z > $d/later-race.txt; done",
        &[],
    );
    let second = a.sb.backup(&[])["slug"].as_str().unwrap().to_string();

    // Her home, so that whatever a restore makes beside her folders is swapped too.
    let racer = Racer::start(&a.user, &a.user.home, &a.root_only);
    for (i, slug) in [&first, &second].repeat(3).into_iter().enumerate() {
        let out = a.sb.run(&["backups", "restore", slug, "--mode", "replace", "--no-safety-backup", "--quiet"]);
        a.assert_nothing_written_outside(&format!("restore {} of 6, while she swaps her folders", i + 1), &out);
    }
    let rounds = racer.stop();
    assert_ne!(rounds, "1", "she swapped her folders while the restores ran");
}

// ---------------------------------------------------------------------------------------------
// Hostile review: the restore's own root-owned folders

/// A root-owned folder the restore makes (0700 until its own metadata is set, last) counts as
/// one "only root can change": a symlink in it is followed. The symlinks in it come from the
/// backup, i.e. from her, and she can rename such folders where they sit in a folder of hers.
/// Her backup holds `A/sub`, a symlink to a root-only folder, and `B/sub`, a folder of hers
/// (0777); both gone before the restore, so each is made under a temporary name beside. At
/// `written` she swaps the two temporary names: `B` gets A's content, and the metadata of
/// `B/sub` is set on what `B/sub` leads to: the root-only folder, chowned to her and 0777.
#[test]
fn root_sets_no_folder_metadata_through_a_symlink_of_the_backup_in_a_folder_she_swapped() {
    let Some(a) = Attack::new() else { return };
    let (user, sb) = (&a.user, &a.sb);
    user.sh(r#"set -e; cd docs; mkdir -p A B/sub; chmod 0777 B/sub; ln -s "$1" A/sub"#, &[&a.root_only]);
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    user.sh("rm -rf docs/A docs/B", &[]);
    let mut cmd = sb.command();
    cmd.args(["backups", "restore", &slug, "--no-safety-backup", "--quiet"]);
    let mut run = Paused::start(sb, cmd, &format!("commit of {slug}"));
    run.wait();
    // The two folders written beside, swapped (which is which does not matter).
    let swapped = user.sh(
        r#"set -e; cd docs; set -- $(ls -A | grep '^\.lifeboat-'); [ $# -eq 2 ] || { echo "temps: $*"; exit 1; }
           mv "$1" swap.tmp; mv "$2" "$1"; mv swap.tmp "$2"; echo "$1 $2""#,
        &[],
    );
    assert!(!swapped.trim().is_empty());
    let out = run.finish();
    a.assert_nothing_written_outside("temporary folders swapped before the commit", &out);
}

/// The times of the folder a unit root is in are put back by path after the commit: the path
/// is followed through whatever stands at it then. The unit is `~/docs/one/two`; at `written`
/// she swaps `~/docs` for a symlink to a root-only folder that holds a folder `one`, whose
/// times root then sets to those `~/docs/one` had (which she chooses).
#[test]
fn root_sets_no_times_through_a_symlink_put_in_place_of_the_folders_above_a_unit_root() {
    let Some(a) = Attack::new() else { return };
    let two = a.docs.join("one/two");
    let sb = Sandbox::new(&format!("[unit.two]\npaths = [\"{}\"]\n", two.display()));
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    a.user.sh("set -e; printf changed > docs/one/two/d.txt; touch -d 2001-01-01 docs/one", &[]);
    let mut cmd = sb.command();
    cmd.args(["backups", "restore", &slug, "--no-safety-backup", "--quiet"]);
    let mut run = Paused::start(&sb, cmd, &format!("commit of {slug}"));
    run.wait();
    a.user.sh(r#"set -e; mv docs docs.x; ln -s "$1" docs"#, &[&a.root_only]);
    let out = run.finish();
    a.assert_nothing_written_outside("~/docs swapped for a symlink above the unit root", &out);
}

/// The metadata of a folder the restore made is set on whatever folder its path leads to after
/// the commit. In a folder of hers, a folder of root's (`~/docs/roots`, 0700, as `sudo` leaves
/// in a home) can be renamed by her: at `written` she renames it to the temporary name of the
/// new folder `~/docs/B`, which the commit renames to `~/docs/B`, and root gives it B's owner
/// (her) and mode.
#[test]
fn root_sets_no_folder_metadata_on_a_folder_of_roots_she_renamed_to_a_temporary_name() {
    let Some(a) = Attack::new() else { return };
    let (user, sb) = (&a.user, &a.sb);
    user.sh("set -e; mkdir -p docs/B; chmod 0755 docs/B", &[]);
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    user.sh("rm -rf docs/B", &[]);
    let roots = a.docs.join("roots");
    fs::create_dir(&roots).unwrap();
    fs::write(roots.join("secret"), "root's").unwrap();
    fs::set_permissions(&roots, fs::Permissions::from_mode(0o700)).unwrap();
    let mut cmd = sb.command();
    cmd.args(["backups", "restore", &slug, "--no-safety-backup", "--quiet"]);
    let mut run = Paused::start(sb, cmd, &format!("commit of {slug}"));
    run.wait();
    user.sh(
        r#"set -e; cd docs; set -- $(ls -A | grep '^\.lifeboat-'); [ $# -eq 1 ] || { echo "temps: $*"; exit 1; }
           mv "$1" B.hers; mv roots "$1""#,
        &[],
    );
    let out = run.finish();
    // Wherever it went, root's folder is still root's, 0700.
    let found: Vec<PathBuf> =
        walkdir(&a.docs).into_iter().filter(|p| p.join("secret").exists() && p.join("secret").is_file()).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    let m = fs::symlink_metadata(&found[0]).unwrap();
    assert_eq!(
        (m.uid(), m.mode() & 0o7777),
        (0, 0o700),
        "root's folder (now at {}) took the metadata of the folder restored; exit {:?}, stderr:\n{}",
        found[0].display(),
        out.status.code(),
        stderr(&out)
    );
}

/// A new folder whose place is taken while the restore runs is kept beside as
/// `NAME.restored-SLUG`: that copy gets the backup's folder metadata (it was made 0700), and
/// the folder made meanwhile keeps its own.
#[test]
fn a_folder_kept_beside_gets_the_backups_metadata_and_the_one_made_meanwhile_keeps_its_own() {
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\n");
    let notes = sb.home.join("notes");
    fs::create_dir_all(notes.join("new/inner")).unwrap();
    fs::write(notes.join("new/inner/f.txt"), "f").unwrap();
    fs::set_permissions(notes.join("new/inner"), fs::Permissions::from_mode(0o751)).unwrap();
    fs::set_permissions(notes.join("new"), fs::Permissions::from_mode(0o755)).unwrap();
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    fs::remove_dir_all(notes.join("new")).unwrap();
    let mut cmd = sb.command();
    cmd.args(["backups", "restore", &slug, "--quiet"]);
    let mut run = Paused::start(&sb, cmd, &format!("restore {slug}"));
    run.wait();
    fs::create_dir(notes.join("new")).unwrap();
    fs::set_permissions(notes.join("new"), fs::Permissions::from_mode(0o711)).unwrap();
    let out = run.finish();
    let mode = |p: &Path| fs::symlink_metadata(p).map(|m| m.mode() & 0o7777).unwrap_or(0);
    let aside = notes.join(format!("new.restored-{slug}"));
    assert_eq!(read(&aside.join("inner/f.txt")), "f", "stderr:\n{}", stderr(&out));
    assert_eq!(
        (mode(&notes.join("new")), mode(&aside), mode(&aside.join("inner"))),
        (0o711, 0o755, 0o751),
        "stderr:\n{}",
        stderr(&out)
    );
}

/// Where a file of root's with `text` is now under `top` (she may have moved it): every one.
fn files_holding(top: &Path, text: &str) -> Vec<PathBuf> {
    walkdir(top).into_iter().filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file()) && read(p) == text).collect()
}

/// A symlink's or FIFO's owner, mode and times were set by name, through its temporary name in
/// a folder of hers. Her backup holds `~/docs/link` (a symlink) and `~/docs/fifo` (0666), gone
/// before the restore, so each is made under a temporary name beside. Once they are made
/// (the pause `links and special files of SLUG made`), she renames a file of root's that sits
/// in her folder (0600, as `sudo` leaves) over each temporary name that is not a folder: root
/// then gave it her ownership and the FIFO's mode 0666.
#[test]
fn root_sets_no_symlink_or_fifo_metadata_on_a_file_of_roots_she_renamed_onto_its_temporary_name() {
    let Some(a) = Attack::new() else { return };
    let (user, sb) = (&a.user, &a.sb);
    user.sh("set -e; cd docs; ln -s somewhere link; mkfifo fifo; chmod 0666 fifo", &[]);
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    user.sh("rm docs/link docs/fifo", &[]);
    let texts: Vec<String> = (1..=2).map(|n| format!("root's own file {n}")).collect();
    for (n, text) in texts.iter().enumerate() {
        let p = a.docs.join(format!("rootfile{}", n + 1));
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut cmd = sb.command();
    cmd.args(["backups", "restore", &slug, "--no-safety-backup", "--quiet"]);
    let mut run = Paused::start(sb, cmd, &format!("links and special files of {slug} made"));
    run.wait();
    let moved = user.sh(
        r#"cd docs; n=0; for t in .lifeboat-*; do { [ -L "$t" ] || [ -p "$t" ] || [ -f "$t" ]; } || continue;
           n=$((n+1)); mv -fT "rootfile$n" "$t" || exit 1; done; echo $n"#,
        &[],
    );
    let out = run.finish();
    let uid = fs::metadata(&user.home).unwrap().uid();
    for text in &texts {
        let found = files_holding(&a.docs, text);
        assert_eq!(found.len(), 1, "{text}: {found:?}");
        let m = fs::symlink_metadata(&found[0]).unwrap();
        assert_eq!(
            (m.uid(), m.mode() & 0o7777),
            (0, 0o600),
            "root's file (now at {}, {} moved) took the metadata of an entry restored; exit {:?}, stderr:\n{}",
            found[0].display(),
            moved.trim(),
            out.status.code(),
            stderr(&out)
        );
    }
    // What the backup holds is restored, with its metadata.
    assert!(out.status.success(), "exit {:?}, stderr:\n{}", out.status.code(), stderr(&out));
    let link = fs::symlink_metadata(a.docs.join("link")).unwrap();
    assert!(link.file_type().is_symlink());
    assert_eq!(fs::read_link(a.docs.join("link")).unwrap(), Path::new("somewhere"));
    assert_eq!(link.uid(), uid, "the symlink's owner");
    let fifo = fs::symlink_metadata(a.docs.join("fifo")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo.file_type()));
    assert_eq!((fifo.uid(), fifo.mode() & 0o7777), (uid, 0o666), "the FIFO's owner and mode");
}

/// Leftovers of a killed restore (its temporary names) were removed by name, whole trees. The
/// restore of her backup makes `~/docs/B` and `~/docs/C` beside (both gone) and is killed at
/// `commit of SLUG`. She moves one temporary folder away and puts at its name a folder of hers
/// that holds a folder of root's (0755, with root's file): she cannot empty it, and the next
/// restore, cleaning the leftovers, must not either. The other leftover is removed.
#[test]
fn cleaning_a_killed_restores_leftovers_removes_nothing_she_put_at_a_temporary_name() {
    let Some(a) = Attack::new() else { return };
    let (user, sb) = (&a.user, &a.sb);
    user.sh("set -e; mkdir -p docs/B/inner docs/C; printf b > docs/B/inner/b.txt", &[]);
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    user.sh("set -e; rm -rf docs/B docs/C; mkdir docs/mine", &[]);
    let roots = a.docs.join("mine/roots");
    fs::create_dir(&roots).unwrap();
    fs::set_permissions(&roots, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(roots.join("secret"), "root's").unwrap();
    let mut cmd = sb.command();
    cmd.args(["backups", "restore", &slug, "--no-safety-backup", "--quiet"]);
    let mut run = Paused::start(sb, cmd, &format!("commit of {slug}"));
    run.wait();
    // Killed there: its journal says it was writing beside, and the next restore cleans up.
    drop(run);
    let left = user.sh(
        r#"set -e; cd docs; set -- $(ls -A | grep '^\.lifeboat-'); [ $# -eq 2 ] || { echo "temps: $*"; exit 1; }
           mv "$1" ours.moved; mv mine "$1"; echo "$2""#,
        &[],
    );
    let out = sb.run(&["backups", "restore", &slug, "--no-safety-backup", "--quiet"]);
    assert_eq!(
        read(&roots_at(&a.docs).join("secret")),
        "root's",
        "root's file in her folder was removed; exit {:?}, stderr:\n{}",
        out.status.code(),
        stderr(&out)
    );
    assert!(!a.docs.join(left.trim()).exists(), "the other leftover, {}, is removed", left.trim());
    assert!(out.status.success(), "exit {:?}, stderr:\n{}", out.status.code(), stderr(&out));
    assert_eq!(read(&a.docs.join("B/inner/b.txt")), "b");
}

/// The folder `roots` of root's wherever under `top` it is now.
fn roots_at(top: &Path) -> PathBuf {
    walkdir(top)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "roots"))
        .unwrap_or_else(|| top.join("<no folder roots>"))
}

/// A folder that stays (`~/docs/three`, in the backup and on the device) was opened by path when
/// the restore began writing, whatever folder stood there then: the plan's look at it was not
/// checked. At `restore SLUG` (planned, nothing written) she renames it away and a folder of
/// root's that sits in her folder (`~/docs/roots`, 0700, as `sudo` leaves) to its name: root
/// wrote the backup's files of `three` into it and gave it her ownership and `three`'s mode.
#[test]
fn root_writes_nothing_into_and_sets_no_metadata_on_a_folder_of_roots_she_renamed_onto_a_folder_that_stays() {
    let Some(a) = Attack::new() else { return };
    let out = a.rename_roots_folder_onto(&a.sb, &a.slug, "three");
    a.assert_roots_folder_untouched(&out, "~/docs/three");
}

/// A folder of root's in her folder (`~/docs/roots`, 0700, holding `secret`, as `sudo` leaves
/// one), renamed onto `~/docs/NAME` (hers moved to `NAME.hers`) at the pause `restore SLUG`.
impl Attack {
    fn rename_roots_folder_onto(&self, sb: &Sandbox, slug: &str, name: &str) -> Output {
        let roots = self.docs.join("roots");
        fs::create_dir(&roots).unwrap();
        fs::write(roots.join("secret"), "root's").unwrap();
        fs::set_permissions(&roots, fs::Permissions::from_mode(0o700)).unwrap();
        let mut cmd = sb.command();
        cmd.args(["backups", "restore", slug, "--no-safety-backup", "--quiet"]);
        let mut run = Paused::start(sb, cmd, &format!("restore {slug}"));
        run.wait();
        self.user.sh(r#"set -e; cd docs; mv "$1" "$1.hers"; mv roots "$1""#, &[Path::new(name)]);
        run.finish()
    }

    /// Root's folder, wherever it is now, is still root's, 0700, holding only its secret, and
    /// the restore that could not restore `what` did not succeed.
    fn assert_roots_folder_untouched(&self, out: &Output, what: &str) {
        let found: Vec<PathBuf> = walkdir(&self.docs).into_iter().filter(|p| p.join("secret").is_file()).collect();
        assert_eq!(found.len(), 1, "{found:?}");
        let m = fs::symlink_metadata(&found[0]).unwrap();
        let names: Vec<String> =
            fs::read_dir(&found[0]).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(
            (m.uid(), m.mode() & 0o7777, names),
            (0, 0o700, vec!["secret".to_string()]),
            "root's folder (now at {}) was written into or took the metadata of the folder restored; exit {:?}, stderr:\n{}",
            found[0].display(),
            out.status.code(),
            stderr(out)
        );
        assert_ne!(out.status.code(), Some(0), "a restore that did not restore {what} succeeded");
    }
}

/// The folder a unit root goes in (`~/docs/one` for the unit `~/docs/one/two`) is no entry of
/// the backup: it was opened by path when the restore began writing, whatever folder stood
/// there then. `~/docs/one/two` is gone before the restore; at `restore SLUG` she renames
/// `~/docs/one` away and a folder of root's in her folder (0700) to its name: root made `two`
/// in it.
#[test]
fn root_makes_nothing_in_a_folder_of_roots_she_renamed_onto_the_folder_a_unit_root_goes_in() {
    let Some(a) = Attack::new() else { return };
    let two = a.docs.join("one/two");
    let sb = Sandbox::new(&format!("[unit.two]\npaths = [\"{}\"]\n", two.display()));
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    a.user.sh("rm -rf docs/one/two", &[]);
    let out = a.rename_roots_folder_onto(&sb, &slug, "one");
    a.assert_roots_folder_untouched(&out, "~/docs/one/two");
}

#[test]
fn root_restores_no_setuid_or_setgid_file_under_a_folder_another_user_can_change() {
    if !is_root() {
        eprintln!("skipped: creating a user needs root");
        return;
    }
    let user = User::create("lbsetid");
    let sb = Sandbox::new("");
    // Backed up from folders only root can change, as /usr is (the sandbox's /tmp is not).
    let home_of_tools = tempfile::tempdir_in("/root").unwrap();
    fs::set_permissions(home_of_tools.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let src = home_of_tools.path().join("tools");
    fs::create_dir(&src).unwrap();
    for (name, mode) in [("runs-as-root", 0o4755), ("runs-as-group", 0o2755), ("plain", 0o755)] {
        fs::write(src.join(name), format!("#!/bin/sh\necho {name}\n")).unwrap();
        fs::set_permissions(src.join(name), fs::Permissions::from_mode(mode)).unwrap();
    }
    fs::write(&sb.config, format!("[unit.tools]\npaths = [\"{}\"]\n", src.display())).unwrap();
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o7777;

    // Into her home: the files come back, their set-id bits do not, and the restore says so.
    user.sh("mkdir restored", &[]);
    let hers = user.home.join("restored");
    let out = sb.run(&["backups", "restore", &slug, "--target", hers.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "restored with warnings: {err}");
    assert!(err.contains("setuid/setgid left off"), "{err}");
    let there = rerooted(&hers, &src);
    assert_eq!(mode(&there.join("runs-as-root")), 0o755, "no setuid program in her folder");
    assert_eq!(mode(&there.join("runs-as-group")), 0o755, "no setgid program in her folder");
    assert_eq!(mode(&there.join("plain")), 0o755);
    assert_eq!(read(&there.join("runs-as-root")), "#!/bin/sh\necho runs-as-root\n");

    // Under folders only root can change (all the way from /), they are kept.
    let roots = tempfile::tempdir_in("/root").unwrap();
    fs::set_permissions(roots.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let out = sb.run(&["backups", "restore", &slug, "--target", roots.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let there = rerooted(roots.path(), &src);
    assert_eq!(mode(&there.join("runs-as-root")), 0o4755);
    assert_eq!(mode(&there.join("runs-as-group")), 0o2755);
}
