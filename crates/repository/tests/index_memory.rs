//! The index must stay compact: a device with 1 GiB backs up a photo library or a mail store
//! of millions of blobs, and every command that reads blobs holds the index whole. This binary
//! counts every byte the process allocates (its own global allocator), so it holds this one
//! test only.

use lifeboat_storage::counting_alloc::Counting;

use lifeboat_repository::{BlobKind, Reuse};

mod support;

use support::*;

#[global_allocator]
static ALLOCATOR: Counting = Counting::new();

/// Blobs in the repository: enough that what each costs outweighs everything fixed.
const BLOBS: usize = 300_000;

/// Backups that stored them, each with its own index file.
const BACKUPS: usize = 30;

/// What the loaded index may hold for each blob: its 32-byte id and its place (pack, offset,
/// lengths, kind), packed in a sorted array, and a little for the lookup table over it. A
/// hash map of the same entries held 84 bytes a blob here.
const HELD_PER_BLOB: usize = 60;

/// What loading may take at its peak for each blob. Index files read all at once before any
/// was merged, and a hash map growing by doubling, took 259 bytes a blob here.
const PEAK_PER_BLOB: usize = 80;

#[test]
fn the_loaded_index_holds_a_few_dozen_bytes_a_blob() {
    let (store, repo) = new_repo();
    // One index file a backup, as a device makes them night after night: loading holds a few
    // files at a time, never all of them.
    for backup in 0..BACKUPS {
        let session = repo.write_session(take(), Reuse::Indexed).expect("session");
        for i in 0..(BLOBS / BACKUPS) as u64 {
            let n = (backup * BLOBS / BACKUPS) as u64 + i;
            session.writer().add(BlobKind::Data, &n.to_le_bytes()).expect("add");
        }
        session.commit(|_| snapshot(&format!("night-{backup}"), vec![])).expect("commit");
    }
    drop(repo);

    let fresh = reopen(&store);
    let before = ALLOCATOR.live();
    ALLOCATOR.restart_peak();
    fresh.load_index().expect("load the index");
    let held = ALLOCATOR.live().saturating_sub(before) / BLOBS;
    let peak = ALLOCATOR.peak().saturating_sub(before) / BLOBS;
    eprintln!("the index of {BLOBS} blobs holds {held} bytes a blob, and took {peak} at its peak while loading");
    assert!(fresh.blob_count() >= BLOBS, "every blob is indexed");
    assert!(held <= HELD_PER_BLOB, "the index holds {held} bytes a blob (at most {HELD_PER_BLOB})");
    assert!(peak <= PEAK_PER_BLOB, "loading the index took {peak} bytes a blob at its peak (at most {PEAK_PER_BLOB})");
}
