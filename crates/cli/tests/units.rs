//! Unit kinds beyond plain paths.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

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
