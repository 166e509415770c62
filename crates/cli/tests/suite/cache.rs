//! The metadata cache: what another device writes shows through it, what another device
//! removes goes from it, a damaged entry is fetched again, and an unchanged backup costs as
//! many requests with thirty earlier backups as with one.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::common::servers::{Relay, Seaweed};
use crate::common::{compare_trees, random_bytes, rerooted, Sandbox};

/// One S3 server behind a relay that counts requests; `devices` sandboxes that each see
/// location `s3` (one repository per `roots` entry, `s3` first) and back up `~/notes`.
struct Fixture {
    server: Seaweed,
    relay: Relay,
    devices: Vec<Sandbox>,
}

impl Fixture {
    fn new(devices: usize, roots: &[&str]) -> Fixture {
        let first = Sandbox::new("");
        let mut server = Seaweed::start(&first.dir.path().join("weed"));
        server.create_bucket("backups");
        let s3_port: u16 = server.endpoint.rsplit(':').next().unwrap().parse().unwrap();
        let relay = Relay::start(s3_port);
        let mut all = vec![first];
        all.extend((1..devices).map(|_| Sandbox::new("")));
        let mut locations = String::new();
        for (i, root) in roots.iter().enumerate() {
            let name = if i == 0 { "s3".to_string() } else { format!("s3-{root}") };
            let toml = server
                .location_toml("backups", root)
                .replace(&server.endpoint, &format!("http://127.0.0.1:{}", relay.port));
            locations.push_str(&format!("[location.{name}]\n{toml}\n"));
        }
        for sb in &all {
            fs::create_dir_all(sb.home.join("notes")).unwrap();
            fs::write(
                &sb.config,
                format!("default_location = \"s3\"\n{locations}[unit.notes]\npaths = [\"~/notes\"]\n"),
            )
            .unwrap();
        }
        Fixture { server, relay, devices: all }
    }

    fn requests(&self) -> u64 {
        self.relay.requests.load(Ordering::SeqCst)
    }
}

/// The slugs `backups list` shows on a device.
fn slugs(sb: &Sandbox) -> Vec<String> {
    let list: serde_json::Value = serde_json::from_str(&sb.ok(&["backups", "list", "--json"])).unwrap();
    let mut out: Vec<String> =
        list.as_array().unwrap().iter().map(|b| b["slug"].as_str().unwrap().to_string()).collect();
    out.sort();
    out
}

/// The files the device's cache keeps of kind `folder` (index, snapshots, trees).
fn cached(sb: &Sandbox, folder: &str) -> Vec<PathBuf> {
    let root = sb.dir.path().join("xdg-cache/lifeboat");
    let mut out = Vec::new();
    let Ok(repos) = fs::read_dir(&root) else { return out };
    for repo in repos.flatten().filter(|e| e.path().is_dir()) {
        let mut stack = vec![repo.path().join(folder)];
        while let Some(dir) = stack.pop() {
            for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(e.path());
                }
            }
        }
    }
    out.sort();
    out
}

fn restore(sb: &Sandbox, slug: &str, name: &str) -> PathBuf {
    let target = sb.dir.path().join(name);
    fs::create_dir_all(&target).unwrap();
    sb.ok(&["backups", "restore", slug, "--target", target.to_str().unwrap(), "--quiet"]);
    target
}

fn write_notes(home: &Path, seed: u64) {
    for i in 0..4 {
        fs::write(home.join(format!("notes/n{i}.txt")), format!("note {i} of round {seed}\n")).unwrap();
    }
}

#[test]
fn another_devices_backups_appear_and_removed_ones_go_through_the_cache() {
    let f = Fixture::new(2, &["shared"]);
    let (phone, laptop) = (&f.devices[0], &f.devices[1]);
    write_notes(&phone.home, 1);
    // A large file only the first backup holds: the prune below rewrites the pack it shares.
    fs::write(phone.home.join("notes/draft.bin"), random_bytes(3 << 20, 7)).unwrap();
    let first = phone.backup(&[])["slug"].as_str().unwrap().to_string();
    assert_eq!(slugs(laptop), vec![first.clone()]);
    assert_eq!(cached(laptop, "snapshots").len(), 1, "the laptop keeps the backup it listed");
    let early = restore(laptop, &first, "early");
    assert!(!cached(laptop, "trees").is_empty(), "the laptop keeps the folder listings it read");
    // On another device `~` is that device's home.
    let landed = |target: &Path| rerooted(target, &laptop.home.join("notes"));
    let diffs = compare_trees(&phone.home.join("notes"), &landed(&early));
    assert!(diffs.is_empty(), "{diffs:?}");

    fs::remove_file(phone.home.join("notes/draft.bin")).unwrap();
    write_notes(&phone.home, 2);
    let second = phone.backup(&[])["slug"].as_str().unwrap().to_string();
    let mut both = vec![first.clone(), second.clone()];
    both.sort();
    assert_eq!(slugs(laptop), both, "a backup made elsewhere shows through the cache");

    // Removed and pruned on the phone: the laptop neither lists it nor reads index files or
    // packs that are gone.
    phone.ok(&["backups", "remove", &first]);
    let pruned: serde_json::Value = serde_json::from_str(&phone.ok(&["prune", "--json", "--quiet"])).unwrap();
    assert!(
        pruned["packs_removed"].as_u64().unwrap_or(0) + pruned["packs_rewritten"].as_u64().unwrap_or(0) > 0,
        "the prune changed packs: {pruned}"
    );
    assert_eq!(slugs(laptop), vec![second.clone()], "a backup removed elsewhere goes from the cache");
    assert_eq!(cached(laptop, "snapshots").len(), 1, "its cached copy is dropped");
    let late = restore(laptop, &second, "late");
    let diffs = compare_trees(&phone.home.join("notes"), &landed(&late));
    assert!(diffs.is_empty(), "after a prune elsewhere the restore is whole: {diffs:?}");
    let check = laptop.run(&["check", "--quiet"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
}

#[test]
fn a_damaged_cache_entry_is_dropped_and_fetched_again_and_no_cache_keeps_none() {
    let f = Fixture::new(2, &["shared"]);
    let (phone, fresh) = (&f.devices[0], &f.devices[1]);
    write_notes(&phone.home, 1);
    let slug = phone.backup(&[])["slug"].as_str().unwrap().to_string();
    let (snapshots, indexes, trees) = (cached(phone, "snapshots"), cached(phone, "index"), cached(phone, "trees"));
    assert!(snapshots.len() == 1 && !indexes.is_empty() && !trees.is_empty(), "the backup filled the cache");
    let good: Vec<Vec<u8>> = [&snapshots[0], &indexes[0], &trees[0]].iter().map(|p| fs::read(p).unwrap()).collect();
    for (path, bytes) in [&snapshots[0], &indexes[0], &trees[0]].iter().zip(&good) {
        let mut bad = bytes.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x40;
        fs::write(path, bad).unwrap();
    }
    assert_eq!(slugs(phone), vec![slug.clone()]);
    let back = restore(phone, &slug, "back");
    assert!(compare_trees(&phone.home.join("notes"), &rerooted(&back, &phone.home.join("notes"))).is_empty());
    for (path, bytes) in [&snapshots[0], &indexes[0], &trees[0]].iter().zip(&good) {
        assert_eq!(&fs::read(path).unwrap(), bytes, "{} was fetched again", path.display());
    }

    // --no-cache reads the location and leaves no cache behind.
    let out = fresh.command().args(["--no-cache", "backups", "list", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&slug));
    assert!(!fresh.dir.path().join("xdg-cache/lifeboat").exists(), "--no-cache made a cache");
}

#[test]
fn an_unchanged_backup_makes_as_many_requests_after_thirty_backups_as_after_one() {
    let f = Fixture::new(1, &["one", "thirty"]);
    let sb = &f.devices[0];
    write_notes(&sb.home, 0);
    sb.backup(&["--location", "s3"]);
    for round in 1..=30 {
        write_notes(&sb.home, round);
        sb.backup(&["--location", "s3-thirty"]);
    }
    let mut counts = Vec::new();
    for location in ["s3", "s3-thirty"] {
        // The first brings the cache up to date with the notes as they now are.
        sb.backup(&["--location", location]);
        let before = f.requests();
        let done = sb.backup(&["--location", location]);
        counts.push(f.requests() - before);
        assert_eq!(done["added"].as_u64(), Some(0), "the backup was unchanged: {done}");
    }
    eprintln!("requests of an unchanged backup: {} with 1 earlier backup, {} with 30", counts[0], counts[1]);
    assert_eq!(counts[0], counts[1], "requests grow with the backups in the repository");
    // What it needs and no more: the key slots' listing and the config (at once; the slot
    // this device opened it with is remembered, so no slot is read), the backups' listing,
    // its lock written and the locks listed (its own not read back), the index and the packs
    // listed (at once), its snapshot, its lock removed.
    assert!(counts[0] <= 9, "an unchanged backup made {} requests; 9 do", counts[0]);
    drop(f.server);
}

#[test]
fn a_restore_asks_the_location_what_it_holds_once() {
    let f = Fixture::new(1, &["notes"]);
    let sb = &f.devices[0];
    write_notes(&sb.home, 1);
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    // The first restore brings the cache up to date; the second is counted.
    restore(sb, &slug, "first");
    let before = f.requests();
    let back = restore(sb, &slug, "second");
    let count = f.requests() - before;
    assert!(compare_trees(&sb.home.join("notes"), &rerooted(&back, &sb.home.join("notes"))).is_empty());
    eprintln!("requests of a restore of one backup: {count}");
    // The key slots' listing, the config and the backups' listing (at once; the slug is found
    // in that listing), its lock written and the locks listed, the index listed, the one
    // pack of the notes read, its lock removed. No second look at whether a repository is
    // there, no second listing of the backups.
    assert!(count <= 8, "a restore made {count} requests; 8 do");
    drop(f.server);
}
