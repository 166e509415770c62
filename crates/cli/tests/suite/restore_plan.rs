//! Restores that never lose data: a damaged backup changes nothing on the device, a safety
//! backup never leans on a damaged stored copy, a prune waits for a running restore, nested
//! units come back whole, the dry run shows deletions, and a restore that cannot fit is
//! refused before it writes.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::*;

/// Every object of a repository, by path relative to it.
fn objects(repo: &Path) -> BTreeSet<PathBuf> {
    walkdir(repo).into_iter().filter(|p| p.is_file()).map(|p| p.strip_prefix(repo).unwrap().to_path_buf()).collect()
}

/// The largest pack that appeared between two listings: the data pack of what was backed up.
fn new_data_pack(repo: &Path, before: &BTreeSet<PathBuf>) -> PathBuf {
    objects(repo)
        .difference(before)
        .filter(|p| p.starts_with("data"))
        .map(|p| repo.join(p))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("a new data pack")
}

fn flip_byte_in_the_middle(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

fn leftovers(dir: &Path) -> Vec<PathBuf> {
    restore_leftovers(dir)
}

#[test]
fn a_damaged_backup_restored_in_place_leaves_every_live_file_as_it_was() {
    let sb = Sandbox::new("[unit.bin]\npaths = [\"~/bin\"]\n");
    let bin = sb.home.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("rand1.bin"), random_bytes(10_000, 1)).unwrap();
    std::fs::write(bin.join("rand2.bin"), random_bytes(3 << 20, 2)).unwrap();
    let before_backup = objects(&sb.repo);
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let pack = new_data_pack(&sb.repo, &before_backup);
    let good_pack = std::fs::read(&pack).unwrap();
    let tree_pack = objects(&sb.repo)
        .difference(&before_backup)
        .filter(|p| p.starts_with("data"))
        .map(|p| sb.repo.join(p))
        .min_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let good_tree_pack = std::fs::read(&tree_pack).unwrap();

    // The device moves on: both files edited (so the restore needs their stored data), one
    // file added that the backup lacks.
    std::fs::write(bin.join("rand1.bin"), random_bytes(10_000, 11)).unwrap();
    std::fs::write(bin.join("rand2.bin"), random_bytes(3 << 20, 12)).unwrap();
    std::fs::write(bin.join("later.txt"), "written after the backup").unwrap();
    let before = facts(&bin);

    for damage in ["flip", "truncate", "tree"] {
        match damage {
            "flip" => flip_byte_in_the_middle(&pack),
            "truncate" => std::fs::write(&pack, &good_pack[..good_pack.len() / 2]).unwrap(),
            _ => {
                // The folder listing is damaged, the data intact: replace must not take the
                // folder for empty.
                std::fs::write(&pack, &good_pack).unwrap();
                flip_byte_in_the_middle(&tree_pack);
            }
        }
        for mode in ["merge", "replace"] {
            let out = sb.run(&["backups", "restore", &slug, "--unit", "bin", "--mode", mode, "--quiet"]);
            let err = stderr(&out);
            assert!(!out.status.success(), "{damage}, {mode}: the damaged restore succeeded: {err}");
            assert_ne!(out.status.code(), Some(101), "{damage}, {mode}: a panic: {err}");
            assert!(err.contains("nothing was changed"), "{damage}, {mode}: {err}");
            assert_eq!(facts(&bin), before, "{damage}, {mode}: a live file changed");
            assert!(leftovers(&sb.home).is_empty(), "{damage}, {mode}: {:?}", leftovers(&sb.home));
        }
    }
    // Repaired, the same restore goes through.
    std::fs::write(&pack, &good_pack).unwrap();
    std::fs::write(&tree_pack, &good_tree_pack).unwrap();
    sb.ok(&["backups", "restore", &slug, "--unit", "bin", "--mode", "replace", "--quiet"]);
    assert_eq!(std::fs::read(bin.join("rand2.bin")).unwrap(), random_bytes(3 << 20, 2));
    assert!(!bin.join("later.txt").exists());
}

#[test]
fn a_safety_backup_stores_again_what_it_finds_damaged_so_its_undo_works() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    let docs = sb.home.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("keep.txt"), "kept in every backup").unwrap();
    sb.backup(&[]);
    // y.bin comes in one backup and is gone in the next; its data sits in a pack of its own.
    let y = random_bytes(200_000, 7);
    std::fs::write(docs.join("y.bin"), &y).unwrap();
    let before_y = objects(&sb.repo);
    sb.backup(&[]);
    let y_pack = new_data_pack(&sb.repo, &before_y);
    std::fs::remove_file(docs.join("y.bin")).unwrap();
    let without_y = sb.backup(&[])["slug"].as_str().unwrap().to_string();

    // y.bin is back on the device, and the stored copy of its data is damaged.
    std::fs::write(docs.join("y.bin"), &y).unwrap();
    flip_byte_in_the_middle(&y_pack);
    let before = facts(&docs);

    // Replace deletes y.bin; the safety backup must hold it from the live file.
    let out = sb.ok(&["backups", "restore", &without_y, "--mode", "replace", "--quiet"]);
    assert!(!docs.join("y.bin").exists());
    let safety = out.split("safety backup ").nth(1).and_then(|r| r.split(';').next()).expect(&out).to_string();
    sb.ok(&["backups", "restore", &safety, "--no-safety-backup", "--quiet"]);
    assert_eq!(std::fs::read(docs.join("y.bin")).unwrap(), y, "the undo brought the data back");
    assert_eq!(facts(&docs), before, "the undo gives back the tree of before");
}

/// Waits (in a thread, so a restore that never pauses fails the test instead of hanging it)
/// for the paused process to say where it is.
#[test]
fn a_prune_during_a_restore_waits_for_it() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    let docs = sb.home.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for i in 0..30u64 {
        std::fs::write(docs.join(format!("f{i}")), random_bytes(40_000, 100 + i)).unwrap();
    }
    let first = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    // The second backup shares half of the first one's pack; once the first is removed, prune
    // rewrites that pack, which the restore of the second needs.
    for i in 15..30u64 {
        std::fs::remove_file(docs.join(format!("f{i}"))).unwrap();
    }
    let second = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let reference = sb.dir.path().join("reference");
    copy_tree(&docs, &reference);

    let pause = pause_dir(&sb);
    let target = sb.dir.path().join("target");
    let restore = sb
        .command()
        .args(["backups", "restore", &second, "--target", target.to_str().unwrap(), "--quiet"])
        .env("LIFEBOAT_PAUSE_AT", format!("restore {second}"))
        .env("LIFEBOAT_PAUSE_DIR", &pause)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The restore has planned and holds its lock; it has read no data yet.
    assert!(wait_paused(&pause).contains(&second));
    sb.ok(&["backups", "remove", &first]);
    let mut prune = sb
        .command()
        .args(["prune"])
        .env("LIFEBOAT_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut waited = false;
    let mut said = String::new();
    let mut lines = BufReader::new(prune.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if line.contains("waiting for") && line.contains("restore") {
            waited = true;
            // Let the restore go on while prune waits for it.
            resume(&pause);
            break;
        }
    }
    assert!(waited, "prune did not wait for the restore:\n{said}");
    let drain = std::thread::spawn(move || lines.count());
    let restored = restore.wait_with_output().unwrap();
    assert!(restored.status.success(), "the restore failed: {}", stderr(&restored));
    assert!(prune.wait().unwrap().success(), "prune finished after the restore");
    drain.join().unwrap();
    let diffs = compare_trees(&reference, &rerooted(&target, &docs));
    assert!(diffs.is_empty(), "{diffs:?}");
    sb.ok(&["check", "--read-data"]);
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
            let m = std::fs::metadata(&src).unwrap();
            let t = std::fs::FileTimes::new().set_modified(m.modified().unwrap());
            std::fs::File::options().write(true).open(&dst).unwrap().set_times(t).unwrap();
        }
    }
}

fn rows(db: &Path) -> Vec<i64> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut s = c.prepare("SELECT id FROM states ORDER BY id").unwrap();
    s.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect()
}

#[test]
fn nested_units_of_the_home_automation_profile_come_back_whole() {
    let profile = include_str!("../../../../profiles/home-automation.toml");
    let sb = Sandbox::new(profile);
    let ha = sb.home.join(".homeassistant");
    std::fs::create_dir_all(&ha).unwrap();
    std::fs::write(ha.join("configuration.yaml"), "homeassistant:\n  name: Home\n").unwrap();
    std::fs::write(ha.join("home-assistant.log"), "a log line\n").unwrap();
    let db = ha.join("home-assistant_v2.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE states (id INTEGER PRIMARY KEY, state TEXT);").unwrap();
        for i in 1..=3 {
            c.execute("INSERT INTO states (id, state) VALUES (?1, 'on')", [i]).unwrap();
        }
    }
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();

    // The history moves on and the configuration is edited; then a full restore in place.
    let change = |first: i64| {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute("DELETE FROM states WHERE id = 1", []).unwrap();
        for i in first..first + 3 {
            c.execute("INSERT INTO states (id, state) VALUES (?1, 'off')", [i]).unwrap();
        }
    };
    change(4);
    std::fs::write(ha.join("configuration.yaml"), "edited\n").unwrap();
    let out = sb.run(&["backups", "restore", &slug, "--quiet"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(rows(&db), vec![1, 2, 3], "the recorder database is the backup's");
    assert_eq!(std::fs::read_to_string(ha.join("configuration.yaml")).unwrap(), "homeassistant:\n  name: Home\n");
    assert!(ha.join("home-assistant.log").exists(), "what the unit excludes stays");
    assert!(leftovers(&sb.home).is_empty(), "{:?}", leftovers(&sb.home));

    // The outer unit alone in replace mode keeps the inner unit's data.
    change(10);
    sb.ok(&["backups", "restore", &slug, "--unit", "config", "--mode", "replace", "--quiet"]);
    assert_eq!(rows(&db), vec![2, 3, 10, 11, 12], "restoring config left the database alone");

    // On a new machine, from the backup file: the database comes back too.
    let file = sb.dir.path().join("ha.tar");
    sb.ok(&["backups", "export", &slug, "-o", file.to_str().unwrap(), "--quiet"]);
    let fresh = Sandbox::new("");
    let out = fresh.run(&["backups", "restore", "--from-file", file.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    let new_ha = fresh.home.join(".homeassistant");
    assert_eq!(rows(&new_ha.join("home-assistant_v2.db")), vec![1, 2, 3]);
    assert!(new_ha.join("configuration.yaml").exists());
    assert!(leftovers(&fresh.home).is_empty(), "{:?}", leftovers(&fresh.home));
}

#[test]
fn the_dry_run_lists_what_replace_deletes() {
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\n");
    let notes = sb.home.join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    for n in ["a", "b", "c", "d", "e", "f"] {
        std::fs::write(notes.join(n), n).unwrap();
    }
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    std::fs::write(notes.join("later"), "after the backup").unwrap();
    for from_file in [false, true] {
        let out = if from_file {
            let file = sb.dir.path().join("notes.tar");
            if !file.exists() {
                sb.ok(&["backups", "export", &slug, "-o", file.to_str().unwrap(), "--quiet"]);
            }
            sb.ok(&["backups", "restore", "--from-file", file.to_str().unwrap(), "--mode", "replace", "--dry-run"])
        } else {
            sb.ok(&["backups", "restore", &slug, "--unit", "notes", "--mode", "replace", "--dry-run"])
        };
        assert!(out.contains(&format!("- {}", notes.join("later").display())), "{out}");
        assert!(out.contains("0 to create, 0 to replace, 1 to delete"), "{out}");
        assert!(notes.join("later").exists(), "a dry run changes nothing");
        let json = if from_file {
            let file = sb.dir.path().join("notes.tar");
            sb.ok(&[
                "backups",
                "restore",
                "--from-file",
                file.to_str().unwrap(),
                "--mode",
                "replace",
                "--dry-run",
                "--json",
            ])
        } else {
            sb.ok(&["backups", "restore", &slug, "--mode", "replace", "--dry-run", "--json"])
        };
        let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(planned(&plan, "delete"), vec![notes.join("later").to_str().unwrap()], "{json}");
    }
    sb.ok(&["backups", "restore", &slug, "--mode", "replace", "--quiet"]);
    assert!(!notes.join("later").exists());
}

#[test]
fn a_restore_that_cannot_fit_is_refused_before_it_writes() {
    if !is_root() {
        eprintln!("skipped: mounting a small file system needs root");
        return;
    }
    let sb = Sandbox::new("[unit.big]\npaths = [\"~/big\"]\n");
    std::fs::create_dir_all(sb.home.join("big")).unwrap();
    std::fs::write(sb.home.join("big/incompressible"), random_bytes(6 << 20, 3)).unwrap();
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let tiny = sb.dir.path().join("tiny");
    std::fs::create_dir_all(&tiny).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(&tiny)
        .status()
        .unwrap();
    assert!(mounted.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(tiny.clone());
    let file = sb.dir.path().join("big.tar");
    sb.ok(&["backups", "export", &slug, "-o", file.to_str().unwrap(), "--quiet"]);
    for from_file in [false, true] {
        let out = if from_file {
            sb.run(&["backups", "restore", "--from-file", file.to_str().unwrap(), "--target", tiny.to_str().unwrap()])
        } else {
            sb.run(&["backups", "restore", &slug, "--target", tiny.to_str().unwrap(), "--quiet"])
        };
        let err = stderr(&out);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("not enough room") && err.contains("nothing was restored"), "{err}");
        assert!(walkdir(&tiny).is_empty(), "nothing was written: {:?}", walkdir(&tiny));
    }
}

/// Flips four bytes in the middle of a file and puts its modification time back, as bit rot
/// (or a program that writes and keeps the date) leaves it.
fn rot_keeping_the_date(path: &Path) {
    let meta = std::fs::metadata(path).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() / 2;
    for b in &mut bytes[at..at + 4] {
        *b ^= 0xff;
    }
    std::fs::write(path, bytes).unwrap();
    let mtime = nix::sys::time::TimeSpec::new(
        std::os::unix::fs::MetadataExt::mtime(&meta),
        std::os::unix::fs::MetadataExt::mtime_nsec(&meta),
    );
    nix::sys::stat::utimensat(None, path, &mtime, &mtime, nix::sys::stat::UtimensatFlags::NoFollowSymlink).unwrap();
}

#[test]
fn bit_rot_with_its_date_put_back_is_repaired_by_an_in_place_restore() {
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\n");
    let notes = sb.home.join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    // A small file (one blob) and a large one (streamed, several chunks).
    let files = [(notes.join("todo.txt"), random_bytes(5000, 3)), (notes.join("video.bin"), random_bytes(20 << 20, 4))];
    for (path, bytes) in &files {
        std::fs::write(path, bytes).unwrap();
    }
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let todo = files[0].0.to_str().unwrap();
    let runs: [&[&str]; 4] = [&[], &["--mode", "replace"], &["--path", todo], &["--path", todo, "--mode", "replace"]];
    for extra in runs {
        let wanted: Vec<&(PathBuf, Vec<u8>)> =
            files.iter().filter(|(p, _)| !extra.contains(&"--path") || p.ends_with("todo.txt")).collect();
        for (path, _) in &wanted {
            rot_keeping_the_date(path);
        }
        let mut args = vec!["backups", "restore", &slug, "--dry-run", "--json"];
        args.extend_from_slice(extra);
        let plan: serde_json::Value = serde_json::from_str(&sb.ok(&args)).unwrap();
        let replaced = planned(&plan, "replace");
        for (path, _) in &wanted {
            assert!(
                replaced.iter().any(|r| r == path.to_str().unwrap()),
                "{extra:?}: the damaged file is replaced: {plan}"
            );
        }
        // `backups diff` against the device says the same with --by-content; by dates alone
        // the damage does not show.
        let diff = |by_content: bool| -> Vec<String> {
            let mut d = vec!["backups", "diff", &slug, "--json"];
            if by_content {
                d.push("--by-content");
            }
            let v: serde_json::Value = serde_json::from_str(&sb.ok(&d)).unwrap();
            v["modified"].as_array().unwrap().iter().map(|c| c["path"].as_str().unwrap().to_string()).collect()
        };
        let modified = diff(true);
        for (path, _) in &wanted {
            let p = path.to_str().unwrap();
            assert!(
                modified.iter().any(|m| p.ends_with(m.trim_start_matches("~/")) || m == p),
                "{extra:?}: diff --by-content lists {p}: {modified:?}"
            );
        }
        assert!(diff(false).is_empty(), "{extra:?}: by dates the damage does not show");
        let trusting = [args.clone(), vec!["--trust-dates"]].concat();
        let plan: serde_json::Value = serde_json::from_str(&sb.ok(&trusting)).unwrap();
        assert!(planned(&plan, "replace").is_empty(), "{extra:?}: --trust-dates takes it as unchanged: {plan}");

        let mut args = vec!["backups", "restore", &slug, "--quiet"];
        args.extend_from_slice(extra);
        sb.ok(&args);
        for (path, bytes) in &files {
            assert!(std::fs::read(path).unwrap() == *bytes, "{extra:?}: {} is as backed up", path.display());
        }
    }
    // A file as backed up is unchanged after its content was compared: nothing to do.
    let plan: serde_json::Value =
        serde_json::from_str(&sb.ok(&["backups", "restore", &slug, "--dry-run", "--json"])).unwrap();
    assert!(planned(&plan, "replace").is_empty(), "{plan}");
}
