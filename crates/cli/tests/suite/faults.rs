//! The fault suite: `kill -9` at numbered crash points during backup, prune, restore, export
//! and import; damage to every kind of stored object; a full disk; writers at once; files
//! changing while they are read. docs/RELIABILITY.md maps each guarantee to its test here.
//!
//! Crash points (see `lifeboat_storage::faults`) are the moments a store object is written or
//! removed, a restored file is created or swapped in, and an exported blob is written. A
//! counting run finds how many an operation reaches; each seeded case kills the process at one
//! of them. `LIFEBOAT_CRASH_SEED=N` repeats a run; `LIFEBOAT_SOAK=1` runs 1000 points
//! instead of 50.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;

/// A small deterministic generator: a seed names a run exactly.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn seed() -> u64 {
    std::env::var("LIFEBOAT_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(1);
        (t as u64) | 1
    })
}

fn points_per_operation() -> u64 {
    if std::env::var_os("LIFEBOAT_SOAK").is_some() {
        200
    } else {
        10
    }
}

/// Source files: several folders, sizes from empty to a few hundred KiB.
fn write_source(root: &Path, version: u64) {
    for d in 0..4 {
        std::fs::create_dir_all(root.join(format!("dir{d}"))).unwrap();
    }
    for i in 0..40u64 {
        let p = root.join(format!("dir{}/file-{i}", i % 4));
        // Each version changes a third of the files and leaves the rest.
        let v = if i % 3 == version % 3 { version } else { 0 };
        std::fs::write(p, random_bytes((i as usize * 7919) % 300_000, i * 1000 + v + 1)).unwrap();
    }
    std::fs::write(root.join(format!("only-in-{version}")), format!("version {version}")).unwrap();
    if version > 0 {
        let _ = std::fs::remove_file(root.join(format!("only-in-{}", version - 1)));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let ok = std::process::Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap().success();
    assert!(ok, "cp -a {} {}", from.display(), to.display());
}

/// One operation to crash, on a prepared repository.
struct Case<'a> {
    sb: &'a Sandbox,
    name: &'static str,
    args: Vec<String>,
    /// Runs before each attempt (after the repository is put back as it was).
    reset: &'a dyn Fn(),
    /// What must hold after the crash; gets the point for messages.
    after: &'a dyn Fn(u64),
}

impl Case<'_> {
    fn run(&self, crash: Option<u64>, count: Option<&Path>) -> Output {
        let mut c = self.sb.command();
        c.args(&self.args);
        if let Some(n) = crash {
            c.env("LIFEBOAT_CRASH_AT", n.to_string());
        }
        if let Some(f) = count {
            c.env("LIFEBOAT_CRASH_COUNT", f);
        }
        c.output().unwrap()
    }

    /// Counts the operation's crash points, then kills it at `n` seeded ones of them.
    fn crash_at_points(&self, base_repo: &Path, n: u64, rng: &mut XorShift, seed: u64) -> u64 {
        let restore_base = || copy_dir(base_repo, &self.sb.repo);
        restore_base();
        (self.reset)();
        let count_file = self.sb.dir.path().join("crash-count");
        let out = self.run(None, Some(&count_file));
        assert!(out.status.success(), "{} without a crash failed: {}", self.name, stderr(&out));
        let total: u64 = std::fs::read_to_string(&count_file).unwrap().trim().parse().unwrap();
        assert!(total > 0, "{} reaches no crash point", self.name);
        let mut killed = 0;
        for i in 0..n {
            let point = 1 + rng.next() % total;
            restore_base();
            (self.reset)();
            let out = self.run(Some(point), None);
            if out.status.signal() == Some(9) {
                killed += 1;
            } else {
                // Threads may reach fewer points on another run; then it just finishes.
                assert!(
                    out.status.success(),
                    "{} case {i} (seed {seed}, point {point} of {total}) failed without being killed: {}",
                    self.name,
                    stderr(&out)
                );
            }
            (self.after)(point);
        }
        eprintln!("{}: {killed} of {n} runs killed, at points among {total} (seed {seed})", self.name);
        killed
    }
}

/// `check --read-data` must be clean (notes about leftovers are fine).
fn assert_clean(sb: &Sandbox, extra: &[&str], context: &str) {
    let mut args = vec!["check", "--read-data"];
    args.extend_from_slice(extra);
    let out = sb.run(&args);
    assert!(out.status.success(), "check after {context}: {}\n{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
}

fn list(sb: &Sandbox, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["backups", "list", "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&sb.ok(&args)).unwrap()
}

/// Restores a backup under a fresh folder and compares its unit `src` with `expected`.
fn assert_restores(sb: &Sandbox, slug: &str, expected: &Path, extra: &[&str], context: &str) {
    let target = sb.dir.path().join(format!("check-{slug}"));
    let _ = std::fs::remove_dir_all(&target);
    let mut args = vec!["backups", "restore", slug, "--target", target.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(extra);
    let out = sb.run(&args);
    assert!(out.status.success(), "restore of {slug} after {context}: {}", stderr(&out));
    let diffs = compare_trees(expected, &rerooted(&target, &sb.home.join("src")));
    assert!(diffs.is_empty(), "backup {slug} after {context}: {diffs:?}");
    std::fs::remove_dir_all(&target).unwrap();
}

struct Versions {
    dir: PathBuf,
}

impl Versions {
    /// Keeps a copy of the source as version `v`, to compare restores with.
    fn save(&self, sb: &Sandbox, v: u64) -> PathBuf {
        let p = self.dir.join(format!("v{v}"));
        copy_dir(&sb.home.join("src"), &p);
        p
    }
    fn put(&self, sb: &Sandbox, v: u64) {
        copy_dir(&self.dir.join(format!("v{v}")), &sb.home.join("src"));
    }
}

fn crash_sandbox() -> (Sandbox, Versions) {
    let sb = Sandbox::new("[unit.src]\npaths = [\"~/src\"]\n");
    let versions = Versions { dir: sb.dir.path().join("versions") };
    std::fs::create_dir_all(&versions.dir).unwrap();
    (sb, versions)
}

#[test]
fn a_crash_at_any_point_loses_nothing_and_the_next_run_completes() {
    let seed = seed();
    eprintln!("crash suite seed {seed} (LIFEBOAT_CRASH_SEED={seed} repeats it)");
    let mut rng = XorShift(seed);
    let n = points_per_operation();
    let mut killed = 0;

    // Backup: a second backup killed; the first still restores, the re-run completes.
    {
        let (sb, v) = crash_sandbox();
        write_source(&sb.home.join("src"), 1);
        let v1 = v.save(&sb, 1);
        let b1 = sb.backup(&[])["slug"].as_str().unwrap().to_string();
        write_source(&sb.home.join("src"), 2);
        let v2 = v.save(&sb, 2);
        let base = sb.dir.path().join("base");
        copy_dir(&sb.repo, &base);
        let after = |point: u64| {
            let ctx = format!("a backup killed at point {point} (seed {seed})");
            assert_clean(&sb, &[], &ctx);
            for b in list(&sb, &[]) {
                let slug = b["slug"].as_str().unwrap();
                assert_restores(&sb, slug, if slug == b1 { &v1 } else { &v2 }, &[], &ctx);
            }
            let again = sb.backup(&[]);
            assert_restores(&sb, again["slug"].as_str().unwrap(), &v2, &[], &ctx);
        };
        let case = Case {
            sb: &sb,
            name: "backup",
            args: vec!["backups".into(), "new".into(), "--quiet".into()],
            reset: &|| {},
            after: &after,
        };
        killed += case.crash_at_points(&base, n, &mut rng, seed);
    }

    // Prune: removed backup's data reclaimed while killed; the others restore.
    {
        let (sb, v) = crash_sandbox();
        let mut slugs = Vec::new();
        for version in 1..=3 {
            write_source(&sb.home.join("src"), version);
            v.save(&sb, version);
            slugs.push(sb.backup(&[])["slug"].as_str().unwrap().to_string());
        }
        sb.ok(&["backups", "remove", &slugs[1]]);
        let base = sb.dir.path().join("base");
        copy_dir(&sb.repo, &base);
        let after = |point: u64| {
            let ctx = format!("a prune killed at point {point} (seed {seed})");
            assert_clean(&sb, &[], &ctx);
            let listed: Vec<String> = list(&sb, &[]).iter().map(|b| b["slug"].as_str().unwrap().to_string()).collect();
            assert_eq!(listed.len(), 2, "{ctx}: {listed:?}");
            assert_restores(&sb, &slugs[0], &v.dir.join("v1"), &[], &ctx);
            assert_restores(&sb, &slugs[2], &v.dir.join("v3"), &[], &ctx);
            sb.ok(&["prune", "--quiet"]);
            assert_clean(&sb, &[], &ctx);
        };
        let case =
            Case { sb: &sb, name: "prune", args: vec!["prune".into(), "--quiet".into()], reset: &|| {}, after: &after };
        killed += case.crash_at_points(&base, n, &mut rng, seed);
    }

    // Restore in place over a changed tree: killed, then run again, gives the backup exactly.
    {
        let (sb, v) = crash_sandbox();
        write_source(&sb.home.join("src"), 1);
        let v1 = v.save(&sb, 1);
        let b1 = sb.backup(&[])["slug"].as_str().unwrap().to_string();
        write_source(&sb.home.join("src"), 2);
        v.save(&sb, 2);
        let base = sb.dir.path().join("base");
        copy_dir(&sb.repo, &base);
        let reset = || v.put(&sb, 2);
        let args: Vec<String> = ["backups", "restore", &b1, "--mode", "replace", "--no-safety-backup", "--quiet"]
            .map(String::from)
            .to_vec();
        let after = |point: u64| {
            let ctx = format!("a restore killed at point {point} (seed {seed})");
            assert_clean(&sb, &[], &ctx);
            // Killed while putting files in place, the restore is finished with --resume
            // (every restore refuses to start until then); killed before, it is run again.
            let again = sb.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
            if !again.status.success() {
                assert!(stderr(&again).contains("--resume"), "{ctx}: the restore run again: {}", stderr(&again));
                sb.ok(&["backups", "restore", "--resume", "--quiet"]);
            }
            let diffs = compare_trees(&v1, &sb.home.join("src"));
            assert!(diffs.is_empty(), "{ctx}: {diffs:?}");
            let leftovers = restore_leftovers(&sb.home);
            assert!(leftovers.is_empty(), "{ctx}: left beside the restored files: {leftovers:?}");
        };
        let case = Case { sb: &sb, name: "restore", args: args.clone(), reset: &reset, after: &after };
        killed += case.crash_at_points(&base, n, &mut rng, seed);
    }

    // Export: the file is there whole or not at all; the re-run's file restores exactly.
    {
        let (sb, v) = crash_sandbox();
        write_source(&sb.home.join("src"), 1);
        let v1 = v.save(&sb, 1);
        let b1 = sb.backup(&[])["slug"].as_str().unwrap().to_string();
        let base = sb.dir.path().join("base");
        copy_dir(&sb.repo, &base);
        let file = sb.dir.path().join("export.tar");
        let reset = || {
            let _ = std::fs::remove_file(&file);
        };
        let from_file = |ctx: &str| {
            let target = sb.dir.path().join("from-file");
            let _ = std::fs::remove_dir_all(&target);
            let out = sb.run(&[
                "backups",
                "restore",
                "--from-file",
                file.to_str().unwrap(),
                "--target",
                target.to_str().unwrap(),
                "--quiet",
            ]);
            assert!(out.status.success(), "{ctx}: restore from the file: {}", stderr(&out));
            let diffs = compare_trees(&v1, &rerooted(&target, &sb.home.join("src")));
            assert!(diffs.is_empty(), "{ctx}: {diffs:?}");
        };
        let after = |point: u64| {
            let ctx = format!("an export killed at point {point} (seed {seed})");
            if file.exists() {
                from_file(&format!("{ctx} (the file was complete)"));
            }
            sb.ok(&["backups", "export", &b1, "-o", file.to_str().unwrap(), "--quiet"]);
            from_file(&ctx);
            assert_clean(&sb, &[], &ctx);
        };
        let args: Vec<String> =
            ["backups", "export", &b1, "-o", file.to_str().unwrap(), "--quiet"].map(String::from).to_vec();
        let case = Case { sb: &sb, name: "export", args, reset: &reset, after: &after };
        killed += case.crash_at_points(&base, n, &mut rng, seed);
    }

    // Import into a location that already holds a backup: killed, then run again.
    {
        let (sb, v) = crash_sandbox();
        write_source(&sb.home.join("src"), 1);
        let v1 = v.save(&sb, 1);
        let b1 = sb.backup(&[])["slug"].as_str().unwrap().to_string();
        let file = sb.dir.path().join("export.tar");
        sb.ok(&["backups", "export", &b1, "-o", file.to_str().unwrap(), "--quiet"]);
        // The location imported into is `local` (the sandbox's repository), holding another
        // backup first; the exported one is removed from it and pruned.
        write_source(&sb.home.join("src"), 2);
        let v2 = v.save(&sb, 2);
        let b2 = sb.backup(&[])["slug"].as_str().unwrap().to_string();
        sb.ok(&["backups", "remove", &b1]);
        sb.ok(&["prune", "--quiet"]);
        let base = sb.dir.path().join("base");
        copy_dir(&sb.repo, &base);
        let after = |point: u64| {
            let ctx = format!("an import killed at point {point} (seed {seed})");
            assert_clean(&sb, &[], &ctx);
            assert_restores(&sb, &b2, &v2, &[], &ctx);
            sb.ok(&["backups", "import", file.to_str().unwrap(), "--quiet"]);
            assert_restores(&sb, &b1, &v1, &[], &ctx);
            assert_clean(&sb, &[], &ctx);
        };
        let args: Vec<String> = ["backups", "import", file.to_str().unwrap(), "--quiet"].map(String::from).to_vec();
        let case = Case { sb: &sb, name: "import", args, reset: &|| {}, after: &after };
        killed += case.crash_at_points(&base, n, &mut rng, seed);
    }
    assert!(killed >= 5 * n / 2, "only {killed} of {} runs were killed: the crash points are not reached", 5 * n);
}

/// The repository's objects, by name.
fn objects(repo: &Path) -> std::collections::BTreeSet<String> {
    walkdir(repo)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| p.strip_prefix(repo).unwrap().to_string_lossy().into_owned())
        .filter(|n| !n.contains(".tmp-") && !n.starts_with("locks/"))
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    Flip,
    Truncate,
    Delete,
}

fn damage(path: &Path, how: Damage, rng: &mut XorShift) {
    match how {
        Damage::Flip => {
            let mut bytes = std::fs::read(path).unwrap();
            let at = bytes.len() / 4 + (rng.next() as usize % (bytes.len() / 2).max(1));
            bytes[at] ^= 0x5a;
            std::fs::write(path, bytes).unwrap();
        }
        Damage::Truncate => {
            let len = std::fs::metadata(path).unwrap().len();
            std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len / 2).unwrap();
        }
        Damage::Delete => std::fs::remove_file(path).unwrap(),
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn no_panic(o: &Output, ctx: &str) {
    assert_ne!(o.status.code(), Some(101), "{ctx}: panicked\n{}", text(o));
    assert!(!text(o).contains("panicked"), "{ctx}: panicked\n{}", text(o));
}

#[test]
fn every_kind_of_damage_is_found_named_and_repaired_where_it_can_be() {
    let seed = seed();
    let mut rng = XorShift(seed);
    // Two units that share no data: damage to the objects of one backup leaves the other's.
    let sb = Sandbox::new("[unit.src]\npaths = [\"~/src\"]\n\n[unit.other]\npaths = [\"~/other\"]\n");
    let versions = sb.dir.path().join("versions");
    write_source(&sb.home.join("src"), 1);
    std::fs::create_dir_all(sb.home.join("other")).unwrap();
    for i in 0..10u64 {
        std::fs::write(sb.home.join(format!("other/o-{i}")), random_bytes(50_000 + i as usize, 9_000 + i)).unwrap();
    }
    copy_dir(&sb.home.join("src"), &versions.join("src"));
    copy_dir(&sb.home.join("other"), &versions.join("other"));
    let a = sb.backup(&["--unit", "src"])["slug"].as_str().unwrap().to_string();
    let after_a = objects(&sb.repo);
    let b = sb.backup(&["--unit", "other"])["slug"].as_str().unwrap().to_string();
    let recovery = sb.dir.path().join("recovery-key");
    let printed = sb.ok(&["key", "recovery"]);
    let key =
        printed.split_whitespace().find(|w| w.len() == 39 && w.matches('-').count() == 7).expect("a recovery key");
    std::fs::write(&recovery, format!("{key}\n")).unwrap();
    let base = sb.dir.path().join("base");
    copy_dir(&sb.repo, &base);

    let of_a: Vec<String> = after_a.iter().filter(|n| !n.starts_with("keys/") && *n != "config").cloned().collect();
    let pick = |prefix: &str| -> Vec<String> { of_a.iter().filter(|n| n.starts_with(prefix)).cloned().collect() };
    let password_slot = after_a
        .iter()
        .find(|n| n.starts_with("keys/") && std::fs::read_to_string(sb.repo.join(n)).unwrap().contains("\"password\""))
        .cloned()
        .expect("the password's key slot");
    let mut cases: Vec<(&str, String)> = Vec::new();
    for p in pick("data/") {
        cases.push(("pack", p));
    }
    cases.extend(pick("index/").into_iter().map(|p| ("index", p)));
    cases.extend(pick("snapshots/").into_iter().map(|p| ("snapshot", p)));
    cases.push(("key", password_slot));
    assert!(cases.iter().filter(|c| c.0 == "pack").count() >= 2, "a data and a tree pack: {of_a:?}");

    let with_key = ["--password-file", recovery.to_str().unwrap()];
    for (kind, object) in &cases {
        for how in [Damage::Flip, Damage::Truncate, Damage::Delete] {
            let ctx = format!("{how:?} of the {kind} {object} (seed {seed})");
            copy_dir(&base, &sb.repo);
            damage(&sb.repo.join(object), how, &mut rng);
            let short = &object.rsplit('/').next().unwrap()[..8];

            // Found, and named: the backup it affects, or the object itself.
            let check = sb.run(&["check", "--read-data"]);
            no_panic(&check, &ctx);
            let said = text(&check);
            if *kind == "key" && check.status.success() {
                // Damage to the name of the slot's config copy field: the slot reads as one an
                // older Lifeboat made (it opens; its copy is missing), and the note names it.
                assert!(said.contains(short) && said.contains("no copy"), "{ctx}: the slot is named: {said}");
            } else if *kind == "key" && check.status.code() == Some(4) {
                // Damage outside the wrapped key (its label, say): the password still opens
                // the repository, and the slot's check names it.
                assert!(said.contains(short), "{ctx}: the slot is named: {said}");
            } else if *kind == "key" {
                // The slot this password opens is gone or damaged: the password no longer
                // opens it, and the message says what to do; the recovery key still does.
                assert_eq!(check.status.code(), Some(5), "{ctx}: {said}");
                assert!(said.contains("recovery key"), "{ctx}: {said}");
                let mut args = vec!["check", "--read-data"];
                args.extend_from_slice(&with_key);
                let again = sb.bare_command().args(&args).output().unwrap();
                no_panic(&again, &ctx);
                let said = text(&again);
                match how {
                    Damage::Delete => assert!(again.status.success(), "{ctx}: {said}"),
                    _ => {
                        assert_eq!(again.status.code(), Some(4), "{ctx}: {said}");
                        assert!(said.contains(short), "{ctx}: the slot is named: {said}");
                    }
                }
            } else if *kind == "snapshot" && matches!(how, Damage::Delete) {
                // A deleted snapshot is a removed backup: nothing else in the repository can
                // tell the two apart (docs/RELIABILITY.md).
                assert!(check.status.success(), "{ctx}: {said}");
            } else {
                assert_eq!(check.status.code(), Some(4), "{ctx}: not found: {said}");
                assert!(said.contains(&a) || said.contains(short), "{ctx}: not named: {said}");
                assert!(!said.contains(&b), "{ctx}: the other backup is not affected: {said}");
            }

            // The other backup restores exactly.
            let restore_b = |extra: &[&str]| {
                let target = sb.dir.path().join("restore-b");
                let _ = std::fs::remove_dir_all(&target);
                let mut args = vec!["backups", "restore", &b, "--target", target.to_str().unwrap(), "--quiet"];
                args.extend_from_slice(extra);
                let out = sb.bare_command().args(&args).output().unwrap();
                assert!(out.status.success(), "{ctx}: restore of the other backup: {}", text(&out));
                let diffs = compare_trees(&versions.join("other"), &rerooted(&target, &sb.home.join("other")));
                assert!(diffs.is_empty(), "{ctx}: {diffs:?}");
            };
            let open: Vec<&str> = if *kind == "key" {
                with_key.to_vec()
            } else {
                vec!["--password-file", sb.password_file.to_str().unwrap()]
            };
            restore_b(&open);

            // Repair: rebuilds what can be, says what cannot.
            let mut args = vec!["check", "--repair"];
            args.extend_from_slice(&open);
            let repair = sb.bare_command().args(&args).output().unwrap();
            no_panic(&repair, &ctx);
            let said = text(&repair);
            assert!(said.contains("Repaired: the index now lists"), "{ctx}: {said}");
            restore_b(&open);
            match *kind {
                "index" => {
                    assert!(repair.status.success(), "{ctx}: the index is rebuilt from the packs: {said}");
                    assert_restores(&sb, &a, &versions.join("src"), &[], &ctx);
                }
                "snapshot" => {
                    assert!(repair.status.success(), "{ctx}: {said}");
                    if !matches!(how, Damage::Delete) {
                        assert!(said.contains("cannot be repaired"), "{ctx}: the lost backup is said: {said}");
                    }
                }
                "key" => {
                    assert!(repair.status.success(), "{ctx}: {said}");
                    if !matches!(how, Damage::Delete) {
                        assert!(said.contains("key slot"), "{ctx}: {said}");
                    }
                    // The password is added again; it opens the repository as before.
                    let out = sb
                        .bare_command()
                        .args(["key", "add", "--new-password-file", sb.password_file.to_str().unwrap()])
                        .args(with_key)
                        .output()
                        .unwrap();
                    assert!(out.status.success(), "{ctx}: key add: {}", text(&out));
                    assert_clean(&sb, &[], &ctx);
                    assert_restores(&sb, &a, &versions.join("src"), &[], &ctx);
                }
                _ => {
                    // Damaged data is lost, and said; the next backup stores it again.
                    if !repair.status.success() {
                        assert!(said.contains("cannot be repaired") && said.contains(&a), "{ctx}: {said}");
                    }
                    let again = sb.backup(&["--unit", "src"])["slug"].as_str().unwrap().to_string();
                    assert_restores(&sb, &again, &versions.join("src"), &[], &ctx);
                    sb.ok(&["backups", "remove", &a]);
                    sb.ok(&["prune", "--quiet"]);
                    assert_clean(&sb, &[], &ctx);
                }
            }
        }
    }
}

#[test]
fn a_full_disk_fails_clearly_and_the_next_backup_after_freeing_space_succeeds() {
    if !is_root() {
        assert!(std::env::var_os("CI").is_none(), "the full-disk test mounts a small tmpfs: it needs root");
        eprintln!("skipped: mounting a small file system needs root");
        return;
    }
    let sb = Sandbox::new("[unit.small]\npaths = [\"~/small\"]\n\n[unit.big]\npaths = [\"~/big\"]\n");
    let mount = sb.dir.path().join("tiny");
    std::fs::create_dir_all(&mount).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(&mount)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount tmpfs");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.clone());
    let repo = mount.join("repo");
    std::fs::write(
        &sb.config,
        format!(
            "default_location = \"tiny\"\n[location.tiny]\ntype = \"local\"\npath = \"{}\"\n\n[unit.small]\npaths = [\"~/small\"]\n\n[unit.big]\npaths = [\"~/big\"]\n",
            repo.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(sb.home.join("small")).unwrap();
    std::fs::write(sb.home.join("small/note"), "fits").unwrap();
    std::fs::create_dir_all(sb.home.join("big")).unwrap();
    for i in 0..6u64 {
        // Random bytes do not compress: 6 MiB cannot fit in 3 MiB.
        std::fs::write(sb.home.join(format!("big/f{i}")), random_bytes(1 << 20, 77 + i)).unwrap();
    }
    let first = sb.backup(&["--unit", "small"])["slug"].as_str().unwrap().to_string();

    let out = sb.run(&["backups", "new", "--unit", "big", "--quiet"]);
    assert!(!out.status.success(), "a backup larger than the disk fails");
    let said = stderr(&out);
    assert_eq!(said.trim().lines().count(), 1, "one line: {said}");
    assert!(said.contains("tiny") || said.contains(&repo.display().to_string()), "names the location: {said}");
    assert!(said.to_lowercase().contains("full") || said.contains("space"), "says it is full: {said}");
    assert_clean(&sb, &[], "a full disk");
    let target = sb.dir.path().join("restored");
    sb.ok(&["backups", "restore", &first, "--target", target.to_str().unwrap(), "--quiet"]);
    assert_eq!(std::fs::read_to_string(rerooted(&target, &sb.home.join("small/note"))).unwrap(), "fits");

    // Space freed (the file system grown): the next backup completes and restores exactly.
    let grown = std::process::Command::new("mount").args(["-o", "remount,size=64m"]).arg(&mount).status().unwrap();
    assert!(grown.success());
    let slug = sb.backup(&["--unit", "big"])["slug"].as_str().unwrap().to_string();
    let target = sb.dir.path().join("restored-big");
    sb.ok(&["backups", "restore", &slug, "--target", target.to_str().unwrap(), "--quiet"]);
    assert!(compare_trees(&sb.home.join("big"), &rerooted(&target, &sb.home.join("big"))).is_empty());
    assert_clean(&sb, &[], "space freed");
}

#[test]
fn backups_and_a_prune_at_once_never_lose_what_a_finished_backup_needs() {
    let sb = Sandbox::new("[unit.a]\npaths = [\"~/a\"]\n\n[unit.b]\npaths = [\"~/b\"]\n");
    let versions = sb.dir.path().join("versions");
    let mut kept: Vec<(String, String, PathBuf)> = Vec::new();
    // The repository exists before the first round: a prune needs one.
    std::fs::create_dir_all(sb.home.join("a")).unwrap();
    std::fs::write(sb.home.join("a/first"), "first").unwrap();
    let first = sb.backup(&["--unit", "a"])["slug"].as_str().unwrap().to_string();
    copy_dir(&sb.home.join("a"), &versions.join("a-first"));
    kept.push((first, "a".into(), versions.join("a-first")));
    for round in 1..=4u64 {
        for unit in ["a", "b"] {
            // Each round changes some files and keeps others, so data is shared across rounds.
            std::fs::create_dir_all(sb.home.join(unit)).unwrap();
            for i in 0..12u64 {
                let v = if i % 4 == round % 4 { round } else { 0 };
                std::fs::write(
                    sb.home.join(format!("{unit}/f{i}")),
                    random_bytes(40_000 + i as usize * 997, i * 31 + v + unit.len() as u64),
                )
                .unwrap();
            }
        }
        // The oldest backup goes, so the prune has something to reclaim while both run.
        let (old, _, _) = kept.remove(0);
        sb.ok(&["backups", "remove", &old]);
        let spawn = |args: &[&str]| {
            sb.command()
                .args(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let x = spawn(&["backups", "new", "--unit", "a", "--json", "--quiet"]);
        let y = spawn(&["backups", "new", "--unit", "b", "--json", "--quiet"]);
        let p = spawn(&["prune", "--quiet"]);
        for (child, unit) in [(x, Some("a")), (y, Some("b")), (p, None)] {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", stderr(&out));
            if let Some(unit) = unit {
                let slug = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["slug"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let saved = versions.join(format!("{unit}-{round}"));
                copy_dir(&sb.home.join(unit), &saved);
                kept.push((slug, unit.to_string(), saved));
            }
        }
        assert_clean(&sb, &[], &format!("round {round}"));
        for (slug, unit, saved) in &kept {
            let target = sb.dir.path().join(format!("r-{slug}"));
            let _ = std::fs::remove_dir_all(&target);
            sb.ok(&["backups", "restore", slug, "--target", target.to_str().unwrap(), "--quiet"]);
            let diffs = compare_trees(saved, &rerooted(&target, &sb.home.join(unit)));
            assert!(diffs.is_empty(), "round {round}, backup {slug}: {diffs:?}");
        }
    }
}

#[test]
fn files_changing_while_they_are_read_give_warnings_and_the_rest_is_exact() {
    let sb = Sandbox::new("[unit.data]\npaths = [\"~/data\"]\n");
    let data = sb.home.join("data");
    std::fs::create_dir_all(data.join("stable")).unwrap();
    std::fs::create_dir_all(data.join("mutating")).unwrap();
    for i in 0..20u64 {
        std::fs::write(data.join(format!("stable/s{i}")), random_bytes(30_000 + i as usize, 500 + i)).unwrap();
    }
    let original = |name: &str| random_bytes(1 << 20, name.len() as u64 * 7);
    for name in ["grows", "shrinks", "replaced", "deleted", "swapped"] {
        std::fs::write(data.join(format!("mutating/{name}")), original(name)).unwrap();
    }
    let stable = sb.dir.path().join("stable-copy");
    copy_dir(&data.join("stable"), &stable);

    // The backup pauses just after opening each file under mutating/; the test changes that
    // file, then lets it read on.
    let pause = pause_dir(&sb);
    let child = sb
        .command()
        .args(["backups", "new", "--json", "--quiet"])
        .env("LIFEBOAT_PAUSE_AT", "/mutating/")
        .env("LIFEBOAT_PAUSE_DIR", &pause)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut expected: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for _ in 0..5 {
        let what = std::fs::read_to_string(pause.join("paused")).unwrap();
        let name = what.trim().rsplit('/').next().unwrap().to_string();
        let path = data.join(format!("mutating/{name}"));
        let name: &str =
            ["grows", "shrinks", "replaced", "deleted", "swapped"].into_iter().find(|n| *n == name).unwrap();
        match name {
            "grows" => {
                let mut bytes = original(name);
                bytes.extend(random_bytes(300_000, 1));
                std::fs::write(&path, &bytes).unwrap();
                expected.insert(name, bytes);
            }
            "shrinks" => {
                std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(1000).unwrap();
                expected.insert(name, original(name)[..1000].to_vec());
            }
            "replaced" => {
                let new = path.with_extension("new");
                std::fs::write(&new, b"a new file").unwrap();
                std::fs::rename(&new, &path).unwrap();
                expected.insert(name, original(name));
            }
            "swapped" => {
                // Replaced by `mv` with a file of the same size and the same times.
                let new = path.with_extension("new");
                std::fs::write(&new, random_bytes(1 << 20, 99)).unwrap();
                let old = std::fs::metadata(&path).unwrap();
                let times = [
                    nix::sys::time::TimeSpec::new(old.atime(), old.atime_nsec()),
                    nix::sys::time::TimeSpec::new(old.mtime(), old.mtime_nsec()),
                ];
                nix::sys::stat::utimensat(
                    None,
                    &new,
                    &times[0],
                    &times[1],
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )
                .unwrap();
                std::fs::rename(&new, &path).unwrap();
                expected.insert(name, original(name));
            }
            _ => {
                std::fs::remove_file(&path).unwrap();
                expected.insert(name, original(name));
            }
        }
        std::fs::OpenOptions::new().write(true).open(pause.join("resume")).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "completed with warnings: {}", stderr(&out));
    let backup: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(backup["status"], "completed_with_warnings");
    assert_eq!(backup["warnings"], 5, "{backup}");
    let slug = backup["slug"].as_str().unwrap();
    let log = sb.ok(&["logs", slug]);
    for (name, words) in [
        ("grows", "grew"),
        ("shrinks", "shrank"),
        ("replaced", "replaced"),
        ("deleted", "deleted"),
        ("swapped", "replaced"),
    ] {
        assert!(log.lines().any(|l| l.contains(&format!("mutating/{name}")) && l.contains(words)), "{name}: {log}");
    }
    let target = sb.dir.path().join("restored");
    sb.ok(&["backups", "restore", slug, "--target", target.to_str().unwrap(), "--quiet"]);
    let restored = rerooted(&target, &data);
    assert!(compare_trees(&stable, &restored.join("stable")).is_empty(), "every other file is exact");
    for (name, bytes) in expected {
        assert_eq!(
            std::fs::read(restored.join(format!("mutating/{name}"))).unwrap(),
            bytes,
            "{name}: backed up as read"
        );
    }
}
