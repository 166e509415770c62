//! The exit codes of restores, which scripts act on (issue 42, item 6): entries not restored
//! exit 1, never 3; 3 is only for entries restored whose metadata could not all be set.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::common::daemon::Daemon;
use crate::common::*;

/// Five files of the unit `notes`: three of 300 kB, two small.
fn five_files(sb: &Sandbox) -> Vec<(String, Vec<u8>)> {
    let notes = sb.home.join("notes");
    fs::create_dir_all(&notes).unwrap();
    let files: Vec<(String, Vec<u8>)> = (0..5u64)
        .map(|i| {
            let size = if i % 2 == 0 { 300_000 } else { 1_000 };
            (format!("file-{i}"), random_bytes(size, i + 1))
        })
        .collect();
    for (name, bytes) in &files {
        fs::write(notes.join(name), bytes).unwrap();
    }
    files
}

/// The sandbox's command as the user nobody, who may not write where only its permissions
/// say it may not: as root, the whole sandbox (with a copy of the binary, whose own folder
/// nobody may not reach) becomes that user's and the command runs as that user.
fn as_unprivileged(sb: &Sandbox) -> Command {
    let base = sb.command();
    if !is_root() {
        return base;
    }
    const NOBODY: u32 = 65534;
    let bin = sb.dir.path().join("lifeboat");
    fs::copy(base.get_program(), &bin).unwrap();
    let mut c = Command::new(&bin);
    c.env_clear().args(base.get_args()).stdin(std::process::Stdio::null());
    for (k, v) in base.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    for p in std::iter::once(sb.dir.path().to_path_buf()).chain(walkdir(sb.dir.path())) {
        std::os::unix::fs::lchown(&p, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    // SAFETY: between fork and exec only setgroups, setgid and setuid run, which are
    // async-signal-safe and touch nothing of the parent's.
    unsafe {
        c.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(NOBODY) != 0 || libc::setuid(NOBODY) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

fn report(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(out), stderr(out)))
}

#[test]
fn a_target_restore_into_a_folder_it_cannot_write_exits_1() {
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\n");
    five_files(&sb);
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let locked = sb.dir.path().join("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();

    for json in [false, true] {
        let mut c = as_unprivileged(&sb);
        c.args(["backups", "restore", &slug, "--target", locked.to_str().unwrap(), "--quiet"]);
        if json {
            c.arg("--json");
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "nothing restored is a failure, not a warning: {}", stderr(&out));
        if json {
            let r = report(&out);
            assert_eq!(r["files"].as_u64(), Some(0), "{r}");
            assert!(r["not_restored"].as_u64().is_some_and(|n| n >= 1), "{r}");
        } else {
            assert!(stderr(&out).contains("Permission denied"), "{}", stderr(&out));
            assert!(stdout(&out).contains(" not restored."), "{}", stdout(&out));
        }
        assert!(walkdir(&locked).is_empty(), "nothing was written");
    }
}

/// A full disk, without mounting one: the restore runs under a file size limit (with
/// SIGXFSZ ignored, as it stays across exec), so three of the five files fail with EFBIG.
#[test]
fn a_target_restore_that_loses_files_to_a_full_disk_exits_1() {
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\n");
    let files = five_files(&sb);
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let target = sb.dir.path().join("restored");
    const LIMIT: libc::rlim_t = 100_000;
    let mut c = sb.command();
    c.args(["backups", "restore", &slug, "--target", target.to_str().unwrap(), "--quiet", "--json"]);
    // SAFETY: between fork and exec only setrlimit and signal run, which are async-signal-safe
    // and touch nothing of the parent's.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: LIMIT, rlim_max: LIMIT };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0
                || libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "files lost are a failure, not a warning: {}", stderr(&out));
    let r = report(&out);
    assert_eq!((r["files"].as_u64(), r["not_restored"].as_u64()), (Some(2), Some(3)), "{r}");
    let restored = rerooted(&target, &sb.home.join("notes"));
    for (name, bytes) in &files {
        match fs::read(restored.join(name)) {
            Ok(back) => assert_eq!(&back, bytes, "{name} is whole"),
            Err(e) => {
                assert!(bytes.len() as u64 > LIMIT, "{name}: {e}");
                assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{name} is not left partly written");
            }
        }
    }
}

/// Extended attributes the target's file system cannot hold: a value of 8000 bytes, which
/// tmpfs (/dev/shm) takes and ext4 refuses. Everything is restored, its metadata not all set:
/// a warning, exit 3.
#[test]
fn a_target_restore_with_only_metadata_not_set_exits_3() {
    let shm = match tempfile::tempdir_in("/dev/shm") {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skipped: no /dev/shm ({e})");
            return;
        }
    };
    let data = shm.path().join("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("a"), "with a large extended attribute").unwrap();
    fs::write(data.join("b"), "without").unwrap();
    let big = vec![b'x'; 8000];
    if let Err(e) = xattr::set(data.join("a"), "user.big", &big) {
        eprintln!("skipped: /dev/shm takes no large extended attribute ({e})");
        return;
    }
    let sb = Sandbox::new(&format!("[unit.shm]\npaths = [\"{}\"]\n", data.display()));
    let probe = sb.dir.path().join("probe");
    fs::write(&probe, "").unwrap();
    if xattr::set(&probe, "user.big", &big).is_ok() {
        eprintln!("skipped: the target's file system takes the large extended attribute too");
        return;
    }
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let target = sb.dir.path().join("restored");
    let out = sb.run(&["backups", "restore", &slug, "--target", target.to_str().unwrap(), "--quiet"]);
    assert_eq!(out.status.code(), Some(3), "metadata not set is a warning: {}", stderr(&out));
    assert!(stderr(&out).contains("extended attribute user.big"), "{}", stderr(&out));
    assert!(stdout(&out).contains("with 1 warning."), "{}", stdout(&out));
    for name in ["a", "b"] {
        assert_eq!(fs::read(rerooted(&target, &data.join(name))).unwrap(), fs::read(data.join(name)).unwrap());
    }
}

/// A restore job of the daemon that restores nothing (its target lies under a file) is not
/// "succeeded": it failed, and its result still says what was and was not restored.
#[test]
fn a_daemon_restore_job_with_entries_not_restored_fails() {
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\n");
    five_files(&sb);
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let file = sb.dir.path().join("a-file");
    fs::write(&file, "not a folder").unwrap();
    let target = file.join("restored");
    let d = Daemon::start(&sb);
    let (status, started) =
        d.json(reqwest::Method::POST, &format!("/api/backups/{slug}/restore"), serde_json::json!({"target": target}));
    assert_eq!(status, 202, "{started}");
    let (job, _) = d.follow(started["job"].as_u64().unwrap());
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error_kind"], "internal", "{job}");
    assert!(job["result"]["not_restored"].as_u64().is_some_and(|n| n >= 1), "{job}");
    let events: serde_json::Value = d.get("/api/events").json().unwrap();
    assert!(events.as_array().unwrap().iter().any(|e| e["kind"] == "restore_failed"), "{events}");
    assert!(d.stop().success());
    assert!(!Path::new(&target).exists());
}
