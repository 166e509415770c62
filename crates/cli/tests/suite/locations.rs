//! Locations of every kind against real servers on 127.0.0.1: round trips, an interrupted
//! upload, two devices in one bucket, and the errors a person sees.

use std::path::{Path, PathBuf};

use crate::common;
use crate::common::servers::{Relay, Seaweed, Smbd, Sshd, Webdav};
use crate::common::{compare_trees, random_bytes, rerooted, stderr, walk_size, Sandbox};

/// The corpus' `small` part when scripts/test built it, else a tree made here.
fn source(sb: &Sandbox) -> PathBuf {
    if let Some(c) = std::env::var_os("LIFEBOAT_CORPUS").map(PathBuf::from) {
        if c.join("small").is_dir() {
            return c.join("small");
        }
    }
    let src = sb.dir.path().join("src");
    for i in 0..40u64 {
        let d = src.join(format!("d{}", i % 5));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i}.bin")), random_bytes(((i * 7919) % 300_000) as usize, i + 1)).unwrap();
        std::fs::write(d.join(format!("t{i}.txt")), format!("note {i}\n").repeat(200)).unwrap();
    }
    src
}

/// Makes `[location.NAME]` with these keys the sandbox's only location, backing up `paths`.
fn write_config(sb: &Sandbox, name: &str, location_toml: &str, paths: &[&Path]) {
    let list: Vec<String> = paths.iter().map(|p| format!("{:?}", p.display().to_string())).collect();
    std::fs::write(
        &sb.config,
        format!(
            "default_location = \"{name}\"\n[location.{name}]\n{location_toml}\n[unit.data]\npaths = [{}]\n",
            list.join(", ")
        ),
    )
    .unwrap();
}

fn round_trip(sb: &Sandbox, src: &Path) {
    let made = sb.backup(&[]);
    let slug = made["slug"].as_str().unwrap().to_string();
    let target = sb.dir.path().join("restored");
    sb.ok(&["backups", "restore", &slug, "--target", target.to_str().unwrap(), "--quiet"]);
    let diffs = compare_trees(src, &rerooted(&target, src));
    assert!(diffs.is_empty(), "restore differs: {:?}", &diffs[..diffs.len().min(10)]);
    let listed: serde_json::Value = serde_json::from_str(&sb.ok(&["backups", "list", "--json"])).unwrap();
    assert_eq!(listed[0]["slug"], slug.as_str());
    sb.ok(&["check"]);
}

#[test]
fn a_backup_round_trips_through_sftp() {
    let sb = Sandbox::new("");
    let server = Sshd::start(&sb.dir.path().join("sshd"));
    let remote = sb.dir.path().join("remote");
    let src = source(&sb);
    write_config(&sb, "nas", &server.location_toml(&remote, server.port), &[&src]);
    round_trip(&sb, &src);
    assert!(remote.join("config").is_file(), "the repository lives on the server");
    // Only its owner on the server reads it: files 0600, folders 0700.
    use std::os::unix::fs::PermissionsExt;
    for p in std::iter::once(remote.clone()).chain(common::walkdir(&remote)) {
        let mode = std::fs::symlink_metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is {:o} on the server", p.display(), mode & 0o777);
    }
}

#[test]
fn a_backup_round_trips_through_s3() {
    let sb = Sandbox::new("");
    let mut server = Seaweed::start(&sb.dir.path().join("weed"));
    server.create_bucket("backups");
    let src = source(&sb);
    write_config(&sb, "s3", &server.location_toml("backups", "phone"), &[&src]);
    round_trip(&sb, &src);
}

#[test]
fn a_backup_round_trips_through_webdav() {
    let sb = Sandbox::new("");
    let server = Webdav::start(&sb.dir.path().join("webdav"));
    let src = source(&sb);
    write_config(&sb, "nextcloud", &server.location_toml("Lifeboat"), &[&src]);
    round_trip(&sb, &src);
    assert!(server.root.join("Lifeboat/config").is_file());

    // Partial uploads a killed write left, put through the server as a writer would (rclone
    // takes the time of an ownCloud-style X-OC-Mtime header): the day-old one goes with the
    // next prune, the fresh one (maybe a write under way) stays.
    let put = |name: &str, age: u64| {
        let mtime = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - age;
        let r = common::http()
            .build()
            .unwrap()
            .put(format!("{}/Lifeboat/{name}", server.url))
            .basic_auth(&server.user, Some(&server.password))
            .header("X-OC-Mtime", mtime.to_string())
            .body(random_bytes(100_000, age))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{name}: {}", r.status());
        server.root.join("Lifeboat").join(name)
    };
    let old = put("data/.tmp-00000000000000ef", 2 * 24 * 3600);
    let fresh = put("index/.tmp-00000000000000f0", 0);
    sb.ok(&["prune"]);
    assert!(!old.exists(), "the abandoned upload is gone");
    assert!(fresh.exists(), "a fresh one stays");
    sb.ok(&["check"]);
}

/// A partial upload a killed write left (a day old) goes with the next prune; a fresh one,
/// which may be a write under way, stays.
fn abandoned_uploads_are_reclaimed(sb: &Sandbox, repo: &Path) {
    let old = repo.join("data/ef/.tmp-00000000000000ef");
    let fresh = repo.join("data/.tmp-00000000000000f0");
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    std::fs::write(&old, random_bytes(1 << 20, 5)).unwrap();
    std::fs::write(&fresh, b"partial").unwrap();
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 24 * 3600);
    std::fs::File::options().write(true).open(&old).unwrap().set_modified(two_days_ago).unwrap();
    sb.ok(&["prune"]);
    assert!(!old.exists(), "the abandoned upload is gone");
    assert!(fresh.exists(), "a fresh one stays");
    sb.ok(&["check"]);
}

#[test]
fn a_backup_round_trips_through_smb() {
    if !common::is_root() {
        eprintln!("skipped: the test's smbd needs root (CI runs as root)");
        return;
    }
    let sb = Sandbox::new("");
    let server = Smbd::start(&sb.dir.path().join("smbd"));
    let src = source(&sb);
    write_config(&sb, "nas", &server.location_toml("Backups/phone"), &[&src]);
    round_trip(&sb, &src);
    assert!(server.share_dir.join("Backups/phone/config").is_file());
    abandoned_uploads_are_reclaimed(&sb, &server.share_dir.join("Backups/phone"));

    // A wrong password is told as such, without the password.
    let wrong = server.location_toml("Backups/phone").replace(&server.password, "not-the-password");
    write_config(&sb, "nas", &wrong, &[&src]);
    let out = sb.run(&["backups", "list"]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("location nas") && err.contains("refused the credentials"), "{err}");
    assert!(!err.contains("not-the-password") && !err.contains(&server.password), "{err}");
}

#[test]
fn a_backup_round_trips_through_a_local_folder() {
    let sb = Sandbox::new("");
    let src = source(&sb);
    let repo = sb.dir.path().join("disk");
    write_config(&sb, "disk", &format!("type = \"local\"\npath = \"{}\"\n", repo.display()), &[&src]);
    round_trip(&sb, &src);
}

/// A mounted filesystem other than the root's, unmounted on drop.
struct Mounted(PathBuf);

impl Mounted {
    fn tmpfs(at: &Path, options: &str) -> Mounted {
        std::fs::create_dir_all(at).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "lifeboat-test-card"])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs at {}", at.display());
        Mounted(at.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_backup_round_trips_through_a_removable_card() {
    if !common::is_root() {
        eprintln!("skipped: mounting a card's filesystem needs root (CI runs as root)");
        return;
    }
    let sb = Sandbox::new("");
    let src = source(&sb);
    let card = sb.dir.path().join("media/card");
    let _mount = Mounted::tmpfs(&card, "size=1g");
    write_config(&sb, "card", &format!("type = \"removable\"\npath = \"{}/lifeboat\"\n", card.display()), &[&src]);
    round_trip(&sb, &src);
    assert!(card.join("lifeboat/config").is_file());
}

#[test]
fn a_card_that_is_not_mounted_or_is_read_only_is_named_and_nothing_is_written() {
    let sb = Sandbox::new("");
    let src = source(&sb);
    let card = sb.dir.path().join("media/card");
    std::fs::create_dir_all(&card).unwrap();
    write_config(&sb, "card", &format!("type = \"removable\"\npath = \"{}/lifeboat\"\n", card.display()), &[&src]);
    let out = sb.run(&["backups", "new"]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("location card") && err.contains("no memory card or disk is mounted"), "{err}");
    assert_eq!(std::fs::read_dir(&card).unwrap().count(), 0, "nothing lands on the phone's own storage");

    if common::is_root() {
        let _mount = Mounted::tmpfs(&card, "size=64m,ro");
        let out = sb.run(&["backups", "new"]);
        let err = stderr(&out);
        assert!(!out.status.success());
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains("read-only"), "{err}");
    }
}

#[test]
fn wrong_credentials_a_missing_bucket_and_an_unreachable_host_are_told_apart() {
    let sb = Sandbox::new("");
    let src = source(&sb);
    let mut s3 = Seaweed::start(&sb.dir.path().join("weed"));
    s3.create_bucket("backups");
    let sshd = Sshd::start(&sb.dir.path().join("sshd"));
    let closed = common::servers::free_port();
    let wrong_key = sb.dir.path().join("wrong_key");
    assert!(std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&wrong_key)
        .status()
        .unwrap()
        .success());

    let good = s3.location_toml("backups", "x");
    let cases: Vec<(&str, String, &str)> = vec![
        ("s3 wrong secret", good.replace(&s3.secret_key, "not-the-secret-at-all"), "refused the credentials"),
        ("s3 missing bucket", s3.location_toml("no-such-bucket", "x"), "does not exist"),
        (
            "s3 unreachable",
            good.replace(&s3.endpoint, &format!("http://127.0.0.1:{closed}")),
            "cannot reach the S3 server",
        ),
        (
            "sftp wrong key",
            sshd.location_toml(&sb.dir.path().join("r"), sshd.port)
                .replace(sshd.key_file.to_str().unwrap(), wrong_key.to_str().unwrap()),
            "refused the credentials",
        ),
        (
            "sftp unreachable",
            sshd.location_toml(&sb.dir.path().join("r"), sshd.port)
                .replace(&format!("port = {}", sshd.port), &format!("port = {closed}")),
            "cannot reach the SFTP server",
        ),
    ];
    let mut messages = Vec::new();
    for (what, toml, expect) in &cases {
        write_config(&sb, "there", toml, &[&src]);
        let out = sb.run(&["backups", "new"]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{what}: should fail");
        assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
        assert!(err.contains("location there"), "{what}: names the location: {err}");
        assert!(err.contains(expect), "{what}: says {expect:?}: {err}");
        assert_in_plain_words(&err, what);
        for secret in [&s3.secret_key, "not-the-secret-at-all"] {
            assert!(!err.contains(secret), "{what}: no secret in the error: {err}");
        }
        messages.push(err);
    }
    // No secret in any log either.
    for log in common::walkdir(sb.dir.path().join("xdg-state").as_path()) {
        if log.is_file() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(!text.contains(&s3.secret_key), "secret in {}", log.display());
        }
    }
}

#[test]
fn an_interrupted_upload_is_not_sent_again() {
    let sb = Sandbox::new("");
    let src = sb.dir.path().join("photos");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..24u64 {
        std::fs::write(src.join(format!("IMG_{i:04}.jpg")), random_bytes(4 << 20, 1001 + 2 * i)).unwrap();
    }
    let server = Sshd::start(&sb.dir.path().join("sshd"));
    let remote = sb.dir.path().join("remote");
    let relay = Relay::start(server.port);
    write_config(&sb, "nas", &server.location_toml(&remote, relay.port), &[&src]);
    // The network goes away after 60 MB of the 96 MB backup.
    relay.cut_after(60 << 20);
    let out = sb.run(&["backups", "new"]);
    assert!(
        relay.is_cut(),
        "the line was cut: {} bytes sent; {}",
        relay.sent.load(std::sync::atomic::Ordering::SeqCst),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "the backup cannot finish without the network");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("lifeboat:")).collect();
    assert!(errors.len() == 1 && errors[0].contains("location nas"), "one line naming the location: {err}");
    let stored_before = walk_size(&remote.join("data"));
    assert!(stored_before >= 32 << 20, "whole packs reached the server before the cut: {stored_before}");

    // The network is back (a new relay: the old one refuses everyone).
    let relay = Relay::start(server.port);
    write_config(&sb, "nas", &server.location_toml(&remote, relay.port), &[&src]);
    sb.ok(&["check"]);
    let made = sb.backup(&[]);
    let stored_after = walk_size(&remote.join("data"));
    let uploaded = made["uploaded"].as_u64().unwrap();
    let needed = stored_after - stored_before;
    let again = uploaded.saturating_sub(needed);
    eprintln!(
        "interrupted at {stored_before} bytes stored; the re-run sent {uploaded} bytes for {needed} new: {again} sent again"
    );
    assert!(
        (again as f64) < 0.10 * stored_before as f64,
        "re-sent {again} bytes of the {stored_before} already stored (uploaded {uploaded}, needed {needed})"
    );
    let target = sb.dir.path().join("restored");
    sb.ok(&["backups", "restore", made["slug"].as_str().unwrap(), "--target", target.to_str().unwrap(), "--quiet"]);
    assert!(compare_trees(&src, &rerooted(&target, &src)).is_empty());
}

#[test]
fn two_devices_back_up_into_one_bucket_at_once_and_share_data() {
    let base = Sandbox::new("");
    let mut server = Seaweed::start(&base.dir.path().join("weed"));
    server.create_bucket("fleet");
    let common_file = random_bytes(6 << 20, 77);
    let devices: Vec<(Sandbox, PathBuf)> = (0..2u64)
        .map(|d| {
            let sb = Sandbox::new("");
            let src = sb.dir.path().join(format!("device{d}"));
            std::fs::create_dir_all(&src).unwrap();
            std::fs::write(src.join("shared-photo.jpg"), &common_file).unwrap();
            std::fs::write(src.join("own.bin"), random_bytes(3 << 20, 101 + 2 * d)).unwrap();
            write_config(&sb, "fleet", &server.location_toml("fleet", "family"), &[&src]);
            (sb, src)
        })
        .collect();
    // Both processes run at the same time.
    let children: Vec<_> = devices
        .iter()
        .enumerate()
        .map(|(d, (sb, _))| {
            sb.command()
                .args(["backups", "new", "--json", "--quiet", "--name", &format!("device{d}")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut slugs = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        slugs.push(made["slug"].as_str().unwrap().to_string());
    }
    // A device whose repository lost the race to be made keeps no cache folder of it.
    let cached = |sb: &Sandbox| -> Vec<String> {
        let root = sb.dir.path().join("xdg-cache/lifeboat");
        let mut ids: Vec<String> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.len() == 64)
            .collect();
        ids.sort();
        ids
    };
    let (one, other) = (cached(&devices[0].0), cached(&devices[1].0));
    assert_eq!(one.len(), 1, "one repository's cache: {one:?}");
    assert_eq!(one, other, "the same repository on both devices");
    let (first, _) = &devices[0];
    let listed: serde_json::Value = serde_json::from_str(&first.ok(&["backups", "list", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let host = listed[0]["host"].as_str().unwrap().to_string();
    let mine: serde_json::Value =
        serde_json::from_str(&first.ok(&["backups", "list", "--json", "--host", &host])).unwrap();
    assert_eq!(mine.as_array().unwrap().len(), 2);
    let none: serde_json::Value =
        serde_json::from_str(&first.ok(&["backups", "list", "--json", "--host", "no-such-host"])).unwrap();
    assert_eq!(none.as_array().unwrap().len(), 0);
    for ((sb, src), slug) in devices.iter().zip(&slugs) {
        let target = sb.dir.path().join("restored");
        sb.ok(&["backups", "restore", slug, "--target", target.to_str().unwrap(), "--quiet"]);
        assert!(compare_trees(src, &rerooted(&target, src)).is_empty(), "{slug} restores");
    }
    // Concurrent writers may each store a blob before seeing the other's index; prune keeps
    // one copy. Stored twice, the shared photo alone would take 12 MiB.
    first.ok(&["prune", "--quiet"]);
    first.ok(&["check"]);
    let locations: serde_json::Value = serde_json::from_str(&first.ok(&["locations", "list", "--json"])).unwrap();
    let size = locations[0]["size"].as_u64().unwrap();
    assert!(size < (6 + 3 + 3 + 2) << 20, "the shared photo is stored once: {size} bytes in the bucket");
}

#[test]
fn every_network_backend_passes_the_storage_conformance_suite() {
    // Each as Lifeboat uses it: behind the retrying layer (WebDAV servers answer two
    // simultaneous creations of one folder with "423 Locked", which a retry resolves).
    use lifeboat_storage::{
        conformance, HostKeyCheck, Retrying, ServiceConfig, ServiceStore, SftpConfig, SftpStore, SmbConfig, SmbStore,
    };
    let dir = tempfile::tempdir().unwrap();

    let sshd = Sshd::start(&dir.path().join("sshd"));
    let sftp = SftpStore::new(
        "sftp",
        SftpConfig {
            host: "127.0.0.1".into(),
            port: sshd.port,
            user: sshd.user.clone(),
            path: dir.path().join("sftp-repo").display().to_string(),
            key_file: Some(sshd.key_file.clone()),
            password: None,
            host_key: HostKeyCheck::KnownHosts(sshd.known_hosts.clone()),
        },
    );
    conformance::run(&Retrying::new(sftp));

    let mut weed = Seaweed::start(&dir.path().join("weed"));
    weed.create_bucket("conformance");
    let s3 = ServiceStore::new(
        "s3",
        &ServiceConfig::S3 {
            endpoint: Some(weed.endpoint.clone()),
            region: None,
            bucket: "conformance".into(),
            root: "repo".into(),
            access_key_id: Some(weed.access_key.clone()),
            secret_access_key: Some(weed.secret_key.clone()),
        },
    )
    .unwrap();
    conformance::run(&Retrying::new(s3));

    let dav = Webdav::start(&dir.path().join("webdav"));
    let webdav = ServiceStore::new(
        "webdav",
        &ServiceConfig::Webdav {
            url: dav.url.clone(),
            root: "repo".into(),
            username: Some(dav.user.clone()),
            password: Some(dav.password.clone()),
        },
    )
    .unwrap();
    conformance::run(&Retrying::new(webdav));

    if common::is_root() {
        let smbd = Smbd::start(&dir.path().join("smbd"));
        let smb = SmbStore::new(
            "smb",
            SmbConfig {
                host: "127.0.0.1".into(),
                port: smbd.port,
                share: "backups".into(),
                path: "repo".into(),
                username: smbd.user.clone(),
                password: smbd.password.clone(),
                domain: None,
            },
        );
        conformance::run(&Retrying::new(smb));
    }
}

#[test]
fn locations_are_added_listed_checked_and_removed() {
    let sb = Sandbox::new("");
    let src = source(&sb);
    let server = Sshd::start(&sb.dir.path().join("sshd"));
    let remote = sb.dir.path().join("remote");
    write_config(&sb, "local", &format!("type = \"local\"\npath = \"{}\"\n", sb.repo.display()), &[&src]);
    let before = std::fs::read_to_string(&sb.config).unwrap();
    std::fs::write(&sb.config, format!("# my notes about this file\n{before}")).unwrap();
    let port = server.port.to_string();
    let known_hosts = format!("known_hosts={}", server.known_hosts.display());
    let key_file = format!("key_file={}", server.key_file.display());
    let user = format!("user={}", server.user);
    sb.ok(&[
        "locations",
        "add",
        "nas",
        "--type",
        "sftp",
        "--path",
        remote.to_str().unwrap(),
        "--set",
        "host=127.0.0.1",
        "--set",
        &format!("port={port}"),
        "--set",
        &user,
        "--set",
        &key_file,
        "--set",
        &known_hosts,
    ]);
    let text = std::fs::read_to_string(&sb.config).unwrap();
    assert!(text.starts_with("# my notes about this file"), "comments are kept:\n{text}");
    assert!(text.contains("[location.nas]"), "{text}");

    // A typo is refused and the file is left as it was.
    let out = sb.run(&["locations", "add", "bad", "--type", "sftp", "--set", "hots=x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("has no key \"hots\""), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&sb.config).unwrap(), text);

    let check = sb.ok(&["locations", "check", "nas"]);
    assert!(check.contains("reachable: yes") && check.contains("writable: yes"), "{check}");
    sb.ok(&["backups", "new", "--location", "nas", "--quiet"]);
    let check = sb.ok(&["locations", "check", "nas"]);
    assert!(check.contains("repository: healthy, 1 backup"), "{check}");

    let listed: serde_json::Value = serde_json::from_str(&sb.ok(&["locations", "list", "--json"])).unwrap();
    let nas = listed.as_array().unwrap().iter().find(|l| l["name"] == "nas").unwrap();
    assert_eq!(nas["kind"], "sftp");
    assert_eq!(nas["reachable"], true);
    assert_eq!(nas["backups"], 1);
    assert!(nas["size"].as_u64().unwrap() > 0);
    assert!(nas["free"].as_u64().unwrap() > 0, "the server tells its free space");
    let local = listed.as_array().unwrap().iter().find(|l| l["name"] == "local").unwrap();
    assert_eq!(local["backups"], 0);

    // An unreachable location is listed as such; the others still are.
    server.process.kill_now();
    let listed: serde_json::Value = serde_json::from_str(&sb.ok(&["locations", "list", "--json"])).unwrap();
    let nas = listed.as_array().unwrap().iter().find(|l| l["name"] == "nas").unwrap();
    assert_eq!(nas["reachable"], false);
    assert!(nas["problem"].as_str().unwrap().contains("cannot reach the SFTP server"), "{nas}");
    let out = sb.run(&["backups", "list", "--json"]);
    assert_eq!(out.status.code(), Some(3), "a partial list exits with warnings");
    let err = stderr(&out);
    assert!(
        err.lines().count() == 1 && err.contains("location nas") && err.contains("cannot reach the SFTP server"),
        "{err}"
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("the other locations are still listed");

    sb.ok(&["locations", "remove", "nas"]);
    let text = std::fs::read_to_string(&sb.config).unwrap();
    assert!(!text.contains("[location.nas]") && text.starts_with("# my notes"), "{text}");
    assert!(remote.join("config").is_file(), "removing a location leaves its backups");
}

#[test]
fn a_backup_is_copied_to_another_location_sending_only_what_it_lacks() {
    let sb = Sandbox::new("");
    let src = sb.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.bin"), random_bytes(5 << 20, 11)).unwrap();
    std::fs::write(src.join("b.txt"), "hello\n".repeat(1000)).unwrap();
    let server = Webdav::start(&sb.dir.path().join("webdav"));
    std::fs::write(
        &sb.config,
        format!(
            "default_location = \"local\"\n[location.local]\ntype = \"local\"\npath = \"{}\"\n[location.cloud]\n{}\n[unit.data]\npaths = [{:?}]\n",
            sb.repo.display(),
            server.location_toml("copies"),
            src.display().to_string()
        ),
    )
    .unwrap();
    let first = sb.backup(&[]);
    let slug = first["slug"].as_str().unwrap();
    let copied: serde_json::Value =
        serde_json::from_str(&sb.ok(&["backups", "copy", slug, "--to", "cloud", "--json", "--quiet"])).unwrap();
    assert_eq!(copied["copied"], true);
    assert!(copied["uploaded"].as_u64().unwrap() > 5 << 20);

    // Copying again sends nothing; a second backup with one new file sends about that file.
    let again: serde_json::Value =
        serde_json::from_str(&sb.ok(&["backups", "copy", slug, "--to", "cloud", "--json", "--quiet"])).unwrap();
    assert_eq!(again["copied"], false);
    std::fs::write(src.join("c.bin"), random_bytes(1 << 20, 13)).unwrap();
    let second = sb.backup(&[]);
    let second_slug = second["slug"].as_str().unwrap();
    let copied: serde_json::Value =
        serde_json::from_str(&sb.ok(&["backups", "copy", second_slug, "--to", "cloud", "--json", "--quiet"])).unwrap();
    let sent = copied["uploaded"].as_u64().unwrap();
    assert!(sent < (1 << 20) + (512 << 10), "only the new file travels: {sent} bytes");

    let listed: serde_json::Value =
        serde_json::from_str(&sb.ok(&["backups", "list", "--json", "--location", "cloud"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let all: serde_json::Value = serde_json::from_str(&sb.ok(&["backups", "list", "--json"])).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 4, "every location is listed: {all}");
    let target = sb.dir.path().join("restored");
    sb.ok(&["backups", "restore", second_slug, "--location", "cloud", "--target", target.to_str().unwrap(), "--quiet"]);
    assert!(compare_trees(&src, &rerooted(&target, &src)).is_empty());
}

#[test]
fn cloud_drives_are_configured_with_tokens_and_say_what_is_missing() {
    let sb = Sandbox::new("");
    let src = source(&sb);
    let cases = [
        ("type = \"dropbox\"\nroot = \"Apps/Lifeboat\"\n", "needs refresh_token"),
        (
            "type = \"onedrive\"\nrefresh_token = \"$LIFEBOAT_TEST_UNSET_VARIABLE\"\n",
            "LIFEBOAT_TEST_UNSET_VARIABLE, which is not set",
        ),
        (
            "type = \"gdrive\"\nrefresh_token_file = \"/nonexistent/token\"\n",
            "refresh_token_file = /nonexistent/token cannot be read",
        ),
        ("type = \"gdrive\"\nbucket = \"x\"\n", "has no key \"bucket\""),
    ];
    for (toml, expect) in cases {
        write_config(&sb, "drive", toml, &[&src]);
        let out = sb.run(&["backups", "new"]);
        let err = stderr(&out);
        assert!(!out.status.success());
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(expect), "{toml}: {err}");
    }
}

/// Runs only with real credentials in the environment (never in CI): a round trip through
/// Dropbox, OneDrive or Google Drive.
#[test]
fn a_cloud_drive_round_trips_when_credentials_are_given() {
    for kind in ["dropbox", "onedrive", "gdrive"] {
        let var = |k: &str| std::env::var(format!("LIFEBOAT_TEST_{}_{k}", kind.to_uppercase())).ok();
        let Some(token) = var("REFRESH_TOKEN") else {
            eprintln!("skipped {kind}: LIFEBOAT_TEST_{}_REFRESH_TOKEN is not set", kind.to_uppercase());
            continue;
        };
        let sb = Sandbox::new("");
        let src = sb.dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("a.bin"), random_bytes(3 << 20, 5)).unwrap();
        let toml = format!(
            "type = \"{kind}\"\nroot = \"lifeboat-test-{}\"\nrefresh_token = {token:?}\nclient_id = {:?}\nclient_secret = {:?}\n",
            std::process::id(),
            var("CLIENT_ID").unwrap_or_default(),
            var("CLIENT_SECRET").unwrap_or_default()
        );
        write_config(&sb, "drive", &toml, &[&src]);
        round_trip(&sb, &src);
    }
}

/// The fingerprint of a public key file as `ssh-keygen -lf` prints it.
fn ssh_fingerprint(public_key: &Path) -> String {
    let out = std::process::Command::new("ssh-keygen").arg("-lf").arg(public_key).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).unwrap().to_string()
}

#[test]
fn an_unknown_sftp_server_is_told_with_its_fingerprint_and_trusted_only_when_confirmed() {
    let sb = Sandbox::new("");
    let src = source(&sb);
    let server = Sshd::start(&sb.dir.path().join("sshd"));
    let fingerprint = ssh_fingerprint(&sb.dir.path().join("sshd/host_key.pub"));
    let known_hosts = sb.dir.path().join("ssh/known_hosts");
    let toml = server
        .location_toml(&sb.dir.path().join("remote"), server.port)
        .replace(server.known_hosts.to_str().unwrap(), known_hosts.to_str().unwrap());
    write_config(&sb, "nas", &toml, &[&src]);

    // Not known yet: told so, with the key's fingerprint and the command that trusts it.
    let out = sb.run(&["locations", "check", "nas"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("is not known yet"), "{err}");
    assert!(!err.contains("does not match"), "an unknown server is not a changed key: {err}");
    assert!(err.contains(&format!("--trust-host-key {fingerprint}")), "{err}");
    assert!(err.contains("locations check nas"), "{err}");
    assert!(!known_hosts.exists(), "nothing trusted unasked");

    // Another fingerprint is not the key seen: nothing is recorded.
    let out = sb.run(&["locations", "check", "nas", "--trust-host-key", "SHA256:notthekeyatall"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is not known yet"), "{}", stderr(&out));
    assert!(!known_hosts.exists(), "a key not confirmed is not recorded");

    // The fingerprint seen: recorded, and the location works.
    let said = sb.ok(&["locations", "check", "nas", "--trust-host-key", &fingerprint]);
    assert!(said.contains(&format!("Trusted the host key {fingerprint}")), "{said}");
    let recorded = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(recorded.contains(&format!("[127.0.0.1]:{}", server.port)), "{recorded}");
    sb.backup(&[]);

    // `locations add` trusts it too, and adds nothing when the key is not the one given.
    std::fs::remove_file(&known_hosts).unwrap();
    let mut add = vec!["locations", "add", "nas2", "--type", "sftp", "--path"];
    let remote2 = sb.dir.path().join("remote2").display().to_string();
    add.push(&remote2);
    let sets = [
        "host=127.0.0.1".to_string(),
        format!("port={}", server.port),
        format!("user={}", server.user),
        format!("key_file={}", server.key_file.display()),
        format!("known_hosts={}", known_hosts.display()),
    ];
    for s in &sets {
        add.extend(["--set", s.as_str()]);
    }
    let out = sb.run(&[add.as_slice(), &["--trust-host-key", "SHA256:notthekeyatall"]].concat());
    assert!(!out.status.success());
    assert!(!std::fs::read_to_string(&sb.config).unwrap().contains("nas2"), "not added");
    sb.ok(&[add.as_slice(), &["--trust-host-key", &fingerprint]].concat());
    sb.ok(&["locations", "check", "nas2"]);

    // A key that differs from the recorded one is a hard refusal, which no fingerprint lifts.
    let other = sb.dir.path().join("other_host_key");
    assert!(std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap()
        .success());
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut fields = other_pub.split_whitespace();
    std::fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{} {} {}\n", server.port, fields.next().unwrap(), fields.next().unwrap()),
    )
    .unwrap();
    for args in [vec!["locations", "check", "nas"], vec!["locations", "check", "nas", "--trust-host-key", &fingerprint]]
    {
        let out = sb.run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(7), "{err}");
        assert!(err.contains("does not match"), "{err}");
        assert!(!err.contains("not known yet"), "{err}");
    }
}

/// What a person must never see in a message: a library's error kinds and contexts, module
/// paths, colour codes.
fn assert_in_plain_words(err: &str, what: &str) {
    for internal in ["Unexpected", "reqwest", "context:", "lifeboat_", "opendal", "Parts {", "\x1b"] {
        assert!(!err.contains(internal), "{what}: {internal:?} shown: {err}");
    }
}

#[test]
fn a_stopped_s3_server_is_told_in_one_plain_line_with_the_unreachable_exit_code() {
    let sb = Sandbox::new("");
    let src = source(&sb);
    let mut s3 = Seaweed::start(&sb.dir.path().join("weed"));
    s3.create_bucket("backups");
    write_config(&sb, "there", &s3.location_toml("backups", "phone"), &[&src]);
    sb.backup(&[]);
    s3.process.kill();

    for args in [&["backups", "new"][..], &["backups", "list", "--location", "there"], &["check"]] {
        let out = sb.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(7), "{args:?}: the exit code of a location that cannot be used: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(
            err.contains(&format!("cannot reach the S3 server at {} (connection refused)", s3.endpoint)),
            "{args:?}: says which server and why: {err}"
        );
        assert!(err.contains("location there"), "{args:?}: names the location: {err}");
        assert_in_plain_words(&err, &format!("{args:?}"));
    }
    let listed: serde_json::Value = serde_json::from_str(&sb.ok(&["locations", "list", "--json"])).unwrap();
    let there = listed.as_array().unwrap().iter().find(|l| l["name"] == "there").unwrap();
    assert_eq!(there["reachable"], false);
    let problem = there["problem"].as_str().unwrap();
    assert!(problem.contains("cannot reach the S3 server"), "{problem}");
    assert_in_plain_words(problem, "locations list");

    // The details are there for whoever asks.
    let out = sb.run(&["--verbose", "backups", "list", "--location", "there"]);
    assert!(stderr(&out).contains("Connection refused"), "{}", stderr(&out));
    assert!(!stderr(&out).contains('\x1b'), "no colour codes when stderr is not a terminal: {}", stderr(&out));
}

#[test]
fn a_missing_webdav_folder_is_told_at_once_and_not_retried() {
    let sb = Sandbox::new("");
    let src = source(&sb);
    let dav = Webdav::start(&sb.dir.path().join("dav"));
    let relay = Relay::start(dav.url.rsplit(':').next().unwrap().parse().unwrap());
    let url = format!("http://127.0.0.1:{}", relay.port);
    // A url naming a folder the server does not have (a Nextcloud user's name misspelt, say).
    let toml = dav.location_toml("lifeboat").replace(&dav.url, &format!("{url}/Backups"));
    write_config(&sb, "nextcloud", &toml, &[&src]);

    let out = sb.run(&["backups", "new"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert_eq!(err.lines().count(), 1, "one line, no retries: {err}");
    assert!(!err.contains("trying again"), "a missing folder is not retried: {err}");
    assert!(
        err.contains(&format!("the folder /Backups does not exist on the WebDAV server at {url}"))
            && err.contains("location nextcloud"),
        "{err}"
    );
    assert_in_plain_words(&err, "backups new");
    assert!(!err.contains("409") && !err.contains("Mkcol"), "{err}");
    let requests = relay.requests.load(std::sync::atomic::Ordering::SeqCst);
    eprintln!("{requests} requests");
    assert!(requests <= 12, "asked once, not again and again: {requests} requests");

    let listed: serde_json::Value = serde_json::from_str(&sb.ok(&["locations", "list", "--json"])).unwrap();
    let there = listed.as_array().unwrap().iter().find(|l| l["name"] == "nextcloud").unwrap();
    assert_eq!(there["reachable"], false, "{there}");
    assert!(there["problem"].as_str().unwrap().contains("/Backups does not exist"), "{there}");
    let table = sb.ok(&["locations", "list"]);
    let row = table.lines().find(|l| l.starts_with("nextcloud")).unwrap();
    assert!(!row.contains("yes"), "{table}");

    // Once the folder is there, the root's folders under it are made by the first backup.
    // (Made as a person would, on the server: rclone does not see a folder made behind it.)
    let made = common::http()
        .build()
        .unwrap()
        .request(reqwest::Method::from_bytes(b"MKCOL").unwrap(), format!("{}/Backups", dav.url))
        .basic_auth(&dav.user, Some(&dav.password))
        .send()
        .unwrap();
    assert_eq!(made.status().as_u16(), 201);
    sb.backup(&[]);
    assert!(dav.root.join("Backups/lifeboat/config").is_file());
}

#[test]
fn a_retry_is_announced_in_one_plain_line() {
    let sb = Sandbox::new("");
    let src = sb.dir.path().join("photos");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..6u64 {
        std::fs::write(src.join(format!("IMG_{i:04}.jpg")), random_bytes(4 << 20, 77 + i)).unwrap();
    }
    let mut s3 = Seaweed::start(&sb.dir.path().join("weed"));
    s3.create_bucket("backups");
    let relay = Relay::start(s3.endpoint.rsplit(':').next().unwrap().parse().unwrap());
    let toml = s3.location_toml("backups", "phone").replace(&s3.endpoint, &format!("http://127.0.0.1:{}", relay.port));
    write_config(&sb, "there", &toml, &[&src]);
    // The line drops once the repository is made and the upload is under way…
    relay.cut_after(8 << 20);
    let mut child = sb
        .command()
        .args(["backups", "new", "--quiet"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr_pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.contains("trying again")) {
        lines.push(rx.recv_timeout(std::time::Duration::from_secs(120)).expect("a warning while the line is down"));
    }
    // …and comes back.
    relay.reconnect();
    let status = child.wait().unwrap();
    lines.extend(rx.iter());
    let all = lines.join("\n");
    eprintln!("{all}");
    assert!(status.success(), "the backup finishes once the line is back: {all}");
    for line in &lines {
        assert_in_plain_words(line, "a retry");
    }
    let retries: Vec<&String> = lines.iter().filter(|l| l.contains("trying again")).collect();
    for line in retries {
        assert!(line.starts_with("warning: "), "one plain line: {line}");
        assert!(line.contains(&format!("the S3 server at http://127.0.0.1:{}", relay.port)), "{line}");
    }
}
