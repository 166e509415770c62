//! Looking inside backups and bringing back single files: ls, find, diff, dump and
//! restore --path, on a tree with an edit, an addition and a deletion between two backups.

use std::fs;

use crate::common::*;

struct TwoBackups {
    sb: Sandbox,
    first: String,
    second: String,
}

/// ~/notes with a.txt, sub/b.txt, gone.txt; then a.txt edited, gone.txt deleted, new.txt
/// added, and a second backup.
fn two_backups() -> TwoBackups {
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\n[unit.music]\npaths = [\"~/music\"]\n");
    let notes = sb.home.join("notes");
    fs::create_dir_all(notes.join("sub")).unwrap();
    fs::create_dir_all(sb.home.join("music")).unwrap();
    fs::write(notes.join("a.txt"), "the first a").unwrap();
    fs::write(notes.join("sub/b.txt"), random_bytes(300_000, 7)).unwrap();
    fs::write(notes.join("gone.txt"), "deleted after the first backup").unwrap();
    fs::write(sb.home.join("music/song.ogg"), random_bytes(50_000, 8)).unwrap();
    let first = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    fs::write(notes.join("a.txt"), "the second a, longer").unwrap();
    fs::remove_file(notes.join("gone.txt")).unwrap();
    fs::write(notes.join("new.txt"), "added after the first backup").unwrap();
    let second = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    TwoBackups { sb, first, second }
}

fn paths(v: &serde_json::Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap().to_string()).collect()
}

#[test]
fn ls_find_diff_dump_and_restore_of_one_path() {
    let TwoBackups { sb, first, second } = two_backups();
    let notes = sb.home.join("notes");

    // ls: the roots, one folder, everything below it.
    let top: serde_json::Value = serde_json::from_str(&sb.ok(&["backups", "ls", &second, "--json"])).unwrap();
    assert_eq!(paths(&top), ["~/music", "~/notes"]);
    let folder: serde_json::Value =
        serde_json::from_str(&sb.ok(&["backups", "ls", &second, "~/notes", "--json"])).unwrap();
    assert_eq!(paths(&folder), ["~/notes/a.txt", "~/notes/new.txt", "~/notes/sub"]);
    assert_eq!(folder[0]["type"], "file");
    assert_eq!(folder[0]["size"], "the second a, longer".len());
    assert_eq!(folder[0]["unit"], "notes");
    assert!(folder[0]["mtime"].as_str().unwrap().contains('T'));
    assert_eq!(folder[2]["type"], "dir");
    let all: serde_json::Value =
        serde_json::from_str(&sb.ok(&["backups", "ls", &first, "--recursive", "--json"])).unwrap();
    assert_eq!(
        paths(&all),
        [
            "~/music",
            "~/music/song.ogg",
            "~/notes",
            "~/notes/a.txt",
            "~/notes/gone.txt",
            "~/notes/sub",
            "~/notes/sub/b.txt"
        ]
    );
    // The home spelled out (what a shell makes of ~) means the same; `latest` is the second.
    let spelled = format!("{}/notes", sb.home.display());
    let same: serde_json::Value =
        serde_json::from_str(&sb.ok(&["backups", "ls", "latest", &spelled, "--json"])).unwrap();
    assert_eq!(paths(&same), paths(&folder));
    let long = sb.ok(&["backups", "ls", &second, "~/notes", "--long"]);
    assert!(long.contains("MODIFIED") && long.contains("~/notes/sub") && long.contains("0644"), "{long}");
    let missing = sb.run(&["backups", "ls", &second, "~/notes/nothing"]);
    assert_eq!(missing.status.code(), Some(2), "not found is exit 2");
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("holds nothing at ~/notes/nothing") && err.contains("backups ls"), "{err}");

    // find: the edited file has two versions, the deleted one its one, an unchanged file one
    // held by both backups.
    let found: serde_json::Value = serde_json::from_str(&sb.ok(&["backups", "find", "*.txt", "--json"])).unwrap();
    let by_path = |p: &str| found.as_array().unwrap().iter().find(|f| f["path"] == p).cloned().expect(p);
    let a = by_path("~/notes/a.txt");
    assert_eq!(a["versions"].as_array().unwrap().len(), 2, "{a}");
    assert_eq!(a["versions"][0]["backups"], serde_json::json!([second]), "newest first: {a}");
    assert_eq!(a["versions"][1]["backups"], serde_json::json!([first]));
    assert_eq!(a["versions"][1]["size"], "the first a".len());
    let gone = by_path("~/notes/gone.txt");
    assert_eq!(gone["versions"].as_array().unwrap().len(), 1);
    assert_eq!(gone["versions"][0]["backups"], serde_json::json!([first]));
    let b = by_path("~/notes/sub/b.txt");
    assert_eq!(b["versions"][0]["backups"].as_array().unwrap().len(), 2, "{b}");
    assert!(found.as_array().unwrap().iter().all(|f| f["path"].as_str().unwrap().ends_with(".txt")));
    let only_sub: serde_json::Value =
        serde_json::from_str(&sb.ok(&["backups", "find", "~/notes/sub/*", "--json"])).unwrap();
    assert_eq!(paths(&only_sub), ["~/notes/sub/b.txt"]);
    let text = sb.ok(&["backups", "find", "a.txt"]);
    assert!(text.starts_with("~/notes/a.txt\n") && text.contains(&first) && text.contains(&second), "{text}");

    // diff: exactly the edit, the addition and the deletion.
    let d: serde_json::Value = serde_json::from_str(&sb.ok(&["backups", "diff", &first, &second, "--json"])).unwrap();
    assert_eq!(paths(&d["added"]), ["~/notes/new.txt"], "{d}");
    assert_eq!(paths(&d["removed"]), ["~/notes/gone.txt"], "{d}");
    assert_eq!(paths(&d["modified"]), ["~/notes/a.txt"], "{d}");
    assert_eq!(d["modified"][0]["what"], "content");
    let text = sb.ok(&["backups", "diff", &first, &second]);
    assert!(text.contains("+ ~/notes/new.txt") && text.contains("- ~/notes/gone.txt"), "{text}");
    assert!(text.contains("M ~/notes/a.txt (content)") && text.contains("1 added"), "{text}");
    // Against the device: a touch is metadata only; the second backup is the device now.
    let d: serde_json::Value = serde_json::from_str(&sb.ok(&["backups", "diff", &second, "--json"])).unwrap();
    assert!(d["added"].as_array().unwrap().is_empty() && d["modified"].as_array().unwrap().is_empty(), "{d}");
    fs::write(notes.join("late.txt"), "after both").unwrap();
    let old = fs::metadata(notes.join("sub/b.txt")).unwrap().modified().unwrap();
    let f = fs::File::options().write(true).open(notes.join("sub/b.txt")).unwrap();
    f.set_modified(old + std::time::Duration::from_secs(60)).unwrap();
    drop(f);
    let d: serde_json::Value = serde_json::from_str(&sb.ok(&["backups", "diff", &second, "--json"])).unwrap();
    assert_eq!(paths(&d["added"]), ["~/notes/late.txt"], "{d}");
    assert_eq!(paths(&d["modified"]), ["~/notes/sub/b.txt"], "{d}");
    assert_eq!(d["modified"][0]["what"], "metadata", "same bytes, another time: {d}");
    fs::remove_file(notes.join("late.txt")).unwrap();

    // dump: a file's bytes, also of a file deleted since; a folder as tar.
    let out = sb.command().args(["backups", "dump", &first, "~/notes/gone.txt"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"deleted after the first backup");
    let out = sb.command().args(["backups", "dump", &first, "~/notes/sub/b.txt"]).output().unwrap();
    assert_eq!(out.stdout, random_bytes(300_000, 7));
    let out = sb.command().args(["backups", "dump", &first, "~/notes"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut names: Vec<String> = tar::Archive::new(&out.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["notes", "notes/a.txt", "notes/gone.txt", "notes/sub", "notes/sub/b.txt"]);

    // restore --path: that one file, in place, nothing else touched; the safety backup
    // undoes it.
    fs::write(notes.join("a.txt"), "edited once more").unwrap();
    fs::write(notes.join("unsaved.txt"), "not in any backup").unwrap();
    let before_music = fs::read(sb.home.join("music/song.ogg")).unwrap();
    let plan: serde_json::Value = serde_json::from_str(&sb.ok(&[
        "backups",
        "restore",
        &first,
        "--path",
        "~/notes/gone.txt",
        "--mode",
        "replace",
        "--dry-run",
        "--json",
    ]))
    .unwrap();
    assert_eq!(planned(&plan, "create"), [notes.join("gone.txt").display().to_string()], "{plan}");
    assert!(planned(&plan, "delete").is_empty() && planned(&plan, "replace").is_empty(), "{plan}");
    sb.ok(&["backups", "restore", &first, "--path", "~/notes/gone.txt", "--mode", "replace", "--quiet"]);
    assert_eq!(fs::read_to_string(notes.join("gone.txt")).unwrap(), "deleted after the first backup");
    assert_eq!(fs::read_to_string(notes.join("a.txt")).unwrap(), "edited once more", "other files stay as they are");
    assert!(
        notes.join("unsaved.txt").exists() && notes.join("new.txt").exists(),
        "replace keeps what it was not asked for"
    );
    assert_eq!(fs::read(sb.home.join("music/song.ogg")).unwrap(), before_music);

    // An edited file brought back replaces the edit, and its safety backup undoes that.
    let out = sb.ok(&["backups", "restore", &first, "--path", "~/notes/a.txt"]);
    assert_eq!(fs::read_to_string(notes.join("a.txt")).unwrap(), "the first a");
    let safety = out.split("safety backup ").nth(1).and_then(|r| r.split(';').next()).expect(&out).to_string();
    sb.ok(&["backups", "restore", &safety, "--no-safety-backup", "--quiet"]);
    assert_eq!(fs::read_to_string(notes.join("a.txt")).unwrap(), "edited once more");
    assert!(notes.join("gone.txt").exists() && notes.join("unsaved.txt").exists());

    // Under --target, with a glob: only the matches land there.
    let target = sb.dir.path().join("recovered");
    fs::create_dir_all(&target).unwrap();
    sb.ok(&[
        "backups",
        "restore",
        &first,
        "--path",
        "~/notes/sub/*.txt",
        "--target",
        target.to_str().unwrap(),
        "--quiet",
    ]);
    let landed: Vec<String> = walkdir(&target)
        .iter()
        .filter(|p| p.is_file())
        .map(|p| p.strip_prefix(&target).unwrap().display().to_string())
        .collect();
    let home_rel = sb.home.strip_prefix("/").unwrap().display().to_string();
    assert_eq!(landed, [format!("{home_rel}/notes/sub/b.txt")]);

    // A path no backup holds is refused, naming it; nothing is written.
    let out = sb.run(&["backups", "restore", &first, "--path", "~/notes/never.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds nothing at ~/notes/never.txt"));
    let out = sb.run(&["backups", "ls", &first, "notes"]);
    assert_eq!(out.status.code(), Some(2), "a relative path is bad input");
}

#[test]
fn the_api_lists_serves_searches_compares_and_restores_single_files() {
    use crate::common::daemon::Daemon;
    let TwoBackups { sb, first, second } = two_backups();
    let notes = sb.home.join("notes");
    let d = Daemon::start(&sb);
    let get_json = |path: &str| -> (u16, serde_json::Value) {
        let r = d.get(path);
        let status = r.status().as_u16();
        (status, serde_json::from_str(&r.text().unwrap()).unwrap_or_default())
    };

    // A folder, folders first, paged.
    let (status, page) = get_json(&format!("/api/backups/{second}/files?path=~/notes"));
    assert_eq!(status, 200, "{page}");
    assert_eq!(paths(&page["entries"]), ["~/notes/sub", "~/notes/a.txt", "~/notes/new.txt"]);
    assert_eq!(page["total"], 3);
    let (_, page) = get_json(&format!("/api/backups/{second}/files?path=~/notes&offset=1&limit=1"));
    assert_eq!(paths(&page["entries"]), ["~/notes/a.txt"]);
    assert_eq!(page["total"], 3);
    let (_, top) = get_json(&format!("/api/backups/{second}/files"));
    assert_eq!(paths(&top["entries"]), ["~/music", "~/notes"]);
    let (status, e) = get_json(&format!("/api/backups/{second}/files?path=notes"));
    assert_eq!(status, 400, "a relative path: {e}");
    let (status, e) = get_json(&format!("/api/backups/{second}/files?path=~/nothing"));
    assert_eq!(status, 404, "{e}");
    assert_eq!(e["kind"], "not_found");

    // One file: whole, with its length; a range; a folder as tar.
    let r = d.get(&format!("/api/backups/{first}/file?path=~/notes/sub/b.txt"));
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-length"], "300000");
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains("b.txt"));
    assert_eq!(r.bytes().unwrap().to_vec(), random_bytes(300_000, 7));
    let r = Daemon::client()
        .get(format!("{}/api/backups/{first}/file?path=~/notes/sub/b.txt", d.url))
        .bearer_auth(&d.token)
        .header("range", "bytes=1000-1999")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 1000-1999/300000");
    assert_eq!(r.bytes().unwrap().to_vec(), random_bytes(300_000, 7)[1000..2000].to_vec());
    let r = Daemon::client()
        .get(format!("{}/api/backups/{first}/file?path=~/notes/gone.txt", d.url))
        .bearer_auth(&d.token)
        .header("range", "bytes=500-")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 416);
    let r = d.get(&format!("/api/backups/{first}/file?path=~/notes"));
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-tar");
    let tar_bytes = r.bytes().unwrap();
    let count = tar::Archive::new(&tar_bytes[..]).entries().unwrap().count();
    assert_eq!(count, 5);

    // Search and diff.
    let (status, s) = get_json("/api/search?pattern=a.txt");
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["backups"], 2);
    assert_eq!(s["paths"][0]["path"], "~/notes/a.txt");
    assert_eq!(s["paths"][0]["versions"].as_array().unwrap().len(), 2);
    let (status, _) = get_json("/api/search?pattern=%5Bx");
    assert_eq!(status, 400, "a bad glob");
    let (status, diff) = get_json(&format!("/api/backups/{first}/diff?to={second}"));
    assert_eq!(status, 200, "{diff}");
    assert_eq!(paths(&diff["added"]), ["~/notes/new.txt"]);
    assert_eq!(paths(&diff["removed"]), ["~/notes/gone.txt"]);
    assert_eq!(paths(&diff["modified"]), ["~/notes/a.txt"]);

    // A restore of one path: planned, then run, with its safety backup.
    fs::write(notes.join("a.txt"), "edited through the day").unwrap();
    let (status, plan) = d.json(
        reqwest::Method::POST,
        &format!("/api/backups/{first}/restore"),
        serde_json::json!({"paths": ["~/notes/a.txt"], "dry_run": true}),
    );
    assert_eq!(status, 200, "{plan}");
    assert_eq!(planned(&plan, "replace"), [notes.join("a.txt").display().to_string()], "{plan}");
    assert!(planned(&plan, "create").is_empty() && planned(&plan, "delete").is_empty(), "{plan}");
    let (status, started) = d.json(
        reqwest::Method::POST,
        &format!("/api/backups/{first}/restore"),
        serde_json::json!({"paths": ["~/notes/a.txt"]}),
    );
    assert_eq!(status, 202, "{started}");
    let (job, _) = d.follow(started["job"].as_u64().unwrap());
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(fs::read_to_string(notes.join("a.txt")).unwrap(), "the first a");
    assert!(notes.join("new.txt").exists() && !notes.join("gone.txt").exists(), "nothing else changed");
    assert!(d.stop().success());
}

/// Bytes of the objects under `prefix` of a bucket, from SeaweedFS's filer listing.
fn stored_under(filer: u16, prefix: &str) -> u64 {
    let r = http()
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{filer}/buckets/{prefix}/?limit=10000"))
        .header("accept", "application/json")
        .send()
        .unwrap();
    assert!(r.status().is_success(), "listing {prefix}: {}", r.status());
    let listing: serde_json::Value = r.json().unwrap();
    let entries = listing["Entries"].as_array().cloned().unwrap_or_default();
    entries.iter().map(|e| e["FileSize"].as_u64().unwrap_or(0)).sum()
}

#[test]
fn one_file_from_s3_downloads_only_the_index_its_trees_and_its_blobs() {
    use crate::common::servers::{Relay, Seaweed};
    use std::sync::atomic::Ordering;
    let sb = Sandbox::new("");
    let mut server = Seaweed::start(&sb.dir.path().join("weed"));
    server.create_bucket("backups");
    let s3_port: u16 = server.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let relay = Relay::start(s3_port);
    let photos = sb.home.join("photos");
    for album in 0..4 {
        fs::create_dir_all(photos.join(format!("album{album}"))).unwrap();
        for i in 0..6 {
            let seed = album * 100 + i;
            fs::write(photos.join(format!("album{album}/p{i}.jpg")), random_bytes(1 << 20, seed)).unwrap();
        }
    }
    let location =
        server.location_toml("backups", "phone").replace(&server.endpoint, &format!("http://127.0.0.1:{}", relay.port));
    fs::write(
        &sb.config,
        format!("default_location = \"s3\"\n[location.s3]\n{location}\n[unit.photos]\npaths = [\"~/photos\"]\n"),
    )
    .unwrap();
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let index = stored_under(server.filer_port(), "backups/phone/index");
    let listed: serde_json::Value = serde_json::from_str(&sb.ok(&["locations", "list", "--json"])).unwrap();
    let stored = listed[0]["size"].as_u64().unwrap();
    assert!(stored > 8 << 20 && index > 0, "the repository holds megabytes: {stored}, its index {index}");

    let target = sb.dir.path().join("one");
    fs::create_dir_all(&target).unwrap();
    let before = relay.received.load(Ordering::SeqCst);
    sb.ok(&[
        "backups",
        "restore",
        &slug,
        "--path",
        "~/photos/album2/p3.jpg",
        "--target",
        target.to_str().unwrap(),
        "--quiet",
    ]);
    let restore_bytes = relay.received.load(Ordering::SeqCst) - before;
    let landed = target.join(sb.home.strip_prefix("/").unwrap()).join("photos/album2/p3.jpg");
    assert_eq!(fs::read(&landed).unwrap(), random_bytes(1 << 20, 203));
    let bound = (1 << 20) + index + (1 << 20);
    eprintln!("restore --path of 1 MiB from S3: {restore_bytes} bytes down (index {index}, all {stored})");
    assert!(
        restore_bytes <= bound,
        "{restore_bytes} bytes downloaded, more than the file, the index and 1 MiB ({bound})"
    );

    let before = relay.received.load(Ordering::SeqCst);
    let out = sb.command().args(["backups", "dump", &slug, "~/photos/album0/p5.jpg"]).output().unwrap();
    let dump_bytes = relay.received.load(Ordering::SeqCst) - before;
    assert_eq!(out.stdout, random_bytes(1 << 20, 5));
    eprintln!("dump of 1 MiB from S3: {dump_bytes} bytes down");
    assert!(dump_bytes <= bound, "{dump_bytes} bytes downloaded for a dump ({bound})");
}

/// Unmounts (lazily) when dropped, so that a failing test leaves no mount behind.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("fusermount3")
            .arg("-uz")
            .arg(&self.0)
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// `lifeboat mount` in the background, ready once it says where the backups are.
fn mounted(sb: &Sandbox, at: &std::path::Path) -> (std::process::Child, std::io::BufReader<std::process::ChildStderr>) {
    use std::io::BufRead;
    let mut child = sb.command().arg("mount").arg(at).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("are at"), "the mount did not start: {line}");
    (child, err)
}

fn fuse_available() -> bool {
    let ok = std::path::Path::new("/dev/fuse").exists()
        && std::process::Command::new("fusermount3").arg("-V").output().is_ok();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "FUSE (/dev/fuse, fusermount3) is missing: scripts/test installs fuse3"
        );
        eprintln!("skipped: FUSE is not available here");
    }
    ok
}

#[test]
fn a_mount_shows_every_backup_at_its_paths_and_ends_cleanly() {
    use std::io::Read;
    if !fuse_available() {
        return;
    }
    let TwoBackups { sb, first, second } = two_backups();
    let at = sb.dir.path().join("mnt");
    fs::create_dir_all(&at).unwrap();
    let home = sb.home.strip_prefix("/").unwrap().to_path_buf();
    let _unmount = Unmount(at.clone());
    let (mut child, mut err) = mounted(&sb, &at);

    let mut slugs: Vec<String> =
        fs::read_dir(&at).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    slugs.sort();
    let mut want = vec![first.clone(), second.clone(), "latest".to_string(), "by-device".to_string()];
    want.sort();
    assert_eq!(slugs, want);
    assert_eq!(fs::read_link(at.join("latest")).unwrap(), std::path::Path::new(&second));
    // By device, then date: each a link to the backup's folder.
    let devices: Vec<_> = fs::read_dir(at.join("by-device")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(devices.len(), 1, "one device made both: {devices:?}");
    let mut dated: Vec<_> = fs::read_dir(&devices[0]).unwrap().map(|e| e.unwrap().path()).collect();
    dated.sort();
    let targets: Vec<_> = dated.iter().map(|p| fs::read_link(p).unwrap()).collect();
    assert_eq!(targets, [format!("../../{first}"), format!("../../{second}")].map(std::path::PathBuf::from));
    assert_eq!(
        fs::read_to_string(dated[0].join(&home).join("notes/a.txt")).unwrap(),
        "the first a",
        "the link leads to the backup"
    );
    let latest = at.join("latest").join(&home).join("notes");
    let older = at.join(&first).join(&home).join("notes");
    assert_eq!(fs::read_to_string(latest.join("a.txt")).unwrap(), "the second a, longer");
    assert_eq!(fs::read_to_string(older.join("a.txt")).unwrap(), "the first a");
    assert_eq!(fs::read_to_string(older.join("gone.txt")).unwrap(), "deleted after the first backup");
    assert!(!latest.join("gone.txt").exists());
    assert_eq!(fs::read(latest.join("sub/b.txt")).unwrap(), random_bytes(300_000, 7));
    // A read from the middle, as a program seeking in a file does.
    let mut f = fs::File::open(older.join("sub/b.txt")).unwrap();
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(123_456)).unwrap();
    let mut part = vec![0u8; 1000];
    f.read_exact(&mut part).unwrap();
    assert_eq!(part, random_bytes(300_000, 7)[123_456..124_456].to_vec());
    drop(f);
    let m = fs::metadata(latest.join("a.txt")).unwrap();
    assert_eq!(m.len(), "the second a, longer".len() as u64);
    assert!(fs::write(latest.join("a.txt"), "no").is_err(), "the view is read-only");

    // A read that fails answers an error, and the mount stays up.
    for e in walkdir(&sb.repo.join("data")) {
        if e.is_file() {
            fs::remove_file(e).unwrap();
        }
    }
    let failed = fs::read(at.join(&first).join(&home).join("music/song.ogg")).unwrap_err();
    assert_eq!(failed.raw_os_error(), Some(libc::EIO), "{failed}");
    assert!(fs::read_dir(&at).unwrap().count() == 4, "still mounted");

    // fusermount3 -u ends it, and the command with it.
    assert!(std::process::Command::new("fusermount3").arg("-u").arg(&at).status().unwrap().success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{rest}");
    assert!(fs::read_dir(&at).unwrap().next().is_none(), "unmounted: the folder is empty again");
}

#[test]
fn a_mount_ends_cleanly_on_sigterm() {
    if !fuse_available() {
        return;
    }
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\n");
    fs::create_dir_all(sb.home.join("notes")).unwrap();
    fs::write(sb.home.join("notes/a"), "a").unwrap();
    sb.backup(&[]);
    let at = sb.dir.path().join("mnt");
    fs::create_dir_all(&at).unwrap();
    let _unmount = Unmount(at.clone());
    let (mut child, _err) = mounted(&sb, &at);
    assert!(at.join("latest").exists());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(fs::read_dir(&at).unwrap().next().is_none(), "unmounted");
}
