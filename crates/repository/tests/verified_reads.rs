//! Every way the repository's surface reads a blob refuses bytes that are not the blob they
//! claim to be: a pack swapped for another of the same length (both authenticate under the
//! key, so only the id check can tell) and a pack with one flipped byte. And a file planted
//! under `data/` costs a bounded read, whatever its trailer claims.

use std::sync::{Arc, Mutex};

use lifeboat_repository::{BlobKind, BlobPayload, CheckOptions, Id, RepoError, Repository, Reuse, Tree};
use lifeboat_storage::{MemoryStore, Store};

mod support;

use support::*;

/// Bytes that do not compress (stored raw), different for each seed.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Runs `make` as one backup and returns the one data pack it added.
fn new_pack(store: &MemoryStore, make: impl FnOnce()) -> String {
    let before = objects(store, "data");
    make();
    let added: Vec<String> = objects(store, "data").into_iter().filter(|p| !before.contains(p)).collect();
    assert_eq!(added.len(), 1, "one backup, one pack: {added:?}");
    added[0].clone()
}

/// Gives each of two packs the other's bytes.
fn swap(store: &MemoryStore, a: &str, b: &str) {
    let (x, y) = (store.read(a, None).expect("read"), store.read(b, None).expect("read"));
    assert_eq!(x.len(), y.len(), "the swapped packs are of one length, as the attack needs");
    store.write(a, &y).expect("write");
    store.write(b, &x).expect("write");
}

fn flip(store: &MemoryStore, pack: &str) {
    store.tamper(pack, |bytes| bytes[45] ^= 0x20).expect("tamper");
}

/// Four backups of one blob each: two raw of one length, two compressed of one length.
fn four_backups(store: &Arc<MemoryStore>, repo: &Repository) -> [(Id, String); 4] {
    let datas = [noise(5000, 1), noise(5000, 2), b"a".repeat(6000), b"b".repeat(6000)];
    let mut out = Vec::new();
    for (i, data) in datas.iter().enumerate() {
        let mut id = None;
        let pack = new_pack(store, || id = Some(back_up(repo, &format!("b{i}"), data)));
        out.push((id.expect("backed up"), pack));
    }
    out.try_into().expect("four")
}

/// Asserts that every blob-reading function of the surface refuses each of `ids`.
fn every_read_refuses(repo: &Repository, ids: &[Id], case: &str) {
    for id in ids {
        let refused = |r: Result<(), RepoError>, how: &str| {
            let e = r.expect_err(&format!("{case}: {how} of blob {} is refused", id.short()));
            assert!(e.to_string().contains(&id.short()), "{case}: {how} names the blob: {e}");
        };
        refused(repo.read_blob(id).map(drop), "read_blob");
        refused(repo.read_blob_payload(id).map(drop), "read_blob_payload");
        refused(repo.read_tree(id).map(drop), "read_tree");
    }
    let given = Mutex::new(Vec::new());
    repo.read_blobs(ids, &|id, r| given.lock().expect("lock").push((*id, r.is_ok()))).expect("read_blobs");
    let given = given.into_inner().expect("lock");
    assert_eq!(given.len(), ids.len(), "{case}: read_blobs gives each blob once");
    assert!(given.iter().all(|(_, ok)| !ok), "{case}: read_blobs gives each as an error: {given:?}");
    let report = repo.check(CheckOptions { read_data: true }, &|_| {}).expect("check");
    let affected: Vec<&String> = report.problems.iter().flat_map(|p| &p.affected).collect();
    for i in 0..ids.len() {
        assert!(
            affected.iter().any(|a| a.contains(&format!("backup b{i},"))),
            "{case}: check names backup b{i}: {:?}",
            report.problems
        );
    }
}

#[test]
fn every_blob_read_refuses_a_pack_swapped_for_another_of_the_same_length() {
    let (store, repo) = new_repo();
    let [(a, pa), (b, pb), (c, pc), (d, pd)] = four_backups(&store, &repo);
    // Unharmed, each reads, as a payload too: raw for the noise, a zstd frame for the rest.
    assert!(matches!(repo.read_blob_payload(&a).expect("payload"), BlobPayload::Raw(_)));
    assert!(matches!(repo.read_blob_payload(&c).expect("payload"), BlobPayload::Zstd(_)));
    swap(&store, &pa, &pb);
    swap(&store, &pc, &pd);
    every_read_refuses(&reopen(&store), &[a, b, c, d], "swapped packs");
}

#[test]
fn every_blob_read_refuses_a_pack_with_a_flipped_byte() {
    let (store, repo) = new_repo();
    let backups = four_backups(&store, &repo);
    for (_, pack) in &backups {
        flip(&store, pack);
    }
    every_read_refuses(&reopen(&store), &backups.map(|(id, _)| id), "flipped byte");
}

#[test]
fn a_folder_listing_from_the_cache_or_its_pack_is_refused_when_swapped() {
    let (store, repo) = new_repo();
    let cache = tempfile::tempdir().expect("tempdir");
    // Listings in packs of their own; two whose packs are of one length are swapped.
    let mut trees: Vec<(Id, String, String)> = ["aaaa", "bbbb", "cccc", "dddd", "eeee", "ffff"]
        .iter()
        .map(|name| {
            let tree = Tree { nodes: vec![file(name, Vec::new(), 0)] };
            let before = objects(&store, "data");
            let session = repo.write_session(take(), Reuse::Indexed).expect("session");
            let (id, _) = session.writer().add(BlobKind::Tree, &Repository::encode_tree(&tree)).expect("add");
            session.commit(|_| snapshot(name, vec![file(name, Vec::new(), 0)])).expect("commit");
            let pack = objects(&store, "data").into_iter().find(|p| !before.contains(p)).expect("a pack");
            (id, pack, name.to_string())
        })
        .collect();
    let len = |p: &String| store.read(p, None).expect("read").len();
    trees.sort_by_key(|(_, p, _)| len(p));
    let pair = trees.windows(2).position(|w| len(&w[0].1) == len(&w[1].1)).expect("two packs of one length");
    let trees = &trees[pair..pair + 2];
    swap(&store, &trees[0].1, &trees[1].1);
    let trees: Vec<(Id, String)> = trees.iter().map(|(id, _, name)| (*id, name.clone())).collect();
    let fresh = reopen(&store);
    fresh.use_cache(cache.path(), 1 << 30);
    // A pack's header names what it really holds, so the cache may learn the other listing
    // under its right id: a read either is refused or gives exactly the listing its id names.
    let mut refused = 0;
    for (id, name) in &trees {
        // The first read fetches the whole pack into the cache; the second is served from it.
        for attempt in ["from its pack", "from the cache"] {
            match fresh.read_tree(id) {
                Ok(tree) => assert_eq!(tree.nodes[0].name.0, name.as_bytes(), "{attempt}: only the right listing"),
                Err(e) => {
                    assert!(e.to_string().contains(&id.short()), "{attempt}: names the listing: {e}");
                    refused += 1;
                }
            }
        }
    }
    assert!(refused >= 2, "the listing whose pack went to the other is refused both times");
}

#[test]
fn prune_refuses_to_carry_a_swapped_blob_into_a_new_pack_and_deletes_nothing() {
    let (store, repo) = new_repo();
    // Each pack holds a blob a backup keeps and a larger one no backup needs, so prune
    // rewrites both packs.
    let mut packs = Vec::new();
    for (i, seed) in [(0, 10), (1, 20)] {
        let pack = new_pack(&store, || {
            let session = repo.write_session(take(), Reuse::Indexed).expect("session");
            let (kept, _) = session.writer().add(BlobKind::Data, &noise(3000, seed)).expect("add");
            session.writer().add(BlobKind::Data, &noise(9000, seed + 1)).expect("add");
            session.commit(|_| snapshot(&format!("k{i}"), vec![file("f", vec![kept], 3000)])).expect("commit");
        });
        packs.push(pack);
    }
    swap(&store, &packs[0], &packs[1]);
    let before = store.names();
    let e = reopen(&store).prune(WAIT, &|_| {}).expect_err("prune refuses to repack a swapped blob");
    assert!(matches!(e, RepoError::Corrupt { .. }), "named as damage: {e}");
    let after = store.names();
    assert!(before.iter().all(|n| n.starts_with("locks/") || after.contains(n)), "nothing was deleted");
    // Put right, every byte is still there.
    swap(&store, &packs[0], &packs[1]);
    assert!(reopen(&store).check(CheckOptions { read_data: true }, &|_| {}).expect("check").is_clean());
}

#[test]
fn a_planted_pack_costs_a_bounded_read_whatever_its_trailer_claims() {
    let (store, repo) = new_repo();
    back_up(&repo, "first", b"an honest backup");
    // Files under data/ with names of packs, 64 MiB each, whose trailers claim a header as
    // long as the file, half of it, and just below what a pack can hold.
    const SIZE: u64 = 64 << 20;
    let mut planted = Vec::new();
    for (i, claim) in [SIZE - 4, SIZE / 2, 16_000_000].into_iter().enumerate() {
        let mut bytes = vec![0u8; SIZE as usize];
        bytes[SIZE as usize - 4..].copy_from_slice(&(claim as u32).to_le_bytes());
        let name = format!("data/0{i}/0{i}{}", "7".repeat(62));
        store.write(&name, &bytes).expect("plant");
        planted.push(name);
    }
    let counting = Watched::new(&store);
    let fresh = counting.open();
    // A backup adopts what no index lists: it reads each planted trailer, and a header only
    // where one that long fits a pack.
    back_up(&fresh, "second", b"made beside the planted files");
    let read = counting.reads();
    let of = |name: &String| read.get(name).copied().unwrap_or(0);
    assert_eq!(of(&planted[0]), 4, "a header as long as the file is not read: {read:?}");
    assert_eq!(of(&planted[1]), 4, "half the file is more than a header can be: {read:?}");
    assert!(of(&planted[2]) <= 16_000_004, "within what a pack's header can be: {read:?}");
    // check and repair read them within the same bounds, and prune removes them.
    fresh.check(CheckOptions { read_data: true }, &|_| {}).expect("check");
    fresh.repair(&|_| {}).expect("repair");
    let read = counting.reads();
    let total: u64 = planted.iter().map(of).sum();
    assert!(total < 3 * 16_000_004 + 24, "check and repair read them within bounds too: {read:?}");
    fresh.prune(WAIT, &|_| {}).expect("prune");
    assert!(planted.iter().all(|p| !store.names().contains(p)), "prune removed them");
}

#[test]
fn files_planted_larger_than_any_lifeboat_writes_are_not_read() {
    let (store, repo) = new_repo();
    back_up(&repo, "first", b"an honest backup");
    // Each above its kind's bound: 256 MiB for an index file (old builds wrote large ones),
    // 64 MiB for a snapshot, 1 MiB for a key slot or a lock.
    let planted: Vec<String> =
        ["index", "snapshots", "keys", "locks"].iter().map(|folder| format!("{folder}/{}", "5".repeat(64))).collect();
    for name in &planted {
        let size = if name.starts_with("index/") { 260 << 20 } else { 80 << 20 };
        store.write(name, &vec![0u8; size]).expect("plant");
    }
    let counting = Watched::new(&store);
    let fresh = counting.open();
    let (snapshots, unreadable) = fresh.snapshots().expect("list");
    assert_eq!(snapshots.len(), 1, "the real backup lists");
    assert!(unreadable.iter().any(|(n, e)| *n == planted[1] && e.to_string().contains("not read")), "{unreadable:?}");
    back_up(&fresh, "second", b"a backup beside them");
    fresh.keys().expect("keys");
    fresh.remove_stale_locks().expect("stale locks");
    let read = counting.reads();
    for name in &planted {
        assert_eq!(read.get(name), None, "{name} is refused from its listed size, never read: {read:?}");
    }
}
