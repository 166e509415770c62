//! Applications around the restore of their data (issue 48, finding 3): a database restored
//! under the process that writes it loses every later write, so
//!
//! - a `sqlite` unit whose database another process has open for writing is not restored in
//!   place without `--force`: the refusal names that process (pid and command), nothing on
//!   disk changes, and a dry run says so too;
//! - the units of the home-automation profile stop Home Assistant before anything is written
//!   and start it again after (also when the restore fails), whether systemd or Docker runs
//!   it, only when it runs, and once however many units name it.
//!
//! Home Assistant is stood in for by a python3 process that holds the recorder database open
//! and writes to it; systemd, Docker and Podman by one script, put first on PATH as
//! `systemctl`, `docker` and `podman`, that really starts and stops that process and records
//! every call.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;

/// Stands in for an application writing its database: opens it, writes a row, says `ready
/// PID` on the FIFO `ack`, and holds it open until anything is written to the FIFO `ctl`;
/// then closes it and says `stopped`.
const WRITER: &str = r#"
import os, sqlite3, sys
db, ctl, ack = sys.argv[1:4]
c = sqlite3.connect(db)
c.execute("INSERT INTO events (what) VALUES ('written while running')")
c.commit()
with open(ack, "w") as f:
    f.write("ready %d\n" % os.getpid())
with open(ctl) as f:
    f.read()
c.close()
with open(ack, "w") as f:
    f.write("stopped\n")
"#;

/// A stand-in application: its FIFOs and the database it writes; killed when dropped if it
/// still runs (a failed test leaves no process behind).
struct Writer {
    dir: PathBuf,
    pid: std::cell::Cell<Option<u32>>,
    child: std::cell::RefCell<Option<std::process::Child>>,
}

impl Writer {
    fn new(dir: &Path, db: &Path) -> Writer {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("writer.py"), WRITER).unwrap();
        std::fs::write(dir.join("db"), db.as_os_str().as_encoded_bytes()).unwrap();
        for fifo in ["ctl", "ack"] {
            nix::unistd::mkfifo(&dir.join(fifo), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        }
        Writer { dir: dir.to_path_buf(), pid: std::cell::Cell::new(None), child: Default::default() }
    }

    /// The one whose FIFOs are in `dir` (made already).
    fn at(dir: &Path) -> Writer {
        Writer { dir: dir.to_path_buf(), pid: std::cell::Cell::new(None), child: Default::default() }
    }

    /// Starts it straight from the test; returns its pid once it holds the database.
    fn start(&self) -> u32 {
        let db = std::fs::read_to_string(self.dir.join("db")).unwrap();
        let child = Command::new("python3")
            .arg(self.dir.join("writer.py"))
            .args([Path::new(&db), &self.dir.join("ctl"), &self.dir.join("ack")])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("python3");
        *self.child.borrow_mut() = Some(child);
        let said = std::fs::read_to_string(self.dir.join("ack")).unwrap();
        let pid = said.trim().strip_prefix("ready ").and_then(|p| p.parse().ok()).expect("ready PID");
        self.pid.set(Some(pid));
        pid
    }

    /// Stops it and waits until it has closed the database.
    fn stop(&self) {
        std::fs::write(self.dir.join("ctl"), "stop\n").unwrap();
        assert_eq!(std::fs::read_to_string(self.dir.join("ack")).unwrap(), "stopped\n");
        self.pid.set(None);
        if let Some(mut c) = self.child.borrow_mut().take() {
            c.wait().unwrap();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
        if let Some(mut c) = self.child.get_mut().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn make_database(db: &Path, rows: &[&str]) {
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch("CREATE TABLE IF NOT EXISTS events (what TEXT)").unwrap();
    for r in rows {
        c.execute("INSERT INTO events (what) VALUES (?1)", [r]).unwrap();
    }
}

fn rows(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut s = c.prepare("SELECT what FROM events ORDER BY rowid").unwrap();
    s.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect()
}

fn said(out: &Output) -> String {
    format!("exit {:?}\nstdout: {}\nstderr: {}", out.status.code(), stdout(out), stderr(out))
}

#[test]
fn a_database_open_for_writing_is_not_restored_under_its_writer_without_force() {
    let sb = Sandbox::new("[unit.history]\ntype = \"sqlite\"\ndatabase = \"~/app/history.db\"\n");
    let db = sb.home.join("app/history.db");
    make_database(&db, &["backed up"]);
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    make_database(&db, &["after the backup"]);
    let writer = Writer::new(&sb.dir.path().join("writer"), &db);
    let pid = writer.start();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap().trim().to_string();
    let named = format!("pid {pid} ({comm})");
    let before = facts(&sb.home);

    // Refused, naming the writer and the ways on; nothing on disk changed.
    let out = sb.run(&["backups", "restore", &slug, "--unit", "history"]);
    assert_eq!(out.status.code(), Some(6), "{}", said(&out));
    let err = stderr(&out);
    assert!(err.contains(&named) && err.contains(&db.display().to_string()), "{}", said(&out));
    assert!(err.contains("--force") && err.contains("stop_while_restoring"), "{}", said(&out));
    assert_eq!(facts(&sb.home), before, "the refused restore changed nothing");
    assert!(restore_leftovers(&sb.home).is_empty());

    // A dry run says so too.
    let out = sb.run(&["backups", "restore", &slug, "--unit", "history", "--dry-run"]);
    assert_eq!(out.status.code(), Some(3), "{}", said(&out));
    assert!(stderr(&out).contains(&named), "{}", said(&out));
    let out = sb.run(&["backups", "restore", &slug, "--unit", "history", "--dry-run", "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["in_use"][0]["writers"][0]["pid"], pid, "{plan}");
    assert_eq!(facts(&sb.home), before);

    // The same from a backup file.
    let file = sb.dir.path().join("history.tar");
    sb.ok(&["backups", "export", &slug, "-o", file.to_str().unwrap(), "--quiet"]);
    let out = sb.run(&["backups", "restore", "--from-file", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(6), "{}", said(&out));
    assert!(stderr(&out).contains(&named), "{}", said(&out));
    assert_eq!(facts(&sb.home), before);

    // --force restores under it, with a warning that says whose writes may be lost.
    let out = sb.run(&["backups", "restore", &slug, "--unit", "history", "--force"]);
    assert_eq!(out.status.code(), Some(3), "{}", said(&out));
    assert!(stderr(&out).contains(&named), "{}", said(&out));
    writer.stop();
    assert_eq!(rows(&db), vec!["backed up"], "the backup's database is in place");

    // With the writer gone, the restore needs nothing more.
    make_database(&db, &["after the restore"]);
    let out = sb.run(&["backups", "restore", &slug, "--unit", "history"]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(rows(&db), vec!["backed up"]);
}

/// `systemctl`, `docker` and `podman` in one: the manager named in `STATE/manager` runs the
/// stand-in Home Assistant (as `home-assistant@homeassistant.service`, or as the container
/// `homeassistant` of image ghcr.io/home-assistant/home-assistant:stable); the others run
/// nothing. Every call is appended to `STATE/calls`.
const MANAGER: &str = r#"#!/bin/sh
state=@STATE@
me=$(basename "$0")
echo "$me $*" >> "$state/calls"
[ "$(cat "$state/manager")" = "$me" ] || exit 0
case "$1" in
  list-units|ps)
    [ -e "$state/running" ] || exit 0
    if [ "$me" = systemctl ]; then
      echo "home-assistant@homeassistant.service loaded active running Home Assistant"
    else
      printf 'homeassistant\tghcr.io/home-assistant/home-assistant:stable\n'
    fi;;
  stop)
    [ -e "$state/running" ] || exit 0
    echo stop > "$state/ctl"
    read said < "$state/ack"
    rm "$state/running";;
  start)
    [ -e "$state/running" ] && exit 0
    python3 "$state/writer.py" "$(cat "$state/db")" "$state/ctl" "$state/ack" </dev/null >/dev/null 2>&1 &
    read said < "$state/ack"
    echo "$said" > "$state/running";;
  *) echo "$me: $1 is not stood in for" >&2; exit 1;;
esac
"#;

/// A home-automation setup: the profile's units, a configuration and a recorder database, a
/// backup of them, and the stand-in managers first on PATH with Home Assistant run by
/// `manager` (not started yet).
struct HomeAutomation {
    sb: Sandbox,
    slug: String,
    db: PathBuf,
    state: PathBuf,
    path: String,
}

impl HomeAutomation {
    fn new(manager: &str) -> HomeAutomation {
        let sb = Sandbox::new("");
        sb.ok(&["units", "use", "home-automation"]);
        let ha = sb.home.join(".homeassistant");
        std::fs::create_dir_all(&ha).unwrap();
        std::fs::write(ha.join("configuration.yaml"), "homeassistant:\n  name: Home\n").unwrap();
        let db = ha.join("home-assistant_v2.db");
        make_database(&db, &["backed up"]);
        let slug = sb.backup(&["--unit", "config", "--unit", "recorder"])["slug"].as_str().unwrap().to_string();
        make_database(&db, &["after the backup"]);
        std::fs::write(ha.join("configuration.yaml"), "edited\n").unwrap();

        let state = sb.dir.path().join("managers");
        Writer::new(&state, &db);
        std::fs::write(state.join("manager"), manager).unwrap();
        std::fs::write(state.join("calls"), "").unwrap();
        let bin = sb.dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let script = MANAGER.replace("@STATE@", &format!("'{}'", state.display()));
        for name in ["systemctl", "docker", "podman"] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(bin.join(name), &script).unwrap();
            std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        HomeAutomation { sb, slug, db, state, path }
    }

    fn command(&self) -> Command {
        let mut c = self.sb.command();
        c.env("PATH", &self.path);
        c
    }

    /// Starts Home Assistant as its manager would; returns its pid.
    fn start(&self) -> u32 {
        let manager = std::fs::read_to_string(self.state.join("manager")).unwrap();
        let out = Command::new(self.sb.dir.path().join("bin").join(&manager))
            .args(["start", "the-stand-in"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", said(&out));
        self.running().expect("started")
    }

    /// The pid of the stand-in Home Assistant, when it runs.
    fn running(&self) -> Option<u32> {
        let said = std::fs::read_to_string(self.state.join("running")).ok()?;
        said.trim().strip_prefix("ready ")?.parse().ok()
    }

    /// The calls that changed something (stop and start), in order, with their manager.
    fn actions(&self) -> Vec<String> {
        std::fs::read_to_string(self.state.join("calls"))
            .unwrap()
            .lines()
            .filter(|l| l.split(' ').nth(1).is_some_and(|verb| verb == "stop" || verb == "start"))
            .map(str::to_string)
            .collect()
    }

    fn clear_calls(&self) {
        std::fs::write(self.state.join("calls"), "").unwrap();
    }
}

impl Drop for HomeAutomation {
    fn drop(&mut self) {
        if let Some(pid) = self.running() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

#[test]
fn the_home_automation_profile_stops_home_assistant_under_systemd_while_restoring_and_starts_it_after() {
    let ha = HomeAutomation::new("systemctl");
    let first = ha.start();
    ha.clear_calls();
    let service = "home-assistant@homeassistant.service";

    // Paused just before the first file is written: Home Assistant was stopped, once though
    // two units name it, and is not started yet.
    let pause = pause_dir(&ha.sb);
    let child = ha
        .command()
        .args(["backups", "restore", &ha.slug, "--unit", "config", "--unit", "recorder"])
        .env("LIFEBOAT_PAUSE_DIR", &pause)
        .env("LIFEBOAT_PAUSE_AT", format!("restore {}", ha.slug))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_paused(&pause);
    assert_eq!(ha.actions(), vec![format!("systemctl stop {service}")]);
    assert!(ha.running().is_none(), "stopped before anything is written");
    assert_eq!(rows(&ha.db), vec!["backed up", "after the backup", "written while running"], "nothing written yet");
    resume(&pause);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(ha.actions(), vec![format!("systemctl stop {service}"), format!("systemctl start {service}")]);
    let again = ha.running().expect("started again after the restore");
    assert_ne!(again, first);
    let err = stderr(&out);
    assert!(err.contains(&format!("Stopped systemd service {service}")), "{}", said(&out));
    assert!(err.contains(&format!("Started systemd service {service} again")), "{}", said(&out));
    let config = std::fs::read_to_string(ha.sb.home.join(".homeassistant/configuration.yaml")).unwrap();
    assert_eq!(config, "homeassistant:\n  name: Home\n");
    // What the restarted Home Assistant wrote went into the restored database.
    assert_eq!(rows(&ha.db), vec!["backed up", "written while running"]);

    // A dry run says what it would stop, and stops nothing.
    ha.clear_calls();
    let out = ha.command().args(["backups", "restore", &ha.slug, "--unit", "recorder", "--dry-run"]).output().unwrap();
    assert!(stdout(&out).contains(&format!("Would stop systemd service {service}")), "{}", said(&out));
    assert!(ha.actions().is_empty(), "{:?}", ha.actions());

    // A restore that fails after the stop starts it again: here another writer holds the
    // database, so the restore is refused.
    ha.clear_calls();
    let other = Writer::new(&ha.sb.dir.path().join("other"), &ha.db);
    let other_pid = other.start();
    let out = ha.command().args(["backups", "restore", &ha.slug, "--unit", "recorder"]).output().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", said(&out));
    assert!(stderr(&out).contains(&format!("pid {other_pid} (")), "{}", said(&out));
    assert_eq!(ha.actions(), vec![format!("systemctl stop {service}"), format!("systemctl start {service}")]);
    assert!(ha.running().is_some(), "started again after the failed restore");
    other.stop();

    // Not running: neither stopped nor started.
    Writer::at(&ha.state).stop();
    std::fs::remove_file(ha.state.join("running")).unwrap();
    ha.clear_calls();
    let out = ha.command().args(["backups", "restore", &ha.slug, "--unit", "recorder"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(ha.actions().is_empty(), "{:?}", ha.actions());
    assert!(ha.running().is_none());
}

#[test]
fn the_home_automation_profile_stops_the_home_assistant_container_while_restoring() {
    let ha = HomeAutomation::new("docker");
    ha.start();
    ha.clear_calls();
    let out = ha.command().args(["backups", "restore", &ha.slug, "--unit", "recorder"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(ha.actions(), vec!["docker stop homeassistant", "docker start homeassistant"]);
    assert!(stderr(&out).contains("Stopped docker container homeassistant"), "{}", said(&out));
    assert!(ha.running().is_some());
    assert_eq!(rows(&ha.db), vec!["backed up", "written while running"]);

    // The same around a restore from a backup file.
    let file = ha.sb.dir.path().join("ha.tar");
    ha.sb.ok(&["backups", "export", &ha.slug, "-o", file.to_str().unwrap(), "--quiet"]);
    ha.clear_calls();
    let out = ha
        .command()
        .args(["backups", "restore", "--from-file", file.to_str().unwrap(), "--unit", "recorder"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(ha.actions(), vec!["docker stop homeassistant", "docker start homeassistant"]);
    assert_eq!(rows(&ha.db), vec!["backed up", "written while running"]);
}

#[test]
fn the_api_refuses_the_same_database_restore_and_its_plan_names_the_writer() {
    let sb = Sandbox::new("[unit.history]\ntype = \"sqlite\"\ndatabase = \"~/app/history.db\"\n");
    let db = sb.home.join("app/history.db");
    make_database(&db, &["backed up"]);
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    make_database(&db, &["after the backup"]);
    let writer = Writer::new(&sb.dir.path().join("writer"), &db);
    let pid = writer.start();
    let before = facts(&sb.home);
    let d = crate::common::daemon::Daemon::start(&sb);
    let restore =
        |body: serde_json::Value| d.json(reqwest::Method::POST, &format!("/api/backups/{slug}/restore"), body);

    let (status, plan) = restore(serde_json::json!({"dry_run": true}));
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["in_use"][0]["writers"][0]["pid"], pid, "{plan}");
    assert!(plan["problems"][0].as_str().unwrap().contains(&format!("pid {pid} (")), "{plan}");

    let (status, started) = restore(serde_json::json!({}));
    assert_eq!(status, 202, "{started}");
    let (job, _) = d.follow(started["job"].as_u64().unwrap());
    assert_eq!(job["state"], "failed", "{job}");
    assert!(job["error"].as_str().unwrap().contains(&format!("pid {pid} (")), "{job}");
    assert_eq!(job["error_kind"], "conflict", "{job}");
    assert_eq!(facts(&sb.home), before, "the refused restore changed nothing");

    let (_, started) = restore(serde_json::json!({"force": true}));
    let (job, _) = d.follow(started["job"].as_u64().unwrap());
    assert_eq!(job["state"], "succeeded", "{job}");
    writer.stop();
    assert_eq!(rows(&db), vec!["backed up"]);
}
