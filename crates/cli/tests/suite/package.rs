//! The Debian package (scripts/package), built around the binary this suite tested, installed
//! with dpkg as a person would, then removed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;

fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
    let program = program.as_ref().to_owned();
    Command::new(&program).args(args).output().unwrap_or_else(|e| panic!("{program:?} could not run: {e}"))
}

fn ok(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> String {
    let program = program.as_ref().to_owned();
    let out = run(&program, args);
    assert!(out.status.success(), "{program:?} {args:?} failed: {}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// Removes the package when the test ends, passed or not: nothing is left installed.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--remove", "lifeboat"]);
    }
}

#[test]
fn the_package_installs_a_documented_program_and_removes_all_of_it() {
    if !is_root() {
        eprintln!("skipped: installing a package needs root (CI runs as root)");
        return;
    }
    if which("cargo-deb").is_none() && !Path::new(&home_cargo_bin("cargo-deb")).is_file() {
        assert!(std::env::var_os("CI").is_none(), "cargo-deb is missing: scripts/test installs it");
        eprintln!("skipped: cargo-deb is not installed (scripts/test installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(workspace.join("scripts/package"))
        .args(["--binary", env!("CARGO_BIN_EXE_lifeboat"), "--output"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/package failed: {}{}", stdout(&out), stderr(&out));
    let debs: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "one package: {debs:?}");
    let deb = debs[0].to_str().unwrap();

    let fields = ok("dpkg-deb", &["--field", deb, "Package", "Depends", "Recommends"]);
    assert!(fields.contains("Package: lifeboat") && fields.contains("libc6"), "{fields}");
    assert!(fields.contains("Recommends: fuse3"), "`lifeboat mount` needs fusermount3: {fields}");

    let _installed = Installed;
    ok("dpkg", &["--install", deb]);
    let version = ok("/usr/bin/lifeboat", &["--version"]);
    assert_eq!(version.trim(), format!("lifeboat {}", env!("CARGO_PKG_VERSION")));

    // A manual page for the program and for every command, where man finds them.
    for page in ["lifeboat", "lifeboat-backups-restore", "lifeboat-backups-new", "lifeboat-serve"] {
        let at = ok("man", &["-w", page]);
        assert!(at.trim().starts_with("/usr/share/man/man1/"), "{page}: {at}");
    }
    let out = Command::new("man").env("LC_ALL", "C").args(["-P", "cat", "lifeboat-backups-restore"]).output().unwrap();
    let restore = stdout(&out);
    assert!(out.status.success() && restore.contains("--target") && restore.contains("Exit codes"), "{restore}");

    // Tab completion: the bash script loads and completes `lifeboat`; zsh and fish have theirs.
    let bash = "/usr/share/bash-completion/completions/lifeboat";
    let loaded = ok("bash", &["-c", &format!("source {bash} && complete -p lifeboat")]);
    assert!(loaded.contains("lifeboat"), "{loaded}");
    for other in ["/usr/share/zsh/vendor-completions/_lifeboat", "/usr/share/fish/vendor_completions.d/lifeboat.fish"] {
        let text = std::fs::read_to_string(other).unwrap_or_else(|e| panic!("{other}: {e}"));
        assert!(text.contains("backups"), "{other} completes the commands");
    }

    // The system and the user unit start the installed binary.
    let files: Vec<String> = ok("dpkg", &["--listfiles", "lifeboat"]).lines().map(str::to_string).collect();
    let units: Vec<&String> = files.iter().filter(|f| f.ends_with(".service")).collect();
    assert!(units.iter().any(|u| u.contains("/systemd/system/")), "a system unit: {units:?}");
    assert!(units.iter().any(|u| u.contains("/systemd/user/")), "a user unit: {units:?}");
    for unit in &units {
        let text = std::fs::read_to_string(unit).unwrap();
        let exec: Vec<&str> = text.lines().filter(|l| l.starts_with("ExecStart=")).collect();
        assert_eq!(exec, ["ExecStart=/usr/bin/lifeboat serve"], "{unit}");
    }

    // The example configuration is a valid one for the installed program.
    let example = "/usr/share/doc/lifeboat/examples/lifeboat.toml";
    let home = tempfile::tempdir().unwrap();
    let out = Command::new("/usr/bin/lifeboat")
        .env("HOME", home.path())
        .args(["--config", example, "units", "list"])
        .output()
        .unwrap();
    assert!(out.status.success() && stdout(&out).contains("photos"), "{}{}", stdout(&out), stderr(&out));
    assert!(Path::new("/usr/share/doc/lifeboat/CONFIG.md").is_file());

    // Removed, nothing of it is left but configuration files (it ships none).
    let conffiles = ok("dpkg-query", &["--show", "--showformat=${Conffiles}", "lifeboat"]);
    ok("dpkg", &["--remove", "lifeboat"]);
    let left: Vec<&String> =
        files.iter().filter(|f| Path::new(f).is_file() && !conffiles.contains(f.as_str())).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let status = ok("dpkg-query", &["--show", "--showformat=${db:Status-Status}", "lifeboat"]);
    assert!(matches!(status.as_str(), "not-installed" | "config-files"), "{status}");
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}

fn home_cargo_bin(program: &str) -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"));
    cargo_home.join("bin").join(program)
}
