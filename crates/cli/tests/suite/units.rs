//! Unit kinds beyond plain paths.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::*;

/// Inserts rows as fast as it can into a WAL-mode database until told to stop; prints
/// "ready" after the first thousand.
const WRITER: &str = r#"
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("pragma journal_mode=wal")
db.execute("create table if not exists t(id integer primary key, v text)")
i = 0
while not os.path.exists(sys.argv[2]):
    i += 1
    db.execute("insert into t(v) values (?)", ("row %d " % i + "x" * 200,))
    if i == 1000:
        print("ready", flush=True)
print(i, flush=True)
"#;

#[test]
fn a_sqlite_unit_is_consistent_while_the_application_writes() {
    let sb = Sandbox::new("[unit.db]\ntitle = \"Recorder\"\ntype = \"sqlite\"\ndatabase = \"~/app/data.db\"\n");
    let app = sb.home.join("app");
    std::fs::create_dir_all(&app).unwrap();
    let db = app.join("data.db");
    let stop = sb.dir.path().join("stop");
    let mut writer = Command::new("python3")
        .args(["-c", WRITER, db.to_str().unwrap(), stop.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the writer");
    let mut out = BufReader::new(writer.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");

    let b = sb.backup(&[]);
    std::fs::write(&stop, "").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    let written: i64 = line.trim().parse().unwrap();
    assert!(writer.wait().unwrap().success());
    assert_eq!(b["status"], "completed", "{b}");

    let target = sb.dir.path().join("restore");
    sb.ok(&["backups", "restore", b["slug"].as_str().unwrap(), "--target", target.to_str().unwrap(), "--quiet"]);
    let restored = rerooted(&target, &db);
    let conn = rusqlite::Connection::open(&restored).unwrap();
    let check: String = conn.query_row("pragma integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let (count, min, max): (i64, i64, i64) = conn
        .query_row("select count(*), min(id), max(id) from t", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    assert!(count >= 1000, "the copy holds what was committed before it: {count}");
    assert_eq!((min, max), (1, count), "a consistent prefix of the inserts, no gaps");
    assert!(count <= written);
    for side in ["-wal", "-shm"] {
        let mut p = restored.clone().into_os_string();
        p.push(side);
        assert!(!std::path::Path::new(&p).exists(), "no {side} file beside the restored database");
    }

    // Restored in place over the live database, with its WAL, the result is the backup's.
    sb.ok(&["backups", "restore", b["slug"].as_str().unwrap(), "--quiet"]);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = conn.query_row("select count(*) from t", [], |r| r.get(0)).unwrap();
    assert_eq!(n, count);
}

#[test]
fn a_sqlite_unit_without_a_database_is_a_configuration_error() {
    let sb = Sandbox::new("[unit.db]\ntype = \"sqlite\"\n");
    let out = sb.run(&["units", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("add database ="));
}

fn units_sandbox(units: &str) -> Sandbox {
    let sb = Sandbox::new(units);
    let app = sb.home.join("appdata");
    std::fs::create_dir_all(app.join("sub")).unwrap();
    std::fs::write(app.join("settings.conf"), "volume=7\n").unwrap();
    std::fs::write(app.join("sub/data.bin"), random_bytes(100_000, 5)).unwrap();
    sb
}

fn restore_and_compare(sb: &Sandbox, slug: &str, before: &std::collections::BTreeMap<std::path::PathBuf, EntryFacts>) {
    let app = sb.home.join("appdata");
    std::fs::remove_dir_all(&app).unwrap();
    std::fs::create_dir_all(&app).unwrap();
    sb.ok(&["backups", "restore", slug, "--quiet"]);
    let after = facts(&app);
    assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
    for (k, v) in before {
        assert_eq!(after[k].content_hash, v.content_hash, "{}", k.display());
    }
}

#[test]
fn command_units_export_and_import_their_data() {
    for (kind, unit) in [
        ("folder", "export = 'cp -a ~/appdata/. \"$LIFEBOAT_DIR\"'\nimport = 'cp -a \"$LIFEBOAT_DIR\"/. ~/appdata/'"),
        ("stream", "export = 'tar -C ~/appdata -cf - .'\nimport = 'tar -C ~/appdata -xf -'\nstream = true"),
    ] {
        let sb = units_sandbox(&format!("[unit.app]\ntype = \"command\"\n{unit}\n"));
        let before = facts(&sb.home.join("appdata"));
        let b = sb.backup(&[]);
        assert_eq!(b["status"], "completed", "{kind}: {b}");
        restore_and_compare(&sb, b["slug"].as_str().unwrap(), &before);
        // Under --target the exported data is there to look at, and nothing is imported.
        let target = sb.dir.path().join("t");
        sb.ok(&["backups", "restore", b["slug"].as_str().unwrap(), "--target", target.to_str().unwrap(), "--quiet"]);
        assert!(target.join("lifeboat-units/app/data").is_dir(), "{kind}");
    }
}

#[test]
fn a_backup_file_restores_command_units_by_their_import_and_runs_the_hooks() {
    let sb = units_sandbox(
        "[unit.app]\ntype = \"command\"\nexport = 'cp -a ~/appdata/. \"$LIFEBOAT_DIR\"'\n\
         import = 'cp -a \"$LIFEBOAT_DIR\"/. ~/appdata/'\nbefore_restore = 'echo before >> ~/hooks.log'\n\
         after_restore = 'echo after >> ~/hooks.log'\n",
    );
    let app = sb.home.join("appdata");
    let before = facts(&app);
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    let file = sb.dir.path().join("app.tar");
    sb.ok(&["backups", "export", &slug, "-o", file.to_str().unwrap(), "--quiet"]);
    std::fs::remove_dir_all(&app).unwrap();
    std::fs::create_dir_all(&app).unwrap();
    sb.ok(&["backups", "restore", "--from-file", file.to_str().unwrap(), "--quiet"]);
    let after = facts(&app);
    assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>(), "the import put the data back");
    for (k, v) in &before {
        assert_eq!(after[k].content_hash, v.content_hash, "{}", k.display());
    }
    assert_eq!(std::fs::read_to_string(sb.home.join("hooks.log")).unwrap(), "before\nafter\n");
    assert!(!sb.home.join("lifeboat-units").exists(), "the exported data is imported, not left in the home");
}

const VAULT_SCRIPT: &str = r#"#!/bin/sh
# A Sailfish OS vault unit script: --action export|import --dir D --bin-dir B --home-dir H --name N
while [ $# -gt 0 ]; do
  case "$1" in
    --action) action=$2; shift 2;;
    --dir) dir=$2; shift 2;;
    --bin-dir) bin=$2; shift 2;;
    --home-dir) home=$2; shift 2;;
    --name) name=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
case "$action" in
  export) cp -a "$home/appdata/settings.conf" "$dir/" && cp -a "$home/appdata/sub" "$bin/";;
  import) mkdir -p "$home/appdata" && cp -a "$dir/settings.conf" "$home/appdata/" && cp -a "$bin/sub" "$home/appdata/";;
esac
"#;

#[test]
fn a_sailfish_vault_script_round_trips() {
    let sb = units_sandbox("");
    let script = sb.dir.path().join("notes-vault");
    std::fs::write(&script, VAULT_SCRIPT).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cfg = std::fs::read_to_string(&sb.config).unwrap();
    cfg.push_str(&format!("[unit.notes]\ntype = \"command\"\nscript = \"{}\"\n", script.display()));
    std::fs::write(&sb.config, cfg).unwrap();
    let before = facts(&sb.home.join("appdata"));
    let b = sb.backup(&[]);
    assert_eq!(b["status"], "completed", "{b}");
    restore_and_compare(&sb, b["slug"].as_str().unwrap(), &before);
}

#[test]
fn a_failing_unit_leaves_a_backup_with_warnings_that_holds_the_others() {
    let sb = units_sandbox(
        "[unit.broken]\ntype = \"command\"\nexport = 'echo the service is not running >&2; exit 3'\nimport = 'true'\n\
         [unit.app]\npaths = [\"~/appdata\"]\nbefore_backup = 'echo before >> ~/hooks.log'\n\
         after_backup = 'echo after >> ~/hooks.log'\n",
    );
    let out = sb.run(&["backups", "new", "--json", "--quiet"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(b["status"], "completed_with_warnings");
    assert_eq!(std::fs::read_to_string(sb.home.join("hooks.log")).unwrap(), "before\nafter\n");
    let info: serde_json::Value =
        serde_json::from_str(&sb.ok(&["backups", "info", b["slug"].as_str().unwrap(), "--json"])).unwrap();
    let units = info["unit_details"].as_array().unwrap();
    let broken = units.iter().find(|u| u["name"] == "broken").unwrap();
    assert_eq!(broken["status"], "failed");
    let app = units.iter().find(|u| u["name"] == "app").unwrap();
    assert_eq!(app["status"], "completed");
    let target = sb.dir.path().join("t");
    sb.ok(&[
        "backups",
        "restore",
        b["slug"].as_str().unwrap(),
        "--unit",
        "app",
        "--target",
        target.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(compare_trees(&sb.home.join("appdata"), &rerooted(&target, &sb.home.join("appdata"))).is_empty());
}

#[test]
fn every_profile_can_be_used_and_backs_up() {
    let expected: &[(&str, &[&str])] = &[
        ("phone", &["accounts", "browser", "calendar", "gallery", "messages", "notes", "people", "playlists"]),
        ("home-automation", &["addons", "config", "media", "recorder", "share", "ssl"]),
        ("desktop", &["home"]),
    ];
    for (profile, units) in expected {
        let sb = Sandbox::new("");
        for (dir, file) in [
            ("Pictures", "holiday.jpg"),
            (".local/share/com.jolla/notes", "note.txt"),
            (".homeassistant", "configuration.yaml"),
            ("Documents", "letter.txt"),
        ] {
            std::fs::create_dir_all(sb.home.join(dir)).unwrap();
            std::fs::write(sb.home.join(dir).join(file), random_bytes(5000, 3)).unwrap();
        }
        let db = sb.home.join(".homeassistant/home-assistant_v2.db");
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch("create table states(id integer primary key); insert into states default values;")
            .unwrap();
        sb.ok(&["units", "use", profile]);
        let list: serde_json::Value = serde_json::from_str(&sb.ok(&["units", "list", "--json"])).unwrap();
        let mut names: Vec<&str> = list.as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
        names.sort();
        // The whole-home unit, backed up until then, stays beside the profile's.
        assert!(names.contains(&"home"), "{profile}: {names:?}");
        if !units.contains(&"home") {
            names.retain(|n| *n != "home");
        }
        assert_eq!(&names, units, "{profile}");
        let b = sb.backup(&[]);
        assert_eq!(b["status"], "completed", "{profile}: paths missing on this device are skipped quietly: {b}");
        assert!(b["files"].as_u64().unwrap() >= 1, "{profile}: {b}");
        let again = sb.run(&["units", "use", profile]);
        assert_eq!(again.status.code(), Some(2), "{profile}");
        assert!(String::from_utf8_lossy(&again.stderr).contains("already has units"));
    }
    let out = Sandbox::new("").run(&["units", "use", "toaster"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("phone, home-automation, desktop"));
}

#[test]
fn a_hook_that_hangs_is_stopped_at_its_time_limit() {
    let sb = units_sandbox(
        "[unit.app]\npaths = [\"~/appdata\"]\nbefore_backup = 'echo stuck service >&2; sleep 600'\ntimeout = 1\n\
         [unit.other]\npaths = [\"~/appdata/sub\"]\n",
    );
    let out = sb.run(&["backups", "new", "--json", "--quiet"]);
    assert_eq!(out.status.code(), Some(3));
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&sb.ok(&["backups", "info", b["slug"].as_str().unwrap(), "--json"])).unwrap();
    let app = info["unit_details"].as_array().unwrap().iter().find(|u| u["name"] == "app").unwrap().clone();
    assert_eq!(app["status"], "failed");
    let error = app["error"].as_str().unwrap();
    assert!(error.contains("stopped after 1 s") && error.contains("stuck service"), "{error}");
}

#[test]
fn a_path_given_many_times_is_one_path() {
    let paths = vec!["\"~/docs\""; 20_000].join(", ");
    let sb = units_sandbox(&format!("[unit.docs]\npaths = [{paths}]\n"));
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    for i in 0..5 {
        std::fs::write(sb.home.join(format!("docs/{i}")), "x").unwrap();
    }
    let units: serde_json::Value = serde_json::from_str(&sb.ok(&["units", "list", "--json"])).unwrap();
    assert_eq!(units[0]["paths"], serde_json::json!(["~/docs"]), "listed once");
    assert_eq!(units[0]["files"], 5, "counted once");
    let backup = sb.backup(&[]);
    assert_eq!(backup["files"], 5, "backed up once: {backup}");
}

#[test]
fn a_sparse_file_is_read_by_its_data_and_restored_with_its_holes() {
    let sb = units_sandbox("[unit.disk]\npaths = [\"~/disk\"]\n");
    let dir = sb.home.join("disk");
    std::fs::create_dir_all(&dir).unwrap();
    // 1 GiB, of which 3 MiB hold data: at the start, in the middle and at the end.
    let image = dir.join("image.raw");
    let f = std::fs::File::create(&image).unwrap();
    let size = 1u64 << 30;
    f.set_len(size).unwrap();
    use std::os::unix::fs::FileExt;
    for (i, at) in [0, size / 2 + 12345, size - (1 << 20)].into_iter().enumerate() {
        f.write_all_at(&random_bytes(1 << 20, 70 + i as u64), at).unwrap();
    }
    drop(f);
    let backup = sb.backup(&[]);
    let read = backup["read"].as_u64().unwrap();
    assert!((3 << 20..16 << 20).contains(&read), "only the data is read from the disk: {backup}");
    assert_eq!(backup["size"], size, "{backup}");
    let stored = sb.repo_size();
    assert!(stored < 16 << 20, "holes are not stored as data: {stored} bytes");

    let target = sb.dir.path().join("restored");
    sb.ok(&["backups", "restore", backup["slug"].as_str().unwrap(), "--target", target.to_str().unwrap(), "--quiet"]);
    let restored = rerooted(&target, &image);
    let hash = |p: &std::path::Path| {
        let mut h = blake3::Hasher::new();
        h.update_reader(std::fs::File::open(p).unwrap()).unwrap();
        h.finalize()
    };
    assert_eq!(hash(&restored), hash(&image), "restored byte for byte");
    use std::os::unix::fs::MetadataExt;
    let blocks = std::fs::metadata(&restored).unwrap().blocks() * 512;
    assert!(blocks < 64 << 20, "restored with its holes: {blocks} bytes allocated");
}

/// Finding 9 of issue 48: a unit of a folder and another of a folder inside it store each
/// file once, and the backup's totals count it once (files, size, new bytes), in the JSON
/// of `backups new`, `list` and `info`, and on the second run (whose progress estimate
/// comes from the previous backup) too.
#[test]
fn overlapping_units_count_each_file_once() {
    let sb = Sandbox::new("[unit.all]\npaths = [\"~/h\"]\n[unit.docs]\npaths = [\"~/h/Documents\"]\n");
    let docs = sb.home.join("h/Documents");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(sb.home.join("h/a"), random_bytes(10_000, 1)).unwrap();
    std::fs::write(docs.join("b"), random_bytes(20_000, 2)).unwrap();
    std::fs::write(docs.join("c"), random_bytes(30_000, 3)).unwrap();
    for run in 0..2 {
        let b = sb.backup(&[]);
        assert_eq!((b["files"].as_u64(), b["size"].as_u64()), (Some(3), Some(60_000)), "run {run}: {b}");
        let added = b["added"].as_u64().unwrap();
        assert!(added <= 60_000, "new bytes are at most the backup's size: {b}");
        assert_eq!(added, if run == 0 { 60_000 } else { 0 }, "{b}");
        assert_eq!(b["read"].as_u64(), Some(if run == 0 { 60_000 } else { 0 }), "each file read once: {b}");
        let slug = b["slug"].as_str().unwrap();
        let info: serde_json::Value = serde_json::from_str(&sb.ok(&["backups", "info", slug, "--json"])).unwrap();
        assert_eq!((info["files"].as_u64(), info["size"].as_u64()), (Some(3), Some(60_000)), "{info}");
        let units: Vec<u64> =
            info["unit_details"].as_array().unwrap().iter().map(|u| u["files"].as_u64().unwrap()).collect();
        assert_eq!(units, [3, 2], "each unit still counts what it holds: {info}");
        let list: serde_json::Value = serde_json::from_str(&sb.ok(&["backups", "list", "--json"])).unwrap();
        let listed = list.as_array().unwrap().iter().find(|x| x["slug"] == slug).unwrap();
        assert_eq!((listed["files"].as_u64(), listed["size"].as_u64()), (Some(3), Some(60_000)), "{listed}");
        let text = sb.ok(&["backups", "info", slug]);
        assert!(text.contains("3 files") && text.contains("58.6 KiB"), "{text}");
    }
}
