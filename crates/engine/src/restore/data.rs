//! Writing file data: the repository reads each needed blob once, pack by pack
//! ([`Repository::read_blobs`]), and each is written to every place it belongs.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use lifeboat_repository::{Id, Repository};
use rayon::prelude::*;

use super::plan::Item;
use crate::progress::Progress;

/// Applies a restored file's metadata; the flag says it was created new by this restore.
pub(crate) type Finish<'a> = dyn Fn(&File, &Item, bool) + Sync + 'a;

/// How files are put on the disk: each is a new file this restore creates, written in
/// pieces, each piece into the same inode.
pub(crate) struct Placement<'a> {
    /// Creates the (new, empty) file an item's data goes to.
    pub create: &'a (dyn Fn(&Item) -> std::io::Result<File> + Sync + 'a),
    /// Opens again the file created for an item, as the inode given.
    pub reopen: &'a (dyn Fn(&Item, u64) -> std::io::Result<File> + Sync + 'a),
    /// Removes what was created for an item that could not be written whole.
    pub discard: &'a (dyn Fn(&Item) + Sync + 'a),
}

struct FileState<'a> {
    item: &'a Item,
    /// Blob pieces still to write.
    remaining: AtomicUsize,
    failed: AtomicBool,
    /// Its inode, once created: a piece is written only into that file.
    ino: AtomicU64,
    /// Created by this restore.
    created: AtomicBool,
}

/// Writes every file of `files`; returns the blobs it read and authenticated (a safety
/// backup made next may reuse exactly those without reading them again).
pub(crate) fn restore_files(
    repo: &Repository,
    files: &[&Item],
    placement: &Placement<'_>,
    progress: &Progress,
    problem: &(dyn Fn(&Path, String) + Sync),
    finish: &Finish<'_>,
) -> HashSet<Id> {
    let states: Vec<FileState> = files
        .iter()
        .map(|item| FileState {
            item,
            remaining: AtomicUsize::new(item.node.content.len()),
            failed: AtomicBool::new(false),
            ino: AtomicU64::new(0),
            created: AtomicBool::new(false),
        })
        .collect();
    // Every blob wanted, once, sorted; then every place each goes, sorted by blob. Flat lists
    // of small entries rather than a map of lists: they hold an entry per file of the restore
    // (300,000 on a small device), so a place names its blob and file by their positions.
    let known = |blob: &Id| repo.blob_length(blob).is_some();
    let mut wanted: Vec<Id> =
        states.iter().flat_map(|st| st.item.node.content.iter()).filter(|b| known(b)).copied().collect();
    wanted.sort_unstable();
    wanted.dedup();
    wanted.shrink_to_fit();
    // Positions fit a place's u32 fields: a restore of four billion files or blobs would not
    // fit in memory long before.
    let fits = u32::try_from(states.len()).is_ok() && u32::try_from(wanted.len()).is_ok();
    let mut places: Vec<Place> = Vec::with_capacity(states.iter().map(|st| st.item.node.content.len()).sum());
    for (fi, st) in states.iter().enumerate() {
        let mut at = 0u64;
        for blob in &st.item.node.content {
            match (repo.blob_length(blob), wanted.binary_search(blob)) {
                (Some(length), Ok(w)) if fits => {
                    places.push(Place { blob: w as u32, file: fi as u32, at });
                    at += length;
                }
                (Some(_), Ok(_)) => {
                    st.failed.store(true, Ordering::Relaxed);
                    problem(&st.item.dest, "not restored: more files than one restore can hold".to_string());
                    break;
                }
                _ => {
                    st.failed.store(true, Ordering::Relaxed);
                    problem(&st.item.dest, format!("data blob {} is missing from the repository", blob.short()));
                    break;
                }
            }
        }
    }
    places.sort_unstable_by_key(|p| p.blob);
    let places_of = |w: usize| {
        let start = places.partition_point(|p| (p.blob as usize) < w);
        let end = start + places[start..].partition_point(|p| p.blob as usize == w);
        &places[start..end]
    };

    // Empty files, and files of several blobs, exist before any pack worker writes to them.
    states.par_iter().for_each(|st| {
        let n = st.item.node.content.len();
        if n == 1 || st.failed.load(Ordering::Relaxed) {
            return;
        }
        match (placement.create)(st.item)
            .and_then(|f| created(st, f))
            .and_then(|f| f.set_len(st.item.node.size).map(|_| f))
        {
            Ok(f) => {
                if n == 0 {
                    finish(&f, st.item, true);
                    progress.add(1, 0);
                }
            }
            Err(e) => {
                st.failed.store(true, Ordering::Relaxed);
                problem(&st.item.dest, format!("cannot create: {e}"));
            }
        }
    });

    let verified: Vec<AtomicBool> = wanted.iter().map(|_| AtomicBool::new(false)).collect();
    let on_blob = |id: &Id, read: lifeboat_repository::RepoResult<Vec<u8>>| {
        // Interrupted: nothing more is written (the restore removes what it wrote).
        if progress.is_cancelled() {
            return;
        }
        let Ok(w) = wanted.binary_search(id) else { return };
        let places = places_of(w);
        match read {
            Ok(plain) => {
                verified[w].store(true, Ordering::Relaxed);
                write_places(&states, places, &plain, placement, progress, problem, finish);
            }
            Err(e) => fail_places(&states, places, problem, &e.to_string()),
        }
    };
    if let Err(e) = repo.read_blobs(&wanted, &on_blob) {
        fail_places(&states, &places, problem, &e.to_string());
    }
    // A file that could not be written whole is not left where it was being written: no wrong
    // byte stays behind under its name (in place, that is a staging copy, never swapped in).
    for st in &states {
        if st.failed.load(Ordering::Relaxed) && st.created.load(Ordering::Relaxed) {
            (placement.discard)(st.item);
        }
    }
    drop(places);
    wanted.iter().zip(&verified).filter(|(_, v)| v.load(Ordering::Relaxed)).map(|(id, _)| *id).collect()
}

/// Notes a file as created, as the inode it is.
fn created(st: &FileState, f: File) -> std::io::Result<File> {
    st.ino.store(std::os::unix::fs::MetadataExt::ino(&f.metadata()?), Ordering::Release);
    st.created.store(true, Ordering::Relaxed);
    Ok(f)
}

/// A piece of a file: where one blob of its content goes.
struct Place {
    /// Index of the blob in the wanted list.
    blob: u32,
    /// Index of the file in the restore's list.
    file: u32,
    /// Offset in the file.
    at: u64,
}

fn fail_places(states: &[FileState], places: &[Place], problem: &(dyn Fn(&Path, String) + Sync), why: &str) {
    for p in places {
        let st = &states[p.file as usize];
        if !st.failed.swap(true, Ordering::Relaxed) {
            problem(&st.item.dest, format!("not restored: {why}"));
        }
    }
}

fn write_places(
    states: &[FileState],
    places: &[Place],
    plain: &[u8],
    placement: &Placement<'_>,
    progress: &Progress,
    problem: &(dyn Fn(&Path, String) + Sync),
    finish: &Finish<'_>,
) {
    for p in places {
        let st = &states[p.file as usize];
        if st.failed.load(Ordering::Relaxed) {
            continue;
        }
        let single = st.item.node.content.len() == 1;
        let opened = if single {
            (placement.create)(st.item).and_then(|f| created(st, f))
        } else {
            (placement.reopen)(st.item, st.ino.load(Ordering::Acquire))
        };
        let result = opened.and_then(|f| {
            let end = write_sparse(&f, plain, p.at)?;
            // A new file ends at its last written byte: trailing zeros need the length set.
            if single && end < st.item.node.size {
                f.set_len(st.item.node.size)?;
            }
            Ok(f)
        });
        match result {
            Ok(f) => {
                lifeboat_storage::faults::write_point();
                progress.add(0, plain.len() as u64);
                if st.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    finish(&f, st.item, true);
                    progress.add(1, 0);
                }
            }
            Err(e) => {
                if !st.failed.swap(true, Ordering::Relaxed) {
                    problem(&st.item.dest, format!("cannot write: {e}"));
                }
            }
        }
    }
}

/// Writes `data` at `offset`, leaving every block of zeros as a hole (the file was already
/// sized, so skipped blocks read back as zeros). Returns the end of the last byte written.
fn write_sparse(f: &File, data: &[u8], offset: u64) -> std::io::Result<u64> {
    const BLOCK: usize = 4096;
    let mut written_end = offset;
    let mut run_start: Option<usize> = None;
    let mut at = 0;
    while at <= data.len() {
        let end = (at + BLOCK).min(data.len());
        let zero = at == data.len() || is_zero(&data[at..end]);
        match (zero, run_start) {
            (false, None) => run_start = Some(at),
            (true, Some(start)) => {
                f.write_all_at(&data[start..at], offset + start as u64)?;
                written_end = offset + at as u64;
                run_start = None;
            }
            _ => {}
        }
        if at == data.len() {
            break;
        }
        at = end;
    }
    Ok(written_end)
}

/// Whether a block is all zeros: word-wise, without an early exit, so it vectorises.
fn is_zero(block: &[u8]) -> bool {
    let (words, rest) = block.split_at(block.len() - block.len() % 8);
    let acc = words
        .chunks_exact(8)
        .fold(0u64, |a, w| a | u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]));
    acc == 0 && rest.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_blocks_become_holes_and_data_lands_where_it_belongs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = File::create(&path).unwrap();
        let mut data = vec![0u8; 5 * 4096 + 100];
        data[4096 + 7] = 1;
        data[5 * 4096 + 99] = 2;
        f.set_len(10 + data.len() as u64).unwrap();
        assert_eq!(write_sparse(&f, &data, 10).unwrap(), 10 + data.len() as u64);
        let mut back = std::fs::read(&path).unwrap();
        assert_eq!(back.split_off(10), data);
        assert!(is_zero(&[0; 13]) && !is_zero(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
    }
}
