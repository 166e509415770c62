//! Backup files: export, import, restore --from-file, unpacking with standard tools, and
//! damaged or hostile files (issue 7).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

const PASSWORD: &str = "correct horse battery staple";

/// A tree with what tar must carry: hard links, symlinks, a sparse file, xattrs, a FIFO, a
/// name that is not UTF-8, empty files and folders; plus the corpus' small part when present.
fn make_tree(home: &Path, with_corpus: bool) -> PathBuf {
    let docs = home.join("docs");
    std::fs::create_dir_all(docs.join("sub/empty")).unwrap();
    std::fs::write(docs.join("a.txt"), "hello\n").unwrap();
    std::fs::write(docs.join("empty"), "").unwrap();
    std::fs::write(docs.join("random.bin"), random_bytes(3 << 20, 7)).unwrap();
    std::fs::write(docs.join("text.txt"), "lines of text\n".repeat(200_000)).unwrap();
    std::fs::hard_link(docs.join("a.txt"), docs.join("sub/hard.txt")).unwrap();
    std::os::unix::fs::symlink("../a.txt", docs.join("sub/link")).unwrap();
    std::os::unix::fs::symlink(docs.join("a.txt"), docs.join("sub/absolute-link")).unwrap();
    let sparse = std::fs::File::create(docs.join("disk.img")).unwrap();
    sparse.set_len(64 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&sparse, b"data in the middle", 20 << 20).unwrap();
    xattr::set(docs.join("a.txt"), "user.note", b"\x00binary\xff").unwrap();
    nix::unistd::mkfifo(&docs.join("pipe"), nix::sys::stat::Mode::from_bits_truncate(0o640)).unwrap();
    std::fs::write(docs.join(os(b"caf\xe9.txt")), "latin-1 name").unwrap();
    if let Some(corpus) = std::env::var_os("LIFEBOAT_CORPUS").filter(|_| with_corpus) {
        let small = Path::new(&corpus).join("small");
        if small.is_dir() {
            let out = Command::new("cp").arg("-a").arg(&small).arg(docs.join("small")).output().unwrap();
            assert!(out.status.success());
        }
    }
    docs
}

fn sandbox(with_corpus: bool) -> (Sandbox, PathBuf) {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n\n[unit.notes]\npaths = [\"~/notes\"]\n");
    let docs = make_tree(&sb.home, with_corpus);
    std::fs::create_dir_all(sb.home.join("notes")).unwrap();
    std::fs::write(sb.home.join("notes/todo.md"), "- back up\n").unwrap();
    (sb, docs)
}

fn export(sb: &Sandbox, slug: &str, name: &str) -> PathBuf {
    let file = sb.dir.path().join(name);
    sb.ok(&["backups", "export", slug, "-o", file.to_str().unwrap(), "--quiet"]);
    file
}

#[test]
fn an_exported_file_unpacks_with_tar_zstd_and_age_alone() {
    let (sb, docs) = sandbox(false);
    let b = sb.backup(&[]);
    let slug = b["slug"].as_str().unwrap();
    let file = export(&sb, slug, "backup.tar");
    let restored = sb.dir.path().join("restored");
    sb.ok(&["backups", "restore", slug, "--target", restored.to_str().unwrap(), "--quiet"]);
    let unpacked = unpack_with_standard_tools(&file, &sb.dir.path().join("unpacked"), PASSWORD);
    assert!(unpacked.join("units/docs.tar.zst.age").exists(), "a protected backup's units are age files");
    let by_tools = sb.dir.path().join("unpacked/tree");
    let diffs = compare_trees(&rerooted(&restored, &docs), &rerooted(&by_tools, &docs));
    assert!(diffs.is_empty(), "{} differences, first: {:?}", diffs.len(), &diffs[..diffs.len().min(5)]);
    let facts = facts(&rerooted(&by_tools, &docs));
    assert!(facts[Path::new("disk.img")].sparse, "the sparse file stays sparse");
    assert!(facts[Path::new("a.txt")].link_group.is_some(), "hard links stay linked");
}

#[test]
fn export_import_and_restore_from_file_give_the_same_tree() {
    let (sb, docs) = sandbox(true);
    let b = sb.backup(&[]);
    let slug = b["slug"].as_str().unwrap();
    let file = export(&sb, slug, "backup.tar");

    // Into an empty location elsewhere, then restored from there.
    sb.add_local_location("other");
    let imported: serde_json::Value =
        serde_json::from_str(&sb.ok(&["backups", "import", file.to_str().unwrap(), "--location", "other", "--json"]))
            .unwrap();
    assert_eq!(imported["slug"], slug);
    assert_eq!(imported["imported"], true);
    let list = sb.ok(&["backups", "list", "--location", "other"]);
    assert!(list.contains(slug), "{list}");
    // Importing it again stores nothing.
    let again: serde_json::Value =
        serde_json::from_str(&sb.ok(&["backups", "import", file.to_str().unwrap(), "--location", "other", "--json"]))
            .unwrap();
    assert_eq!(again["imported"], false);
    let from_import = sb.dir.path().join("from-import");
    sb.ok(&["backups", "restore", slug, "--location", "other", "--target", from_import.to_str().unwrap(), "--quiet"]);
    let diffs = compare_trees(&docs, &rerooted(&from_import, &docs));
    assert!(diffs.is_empty(), "import: {} differences, first: {:?}", diffs.len(), &diffs[..diffs.len().min(5)]);
    sb.ok(&["check", "--location", "other", "--read-data", "--quiet"]);

    // A new machine: no configuration, no repository, another home.
    let fresh = sb.dir.path().join("new-machine");
    let fresh_home = fresh.join("home");
    std::fs::create_dir_all(&fresh_home).unwrap();
    let target = fresh.join("target");
    let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &fresh_home)
        .env("XDG_CONFIG_HOME", fresh.join("config"))
        .env("XDG_DATA_HOME", fresh.join("data"))
        .env("XDG_STATE_HOME", fresh.join("state"))
        .env("XDG_CACHE_HOME", fresh.join("cache"))
        .env("LIFEBOAT_PASSWORD", PASSWORD)
        .args(["backups", "restore", "--from-file", file.to_str().unwrap(), "--target", target.to_str().unwrap()])
        .args(["--with-config", "--quiet"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // The backup's home becomes this user's home, under the target.
    let landed = rerooted(&target, &fresh_home.join("docs"));
    let diffs: Vec<String> =
        compare_trees(&docs, &landed).into_iter().filter(|d| !d.starts_with("sub/absolute-link:")).collect();
    assert!(diffs.is_empty(), "from file: {} differences, first: {:?}", diffs.len(), &diffs[..diffs.len().min(5)]);
    let link = std::fs::read_link(landed.join("sub/absolute-link")).unwrap();
    assert_eq!(link, fresh_home.join("docs/a.txt"), "an absolute link into the old home follows the data");
    let config = std::fs::read_to_string(fresh.join("config/lifeboat/lifeboat.toml")).unwrap();
    assert!(config.contains("[unit.docs]") && config.contains("[location.local]"), "{config}");
}

/// A restored tree, then a damaged file: the error names the unit and nothing changes.
#[test]
fn a_truncated_or_damaged_file_is_refused_and_changes_nothing() {
    let (sb, docs) = sandbox(false);
    let b = sb.backup(&[]);
    let slug = b["slug"].as_str().unwrap();
    let file = export(&sb, slug, "backup.tar");
    sb.add_local_location("other");
    let bytes = std::fs::read(&file).unwrap();
    // Where the docs unit's file lies inside the backup file.
    let start = find(&bytes, b"units/docs.tar.zst.age").expect("unit entry") + 1024;
    let end = start
        + [&b"units/notes.tar.zst.age"[..], b"BLAKE3SUMS"]
            .iter()
            .filter_map(|n| find(&bytes[start..], n))
            .min()
            .expect("the entry after the unit");
    let target = sb.dir.path().join("target");
    sb.ok(&[
        "backups",
        "restore",
        "--from-file",
        file.to_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
        "--quiet",
    ]);
    let landed = rerooted(&target, &docs);
    std::fs::write(landed.join("a.txt"), "changed since\n").unwrap();
    let before = facts(&target);
    let before_dirs = dir_mtimes(&target);

    let mut seed: u64 = 0x7e57_f11e;
    for case in 0..6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let at = start + (seed as usize % (end - start - 2048));
        let damaged = sb.dir.path().join(format!("damaged-{case}.tar"));
        let what = if case % 2 == 0 {
            std::fs::write(&damaged, &bytes[..at]).unwrap();
            "truncated"
        } else {
            let mut copy = bytes.clone();
            copy[at] ^= 0x20;
            std::fs::write(&damaged, &copy).unwrap();
            "flipped"
        };
        for mode in ["merge", "replace"] {
            let out = sb.run(&[
                "backups",
                "restore",
                "--from-file",
                damaged.to_str().unwrap(),
                "--target",
                target.to_str().unwrap(),
                "--mode",
                mode,
                "--quiet",
            ]);
            let err = stderr(&out);
            assert!(!out.status.success(), "{what} at {at} (seed {seed:#x}) was accepted");
            assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
            assert!(err.contains("unit docs"), "{what} at {at} (seed {seed:#x}): the unit is named: {err}");
            assert_eq!(facts(&target), before, "{what} at {at}: files on disk changed");
            assert_eq!(dir_mtimes(&target), before_dirs, "{what} at {at}: folders changed");
        }
        let out = sb.run(&["backups", "import", damaged.to_str().unwrap(), "--location", "other"]);
        assert!(!out.status.success() && stderr(&out).contains("unit docs"), "{what}: {}", stderr(&out));
    }
    // Damage in one unit does not stop a restore of another.
    let mut copy = bytes.clone();
    copy[start + (end - start) / 2] ^= 0x20;
    let damaged = sb.dir.path().join("damaged-docs.tar");
    std::fs::write(&damaged, &copy).unwrap();
    let elsewhere = sb.dir.path().join("notes-only");
    sb.ok(&[
        "backups",
        "restore",
        "--from-file",
        damaged.to_str().unwrap(),
        "--unit",
        "notes",
        "--target",
        elsewhere.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(rerooted(&elsewhere, &sb.home.join("notes/todo.md")).exists());
    sb.ok(&["check", "--quiet"]);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Builds hostile inner tars with Python's tarfile, wraps each in a backup file whose
/// manifest and checksums are right, and checks that restoring it is refused with nothing
/// written outside the target (nor inside it).
#[test]
fn hostile_backup_files_are_refused() {
    let (plain, _, manifest) = plain_backup_file();
    let root = manifest["units"][0]["roots"][0]["archive"].as_str().unwrap().to_string();

    let outside = plain.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/hostile_tars.py");
    let cases = plain.dir.path().join("cases");
    let out = Command::new("python3").arg(script).arg(&cases).arg(&root).arg(&outside).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut names: Vec<PathBuf> = std::fs::read_dir(&cases).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    assert!(names.len() >= 7, "{names:?}");
    for inner in names {
        let case = inner.file_stem().unwrap().to_string_lossy().into_owned();
        let tar = std::fs::read(&inner).unwrap();
        let file = plain.dir.path().join(format!("{case}.lifeboat.tar"));
        wrap(&manifest, &zstd::encode_all(&tar[..], 3).unwrap(), &file);
        let target = plain.dir.path().join(format!("target-{case}"));
        std::fs::create_dir_all(&target).unwrap();
        let out = plain.run_without_password(&[
            "backups",
            "restore",
            "--from-file",
            file.to_str().unwrap(),
            "--target",
            target.to_str().unwrap(),
        ]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{case}: accepted: {}", String::from_utf8_lossy(&out.stdout));
        assert!(err.contains("refused") || err.contains("damaged"), "{case}: {err}");
        assert!(walkdir(&outside).is_empty(), "{case}: wrote outside the target: {:?}", walkdir(&outside));
        let written: Vec<PathBuf> = walkdir(&target).into_iter().filter(|p| !p.is_dir()).collect();
        assert!(written.is_empty(), "{case}: left files in the target: {written:?}");
        // A repository may hold a device node (only a restore makes one, as root when asked),
        // and once imported, the backup would be there already for the next cases.
        if case == "device-node" {
            continue;
        }
        let out = plain.run_without_password(&["backups", "import", file.to_str().unwrap(), "--location", "empty"]);
        assert!(!out.status.success(), "{case}: import accepted it");
        assert!(walkdir(&outside).is_empty(), "{case}: import wrote outside");
    }
}

#[test]
fn a_backup_file_whose_unit_roots_climb_out_or_are_relative_is_refused() {
    let (plain, good, manifest) = plain_backup_file();
    let unit = read_entry(&good, manifest["units"][0]["file"].as_str().unwrap());

    // A folder outside the target, which a hostile file names as its unit's root.
    let victim = plain.dir.path().join("srv/victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("keep.txt"), "must stay").unwrap();
    let climbing = format!("/{}{}", "../".repeat(12), victim.strip_prefix("/").unwrap().display());
    let cases: [(&str, &str, Option<&str>); 5] = [
        ("climbing root", &climbing, None),
        ("relative root", "docs", None),
        ("climbing home root", "~/../../../../../../../../../../tmp", None),
        ("climbing place in the file", "~/docs", Some("../../../../../../tmp/x")),
        ("unit name with a slash", "~/docs", Some("rename")),
    ];
    for (case, root, archive) in cases {
        let mut m = manifest.clone();
        m["units"][0]["roots"][0]["path"] = root.into();
        m["backup"]["units"][0]["roots"][0]["path"] = root.into();
        match archive {
            Some("rename") => m["backup"]["units"][0]["name"] = "../docs".into(),
            Some(a) => m["units"][0]["roots"][0]["archive"] = a.into(),
            None => {}
        }
        let file = plain.dir.path().join("climbing.lifeboat.tar");
        wrap(&m, &unit, &file);
        let target = plain.dir.path().join("target");
        std::fs::create_dir_all(&target).unwrap();
        for how in [&["--target", target.to_str().unwrap(), "--mode", "replace"][..], &["--mode", "replace"]] {
            let mut args = vec!["backups", "restore", "--from-file", file.to_str().unwrap()];
            args.extend_from_slice(how);
            let out = plain.run_without_password(&args);
            let err = stderr(&out);
            assert!(!out.status.success(), "{case} {how:?}: accepted: {}", String::from_utf8_lossy(&out.stdout));
            assert!(err.contains("refused"), "{case}: {err}");
            assert_eq!(std::fs::read_to_string(victim.join("keep.txt")).unwrap(), "must stay", "{case}");
            assert_eq!(walkdir(&victim).len(), 1, "{case}: {:?}", walkdir(&victim));
            let written: Vec<PathBuf> = walkdir(&target).into_iter().filter(|p| !p.is_dir()).collect();
            assert!(written.is_empty(), "{case}: left files in the target: {written:?}");
        }
        let out = plain.run_without_password(&["backups", "import", file.to_str().unwrap(), "--location", "empty"]);
        assert!(!out.status.success() && stderr(&out).contains("refused"), "{case}: import: {}", stderr(&out));
    }
    let listed = plain.run_without_password(&["backups", "list", "--location", "empty", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap_or_default();
    assert!(listed.as_array().is_none_or(|a| a.iter().all(|b| b["location"] != "empty")), "{listed}");
}

/// A backup's slug goes into names on the device: the backup's version of a file changed
/// while the restore ran is renamed, relative to the folder it is in, to `NAME.restored-SLUG`.
/// A slug of `x/../../…/PLACE` sent it (a file of whoever made the backup file) to `PLACE`
/// anywhere on the file system, as root, once she put a folder `NAME.restored-x` beside
/// `NAME`. Such a file is refused by restore and import, whatever else it holds.
#[test]
fn a_backup_file_whose_slug_is_a_path_is_refused() {
    let (plain, good, manifest) = plain_backup_file();
    let unit = read_entry(&good, manifest["units"][0]["file"].as_str().unwrap());
    let victim = plain.dir.path().join("victim");
    let slug = format!("x/{}{}", "../".repeat(12), victim.join("planted").strip_prefix("/").unwrap().display());
    let mut m = manifest.clone();
    m["backup"]["slug"] = slug.clone().into();
    let file = plain.dir.path().join("slug.lifeboat.tar");
    wrap(&m, &unit, &file);
    let target = plain.dir.path().join("target");
    std::fs::create_dir_all(&target).unwrap();
    let out = plain.run_without_password(&[
        "backups",
        "restore",
        "--from-file",
        file.to_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "accepted: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
    assert!(walkdir(&target).into_iter().all(|p| p.is_dir()), "{:?}", walkdir(&target));
    let out = plain.run_without_password(&["backups", "import", file.to_str().unwrap(), "--location", "empty"]);
    assert!(!out.status.success() && stderr(&out).contains("refused"), "import: {}", stderr(&out));
}

/// A backup of one unit (docs) in a repository opened by a device key, so that its unit file
/// is a plain .tar.zst; the sandbox also has an empty location. Returns the sandbox, the
/// exported file and its manifest.
pub(crate) fn plain_backup_file() -> (Sandbox, PathBuf, serde_json::Value) {
    let plain = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(plain.home.join("docs")).unwrap();
    std::fs::write(plain.home.join("docs/a.txt"), "a").unwrap();
    plain.add_local_location("empty");
    let backup = plain.run_without_password(&["backups", "new", "--json", "--quiet"]);
    let backup: serde_json::Value = serde_json::from_slice(&backup.stdout).unwrap();
    let slug = backup["slug"].as_str().unwrap();
    let good = plain.dir.path().join("good.tar");
    let out = plain.run_without_password(&[
        "backups",
        "export",
        slug,
        "-o",
        good.to_str().unwrap(),
        "--no-encryption",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest: serde_json::Value = serde_json::from_slice(&read_entry(&good, "backup.json")).unwrap();
    (plain, good, manifest)
}

pub(crate) fn read_entry(file: &Path, name: &str) -> Vec<u8> {
    let mut a = tar::Archive::new(std::fs::File::open(file).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some(name) {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            return v;
        }
    }
    panic!("{name} not in {}", file.display());
}

/// A backup file around one unit's `.tar.zst`, with a matching manifest and checksums.
pub(crate) fn wrap(manifest: &serde_json::Value, unit: &[u8], out: &Path) {
    let mut m = manifest.clone();
    m["units"][0]["size"] = unit.len().into();
    m["units"][0]["encrypted"] = false.into();
    let json = serde_json::to_vec(&m).unwrap();
    let file = m["units"][0]["file"].as_str().unwrap().to_string();
    let sums = format!("{}  backup.json\n{}  {file}\n", blake3::hash(&json).to_hex(), blake3::hash(unit).to_hex());
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    for (name, data) in [("backup.json", &json[..]), (file.as_str(), unit), ("BLAKE3SUMS", sums.as_bytes())] {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    b.into_inner().unwrap().flush().unwrap();
}

#[test]
fn an_export_removes_partial_exports_a_killed_run_left_a_day_ago() {
    let (sb, _docs) = sandbox(false);
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let out_dir = sb.dir.path().join("exports");
    std::fs::create_dir_all(&out_dir).unwrap();
    let old = out_dir.join(".lifeboat-export-abandoned");
    let fresh = out_dir.join(".lifeboat-export-running");
    std::fs::write(&old, random_bytes(100_000, 1)).unwrap();
    std::fs::write(&fresh, b"an export under way").unwrap();
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 24 * 3600);
    std::fs::File::options().write(true).open(&old).unwrap().set_modified(two_days_ago).unwrap();
    let file = out_dir.join("backup.tar");
    sb.ok(&["backups", "export", &slug, "-o", file.to_str().unwrap(), "--quiet"]);
    assert!(file.is_file());
    assert!(!old.exists(), "the abandoned partial export is gone");
    assert!(fresh.exists(), "one that may still be written stays");
}

#[test]
fn a_backup_without_a_password_is_exported_unencrypted_only_when_asked_in_so_many_words() {
    let (plain, _, _) = plain_backup_file();
    let list = plain.run_without_password(&["backups", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let slug = list[0]["slug"].as_str().unwrap().to_string();
    let file = plain.dir.path().join("asked.tar");
    let f = file.to_str().unwrap();

    // Off a terminal, with no password and no word about encryption: refused, nothing written.
    let out = plain.run_without_password(&["backups", "export", &slug, "-o", f]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "bad input: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("not password protected") && err.contains("--no-encryption"), "{err}");
    assert!(!file.exists(), "no file");

    // --no-encryption: written, and said to be unencrypted.
    let out = plain.run_without_password(&["backups", "export", &slug, "-o", f, "--no-encryption"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not encrypted"), "{}", String::from_utf8_lossy(&out.stdout));
    let manifest: serde_json::Value = serde_json::from_slice(&read_entry(&file, "backup.json")).unwrap();
    assert!(manifest["units"].as_array().unwrap().iter().all(|u| u["encrypted"] == false), "{manifest}");

    // --encrypt with a password given: every unit encrypted, and said so.
    std::fs::remove_file(&file).unwrap();
    let out = plain
        .bare_command()
        .args(["backups", "export", &slug, "-o", f, "--encrypt"])
        .env("LIFEBOAT_PASSWORD", "a file password")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("encrypted with a password"));
    let manifest: serde_json::Value = serde_json::from_slice(&read_entry(&file, "backup.json")).unwrap();
    assert!(manifest["units"].as_array().unwrap().iter().all(|u| u["encrypted"] == true), "{manifest}");

    // The API likewise: a download needs unencrypted=true.
    let d = crate::common::daemon::Daemon::start_without_password(&plain);
    let r = d.get(&format!("/api/backups/{slug}/download"));
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().unwrap();
    assert!(body.to_string().contains("unencrypted=true"), "{body}");
    let r = d.get(&format!("/api/backups/{slug}/download?unencrypted=true"));
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.bytes().unwrap().len() > 1024);
    assert!(d.stop().success());
}

/// A device with units, schedules and locations of its own, and a backup of it.
fn device_with_a_setup() -> (Sandbox, String) {
    let sb = Sandbox::new("");
    let photos = sb.home.join("photos");
    let usb = sb.dir.path().join("usb");
    let mut cfg = std::fs::read_to_string(&sb.config).unwrap();
    cfg.push_str(&format!(
        "\n[location.usb]\ntype = \"local\"\npath = \"{}\"\n\n\
         [location.cloud]\ntype = \"webdav\"\nurl = \"https://dav.example/remote.php/dav\"\nusername = \"anna\"\npassword = \"hunter2\"\n\n\
         [unit.docs]\ntitle = \"Documents\"\npaths = [\"~/docs\"]\n\n\
         [unit.photos]\npaths = [\"{}\"]\nexclude = [\"*.tmp\"]\n\n\
         [unit.hooked]\npaths = [\"~/x\"]\nbefore_backup = \"true\"\n\n\
         [schedule.nightly]\nevery = \"day\"\nat = \"02:30\"\nunits = [\"docs\", \"photos\"]\nlocations = [\"usb\"]\n",
        usb.display(),
        photos.display()
    ));
    std::fs::write(&sb.config, cfg).unwrap();
    for d in ["docs", "photos", "x"] {
        std::fs::create_dir_all(sb.home.join(d)).unwrap();
        std::fs::write(sb.home.join(d).join("a.txt"), d).unwrap();
    }
    let slug = sb.backup(&["--location", "local"])["slug"].as_str().unwrap().to_string();
    (sb, slug)
}

/// B's configuration after its setup from A's backup: A's units (the old home's paths under
/// B's), schedule and locations, no secret and nothing that runs a command.
fn has_the_setup(b: &Sandbox, said: &str) {
    let cfg = std::fs::read_to_string(&b.config).unwrap();
    for part in ["[unit.docs]", "[unit.photos]", "[schedule.nightly]", "[location.usb]", "[location.cloud]"] {
        assert!(cfg.contains(part), "{part} missing:\n{cfg}");
    }
    assert!(cfg.contains(&format!("{}", b.home.join("photos").display())), "the old home is mapped:\n{cfg}");
    for never in ["hunter2", "hooked", "before_backup"] {
        assert!(!cfg.contains(never), "{never} carried over:\n{cfg}");
    }
    assert!(said.contains("Left out: unit hooked: it runs commands"), "{said}");
    assert!(said.contains("Location cloud needs its password again"), "{said}");
    let units: serde_json::Value = serde_json::from_str(&b.ok(&["units", "list", "--json"])).unwrap();
    let names: Vec<&str> = units.as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["docs", "photos"], "{units}");
    let locations = b.ok(&["locations", "list", "--json"]);
    assert!(locations.contains("\"usb\"") && locations.contains("\"cloud\""), "{locations}");
}

#[test]
fn a_new_device_is_set_up_from_a_backup_file_or_a_location() {
    let (a, slug) = device_with_a_setup();
    let file = export(&a, &slug, "a.tar");

    // From the backup file.
    let b = Sandbox::new("");
    let said = b.ok(&["setup", "--from-backup", file.to_str().unwrap()]);
    has_the_setup(&b, &said);

    // From the location where A keeps its backups.
    let c = Sandbox::new("");
    let mut cfg = std::fs::read_to_string(&c.config).unwrap();
    cfg.push_str(&format!("\n[location.old]\ntype = \"local\"\npath = \"{}\"\n", a.repo.display()));
    std::fs::write(&c.config, cfg).unwrap();
    // Restoring the old device's backup says its settings can come along. (C is a device of
    // its own on this same host: its id made, as its first backup would.)
    let state = c.dir.path().join("xdg-config/lifeboat");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("device-id"), "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0\n").unwrap();
    let target = c.dir.path().join("restored");
    let restored = c.ok(&["backups", "restore", &slug, "--location", "old", "--target", target.to_str().unwrap()]);
    assert!(restored.contains(&format!("lifeboat setup --from-backup {slug} --location old")), "{restored}");
    let dry = c.ok(&["setup", "--from-backup", "latest", "--location", "old", "--dry-run"]);
    assert!(dry.contains("units docs (Documents), photos (photos)"), "{dry}");
    assert!(!std::fs::read_to_string(&c.config).unwrap().contains("[unit.docs]"), "a dry run changes nothing");
    let said = c.ok(&["setup", "--from-backup", "latest", "--location", "old"]);
    has_the_setup(&c, &said);
}

/// A location's own `repository_password` is a secret like any other: neither the backup's
/// recorded configuration (here, the exported file's backup.json) nor a device set up from
/// it carries it.
#[test]
fn a_backup_carries_no_repository_password() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    std::fs::write(sb.home.join("docs/a.txt"), "a").unwrap();
    let mut cfg = std::fs::read_to_string(&sb.config).unwrap();
    cfg.push_str(&format!(
        "\n[location.nas]\ntype = \"local\"\npath = \"{}\"\nrepository_password = \"rp-hunter2-unattended\"\n",
        sb.dir.path().join("nas").display()
    ));
    std::fs::write(&sb.config, cfg).unwrap();
    let slug = sb.backup(&["--location", "local"])["slug"].as_str().unwrap().to_string();
    let file = export(&sb, &slug, "a.tar");
    let out = Command::new("tar").arg("-xOf").arg(&file).arg("backup.json").output().unwrap();
    assert!(out.status.success());
    let manifest = String::from_utf8_lossy(&out.stdout);
    assert!(manifest.contains("[location.nas]"), "the configuration is recorded: {manifest}");
    assert!(!manifest.contains("rp-hunter2"), "the repository password is recorded: {manifest}");

    let b = Sandbox::new("");
    b.ok(&["setup", "--from-backup", file.to_str().unwrap()]);
    let cfg = std::fs::read_to_string(&b.config).unwrap();
    assert!(cfg.contains("[location.nas]") && !cfg.contains("rp-hunter2"), "{cfg}");
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            out.push(if i <= c.len() { A[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// A crafted backup's configuration names a WebDAV server of the attacker's whose password is
/// "whatever file or environment variable this device holds": `password_file` pointing at the
/// victim's SSH key, `password = "$VARIABLE"`, `repository_password_file` at a file whose
/// content the attacker knows. Setting up from it must take none of them (they are asked
/// again), so the next check of that location sends nothing of this device's.
#[test]
fn a_crafted_backup_makes_this_device_send_none_of_its_files_or_variables() {
    use std::io::{BufRead, BufReader};
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let recorder = seen.clone();
    std::thread::spawn(move || {
        for conn in server.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                recorder.lock().unwrap().push_str(&line);
                line.clear();
            }
            let _ = conn.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });

    let a = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(a.home.join("docs")).unwrap();
    std::fs::write(a.home.join("docs/a.txt"), "a").unwrap();
    let mut cfg = std::fs::read_to_string(&a.config).unwrap();
    cfg.push_str(&format!(
        "\n[location.keyfile]\ntype = \"webdav\"\nurl = \"http://127.0.0.1:{port}/dav\"\nusername = \"x\"\n\
         password_file = \"~/.ssh/id_ed25519\"\nrepository_password_file = \"/etc/hostname\"\n\
         [location.variable]\ntype = \"webdav\"\nurl = \"http://127.0.0.1:{port}/dav\"\nusername = \"y\"\n\
         password = \"$VICTIM_TOKEN\"\n"
    ));
    std::fs::write(&a.config, cfg).unwrap();
    std::fs::create_dir_all(a.home.join(".ssh")).unwrap();
    std::fs::write(a.home.join(".ssh/id_ed25519"), "the attacker's own\n").unwrap();
    let slug = a.backup(&["--location", "local"])["slug"].as_str().unwrap().to_string();
    let file = export(&a, &slug, "crafted.tar");

    let b = Sandbox::new("");
    std::fs::create_dir_all(b.home.join(".ssh")).unwrap();
    std::fs::write(b.home.join(".ssh/id_ed25519"), "VICTIM-PRIVATE-KEY\n").unwrap();
    let said = b.ok(&["setup", "--from-backup", file.to_str().unwrap()]);
    let cfg = std::fs::read_to_string(&b.config).unwrap();
    assert!(cfg.contains("[location.keyfile]") && cfg.contains("[location.variable]"), "{cfg}");
    for never in ["password_file", "repository_password_file", "$VICTIM_TOKEN"] {
        assert!(!cfg.contains(never), "{never} taken from the backup:\n{cfg}");
    }
    assert!(said.contains("Location keyfile needs its password again"), "{said}");
    assert!(said.contains("Location variable needs its password again"), "{said}");

    // What A's own runs sent is no concern here: only what this device sends.
    seen.lock().unwrap().clear();
    for location in ["keyfile", "variable"] {
        let _ = b
            .command()
            .env("VICTIM_TOKEN", "VICTIM-TOKEN-VALUE")
            .args(["locations", "check", location])
            .output()
            .unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    for secret in ["x:VICTIM-PRIVATE-KEY", "y:VICTIM-TOKEN-VALUE"] {
        assert!(!seen.contains(&base64(secret.as_bytes())), "{secret} sent to the backup's server:\n{seen}");
    }
}

/// Rewrites the configuration a backup file carries (backup.json's `config`), as a hostile
/// location or sender would (its BLAKE3SUMS line made again: a checksum, not a signature):
/// `edit` gets the TOML text and returns the crafted one.
fn craft_config(file: &Path, edit: impl Fn(&str) -> String) {
    let crafted = file.with_extension("crafted");
    let mut input = tar::Archive::new(std::fs::File::open(file).unwrap());
    let mut out = tar::Builder::new(std::fs::File::create(&crafted).unwrap());
    let mut manifest_hash = None;
    for entry in input.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        if entry.path().unwrap() == Path::new("backup.json") {
            let mut manifest: serde_json::Value = serde_json::from_slice(&data).unwrap();
            let config = manifest["config"].as_str().expect("the file carries a configuration").to_string();
            manifest["config"] = serde_json::Value::String(edit(&config));
            data = serde_json::to_vec_pretty(&manifest).unwrap();
            header.set_size(data.len() as u64);
            header.set_cksum();
            manifest_hash = Some(blake3::hash(&data).to_hex().to_string());
        }
        if let (true, Some(hash)) = (entry.path().unwrap() == Path::new("BLAKE3SUMS"), &manifest_hash) {
            let sums = String::from_utf8(data).unwrap();
            let sums: String = sums
                .lines()
                .map(|l| if l.ends_with("  backup.json") { format!("{hash}  backup.json\n") } else { format!("{l}\n") })
                .collect();
            data = sums.into_bytes();
            header.set_size(data.len() as u64);
            header.set_cksum();
        }
        out.append(&header, data.as_slice()).unwrap();
    }
    out.into_inner().unwrap().sync_all().unwrap();
    std::fs::rename(crafted, file).unwrap();
}

/// Names and titles in a crafted backup's configuration are shown to the person before they
/// take them: terminal control sequences there (clear the screen, retitle the window, write
/// a reassuring "nothing offered") must never reach the terminal, whether the part is offered
/// or left out.
#[test]
fn a_crafted_backup_writes_no_control_sequence_to_the_terminal() {
    let (a, slug) = device_with_a_setup();
    let file = export(&a, &slug, "a.tar");
    craft_config(&file, |c| {
        c.replace("[unit.hooked]", "[unit.\"hooked\\u001b]0;owned\\u0007\\u001b[2J\"]")
            .replace("title = \"Documents\"", "title = \"Documents\\u001b[1A\\u001b[2K\\r\"")
    });
    let b = Sandbox::new("");
    let out = b.run(&["setup", "--from-backup", file.to_str().unwrap(), "--dry-run"]);
    let both = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
    assert!(
        !both.iter().any(|&c| c == 0x1b || c == 0x07),
        "control characters written: {:?}",
        String::from_utf8_lossy(&both)
    );
    let cfg = std::fs::read_to_string(&b.config).unwrap();
    assert!(!cfg.contains("[unit.docs]") && !cfg.contains("\\u001b"), "{cfg}");

    // Raw in the text, where TOML allows none: the parser's error quoted the line as it was.
    let file = export(&a, &slug, "b.tar");
    craft_config(&file, |c| c.replace("[unit.hooked]", "[unit.hooked]\nx = 1 \u{1b}]0;owned\u{7}\u{1b}[2J"));
    let out = b.run(&["setup", "--from-backup", file.to_str().unwrap(), "--dry-run"]);
    let both = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
    assert!(!out.status.success());
    assert!(
        !both.iter().any(|&c| c == 0x1b || c == 0x07),
        "control characters written: {:?}",
        String::from_utf8_lossy(&both)
    );
}

/// A location a backup offers is shown with where it is before its secret is asked again: a
/// crafted backup may call the attacker's server "nextcloud", and the person types the
/// password of their own Nextcloud for it.
#[test]
fn the_setup_says_where_each_offered_location_is_before_asking_its_secret() {
    let (a, slug) = device_with_a_setup();
    let file = export(&a, &slug, "a.tar");
    let b = Sandbox::new("");
    let said = b.ok(&["setup", "--from-backup", file.to_str().unwrap(), "--dry-run"]);
    assert!(said.contains("cloud (webdav) at url = https://dav.example/remote.php/dav, username = anna"), "{said}");
    let offer: serde_json::Value =
        serde_json::from_str(&b.ok(&["setup", "--from-backup", file.to_str().unwrap(), "--dry-run", "--json"]))
            .unwrap();
    let cloud = offer["locations"].as_array().unwrap().iter().find(|l| l["name"] == "cloud").unwrap();
    assert_eq!(cloud["address"], "url = https://dav.example/remote.php/dav, username = anna", "{offer}");
}

/// Secrets hide in more places than `password = …`: an inline table, a line commented out, the
/// daemon's webhook address (its own credential) and notify command, a hook's command line.
/// The configuration a backup records, which an exported file carries in the clear even when
/// the backup is password protected, holds none of them.
#[test]
fn a_backup_records_no_secret_hidden_in_comments_inline_tables_webhooks_or_commands() {
    let sb = Sandbox::new("");
    std::fs::write(
        &sb.config,
        format!(
            "default_location = \"local\"\n\
             [daemon]\nwebhook = \"https://chat.example/api/webhooks/1/WEBHOOK-TOKEN\"\n\
             notify_command = \"curl -u me:NOTIFY-SECRET https://ntfy.example/t\"\n\
             [location]\nlocal = {{ type = \"local\", path = \"{}\" }}\n\
             inl = {{ type = \"sftp\", host = \"127.0.0.1\", user = \"u\", password = \"INLINE-SECRET\" }}\n\
             # password = \"COMMENTED-SECRET\" (the old one)\n\
             [unit.docs]\npaths = [\"~/docs\"]\nbefore_backup = \"true mysqldump -pHOOK-SECRET\"\n",
            sb.repo.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    std::fs::write(sb.home.join("docs/a.txt"), "a").unwrap();
    let slug = sb.backup(&["--location", "local"])["slug"].as_str().unwrap().to_string();
    let file = export(&sb, &slug, "a.tar");
    let out = Command::new("tar").arg("-xOf").arg(&file).arg("backup.json").output().unwrap();
    assert!(out.status.success());
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let config = manifest["config"].as_str().expect("the configuration is recorded");
    assert!(config.contains("inl") && config.contains("docs"), "{config}");
    for secret in ["WEBHOOK-TOKEN", "NOTIFY-SECRET", "INLINE-SECRET", "COMMENTED-SECRET", "HOOK-SECRET"] {
        assert!(!config.contains(secret), "{secret} recorded in the backup:\n{config}");
    }
    // The unit that runs a command is still told as one, and left out of a setup.
    let b = Sandbox::new("");
    let said = b.ok(&["setup", "--from-backup", file.to_str().unwrap()]);
    assert!(said.contains("Left out: unit docs: it runs commands"), "{said}");
}

/// `restore --from-file --with-config` writes the configuration a file carries, and a crafted
/// file's may hold hooks of the sender's (written as they were, this device's next backup ran
/// them), its daemon's address open to the network, its device's name. It is taken as `setup
/// --from-backup FILE` takes a configuration: nothing that runs a command or opens the daemon.
#[test]
fn a_crafted_file_restored_with_its_configuration_runs_no_command_of_its_sender() {
    let (a, slug) = device_with_a_setup();
    let file = export(&a, &slug, "a.tar");
    let marker = a.dir.path().join("ran-the-senders-command");
    craft_config(&file, |c| {
        // Also the daemon's address open to the network, and another device's name.
        let c =
            c.replace("[unit.photos]\n", &format!("[unit.photos]\nbefore_backup = \"touch {}\"\n", marker.display()));
        format!("device_name = \"the sender\"\n{c}\n[daemon]\nlisten = \"0.0.0.0:8417\"\n")
    });
    let b = Sandbox::new("");
    let target = b.dir.path().join("restored");
    let said = b.ok(&[
        "backups",
        "restore",
        "--from-file",
        file.to_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
        "--with-config",
        "--quiet",
    ]);
    // Taken as `setup --from-backup` takes it: the unit that runs a command is left out, and
    // the rest merged.
    let cfg = std::fs::read_to_string(&b.config).unwrap();
    assert!(!cfg.contains("touch") && !cfg.contains("[unit.photos]"), "{cfg}");
    assert!(cfg.contains("[unit.docs]") && cfg.contains("[location.cloud]"), "{cfg}");
    assert!(said.contains("Left out: unit photos"), "{said}");
    assert!(
        !cfg.contains("0.0.0.0") && !cfg.contains("the sender"),
        "the sender's daemon and name are not taken: {cfg}"
    );
    let _ = b.run(&["backups", "new", "--unit", "photos", "--quiet"]);
    assert!(!marker.exists(), "the sender's command ran on this device");
}

/// A device whose configuration names no default location backs up to its first location by
/// name: a location a backup adds (here "cloud", before "zeta") took its place silently, and
/// with it this device's next backups. This device's default stays.
#[test]
fn a_location_taken_from_a_backup_never_becomes_the_default_of_a_device_with_its_own() {
    let (a, slug) = device_with_a_setup();
    let file = export(&a, &slug, "a.tar");
    let b = Sandbox::new("");
    std::fs::write(
        &b.config,
        format!("[location.zeta]\ntype = \"local\"\npath = \"{}\"\n", b.dir.path().join("zeta").display()),
    )
    .unwrap();
    let default = |b: &Sandbox| {
        let list: serde_json::Value = serde_json::from_str(&b.ok(&["locations", "list", "--json"])).unwrap();
        let list = list.as_array().cloned().unwrap_or_else(|| list["locations"].as_array().unwrap().clone());
        list.iter().find(|l| l["default"] == true).map(|l| l["name"].as_str().unwrap().to_string())
    };
    assert_eq!(default(&b).as_deref(), Some("zeta"));
    let said = b.ok(&["setup", "--from-backup", file.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&b.config).unwrap().contains("[location.cloud]"));
    assert_eq!(default(&b).as_deref(), Some("zeta"), "{said}");
    assert!(!said.contains("by default now"), "{said}");

    // A device with no location of its own takes the backup's default, and is told.
    let c = tempfile::tempdir().unwrap();
    let out = bare(c.path()).args(["setup", "--from-backup", file.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Backups go to location local by default now"), "{}", stdout(&out));
}
