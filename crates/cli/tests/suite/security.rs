//! Secrets stay secret: passwords, keys, tokens and location credentials never appear in
//! output, errors, logs, events or the API; files that hold secrets are readable by their
//! owner only. (Restores that never follow a planted symlink are in fidelity.rs and
//! backup_files.rs; the daemon's refusals without a token in daemon.rs and web.rs; its
//! loopback-only default in crates/daemon's unit tests.)

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use crate::common::daemon::Daemon;
use crate::common::*;

const S3_SECRET: &str = "S3-SECRET-9f8e7d6c5b4a";
const DAV_PASSWORD: &str = "DAV-PASSWORD-1a2b3c4d";
const SFTP_PASSWORD: &str = "SFTP-PASSWORD-5e6f7a8b";
const DAV_URL_PASSWORD: &str = "DAV-URL-PASSWORD-7e8f9a";
const NEW_PASSWORD: &str = "NEW-REPO-PASSWORD-0c1d2e";
const WRONG_PASSWORD: &str = "WRONG-PASSWORD-3f4a5b";
const WEB_PASSWORD: &str = "WEB-PAGE-PASSWORD-6c7d8e";

fn all_text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn every_file_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    walkdir(dir)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap_or_default()))
        .collect()
}

#[test]
fn secrets_never_appear_in_output_logs_events_or_the_api() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    std::fs::write(sb.home.join("docs/a"), "a").unwrap();
    // Locations whose servers do not answer: every command that touches them fails, and its
    // error must not carry their credentials.
    let mut cfg = std::fs::read_to_string(&sb.config).unwrap();
    cfg.push_str(&format!(
        "\n[location.cloud]\ntype = \"s3\"\nbucket = \"b\"\nendpoint = \"http://127.0.0.1:9\"\naccess_key_id = \"AKIDEXAMPLE\"\nsecret_access_key = \"{S3_SECRET}\"\n\
         \n[location.dav]\ntype = \"webdav\"\nurl = \"http://127.0.0.1:9/dav\"\nusername = \"u\"\npassword = \"{DAV_PASSWORD}\"\n\
         \n[location.dav2]\ntype = \"webdav\"\nurl = \"http://someone:{DAV_URL_PASSWORD}@127.0.0.1:9/dav2\"\n\
         \n[location.ssh]\ntype = \"sftp\"\nhost = \"127.0.0.1\"\nport = 9\nuser = \"u\"\npassword = \"{SFTP_PASSWORD}\"\n"
    ));
    std::fs::write(&sb.config, cfg).unwrap();
    let repo_password = std::fs::read_to_string(&sb.password_file).unwrap().trim().to_string();
    let new_pw = sb.dir.path().join("new-password");
    std::fs::write(&new_pw, format!("{NEW_PASSWORD}\n")).unwrap();
    let wrong_pw = sb.dir.path().join("wrong-password");
    std::fs::write(&wrong_pw, format!("{WRONG_PASSWORD}\n")).unwrap();
    let web_pw = sb.dir.path().join("web-password");
    std::fs::write(&web_pw, format!("{WEB_PASSWORD}\n")).unwrap();

    let seen: std::cell::RefCell<Vec<(String, Vec<u8>)>> = Default::default();
    let run = |args: &[&str]| {
        let out = sb.run(args);
        seen.borrow_mut().push((format!("lifeboat {args:?}"), all_text(&out).into_bytes()));
        out
    };
    let slug = {
        let out = run(&["backups", "new", "--json", "--quiet"]);
        assert!(out.status.success());
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["slug"].as_str().unwrap().to_string()
    };
    for loc in ["cloud", "dav", "dav2", "ssh"] {
        assert!(!run(&["backups", "new", "--location", loc]).status.success(), "{loc} does not answer");
        run(&["locations", "check", loc]);
    }
    run(&["locations", "list"]);
    run(&["locations", "list", "--json"]);
    run(&["backups", "list"]);
    run(&["backups", "info", &slug, "--json"]);
    run(&["key", "add", "--new-password-file", new_pw.to_str().unwrap()]);
    run(&["key", "list"]);
    run(&["passwd", "--from-file", web_pw.to_str().unwrap()]);
    run(&["check"]);
    run(&["logs", "--last"]);
    let wrong =
        sb.bare_command().args(["--password-file", wrong_pw.to_str().unwrap(), "backups", "list"]).output().unwrap();
    assert!(!wrong.status.success());
    seen.borrow_mut().push(("a wrong password".into(), all_text(&wrong).into_bytes()));
    let export = sb.dir.path().join("export.tar");
    run(&["backups", "export", &slug, "-o", export.to_str().unwrap()]);

    // The daemon: every route a person or a script reads, and a failing job.
    let d = Daemon::start(&sb);
    for path in
        ["/api/locations", "/api/backups", "/api/units", "/api/schedules", "/api/status", "/api/logs", "/metrics"]
    {
        let r = d.get(path);
        seen.borrow_mut().push((path.into(), r.bytes().unwrap().to_vec()));
    }
    let (_, started) = d.json(reqwest::Method::POST, "/api/backups", serde_json::json!({"location": "cloud"}));
    let job = started["job"].as_u64().unwrap();
    let (done, _) = d.follow(job);
    assert_eq!(done["state"], "failed", "{done}");
    seen.borrow_mut().push(("the failed job".into(), done.to_string().into_bytes()));
    for path in ["/api/jobs", "/api/events?limit=500", &format!("/api/backups/{slug}")] {
        seen.borrow_mut().push((path.to_string(), d.get(path).bytes().unwrap().to_vec()));
    }
    let logs: serde_json::Value = serde_json::from_slice(&d.get("/api/logs").bytes().unwrap()).unwrap();
    for l in logs.as_array().unwrap() {
        let name = l["name"].as_str().unwrap();
        seen.borrow_mut()
            .push((format!("log {name} (API)"), d.get(&format!("/api/logs/{name}")).bytes().unwrap().to_vec()));
    }
    let token = d.token.clone();
    assert!(d.stop().success());

    // Everything Lifeboat wrote for people: logs, the events database, the backup file's
    // manifest and checksums.
    seen.borrow_mut().extend(every_file_under(&sb.dir.path().join("xdg-state")));
    for (name, bytes) in every_file_under(&sb.dir.path().join("xdg-data")) {
        if name.ends_with("api-token") || name.ends_with("web-password") {
            continue;
        }
        seen.borrow_mut().push((name, bytes));
    }
    let manifest = std::process::Command::new("tar").arg("-xOf").arg(&export).arg("backup.json").output().unwrap();
    seen.borrow_mut().push(("the exported backup.json".into(), manifest.stdout));

    let seen = seen.into_inner();
    let secrets = [
        repo_password.as_str(),
        S3_SECRET,
        DAV_PASSWORD,
        DAV_URL_PASSWORD,
        SFTP_PASSWORD,
        NEW_PASSWORD,
        WRONG_PASSWORD,
        WEB_PASSWORD,
        token.as_str(),
    ];
    assert!(seen.len() > 30, "enough was looked at: {}", seen.len());
    for (what, bytes) in &seen {
        let text = String::from_utf8_lossy(bytes);
        for s in secrets {
            assert!(!text.contains(s), "{what} shows the secret {s}:\n{text}");
        }
    }
}

/// `base64 -w0` of `text`: how a password travels in an HTTP Basic `Authorization` header.
fn base64(text: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("base64 (coreutils)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

#[test]
fn secrets_never_appear_in_trace_logs_of_real_s3_webdav_and_sftp_operations() {
    use crate::common::servers::{Seaweed, Sshd, Webdav};
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    std::fs::write(sb.home.join("docs/a"), "a").unwrap();
    let mut s3 = Seaweed::start(&sb.dir.path().join("weed"));
    s3.create_bucket("traced");
    let dav = Webdav::start(&sb.dir.path().join("webdav"));
    let sshd = Sshd::start(&sb.dir.path().join("sshd"));
    let mut cfg = std::fs::read_to_string(&sb.config).unwrap();
    cfg.push_str(&format!("\n[location.s3]\n{}", s3.location_toml("traced", "/repo")));
    cfg.push_str(&format!("\n[location.dav]\n{}", dav.location_toml("/repo")));
    // A password the server is sent (and refuses: it takes keys only).
    cfg.push_str(&format!(
        "\n[location.ssh]\ntype = \"sftp\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\npath = \"/tmp/lifeboat-never\"\npassword = \"{SFTP_PASSWORD}\"\nknown_hosts = \"{}\"\n",
        sshd.port,
        sshd.user,
        sshd.known_hosts.display()
    ));
    std::fs::write(&sb.config, cfg).unwrap();
    // The repository password through the environment this time.
    let repo_password = std::fs::read_to_string(&sb.password_file).unwrap().trim().to_string();
    let run = |args: &[&str]| {
        sb.bare_command()
            .env("LIFEBOAT_PASSWORD", &repo_password)
            .env("LIFEBOAT_LOG", "trace")
            .args(args)
            .output()
            .unwrap()
    };
    let mut seen = Vec::new();
    for loc in ["s3", "dav"] {
        let made = run(&["backups", "new", "--location", loc]);
        assert!(made.status.success(), "{loc}: {}", all_text(&made));
        let listed = run(&["backups", "list", "--location", loc]);
        assert!(listed.status.success(), "{loc}: {}", all_text(&listed));
        seen.push((format!("a backup to {loc}"), all_text(&made)));
        seen.push((format!("the list of {loc}"), all_text(&listed)));
    }
    let refused = run(&["backups", "new", "--location", "ssh"]);
    assert!(!refused.status.success(), "{}", all_text(&refused));
    seen.push(("a backup over SFTP with a refused password".into(), all_text(&refused)));
    // The level was really trace: the signer's and the HTTP client's own lines are there.
    assert!(seen[0].1.contains("TRACE") && seen[0].1.contains("reqsign"), "{}", seen[0].1);
    for (name, bytes) in every_file_under(&sb.dir.path().join("xdg-state")) {
        seen.push((name, String::from_utf8_lossy(&bytes).into_owned()));
    }

    let secrets = [
        ("the S3 secret key", s3.secret_key.clone()),
        ("the S3 access key", s3.access_key.clone()),
        ("the WebDAV password", dav.password.clone()),
        ("the WebDAV Basic credentials", base64(&format!("{}:{}", dav.user, dav.password))),
        ("the SFTP password", SFTP_PASSWORD.to_string()),
        ("the repository password", repo_password.clone()),
    ];
    // Every leak, each with its line (the secret masked), to say which library printed it.
    let mut leaks = Vec::new();
    for (what, text) in &seen {
        for (name, secret) in &secrets {
            for line in text.lines().filter(|l| l.contains(secret.as_str())) {
                leaks.push(format!("{what} shows {name}: {}", line.replace(secret.as_str(), "<SECRET>")));
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

#[test]
fn files_that_hold_secrets_are_readable_by_their_owner_only() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    std::fs::write(sb.home.join("docs/a"), "a").unwrap();
    // No password: the first backup makes this device's key.
    let out = sb.run_without_password(&["backups", "new", "--quiet"]);
    assert!(out.status.success(), "{}", all_text(&out));
    let web_pw = sb.dir.path().join("web-password.txt");
    std::fs::write(&web_pw, "a web page password\n").unwrap();
    sb.ok(&["passwd", "--from-file", web_pw.to_str().unwrap()]);
    sb.ok(&["token"]);
    // A location added with a secret writes it into the configuration file.
    sb.ok(&["locations", "add", "cloud", "--type", "s3", "--set", "bucket=b", "--set", "secret_access_key=abc"]);

    let config = sb.dir.path().join("xdg-config/lifeboat");
    let data = sb.dir.path().join("xdg-data/lifeboat");
    let key = config.join("keys/local.key");
    for file in [key.clone(), data.join("api-token"), data.join("web-password"), sb.config.clone()] {
        let mode = std::fs::metadata(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())).permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is {:o}: others can read it", file.display(), mode & 0o777);
    }
    let keys_dir = std::fs::metadata(config.join("keys")).unwrap().permissions().mode();
    assert_eq!(keys_dir & 0o077, 0, "the keys folder is {:o}", keys_dir & 0o777);
    // The key slot the device remembers (opened again by a second backup): 0600 in 0700.
    let out = sb.run_without_password(&["backups", "new", "--quiet"]);
    assert!(out.status.success(), "{}", all_text(&out));
    let slots = sb.dir.path().join("xdg-cache/lifeboat/slots");
    let folder = std::fs::metadata(&slots).unwrap_or_else(|e| panic!("{}: {e}", slots.display())).permissions().mode();
    assert_eq!(folder & 0o077, 0, "the remembered slots' folder is {:o}", folder & 0o777);
    let remembered: Vec<_> = std::fs::read_dir(&slots).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(remembered.len(), 1, "{remembered:?}");
    let mode = std::fs::metadata(&remembered[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{} is {:o}: others can read it", remembered[0].display(), mode & 0o777);
}

#[test]
fn hooks_and_command_units_never_see_the_password_or_a_locations_secret() {
    // A unit that writes its whole environment into the backup, as a careless export would.
    let sb = Sandbox::new(
        "[unit.env]\ntype = \"command\"\nexport = 'env > \"$LIFEBOAT_DIR/env\"'\nimport = 'true'\n\
         before_backup = 'env > ~/hook-env'\n",
    );
    let mut cfg = std::fs::read_to_string(&sb.config).unwrap();
    // A location whose secret comes from the environment (it is never reached: only read).
    cfg.push_str(
        "\n[location.s3]\ntype = \"s3\"\nendpoint = \"http://127.0.0.1:9\"\nbucket = \"b\"\n\
                  access_key_id = \"id\"\nsecret_access_key = \"$LIFEBOAT_TEST_S3_SECRET\"\n",
    );
    std::fs::write(&sb.config, cfg).unwrap();
    let out = sb
        .bare_command()
        .env("LIFEBOAT_PASSWORD", NEW_PASSWORD)
        .env("LIFEBOAT_TEST_S3_SECRET", S3_SECRET)
        .args(["backups", "new", "--quiet", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", all_text(&out));
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let slug = made["slug"].as_str().unwrap();
    let hook_env = std::fs::read_to_string(sb.home.join("hook-env")).unwrap();
    assert!(hook_env.contains("LIFEBOAT_UNIT=env"), "the hook ran: {hook_env}");
    let target = sb.dir.path().join("restored");
    let out = sb
        .bare_command()
        .env("LIFEBOAT_PASSWORD", NEW_PASSWORD)
        .args(["backups", "restore", slug, "--target", target.to_str().unwrap(), "--quiet"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", all_text(&out));
    let exported = std::fs::read_to_string(target.join("lifeboat-units/env/data/env")).unwrap();
    for (what, text) in [("the hook's environment", &hook_env), ("the exported environment", &exported)] {
        assert!(!text.contains(NEW_PASSWORD), "{what} holds the password");
        assert!(!text.contains("LIFEBOAT_PASSWORD"), "{what} names the password variable");
        assert!(!text.contains(S3_SECRET), "{what} holds a location's secret");
    }
}

#[test]
fn a_backup_name_has_a_length_and_one_line() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    for name in ["x".repeat(70_000), "two\nlines".to_string()] {
        let out = sb.run(&["backups", "new", "--name", &name, "--quiet"]);
        assert_eq!(out.status.code(), Some(2), "{}", all_text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("the backup's name"), "{}", all_text(&out));
    }
    sb.ok(&["backups", "new", "--name", &"y".repeat(200), "--quiet"]);
    let listed = sb.ok(&["backups", "list"]);
    assert!(listed.contains('…'), "a long name is cut in the table: {listed}");
    let d = Daemon::start(&sb);
    let (status, body) = d.json(reqwest::Method::POST, "/api/backups", serde_json::json!({"name": "z".repeat(70_000)}));
    assert_eq!(status, 400, "{body}");
}

#[test]
fn a_repository_and_lifeboats_own_files_are_readable_by_their_owner_only_and_check_warns_otherwise() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    std::fs::write(sb.home.join("docs/a"), "a").unwrap();
    sb.backup(&[]);
    let d = Daemon::start(&sb);
    let (status, started) = d.json(reqwest::Method::POST, "/api/backups", serde_json::json!({}));
    assert_eq!(status, 202, "{started}");
    let (job, _) = d.follow(started["job"].as_u64().unwrap());
    assert_eq!(job["state"], "succeeded", "{job}");
    d.stop();
    let data = sb.dir.path().join("xdg-data/lifeboat");
    let logs = sb.dir.path().join("xdg-state/lifeboat");
    let mut looked = 0;
    for root in [&sb.repo, &data, &logs] {
        for p in std::iter::once(root.clone()).chain(walkdir(root)) {
            let mode = std::fs::symlink_metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{} is {:o}: other users can read it", p.display(), mode & 0o777);
            looked += 1;
        }
    }
    assert!(
        data.join("events.sqlite").exists() && walkdir(&logs).iter().any(|p| p.extension().is_some_and(|e| e == "log"))
    );
    assert!(looked > 10, "looked at {looked}");
    assert!(!all_text(&sb.run(&["check"])).contains("other users"), "a private repository gets no warning");

    // One opened to others by hand: check says so, and how to close it.
    let slot = walkdir(&sb.repo.join("keys")).into_iter().find(|p| p.is_file()).unwrap();
    std::fs::set_permissions(&slot, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = sb.run(&["check"]);
    assert!(o.status.success(), "a warning, not damage: {}", all_text(&o));
    assert!(
        all_text(&o).contains("other users of this machine can read") && all_text(&o).contains("chmod"),
        "{}",
        all_text(&o)
    );
}

#[test]
fn the_api_refuses_a_relative_location_path_and_an_unknown_location() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    std::fs::write(sb.home.join("docs/a"), "a").unwrap();
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let d = Daemon::start(&sb);
    let (status, body) = d.json(
        reqwest::Method::POST,
        "/api/locations",
        serde_json::json!({"name": "card", "type": "local", "path": "relative/backups"}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("must start with / or ~/"), "{body}");
    assert!(!std::fs::read_to_string(&sb.config).unwrap().contains("card"), "nothing was added");
    let (status, body) = d.json(reqwest::Method::GET, "/api/backups?location=../../etc", serde_json::Value::Null);
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("no location named"), "{body}");
    let (status, body) = d.json(reqwest::Method::GET, "/api/backups?where=local", serde_json::Value::Null);
    assert_eq!(status, 400, "{body}");
    let (status, body) = d.json(reqwest::Method::GET, "/api/backups?location=local", serde_json::Value::Null);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["backups"][0]["slug"], slug.as_str());
}
