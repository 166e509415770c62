//! Helpers for tests that drive the real `lifeboat` binary in a sandbox: its own HOME, XDG
//! folders, configuration and repository, all under one temporary folder.

#![allow(dead_code)]

pub mod daemon;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// lifeboat with no configuration file at all: only HOME (`DIR/home`) and the XDG folders
/// under `dir`, as on a fresh machine.
pub fn bare(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.join("home"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("TZ", "UTC")
        .stdin(std::process::Stdio::null());
    c
}

pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub repo: PathBuf,
    pub config: PathBuf,
    pub password_file: PathBuf,
}

impl Sandbox {
    /// A sandbox whose configuration has the given units (TOML) and a local location.
    pub fn new(units_toml: &str) -> Sandbox {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let repo = dir.path().join("repo");
        let config = dir.path().join("lifeboat.toml");
        std::fs::write(
            &config,
            format!(
                "default_location = \"local\"\n[location.local]\ntype = \"local\"\npath = \"{}\"\n\n{units_toml}",
                repo.display()
            ),
        )
        .unwrap();
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, "correct horse battery staple\n").unwrap();
        Sandbox { dir, home, repo, config, password_file }
    }

    pub fn command(&self) -> Command {
        let mut c = self.bare_command();
        c.arg("--password-file").arg(&self.password_file);
        c
    }

    /// The sandbox's environment and configuration, without a password.
    pub fn bare_command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg-config"))
            .env("XDG_DATA_HOME", self.dir.path().join("xdg-data"))
            .env("XDG_STATE_HOME", self.dir.path().join("xdg-state"))
            .env("XDG_CACHE_HOME", self.dir.path().join("xdg-cache"))
            .env("TZ", "UTC")
            .arg("--config")
            .arg(&self.config)
            .stdin(std::process::Stdio::null());
        c
    }

    /// Adds a local location to the configuration.
    pub fn add_local_location(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}-repo"));
        let mut cfg = std::fs::read_to_string(&self.config).unwrap();
        cfg.push_str(&format!("\n[location.{name}]\ntype = \"local\"\npath = \"{}\"\n", path.display()));
        std::fs::write(&self.config, cfg).unwrap();
        path
    }

    /// Runs lifeboat without the password file: a repository made so is opened by a device
    /// key, and its backups are not password protected.
    pub fn run_without_password(&self, args: &[&str]) -> Output {
        self.bare_command().args(args).output().expect("running lifeboat")
    }

    /// Runs lifeboat with these arguments.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("running lifeboat")
    }

    /// Runs lifeboat and insists on success.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "lifeboat {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Makes a backup and returns its JSON object.
    pub fn backup(&self, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["backups", "new", "--json", "--quiet"];
        args.extend_from_slice(extra);
        serde_json::from_str(&self.ok(&args)).expect("backups new --json prints one object")
    }

    pub fn repo_size(&self) -> u64 {
        walk_size(&self.repo)
    }
}

pub fn walk_size(p: &Path) -> u64 {
    let mut total = 0;
    for e in walkdir(p) {
        if let Ok(m) = std::fs::symlink_metadata(&e) {
            if m.is_file() {
                total += m.len();
            }
        }
    }
    total
}

/// Every path under `root` (not following symlinks), root excluded, sorted.
pub fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Everything about an entry that a restore must reproduce.
#[derive(Debug, PartialEq)]
pub struct EntryFacts {
    pub kind: u32,
    pub mode: u32,
    pub size: u64,
    pub mtime: (i64, i64),
    pub uid: u32,
    pub gid: u32,
    pub target: Option<Vec<u8>>,
    pub content_hash: Option<String>,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Index of this entry's hard link group (by first path), when nlink > 1.
    pub link_group: Option<PathBuf>,
    pub sparse: bool,
}

/// Compares two trees entry by entry; returns the differences found (empty = identical).
pub fn compare_trees(a: &Path, b: &Path) -> Vec<String> {
    let fa = facts(a);
    let fb = facts(b);
    let mut diffs = Vec::new();
    for (rel, x) in &fa {
        match fb.get(rel) {
            None => diffs.push(format!("missing in restore: {}", rel.display())),
            Some(y) if x != y => diffs.push(format!("{}: {x:?} != {y:?}", rel.display())),
            _ => {}
        }
    }
    for rel in fb.keys() {
        if !fa.contains_key(rel) {
            diffs.push(format!("extra in restore: {}", rel.display()));
        }
    }
    diffs
}

pub fn facts(root: &Path) -> BTreeMap<PathBuf, EntryFacts> {
    let mut groups: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut out = BTreeMap::new();
    for p in walkdir(root) {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        let kind = m.mode() & libc::S_IFMT;
        let is_file = kind == libc::S_IFREG;
        let link_group =
            (is_file && m.nlink() > 1).then(|| groups.entry((m.dev(), m.ino())).or_insert_with(|| rel.clone()).clone());
        let xattrs = xattr::list(&p)
            .map(|names| names.filter_map(|n| Some((n.as_bytes().to_vec(), xattr::get(&p, &n).ok()??))).collect())
            .unwrap_or_default();
        out.insert(
            rel,
            EntryFacts {
                kind,
                mode: m.mode() & 0o7777,
                size: if kind == libc::S_IFDIR { 0 } else { m.len() },
                mtime: if kind == libc::S_IFDIR { (0, 0) } else { (m.mtime(), m.mtime_nsec()) },
                uid: m.uid(),
                gid: m.gid(),
                target: (kind == libc::S_IFLNK)
                    .then(|| std::fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec()),
                content_hash: is_file.then(|| content_digest(&p)),
                xattrs,
                link_group,
                sparse: is_file && m.len() > 1 << 20 && (m.blocks() * 512) < m.len() / 2,
            },
        );
    }
    out
}

/// Folder mtimes are compared separately: reading a tree can't change them, but the test's
/// own checks must not either.
pub fn dir_mtimes(root: &Path) -> BTreeMap<PathBuf, (i64, i64)> {
    walkdir(root)
        .into_iter()
        .filter_map(|p| {
            let m = std::fs::symlink_metadata(&p).ok()?;
            m.is_dir().then(|| (p.strip_prefix(root).unwrap().to_path_buf(), (m.mtime(), m.mtime_nsec())))
        })
        .collect()
}

fn content_digest(p: &Path) -> String {
    let mut h = blake3::Hasher::new();
    h.update_reader(std::fs::File::open(p).unwrap()).unwrap();
    h.finalize().to_hex().to_string()
}

pub fn os(s: &[u8]) -> &OsStr {
    OsStr::from_bytes(s)
}

/// Where a restore with `--target T` puts the absolute path `abs`.
pub fn rerooted(target: &Path, abs: &Path) -> PathBuf {
    target.join(abs.strip_prefix("/").unwrap())
}

/// The paths a restore plan (`--dry-run --json`, or the API's `dry_run`) gives this action.
pub fn planned(plan: &serde_json::Value, action: &str) -> Vec<String> {
    plan["plan"]
        .as_array()
        .expect("a plan")
        .iter()
        .filter(|s| s["action"] == action)
        .map(|s| s["path"].as_str().unwrap().to_string())
        .collect()
}

/// An HTTP client for talking to the daemon and the test servers (the TLS provider installed
/// first, as the program does).
///
/// It opens a connection per request: a server may close an idle kept-alive connection at the
/// moment the client sends on it (SeaweedFS's filer did, and the test failed with hyper's
/// `IncompleteMessage` on a loaded CI machine), and a test's own hands must not be flaky.
pub fn http() -> reqwest::blocking::ClientBuilder {
    lifeboat_storage::tls::install_provider();
    reqwest::blocking::Client::builder().pool_max_idle_per_host(0)
}

/// What a finished command wrote to stdout, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a finished command wrote to stderr, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Incompressible bytes from a seeded xorshift generator.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    // Each seed its own stream: multiplying by an odd constant maps seeds one to one (`seed | 1`
    // gave seeds 2n and 2n + 1 the same bytes), and xorshift needs a state that is not zero.
    let mut x = seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15).max(1);
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}
/// Unpacks a backup file with GNU tar, age and zstd only (age is given the password at its
/// terminal prompt); every unit's tree lands in DIR/tree. Returns DIR.
pub fn unpack_with_standard_tools(file: &Path, dir: &Path, password: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("tree")).unwrap();
    let run = |c: &mut Command| {
        let out = c.output().unwrap();
        assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(Command::new("tar").arg("-xf").arg(file).arg("-C").arg(dir));
    for unit in std::fs::read_dir(dir.join("units")).unwrap() {
        let path = unit.unwrap().path();
        let mut zst = path.clone();
        if path.extension().is_some_and(|e| e == "age") {
            zst = path.with_extension("");
            let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/age_decrypt.py");
            run(Command::new("python3").arg(helper).arg(password).arg(&path).arg(&zst));
        }
        run(Command::new("sh").arg("-c").arg(format!(
            "zstd -dc '{}' | tar -x --xattrs --xattrs-include='*' -p -C '{}'",
            zst.display(),
            dir.join("tree").display()
        )));
        if zst != path {
            std::fs::remove_file(&zst).unwrap();
        }
    }
    dir.to_path_buf()
}

/// Runs a lifeboat command of the sandbox and returns its output and its peak memory (the
/// largest resident set, in bytes), measured by the kernel for that process alone.
pub fn run_measuring_memory(sb: &Sandbox, args: &[&str]) -> (Output, u64) {
    let c = sb.command();
    let mut m = Command::new("python3");
    m.arg("-c")
        .arg(
            "import resource, subprocess, sys\n\
             p = subprocess.run(sys.argv[1:])\n\
             sys.stderr.write('peak-rss-kib %d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
             sys.exit(p.returncode)",
        )
        .arg(c.get_program())
        .args(c.get_args())
        .args(args)
        .env_clear()
        .stdin(std::process::Stdio::null());
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            m.env(k, v);
        }
    }
    let out = m.output().expect("running python3");
    let err = String::from_utf8_lossy(&out.stderr);
    let kib: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("peak-rss-kib "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the peak memory line");
    (out, kib * 1024)
}

/// Whether a name is one a restore writes beside its destination while it runs
/// (`.lifeboat-ID-N`), or a staging copy of a restore from a backup file.
pub fn is_restore_leftover(name: &str) -> bool {
    let temp = name.strip_prefix(".lifeboat-").and_then(|rest| rest.split_once('-')).is_some_and(|(id, n)| {
        id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()) && n.bytes().all(|b| b.is_ascii_digit())
    });
    temp || name.ends_with(".lifeboat-restore")
}

/// What restores left under `dir` (see [`is_restore_leftover`]).
pub fn restore_leftovers(dir: &Path) -> Vec<PathBuf> {
    walkdir(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| is_restore_leftover(&n.to_string_lossy())))
        .collect()
}

/// A folder with the two FIFOs of the binary's pause points (`LIFEBOAT_PAUSE_DIR`; see
/// `lifeboat_storage::faults`).
pub fn pause_dir(sb: &Sandbox) -> PathBuf {
    let pause = sb.dir.path().join("pause");
    std::fs::create_dir_all(&pause).unwrap();
    for fifo in ["paused", "resume"] {
        nix::unistd::mkfifo(&pause.join(fifo), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }
    pause
}

/// Waits (two minutes at most) until a process stops at a pause point; returns where.
pub fn wait_paused(pause: &Path) -> String {
    let fifo = pause.join("paused");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::read_to_string(fifo));
    });
    rx.recv_timeout(std::time::Duration::from_secs(120)).expect("the process paused").unwrap()
}

/// Lets the paused process go on.
pub fn resume(pause: &Path) {
    std::fs::OpenOptions::new().write(true).open(pause.join("resume")).unwrap();
}

pub mod servers;
pub mod small_device;
