//! The Backups page: its sessions refused and accepted over plain HTTP, then the page itself
//! driven through a real headless Chromium by Playwright (tests/web/e2e.mjs) against real
//! daemons on free loopback ports.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::daemon::{openapi_routes, Daemon};
use crate::common::*;

fn no_redirects() -> reqwest::blocking::Client {
    http().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn sandbox() -> Sandbox {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    std::fs::write(sb.home.join("docs/a"), "a").unwrap();
    sb
}

#[test]
fn without_a_session_every_page_and_api_request_is_refused() {
    let sb = sandbox();
    let d = Daemon::start(&sb);
    let c = no_redirects();

    // Pages go to the sign-in page; the app's own scripts and every API route answer 401.
    for page in ["/", "/backups/0123abcd", "/schedules", "/history", "/logs", "/jobs/1", "/anything"] {
        let r = c.get(format!("{}{page}", d.url)).send().unwrap();
        assert_eq!(r.status().as_u16(), 303, "{page}");
        let to = r.headers()["location"].to_str().unwrap().to_string();
        assert!(to.starts_with("/signin?next="), "{page} → {to}");
    }
    for asset in ["app.js", "api.js", "ui.js", "home.js", "backup.js", "schedules.js", "history.js", "welcome.js"] {
        assert_eq!(c.get(format!("{}/assets/{asset}", d.url)).send().unwrap().status().as_u16(), 401, "{asset}");
    }
    for open in ["/signin", "/assets/signin.js", "/assets/style.css", "/assets/icon.svg"] {
        assert_eq!(c.get(format!("{}{open}", d.url)).send().unwrap().status().as_u16(), 200, "{open}");
    }
    for (method, path) in openapi_routes() {
        if path == "/api/health" || path == "/api/session" && method == reqwest::Method::POST {
            continue;
        }
        for cookie in [None, Some("lifeboat_session=0123456789abcdef")] {
            let mut req = c.request(method.clone(), format!("{}{path}", d.url));
            if let Some(k) = cookie {
                req = req.header("cookie", k);
            }
            assert_eq!(req.send().unwrap().status().as_u16(), 401, "{method} {path} with cookie {cookie:?}");
        }
    }
    assert_eq!(c.post(format!("{}/api/nothing-here", d.url)).send().unwrap().status().as_u16(), 401);

    // A wrong secret: refused in words.
    let r = c.post(format!("{}/api/session", d.url)).body(r#"{"secret":"guess"}"#).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.text().unwrap().contains("lifeboat token"));

    // The token gives an HttpOnly, SameSite=Strict session cookie and a CSRF token.
    let body = serde_json::json!({ "secret": d.token }).to_string();
    let r = c.post(format!("{}/api/session", d.url)).body(body).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let cookie = set.split(';').next().unwrap().to_string();
    let csrf = r.json::<serde_json::Value>().unwrap()["csrf"].as_str().unwrap().to_string();
    let with = |m: reqwest::Method, p: &str| c.request(m, format!("{}{p}", d.url)).header("cookie", &cookie);
    assert_eq!(with(reqwest::Method::GET, "/api/backups").send().unwrap().status().as_u16(), 200);
    assert_eq!(with(reqwest::Method::GET, "/").send().unwrap().status().as_u16(), 200);
    assert_eq!(with(reqwest::Method::GET, "/assets/app.js").send().unwrap().status().as_u16(), 200);

    // A change needs the CSRF token, and not from another site.
    let backup = r#"{"units":["docs"]}"#;
    let r = with(reqwest::Method::POST, "/api/backups").body(backup).send().unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().unwrap().contains("reload the page"));
    let r = with(reqwest::Method::POST, "/api/backups")
        .header("x-lifeboat-csrf", &csrf)
        .header("sec-fetch-site", "cross-site")
        .body(backup)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // The token less its last hex digit, plus a different one.
    let last = if csrf.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &csrf[..csrf.len() - 1]);
    let r = with(reqwest::Method::POST, "/api/backups").header("x-lifeboat-csrf", wrong).body(backup).send().unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = with(reqwest::Method::POST, "/api/backups").header("x-lifeboat-csrf", &csrf).body(backup).send().unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let job = r.json::<serde_json::Value>().unwrap()["job"].as_u64().unwrap();
    let (done, _) = d.follow(job);
    assert_eq!(done["state"], "succeeded");

    // Signed out, the cookie opens nothing.
    let r = with(reqwest::Method::DELETE, "/api/session").header("x-lifeboat-csrf", &csrf).send().unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(with(reqwest::Method::GET, "/api/backups").send().unwrap().status().as_u16(), 401);
    assert_eq!(with(reqwest::Method::GET, "/").send().unwrap().status().as_u16(), 303);

    // A password set by `lifeboat passwd` signs in too.
    let pw = sb.dir.path().join("web-password.txt");
    std::fs::write(&pw, "a good long password\n").unwrap();
    sb.ok(&["passwd", "--from-file", pw.to_str().unwrap()]);
    let r = c.post(format!("{}/api/session", d.url)).body(r#"{"secret":"a good long password"}"#).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(d.stop().success());
}

/// Whether a `Location` answering a request to `here` leads to a page of the same site.
fn on_site(here: &reqwest::Url, location: &str) -> bool {
    // Text that a browser could read as another host is not on the site whatever it resolves to.
    let plain = location.starts_with('/') && !location.starts_with("//") && !location.starts_with("/\\");
    plain && here.join(location).is_ok_and(|to| to.origin() == here.origin())
}

#[test]
fn after_signing_in_next_leads_only_to_a_page_of_this_site() {
    let sb = sandbox();
    let d = Daemon::start(&sb);
    let c = no_redirects();
    let here = reqwest::Url::parse(&format!("{}/signin", d.url)).unwrap();
    let body = serde_json::json!({ "secret": d.token }).to_string();
    let r = c.post(format!("{}/api/session", d.url)).body(body).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    // Where the sign-in page sends a signed-in browser (the page's script goes there once
    // the sign-in succeeded): `query` as it stands in the link.
    let after_sign_in = |query: &str| -> String {
        let r = c.get(format!("{}/signin?{query}", d.url)).header("cookie", &cookie).send().unwrap();
        assert_eq!(r.status().as_u16(), 303, "{query}");
        r.headers()["location"].to_str().unwrap().to_string()
    };
    // The two of the issue, as written in a link: once followed, the browser was on evil.example.
    assert_eq!(after_sign_in("next=/%5Cevil.example/"), "/");
    assert_eq!(after_sign_in("next=/%09/evil.example"), "/");
    // Known tricks, each as typed into a link and as a form encodes it.
    let tricks = [
        "//evil.example",
        "//evil.example/a?b=c",
        "/\\evil.example",
        "\\/evil.example",
        "\\\\evil.example",
        "/%2F%2Fevil.example",
        "/%5C%5Cevil.example",
        "/%5Cevil.example",
        "https://evil.example/",
        "https:evil.example",
        "https:/\\evil.example",
        "http://evil.example@127.0.0.1.evil.example/",
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "\t//evil.example",
        " //evil.example",
        "///evil.example",
        "/.//evil.example",
        "/./\\evil.example",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
    ];
    for trick in tricks {
        let mut encoded = reqwest::Url::parse("http://x/").unwrap();
        encoded.query_pairs_mut().append_pair("next", trick);
        for query in [format!("next={trick}"), encoded.query().unwrap().to_string()] {
            let to = after_sign_in(&query);
            assert!(on_site(&here, &to), "next={trick:?} (as {query:?}) sent a signed-in browser to {to:?}");
        }
    }
    // Pages of this site: kept, query and all.
    assert_eq!(after_sign_in("next=%2Fbackups%2F0123abcd%3Flocation%3Dlocal"), "/backups/0123abcd?location=local");
    assert_eq!(after_sign_in("next=/schedules"), "/schedules");
    assert_eq!(after_sign_in(""), "/");
    assert_eq!(after_sign_in("next=/signin"), "/");

    // Without a session: the sign-in page itself (which writes `next` nowhere), and the
    // redirect to it from a page, whose `next` is that page only if it is one of this site.
    let r = c.get(format!("{}/signin?next=//evil.example", d.url)).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(!r.text().unwrap().contains("evil.example"));
    for path in ["//evil.example/", "//evil.example/a?b", "/%5Cevil.example/", "/\\evil.example/", "/%09/evil.example"]
    {
        let r = c.get(format!("{}{path}", d.url)).send().unwrap();
        assert_eq!(r.status().as_u16(), 303, "{path}");
        let to = r.headers()["location"].to_str().unwrap().to_string();
        assert!(to.starts_with("/signin?next="), "{path} → {to}");
        let next = here.join(&to).unwrap().query_pairs().find(|(k, _)| k == "next").unwrap().1.into_owned();
        assert!(on_site(&here, &next), "{path} → {to}: next is {next:?}");
    }
}

/// Where Playwright and Chromium are, or why the browser test cannot run.
#[test]
fn sign_ins_are_limited_per_address_counted_before_they_are_checked() {
    let sb = sandbox();
    let d = Daemon::start(&sb);
    let from = |ip: &str| http().local_address(ip.parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let sign_in = |c: &reqwest::blocking::Client, secret: &str| {
        let body = serde_json::json!({ "secret": secret }).to_string();
        c.post(format!("{}/api/session", d.url)).body(body).send().unwrap().status().as_u16()
    };
    // Sixty wrong guesses at once from one address: ten are checked, the rest turned away.
    let attacker = &from("127.0.0.1");
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let all: Vec<_> = (0..60).map(|i| s.spawn(move || sign_in(attacker, &format!("guess {i}")))).collect();
        all.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (10, 50), "{statuses:?}");
    // Even the right secret is not checked from there for a minute…
    assert_eq!(sign_in(&from("127.0.0.1"), &d.token), 429);
    // …while the real user, on another address, signs in.
    assert_eq!(sign_in(&from("127.0.0.2"), &d.token), 200);
}

fn browser_tools() -> Result<PathBuf, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web");
    if !Path::new("/usr/bin/chromium").exists() {
        return Err("Debian's chromium is not installed (scripts/test installs it)".into());
    }
    if !dir.join("node_modules/playwright-core").exists() {
        return Err("playwright-core is not installed in crates/cli/tests/web (scripts/test runs npm ci there)".into());
    }
    Ok(dir)
}

fn write_files(root: &Path, n: usize, seed: u64) {
    std::fs::create_dir_all(root.join("sub")).unwrap();
    for i in 0..n {
        let p = if i % 3 == 0 { root.join(format!("sub/file-{i}")) } else { root.join(format!("file-{i}")) };
        std::fs::write(p, random_bytes(20_000 + i * 3000, seed + i as u64)).unwrap();
    }
}

#[test]
fn the_backups_page_works_in_a_real_browser() {
    let dir = match browser_tools() {
        Ok(d) => d,
        Err(why) => {
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("skipped: {why}");
            return;
        }
    };
    // Device A: two units with files, one whose export fails, and a memory card that is not in.
    let units = "[unit.docs]\ntitle = \"Documents\"\npaths = [\"~/docs\"]\nnot_included = [\"Files in the cloud\"]\n\n\
                 [unit.notes]\npaths = [\"~/notes\"]\n\n\
                 [unit.broken]\ntitle = \"Contacts\"\ntype = \"command\"\n\
                 export = \"echo 'the contacts application is not installed' >&2; exit 3\"\nimport = \"true\"\n\n\
                 [unit.slow]\ntitle = \"Waits for the test\"\ntype = \"command\"\n\
                 export = \"cat \\\"$LIFEBOAT_FIFO\\\" > \\\"$LIFEBOAT_DIR/data\\\"\"\nimport = \"true\"\n";
    let a = Sandbox::new(units);
    write_files(&a.home.join("docs"), 30, 1);
    write_files(&a.home.join("notes"), 5, 100);
    let card = a.dir.path().join("media/card");
    std::fs::create_dir_all(&card).unwrap();
    let mut cfg = std::fs::read_to_string(&a.config).unwrap();
    cfg.push_str(&format!("\n[location.card]\ntype = \"removable\"\npath = \"{}\"\n", card.display()));
    std::fs::write(&a.config, cfg).unwrap();
    let other = a.add_local_location("other");
    // The `slow` unit's export waits until the test writes into this pipe: a job that runs
    // exactly as long as the test needs, with no sleeping.
    let fifo = a.dir.path().join("release");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // Device B: new, nothing backed up yet; C: new too, and with no password of its own.
    let b = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    let c = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    // C is a device of its own (on this same host): its id made, as its first backup would.
    let c_state = c.dir.path().join("xdg-config/lifeboat");
    std::fs::create_dir_all(&c_state).unwrap();
    std::fs::write(c_state.join("device-id"), "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0\n").unwrap();

    let da = Daemon::start_with_env(&a, "LIFEBOAT_FIFO", &fifo);
    let db = Daemon::start(&b);
    let dc = Daemon::start_without_password(&c);
    let target_c = c.dir.path().join("restored");
    let target_a = a.dir.path().join("restored");
    let target_b = b.dir.path().join("restored");
    let target_one = a.dir.path().join("one-file");
    let download = b.dir.path().join("downloaded.tar");
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    let status = std::process::Command::new("node")
        .arg("e2e.mjs")
        .current_dir(&dir)
        .env("LB_URL_A", &da.url)
        .env("LB_TOKEN_A", &da.token)
        .env("LB_URL_B", &db.url)
        .env("LB_TOKEN_B", &db.token)
        .env("LB_TARGET_A", &target_a)
        .env("LB_TARGET_B", &target_b)
        .env("LB_TARGET_ONE", &target_one)
        .env("LB_HOME_A", &a.home)
        .env("LB_DOWNLOAD", &download)
        .env("LB_FIFO", &fifo)
        .env("LB_URL_C", &dc.url)
        .env("LB_TOKEN_C", &dc.token)
        .env("LB_TARGET_C", &target_c)
        .env("LB_REPO_A", &other)
        .env("LB_PASSWORD_A", std::fs::read_to_string(&a.password_file).unwrap().trim())
        .env("LB_SHOTS", &shots)
        .stdin(Stdio::null())
        .status()
        .expect("running node");
    assert!(status.success(), "the browser test failed (screenshots in {})", shots.display());
    eprintln!("screenshots: {}", shots.display());

    // What the page restored is on disk, exactly: on A under its target, and on B (from the
    // uploaded backup file) under its own.
    let src = a.home.join("docs");
    for (target, home) in [(&target_a, &a.home), (&target_b, &b.home), (&target_c, &c.home)] {
        let restored = rerooted(target, &home.join("docs"));
        assert!(restored.join("file-1").exists(), "nothing restored at {}", restored.display());
        let diff = compare_trees(&src, &restored);
        assert!(diff.is_empty(), "{}: {diff:?}", restored.display());
        assert!(!rerooted(target, &home.join("notes")).exists(), "only the chosen unit is restored");
    }
    // The page's restore of one chosen file brought back that file, and nothing else.
    let one = rerooted(&target_one, &a.home.join("docs"));
    let landed: Vec<PathBuf> = walkdir(&target_one).into_iter().filter(|p| p.is_file()).collect();
    assert_eq!(landed, [one.join("file-2")], "only the chosen file");
    assert_eq!(std::fs::read(one.join("file-2")).unwrap(), std::fs::read(a.home.join("docs/file-2")).unwrap());
    // The weekly schedule the page set is in A's configuration.
    let cfg = std::fs::read_to_string(&a.config).unwrap();
    assert!(cfg.contains("[schedule.weekly]") && cfg.contains("every = \"week\""), "{cfg}");
    // In place, A's backup is C's only when the request names A's device.
    let (status, listed) = dc.json(reqwest::Method::GET, "/api/backups?location=old", serde_json::Value::Null);
    assert_eq!(status, 200, "{listed}");
    let theirs = listed["backups"].as_array().unwrap().iter().find(|b| b["name"] == "Web partial").expect("listed");
    assert_eq!(theirs["this_device"], false, "{theirs}");
    let device = theirs["device"].as_str().unwrap();
    let restore = format!("/api/backups/{}/restore?location=old", theirs["slug"].as_str().unwrap());
    let (status, refused) = dc.json(reqwest::Method::POST, &restore, serde_json::json!({}));
    assert_eq!(status, 400, "{refused}");
    assert!(refused.to_string().contains(&format!("from device {device}")), "{refused}");
    let (status, plan) = dc.json(
        reqwest::Method::POST,
        &restore,
        serde_json::json!({"from_device": device, "dry_run": true, "units": ["docs"]}),
    );
    assert_eq!(status, 200, "{plan}");
    assert!(da.stop().success());
    assert!(db.stop().success());
    assert!(dc.stop().success());
    // C connected with the password, but keeps only a key of its own.
    let keys = c.dir.path().join("xdg-config/lifeboat/keys/old.key");
    assert!(keys.exists(), "a device key was made for the connected location");
    let cfg = std::fs::read_to_string(&c.config).unwrap();
    assert!(!cfg.contains("correct horse"), "{cfg}");
}

#[test]
fn onboarding_brings_the_whole_setup_back_in_a_real_browser() {
    let dir = match browser_tools() {
        Ok(d) => d,
        Err(why) => {
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("skipped: {why}");
            return;
        }
    };
    // Device A: units, a schedule and locations of its own, one of them an SFTP server, and
    // a WebDAV one whose password no backup carries.
    let a = Sandbox::new("");
    let sshd = crate::common::servers::Sshd::start(&a.dir.path().join("sshd"));
    let remote = a.dir.path().join("remote");
    let mut cfg = std::fs::read_to_string(&a.config).unwrap();
    cfg.push_str(&format!(
        "\n[location.nas]\n{}\n[location.cloud]\ntype = \"webdav\"\nurl = \"https://dav.example/dav\"\n\
         username = \"anna\"\npassword = \"hunter2\"\n\n\
         [unit.docs]\ntitle = \"Documents\"\npaths = [\"~/docs\"]\n\n[unit.notes]\npaths = [\"~/notes\"]\n\n\
         [schedule.nightly]\nevery = \"day\"\nat = \"02:30\"\nunits = [\"docs\"]\nlocations = [\"nas\"]\n",
        sshd.location_toml(&remote, sshd.port)
    ));
    std::fs::write(&a.config, cfg).unwrap();
    write_files(&a.home.join("docs"), 4, 1);
    write_files(&a.home.join("notes"), 2, 50);
    a.backup(&["--location", "nas", "--name", "On the NAS"]);
    let slug = a.backup(&["--location", "local", "--name", "For the file"])["slug"].as_str().unwrap().to_string();
    let file = a.dir.path().join("a.tar");
    a.ok(&["backups", "export", &slug, "-o", file.to_str().unwrap(), "--quiet"]);
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(a.dir.path().join("sshd/host_key.pub"))
        .output()
        .unwrap();
    let fingerprint = String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).unwrap().to_string();

    // Device B: new, no password of its own, the SFTP server unknown to it.
    let b = Sandbox::new("");
    // Device D: new, set up from the backup file.
    let d = Sandbox::new("");
    // Each a device of its own (on this same host): its id made, as its first backup would.
    for (sb, id) in [(&b, "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"), (&d, "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0")] {
        let state = sb.dir.path().join("xdg-config/lifeboat");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("device-id"), format!("{id}\n")).unwrap();
    }
    let db = Daemon::start_without_password(&b);
    let dd = Daemon::start(&d);
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let status = std::process::Command::new("node")
        .arg("onboarding.mjs")
        .current_dir(&dir)
        .env("LB_URL_B", &db.url)
        .env("LB_TOKEN_B", &db.token)
        .env("LB_URL_D", &dd.url)
        .env("LB_TOKEN_D", &dd.token)
        .env("LB_SFTP_PORT", sshd.port.to_string())
        .env("LB_SFTP_USER", &sshd.user)
        .env("LB_SFTP_KEY", &sshd.key_file)
        .env("LB_SFTP_PATH", &remote)
        .env("LB_FINGERPRINT", &fingerprint)
        .env("LB_PASSWORD_A", std::fs::read_to_string(&a.password_file).unwrap().trim())
        .env("LB_FILE", &file)
        .env("LB_SHOTS", &shots)
        .stdin(Stdio::null())
        .status()
        .expect("running node");
    assert!(status.success(), "the browser test failed (screenshots in {})", shots.display());
    assert!(db.stop().success());
    assert!(dd.stop().success());

    // B trusted the server's key, in the known_hosts file it uses, and keeps a key of its own.
    let known = std::fs::read_to_string(b.home.join(".ssh/known_hosts")).unwrap();
    assert!(known.contains(&format!("[127.0.0.1]:{}", sshd.port)), "{known}");
    assert!(b.dir.path().join("xdg-config/lifeboat/keys/old.key").exists(), "a device key for the location");
    // B and D have A's units, schedule and locations; B the WebDAV password it was given again.
    for (sb, password) in [(&b, Some("webdav-again")), (&d, None)] {
        let cfg = std::fs::read_to_string(&sb.config).unwrap();
        for part in ["[unit.docs]", "[unit.notes]", "[schedule.nightly]", "[location.nas]", "[location.cloud]"] {
            assert!(cfg.contains(part), "{part} missing:\n{cfg}");
        }
        assert!(!cfg.contains("hunter2") && !cfg.contains("correct horse"), "no secret carried:\n{cfg}");
        assert_eq!(cfg.contains("webdav-again"), password.is_some(), "{cfg}");
        let units: serde_json::Value = serde_json::from_str(&sb.ok(&["units", "list", "--json"])).unwrap();
        let names: Vec<&str> = units.as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["docs", "notes"], "{units}");
    }
}
