//! Waiting on a location in parallel: a few threads that each take the next request, so that
//! reading a hundred small objects costs a few round trips of time, not a hundred.
//!
//! Not rayon's pool: its threads are as many as the cores and meant for work that keeps them
//! busy, while these mostly wait on the network, as many as the location takes at once
//! ([`lifeboat_storage::Store::connections`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

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

#[cfg(test)]
mod tests {
    #[test]
    fn every_item_is_mapped_once_and_in_order() {
        let items: Vec<u32> = (0..1000).collect();
        let out = super::map(7, &items, |i| i * 2);
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(super::map(4, &[] as &[u32], |i| *i).is_empty());
    }
}
