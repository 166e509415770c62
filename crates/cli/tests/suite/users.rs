//! A backup made by user nemo restored by user defaultuser, with real users (needs root to
//! create them; CI runs as root).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

struct Users(Vec<&'static str>);

impl Users {
    fn create(names: &[&'static str]) -> Users {
        for n in names {
            let _ = Command::new("userdel").args(["-r", n]).output();
            let out = Command::new("useradd").args(["-m", "-s", "/bin/sh", n]).output().expect("useradd");
            assert!(out.status.success(), "useradd {n}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Users(names.to_vec())
    }
}

impl Drop for Users {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("userdel").args(["-r", n]).output();
        }
    }
}

fn as_user(user: &str, work: &Path, args: &[&str]) -> std::process::Output {
    let home = format!("/home/{user}");
    Command::new("runuser")
        .args(["-u", user, "--", "env", "-i", "PATH=/usr/bin:/bin"])
        .arg(format!("HOME={home}"))
        .arg(format!("XDG_STATE_HOME={home}/.local/state"))
        .arg(format!("XDG_DATA_HOME={home}/.local/share"))
        .arg(format!("XDG_CONFIG_HOME={home}/.config"))
        .arg(work.join("lifeboat"))
        .arg("--config")
        .arg(work.join("lifeboat.toml"))
        .arg("--password-file")
        .arg(work.join("password"))
        .args(args)
        .output()
        .expect("runuser")
}

fn uid_of(user: &str) -> u32 {
    nix::unistd::User::from_name(user).unwrap().unwrap().uid.as_raw()
}

#[test]
fn a_backup_made_as_nemo_restores_as_defaultuser() {
    if !is_root() {
        eprintln!("skipped: creating users needs root");
        return;
    }
    let _users = Users::create(&["nemo", "defaultuser"]);
    let work: PathBuf = tempfile::Builder::new().prefix("lifeboat-users-").tempdir_in("/tmp").unwrap().keep();
    fs::set_permissions(&work, fs::Permissions::from_mode(0o755)).unwrap();
    fs::copy(env!("CARGO_BIN_EXE_lifeboat"), work.join("lifeboat")).unwrap();
    fs::set_permissions(work.join("lifeboat"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir(work.join("repo")).unwrap();
    fs::set_permissions(work.join("repo"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::write(work.join("password"), "shared family password\n").unwrap();
    fs::write(
        work.join("lifeboat.toml"),
        format!("[location.card]\npath = \"{}\"\n[unit.notes]\npaths = [\"~/notes\"]\n", work.join("repo").display()),
    )
    .unwrap();

    let setup = "mkdir -p ~/notes/sub && echo note > ~/notes/a && echo deeper > ~/notes/sub/b \
                 && ln -s /home/nemo/notes/a ~/notes/link-into-home";
    let out = Command::new("runuser")
        .args(["-u", "nemo", "--", "sh", "-c"])
        .arg(format!("HOME=/home/nemo; {setup}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = as_user("nemo", &work, &["backups", "new", "--json", "--quiet"]);
    assert!(out.status.success(), "backup as nemo: {}", String::from_utf8_lossy(&out.stderr));
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nemo_before = facts(Path::new("/home/nemo"));

    let out = as_user("defaultuser", &work, &["backups", "restore", b["slug"].as_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "restore as defaultuser: {}", String::from_utf8_lossy(&out.stderr));
    let notes = Path::new("/home/defaultuser/notes");
    assert_eq!(fs::read_to_string(notes.join("a")).unwrap(), "note\n");
    assert_eq!(fs::read_to_string(notes.join("sub/b")).unwrap(), "deeper\n");
    assert_eq!(fs::read_link(notes.join("link-into-home")).unwrap(), notes.join("a"));
    let du = uid_of("defaultuser");
    for p in [notes.to_path_buf(), notes.join("a"), notes.join("sub"), notes.join("sub/b")] {
        assert_eq!(fs::symlink_metadata(&p).unwrap().uid(), du, "{} belongs to defaultuser", p.display());
    }
    assert_eq!(facts(Path::new("/home/nemo")), nemo_before, "nothing is written under /home/nemo");
    let _ = fs::remove_dir_all(&work);
}
