//! The bounds on what a location holds, where they are easiest to miss: the config (read
//! without a listing), key slots read by check and repair, objects grown between their listing
//! and their read, old index files that must still be read, snapshots Lifeboat itself saves,
//! and an adoption that must stay as wide as the location.

use std::sync::{Arc, Mutex};

use lifeboat_repository::CheckOptions;
use lifeboat_storage::Store;

mod support;

use support::*;

const MIB: u64 = 1 << 20;

/// `config` is read whole, with no bound, by every open (`Repository::locate`): a planted
/// 4 GiB (or a sparse 1 TiB) file there costs every command on every device its memory.
/// The copies in the key slots stand in for a config that cannot be used, so nothing needs
/// more than a small object's worth of it.
#[test]
fn a_config_planted_larger_than_any_lifeboat_writes_is_not_read_whole() {
    let (store, repo) = new_repo();
    back_up(&repo, "first", b"an honest backup");
    store.write("config", &vec![0u8; (80 * MIB) as usize]).expect("plant");
    let watched = Watched::new(&store);
    let fresh = watched.open();
    assert_eq!(fresh.read_blob(&back_up(&fresh, "second", b"more")).expect("read"), b"more");
    let read = watched.read_of("config");
    assert!(read <= 2 * MIB, "the config is a few hundred bytes; {read} bytes of a planted one were read");
}

/// `check` and `check --repair` read every key slot whole (check.rs `check_key_slots`,
/// repair.rs key slots), unlike the open, `keys()` and the rest, which refuse a slot larger
/// than any Lifeboat writes from its listed size.
#[test]
fn check_and_repair_do_not_read_a_planted_huge_key_slot() {
    let (store, repo) = new_repo();
    back_up(&repo, "first", b"an honest backup");
    let planted = format!("keys/{}", "5".repeat(64));
    store.write(&planted, &vec![b' '; (80 * MIB) as usize]).expect("plant");
    let watched = Watched::new(&store);
    let fresh = watched.open();
    fresh.check(CheckOptions { read_data: false }, &|_| {}).expect("check");
    assert_eq!(watched.read_of(&planted), 0, "check read the planted key slot whole");
    fresh.repair(&|_| {}).expect("repair");
    assert_eq!(watched.read_of(&planted), 0, "repair read the planted key slot whole");
}

/// The bounds are applied to the sizes a listing gave, and the object is then read whole
/// (`read(name, None)`): one grown after the listing is read whole, whatever its size.
/// `check --read-data` lists the packs once and reads them over minutes or hours, so the
/// window is wide (`pack_read.rs` `read_whole_pack`, the branch `size <= usual_pack_len`;
/// the same in repair and in the tree cache's fetch of a pack).
#[test]
fn a_pack_grown_after_its_listing_is_not_read_whole_by_check() {
    let (store, repo) = new_repo();
    back_up(&repo, "first", b"an honest backup");
    let pack = objects(&store, "data")[0].clone();
    let watched = Watched::new(&store);
    let fresh = watched.open();
    *watched.grow.lock().expect("lock") = vec![("data".into(), pack.clone(), 200 << 20)];
    let _ = fresh.check(CheckOptions { read_data: true }, &|_| {});
    let read = watched.read_of(&pack);
    assert!(read <= 33 * MIB, "a pack is read within what a pack can be: read {read} bytes");
}

/// The same for index files and snapshots, read right after their listing
/// (`repo.rs` `read_named`).
#[test]
fn index_files_and_snapshots_grown_after_their_listing_are_not_read_whole() {
    let (store, repo) = new_repo();
    back_up(&repo, "first", b"an honest backup");
    let index = objects(&store, "index")[0].clone();
    let snapshot = objects(&store, "snapshots")[0].clone();
    let watched = Watched::new(&store);
    let fresh = watched.open();
    *watched.grow.lock().expect("lock") =
        vec![("index".into(), index.clone(), 200 << 20), ("snapshots".into(), snapshot.clone(), 200 << 20)];
    let _ = fresh.load_index();
    let _ = fresh.snapshots();
    let (index_read, snapshot_read) = (watched.read_of(&index), watched.read_of(&snapshot));
    assert!(
        index_read <= 65 * MIB && snapshot_read <= 65 * MIB,
        "read within their bound: an index file ({index_read} bytes), a snapshot ({snapshot_read})"
    );
}

/// Reads of packs in flight at once that a reader as wide as the location reaches.
const WIDE: usize = 8;

/// Adoption reserves, for each pack, the longest header a pack of its size could have
/// (`adopt.rs`: `budget.take(max_header_len(size, …).min(size))`, about 16.4 MB for a full
/// 16 MiB pack) against a budget of 32 MiB, before reading even its 4-byte trailer: the
/// packs an interrupted backup leaves (full ones) have their headers read two at a time
/// instead of `connections()` (16 on S3 and SFTP) at a time, though a real header is a few
/// KiB. A resumed backup waits on the adoption for the first blob the index lacks.
#[test]
fn adoption_reads_the_headers_of_full_packs_as_wide_as_the_location_takes() {
    let (store, repo) = new_repo();
    back_up(&repo, "first", b"an honest backup");
    // Packs an interrupted backup left, full size (their content does not matter here: the
    // reservation is made from the listed size, before any read).
    for i in 0..16 {
        let name = format!("data/{i:02x}/{i:02x}{}", "3".repeat(62));
        store.write(&name, &vec![0u8; 16 << 20]).expect("plant");
    }
    // Each read of a pack is held until WIDE are in flight (or five seconds passed).
    let in_flight = Arc::new((Mutex::new((0usize, false)), std::sync::Condvar::new()));
    let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (gate, seen) = (in_flight.clone(), most.clone());
    let hold = move |name: &str| {
        if !name.starts_with("data/") {
            return;
        }
        let (lock, changed) = &*gate;
        let mut state = lock.lock().expect("lock");
        state.0 += 1;
        seen.fetch_max(state.0, std::sync::atomic::Ordering::SeqCst);
        if state.0 >= WIDE {
            state.1 = true;
        }
        changed.notify_all();
        let deadline = std::time::Duration::from_secs(5);
        let (mut state, _) = changed.wait_timeout_while(state, deadline, |(_, released)| !*released).expect("lock");
        state.0 -= 1;
    };
    // As many requests at once as S3 and SFTP take.
    let remote = Arc::new(Watched::holding(&store, Some(Box::new(hold)), 16));
    let fresh = remote.open();
    back_up(&fresh, "second", b"a backup that adopts");
    let most = most.load(std::sync::atomic::Ordering::SeqCst);
    assert!(most >= WIDE, "pack headers were read {most} at a time, of the 16 the location takes");
}

/// `limits::MAX_SNAPSHOT` holds on reading only: `save_snapshot` writes a snapshot of any
/// size, and a backup keeps one warning per file it could not read or that changed while
/// read (engine `Archiver::warn`, unbounded). A backup with millions of warnings is saved,
/// reported finished, then listed as unreadable: it cannot be restored, and `prune` stops
/// for good ("prune stops rather than drop data an unreadable backup may need").
#[test]
fn a_snapshot_lifeboat_saves_is_one_it_reads_back() {
    let (_store, repo) = new_repo();
    back_up(&repo, "first", b"an honest backup");
    let mut snap = repo.snapshots().expect("list").0.remove(0).1;
    // Warnings as paths are: little repetition between them (random here, 6 bits a byte).
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    snap.units[0].warnings = (0..900_000)
        .map(|_| {
            (0..100)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    ALPHABET[(x % 64) as usize] as char
                })
                .collect()
        })
        .collect();
    snap.slug = "many-warnings".into();
    let saved = repo.save_snapshot(&snap).expect("saved, and reported finished");
    let (listed, unreadable) = repo.snapshots().expect("list");
    assert!(unreadable.is_empty(), "a snapshot Lifeboat saved is refused on reading: {unreadable:?}");
    assert!(listed.iter().any(|(i, _)| *i == saved));
}
