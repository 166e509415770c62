//! Many devices, one location (issue 44): each device's retention, `forget` and `latest` keep
//! to its own backups; another device's backup is restored in place only when said so; a
//! backup named in several locations is chosen, never taken silently.

use crate::common::daemon::Daemon;
use crate::common::servers::Seaweed;
use crate::common::{stderr, Sandbox};

/// A device of its own (HOME, XDG folders, configuration) backing up `~/docs` to the shared
/// bucket, with a nightly schedule that keeps its newest backup.
fn device(name: &str, s3: &str) -> Sandbox {
    let sb = Sandbox::new("");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    std::fs::write(sb.home.join("docs/whose"), format!("{name}'s file")).unwrap();
    write_config(&sb, name, s3);
    sb
}

fn write_config(sb: &Sandbox, name: &str, s3: &str) {
    std::fs::write(
        &sb.config,
        format!(
            "default_location = \"s3\"\ndevice_name = \"{name}\"\n\n[location.s3]\n{s3}\n[unit.docs]\npaths = [\"~/docs\"]\n\n\
             [schedule.nightly]\ncron = \"0 3 * * *\"\nkeep_last = 1\n"
        ),
    )
    .unwrap();
}

/// Runs the nightly schedule through the daemon, as the scheduler does (backup, then its
/// retention); the new backup's slug.
fn run_nightly(sb: &Sandbox) -> String {
    let d = Daemon::start(sb);
    let (status, decisions) = d.json(reqwest::Method::POST, "/api/schedules/nightly/run", serde_json::Value::Null);
    assert_eq!(status, 200, "{decisions}");
    let (job, _) = d.follow(decisions[0]["job"].as_u64().expect("a job started"));
    assert_eq!(job["state"], "succeeded", "{job}");
    let slug = job["result"]["slug"].as_str().unwrap().to_string();
    assert!(d.stop().success());
    slug
}

/// Runs lifeboat on a terminal (util-linux `script` gives it one), typing `input`; what it
/// wrote, both streams, is in `stdout`.
fn on_a_terminal(sb: &Sandbox, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let c = sb.command();
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"));
    let mut line = quote(c.get_program());
    for a in c.get_args().chain(args.iter().map(std::ffi::OsStr::new)) {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let mut script = std::process::Command::new("script");
    script.env_clear();
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            script.env(k, v);
        }
    }
    script.args(["-qec", &line, "/dev/null"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = script.spawn().expect("running script");
    child.stdin.take().expect("its input").write_all(input.as_bytes()).expect("typing");
    child.wait_with_output().expect("its output")
}

fn list(sb: &Sandbox, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["backups", "list", "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str::<serde_json::Value>(&sb.ok(&args)).unwrap().as_array().unwrap().clone()
}

fn slugs_of(list: &[serde_json::Value]) -> Vec<String> {
    let mut s: Vec<String> = list.iter().map(|b| b["slug"].as_str().unwrap().to_string()).collect();
    s.sort();
    s
}

fn info(sb: &Sandbox, slug: &str) -> serde_json::Value {
    serde_json::from_str(&sb.ok(&["backups", "info", slug, "--json"])).unwrap()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn two_devices_sharing_an_s3_location_keep_to_their_own_backups() {
    let parent = device("parent", "");
    let mut server = Seaweed::start(&parent.dir.path().join("weed"));
    server.create_bucket("family");
    let s3 = server.location_toml("family", "shared");
    write_config(&parent, "parent", &s3);
    let kids = device("kids", &s3);

    // The repository is made by hand (a schedule makes none); that backup is removed.
    let k0 = kids.backup(&[])["slug"].as_str().unwrap().to_string();
    kids.ok(&["backups", "remove", &k0]);
    // Each device's nightly schedule keeps one backup: the other device's stay.
    let k1 = run_nightly(&kids);
    let p1 = run_nightly(&parent);
    let p2 = run_nightly(&parent);
    let all = list(&parent, &[]);
    assert_eq!(slugs_of(&all), sorted(vec![k1.clone(), p2.clone()]), "the parent's retention removed only {p1}");
    // Listed with their devices, here and on the page's API.
    let device_of = |l: &[serde_json::Value], slug: &str| {
        l.iter().find(|b| b["slug"] == slug).map(|b| b["device"].as_str().unwrap().to_string()).unwrap()
    };
    assert_eq!(device_of(&all, &k1), "kids");
    assert_eq!(device_of(&all, &p2), "parent");
    let table = parent.ok(&["backups", "list"]);
    assert!(table.contains("DEVICE") && table.contains("kids") && table.contains("parent"), "{table}");
    assert_eq!(slugs_of(&list(&parent, &["--device", "kids"])), vec![k1.clone()]);

    // `latest` is each device's own newest, unless another device is named.
    assert_eq!(info(&kids, "latest")["slug"], k1.as_str());
    assert_eq!(info(&parent, "latest")["slug"], p2.as_str());
    let theirs: serde_json::Value =
        serde_json::from_str(&parent.ok(&["backups", "info", "latest", "--device", "kids", "--json"])).unwrap();
    assert_eq!(theirs["slug"], k1.as_str());

    // `forget` counts and removes this device's backups only, unless told every device's.
    let k2 = kids.backup(&[])["slug"].as_str().unwrap().to_string();
    let forget = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["backups", "forget", "--keep-last", "1", "--dry-run", "--json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&parent.ok(&args)).unwrap()
    };
    let mine = forget(&[]);
    assert_eq!(mine["removed"], serde_json::json!([]), "{mine}");
    assert_eq!(slugs_of(mine["kept"].as_array().unwrap()), vec![p2.clone()], "{mine}");
    let everyone = forget(&["--all-devices"]);
    assert_eq!(slugs_of(everyone["removed"].as_array().unwrap()), sorted(vec![k1.clone(), p2.clone()]), "{everyone}");

    // Another device's backup in place is refused off a terminal, naming the device and the
    // way to say it is meant; nothing changes.
    let refused = parent.run(&["backups", "restore", &k1, "--mode", "replace"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let said = stderr(&refused);
    assert!(said.contains("kids") && said.contains("--from-device kids"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "one line: {said}");
    assert_eq!(std::fs::read_to_string(parent.home.join("docs/whose")).unwrap(), "parent's file");
    let wrong = parent.run(&["backups", "restore", &k1, "--from-device", "parent"]);
    assert_eq!(wrong.status.code(), Some(2), "another name is no decision: {}", stderr(&wrong));
    // On a terminal it says whose backup it is and asks: no changes nothing, yes restores.
    if crate::common::servers::find_program("script").is_some() {
        let declined = on_a_terminal(&parent, &["backups", "restore", &k1, "--quiet"], "n\n");
        let said = String::from_utf8_lossy(&declined.stdout).into_owned();
        assert_eq!(declined.status.code(), Some(2), "{said}");
        assert!(said.contains("is from device kids") && said.contains("Nothing was restored"), "{said}");
        assert_eq!(std::fs::read_to_string(parent.home.join("docs/whose")).unwrap(), "parent's file");
        let accepted = on_a_terminal(&parent, &["backups", "restore", &k1, "--quiet"], "y\n");
        let said = String::from_utf8_lossy(&accepted.stdout).into_owned();
        assert_eq!(accepted.status.code(), Some(0), "{said}");
        assert_eq!(std::fs::read_to_string(parent.home.join("docs/whose")).unwrap(), "kids's file");
        std::fs::write(parent.home.join("docs/whose"), "parent's file").unwrap();
    }
    // Under a target folder it needs no decision; in place, with the device named, it is done.
    let target = parent.dir.path().join("theirs");
    parent.ok(&["backups", "restore", &k1, "--target", target.to_str().unwrap()]);
    let landed = crate::common::rerooted(&target, &parent.home.join("docs/whose"));
    assert_eq!(std::fs::read_to_string(landed).unwrap(), "kids's file");
    parent.ok(&["backups", "restore", &k1, "--from-device", "kids"]);
    assert_eq!(std::fs::read_to_string(parent.home.join("docs/whose")).unwrap(), "kids's file");

    // Renamed, the kids' device keeps its backups: its `latest`, and its retention counts
    // them as its own (k1 goes) and never the parent's.
    write_config(&kids, "den", &s3);
    assert_eq!(info(&kids, "latest")["slug"], k2.as_str());
    assert_eq!(info(&kids, "latest")["device"], "den");
    let k3 = run_nightly(&kids);
    let now = list(&parent, &[]);
    let left = slugs_of(&now);
    assert!(!left.contains(&k1), "the renamed device's retention removed its old nightly backup: {left:?}");
    assert!(left.contains(&k3) && left.contains(&k2), "{left:?}");
    assert!(left.contains(&p2), "the parent's backup stays: {left:?}");
    assert_eq!(device_of(&now, &k2), "den", "a renamed device is shown by its new name");
    assert_eq!(info(&parent, "latest")["device"], "parent");
}

#[test]
fn a_slug_in_two_locations_is_removed_only_where_it_is_named() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    std::fs::write(sb.home.join("docs/a"), "a").unwrap();
    sb.add_local_location("card");
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    sb.ok(&["backups", "copy", &slug, "--to", "card"]);

    let out = sb.run(&["backups", "remove", &slug]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(said.contains("local") && said.contains("card") && said.contains("--location"), "{said}");
    assert_eq!(list(&sb, &[]).len(), 2, "nothing was removed");

    sb.ok(&["backups", "remove", &slug, "--location", "card"]);
    let left = list(&sb, &[]);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["location"], "local");
    // Now in one location only, the slug alone says which.
    sb.ok(&["backups", "remove", &slug]);
    assert!(list(&sb, &[]).is_empty());
}
