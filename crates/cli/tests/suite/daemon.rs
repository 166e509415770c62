//! `lifeboat serve` end to end: the HTTP API with its token, jobs followed over Server-Sent
//! Events, skipped and stale events, and the API against its own OpenAPI document
//! (schemathesis). Real daemon processes on free loopback ports.

use crate::common::daemon::{openapi_routes, Daemon};
use crate::common::*;
use std::io::Read;
use std::process::Stdio;

#[test]
fn backup_restore_and_delete_through_the_api() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n\n[unit.notes]\npaths = [\"~/notes\"]\n");
    for (d, n) in [("docs", 40), ("notes", 3)] {
        std::fs::create_dir_all(sb.home.join(d)).unwrap();
        for i in 0..n {
            std::fs::write(sb.home.join(format!("{d}/file-{i}")), random_bytes(50_000 + i * 1000, i as u64 + 1))
                .unwrap();
        }
    }
    let d = Daemon::start(&sb);

    // Every route but health refuses a missing or wrong token.
    for (method, path) in openapi_routes() {
        // Health, and signing in (which takes no token: it is how a session starts).
        let open = path == "/api/health" || (path == "/api/session" && method == reqwest::Method::POST);
        for token in [None, Some("wrong"), Some(&d.token[..d.token.len() - 1])] {
            let mut req = Daemon::client().request(method.clone(), format!("{}{path}", d.url));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let status = req.send().unwrap().status().as_u16();
            if open {
                assert!(status == 200 || path == "/api/session" && status == 400, "{method} {path}: {status}");
            } else {
                assert_eq!(status, 401, "{method} {path} with token {token:?}");
            }
        }
    }

    // A partial backup, followed to its end.
    let (status, started) =
        d.json(reqwest::Method::POST, "/api/backups", serde_json::json!({"units": ["docs"], "name": "from the API"}));
    assert_eq!(status, 202, "{started}");
    let (job, kinds) = d.follow(started["job"].as_u64().unwrap());
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["progress"]["percent"], 100.0);
    assert!(kinds.iter().any(|k| k == "log"), "log lines came: {kinds:?}");
    assert_eq!(kinds.last().map(String::as_str), Some("done"));
    let slug = job["result"]["slug"].as_str().unwrap().to_string();
    assert_eq!(job["result"]["type"], "partial");

    let list: serde_json::Value = d.get("/api/backups").json().unwrap();
    assert!(
        list["backups"].as_array().unwrap().iter().any(|b| b["slug"] == slug.as_str() && b["name"] == "from the API"),
        "{list}"
    );
    let (status, details) = d.json(reqwest::Method::GET, &format!("/api/backups/{slug}"), serde_json::Value::Null);
    assert_eq!((status, details["unit_details"][0]["name"].as_str()), (200, Some("docs")));

    // Restore one unit under a target.
    let target = sb.dir.path().join("restored");
    let (status, started) = d.json(
        reqwest::Method::POST,
        &format!("/api/backups/{slug}/restore"),
        serde_json::json!({"units": ["docs"], "target": target}),
    );
    assert_eq!(status, 202, "{started}");
    let (job, _) = d.follow(started["job"].as_u64().unwrap());
    assert_eq!(job["state"], "succeeded", "{job}");
    let diffs = compare_trees(&sb.home.join("docs"), &rerooted(&target, &sb.home.join("docs")));
    assert!(diffs.is_empty(), "{diffs:?}");
    assert!(!rerooted(&target, &sb.home.join("notes")).exists(), "only the unit asked for");

    // Download it as a backup file, delete it, upload the file: it is back.
    let mut r = d.get(&format!("/api/backups/{slug}/download"));
    assert_eq!(r.status().as_u16(), 200);
    let announced: u64 = r.headers()["content-length"].to_str().unwrap().parse().unwrap();
    let mut file = Vec::new();
    r.read_to_end(&mut file).unwrap();
    assert_eq!(file.len() as u64, announced);

    let (pinned_status, pinned) =
        d.json(reqwest::Method::POST, &format!("/api/backups/{slug}/pin"), serde_json::json!({}));
    assert_eq!((pinned_status, &pinned["pinned"]), (200, &serde_json::json!(true)));
    let (status, deleted) = d.json(reqwest::Method::DELETE, &format!("/api/backups/{slug}"), serde_json::Value::Null);
    assert_eq!((status, deleted["deleted"].as_str()), (200, Some(slug.as_str())));
    let list: serde_json::Value = d.get("/api/backups").json().unwrap();
    assert!(!list["backups"].as_array().unwrap().iter().any(|b| b["slug"] == slug.as_str()));
    let (status, _) = d.json(reqwest::Method::GET, &format!("/api/backups/{slug}"), serde_json::Value::Null);
    assert_eq!(status, 404);

    let r = Daemon::client()
        .post(format!("{}/api/backups/upload", d.url))
        .bearer_auth(&d.token)
        .header("content-type", "application/octet-stream")
        .body(file)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let up: serde_json::Value = r.json().unwrap();
    assert_eq!((up["slug"].as_str(), &up["imported"]), (Some(slug.as_str()), &serde_json::json!(true)));

    let events: serde_json::Value = d.get("/api/events").json().unwrap();
    let kinds: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for k in ["backup_completed", "restore", "backup_deleted"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    let metrics = d.get("/metrics").text().unwrap();
    assert!(metrics.contains("lifeboat_job_bytes_total{kind=\"backup\"}"), "{metrics}");
    assert!(d.stop().success(), "SIGTERM stops the daemon cleanly");
}

#[test]
fn a_skipped_run_and_a_stale_location_are_events() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    let card = sb.dir.path().join("media/card");
    std::fs::create_dir_all(&card).unwrap();
    let mut cfg = std::fs::read_to_string(&sb.config).unwrap();
    cfg.push_str(&format!(
        "\n[location.card]\ntype = \"removable\"\npath = \"{}\"\n\n[schedule.nightly]\nevery = \"day\"\nat = \"03:00\"\nlocations = [\"card\"]\nwhen = [\"reachable\"]\n\n[daemon]\nstale_after = 1\n",
        card.display()
    ));
    std::fs::write(&sb.config, cfg).unwrap();
    let d = Daemon::start(&sb);
    // The card has never had a backup: stale, reported before the daemon answered.
    let events: serde_json::Value = d.get("/api/events?kind=stale").json().unwrap();
    let stale = &events[0];
    assert_eq!((stale["kind"].as_str(), stale["location"].as_str()), (Some("stale"), Some("card")), "{events}");
    assert!(stale["message"].as_str().unwrap().contains("no successful backup"), "{stale}");

    // The card is not mounted: the run is skipped, and why is recorded.
    let (status, decisions) = d.json(reqwest::Method::POST, "/api/schedules/nightly/run", serde_json::Value::Null);
    assert_eq!(status, 200, "{decisions}");
    assert!(decisions[0]["job"].is_null(), "{decisions}");
    let events: serde_json::Value = d.get("/api/events?kind=backup_skipped").json().unwrap();
    let skipped = &events[0];
    assert_eq!(skipped["schedule"], "nightly");
    let why = skipped["message"].as_str().unwrap();
    assert!(why.contains("skipped") && why.contains("no memory card or disk is mounted"), "{why}");
    let schedules: serde_json::Value = d.get("/api/schedules").json().unwrap();
    assert!(schedules[0]["next_run"].is_string(), "{schedules}");
    let out = sb.ok(&["events", "--json"]);
    assert!(out.contains("backup_skipped") && out.contains("stale"), "{out}");
    assert!(d.stop().success());
}

/// A memory card without root: its mount point is a link, to a folder of /dev/shm's tmpfs
/// (the card in: a filesystem other than the root's) or to a folder beside it on the root's
/// (the card out: nothing is mounted there).
struct LinkedCard {
    link: std::path::PathBuf,
    shm: tempfile::TempDir,
    out: std::path::PathBuf,
}

impl LinkedCard {
    fn new(sb: &Sandbox) -> LinkedCard {
        let shm = tempfile::Builder::new().prefix("lifeboat-card-").tempdir_in("/dev/shm").unwrap();
        let out = sb.dir.path().join("media/empty");
        std::fs::create_dir_all(&out).unwrap();
        let card = LinkedCard { link: sb.dir.path().join("media/card"), shm, out };
        card.take_out();
        card
    }

    fn point_to(&self, to: &std::path::Path) {
        let _ = std::fs::remove_file(&self.link);
        std::os::unix::fs::symlink(to, &self.link).unwrap();
    }

    fn take_out(&self) {
        self.point_to(&self.out);
    }

    fn insert(&self) {
        self.point_to(self.shm.path());
    }
}

/// A scheduled run skipped because the card is out is shown as skipped, with why, and not as
/// the schedule's last run; when the card is back, the scheduler makes it without waiting for
/// the next day.
#[test]
fn a_skipped_run_is_shown_as_skipped_and_runs_when_its_condition_holds_again() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    std::fs::write(sb.home.join("docs/a"), "a").unwrap();
    let card = LinkedCard::new(&sb);
    let mut cfg = std::fs::read_to_string(&sb.config).unwrap();
    cfg.push_str(&format!(
        "\n[location.card]\ntype = \"removable\"\npath = \"{}/lifeboat\"\n\n[schedule.nightly]\nevery = \"day\"\nat = \"03:00\"\nlocations = [\"card\"]\nwhen = [\"reachable\"]\n",
        card.link.display()
    ));
    std::fs::write(&sb.config, cfg).unwrap();
    // The card's repository is made by hand (a schedule makes none), then the card is out.
    card.insert();
    sb.backup(&["--location", "card"]);
    card.take_out();
    let d = Daemon::start(&sb);
    let (status, decisions) = d.json(reqwest::Method::POST, "/api/schedules/nightly/run", serde_json::Value::Null);
    assert_eq!(status, 200, "{decisions}");
    assert!(decisions[0]["job"].is_null(), "{decisions}");

    let schedules: serde_json::Value = d.get("/api/schedules").json().unwrap();
    let nightly = &schedules[0];
    assert!(nightly["last_run"].is_null(), "a skipped run is not the last run: {nightly}");
    assert_eq!(nightly["last_outcome"]["kind"], "backup_skipped", "{nightly}");
    assert!(nightly["last_outcome"]["message"].as_str().unwrap().contains("no memory card"), "{nightly}");
    assert_eq!(nightly["waiting"][0]["location"], "card", "{nightly}");
    assert!(nightly["waiting"][0]["reason"].as_str().unwrap().contains("no memory card"), "{nightly}");
    let text = sb.ok(&["schedules", "list"]);
    assert!(text.contains("skipped") && text.contains("runs once its conditions hold"), "{text}");
    let listed: serde_json::Value = serde_json::from_str(&sb.ok(&["schedules", "list", "--json"])).unwrap();
    assert!(listed[0]["last_run"].is_null(), "{listed}");

    // The card is back: a tick of the scheduler (every 20 s) makes the skipped run.
    card.insert();
    let start = std::time::Instant::now();
    let nightly = loop {
        let schedules: serde_json::Value = d.get("/api/schedules").json().unwrap();
        let kind = schedules[0]["last_outcome"]["kind"].as_str().unwrap_or_default().to_string();
        if kind == "backup_completed" {
            break schedules[0].clone();
        }
        assert!(start.elapsed().as_secs() < 90, "the skipped run did not run with the card back: {schedules}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert!(nightly["last_run"].is_string(), "{nightly}");
    assert_eq!(nightly["waiting"], serde_json::json!([]), "{nightly}");
    assert!(card.shm.path().join("lifeboat").is_dir(), "the backup is on the card");
    let events: serde_json::Value = d.get("/api/events?kind=backup_skipped").json().unwrap();
    assert_eq!(events.as_array().unwrap().len(), 1, "skipped once, not at every tick: {events}");
    assert!(d.stop().success());
}

/// Right after a successful backup to a card, the card taken out (its mount point now on
/// another filesystem without a repository) is not stale.
#[test]
fn a_card_out_right_after_a_successful_backup_is_not_stale() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    std::fs::write(sb.home.join("docs/a"), "a").unwrap();
    let card = LinkedCard::new(&sb);
    let elsewhere = tempfile::Builder::new().prefix("lifeboat-other-").tempdir_in("/dev/shm").unwrap();
    let mut cfg = std::fs::read_to_string(&sb.config).unwrap();
    cfg.push_str(&format!(
        "\n[location.card]\ntype = \"removable\"\npath = \"{}/lifeboat\"\n\n[schedule.nightly]\nevery = \"day\"\nat = \"03:00\"\nlocations = [\"card\"]\n\n[daemon]\nstale_after = 1\n",
        card.link.display()
    ));
    std::fs::write(&sb.config, cfg).unwrap();
    card.insert();
    let d = Daemon::start(&sb);
    let (status, started) = d.json(reqwest::Method::POST, "/api/backups", serde_json::json!({"location": "card"}));
    assert_eq!(status, 202, "{started}");
    let (job, _) = d.follow(started["job"].as_u64().unwrap());
    assert_eq!(job["state"], "succeeded", "{job}");
    let status: serde_json::Value = d.get("/api/status").json().unwrap();
    assert_eq!(status["stale"], serde_json::json!([]), "{status}");

    // Out: where it was mounted is now a filesystem without the repository, or none at all.
    for out in [elsewhere.path(), card.out.as_path()] {
        card.point_to(out);
        let status: serde_json::Value = d.get("/api/status").json().unwrap();
        assert_eq!(status["stale"], serde_json::json!([]), "a card out is not stale: {status}");
    }
    assert!(d.stop().success());
}

#[test]
fn a_schedules_retention_removes_only_its_own_old_backups() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    let mut cfg = std::fs::read_to_string(&sb.config).unwrap();
    cfg.push_str("\n[schedule.hourly]\ncron = \"0 * * * *\"\nkeep_last = 1\n");
    std::fs::write(&sb.config, cfg).unwrap();
    // A backup made by hand, and one pinned later: neither is the schedule's to remove.
    let manual = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let d = Daemon::start(&sb);
    let mut made = Vec::new();
    for i in 0..3 {
        std::fs::write(sb.home.join(format!("docs/f{i}")), format!("version {i}")).unwrap();
        let (status, decisions) = d.json(reqwest::Method::POST, "/api/schedules/hourly/run", serde_json::Value::Null);
        assert_eq!(status, 200, "{decisions}");
        let (job, _) = d.follow(decisions[0]["job"].as_u64().expect("a job started"));
        assert_eq!(job["state"], "succeeded", "{job}");
        let slug = job["result"]["slug"].as_str().unwrap().to_string();
        if i == 0 {
            let (s, _) =
                d.json(reqwest::Method::POST, &format!("/api/backups/{slug}/pin"), serde_json::json!({"pinned": true}));
            assert_eq!(s, 200);
        }
        made.push(slug);
    }
    let list: serde_json::Value = d.get("/api/backups").json().unwrap();
    let mut left: Vec<String> =
        list["backups"].as_array().unwrap().iter().map(|b| b["slug"].as_str().unwrap().to_string()).collect();
    left.sort();
    let mut want = vec![manual, made[0].clone(), made[2].clone()];
    want.sort();
    assert_eq!(left, want, "kept: the manual backup, the pinned one, the newest; made {made:?}");
    let events: serde_json::Value = d.get("/api/events?kind=retention_removed").json().unwrap();
    assert!(events[0]["message"].as_str().unwrap().contains(&made[1]), "{events}");
    sb.ok(&["check", "--quiet"]);
    assert!(d.stop().success());
}

#[test]
fn the_apt_hook_is_installed_and_removed() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    // Nothing to warn about: the unit's folder is there, and so is the repository.
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    sb.run_without_password(&["backups", "new", "--quiet"]);
    let hook = sb.dir.path().join("80lifeboat");
    let out = sb
        .command()
        .env("LIFEBOAT_APT_HOOK", &hook)
        .args(["hooks", "install", "apt", "--unit", "docs"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&hook).unwrap();
    assert!(
        text.contains("DPkg::Pre-Invoke") && text.contains("backups new") && text.contains("--unit docs"),
        "{text}"
    );
    if let Ok(check) = std::process::Command::new("apt-config").arg("-c").arg(&hook).arg("dump").output() {
        let dump = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success() && dump.contains("DPkg::Pre-Invoke"), "APT reads it: {dump}");
    }
    let bad = sb
        .command()
        .env("LIFEBOAT_APT_HOOK", &hook)
        .args(["hooks", "install", "apt", "--unit", "nope"])
        .output()
        .unwrap();
    assert!(!bad.status.success(), "an unknown unit is refused");
    let out = sb.command().env("LIFEBOAT_APT_HOOK", &hook).args(["hooks", "remove", "apt"]).output().unwrap();
    assert!(out.status.success() && !hook.exists());
}

#[test]
fn the_api_survives_schemathesis_against_its_openapi_document() {
    let Some(st) = servers::find_program("st") else {
        assert!(std::env::var_os("CI").is_none(), "schemathesis (st) is missing: scripts/test installs it");
        eprintln!("skipped: schemathesis is not installed (scripts/test installs it)");
        return;
    };
    // The only location is a memory card that is not inserted: whatever the generated
    // requests ask, no backup can come to exist, so no generated restore can write anywhere.
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    std::fs::write(sb.home.join("docs/a"), "a").unwrap();
    let card = sb.dir.path().join("media/card");
    std::fs::create_dir_all(&card).unwrap();
    std::fs::write(
        &sb.config,
        format!(
            "default_location = \"card\"\n[location.card]\ntype = \"removable\"\npath = \"{}\"\n[unit.docs]\npaths = [\"~/docs\"]\n",
            card.display()
        ),
    )
    .unwrap();
    let d = Daemon::start(&sb);
    let report = sb.dir.path().join("schemathesis");
    // The document is behind the token too: fetched with it, then given to schemathesis.
    let doc = sb.dir.path().join("openapi.json");
    std::fs::write(&doc, d.get("/api/openapi.json").text().unwrap()).unwrap();
    let out = std::process::Command::new(st)
        .arg("run")
        .arg(&doc)
        .args(["--url", &d.url])
        .args(["--header", &format!("Authorization: Bearer {}", d.token)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "30", "--workers", "1"])
        // Adding a location writes the configuration and may create folders wherever a
        // generated path points; its refusals are covered by the web page's tests.
        .args(["--exclude-operation-id", "addLocation"])
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(sb.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::write(&report, &text);
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    assert!(d.stop().success());
    assert!(walkdir(&card).is_empty(), "nothing was written where the card would be");
}

#[test]
fn an_api_restore_into_another_home_is_undone_by_its_safety_backup() {
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\n");
    let mine = sb.home.join("notes");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("a"), "a from the backup").unwrap();
    std::fs::write(mine.join("c"), "c from the backup").unwrap();
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let before_mine = facts(&mine);

    // Another user's notes: an edited a, and b, which the backup does not hold.
    let other = sb.dir.path().join("users/defaultuser");
    let theirs = other.join("notes");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(theirs.join("a"), "defaultuser's own a").unwrap();
    std::fs::write(theirs.join("b"), "only defaultuser has b").unwrap();
    let before = facts(&theirs);

    let d = Daemon::start(&sb);
    let restore = |slug: &str, body: serde_json::Value| {
        let (status, started) = d.json(reqwest::Method::POST, &format!("/api/backups/{slug}/restore"), body);
        assert_eq!(status, 202, "{started}");
        let (job, _) = d.follow(started["job"].as_u64().unwrap());
        assert_eq!(job["state"], "succeeded", "{job}");
        job
    };
    // The plan first: answered at once, nothing changed.
    let (status, plan) = d.json(
        reqwest::Method::POST,
        &format!("/api/backups/{slug}/restore"),
        serde_json::json!({"units": ["notes"], "home": other, "mode": "replace", "dry_run": true}),
    );
    assert_eq!(status, 200, "{plan}");
    assert_eq!(planned(&plan, "delete"), vec![theirs.join("b").to_str().unwrap()], "{plan}");
    assert_eq!(facts(&theirs), before, "a dry run changes nothing");

    let job = restore(&slug, serde_json::json!({"units": ["notes"], "home": other, "mode": "replace"}));
    assert!(!theirs.join("b").exists(), "replace removed what the backup does not hold");
    assert_eq!(std::fs::read_to_string(theirs.join("a")).unwrap(), "a from the backup");
    let safety = job["result"]["safety_backup"].as_str().expect("a safety backup").to_string();

    // Restoring the safety backup into the same home gives that home back as it was.
    restore(&safety, serde_json::json!({"home": other}));
    assert_eq!(facts(&theirs), before, "the undo is exact");
    assert_eq!(facts(&mine), before_mine, "the daemon user's own notes were never touched");
}

/// A freshly started daemon copies a backup to another location (its repository was never
/// opened before the copy job), and the copy restores what the original holds.
#[test]
fn a_fresh_daemon_copies_a_backup_through_the_api() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs/deep")).unwrap();
    for i in 0..12 {
        std::fs::write(sb.home.join(format!("docs/deep/f{i}")), random_bytes(70_000 + i * 333, 90 + i as u64)).unwrap();
    }
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    sb.add_local_location("card");
    let d = Daemon::start(&sb);
    let (status, body) =
        d.json(reqwest::Method::POST, &format!("/api/backups/{slug}/copy"), serde_json::json!({"to": "card"}));
    assert_eq!(status, 202, "{body}");
    let (job, _) = d.follow(body["job"].as_u64().unwrap());
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result"]["copied"], true, "{job}");
    let (status, listed) = d.json(reqwest::Method::GET, "/api/backups?location=card", serde_json::Value::Null);
    assert_eq!(status, 200, "{listed}");
    assert!(listed["backups"].as_array().unwrap().iter().any(|b| b["slug"] == slug.as_str()), "{listed}");
    drop(d);
    let target = sb.dir.path().join("from-card");
    sb.ok(&["backups", "restore", &slug, "--location", "card", "--target", target.to_str().unwrap(), "--quiet"]);
    compare_trees(&sb.home.join("docs"), &rerooted(&target, &sb.home.join("docs")));
}

/// Each kind of error has one exit code and one HTTP status, the same on both sides
/// (docs/CONFIG.md, "Errors"): provoked here through the command line and the API alike.
#[test]
fn each_kind_of_error_has_one_exit_code_and_one_status() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    std::fs::write(sb.home.join("docs/a"), "a").unwrap();
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let d = Daemon::start(&sb);
    let code = |args: &[&str]| sb.run(args).status.code();
    let api = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        let (status, body) = d.json(method, path, body);
        (status, body["kind"].as_str().unwrap_or("").to_string())
    };
    // not found
    assert_eq!(code(&["backups", "info", "deadbeef"]), Some(2));
    assert_eq!(api(reqwest::Method::GET, "/api/backups/deadbeef", serde_json::Value::Null), (404, "not_found".into()));
    // bad input
    assert_eq!(code(&["backups", "new", "--unit", "nope", "--quiet"]), Some(2));
    assert_eq!(
        api(reqwest::Method::POST, "/api/backups", serde_json::json!({"units": ["nope"]})),
        (400, "bad_input".into())
    );
    // conflict: a backup copied to where it already is
    assert_eq!(code(&["backups", "copy", &slug, "--to", "local", "--location", "local"]), Some(6));
    assert_eq!(
        api(reqwest::Method::POST, &format!("/api/backups/{slug}/copy"), serde_json::json!({"to": "local"})),
        (409, "conflict".into())
    );
    // wrong key
    let wrong = sb.dir.path().join("wrong");
    std::fs::write(&wrong, "not the password\n").unwrap();
    let o = sb.bare_command().args(["--password-file", wrong.to_str().unwrap(), "backups", "list"]).output().unwrap();
    assert_eq!(o.status.code(), Some(5));
    // location unavailable: a memory card that is not inserted
    let mut cfg = std::fs::read_to_string(&sb.config).unwrap();
    cfg.push_str("\n[location.card]\ntype = \"removable\"\npath = \"/media/no-such-card\"\nlabel = \"NOCARD\"\n");
    std::fs::write(&sb.config, cfg).unwrap();
    assert_eq!(code(&["backups", "info", &slug, "--location", "card"]), Some(7));
    drop(d);
    let d = Daemon::start(&sb);
    let (status, body) =
        d.json(reqwest::Method::GET, &format!("/api/backups/{slug}?location=card"), serde_json::Value::Null);
    assert_eq!((status, body["kind"].as_str()), (424, Some("location_unavailable")), "{body}");
    drop(d);
    // wrong key, on the daemon's side: it has no secret for a password-protected repository
    let d = Daemon::start_without_password(&sb);
    let (status, body) =
        d.json(reqwest::Method::GET, &format!("/api/backups/{slug}?location=local"), serde_json::Value::Null);
    assert_eq!((status, body["kind"].as_str()), (403, Some("wrong_key")), "{body}");
}

/// A card's filesystem bound at a mount point for as long as it lives (a folder of /dev/shm's
/// tmpfs: its files outlive an unmount, as a card's do when it is taken out).
struct Card {
    point: std::path::PathBuf,
}

impl Card {
    fn insert(store: &std::path::Path, point: &std::path::Path) -> Card {
        let st = std::process::Command::new("mount").arg("--bind").arg(store).arg(point).status().unwrap();
        assert!(st.success(), "mount --bind {} {}", store.display(), point.display());
        Card { point: point.to_path_buf() }
    }
}

impl Drop for Card {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.point).status();
    }
}

#[test]
fn a_card_taken_out_while_the_daemon_runs_gets_no_backup_on_the_devices_own_storage() {
    if !is_root() {
        assert!(std::env::var_os("CI").is_none(), "taking a card out means unmounting: it needs root");
        eprintln!("skipped: mounting a card's filesystem needs root");
        return;
    }
    let sb = Sandbox::new("");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    std::fs::write(sb.home.join("docs/a"), random_bytes(300_000, 7)).unwrap();
    let shm = tempfile::Builder::new().prefix("lifeboat-card-").tempdir_in("/dev/shm").unwrap();
    let point = sb.dir.path().join("media/card");
    std::fs::create_dir_all(&point).unwrap();
    std::fs::write(
        &sb.config,
        format!(
            "default_location = \"card\"\n[location.card]\ntype = \"removable\"\npath = \"{}/lifeboat\"\n[unit.docs]\npaths = [\"~/docs\"]\n",
            point.display()
        ),
    )
    .unwrap();
    let backup = |d: &Daemon| {
        let (status, started) = d.json(reqwest::Method::POST, "/api/backups", serde_json::json!({}));
        assert_eq!(status, 202, "{started}");
        d.follow(started["job"].as_u64().unwrap()).0
    };

    let card = Card::insert(shm.path(), &point);
    let d = Daemon::start(&sb);
    let job = backup(&d);
    assert_eq!(job["state"], "succeeded", "with the card in: {job}");
    let first = job["result"]["slug"].as_str().unwrap().to_string();

    // The card is taken out while the daemon runs: its empty mount point is writable.
    drop(card);
    let job = backup(&d);
    assert_eq!(job["state"], "failed", "with the card out: {job}");
    let error = job["error"].to_string();
    assert!(error.contains("location card") && error.contains("mounted"), "the card is named as out: {error}");
    assert!(walkdir(&point).is_empty(), "nothing lands on the device's own storage: {:?}", walkdir(&point));

    // Back in, mounted anew (another device number), the backups on it are seen and the next
    // one goes there.
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "lifeboat-test-card"])
        .arg(&point)
        .status()
        .unwrap();
    assert!(st.success(), "mount tmpfs at {}", point.display());
    let _card = Card { point: point.clone() };
    let st = std::process::Command::new("cp").arg("-a").arg(shm.path().join("lifeboat")).arg(&point).status().unwrap();
    assert!(st.success(), "the card's files copied onto the new mount");
    let job = backup(&d);
    assert_eq!(job["state"], "succeeded", "with the card back: {job}");
    let list: serde_json::Value = d.get("/api/backups").json().unwrap();
    let slugs: Vec<&str> = list["backups"].as_array().unwrap().iter().filter_map(|b| b["slug"].as_str()).collect();
    assert!(slugs.contains(&first.as_str()) && slugs.len() == 2, "both backups on the card: {list}");
    assert!(d.stop().success());
}

/// `schedules list` and `schedules run` without a daemon: the run is the scheduler's (the
/// schedule's tag, its retention, its events, a skip and its reason where its conditions
/// refuse), and the listing shows its last run, how it went and its next run.
#[test]
fn schedules_are_listed_and_run_from_the_command_line() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    std::fs::write(sb.home.join("docs/a"), "a").unwrap();
    let card = sb.dir.path().join("media/card");
    std::fs::create_dir_all(&card).unwrap();
    let mut cfg = std::fs::read_to_string(&sb.config).unwrap();
    cfg.push_str(&format!(
        "\n[location.card]\ntype = \"removable\"\npath = \"{}\"\n\n[schedule.nightly]\nevery = \"day\"\nat = \"03:00\"\nkeep_last = 1\n\n[schedule.card]\nevery = \"week\"\ndays = [\"sun\"]\nlocations = [\"card\"]\nwhen = [\"reachable\"]\n",
        card.display()
    ));
    std::fs::write(&sb.config, cfg).unwrap();

    let before: serde_json::Value = serde_json::from_str(&sb.ok(&["schedules", "list", "--json"])).unwrap();
    let nightly = before.as_array().unwrap().iter().find(|s| s["name"] == "nightly").unwrap();
    assert!(nightly["last_run"].is_null() && nightly["last_outcome"].is_null(), "{nightly}");
    assert!(nightly["next_run"].is_string(), "{nightly}");

    // The repository is made by hand: a schedule makes none.
    let manual = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let mut slugs = Vec::new();
    for _ in 0..2 {
        let out = sb.ok(&["schedules", "run", "nightly"]);
        assert!(out.starts_with("local: backup ") && out.contains(" completed (1 file, 1 B)"), "{out}");
        slugs.push(out.split_whitespace().nth(2).unwrap().to_string());
    }
    // The card holds no repository: the list says so with exit 3, the local backups are there.
    let list: serde_json::Value = serde_json::from_slice(&sb.run(&["backups", "list", "--json"]).stdout).unwrap();
    let left: Vec<&str> = list.as_array().unwrap().iter().map(|b| b["slug"].as_str().unwrap()).collect();
    assert_eq!(left, [manual.as_str(), slugs[1].as_str()], "the schedule's retention (keep_last = 1) ran: {list}");
    assert_eq!(list[1]["tags"], serde_json::json!(["schedule:nightly"]), "{list}");

    let out = sb.run(&["schedules", "run", "card", "--json"]);
    assert_eq!(out.status.code(), Some(3), "a skipped run is a warning: {}", stderr(&out));
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs[0]["location"], "card", "{runs}");
    assert!(runs[0]["skipped"].as_str().unwrap().contains("no memory card or disk is mounted"), "{runs}");

    let after: serde_json::Value = serde_json::from_str(&sb.ok(&["schedules", "list", "--json"])).unwrap();
    let nightly = after.as_array().unwrap().iter().find(|s| s["name"] == "nightly").unwrap();
    assert!(nightly["last_run"].is_string(), "{nightly}");
    let outcome = nightly["last_outcome"]["message"].as_str().unwrap();
    assert_eq!(outcome, format!("schedule nightly removed 1 backup: {}", slugs[0]), "its newest event");
    let text = sb.ok(&["schedules", "list"]);
    assert!(text.contains("every day at 03:00") && text.contains("every week on sun at 02:00"), "{text}");
    assert!(text.contains("backup to card skipped: location card: no memory card"), "the card's outcome: {text}");

    let out = sb.run(&["schedules", "run", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no schedule nope"), "{}", stderr(&out));
    let events = sb.ok(&["events"]);
    assert!(events.contains("schedule card: backup to card skipped"), "{events}");
}
