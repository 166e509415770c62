//! Writing file data pack by pack: each needed pack is read once (whole, or the needed ranges
//! when it is mostly unneeded), and every blob in it is written to every place it belongs.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use lifeboat_repository::{Id, Repository};
use rayon::prelude::*;

use super::fsops;
use super::plan::Item;
use crate::progress::Progress;

/// Applies a restored file's metadata; the flag says it was created new by this restore.
pub(crate) type Finish<'a> = dyn Fn(&File, &Item, bool) + Sync + 'a;

/// Ranges closer than this are read together.
const MERGE_GAP: u64 = 256 * 1024;
/// A read covers at most this much (several blobs), bounding each thread's memory.
const MAX_READ: u64 = 4 * 1024 * 1024;

struct FileState<'a> {
    item: &'a Item,
    /// Blob pieces still to write.
    remaining: AtomicUsize,
    failed: AtomicBool,
    /// Created new by this restore (see `fsops::create_file`).
    fresh: AtomicBool,
    /// Written to at its path by this restore.
    created: AtomicBool,
}

struct Need {
    blob: Id,
    offset: u32,
    length: u32,
    raw_length: u32,
    /// (file, offset in file) for every place this blob goes.
    places: Vec<(usize, u64)>,
}

/// Writes every file of `files`; returns the blobs it read and authenticated (a safety
/// backup made next may reuse exactly those without reading them again).
pub(crate) fn restore_files(
    repo: &Repository,
    files: &[&Item],
    unlink_first: bool,
    progress: &Progress,
    problem: &(dyn Fn(&Path, String) + Sync),
    finish: &Finish<'_>,
) -> HashSet<Id> {
    let verified = Mutex::new(HashSet::new());
    let states: Vec<FileState> = files
        .iter()
        .map(|item| FileState {
            item,
            remaining: AtomicUsize::new(item.node.content.len()),
            failed: AtomicBool::new(false),
            fresh: AtomicBool::new(false),
            created: AtomicBool::new(false),
        })
        .collect();
    let mut packs: HashMap<Id, HashMap<Id, Need>> = HashMap::new();
    for (fi, st) in states.iter().enumerate() {
        let mut at = 0u64;
        for blob in &st.item.node.content {
            match repo.locate(blob) {
                Some((pack, offset, length, raw_length)) => {
                    packs
                        .entry(pack)
                        .or_default()
                        .entry(*blob)
                        .or_insert_with(|| Need { blob: *blob, offset, length, raw_length, places: Vec::new() })
                        .places
                        .push((fi, at));
                    at += raw_length as u64;
                }
                None => {
                    st.failed.store(true, Ordering::Relaxed);
                    problem(&st.item.dest, format!("data blob {} is missing from the repository", blob.short()));
                    break;
                }
            }
        }
    }

    // Empty files, and files of several blobs, exist before any pack worker writes to them.
    states.par_iter().for_each(|st| {
        let n = st.item.node.content.len();
        if n == 1 || st.failed.load(Ordering::Relaxed) {
            return;
        }
        match fsops::create_file(&st.item.path, st.item.node.mode, unlink_first)
            .and_then(|(f, fresh)| f.set_len(st.item.node.size).map(|_| (f, fresh)))
        {
            Ok((f, fresh)) => {
                st.fresh.store(fresh, Ordering::Relaxed);
                st.created.store(true, Ordering::Relaxed);
                if n == 0 {
                    finish(&f, st.item, fresh);
                    progress.add(1, 0);
                }
            }
            Err(e) => {
                st.failed.store(true, Ordering::Relaxed);
                problem(&st.item.dest, format!("cannot create: {e}"));
            }
        }
    });

    let mut work: Vec<(Id, Vec<Need>)> = packs
        .into_iter()
        .map(|(p, needs)| {
            let mut v: Vec<Need> = needs.into_values().collect();
            v.sort_by_key(|n| n.offset);
            (p, v)
        })
        .collect();
    work.sort_by_key(|(p, _)| *p);
    // A blob whose copy in this pack cannot be used is read again from any other copy the
    // repository has (a safety backup stores a damaged blob again).
    let fallback = |n: &Need, why: String| match repo.read_blob(&n.blob) {
        Ok(plain) => {
            verified.lock().expect("verified lock").insert(n.blob);
            write_places(&states, n, &plain, unlink_first, progress, problem, finish);
        }
        Err(_) => fail_places(&states, n, problem, &why),
    };
    work.par_iter().for_each(|(pack, needs)| {
        for (start, end, group) in ranges(needs) {
            let bytes = match repo.read_pack_range(pack, start, end) {
                Ok(b) if b.len() as u64 == end - start => b,
                Ok(_) => {
                    group
                        .iter()
                        .for_each(|n| fallback(n, format!("pack {} is shorter than the index says", pack.short())));
                    continue;
                }
                Err(e) => {
                    group.iter().for_each(|n| fallback(n, format!("pack {} unreadable: {e}", pack.short())));
                    continue;
                }
            };
            group.par_iter().for_each(|n| {
                let s = (n.offset as u64 - start) as usize;
                let sealed = &bytes[s..s + n.length as usize];
                match repo.decode_blob(&n.blob, sealed, n.raw_length as usize) {
                    Ok(plain) => {
                        verified.lock().expect("verified lock").insert(n.blob);
                        write_places(&states, n, &plain, unlink_first, progress, problem, finish)
                    }
                    Err(e) => fallback(n, e.to_string()),
                }
            });
        }
    });
    // A file that could not be written whole is not left where it was being written: no wrong
    // byte stays behind under its name (in place, that is a staging copy, never swapped in).
    for st in &states {
        if st.failed.load(Ordering::Relaxed) && st.created.load(Ordering::Relaxed) {
            let _ = std::fs::remove_file(&st.item.path);
        }
    }
    verified.into_inner().expect("verified lock")
}

/// Groups needed blobs into read ranges of nearby blobs, each at most MAX_READ long (or one
/// blob, when a blob is larger).
fn ranges(needs: &[Need]) -> Vec<(u64, u64, &[Need])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < needs.len() {
        let start = needs[i].offset as u64;
        let mut end = start + needs[i].length as u64;
        let mut j = i + 1;
        while j < needs.len()
            && (needs[j].offset as u64) <= end + MERGE_GAP
            && needs[j].offset as u64 + needs[j].length as u64 - start <= MAX_READ
        {
            end = end.max(needs[j].offset as u64 + needs[j].length as u64);
            j += 1;
        }
        out.push((start, end, &needs[i..j]));
        i = j;
    }
    out
}

fn fail_places(states: &[FileState], n: &Need, problem: &(dyn Fn(&Path, String) + Sync), why: &str) {
    for (fi, _) in &n.places {
        let st = &states[*fi];
        if !st.failed.swap(true, Ordering::Relaxed) {
            problem(&st.item.dest, format!("not restored: {why}"));
        }
    }
}

fn write_places(
    states: &[FileState],
    n: &Need,
    plain: &[u8],
    unlink_first: bool,
    progress: &Progress,
    problem: &(dyn Fn(&Path, String) + Sync),
    finish: &Finish<'_>,
) {
    for (fi, at) in &n.places {
        let st = &states[*fi];
        if st.failed.load(Ordering::Relaxed) {
            continue;
        }
        let single = st.item.node.content.len() == 1;
        let opened = if single {
            fsops::create_file(&st.item.path, st.item.node.mode, unlink_first).map(|(f, fresh)| {
                st.fresh.store(fresh, Ordering::Relaxed);
                st.created.store(true, Ordering::Relaxed);
                f
            })
        } else {
            fsops::open_existing(&st.item.path)
        };
        let result = opened.and_then(|f| {
            let end = write_sparse(&f, plain, *at)?;
            // A new file ends at its last written byte: trailing zeros need the length set.
            if single && end < st.item.node.size {
                f.set_len(st.item.node.size)?;
            }
            Ok(f)
        });
        match result {
            Ok(f) => {
                crash_point();
                progress.add(0, plain.len() as u64);
                if st.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    finish(&f, st.item, st.fresh.load(Ordering::Relaxed));
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

/// Fault injection for the crash tests: with `LIFEBOAT_CRASH_AFTER_WRITES=N` in the
/// environment, the process aborts (no cleanup, like `kill -9`) after its N-th file write.
fn crash_point() {
    static LIMIT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let limit = LIMIT.get_or_init(|| std::env::var("LIFEBOAT_CRASH_AFTER_WRITES").ok().and_then(|v| v.parse().ok()));
    if let Some(n) = limit {
        if WRITES.fetch_add(1, Ordering::SeqCst) + 1 >= *n {
            std::process::abort();
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
