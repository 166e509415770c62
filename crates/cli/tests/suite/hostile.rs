//! The hostile-location suite: someone who can write to the location (but holds no key) plants
//! and alters objects. For each case Lifeboat must refuse clearly or repair, and never panic,
//! stall, use memory without bound or restore a wrong byte. Run against a local folder and
//! against S3 (SeaweedFS, altered through its filer as an attacker with access to the bucket
//! would).

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::servers::Seaweed;
use crate::common::*;

/// An attacker's hands on the location: object names as the repository uses them.
trait Hands {
    fn list(&self, prefix: &str) -> Vec<String>;
    fn read(&self, name: &str) -> Vec<u8>;
    fn write(&self, name: &str, data: &[u8]);
    fn remove(&self, name: &str);
    /// Writes an object that looks two days old, where the location lets one say so.
    fn write_old(&self, name: &str, data: &[u8]) -> bool;
    /// Plants a "pack" of zeros whose trailer claims a header as long as the whole object, as
    /// large as the location lets one be made cheaply (a sparse file of 4 GiB in a folder);
    /// returns its size.
    fn plant_huge_pack(&self, name: &str) -> u64;
}

struct Folder(PathBuf);

impl Hands for Folder {
    fn list(&self, prefix: &str) -> Vec<String> {
        let mut out: Vec<String> = walkdir(&self.0.join(prefix))
            .into_iter()
            .filter(|p| p.is_file())
            .map(|p| p.strip_prefix(&self.0).unwrap().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    }
    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.0.join(name)).unwrap()
    }
    fn write(&self, name: &str, data: &[u8]) {
        let p = self.0.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    fn remove(&self, name: &str) {
        std::fs::remove_file(self.0.join(name)).unwrap();
    }
    fn write_old(&self, name: &str, data: &[u8]) -> bool {
        self.write(name, data);
        let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 24 * 3600);
        let secs = two_days_ago.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let old = nix::sys::time::TimeSpec::new(secs, 0);
        nix::sys::stat::utimensat(
            None,
            &self.0.join(name),
            &old,
            &old,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        true
    }
    fn plant_huge_pack(&self, name: &str) -> u64 {
        use std::io::{Seek, Write};
        let size = 4u64 << 30;
        let p = self.0.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let mut f = std::fs::File::create(&p).unwrap();
        f.seek(std::io::SeekFrom::Start(size - 4)).unwrap();
        f.write_all(&((size - 4) as u32).to_le_bytes()).unwrap();
        size
    }
}

/// The bucket's folder on SeaweedFS's filer.
struct Filer {
    base: String,
    client: reqwest::blocking::Client,
}

impl Filer {
    fn url(&self, name: &str) -> String {
        if name.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{name}", self.base)
        }
    }
}

impl Hands for Filer {
    fn list(&self, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut dirs = vec![prefix.to_string()];
        while let Some(dir) = dirs.pop() {
            let r = self
                .client
                .get(format!("{}/?limit=100000", self.url(&dir)))
                .header("Accept", "application/json")
                .send()
                .unwrap();
            if r.status() == 404 {
                continue;
            }
            let v: serde_json::Value = r.json().unwrap();
            for e in v["Entries"].as_array().cloned().unwrap_or_default() {
                let full = e["FullPath"].as_str().unwrap();
                let name = full.rsplit('/').next().unwrap();
                let child = if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") };
                // Go's os.ModeDir.
                if e["Mode"].as_u64().unwrap_or(0) & (1 << 31) != 0 {
                    dirs.push(child);
                } else {
                    out.push(child);
                }
            }
        }
        out.sort();
        out
    }
    fn read(&self, name: &str) -> Vec<u8> {
        let r = self.client.get(self.url(name)).send().unwrap();
        assert!(r.status().is_success(), "reading {name}: {}", r.status());
        r.bytes().unwrap().to_vec()
    }
    fn write(&self, name: &str, data: &[u8]) {
        let r = self.client.put(self.url(name)).body(data.to_vec()).send().unwrap();
        assert!(r.status().is_success(), "writing {name}: {}", r.status());
    }
    fn remove(&self, name: &str) {
        let r = self.client.delete(self.url(name)).send().unwrap();
        assert!(r.status().is_success() || r.status() == 404, "removing {name}: {}", r.status());
    }
    fn write_old(&self, name: &str, data: &[u8]) -> bool {
        // S3 keeps the time of the upload; an object cannot be made to look old.
        self.write(name, data);
        false
    }
    fn plant_huge_pack(&self, name: &str) -> u64 {
        // Uploaded whole: large enough to be seen in the peak memory of a reader that keeps it.
        let size = 400usize << 20;
        let mut data = vec![0u8; size];
        data[size - 4..].copy_from_slice(&((size - 4) as u32).to_le_bytes());
        self.write(name, &data);
        size as u64
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Never a panic, whatever the outcome.
fn no_panic(o: &Output, what: &str) {
    let t = text(o);
    assert!(!t.contains("panicked") && o.status.code().is_some_and(|c| c != 101), "{what} panicked: {t}");
}

fn run(sb: &Sandbox, args: &[&str]) -> Output {
    let o = sb.run(args);
    no_panic(&o, &args.join(" "));
    o
}

fn check_fails_naming(sb: &Sandbox, words: &[&str], case: &str) {
    let o = run(sb, &["check"]);
    assert_eq!(o.status.code(), Some(4), "{case}: check finds it: {}", text(&o));
    for w in words {
        assert!(text(&o).contains(w), "{case}: check names {w:?}: {}", text(&o));
    }
}

fn repair_until_clean(sb: &Sandbox, case: &str) {
    let o = run(sb, &["check", "--repair"]);
    assert!(o.status.code().is_some_and(|c| c == 0 || c == 1), "{case}: repair ran: {}", text(&o));
    let o = run(sb, &["check"]);
    assert_eq!(o.status.code(), Some(0), "{case}: clean after repair: {}", text(&o));
}

fn slugs(sb: &Sandbox) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&sb.ok(&["backups", "list", "--json"])).unwrap();
    let mut out: Vec<String> = v.as_array().unwrap().iter().map(|b| b["slug"].as_str().unwrap().to_string()).collect();
    out.sort();
    out
}

/// Restores `slug` into a new folder and insists it equals `source` byte for byte.
fn restores_exactly(sb: &Sandbox, slug: &str, source: &Path, case: &str) {
    let target = sb.dir.path().join(format!("restored-{}", rand_name()));
    let o = run(sb, &["backups", "restore", slug, "--target", target.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{case}: restore: {}", text(&o));
    let diff = compare_trees(source, &rerooted(&target, source));
    assert!(diff.is_empty(), "{case}: restored exactly: {diff:?}");
}

fn rand_name() -> String {
    format!("{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}

fn hex64() -> String {
    format!("{}{}{}{}", rand_name(), rand_name(), rand_name(), rand_name())
}

fn flip_byte(hands: &dyn Hands, name: &str) {
    let mut b = hands.read(name);
    let i = b.len() / 2;
    b[i] ^= 0x5a;
    hands.write(name, &b);
}

fn key_ids(sb: &Sandbox, kind: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&sb.ok(&["key", "list", "--json"])).unwrap();
    v.as_array().unwrap().iter().filter(|k| k["kind"] == kind).map(|k| k["id"].as_str().unwrap().to_string()).collect()
}

/// Every case, one after another, on one repository; each leaves it repaired.
fn every_case(sb: &Sandbox, hands: &dyn Hands, source: &Path) {
    let first = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    sb.ok(&["check"]);

    // LIFEBOAT_HOSTILE_CASES=2,5 runs only those cases (to see one fail on an older build).
    let only: Option<Vec<u32>> = std::env::var("LIFEBOAT_HOSTILE_CASES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect());
    let wanted = |n: u32| only.as_ref().is_none_or(|o| o.contains(&n));

    if wanted(1) {
        // 1. Key slots asking for huge key derivations: skipped, reported, removed.
        let case = "huge key derivation";
        let ours = key_ids(sb, "password").remove(0);
        let mut planted: serde_json::Value = serde_json::from_slice(&hands.read(&format!("keys/{ours}"))).unwrap();
        planted["kdf"]["memory_kib"] = serde_json::json!(4u64 * 1024 * 1024);
        planted["kdf"]["iterations"] = serde_json::json!(64);
        planted["kdf"]["parallelism"] = serde_json::json!(16);
        planted.as_object_mut().unwrap().remove("check");
        let huge = hex64();
        hands.write(&format!("keys/{huge}"), &serde_json::to_vec(&planted).unwrap());
        // Slots at the ceiling (what Lifeboat writes): derived at most at our own cost.
        planted["kdf"]["memory_kib"] = serde_json::json!(64u64 * 1024);
        planted["kdf"]["iterations"] = serde_json::json!(3);
        planted["kdf"]["parallelism"] = serde_json::json!(4);
        for _ in 0..3 {
            hands.write(&format!("keys/{}", hex64()), &serde_json::to_vec(&planted).unwrap());
        }
        let (o, peak) = run_measuring_memory(sb, &["backups", "list"]);
        no_panic(&o, case);
        assert!(o.status.success(), "{case}: opens: {}", text(&o));
        assert!(text(&o).contains(&format!("keys/{huge} skipped")), "{case}: says so: {}", text(&o));
        assert!(peak < 200 << 20, "{case}: nothing beyond our own slots' cost was derived (peak {} MiB)", peak >> 20);
        check_fails_naming(sb, &[&format!("keys/{huge}"), "ceiling"], case);
        repair_until_clean(sb, case);
        // The planted slots within the ceiling, made without the key, stay until removed by
        // hand; they hold nothing that opens.
        for id in key_ids(sb, "password").into_iter().filter(|id| *id != ours) {
            sb.ok(&["key", "remove", &id]);
        }
    }

    if wanted(2) {
        // 2. One flipped byte in the config: every backup still lists and restores; check names
        // it and repair writes it back from a key slot's copy.
        let case = "damaged config";
        flip_byte(hands, "config");
        let o = run(sb, &["backups", "list"]);
        assert!(o.status.success(), "{case}: lists: {}", text(&o));
        assert!(text(&o).contains("config failed authentication"), "{case}: warns: {}", text(&o));
        restores_exactly(sb, &first, source, case);
        check_fails_naming(sb, &["config failed authentication", "check --repair"], case);
        repair_until_clean(sb, case);
    }

    if wanted(3) {
        // 3. The config removed: the key slots still make it a repository (a backup never
        // creates a new one over them), and repair writes it back.
        let case = "missing config";
        hands.remove("config");
        let second = sb.backup(&[])["slug"].as_str().unwrap().to_string();
        assert!(slugs(sb).contains(&first), "{case}: the first backup is still there");
        restores_exactly(sb, &second, source, case);
        check_fails_naming(sb, &["config is missing"], case);
        repair_until_clean(sb, case);
        assert!(hands.list("").iter().any(|n| n == "config"), "{case}: config written back");
    }

    if wanted(4) {
        // 4. Slots made before they carried a copy, and the config damaged: one rebuilt from the
        // master key stands in; repair writes it and gives the slots their copies.
        let case = "damaged config, old slots";
        for name in hands.list("keys") {
            let mut slot: serde_json::Value = serde_json::from_slice(&hands.read(&name)).unwrap();
            slot.as_object_mut().unwrap().remove("config");
            hands.write(&name, &serde_json::to_vec(&slot).unwrap());
        }
        flip_byte(hands, "config");
        let o = run(sb, &["backups", "list"]);
        assert!(o.status.success() && text(&o).contains("rebuilt"), "{case}: lists, saying so: {}", text(&o));
        restores_exactly(sb, &first, source, case);
        repair_until_clean(sb, case);
        let o = run(sb, &["check"]);
        assert!(!text(&o).contains("carry no copy"), "{case}: every slot has its copy again: {}", text(&o));
        let third = sb.backup(&[])["slug"].as_str().unwrap().to_string();
        restores_exactly(sb, &third, source, case);
    }

    if wanted(5) {
        // 5. A backup moved to another name: not taken for that name; repair moves it back.
        let case = "renamed backup";
        let snaps = hands.list("snapshots");
        let moved = snaps[0].clone();
        let elsewhere = format!("snapshots/{}", hex64());
        hands.write(&elsewhere, &hands.read(&moved));
        hands.remove(&moved);
        check_fails_naming(sb, &["holds what belongs under"], case);
        repair_until_clean(sb, case);
        assert_eq!(hands.list("snapshots"), snaps, "{case}: back under its own name");
    }

    if wanted(6) {
        // 6. An index file copied under another name, and two packs swapped: nothing wrong is
        // restored; repair rebuilds the index from the packs as they are.
        let case = "swapped objects";
        let index = hands.list("index");
        hands.write(&format!("index/{}", hex64()), &hands.read(&index[0]));
        let packs = hands.list("data");
        assert!(packs.len() >= 2, "{case}: needs two packs: {packs:?}");
        let (a, b) = (hands.read(&packs[0]), hands.read(&packs[1]));
        hands.write(&packs[0], &b);
        hands.write(&packs[1], &a);
        let target = sb.dir.path().join("swapped");
        let o = run(sb, &["backups", "restore", &first, "--target", target.to_str().unwrap(), "--quiet"]);
        assert!(!o.status.success(), "{case}: the restore says files failed: {}", text(&o));
        let restored = rerooted(&target, source);
        for f in walkdir(&restored).into_iter().filter(|p| p.is_file()) {
            let original = source.join(f.strip_prefix(&restored).unwrap());
            let same = std::fs::read(&f).unwrap() == std::fs::read(&original).unwrap();
            assert!(same, "{case}: no wrong byte: {f:?} differs from what was backed up");
        }
        check_fails_naming(sb, &["holds what belongs under"], case);
        repair_until_clean(sb, case);
        restores_exactly(sb, &first, source, case);
    }

    if wanted(7) {
        // 7. Junk under every prefix: refused or ignored, named by check, removed by repair and
        // prune.
        let case = "junk objects";
        let junk = random_bytes(3000, 7);
        for prefix in ["snapshots", "index", "keys"] {
            hands.write(&format!("{prefix}/{}", hex64()), &junk);
        }
        let junk_pack = format!("data/ab/ab{}", &hex64()[2..]);
        hands.write(&junk_pack, &junk);
        hands.write("keys/not-an-id", &junk);
        let o = run(sb, &["backups", "list"]);
        assert!(o.status.success(), "{case}: lists: {}", text(&o));
        restores_exactly(sb, &first, source, case);
        check_fails_naming(sb, &["snapshots/", "key slot"], case);
        run(sb, &["check", "--repair"]);
        sb.ok(&["prune"]);
        let o = run(sb, &["check"]);
        assert_eq!(o.status.code(), Some(0), "{case}: clean: {}", text(&o));
        assert!(!hands.list("data").contains(&junk_pack), "{case}: prune removed the junk pack");
    }

    if wanted(8) {
        // 8. Temporary leftovers: prune reclaims those older than a day, never a fresh one (it
        // may be a write under way).
        let case = "temporary leftovers";
        let old = "data/cd/.tmp-00000000000000aa";
        let fresh = "index/.tmp-00000000000000bb";
        let can_age = hands.write_old(old, &random_bytes(100_000, 3));
        hands.write(fresh, b"partial");
        sb.ok(&["prune"]);
        let left: Vec<String> = [hands.list("data"), hands.list("index")].concat();
        assert!(left.iter().any(|n| n == fresh), "{case}: a fresh one stays: {left:?}");
        if can_age {
            assert!(!left.iter().any(|n| n == old), "{case}: an old one goes: {left:?}");
        }
        hands.remove(fresh);
        if !can_age {
            hands.remove(old);
        }
    }

    if wanted(9) {
        // 9. The recovery key's slot removed: check says the emergency kit no longer opens the
        // repository, and repair adds the slot again for the same key.
        let case = "recovery slot removed";
        let recovery = sb.ok(&["key", "recovery"]).trim().to_string();
        for id in key_ids(sb, "recovery") {
            hands.remove(&format!("keys/{id}"));
        }
        check_fails_naming(sb, &["no intact recovery key slot"], case);
        repair_until_clean(sb, case);
        let kit = sb.dir.path().join("kit");
        std::fs::write(&kit, format!("{recovery}\n")).unwrap();
        let o = sb.bare_command().arg("--password-file").arg(&kit).args(["backups", "list"]).output().unwrap();
        assert!(o.status.success(), "{case}: the recovery key opens it again: {}", text(&o));
    }

    if wanted(10) {
        // 10. Two data packs of one length swapped: both authenticate under the key, so only
        // the blob's id tells. The export (which splices stored frames) refuses as the restore
        // does, names the blob, and leaves no file.
        let case = "swapped packs of one length";
        let twin = source.join("sub/twin.bin");
        let mut made = Vec::new();
        for seed in [101, 102] {
            std::fs::write(&twin, random_bytes(5000, seed)).unwrap();
            let before = hands.list("data");
            let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
            let added: Vec<String> = hands.list("data").into_iter().filter(|p| !before.contains(p)).collect();
            // The pack that holds the new file's blob is the larger of what the backup added.
            let pack = added.into_iter().max_by_key(|p| hands.read(p).len()).expect("a new pack");
            made.push((slug, pack));
        }
        std::fs::remove_file(&twin).unwrap();
        let (a, b) = (hands.read(&made[0].1), hands.read(&made[1].1));
        assert_eq!(a.len(), b.len(), "{case}: the two packs are of one length");
        hands.write(&made[0].1, &b);
        hands.write(&made[1].1, &a);
        let file = sb.dir.path().join("swapped.tar");
        let o = run(sb, &["backups", "export", &made[0].0, "-o", file.to_str().unwrap()]);
        no_panic(&o, case);
        assert!(!o.status.success(), "{case}: the export refuses: {}", text(&o));
        assert!(text(&o).contains("blob ") && text(&o).contains("damaged"), "{case}: names the blob: {}", text(&o));
        assert!(!file.exists(), "{case}: no file holds the other backup's bytes");
        let o = run(sb, &["backups", "export", &made[1].0, "-o", "-"]);
        assert!(!o.status.success(), "{case}: to standard output too: {}", text(&o));
        hands.write(&made[0].1, &a);
        hands.write(&made[1].1, &b);
        sb.ok(&["backups", "export", &made[0].0, "-o", file.to_str().unwrap()]);
        for (slug, _) in &made {
            sb.ok(&["backups", "remove", slug]);
        }
        sb.ok(&["prune"]);
    }

    if wanted(11) {
        // 11. A planted "pack" whose trailer claims a header as long as itself: a backup reads
        // its trailer and no more (it used to read and hold all of it, on every backup).
        let case = "planted pack";
        let name = format!("data/ab/ab{}", &hex64()[2..]);
        let size = hands.plant_huge_pack(&name);
        let (o, peak) = run_measuring_memory(sb, &["backups", "new", "--quiet"]);
        no_panic(&o, case);
        assert!(o.status.success(), "{case}: the backup is made: {}", text(&o));
        assert!(peak < 200 << 20, "{case}: a {} MiB file costs no memory (peak {} MiB)", size >> 20, peak >> 20);
        let (o, peak) = run_measuring_memory(sb, &["check", "--read-data"]);
        no_panic(&o, case);
        assert!(peak < 200 << 20, "{case}: nor does check (peak {} MiB): {}", peak >> 20, text(&o));
        sb.ok(&["prune"]);
        assert!(!hands.list("data").contains(&name), "{case}: prune removes it");
    }
}

fn sandbox(location_toml: &str) -> (Sandbox, PathBuf) {
    let sb = Sandbox::new("");
    let source = sb.home.join("data");
    std::fs::create_dir_all(source.join("sub")).unwrap();
    // Files large enough for several packs, and small ones.
    for i in 0..2u64 {
        std::fs::write(source.join(format!("big{i}.bin")), random_bytes(10 << 20, 40 + i)).unwrap();
    }
    for i in 0..20u64 {
        std::fs::write(source.join(format!("sub/small{i}.txt")), random_bytes(2000 + i as usize * 10, i)).unwrap();
    }
    std::fs::write(
        &sb.config,
        format!(
            "default_location = \"hostile\"\n[location.hostile]\n{location_toml}\n[unit.data]\npaths = [\"{}\"]\n",
            source.display()
        ),
    )
    .unwrap();
    (sb, source)
}

#[test]
fn a_hostile_writer_on_a_local_location_gets_a_refusal_or_a_repair_never_a_wrong_byte() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let (sb, source) = sandbox(&format!("type = \"local\"\npath = \"{}\"\n", repo.display()));
    every_case(&sb, &Folder(repo), &source);
}

#[test]
fn a_hostile_writer_on_an_s3_location_gets_a_refusal_or_a_repair_never_a_wrong_byte() {
    let weed_dir = tempfile::tempdir().unwrap();
    let mut s3 = Seaweed::start(weed_dir.path());
    s3.create_bucket("hostile");
    let (sb, source) = sandbox(&s3.location_toml("hostile", "phone"));
    let hands = Filer {
        base: format!("http://127.0.0.1:{}/buckets/hostile/phone", s3.filer_port()),
        client: http().build().unwrap(),
    };
    every_case(&sb, &hands, &source);
}
