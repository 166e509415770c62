//! What a new user met in the first week (issue 20), each as it should be now: backups that
//! stay in view, unattended runs on password-protected repositories, logs and history that are
//! there, the command line's rough edges, keeping and thinning backups, a daemon that sees an
//! edited configuration, and the page's schedule and stale state.

use std::fs;
use std::process::Output;

use crate::common::daemon::Daemon;
use crate::common::*;

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn ok(out: Output) -> String {
    let (o, e) = text(&out);
    assert!(out.status.success(), "failed ({:?}):\nstdout: {o}\nstderr: {e}", out.status.code());
    o
}

fn json(out: Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("JSON on stdout")
}

/// Finding 1: adding a location does not hide the backups of the implicit one, and a profile
/// does not silently stop backing up the home folder.
#[test]
fn backups_stay_in_view_when_the_configuration_grows() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    fs::create_dir_all(home.join("Documents")).unwrap();
    fs::write(home.join("Documents/letter.txt"), "Dear Lifeboat").unwrap();
    let made = json(bare(dir.path()).args(["backups", "new", "--json", "--quiet"]).output().unwrap());
    let slug = made["slug"].as_str().unwrap().to_string();

    let nas = dir.path().join("nas");
    let out = ok(bare(dir.path())
        .args(["locations", "add", "nas", "--type", "local", "--path", nas.to_str().unwrap()])
        .output()
        .unwrap());
    assert!(out.contains("still go to local") && out.contains("stay listed"), "locations add says what it did: {out}");
    let list = json(bare(dir.path()).args(["backups", "list", "--json"]).output().unwrap());
    assert_eq!(list[0]["slug"], slug.as_str(), "the earlier backup is still listed: {list}");
    assert_eq!(list[0]["location"], "local");
    ok(bare(dir.path()).args(["backups", "info", &slug]).output().unwrap());
    // A new backup still goes where the earlier ones are.
    let second = json(bare(dir.path()).args(["backups", "new", "--json", "--quiet"]).output().unwrap());
    assert_eq!(second["location"], "local");

    let out = ok(bare(dir.path()).args(["units", "use", "phone"]).output().unwrap());
    assert!(out.contains("Kept unit home"), "{out}");
    let units = json(bare(dir.path()).args(["units", "list", "--json"]).output().unwrap());
    let names: Vec<&str> = units.as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"home") && names.contains(&"notes"), "home stays beside the profile: {names:?}");
}

/// Finding 3: schedules and hooks open a password-protected repository through a key kept on
/// the device or the location's own password; a password meant for another location does not
/// stand in the way of a location's own key; a hook that cannot open it is said at install
/// time, and a run that fails leaves a log and an event.
#[test]
fn unattended_runs_open_password_protected_repositories() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    fs::create_dir_all(sb.home.join("docs")).unwrap();
    fs::write(sb.home.join("docs/a"), "a").unwrap();
    let first = sb.backup(&[]);
    assert_eq!(first["protected"], true);

    // With no key on the device: the hook is installed, with a warning; its run fails, and
    // leaves a log that says why and an event.
    let hook = sb.dir.path().join("80lifeboat");
    let out = sb.bare_command().env("LIFEBOAT_APT_HOOK", &hook).args(["hooks", "install", "apt"]).output().unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(3), "installed with a warning: {err}");
    assert!(err.contains("key add --device"), "{err}");
    let failed = sb.run_without_password(&["backups", "new", "--quiet"]);
    assert_eq!(failed.status.code(), Some(5), "{}", text(&failed).1);
    let log = ok(sb.bare_command().args(["logs", "--last"]).output().unwrap());
    assert!(log.contains("ERROR") && log.contains("no password"), "the failed run's log says why: {log}");
    let events = json(sb.bare_command().args(["events", "--json"]).output().unwrap());
    let failure = events.as_array().unwrap().iter().find(|e| e["kind"] == "backup_failed").expect("an event");
    assert_eq!(failure["location"], "local", "{failure}");

    // A key kept on the device: unattended runs open it, and their backups stay protected.
    let out = sb.ok(&["key", "add", "--device"]);
    assert!(out.contains("device key"), "{out}");
    let out = sb.bare_command().env("LIFEBOAT_APT_HOOK", &hook).args(["hooks", "install", "apt"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let unattended = json(sb.bare_command().args(["backups", "new", "--json", "--quiet"]).output().unwrap());
    assert_eq!(unattended["protected"], true, "a device key does not unprotect: {unattended}");
    // A password in the environment meant for another location gives way to the device key.
    let out =
        sb.bare_command().env("LIFEBOAT_PASSWORD", "another location's").args(["backups", "list"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out).1);

    // The location's own password, from a file named in its configuration.
    let other = tempfile::tempdir().unwrap();
    let sb2 = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    fs::create_dir_all(sb2.home.join("docs")).unwrap();
    sb2.backup(&[]);
    let secret = other.path().join("repo-password");
    fs::copy(&sb2.password_file, &secret).unwrap();
    let cfg = fs::read_to_string(&sb2.config).unwrap().replace(
        "type = \"local\"\n",
        &format!("type = \"local\"\nrepository_password_file = \"{}\"\n", secret.display()),
    );
    fs::write(&sb2.config, cfg).unwrap();
    let made = json(sb2.bare_command().args(["backups", "new", "--json", "--quiet"]).output().unwrap());
    assert_eq!(made["protected"], true);
}

/// Finding 5: a backup's log is its own, a failed run's log is not empty, logs are listed,
/// an unknown log is "not found", and backups made on the command line are in the history.
#[test]
fn logs_and_history_are_there() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    fs::create_dir_all(sb.home.join("docs")).unwrap();
    fs::write(sb.home.join("docs/a"), "a").unwrap();
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let target = sb.dir.path().join("r");
    sb.ok(&["backups", "restore", &slug, "--target", target.to_str().unwrap(), "--quiet"]);

    let log = sb.ok(&["logs", &slug]);
    assert!(log.contains(&format!("backup {slug}")), "the backup's own log, not its restore's: {log}");
    let restore_log = sb.ok(&["logs", &slug, "--restore"]);
    assert_ne!(log, restore_log);
    let listed = sb.ok(&["logs", "--list"]);
    assert!(listed.contains("backup") && listed.contains("restore") && listed.contains(&slug), "{listed}");
    let listed: serde_json::Value = serde_json::from_str(&sb.ok(&["logs", "--list", "--json"])).unwrap();
    assert_eq!(listed[0]["operation"], "restore", "newest first: {listed}");

    let missing = sb.run(&["logs", "deadbeef"]);
    assert_eq!(missing.status.code(), Some(2), "not found: {}", text(&missing).1);

    // A run that fails leaves a log with its reason, never an empty file.
    let broken = sb.run_without_password(&["backups", "new", "--quiet"]);
    assert_eq!(broken.status.code(), Some(5));
    for l in fs::read_dir(sb.dir.path().join("xdg-state/lifeboat/logs")).unwrap() {
        let l = l.unwrap().path();
        assert!(fs::metadata(&l).unwrap().len() > 0, "{} is empty", l.display());
    }

    let events = sb.ok(&["events"]);
    assert!(events.contains(&format!("backup {slug}")) && events.contains("local"), "{events}");
}

/// Finding 6: no panic on a closed pipe, counts in words, NEW never above SIZE, exit codes in
/// the help, a configuration error that still points at the place.
#[test]
fn the_command_lines_rough_edges_are_gone() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    fs::create_dir_all(sb.home.join("docs")).unwrap();
    fs::write(sb.home.join("docs/a"), "a").unwrap();
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();

    // A reader that went away before anything was written.
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let out = sb.command().args(["backups", "list"]).stdout(std::process::Stdio::from(write)).output().unwrap();
    let (_, err) = text(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "the shell's code for a closed pipe: {err}");

    let info = sb.ok(&["backups", "info", &slug]);
    assert!(info.contains("1 file;") && !info.contains("1 files"), "{info}");
    let est: serde_json::Value = serde_json::from_str(&sb.ok(&["estimate", "--json", "--quiet"])).unwrap();
    for u in est.as_array().unwrap() {
        assert!(u["new_bytes"].as_u64() <= u["bytes"].as_u64(), "NEW above SIZE: {u}");
    }
    let help = sb.ok(&["backups", "new", "--help"]);
    assert!(help.contains("Exit codes:") && help.contains("--tag <TAG>"), "{help}");

    fs::write(&sb.config, "[unit.docs]\npaths = [\"~/docs\"\n").unwrap();
    let out = sb.run(&["units", "list"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.lines().count() > 1 && err.contains('^'), "the caret under the mistake, on its own line: {err}");
}

/// Finding 7: pin and unpin, forget with retention's rules (a dry run first), list by tag.
#[test]
fn backups_are_kept_and_thinned_from_the_command_line() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    fs::create_dir_all(sb.home.join("docs")).unwrap();
    let mut slugs = Vec::new();
    for i in 0..4 {
        fs::write(sb.home.join("docs/f"), format!("version {i}")).unwrap();
        let tag = if i % 2 == 0 { "even" } else { "odd" };
        slugs.push(sb.backup(&["--tag", tag])["slug"].as_str().unwrap().to_string());
    }
    let even: serde_json::Value =
        serde_json::from_str(&sb.ok(&["backups", "list", "--tag", "even", "--json"])).unwrap();
    let even: Vec<&str> = even.as_array().unwrap().iter().map(|b| b["slug"].as_str().unwrap()).collect();
    assert_eq!(even.len(), 2);
    assert!(even.contains(&slugs[0].as_str()) && even.contains(&slugs[2].as_str()));
    assert!(sb.ok(&["backups", "info", &slugs[1]]).contains("odd"), "tags are shown");

    sb.ok(&["backups", "pin", &slugs[0]]);
    let plan: serde_json::Value =
        serde_json::from_str(&sb.ok(&["backups", "forget", "--keep-last", "1", "--dry-run", "--json"])).unwrap();
    let removed: Vec<&str> = plan["removed"].as_array().unwrap().iter().map(|b| b["slug"].as_str().unwrap()).collect();
    let mut want = vec![slugs[1].as_str(), slugs[2].as_str()];
    want.sort();
    let mut got = removed.clone();
    got.sort();
    assert_eq!(got, want, "the newest and the pinned one stay: {plan}");
    assert_eq!(sb.ok(&["backups", "list", "--json"]).matches("\"slug\"").count(), 4, "a dry run removes nothing");

    let out = sb.ok(&["backups", "forget", "--keep-last", "1"]);
    assert!(out.contains("Removed 2 backups"), "{out}");
    let left: serde_json::Value = serde_json::from_str(&sb.ok(&["backups", "list", "--json"])).unwrap();
    let mut left: Vec<&str> = left.as_array().unwrap().iter().map(|b| b["slug"].as_str().unwrap()).collect();
    left.sort();
    let mut want = vec![slugs[0].as_str(), slugs[3].as_str()];
    want.sort();
    assert_eq!(left, want);
    sb.ok(&["check", "--quiet"]);

    sb.ok(&["backups", "unpin", &slugs[0]]);
    sb.ok(&["backups", "forget", "--keep-last", "1"]);
    assert_eq!(sb.ok(&["backups", "list", "--json"]).matches("\"slug\"").count(), 1);
    let none = sb.run(&["backups", "forget"]);
    assert_eq!(none.status.code(), Some(2), "forget needs a rule: {}", text(&none).1);
}

/// Findings 4 and 8: the daemon sees an edited configuration (and SIGHUP does not stop it);
/// schedules show whether they are on and when they really ran; a card taken out right after
/// a successful backup is not "stale".
#[test]
fn the_daemon_sees_edits_and_shows_the_real_state() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    fs::create_dir_all(sb.home.join("docs")).unwrap();
    fs::write(sb.home.join("docs/a"), "a").unwrap();
    // A card: a folder on a mounted file system other than the root's (/dev/shm's tmpfs).
    let shm = tempfile::tempdir_in("/dev/shm").expect("a folder on /dev/shm");
    let card = shm.path().join("card");
    let config_with = |card: &std::path::Path| {
        let mut cfg = fs::read_to_string(&sb.config).unwrap();
        if let Some(at) = cfg.find("\n[location.card]") {
            cfg.truncate(at);
        }
        cfg.push_str(&format!(
            "\n[location.card]\ntype = \"removable\"\npath = \"{}\"\n\n[schedule.nightly]\nevery = \"day\"\nat = \"03:00\"\nlocations = [\"card\"]\n\n[daemon]\nstale_after = 1\n",
            card.display()
        ));
        fs::write(&sb.config, &cfg).unwrap();
        cfg
    };
    config_with(&card);
    sb.ok(&["backups", "new", "--location", "card", "--quiet"]);
    // Taken out: the location's folder is on this device's own storage now.
    let mut cfg = config_with(&sb.dir.path().join("media/card"));

    let d = Daemon::start(&sb);
    let schedules: serde_json::Value = d.get("/api/schedules").json().unwrap();
    assert_eq!(schedules[0]["enabled"], true, "{schedules}");
    assert!(schedules[0]["last_run"].is_null(), "it never ran: {schedules}");
    let status: serde_json::Value = d.get("/api/status").json().unwrap();
    assert_eq!(status["stale"], serde_json::json!([]), "a backup a moment ago is not stale: {status}");
    let stale: serde_json::Value = d.get("/api/events?kind=stale").json().unwrap();
    assert_eq!(stale, serde_json::json!([]), "{stale}");

    let nas = sb.dir.path().join("nas");
    cfg.push_str(&format!("\n[location.nas]\ntype = \"local\"\npath = \"{}\"\n", nas.display()));
    fs::write(&sb.config, &cfg).unwrap();
    let locations: serde_json::Value = d.get("/api/locations").json().unwrap();
    assert!(locations.as_array().unwrap().iter().any(|l| l["name"] == "nas"), "the edit is seen: {locations}");

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.child.id() as i32), nix::sys::signal::Signal::SIGHUP).unwrap();
    let status = d.get("/api/status");
    assert!(status.status().is_success(), "the daemon answers after SIGHUP");
    assert!(d.stop().success(), "and stops cleanly after");
}
