//! What the repository promises: no plaintext, passwords that matter, damage found and named,
//! deduplication, incremental backups, partial backups and restores that leave other units be.

use std::fs;

use crate::common::*;

const MARKER: &str = "lifeboat-plaintext-marker-6b1f0c";

fn two_units() -> Sandbox {
    let sb = Sandbox::new("[unit.a]\npaths = [\"~/a\"]\n\n[unit.b]\npaths = [\"~/b\"]\n");
    for u in ["a", "b"] {
        let d = sb.home.join(u);
        fs::create_dir_all(d.join("deep")).unwrap();
        for i in 0..20 {
            fs::write(d.join(format!("f{i}.txt")), format!("{MARKER} unit {u} file {i}\n").repeat(50)).unwrap();
        }
        fs::write(d.join("deep/big.bin"), random_bytes(2_500_000, u.as_bytes()[0] as u64)).unwrap();
    }
    sb
}

#[test]
fn no_plaintext_reaches_the_repository() {
    let sb = two_units();
    sb.backup(&[]);
    let files = walkdir(&sb.repo);
    assert!(files.iter().filter(|p| p.is_file()).count() > 3);
    for p in files.iter().filter(|p| p.is_file()) {
        let bytes = fs::read(p).unwrap();
        for needle in [MARKER.as_bytes(), b"f1.txt", b"deep", sb.home.to_str().unwrap().as_bytes()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds plaintext {:?}",
                p.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
}

#[test]
fn a_wrong_password_is_refused_in_one_line() {
    let sb = two_units();
    sb.backup(&[]);
    fs::write(&sb.password_file, "not the password\n").unwrap();
    let out = sb.run(&["backups", "list"]);
    assert_eq!(out.status.code(), Some(5), "exit code for a wrong password");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains("wrong password"), "{err}");
    fs::write(&sb.password_file, "correct horse battery staple\n").unwrap();
    sb.ok(&["backups", "list"]);
}

#[test]
fn a_flipped_byte_is_found_named_and_contained() {
    let sb = two_units();
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    assert!(sb.run(&["check", "--read-data"]).status.success());
    // Flip a byte in the middle of the largest pack: that is file data.
    let mut packs: Vec<_> = walkdir(&sb.repo.join("data")).into_iter().filter(|p| p.is_file()).collect();
    packs.sort_by_key(|p| fs::metadata(p).unwrap().len());
    let victim = packs.last().unwrap();
    let mut bytes = fs::read(victim).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x40;
    fs::write(victim, &bytes).unwrap();

    let out = sb.run(&["check", "--read-data"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "check reports damage: {text}");
    assert!(text.contains("damaged"), "{text}");
    assert!(text.contains("big.bin"), "the affected file is named: {text}");
    assert!(!text.contains("f1.txt"), "undamaged files are not blamed: {text}");

    let target = sb.dir.path().join("restore");
    let out = sb.run(&["backups", "restore", &slug, "--target", target.to_str().unwrap(), "--quiet"]);
    assert_eq!(out.status.code(), Some(1), "a restore that could not restore the damaged file fails: {}", stderr(&out));
    assert!(stdout(&out).contains(" not restored."), "{}", stdout(&out));
    for u in ["a", "b"] {
        for i in 0..20 {
            let restored = rerooted(&target, &sb.home.join(u).join(format!("f{i}.txt")));
            assert_eq!(fs::read(&restored).unwrap(), fs::read(sb.home.join(u).join(format!("f{i}.txt"))).unwrap());
        }
    }
}

#[test]
fn unchanged_data_is_stored_once_and_not_read_again() {
    let sb = two_units();
    fs::write(sb.home.join("a/copy-of-big.bin"), fs::read(sb.home.join("b/deep/big.bin")).unwrap()).unwrap();
    let first = sb.backup(&[]);
    let size1 = sb.repo_size();
    // Two copies of 2.5 MB (one in each unit) are stored once: 2 distinct big files plus text.
    assert!(size1 < 2 * 2_500_000 + 400_000, "repository {size1} bytes: the copy was stored again");

    let second = sb.backup(&[]);
    let size2 = sb.repo_size();
    assert!(
        ((size2 - size1) as f64) < size1 as f64 * 0.01,
        "unchanged re-backup added {} of {size1} bytes",
        size2 - size1
    );
    assert_eq!(second["read"], 0, "nothing is read again: {second}");
    assert_ne!(first["slug"], second["slug"]);

    // Only the edited file is read again.
    fs::write(sb.home.join("a/f3.txt"), "edited").unwrap();
    let third = sb.backup(&[]);
    assert_eq!(third["read"], 6, "only the edited file is read: {third}");
}

#[test]
fn partial_backups_and_restores_leave_other_units_alone() {
    let sb = two_units();
    let full = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let partial = sb.backup(&["--unit", "a", "--name", "only a"]);
    assert_eq!(partial["type"], "partial");
    assert_eq!(partial["units"], serde_json::json!(["a"]));
    assert_eq!(partial["name"], "only a");

    // Change both units, restore only b from the full backup: a keeps its changes.
    fs::write(sb.home.join("a/f0.txt"), "a changed").unwrap();
    fs::write(sb.home.join("b/f0.txt"), "b changed").unwrap();
    sb.ok(&["backups", "restore", &full, "--unit", "b", "--quiet"]);
    assert_eq!(fs::read_to_string(sb.home.join("a/f0.txt")).unwrap(), "a changed");
    assert!(fs::read_to_string(sb.home.join("b/f0.txt")).unwrap().contains(MARKER));

    let out = sb.run(&["backups", "restore", partial["slug"].as_str().unwrap(), "--unit", "b"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no unit named b"));
}

#[test]
fn prune_reclaims_removed_backups_and_keeps_the_rest() {
    let sb = two_units();
    let keep = sb.backup(&["--unit", "a"])["slug"].as_str().unwrap().to_string();
    let gone = sb.backup(&["--unit", "b"])["slug"].as_str().unwrap().to_string();
    let before = sb.repo_size();
    sb.ok(&["backups", "remove", &gone]);
    let report: serde_json::Value = serde_json::from_str(&sb.ok(&["prune", "--json"])).unwrap();
    assert!(report["bytes_freed"].as_u64().unwrap() > 2_000_000, "{report}");
    assert!(sb.repo_size() < before - 2_000_000);
    let out = sb.run(&["check", "--read-data"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let target = sb.dir.path().join("restore");
    sb.ok(&["backups", "restore", &keep, "--target", target.to_str().unwrap(), "--quiet"]);
    assert!(compare_trees(&sb.home.join("a"), &rerooted(&target, &sb.home.join("a"))).is_empty());
    let list: serde_json::Value = serde_json::from_str(&sb.ok(&["backups", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn keys_can_be_added_removed_and_recovered() {
    let sb = two_units();
    sb.backup(&[]);
    let recovery = sb.ok(&["key", "recovery"]).trim().to_string();
    assert_eq!(recovery.len(), 39, "{recovery}");
    let second = sb.dir.path().join("second-password");
    fs::write(&second, "another one\n").unwrap();
    sb.ok(&["key", "add", "--new-password-file", second.to_str().unwrap(), "--label", "laptop"]);
    let keys: serde_json::Value = serde_json::from_str(&sb.ok(&["key", "list", "--json"])).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 3, "password, recovery, laptop: {keys}");

    // The recovery key alone opens the repository.
    fs::write(&sb.password_file, format!("{recovery}\n")).unwrap();
    sb.ok(&["backups", "list"]);
    // So does the new password; then the first password's slot can go.
    fs::write(&sb.password_file, "another one\n").unwrap();
    let first_id = keys.as_array().unwrap().iter().find(|k| k["kind"] == "password" && k["label"] != "laptop").unwrap()
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    sb.ok(&["backups", "list"]);
    // Removed by a command that the first password opened: this device remembers that slot
    // (it opens without deriving the key again), and must not open with it once it is gone.
    fs::write(&sb.password_file, "correct horse battery staple\n").unwrap();
    sb.ok(&["backups", "list"]);
    sb.ok(&["key", "remove", &first_id[..12]]);
    assert_eq!(sb.run(&["backups", "list"]).status.code(), Some(5), "the removed password no longer opens it");
    fs::write(&sb.password_file, "another one\n").unwrap();
    sb.ok(&["backups", "list"]);
}

#[test]
fn an_interrupted_backup_is_not_uploaded_again() {
    let sb = two_units();
    let first = sb.backup(&[]);
    // What a backup killed before its index and snapshot leaves: packs only.
    for dir in ["index", "snapshots"] {
        for p in walkdir(&sb.repo.join(dir)) {
            fs::remove_file(p).unwrap();
        }
    }
    let again = sb.backup(&[]);
    let stored = again["stored"].as_u64().unwrap();
    assert!(
        stored * 10 < first["stored"].as_u64().unwrap(),
        "the re-run stored {stored} bytes of {}: it uploaded again what was there",
        first["stored"]
    );
    let check = sb.run(&["check", "--read-data"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let target = sb.dir.path().join("restore");
    sb.ok(&["backups", "restore", again["slug"].as_str().unwrap(), "--target", target.to_str().unwrap(), "--quiet"]);
    assert!(compare_trees(&sb.home.join("a"), &rerooted(&target, &sb.home.join("a"))).is_empty());
}
