//! The index must stay compact: a device with 1 GiB backs up a photo library or a mail store
//! of millions of blobs, and every command that reads blobs holds the index whole. This binary
//! counts every byte the process allocates (its own global allocator), so it holds this one
//! test only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use lifeboat_repository::{BlobKind, Reuse};

mod support;

use support::*;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on unchanged to the system allocator, which upholds the
// `GlobalAlloc` contract; the counters are only arithmetic beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's obligations for `alloc` are the system allocator's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` or `realloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `alloc` and `dealloc`: the system allocator's contract, unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

fn grew(bytes: usize) {
    let now = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

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
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    fresh.load_index().expect("load the index");
    let held = LIVE.load(Ordering::Relaxed).saturating_sub(before) / BLOBS;
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before) / BLOBS;
    eprintln!("the index of {BLOBS} blobs holds {held} bytes a blob, and took {peak} at its peak while loading");
    assert!(fresh.blob_count() >= BLOBS, "every blob is indexed");
    assert!(held <= HELD_PER_BLOB, "the index holds {held} bytes a blob (at most {HELD_PER_BLOB})");
    assert!(peak <= PEAK_PER_BLOB, "loading the index took {peak} bytes a blob at its peak (at most {PEAK_PER_BLOB})");
}
