//! A backup cancelled while it sends its data (the daemon's cancel, Ctrl-C or SIGTERM at the
//! command line) stops there: no snapshot, no lock left, the run's log and event say so, and
//! the data already stored is reused by the next backup.

use std::fs;

use crate::common::daemon::Daemon;
use crate::common::*;

/// Where each test's backup pauses: its first pack is stored, the second (the folder
/// listings; uploads to a local folder go one at a time) not yet. Every file has been read.
const UPLOADING: &str = "pack 1 of the session stored";

/// A repository made by a small backup, and a unit of 3 MiB of new data (less than a pack,
/// so nothing is sent until every file is read).
fn sandbox() -> Sandbox {
    let sb = Sandbox::new("[unit.small]\npaths = [\"~/small\"]\n[unit.big]\npaths = [\"~/big\"]\n");
    fs::create_dir_all(sb.home.join("small")).unwrap();
    fs::write(sb.home.join("small/note"), b"hello").unwrap();
    fs::create_dir_all(sb.home.join("big")).unwrap();
    for i in 0..3 {
        fs::write(sb.home.join(format!("big/f{i}")), random_bytes(1 << 20, 700 + i)).unwrap();
    }
    sb.backup(&["--unit", "small"]);
    sb
}

fn backups(sb: &Sandbox) -> usize {
    let list: serde_json::Value = serde_json::from_str(&sb.ok(&["backups", "list", "--json"])).unwrap();
    list.as_array().unwrap().len()
}

/// No lock is left, the next backup needs no `unlock` and stores none of the data again, and
/// the repository checks clean.
fn left_clean(sb: &Sandbox) {
    let locks = fs::read_dir(sb.repo.join("locks")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(locks, 0, "a lock was left");
    let next = sb.backup(&["--unit", "big"]);
    assert!(next["added"].as_u64().unwrap() < 100_000, "the stored data was sent again: {next}");
    let check = sb.run(&["check", "--read-data"]);
    assert!(check.status.success(), "{}", stdout(&check));
    assert_eq!(backups(sb), 2);
}

#[test]
fn a_job_cancelled_while_uploading_saves_no_backup_and_leaves_no_lock() {
    let sb = sandbox();
    let pause = pause_dir(&sb);
    let mut command = sb.command();
    command.env("LIFEBOAT_PAUSE_AT", UPLOADING).env("LIFEBOAT_PAUSE_DIR", &pause);
    let d = Daemon::start_with(&sb, command);
    let (status, started) = d.json(reqwest::Method::POST, "/api/backups", serde_json::json!({"units": ["big"]}));
    assert_eq!(status, 202, "{started}");
    let job = started["job"].as_u64().unwrap();
    wait_paused(&pause);
    let (status, _) = d.json(reqwest::Method::POST, &format!("/api/jobs/{job}/cancel"), serde_json::json!({}));
    assert_eq!(status, 200);
    resume(&pause);
    let (done, _) = d.follow(job);
    assert_eq!(done["state"], "cancelled", "{done}");
    assert_eq!(done["error_kind"], "interrupted", "{done}");
    let events: serde_json::Value = d.get("/api/events").json().unwrap();
    assert!(events.as_array().unwrap().iter().any(|e| e["kind"] == "job_cancelled"), "{events}");
    drop(d);
    assert_eq!(backups(&sb), 1, "a cancelled backup was saved");
    left_clean(&sb);
}

fn interrupted_by(signal: nix::sys::signal::Signal) {
    let sb = sandbox();
    let out = signalled_at(&sb, &["backups", "new", "--unit", "big"], UPLOADING, signal);
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert_eq!(backups(&sb), 1, "an interrupted backup was saved");
    let logs = walkdir(&sb.dir.path().join("xdg-state/lifeboat/logs"));
    let log = logs
        .iter()
        .filter_map(|l| fs::read_to_string(l).ok())
        .find(|t| t.contains("of big to location"))
        .expect("the interrupted run has a log");
    assert!(log.contains("the backup was interrupted"), "{log}");
    let events: serde_json::Value = serde_json::from_str(&sb.ok(&["events", "--json"])).unwrap();
    assert!(events.as_array().unwrap().iter().any(|e| e["kind"] == "job_cancelled"), "{events}");
    left_clean(&sb);
}

#[test]
fn ctrl_c_while_uploading_ends_the_backup_as_interrupted() {
    interrupted_by(nix::sys::signal::Signal::SIGINT);
}

#[test]
fn sigterm_while_uploading_ends_the_backup_as_interrupted() {
    interrupted_by(nix::sys::signal::Signal::SIGTERM);
}

/// Runs lifeboat ARGS, sends it `signal` where it pauses at `at`, and returns what it did.
fn signalled_at(sb: &Sandbox, args: &[&str], at: &str, signal: nix::sys::signal::Signal) -> std::process::Output {
    let pause = sb.dir.path().join(format!("pause-{}", args[1]));
    fs::create_dir_all(&pause).unwrap();
    for fifo in ["paused", "resume"] {
        nix::unistd::mkfifo(&pause.join(fifo), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }
    let child = sb
        .command()
        .args(args)
        .env("LIFEBOAT_PAUSE_AT", at)
        .env("LIFEBOAT_PAUSE_DIR", &pause)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_paused(&pause);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    std::thread::spawn(move || resume(&pause));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{args:?}: {}", stderr(&out));
    out
}

fn locks_in(repo: &std::path::Path) -> usize {
    fs::read_dir(repo.join("locks")).map(|d| d.count()).unwrap_or(0)
}

fn cancelled_events(sb: &Sandbox) -> Vec<String> {
    let events: serde_json::Value = serde_json::from_str(&sb.ok(&["events", "--json"])).unwrap();
    let all = events.as_array().unwrap().iter();
    all.filter(|e| e["kind"] == "job_cancelled").map(|e| e["message"].as_str().unwrap().to_string()).collect()
}

/// Ctrl-C during a restore in place, while it writes beside the files: it stops there, removes
/// what it wrote, and the files are as they were; no lock, no half-done restore to resume, its
/// log and event say so, and the restore runs whole next time.
#[test]
fn ctrl_c_during_a_restore_changes_nothing_and_leaves_no_lock_or_half_done_restore() {
    let sb = sandbox();
    let slug = sb.backup(&["--unit", "big"])["slug"].as_str().unwrap().to_string();
    let big = sb.home.join("big");
    fs::write(big.join("f0"), "changed").unwrap();
    fs::remove_file(big.join("f1")).unwrap();
    let args = ["backups", "restore", slug.as_str(), "--unit", "big"];
    let out = signalled_at(&sb, &args, &format!("restore {slug}"), nix::sys::signal::Signal::SIGINT);
    let said = stderr(&out);
    assert!(said.contains("lifeboat: interrupted: nothing was restored"), "{said}");
    assert_eq!(fs::read_to_string(big.join("f0")).unwrap(), "changed", "nothing was changed");
    let names: Vec<_> = fs::read_dir(&big).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "only f0 and f2, nothing written beside them: {names:?}");
    assert_eq!(locks_in(&sb.repo), 0, "a lock was left");
    let list = sb.run(&["backups", "list"]);
    assert!(!stderr(&list).contains("restore"), "no half-done restore is reported: {}", stderr(&list));
    let log = walkdir(&sb.dir.path().join("xdg-state/lifeboat/logs"))
        .iter()
        .filter_map(|l| fs::read_to_string(l).ok())
        .find(|t| t.contains(&format!("restore of backup {slug}")))
        .expect("the interrupted restore has a log");
    assert!(log.contains("the restore was interrupted"), "{log}");
    assert_eq!(cancelled_events(&sb), [format!("restore of backup {slug} was interrupted")]);

    sb.ok(&["backups", "restore", slug.as_str(), "--unit", "big", "--quiet"]);
    assert_eq!(fs::read(big.join("f0")).unwrap(), random_bytes(1 << 20, 700));
    assert_eq!(fs::read(big.join("f1")).unwrap(), random_bytes(1 << 20, 701));
}

/// Ctrl-C or SIGTERM during a copy, an import and an export: each stops, says it was
/// interrupted, leaves no lock, no backup at the other location and no half-written file, and
/// records its event.
#[test]
fn ctrl_c_or_sigterm_during_a_copy_an_import_or_an_export_ends_it_as_interrupted() {
    use nix::sys::signal::Signal;
    let sb = sandbox();
    let slug = sb.backup(&["--unit", "big"])["slug"].as_str().unwrap().to_string();
    let other = sb.add_local_location("other");
    let third = sb.add_local_location("third");
    let listed = |loc: &str| -> usize {
        let out = sb.run(&["backups", "list", "--location", loc, "--json"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).map(|v| v.as_array().unwrap().len()).unwrap_or(0)
    };

    let out = signalled_at(&sb, &["backups", "copy", &slug, "--to", "other"], UPLOADING, Signal::SIGINT);
    assert!(
        stderr(&out).contains(&format!("lifeboat: interrupted: backup {slug} was not copied to other")),
        "{}",
        stderr(&out)
    );
    assert_eq!((locks_in(&other), listed("other")), (0, 0), "no lock, no backup copied");

    let file = sb.dir.path().join("exports/big.lifeboat");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    let args = ["backups", "export", slug.as_str(), "-o", file.to_str().unwrap()];
    let out = signalled_at(&sb, &args, "export: a blob to write", Signal::SIGTERM);
    assert!(stderr(&out).contains("lifeboat: interrupted: no file was written"), "{}", stderr(&out));
    let left: Vec<_> = fs::read_dir(file.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "no file, whole or half-written: {left:?}");

    sb.ok(&["backups", "export", &slug, "-o", file.to_str().unwrap(), "--quiet"]);
    let out = signalled_at(
        &sb,
        &["backups", "import", file.to_str().unwrap(), "--location", "third"],
        UPLOADING,
        Signal::SIGINT,
    );
    assert!(stderr(&out).contains("lifeboat: interrupted: no backup was imported"), "{}", stderr(&out));
    assert_eq!((locks_in(&third), listed("third")), (0, 0), "no lock, no backup imported");

    let events = cancelled_events(&sb);
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events.iter().any(|e| e.starts_with(&format!("copy of backup {slug} to other"))), "{events:?}");
    assert!(events.iter().any(|e| e.starts_with(&format!("export of backup {slug}"))), "{events:?}");
    assert!(events.iter().any(|e| e.starts_with("import of ")), "{events:?}");
}

/// Hostile review: a unit's before_restore stops its application (Home Assistant) and its
/// after_restore starts it again. Ctrl-C during the restore "changed nothing", yet the
/// application stayed stopped: after_restore ran only after a restore that finished. An
/// interrupted restore starts it again, and says so in its log.
#[test]
fn ctrl_c_during_a_restore_starts_again_what_before_restore_stopped() {
    let sb = Sandbox::new(
        "[unit.big]\npaths = [\"~/big\"]\nbefore_restore = 'echo stopped >> ~/service'\n\
         after_restore = 'echo started >> ~/service'\n",
    );
    fs::create_dir_all(sb.home.join("big")).unwrap();
    for i in 0..3 {
        fs::write(sb.home.join(format!("big/f{i}")), random_bytes(1 << 20, 700 + i)).unwrap();
    }
    let slug = sb.backup(&["--unit", "big"])["slug"].as_str().unwrap().to_string();
    fs::write(sb.home.join("big/f0"), "changed").unwrap();
    let args = ["backups", "restore", slug.as_str(), "--unit", "big"];
    let out = signalled_at(&sb, &args, &format!("restore {slug}"), nix::sys::signal::Signal::SIGINT);
    assert!(stderr(&out).contains("lifeboat: interrupted: nothing was restored"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(sb.home.join("big/f0")).unwrap(), "changed", "nothing was changed");
    assert_eq!(
        fs::read_to_string(sb.home.join("service")).unwrap(),
        "stopped\nstarted\n",
        "what before_restore stopped is started again"
    );
}

/// Hostile review: Ctrl-C during the safety backup (the long read of every file the restore
/// replaces) did not stop it: the safety backup was read and stored whole, and only then the
/// restore stopped, leaving a "safety backup before restoring" of a restore that never was.
/// It stops there: no safety backup, no lock, nothing changed.
#[test]
fn ctrl_c_during_the_safety_backup_stops_it_there() {
    let sb = sandbox();
    let slug = sb.backup(&["--unit", "big"])["slug"].as_str().unwrap().to_string();
    let before = backups(&sb);
    let f0 = sb.home.join("big/f0");
    fs::write(&f0, "changed").unwrap();
    let args = ["backups", "restore", slug.as_str(), "--unit", "big"];
    let out = signalled_at(&sb, &args, &format!("read {}", f0.display()), nix::sys::signal::Signal::SIGINT);
    assert!(stderr(&out).contains("lifeboat: interrupted: nothing was restored"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&f0).unwrap(), "changed", "nothing was changed");
    assert_eq!(locks_in(&sb.repo), 0, "a lock was left");
    let list = sb.ok(&["backups", "list", "--json"]);
    assert_eq!(backups(&sb), before, "no safety backup was stored: {list}");
    let names: Vec<_> = fs::read_dir(sb.home.join("big")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 3, "nothing written beside the files: {names:?}");
}
