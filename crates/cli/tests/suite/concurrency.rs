//! Several writers on one repository: backups side by side, and prune while a backup runs.

use std::fs;

use crate::common::*;

fn sandbox() -> Sandbox {
    let sb = Sandbox::new("[unit.a]\npaths = [\"~/a\"]\n[unit.b]\npaths = [\"~/b\"]\n[unit.c]\npaths = [\"~/c\"]\n");
    for (i, u) in ["a", "b", "c"].iter().enumerate() {
        let d = sb.home.join(u);
        fs::create_dir_all(&d).unwrap();
        for f in 0..30 {
            fs::write(d.join(format!("f{f}")), random_bytes(40_000, (i * 100 + f) as u64 + 1)).unwrap();
        }
        // The same file in every unit: stored once.
        fs::write(d.join("common"), random_bytes(500_000, 4242)).unwrap();
    }
    sb
}

#[test]
fn two_backups_at_once_both_finish_and_share_data() {
    let sb = sandbox();
    let a = sb.command().args(["backups", "new", "--unit", "a", "--json", "--quiet"]).spawn_output();
    let b = sb.command().args(["backups", "new", "--unit", "b", "--json", "--quiet"]).spawn_output();
    for out in [a.wait(), b.wait()] {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let check = sb.run(&["check", "--read-data"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let list: serde_json::Value = serde_json::from_str(&sb.ok(&["backups", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    for entry in list.as_array().unwrap() {
        let target = sb.dir.path().join(format!("restore-{}", entry["slug"].as_str().unwrap()));
        sb.ok(&[
            "backups",
            "restore",
            entry["slug"].as_str().unwrap(),
            "--target",
            target.to_str().unwrap(),
            "--quiet",
        ]);
        let unit = entry["units"][0].as_str().unwrap();
        assert!(compare_trees(&sb.home.join(unit), &rerooted(&target, &sb.home.join(unit))).is_empty());
    }
}

/// Two first backups find the location empty and each makes a repository there beside its
/// work; the one whose making comes second (held at a pause point until the other has
/// finished) stores nothing of its own repository and starts its backup again in the
/// first's: one repository, its key slots only, both backups.
#[test]
fn a_first_backup_beaten_to_the_repository_by_another_lands_in_theirs() {
    let sb = sandbox();
    let pause = pause_dir(&sb);
    let late = sb
        .command()
        .args(["backups", "new", "--unit", "a", "--json"])
        .env("LIFEBOAT_PAUSE_AT", "make the repository")
        .env("LIFEBOAT_PAUSE_DIR", &pause)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_paused(&pause);
    let early = sb.command().args(["backups", "new", "--unit", "b", "--json"]).output().unwrap();
    assert!(early.status.success(), "{}", stderr(&early));
    assert!(stderr(&early).contains("Created a new encrypted repository"), "{}", stderr(&early));
    let slots = fs::read_dir(sb.repo.join("keys")).unwrap().count();
    resume(&pause);
    let late = late.wait_with_output().unwrap();
    assert!(late.status.success(), "{}", stderr(&late));
    assert!(!stderr(&late).contains("Created a new encrypted repository"), "{}", stderr(&late));
    assert_eq!(fs::read_dir(sb.repo.join("keys")).unwrap().count(), slots, "the late backup's slots stayed");
    let logs = walkdir(&sb.dir.path().join("xdg-state/lifeboat/logs"));
    let started_again = logs
        .iter()
        .filter_map(|l| fs::read_to_string(l).ok())
        .any(|t| t.contains("another process made the repository at the same moment; backing up into theirs"));
    assert!(started_again, "no run log tells the backup started again: {logs:?}");

    let check = sb.run(&["check", "--read-data"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let list: serde_json::Value = serde_json::from_str(&sb.ok(&["backups", "list", "--json"])).unwrap();
    let units: Vec<&str> = list.as_array().unwrap().iter().map(|b| b["units"][0].as_str().unwrap()).collect();
    assert_eq!(units.len(), 2, "{list}");
    assert!(units.contains(&"a") && units.contains(&"b"), "{list}");
    let target = sb.dir.path().join("restore-a");
    let slug = list.as_array().unwrap().iter().find(|b| b["units"][0] == "a").unwrap()["slug"].as_str().unwrap();
    sb.ok(&["backups", "restore", slug, "--target", target.to_str().unwrap(), "--quiet"]);
    assert!(compare_trees(&sb.home.join("a"), &rerooted(&target, &sb.home.join("a"))).is_empty());
}

#[test]
fn prune_while_backups_run_never_loses_a_finished_backup() {
    let sb = sandbox();
    let old = sb.backup(&["--unit", "a"])["slug"].as_str().unwrap().to_string();
    let keep = sb.backup(&["--unit", "c"])["slug"].as_str().unwrap().to_string();
    sb.ok(&["backups", "remove", &old]);
    // A backup of b (which shares `common` with the removed backup of a) and a prune, at once.
    let backup = sb.command().args(["backups", "new", "--unit", "b", "--json", "--quiet"]).spawn_output();
    let prune = sb.command().args(["prune", "--quiet"]).spawn_output();
    let (backup, prune) = (backup.wait(), prune.wait());
    assert!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));
    assert!(prune.status.success(), "{}", String::from_utf8_lossy(&prune.stderr));
    let new: serde_json::Value = serde_json::from_slice(&backup.stdout).unwrap();

    let check = sb.run(&["check", "--read-data"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    for (slug, unit) in [(keep.as_str(), "c"), (new["slug"].as_str().unwrap(), "b")] {
        let target = sb.dir.path().join(format!("restore-{slug}"));
        sb.ok(&["backups", "restore", slug, "--target", target.to_str().unwrap(), "--quiet"]);
        let diffs = compare_trees(&sb.home.join(unit), &rerooted(&target, &sb.home.join(unit)));
        assert!(diffs.is_empty(), "{unit}: {diffs:?}");
    }
}

/// A started child whose output is collected at the end.
struct Running(std::process::Child);

impl Running {
    fn wait(self) -> std::process::Output {
        self.0.wait_with_output().expect("waiting for lifeboat")
    }
}

trait SpawnOutput {
    fn spawn_output(&mut self) -> Running;
}

impl SpawnOutput for std::process::Command {
    fn spawn_output(&mut self) -> Running {
        Running(
            self.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("starting lifeboat"),
        )
    }
}
