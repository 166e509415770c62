//! Progress of a backup whose upload lags its reading (issue 48, finding 6): the figure shown
//! is what reached the location, done never exceeds total (an estimate that proves low
//! grows), nothing goes backwards, and a job that failed shows no part-done figures.
//!
//! Each backup stops in its upload at a pause point, after its first pack is stored, until
//! the test has seen a moment where every file is read but not all is stored.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use crate::common::daemon::Daemon;
use crate::common::*;

/// The first pack (16 MiB of the new files) is stored; the rest waits.
const UPLOADING: &str = "pack 1 of the session stored";
/// The phase once every file is read.
const SENDING: &str = "sending the last data and the index";
const MIB: u64 = 1 << 20;
/// What the second backup reads: 4 files of the first (unchanged) and 20 new ones.
const READ: u64 = 24 * MIB;

/// A rate-limited location holding a backup of 4 MiB; then 20 MiB more of new files, so the
/// next backup's estimate (the previous backup's totals) proves low.
/// (Odd seeds: the generator makes the same bytes of seeds 2n and 2n + 1.)
fn sandbox() -> Sandbox {
    let sb = Sandbox::new("[unit.photos]\npaths = [\"~/photos\"]\n");
    let cfg = std::fs::read_to_string(&sb.config).unwrap();
    let cfg = cfg.replacen("type = \"local\"\n", "type = \"local\"\nupload_limit = \"32 MiB/s\"\n", 1);
    std::fs::write(&sb.config, cfg).unwrap();
    let photos = sb.home.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for i in 0..4 {
        std::fs::write(photos.join(format!("old-{i}")), random_bytes(MIB as usize, 4801 + 2 * i)).unwrap();
    }
    sb.backup(&[]);
    for i in 0..20 {
        std::fs::write(photos.join(format!("new-{i:02}")), random_bytes(MIB as usize, 4901 + 2 * i)).unwrap();
    }
    sb
}

/// Every report keeps the invariants, and none goes backwards from the one before.
fn check_reports(views: &[serde_json::Value]) {
    let mut last = (0, 0);
    for v in views {
        let p = &v["progress"];
        let n = |k: &str| p[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
        assert!(n("bytes_done") <= n("bytes_total"), "bytes done above the total: {v}");
        assert!(n("files_done") <= n("files_total"), "files done above the total: {v}");
        assert!(n("bytes_done") <= n("bytes_read"), "more stored than read: {v}");
        assert!((n("bytes_done"), n("files_done")) >= last, "the figures went backwards: {v}");
        last = (n("bytes_done"), n("files_done"));
    }
}

#[test]
fn the_api_shows_what_the_location_has_and_a_failed_job_as_failed() {
    let sb = sandbox();
    let card = sb.dir.path().join("media/card");
    std::fs::create_dir_all(&card).unwrap();
    let mut cfg = std::fs::read_to_string(&sb.config).unwrap();
    cfg.push_str(&format!("\n[location.card]\ntype = \"removable\"\npath = \"{}\"\n", card.display()));
    std::fs::write(&sb.config, cfg).unwrap();
    let pause = pause_dir(&sb);
    let mut command = sb.command();
    command.env("LIFEBOAT_PAUSE_AT", UPLOADING).env("LIFEBOAT_PAUSE_DIR", &pause);
    let d = Daemon::start_with(&sb, command);

    let (status, started) = d.json(reqwest::Method::POST, "/api/backups", serde_json::json!({"units": ["photos"]}));
    assert_eq!(status, 202, "{started}");
    let job = started["job"].as_u64().unwrap();
    // Every progress report of the job, as the page receives them.
    let events = d.get(&format!("/api/jobs/{job}/events"));
    assert_eq!(events.status().as_u16(), 200);
    let (tx, rx) = mpsc::channel::<(String, serde_json::Value)>();
    std::thread::spawn(move || {
        let mut kind = String::new();
        for line in BufReader::new(events).lines() {
            let Ok(line) = line else { return };
            if let Some(k) = line.strip_prefix("event: ") {
                kind = k.to_string();
            } else if let Some(data) = line.strip_prefix("data: ") {
                if kind != "log" && tx.send((kind.clone(), serde_json::from_str(data).unwrap())).is_err() {
                    return;
                }
            }
        }
    });
    let next = || rx.recv_timeout(Duration::from_secs(120)).expect("the job reports its progress");
    wait_paused(&pause);
    let mut views = Vec::new();
    let sending = loop {
        let (kind, v) = next();
        assert_eq!(kind, "progress", "the job ended while its upload was paused: {v}");
        views.push(v.clone());
        if v["progress"]["phase"] == SENDING {
            break v;
        }
    };
    // Every file read, a part of the new data not yet stored: the figure is the stored one.
    let p = &sending["progress"];
    assert_eq!(p["bytes_read"].as_u64(), Some(READ), "{sending}");
    assert_eq!(p["bytes_total"].as_u64(), Some(READ), "the low estimate grew to what was read: {sending}");
    assert_eq!((p["files_done"].as_u64(), p["files_total"].as_u64()), (Some(24), Some(24)), "{sending}");
    let done = p["bytes_done"].as_u64().unwrap();
    assert!(done + 2 * MIB <= READ, "the figure is what was read, not what was stored: {sending}");
    let percent = p["percent"].as_f64().unwrap_or_else(|| panic!("no percent with a total: {sending}"));
    assert!(percent < 100.0 && percent > 0.0, "{sending}");
    resume(&pause);
    let end = loop {
        let (kind, v) = next();
        views.push(v.clone());
        if kind == "done" {
            break v;
        }
    };
    check_reports(&views);
    assert_eq!(end["state"], "succeeded", "{end}");
    assert_eq!(end["progress"]["percent"], 100.0, "{end}");
    assert_eq!(end["progress"]["bytes_done"].as_u64(), Some(READ), "{end}");

    // A job that fails at once says failed, with no part-done figures.
    let (status, started) = d.json(reqwest::Method::POST, "/api/backups", serde_json::json!({"location": "card"}));
    assert_eq!(status, 202, "{started}");
    let (failed, _) = d.follow(started["job"].as_u64().unwrap());
    assert_eq!(failed["state"], "failed", "{failed}");
    let p = &failed["progress"];
    assert!(p["percent"].is_null() && p["eta"].is_null() && p["rate"] == 0.0, "{failed}");
    check_reports(std::slice::from_ref(&failed));
}

/// "24.0 MiB" → bytes (as the command line writes sizes: IEC, one decimal).
fn size(text: &str) -> u64 {
    let (n, unit) = text.trim().split_once(' ').unwrap_or_else(|| panic!("a size: {text:?}"));
    let power = ["B", "KiB", "MiB", "GiB", "TiB"].iter().position(|u| *u == unit).unwrap_or_else(|| panic!("{text:?}"));
    (n.parse::<f64>().unwrap() * (1u64 << (10 * power)) as f64) as u64
}

/// A plain progress line's figures: bytes done, bytes total, files done, files total.
fn figures(line: &str) -> (u64, u64, u64, u64) {
    let (_, rest) = line.rsplit_once(": ").unwrap_or_else(|| panic!("{line}"));
    let (done, rest) = rest.split_once(" of ").unwrap_or_else(|| panic!("no total: {line}"));
    let total_end = rest.find([',', '(']).unwrap();
    let files = rest.split(", ").nth(1).unwrap_or_else(|| panic!("no files: {line}"));
    let (files_done, files_total) =
        files.trim_end_matches(" files").split_once(" of ").unwrap_or_else(|| panic!("{line}"));
    (size(done), size(&rest[..total_end]), files_done.parse().unwrap(), files_total.parse().unwrap())
}

/// A command the test runs; killed if the test fails while it is paused.
struct Running(Option<std::process::Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn the_command_lines_progress_lines_show_what_the_location_has() {
    let sb = sandbox();
    let pause = pause_dir(&sb);
    let mut child = Running(Some(
        sb.command()
            .args(["backups", "new", "--unit", "photos"])
            .env("LIFEBOAT_PAUSE_AT", UPLOADING)
            .env("LIFEBOAT_PAUSE_DIR", &pause)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let (tx, rx) = mpsc::channel::<String>();
    let stderr = child.0.as_mut().unwrap().stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    wait_paused(&pause);
    let mut lines = Vec::new();
    // Lines come every few seconds: the first one written once every file is read.
    let sending = loop {
        let line = rx.recv_timeout(Duration::from_secs(120)).expect("a progress line while paused");
        lines.push(line.clone());
        if line.starts_with(&format!("{SENDING}:")) {
            break line;
        }
    };
    let (done, total, files_done, files_total) = figures(&sending);
    assert_eq!((total, files_done, files_total), (READ, 24, 24), "the low estimate grew to what was read: {sending}");
    assert!(done + 2 * MIB <= READ, "the figure is what was read, not what was stored: {sending}");
    assert!(sending.contains("(24.0 MiB read)"), "{sending}");
    resume(&pause);
    lines.extend(rx.iter());
    let out = child.0.take().unwrap().wait_with_output().unwrap();
    assert!(out.status.success(), "{lines:?}");
    let progress_line = |l: &&String| {
        l.split_once(": ").is_some_and(|(phase, figures)| {
            phase.chars().all(|c| c.is_ascii_lowercase() || c == ' ') && figures.contains(" of ")
        })
    };
    assert!(lines.iter().filter(progress_line).count() >= 1, "{lines:?}");
    for line in lines.iter().filter(progress_line) {
        let (done, total, files_done, files_total) = figures(line);
        assert!(done <= total && files_done <= files_total, "done above the total: {line}");
    }
}
