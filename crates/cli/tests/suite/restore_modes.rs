//! Restore modes, and restores for another user or at other paths.

use std::fs;

use crate::common::*;

#[test]
fn merge_keeps_other_files_and_replace_removes_them() {
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\nexclude = [\"*.tmp\"]\n");
    let notes = sb.home.join("notes");
    fs::create_dir_all(notes.join("sub")).unwrap();
    fs::write(notes.join("a"), "a from the backup").unwrap();
    fs::write(notes.join("sub/b"), "b from the backup").unwrap();
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();

    let change = || {
        fs::write(notes.join("a"), "a edited").unwrap();
        fs::write(notes.join("new"), "written after the backup").unwrap();
        fs::write(notes.join("sub/new"), "also after").unwrap();
        fs::write(notes.join("draft.tmp"), "excluded from the unit").unwrap();
    };
    change();
    let out = sb.ok(&["backups", "restore", &slug, "--quiet"]);
    assert_eq!(fs::read_to_string(notes.join("a")).unwrap(), "a from the backup");
    assert!(notes.join("new").exists() && notes.join("sub/new").exists(), "merge is the default and keeps other files");

    // The safety backup taken first undoes the restore: restoring it gives back the tree of
    // before, exactly.
    let safety = out.split("safety backup ").nth(1).and_then(|r| r.split(';').next()).expect(&out).to_string();
    assert!(out.contains(&format!("undo with: lifeboat backups restore {safety}")), "{out}");
    sb.ok(&["backups", "restore", &safety, "--no-safety-backup", "--quiet"]);
    assert_eq!(fs::read_to_string(notes.join("a")).unwrap(), "a edited");
    assert!(notes.join("new").exists() && notes.join("draft.tmp").exists());

    change();
    sb.ok(&["backups", "restore", &slug, "--mode", "replace", "--quiet"]);
    assert_eq!(fs::read_to_string(notes.join("a")).unwrap(), "a from the backup");
    assert!(!notes.join("new").exists() && !notes.join("sub/new").exists(), "replace removes what the backup lacks");
    assert!(notes.join("draft.tmp").exists(), "files the unit excludes stay");
    assert_eq!(fs::read_to_string(notes.join("sub/b")).unwrap(), "b from the backup");
}

#[test]
fn a_backup_of_one_user_restores_into_another_users_home() {
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\n");
    // The backup is made as "nemo"…
    let nemo = sb.dir.path().join("users/nemo");
    let notes = nemo.join("notes");
    fs::create_dir_all(&notes).unwrap();
    fs::write(notes.join("a"), "note a").unwrap();
    std::os::unix::fs::symlink(notes.join("a"), notes.join("link-into-home")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", notes.join("link-elsewhere")).unwrap();
    let out = sb.command().env("HOME", &nemo).args(["backups", "new", "--json", "--quiet"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    fs::remove_dir_all(&notes).unwrap();

    // …and restored as "defaultuser", whose home is elsewhere.
    let defaultuser = sb.dir.path().join("users/defaultuser");
    fs::create_dir_all(&defaultuser).unwrap();
    let out = sb
        .command()
        .env("HOME", &defaultuser)
        .args(["backups", "restore", b["slug"].as_str().unwrap(), "--quiet"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let restored = defaultuser.join("notes");
    assert_eq!(fs::read_to_string(restored.join("a")).unwrap(), "note a");
    assert_eq!(
        fs::read_link(restored.join("link-into-home")).unwrap(),
        restored.join("a"),
        "links into the old home follow"
    );
    assert_eq!(fs::read_link(restored.join("link-elsewhere")).unwrap(), std::path::Path::new("/etc/hostname"));
    assert!(!notes.exists(), "nothing is written under the old home");
}

#[test]
fn map_path_moves_absolute_paths() {
    let sb = Sandbox::new("");
    let srv = sb.dir.path().join("srv/data");
    fs::create_dir_all(&srv).unwrap();
    fs::write(srv.join("x"), "x").unwrap();
    let mut cfg = fs::read_to_string(&sb.config).unwrap();
    cfg.push_str(&format!("[unit.srv]\npaths = [\"{}\"]\n", srv.display()));
    fs::write(&sb.config, cfg).unwrap();
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let old = sb.dir.path().join("srv");
    let new = sb.dir.path().join("srv2");
    let rule = format!("{}={}", old.display(), new.display());
    sb.ok(&["backups", "restore", &slug, "--map-path", &rule, "--quiet"]);
    assert_eq!(fs::read_to_string(new.join("data/x")).unwrap(), "x");
    let out = sb.run(&["backups", "restore", &slug, "--map-path", "relative=/x"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Removes what an interrupted restore leaves beside a unit (the next restore does the same).
/// After a restore was killed: `--undo` removes what it wrote beside the destination (a
/// restore killed while writing changed nothing else), and nothing of it is left.
fn remove_leftovers(sb: &Sandbox) {
    let _ = sb.run(&["backups", "restore", "--undo", "--quiet"]);
    let left = restore_leftovers(&sb.home);
    assert!(left.is_empty(), "left by the killed restore: {left:?}");
}

#[test]
fn a_restore_killed_at_any_moment_leaves_each_unit_old_or_new_never_mixed() {
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\n[unit.photos]\npaths = [\"~/photos\"]\n");
    let make = |seed: u64| {
        for unit in ["notes", "photos"] {
            let d = sb.home.join(unit);
            let _ = fs::remove_dir_all(&d);
            for i in 0..40u64 {
                let sub = d.join(format!("d{}", i % 5));
                fs::create_dir_all(&sub).unwrap();
                fs::write(sub.join(format!("f{i}")), random_bytes(2000 + i as usize * 10, seed * 1000 + i)).unwrap();
            }
        }
    };
    make(1);
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let reference = sb.dir.path().join("reference");
    sb.ok(&["backups", "restore", &slug, "--target", reference.to_str().unwrap(), "--quiet"]);
    let backup_state = |unit: &str| facts(&rerooted(&reference, &sb.home.join(unit)));

    let mut seed: u64 = 0x5eed;
    let mut outcomes = (0, 0);
    for round in 0..20 {
        make(100 + round);
        let before: Vec<_> = ["notes", "photos"].iter().map(|u| facts(&sb.home.join(u))).collect();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let crash_after = 1 + seed % 90;
        let mode = if round % 2 == 0 { "merge" } else { "replace" };
        let out = sb
            .command()
            .env("LIFEBOAT_CRASH_AFTER_WRITES", crash_after.to_string())
            .args(["backups", "restore", &slug, "--mode", mode, "--no-safety-backup", "--quiet"])
            .output()
            .unwrap();
        if out.status.success() {
            outcomes.1 += 1;
        } else {
            outcomes.0 += 1;
        }
        remove_leftovers(&sb);
        for (i, unit) in ["notes", "photos"].iter().enumerate() {
            let now = facts(&sb.home.join(unit));
            let restored = now.keys().all(|k| backup_state(unit).contains_key(k))
                && backup_state(unit)
                    .iter()
                    .all(|(k, v)| now.get(k).map(|n| n.content_hash == v.content_hash) == Some(true));
            assert!(
                now == before[i] || restored,
                "round {round} (crash after {crash_after} writes, {mode}): unit {unit} is neither as before nor as in the backup"
            );
        }
    }
    assert!(outcomes.0 >= 5, "most rounds crashed mid-restore: {outcomes:?}");
}
