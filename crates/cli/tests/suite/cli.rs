//! The command line as a person meets it: defaults with no configuration, listings, logs,
//! estimates, and one-line errors with their exit codes for bad input.

use std::fs;

use crate::common::*;

#[test]
fn a_fresh_machine_backs_up_the_home_folder_with_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    fs::create_dir_all(home.join("Documents")).unwrap();
    fs::create_dir_all(home.join(".cache/big")).unwrap();
    fs::write(home.join("Documents/letter.txt"), "Dear Lifeboat").unwrap();
    fs::write(home.join(".cache/big/junk"), "cache").unwrap();

    let units = bare(dir.path()).args(["units", "list", "--json"]).output().unwrap();
    let units: serde_json::Value = serde_json::from_slice(&units.stdout).unwrap();
    assert_eq!(units[0]["name"], "home");
    assert_eq!(units[0]["files"], 1, "the letter; caches are excluded: {units}");
    assert_eq!(units[0]["size"], 13);

    let out = bare(dir.path()).args(["backups", "new", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(b["type"], "full");
    assert_eq!(b["protected"], false, "a generated device key is not a password");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Recovery key"), "the person is told about the recovery key: {err}");

    // The key was kept, readable by the user only, and opens the repository next time.
    let key = dir.path().join("config/lifeboat/keys/local.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(dir.path().join("data/lifeboat/backups/keys").is_dir(), "repository in $XDG_DATA_HOME/lifeboat/backups");

    let list = bare(dir.path()).args(["backups", "list", "--json"]).output().unwrap();
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let first = &list[0];
    for field in ["slug", "name", "date", "location", "type", "units", "size", "protected", "status"] {
        assert!(!first[field].is_null(), "backups list --json has {field}: {first}");
    }
    assert!(jiff::Timestamp::from_str_rfc3339(first["date"].as_str().unwrap()));

    // Caches are not in the default unit; the letter is.
    let target = dir.path().join("restore");
    let slug = first["slug"].as_str().unwrap();
    let out =
        bare(dir.path()).args(["backups", "restore", slug, "--target", target.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fs::read_to_string(rerooted(&target, &home.join("Documents/letter.txt"))).unwrap(), "Dear Lifeboat");
    assert!(!rerooted(&target, &home.join(".cache")).exists());

    // A log per run, shown by `logs SLUG` and `logs --last`.
    let log = bare(dir.path()).args(["logs", slug]).output().unwrap();
    assert!(String::from_utf8_lossy(&log.stdout).contains(slug));
    assert!(dir.path().join("state/lifeboat/logs").is_dir());
    let last = bare(dir.path()).args(["logs", "--last"]).output().unwrap();
    assert!(last.status.success());
}

trait Rfc3339 {
    fn from_str_rfc3339(s: &str) -> bool;
}
impl Rfc3339 for jiff::Timestamp {
    fn from_str_rfc3339(s: &str) -> bool {
        s.parse::<jiff::Timestamp>().is_ok() && s.contains('T')
    }
}

#[test]
fn bad_input_gets_one_line_and_an_exit_code() {
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\n");
    fs::create_dir_all(sb.home.join("notes")).unwrap();
    fs::write(sb.home.join("notes/a"), "a").unwrap();
    sb.backup(&[]);
    let cases: &[(&[&str], i32, &str)] = &[
        (&["backups", "new", "--unit", "nope"], 2, "no unit named nope"),
        (&["backups", "new", "--location", "moon"], 2, "no location named moon"),
        (&["backups", "info", "ffffffff"], 2, "no backup matches ffffffff"),
        (&["backups", "restore", "ffffffff"], 2, "no backup matches"),
        (&["logs", "ffffffff"], 2, "no log of backup ffffffff"),
    ];
    for (args, code, words) in cases {
        let out = sb.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
        assert!(err.contains(words), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line: {err}");
    }
    // A broken configuration names the file and the key.
    fs::write(&sb.config, "[unit.x]\npaths = [\"~\"]\nexclud = [\"a\"]\n").unwrap();
    let out = sb.run(&["units", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("lifeboat.toml") && err.contains("exclud"), "{err}");
    // A missing password file.
    fs::write(
        &sb.config,
        format!("[location.local]\npath = \"{}\"\n[unit.notes]\npaths = [\"~/notes\"]\n", sb.repo.display()),
    )
    .unwrap();
    fs::remove_file(&sb.password_file).unwrap();
    let out = sb.run(&["backups", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("password file") && err.trim_end().lines().count() == 1, "{err}");
}

#[test]
fn estimate_reports_what_would_be_new() {
    let sb = Sandbox::new("[unit.a]\npaths = [\"~/a\"]\n[unit.b]\npaths = [\"~/b\"]\n");
    for u in ["a", "b"] {
        fs::create_dir_all(sb.home.join(u)).unwrap();
        fs::write(sb.home.join(u).join("data"), random_bytes(300_000, u.as_bytes()[0] as u64)).unwrap();
    }
    let before: serde_json::Value = serde_json::from_str(&sb.ok(&["estimate", "--json"])).unwrap();
    assert_eq!(before[0]["new_bytes"], 300_000, "{before}");
    sb.backup(&["--unit", "a"]);
    fs::write(sb.home.join("b/more"), random_bytes(1000, 99)).unwrap();
    let after: serde_json::Value = serde_json::from_str(&sb.ok(&["estimate", "--json"])).unwrap();
    let a = after.as_array().unwrap().iter().find(|e| e["unit"] == "a").unwrap();
    let b = after.as_array().unwrap().iter().find(|e| e["unit"] == "b").unwrap();
    assert!(a["new_bytes"].as_u64().unwrap() < 2000, "only a's folder listing is new: {a}");
    assert_eq!(b["files"], 2);
    assert!(b["new_bytes"].as_u64().unwrap() >= 301_000, "{b}");
    let size_before = sb.repo_size();
    sb.ok(&["estimate"]);
    assert_eq!(sb.repo_size(), size_before, "estimate writes nothing");
}

#[test]
fn a_vanished_or_unreadable_path_is_a_warning_not_a_silent_drop() {
    let sb = Sandbox::new("[unit.a]\npaths = [\"~/a\", \"~/missing\"]\n");
    fs::create_dir_all(sb.home.join("a")).unwrap();
    fs::write(sb.home.join("a/x"), "x").unwrap();
    let out = sb.run(&["backups", "new", "--json", "--quiet"]);
    assert_eq!(out.status.code(), Some(3), "completed with warnings");
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(b["status"], "completed_with_warnings");
    assert_eq!(b["warnings"], 1);
    let info: serde_json::Value =
        serde_json::from_str(&sb.ok(&["backups", "info", b["slug"].as_str().unwrap(), "--json"])).unwrap();
    let w = info["unit_details"][0]["warnings"][0].as_str().unwrap();
    assert!(w.contains("missing") && w.contains("does not exist"), "{w}");
}

/// Issue 48, finding 4: with two locations and the wrong password, `backups list` used to
/// print "No backups yet" on standard output and exit 3, the real reason only on standard
/// error. Not one location could be listed: that is the error, with its own exit code.
#[test]
fn a_wrong_password_for_every_location_is_an_error_not_an_empty_list() {
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\n");
    fs::create_dir_all(sb.home.join("notes")).unwrap();
    fs::write(sb.home.join("notes/todo.txt"), "milk").unwrap();
    let second = sb.dir.path().join("second");
    let mut config = fs::read_to_string(&sb.config).unwrap();
    config.push_str(&format!("\n[location.second]\ntype = \"local\"\npath = \"{}\"\n", second.display()));
    fs::write(&sb.config, config).unwrap();
    for location in ["local", "second"] {
        sb.backup(&["--location", location]);
    }
    let wrong = sb.dir.path().join("wrong");
    fs::write(&wrong, "not the password\n").unwrap();
    let out = sb.bare_command().arg("--password-file").arg(&wrong).args(["backups", "list"]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(5), "the wrong password's exit code: {stdout}{stderr}");
    assert!(!stdout.contains("No backups yet"), "an unknown listing is not an empty one: {stdout}");
    assert!(stderr.contains("wrong password"), "{stderr}");
    assert!(stderr.contains("second") || stderr.contains(&second.display().to_string()), "both named: {stderr}");
    // With the right password both list.
    let out = sb.run(&["backups", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Finding 12 of issue 48: a count of one is singular, `events` is newest first with what
/// happened whole, and `forget` prints times as the rest of the CLI does.
#[test]
fn counts_of_one_are_singular_and_events_are_newest_first() {
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\n");
    fs::create_dir_all(sb.home.join("notes")).unwrap();
    fs::write(sb.home.join("notes/a"), "a").unwrap();
    let first = sb.backup(&["--name", "first"]);
    let checked = sb.ok(&["check"]);
    let long = "a name long enough to be cut by a table of sixty characters or more";
    let second = sb.backup(&["--name", long]);
    let events = sb.ok(&["events"]);
    let at = |slug: &serde_json::Value| events.find(slug.as_str().unwrap()).unwrap_or_else(|| panic!("{events}"));
    assert!(at(&second["slug"]) < at(&first["slug"]), "the newest event comes first:\n{events}");
    assert!(events.contains(long) && !events.contains('…'), "what happened is whole:\n{events}");
    let forget = sb.ok(&["backups", "forget", "--keep-last", "1", "--dry-run"]);
    let date = first["date"].as_str().unwrap();
    assert!(!forget.contains(&date[..19]), "no RFC 3339 times: {forget}");
    assert!(forget.contains("Would remove 1 backup and keep 1 in local."), "{forget}");
    let line = forget.lines().find(|l| l.contains(first["slug"].as_str().unwrap())).unwrap();
    let stamp = regex_free_date(line);
    assert!(stamp, "a date as `backups list` writes it (YYYY-MM-DD HH:MM): {line}");
    assert!(checked.contains("Checked 1 backup, "), "{checked}");
}

/// Whether a line holds a date written `YYYY-MM-DD HH:MM`.
fn regex_free_date(line: &str) -> bool {
    let b = line.as_bytes();
    b.windows(16).any(|w| {
        let d = |i: usize| w[i].is_ascii_digit();
        (0..4).all(d)
            && w[4] == b'-'
            && d(5)
            && d(6)
            && w[7] == b'-'
            && d(8)
            && d(9)
            && w[10] == b' '
            && d(11)
            && d(12)
            && w[13] == b':'
            && d(14)
            && d(15)
    })
}

/// The ```toml blocks of a Markdown file, in reading order.
fn toml_examples(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```toml") => current = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// `b` merged into `a`: tables key by key, anything else replaced.
fn merge(a: &mut toml::Table, b: toml::Table) {
    for (key, value) in b {
        match (a.get_mut(&key), value) {
            (Some(toml::Value::Table(mine)), toml::Value::Table(theirs)) => merge(mine, theirs),
            (_, value) => {
                a.insert(key, value);
            }
        }
    }
}

/// Every example configuration in README.md and docs/CONFIG.md is accepted by the real
/// binary, each with the examples before it in the same file (a later one may use a location
/// or unit an earlier one made): a documented example must never be refused.
#[test]
fn every_documented_example_configuration_is_accepted() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut tried = 0;
    for doc in ["README.md", "docs/CONFIG.md"] {
        let text = fs::read_to_string(root.join(doc)).unwrap();
        let mut so_far = toml::Table::new();
        for (i, block) in toml_examples(&text).into_iter().enumerate() {
            let example: toml::Table =
                toml::from_str(&block).unwrap_or_else(|e| panic!("{doc}, example {}: not TOML: {e}\n{block}", i + 1));
            merge(&mut so_far, example);
            let sb = Sandbox::new("");
            fs::write(&sb.config, toml::to_string(&so_far).unwrap()).unwrap();
            for args in [&["units", "list"][..], &["schedules", "list"]] {
                let out = sb.run(args);
                assert!(
                    out.status.success(),
                    "{doc}, example {} is refused by `lifeboat {}`: {}\n{block}",
                    i + 1,
                    args.join(" "),
                    stderr(&out)
                );
            }
            tried += 1;
        }
    }
    assert!(tried >= 5, "the examples were found: {tried}");
}
