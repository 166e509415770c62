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
    let pause = pause_dir(&sb);
    let child = sb
        .command()
        .args(["backups", "new", "--unit", "big"])
        .env("LIFEBOAT_PAUSE_AT", UPLOADING)
        .env("LIFEBOAT_PAUSE_DIR", &pause)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_paused(&pause);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    // A process the signal killed never takes the resume: that must fail the test, not hang it.
    std::thread::spawn(move || resume(&pause));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
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
