//! What runs with nobody there: the APT hook runs as the person it serves, and an unattended
//! backup (the hook, a schedule) never makes a repository nor prints a key, and fails loudly
//! when a unit stores nothing it had. The hook's tests make real users (root only; CI runs as
//! root) and run the hook's command line as APT does: `sh -c`, as root, in APT's bare
//! environment.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Output};

use crate::common::*;

/// A real user with a home, removed at the end.
struct User {
    name: &'static str,
    home: PathBuf,
}

impl User {
    fn create(name: &'static str) -> User {
        let _ = Command::new("userdel").args(["-r", name]).output();
        let out = Command::new("useradd").args(["-m", "-s", "/bin/sh", name]).output().expect("useradd");
        assert!(out.status.success(), "useradd {name}: {}", String::from_utf8_lossy(&out.stderr));
        let home = nix::unistd::User::from_name(name).unwrap().unwrap().dir;
        User { name, home }
    }

    /// A shell command run as this user in their own plain environment.
    fn sh(&self, script: &str) -> Output {
        Command::new("runuser")
            .args(["-u", self.name, "--", "env", "-i", "PATH=/usr/bin:/bin"])
            .arg(format!("HOME={}", self.home.display()))
            .args(["sh", "-c", script])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("runuser")
    }

    /// Lifeboat as this user, with their default folders and configuration (no XDG variables).
    fn lifeboat(&self, work: &Work, args: &[&str]) -> Output {
        Command::new("runuser")
            .args(["-u", self.name, "--", "env", "-i", "PATH=/usr/bin:/bin", "TZ=UTC"])
            .arg(format!("HOME={}", self.home.display()))
            .arg(&work.lifeboat)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("runuser")
    }

    fn config(&self) -> PathBuf {
        self.home.join(".config/lifeboat/lifeboat.toml")
    }

    fn uid(&self) -> u32 {
        nix::unistd::User::from_name(self.name).unwrap().unwrap().uid.as_raw()
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("userdel").args(["-r", self.name]).output();
    }
}

/// A folder every user can reach: lifeboat's copy, the location, the hook file, root's folders.
struct Work {
    dir: PathBuf,
    lifeboat: PathBuf,
    repo: PathBuf,
    hook: PathBuf,
}

impl Work {
    fn new() -> Work {
        let dir = tempfile::Builder::new().prefix("lifeboat-unattended-").tempdir_in("/tmp").unwrap().keep();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let lifeboat = dir.join("lifeboat");
        fs::copy(env!("CARGO_BIN_EXE_lifeboat"), &lifeboat).unwrap();
        fs::set_permissions(&lifeboat, fs::Permissions::from_mode(0o755)).unwrap();
        let repo = dir.join("repo");
        fs::create_dir(&repo).unwrap();
        fs::set_permissions(&repo, fs::Permissions::from_mode(0o777)).unwrap();
        Work { lifeboat, repo, hook: dir.join("80lifeboat"), dir }
    }

    /// `lifeboat hooks install apt ARGS` as `sudo` runs it for `user`: as root, with root's
    /// home, SUDO_USER set (root's own folders kept in this work folder).
    fn install_hook(&self, user: &User, args: &[&str]) -> Output {
        Command::new(&self.lifeboat)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", "/root")
            .env("SUDO_USER", user.name)
            .env("XDG_CONFIG_HOME", self.dir.join("root-config"))
            .env("XDG_DATA_HOME", self.dir.join("root-data"))
            .env("XDG_STATE_HOME", self.dir.join("root-state"))
            .env("XDG_CACHE_HOME", self.dir.join("root-cache"))
            .env("LIFEBOAT_APT_HOOK", &self.hook)
            .args(["hooks", "install", "apt"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("running lifeboat")
    }

    /// The command line the hook file gives APT.
    fn hook_line(&self) -> String {
        let text = fs::read_to_string(&self.hook).expect("the hook file");
        let start = text.find("DPkg::Pre-Invoke { \"").expect("a Pre-Invoke line") + "DPkg::Pre-Invoke { \"".len();
        let end = text[start..].find("\"; };").expect("the line's end") + start;
        text[start..end].to_string()
    }

    /// The hook run as APT runs it: `sh -c`, as root, HOME=/root and a bare PATH.
    fn run_as_apt(&self, line: &str) -> Output {
        Command::new("env")
            .args(["-i", "HOME=/root", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "sh", "-c", line])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("sh")
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn both(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A user of a Home Assistant install in their home, with the home-automation profile's
/// `config` unit, backing up to the work folder's location.
fn home_assistant_user(name: &'static str, work: &Work) -> User {
    let user = User::create(name);
    let out = user.sh(&format!(
        "mkdir -p ~/.homeassistant/.storage ~/.config/lifeboat && echo 'homeassistant:' > ~/.homeassistant/configuration.yaml \
         && echo 'secret: x' > ~/.homeassistant/secrets.yaml && echo '{{}}' > ~/.homeassistant/.storage/core.config \
         && printf '[location.local]\\npath = \"{}\"\\n\\n[unit.config]\\npaths = [\"~/.homeassistant\", \"/usr/share/hassio/homeassistant\"]\\noptional = true\\n\\n[unit.notes]\\npaths = [\"~/notes\"]\\noptional = true\\n' > ~/.config/lifeboat/lifeboat.toml",
        work.repo.display()
    ));
    assert!(out.status.success(), "{}", both(&out));
    user
}

fn backups_of(user: &User, work: &Work) -> Vec<serde_json::Value> {
    let out = user.lifeboat(work, &["backups", "list", "--json"]);
    assert!(out.status.success(), "{}", both(&out));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

/// Finding 2: installed with sudo by a user whose Home Assistant lives in their home, the hook
/// backs up that user's files, as that user (their key, their configuration), although APT
/// runs it as root with HOME=/root.
#[test]
fn the_apt_hook_backs_up_the_files_of_the_user_who_installed_it_with_sudo() {
    if !is_root() {
        eprintln!("skipped: creating users needs root");
        return;
    }
    let work = Work::new();
    let user = home_assistant_user("lbaptone", &work);
    // The first backup, by hand: the repository and its device key are made, the key shown.
    let out = user.lifeboat(&work, &["backups", "new", "--unit", "config", "--quiet"]);
    assert!(out.status.success(), "{}", both(&out));

    let out = work.install_hook(&user, &["--unit", "config"]);
    assert_eq!(out.status.code(), Some(0), "nothing to warn about: {}", both(&out));
    assert!(both(&out).contains("lbaptone"), "the install says whose backup it makes: {}", both(&out));
    let out = user.sh("echo 'automation: []' > ~/.homeassistant/automations.yaml");
    assert!(out.status.success());

    let out = work.run_as_apt(&work.hook_line());
    let said = both(&out);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("FAILED") && !said.contains("Recovery key"), "{said}");
    let backups = backups_of(&user, &work);
    assert_eq!(backups.len(), 2, "{backups:?}");
    let hook = backups.iter().find(|b| b["name"] == "Before package upgrade").expect("the hook's backup");
    assert_eq!(hook["status"], "completed", "{hook}");
    assert_eq!(hook["files"], 4, "the user's four files, not 0 of /root's: {hook}");
    // It ran as the user: nothing in their home (log, device id, state) is root's.
    for p in walkdir(&user.home) {
        assert_eq!(fs::symlink_metadata(&p).unwrap().uid(), user.uid(), "{} is the user's", p.display());
    }
}

/// Finding 2: an unattended backup where there is no repository makes none, saves no key and
/// prints none: the hook says in one line that its backup FAILED and why, and the upgrade
/// goes on.
#[test]
fn the_apt_hook_makes_no_repository_and_prints_no_key_where_there_is_none() {
    if !is_root() {
        eprintln!("skipped: creating users needs root");
        return;
    }
    let work = Work::new();
    let user = home_assistant_user("lbapttwo", &work);
    let config = user.config();
    let out = work.install_hook(&user, &["--config", config.to_str().unwrap(), "--unit", "config"]);
    assert_eq!(out.status.code(), Some(3), "a warning: {}", both(&out));
    assert!(both(&out).contains("the hook makes none"), "said at install: {}", both(&out));

    let line = work.hook_line();
    let out = work.run_as_apt(&line);
    let said = both(&out);
    assert!(out.status.success(), "a failed backup does not stop the upgrade: {said}");
    assert!(said.contains("lifeboat: the backup \"Before package upgrade\" FAILED: no repository at"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "one line: {said}");
    assert!(!said.contains("Recovery key") && !said.contains("random key"), "{said}");
    assert_eq!(fs::read_dir(&work.repo).unwrap().count(), 0, "no repository was made");
    assert!(!user.home.join(".config/lifeboat/keys").exists(), "no key was made");
    let out = user.lifeboat(&work, &["events", "--json"]);
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(events[0]["kind"], "backup_failed", "the failed run is recorded: {events}");
    assert!(events[0]["message"].as_str().unwrap().contains("no repository at"), "{events}");
}

/// Finding 2: a unit that held files and now holds none (the folder moved) fails the hook's
/// backup, which APT's output shows in one line; the failure is recorded (a failed backup, an
/// event).
#[test]
fn the_apt_hooks_backup_of_a_unit_that_held_files_and_now_holds_none_fails_loudly() {
    if !is_root() {
        eprintln!("skipped: creating users needs root");
        return;
    }
    let work = Work::new();
    let user = home_assistant_user("lbaptthree", &work);
    let out = user.lifeboat(&work, &["backups", "new", "--unit", "config", "--json", "--quiet"]);
    assert!(out.status.success(), "{}", both(&out));
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = work.install_hook(&user, &["--unit", "config"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = user.sh("mv ~/.homeassistant ~/homeassistant-moved");
    assert!(out.status.success());

    let line = work.hook_line();
    let out = work.run_as_apt(&line);
    let said = both(&out);
    assert!(out.status.success(), "the upgrade goes on: {said}");
    let expected = format!(
        "lifeboat: the backup \"Before package upgrade\" FAILED: unit config: it holds no files, while its previous \
         backup {} held 3 files ({}/.homeassistant, /usr/share/hassio/homeassistant do not exist)",
        first["slug"].as_str().unwrap(),
        user.home.display()
    );
    assert!(said.contains(&expected), "{said}");
    // Without `|| true`, the command fails.
    let bare = line.split(" then ").nth(1).unwrap().split(" || true").next().unwrap();
    let out = work.run_as_apt(bare);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));

    let backups = backups_of(&user, &work);
    let failed: Vec<_> = backups.iter().filter(|b| b["name"] == "Before package upgrade").collect();
    assert!(failed.len() == 2 && failed.iter().all(|b| b["status"] == "failed"), "{backups:?}");
    let out = user.lifeboat(&work, &["events", "--json"]);
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(events[0]["kind"], "backup_failed", "{events}");
    assert!(events[0]["message"].as_str().unwrap().contains("holds no files"), "{events}");
}

/// Finding 2, the same hole elsewhere: `backups new --unattended` and a schedule make no
/// repository; a unit named for an unattended backup none of whose paths exist (the hook's
/// Home Assistant case on its first run) fails it; an optional unit of another system's paths
/// in a full backup does not.
#[test]
fn unattended_backups_and_schedules_make_no_repository_and_fail_on_a_unit_that_holds_nothing() {
    let sb = Sandbox::new(
        "[unit.docs]\npaths = [\"~/docs\"]\n\n[unit.config]\npaths = [\"~/.homeassistant\"]\noptional = true\n\n\
         [schedule.nightly]\nevery = \"day\"\nat = \"03:00\"\n",
    );
    fs::create_dir_all(sb.home.join("docs")).unwrap();
    fs::write(sb.home.join("docs/a"), "a").unwrap();
    let out = sb.run_without_password(&["backups", "new", "--unattended"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(said.starts_with("lifeboat: the backup FAILED: no repository at "), "{said}");
    assert!(said.contains("make it once by hand with `lifeboat backups new --location local`"), "{said}");
    assert!(!both(&out).contains("Recovery key"), "{}", both(&out));
    let out = sb.run_without_password(&["schedules", "run", "nightly"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(both(&out).contains("no repository at"), "{}", both(&out));
    assert!(!sb.repo.exists() || fs::read_dir(&sb.repo).unwrap().count() == 0, "no repository was made");
    assert!(!sb.dir.path().join("xdg-config/lifeboat/keys").exists(), "no key was made");

    // Made by hand, then unattended: an optional unit that exists nowhere is skipped in a
    // full backup, and fails one that names it.
    sb.backup(&[]);
    let full = sb.run(&["backups", "new", "--unattended", "--json"]);
    assert_eq!(full.status.code(), Some(0), "{}", both(&full));
    let named = sb.run(&["backups", "new", "--unattended", "--unit", "config", "--unit", "docs"]);
    assert_eq!(named.status.code(), Some(1), "{}", both(&named));
    let said = String::from_utf8_lossy(&named.stderr).into_owned();
    let home = sb.home.display();
    assert!(
        said.contains(&format!(
            "FAILED: unit config: none of its paths exist here ({home}/.homeassistant does not exist)"
        )),
        "{said}"
    );
    // A unit emptied under a schedule fails the schedule's backup.
    fs::remove_file(sb.home.join("docs/a")).unwrap();
    let out = sb.run(&["schedules", "run", "nightly"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(both(&out).contains("unit docs: it holds no files, while its previous backup"), "{}", both(&out));
}

/// Finding 2, files only root can read (a system-wide Home Assistant's /usr/share/hassio) in a
/// normal user's hook: the install says so and how to back them up (a hook of root's); the
/// hook backs up as the user, leaving them out with a warning, never as root.
#[test]
fn a_normal_users_hook_says_at_install_which_files_only_root_can_read() {
    if !is_root() {
        eprintln!("skipped: creating users needs root");
        return;
    }
    let work = Work::new();
    let user = home_assistant_user("lbaptfour", &work);
    let hassio = work.dir.join("hassio");
    fs::create_dir(&hassio).unwrap();
    fs::write(hassio.join("share.db"), "root's").unwrap();
    fs::set_permissions(&hassio, fs::Permissions::from_mode(0o700)).unwrap();
    let out = user.sh(&format!(
        "printf '\\n[unit.share]\\npaths = [\"{}\"]\\n' >> ~/.config/lifeboat/lifeboat.toml",
        hassio.display()
    ));
    assert!(out.status.success(), "{}", both(&out));
    let out = user.lifeboat(&work, &["backups", "new", "--unit", "config", "--quiet"]);
    assert!(out.status.success(), "{}", both(&out));

    let out = work.install_hook(&user, &["--unit", "config", "--unit", "share"]);
    assert_eq!(out.status.code(), Some(3), "{}", both(&out));
    let said = both(&out);
    assert!(
        said.contains(&format!("unit share: lbaptfour cannot read {}", hassio.display()))
            && said.contains("install the hook for root"),
        "{said}"
    );
    let out = work.run_as_apt(&work.hook_line());
    let said = both(&out);
    assert!(out.status.success() && !said.contains("FAILED"), "{said}");
    assert!(said.contains("permission denied"), "left out, with a warning: {said}");
    let backups = backups_of(&user, &work);
    let hook = backups.iter().find(|b| b["name"] == "Before package upgrade").expect("the hook's backup");
    assert_eq!((&hook["status"], &hook["files"]), (&"completed_with_warnings".into(), &3.into()), "{hook}");
}

/// Hostile review of finding 2: a hook of root's runs as root whatever it names, so nothing it
/// names may be changeable by another user. An admin following the install's own advice
/// ("install the hook for root, `--user root --config FILE`") with the user's configuration,
/// or running a copy of lifeboat the user owns, or with configuration folders (XDG, kept by
/// `sudo -E`) in the user's home, would let the user add a command unit that APT runs as
/// root. The install refuses each, writes no hook, and says why; a hook of root's over files
/// only root can change is still installed.
#[test]
fn a_hook_of_roots_refuses_a_program_configuration_or_folder_another_user_can_change() {
    if !is_root() {
        eprintln!("skipped: creating users needs root");
        return;
    }
    let work = Work::new();
    let user = home_assistant_user("lbaptfive", &work);
    let out = user.lifeboat(&work, &["backups", "new", "--unit", "config", "--quiet"]);
    assert!(out.status.success(), "{}", both(&out));
    let pwned = work.dir.join("pwned");
    let proof = format!(
        "printf '\\n[unit.pwn]\\ntype = \"command\"\\nexport = \"id -u > {}\"\\nimport = \"true\"\\n' >> ~/.config/lifeboat/lifeboat.toml",
        pwned.display()
    );
    let refused = |out: &Output, what: &str| {
        let said = both(out);
        assert!(!out.status.success(), "refused: {said}");
        assert!(said.contains(what) && said.contains("can be changed by someone other than root"), "{said}");
        assert!(!work.hook.exists(), "no hook was written: {said}");
    };

    // The user's configuration, for a hook of root's.
    let config = user.config();
    let out = work.install_hook(&user, &["--user", "root", "--config", config.to_str().unwrap()]);
    if out.status.success() || out.status.code() == Some(3) {
        // What the hole lets the user do: their command unit, run by APT as root.
        assert!(user.sh(&proof).status.success());
        let _ = work.run_as_apt(&work.hook_line());
        assert!(!pwned.exists(), "the user ran a command as root (uid {:?})", fs::read_to_string(&pwned));
    }
    refused(&out, &format!("the configuration {}", config.display()));

    // Root's own configuration, and a copy of lifeboat the user owns.
    let root_config = work.dir.join("root.toml");
    fs::write(&root_config, format!("[location.local]\npath = \"{}\"\n", work.repo.display())).unwrap();
    let theirs = user.home.join("lifeboat");
    fs::copy(&work.lifeboat, &theirs).unwrap();
    nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(user.uid())), None).unwrap();
    let out = Command::new(&theirs)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/root")
        .env("LIFEBOAT_APT_HOOK", &work.hook)
        .env("XDG_CONFIG_HOME", work.dir.join("root-config"))
        .env("XDG_DATA_HOME", work.dir.join("root-data"))
        .env("XDG_STATE_HOME", work.dir.join("root-state"))
        .args(["--config", root_config.to_str().unwrap(), "hooks", "install", "apt", "--user", "root"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    refused(&out, &format!("this program {}", theirs.display()));

    // Root's configuration folder in the user's home (`sudo -E`): root's hook would read the
    // user's lifeboat.toml and keys.
    let out = Command::new(&work.lifeboat)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/root")
        .env("LIFEBOAT_APT_HOOK", &work.hook)
        .env("XDG_CONFIG_HOME", user.home.join(".config"))
        .args(["--config", root_config.to_str().unwrap(), "hooks", "install", "apt", "--user", "root"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    refused(&out, &format!("{}", user.home.join(".config").display()));

    // Root's configuration and program, in folders only root can change: installed.
    let out = work.install_hook(&user, &["--user", "root", "--config", root_config.to_str().unwrap()]);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", both(&out));
    assert!(work.hook_line().contains(&format!("--config {}", root_config.display())), "{}", work.hook_line());
    assert!(!pwned.exists());
}

/// Hostile review of finding 2: `sudo lifeboat hooks install apt` checks the user's setup (their
/// configuration, whether the hook can open their backups, their units' paths). Done as root,
/// the user's configuration chose what root read and where it sent it: a `password_file` of
/// root's sent to the user's server. The install checks as the user, with their permissions.
#[test]
fn installing_a_users_hook_reads_and_sends_nothing_only_root_can_read() {
    if !is_root() {
        eprintln!("skipped: creating users needs root");
        return;
    }
    let work = Work::new();
    let user = home_assistant_user("lbaptsix", &work);
    let secret = work.dir.join("root-secret");
    fs::write(&secret, "only-roots-secret\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    // The user's server: it records what it is sent, and has nothing.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let heard = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let ears = heard.clone();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut conn in server.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let n = conn.read(&mut buf).unwrap_or(0);
            ears.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            let _ = conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let out = user.sh(&format!(
        "printf '\\n[location.theirs]\\ntype = \"webdav\"\\nurl = \"http://127.0.0.1:{port}/\"\\nusername = \"u\"\\npassword_file = \"{}\"\\n' >> ~/.config/lifeboat/lifeboat.toml",
        secret.display()
    ));
    assert!(out.status.success(), "{}", both(&out));

    let out = work.install_hook(&user, &["--unit", "config", "--location", "theirs"]);
    let heard = heard.lock().unwrap().clone();
    assert!(!heard.to_lowercase().contains("authorization"), "root's secret was sent to the user's server: {heard}");
    assert_eq!(out.status.code(), Some(3), "a warning: {}", both(&out));
    assert!(both(&out).contains("could not check that the hook can open the backups"), "{}", both(&out));
}

/// Hostile review of finding 2: APT runs the hook file as root, so nobody but root may change
/// it. Written over a file already there, it kept that file's mode: a hook left writable by
/// all (made under umask 000) stayed so, and any user could put their command in root's
/// upgrade. The install leaves it 0644, root's.
#[test]
fn the_hook_file_is_writable_by_root_alone_whatever_was_there() {
    if !is_root() {
        eprintln!("skipped: creating users needs root");
        return;
    }
    let work = Work::new();
    let user = home_assistant_user("lbaptseven", &work);
    let out = user.lifeboat(&work, &["backups", "new", "--unit", "config", "--quiet"]);
    assert!(out.status.success(), "{}", both(&out));
    fs::write(&work.hook, "// an earlier hook\n").unwrap();
    fs::set_permissions(&work.hook, fs::Permissions::from_mode(0o666)).unwrap();
    let out = work.install_hook(&user, &["--unit", "config"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let meta = fs::symlink_metadata(&work.hook).unwrap();
    assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o644, 0), "the hook is root's, 0644");
    assert!(work.hook_line().contains("backups new --unattended"), "{}", work.hook_line());
    let left: Vec<_> = fs::read_dir(&work.dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!left.iter().any(|n| n.to_string_lossy().starts_with(".lifeboat-hook-")), "{left:?}");
}

/// Hostile review of finding 2: APT decodes `%XX` in a quoted value (`%27` is `'`), after the
/// hook's shell quoting: a path holding `%27` closed the single quotes and ran what followed
/// as root before every upgrade (and any `%XX` made the hook name another file). Read as APT
/// reads it (`apt-config`), the hook's command names exactly the paths it was given.
#[test]
fn a_percent_in_a_path_reaches_the_hook_as_it_is_not_as_apt_decodes_it() {
    if !is_root() || Command::new("apt-config").arg("--version").output().is_err() {
        eprintln!("skipped: needs root and apt-config");
        return;
    }
    let work = Work::new();
    let odd = work.dir.join("x%27$(id>pwned)%27y%41");
    fs::create_dir(&odd).unwrap();
    let data = work.dir.join("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("f"), "f").unwrap();
    let config = odd.join("lb.toml");
    fs::write(
        &config,
        format!(
            "[location.local]\npath = \"{}\"\n\n[unit.data]\npaths = [\"{}\"]\n",
            work.repo.display(),
            data.display()
        ),
    )
    .unwrap();
    // As root by root (no sudo): a hook of root's.
    let out = Command::new(&work.lifeboat)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/root")
        .env("XDG_CONFIG_HOME", work.dir.join("root-config"))
        .env("XDG_DATA_HOME", work.dir.join("root-data"))
        .env("XDG_STATE_HOME", work.dir.join("root-state"))
        .env("LIFEBOAT_APT_HOOK", &work.hook)
        .args(["--config", config.to_str().unwrap(), "hooks", "install", "apt"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", both(&out));

    let dump =
        Command::new("apt-config").arg("-c").arg(&work.hook).args(["dump", "DPkg::Pre-Invoke"]).output().unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    let line = dump
        .lines()
        .find_map(|l| l.strip_prefix("DPkg::Pre-Invoke:: \"")?.strip_suffix("\";"))
        .unwrap_or_else(|| panic!("APT reads a Pre-Invoke command: {dump}"))
        .to_string();
    assert!(line.contains(&format!("--config '{}'", config.display())), "APT's command: {line}");
    let out = Command::new("env")
        .args(["-i", "HOME=/root", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "sh", "-c", &line])
        .current_dir(&work.dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!work.dir.join("pwned").exists(), "the path ran a command as root: {}", both(&out));
}
