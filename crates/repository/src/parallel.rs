//! Waiting on a location in parallel: a few threads that each take the next request, so that
//! reading a hundred small objects costs a few round trips of time, not a hundred.
//!
//! Not rayon's pool: its threads are as many as the cores and meant for work that keeps them
//! busy, while these mostly wait on the network, as many as the location takes at once
//! ([`lifeboat_storage::Store::connections`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// What a scoped thread returned; its panic goes on in the caller.
pub(crate) fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// `f` of every item, on at most `threads` threads; the results in the items' order.
pub(crate) fn map<T: Sync, R: Send>(threads: usize, items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results.lock().expect("results lock")[i] = Some(r);
            });
        }
    });
    results.into_inner().expect("results lock").into_iter().flatten().collect()
}

/// `f` of every item, on at most `threads` threads, taken in the items' order.
pub(crate) fn for_each<T: Sync>(threads: usize, items: &[T], f: impl Fn(&T) + Sync) {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        items.iter().for_each(&f);
        return;
    }
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                    f(item);
                }
            });
        }
    });
}

/// Bytes that may be held at once by work fetched ahead of its use: a thread takes its share
/// before fetching and gives it back once the bytes are used, and waits while the rest is
/// taken. One share larger than the whole budget is let through alone, so nothing waits for
/// ever.
pub(crate) struct Budget {
    limit: u64,
    taken: Mutex<u64>,
    freed: Condvar,
}

impl Budget {
    pub(crate) fn new(limit: u64) -> Budget {
        Budget { limit, taken: Mutex::new(0), freed: Condvar::new() }
    }

    /// Waits until `bytes` fit, takes them, and gives them back when the guard is dropped.
    pub(crate) fn take(&self, bytes: u64) -> Share<'_> {
        let mut taken = self.taken.lock().expect("budget lock");
        while *taken > 0 && *taken + bytes > self.limit {
            taken = self.freed.wait(taken).expect("budget lock");
        }
        *taken += bytes;
        Share { budget: self, bytes }
    }
}

pub(crate) struct Share<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        let mut taken = self.budget.taken.lock().expect("budget lock");
        *taken -= self.bytes;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    #[test]
    fn work_in_flight_stays_inside_its_budget() {
        let budget = super::Budget::new(100);
        let held = AtomicU64::new(0);
        let most = AtomicU64::new(0);
        let done = AtomicUsize::new(0);
        let sizes: Vec<u64> = (0..200).map(|i| [10, 40, 70, 150][i % 4]).collect();
        super::for_each(8, &sizes, |&n| {
            let _share = budget.take(n);
            let now = held.fetch_add(n, Ordering::SeqCst) + n;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::yield_now();
            held.fetch_sub(n, Ordering::SeqCst);
            done.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(done.load(Ordering::SeqCst), sizes.len());
        // The one share above the limit runs alone; every other moment stays within it.
        assert!(most.load(Ordering::SeqCst) <= 150, "{}", most.load(Ordering::SeqCst));
    }

    #[test]
    fn every_item_is_mapped_once_and_in_order() {
        let items: Vec<u32> = (0..1000).collect();
        let out = super::map(7, &items, |i| i * 2);
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(super::map(4, &[] as &[u32], |i| *i).is_empty());
    }
}
