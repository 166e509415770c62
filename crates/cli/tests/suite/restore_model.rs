//! A model test of the restore executor on a live tree, through the binary. Each case draws,
//! from one seed: a tree (folders, files, symlinks), a change to it after the backup, a mode,
//! and what happens while the restore runs:
//!
//! - nothing: every path the backup holds is the backup's entry afterwards (replace: and
//!   nothing else is there; merge: what the backup lacks stays as it was);
//! - a `kill -9` at a random crash point, then `--resume` or `--undo`: resumed, the tree is as
//!   after an uninterrupted restore; undone, it is exactly the tree of before;
//! - the user, at the pause point before the commit, edits files, creates one and swaps a
//!   folder for a symlink to a folder outside: each of her changes is as she left it, nothing
//!   is written into the outside folder, and every other path the backup holds is restored.
//!
//! Every case: no temporary name is left anywhere. `LIFEBOAT_RESTORE_MODEL_CASES=N` sets the
//! number of cases (12 by default), `LIFEBOAT_RESTORE_MODEL_SEED=S` the first seed (random by
//! default); a failure names the seed that repeats it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
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
}

fn set_mtime(path: &Path, secs: i64) {
    let t = nix::sys::time::TimeSpec::new(secs, 0);
    nix::sys::stat::utimensat(None, path, &t, &t, nix::sys::stat::UtimensatFlags::NoFollowSymlink).unwrap();
}

fn fill(rng: &mut Rng, dir: &Path, depth: u32) {
    fs::create_dir_all(dir).unwrap();
    for i in 0..1 + rng.below(5) {
        let f = dir.join(format!("f{i}"));
        fs::write(&f, random_bytes(rng.below(20_000) as usize, rng.next())).unwrap();
        set_mtime(&f, 1_600_000_000 + rng.below(10_000) as i64);
    }
    if rng.chance(30) {
        std::os::unix::fs::symlink("f0", dir.join("link")).unwrap();
    }
    if depth < 3 {
        for i in 0..rng.below(3) {
            fill(rng, &dir.join(format!("d{i}")), depth + 1);
        }
    }
}

/// A change after the backup: edits, removals, additions, a file become a folder.
fn change(rng: &mut Rng, root: &Path) {
    for p in walkdir(root) {
        let Ok(m) = fs::symlink_metadata(&p) else { continue };
        match rng.below(12) {
            0 if m.is_file() => fs::write(&p, random_bytes(100 + rng.below(5000) as usize, rng.next())).unwrap(),
            1 if m.is_file() => fs::remove_file(&p).unwrap(),
            2 if m.is_dir() => fs::write(p.join("added"), b"added after the backup").unwrap(),
            3 if m.is_file() => {
                fs::remove_file(&p).unwrap();
                fs::create_dir(&p).unwrap();
                fs::write(p.join("inside"), b"a file became a folder").unwrap();
            }
            _ => {}
        }
    }
}

/// The facts of every entry under `root`, keyed by path below it.
type Tree = BTreeMap<PathBuf, EntryFacts>;

fn restored_as(now: &Tree, backup: &Tree, before: &Tree, mode: &str, ctx: &str) {
    for (p, f) in backup {
        assert_eq!(now.get(p), Some(f), "{ctx}: {} is not the backup's", p.display());
    }
    for (p, f) in now.iter().filter(|(p, _)| !backup.contains_key(*p)) {
        match mode {
            "replace" => panic!("{ctx}: replace left {}, which the backup does not hold", p.display()),
            _ => {
                // Merge keeps what the backup lacks, as it was (inside a folder the backup
                // holds as something else, it went with that folder).
                assert_eq!(before.get(p), Some(f), "{ctx}: merge changed {}", p.display())
            }
        }
    }
}

fn no_leftovers(sb: &Sandbox, ctx: &str) {
    let left = restore_leftovers(&sb.home);
    assert!(left.is_empty(), "{ctx}: left behind: {left:?}");
}

/// Waits until the restore stops at its pause point; one that ends first fails the case with
/// what it said.
fn paused_or_ended(pause: &Path, child: &mut std::process::Child, ctx: &str) {
    let fifo = pause.join("paused");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(fs::read_to_string(fifo));
    });
    loop {
        if rx.recv_timeout(std::time::Duration::from_millis(100)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            // Unblock the reader thread.
            let _ = fs::OpenOptions::new().write(true).open(pause.join("paused"));
            panic!("{ctx}: the restore ended ({status}) before its commit: {err}");
        }
    }
}

fn run_case(seed: u64) {
    let mut rng = Rng(seed);
    let sb = Sandbox::new("[unit.m]\npaths = [\"~/m\"]\n");
    let m = sb.home.join("m");
    fill(&mut rng, &m, 0);
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let reference = sb.dir.path().join("reference");
    sb.ok(&["backups", "restore", &slug, "--target", reference.to_str().unwrap(), "--quiet"]);
    let backup = facts(&rerooted(&reference, &m));
    change(&mut rng, &m);
    let before = facts(&m);
    let mode = if rng.chance(50) { "merge" } else { "replace" };
    let args = ["backups", "restore", slug.as_str(), "--mode", mode, "--quiet"];
    match rng.below(3) {
        0 => {
            let ctx = format!("seed {seed}, {mode}, uninterrupted");
            let out = sb.run(&args);
            assert!(out.status.success(), "{ctx}: {}", stderr(&out));
            restored_as(&facts(&m), &backup, &before, mode, &ctx);
            no_leftovers(&sb, &ctx);
        }
        1 => {
            let at = 1 + rng.below(60);
            let undo = rng.chance(50);
            let ctx = format!(
                "seed {seed}, {mode}, killed at crash point {at}, then {}",
                if undo { "--undo" } else { "--resume" }
            );
            let out = sb.command().args(args).env("LIFEBOAT_CRASH_AT", at.to_string()).output().unwrap();
            if out.status.success() {
                restored_as(&facts(&m), &backup, &before, mode, &format!("{ctx} (it ended before)"));
                return;
            }
            assert_ne!(out.status.code(), Some(101), "{ctx}: {}", stderr(&out));
            // Any command says so while a restore is half done.
            let noted = stderr(&sb.run(&["backups", "list"])).contains("stopped while putting files in place");
            let mut then = sb.run(&["backups", "restore", if undo { "--undo" } else { "--resume" }, "--quiet"]);
            let undo = undo && then.status.code() != Some(6);
            if !undo && then.status.code() == Some(6) {
                // Nothing was at risk (the restore only created), so it made no safety backup
                // and cannot be undone: it says so, and --resume finishes it.
                assert!(stderr(&then).contains("cannot be undone"), "{ctx}: {}", stderr(&then));
                then = sb.run(&["backups", "restore", "--resume", "--quiet"]);
            }
            // Exit 2: nothing was being put in place. Killed while writing beside, or in the
            // safety backup, it changed nothing (its leftovers are gone now); killed after its
            // commit (releasing its lock), it is done.
            let nothing_interrupted = then.status.code() == Some(2);
            assert!(then.status.success() || nothing_interrupted, "{ctx}: {}", stderr(&then));
            assert_eq!(noted, !nothing_interrupted, "{ctx}: `backups list` said a restore was half done: {noted}");
            if nothing_interrupted {
                let now = facts(&m);
                if now != before {
                    restored_as(&now, &backup, &before, mode, &format!("{ctx}: neither as before nor restored"));
                }
            } else if undo {
                assert_eq!(facts(&m), before, "{ctx}: the undo did not give back the tree of before");
            } else {
                restored_as(&facts(&m), &backup, &before, mode, &ctx);
            }
            no_leftovers(&sb, &ctx);
        }
        _ => {
            let ctx = format!("seed {seed}, {mode}, the user working at the commit");
            let outside = sb.dir.path().join("outside");
            fs::create_dir_all(&outside).unwrap();
            let pause = pause_dir(&sb);
            let mut child = sb
                .command()
                .args(args)
                .env("LIFEBOAT_PAUSE_DIR", &pause)
                .env("LIFEBOAT_PAUSE_AT", format!("commit of {slug}"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            paused_or_ended(&pause, &mut child, &ctx);
            // Her changes: edited files, a new file, a folder swapped for a symlink out.
            let ours = |p: &PathBuf| p.iter().any(|c| is_restore_leftover(&c.to_string_lossy()));
            let entries: Vec<PathBuf> = walkdir(&m).into_iter().filter(|p| !ours(p)).collect();
            let mut hers: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
            for p in entries.iter().filter(|p| p.is_file() && !p.is_symlink()) {
                if rng.chance(25) {
                    let content = format!("saved by the user ({})", rng.next()).into_bytes();
                    fs::write(p, &content).unwrap();
                    hers.insert(p.clone(), content);
                }
            }
            let new_file = m.join(format!("new-{}", rng.below(1000)));
            fs::write(&new_file, b"created while restoring").unwrap();
            hers.insert(new_file, b"created while restoring".to_vec());
            let dirs: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir() && !p.is_symlink()).collect();
            let swapped =
                (!dirs.is_empty() && rng.chance(60)).then(|| dirs[rng.below(dirs.len() as u64) as usize].clone());
            if let Some(d) = &swapped {
                hers.retain(|p, _| !p.starts_with(d));
                fs::rename(d, d.with_extension("moved")).unwrap();
                std::os::unix::fs::symlink(&outside, d).unwrap();
            }
            resume(&pause);
            let out = child.wait_with_output().unwrap();
            assert_ne!(out.status.code(), Some(101), "{ctx}: {}", stderr(&out));
            assert!(walkdir(&outside).is_empty(), "{ctx}: written outside: {:?}", walkdir(&outside));
            for (p, content) in &hers {
                assert_eq!(fs::read(p).ok().as_ref(), Some(content), "{ctx}: her {} was not kept", p.display());
            }
            let now = facts(&m);
            let hers_rel: Vec<PathBuf> = hers.keys().map(|p| p.strip_prefix(&m).unwrap().to_path_buf()).collect();
            let swapped_rel = swapped.as_ref().map(|d| d.strip_prefix(&m).unwrap().to_path_buf());
            for (p, f) in &backup {
                // Her changes, and the folders that hold them (a folder to be replaced by a
                // file keeps what she saved in it, so it stays a folder).
                let touched =
                    hers_rel.iter().any(|h| h.starts_with(p)) || swapped_rel.as_ref().is_some_and(|d| p.starts_with(d));
                if !touched {
                    assert_eq!(now.get(p), Some(f), "{ctx}: {} is not the backup's", p.display());
                }
            }
            no_leftovers(&sb, &ctx);
        }
    }
}

#[test]
fn restores_killed_resumed_undone_and_raced_by_the_user_keep_their_invariants() {
    let cases: u64 = std::env::var("LIFEBOAT_RESTORE_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let first: u64 =
        std::env::var("LIFEBOAT_RESTORE_MODEL_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        });
    eprintln!("restore model: {cases} cases from seed {first} (LIFEBOAT_RESTORE_MODEL_SEED={first} repeats them)");
    for seed in first..first + cases {
        let outcome = std::panic::catch_unwind(|| run_case(seed));
        if let Err(e) = outcome {
            let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
            panic!(
                "case {seed} failed (LIFEBOAT_RESTORE_MODEL_SEED={seed} LIFEBOAT_RESTORE_MODEL_CASES=1): {}",
                msg.unwrap_or_default()
            );
        }
    }
}
