use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::{ObjectInfo, Store, StoreError, StoreResult};

/// Retries what a network location fails transiently (a dropped connection, a timeout, a
/// server asking to slow down), with exponential backoff and jitter.
///
/// Until the location has answered once, an unreachable host fails at once: a person who
/// typed a wrong address should not wait a minute to hear it. After that, a connection that
/// drops mid-backup is given [`Retrying::patience`] to come back.
pub struct Retrying<S> {
    inner: S,
    attempts: u32,
    first_delay: Duration,
    answered: AtomicBool,
}

impl<S: Store> Retrying<S> {
    pub fn new(inner: S) -> Self {
        Retrying { inner, attempts: 7, first_delay: Duration::from_millis(500), answered: AtomicBool::new(false) }
    }

    /// The longest a failing operation is retried before its error is reported.
    pub fn patience(&self) -> Duration {
        (0..self.attempts.saturating_sub(1)).map(|i| self.first_delay * 2u32.pow(i)).sum()
    }

    fn retry<T>(&self, mut op: impl FnMut() -> StoreResult<T>) -> StoreResult<T> {
        let mut delay = self.first_delay;
        let mut attempt = 1;
        loop {
            match op() {
                Ok(v) => {
                    self.answered.store(true, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(e) if e.is_not_found() => {
                    self.answered.store(true, Ordering::Relaxed);
                    return Err(e);
                }
                Err(e) => {
                    let worth_retrying = e.is_transient()
                        && (self.answered.load(Ordering::Relaxed) || !matches!(e, StoreError::Offline { .. }));
                    if !worth_retrying || attempt >= self.attempts {
                        return Err(e);
                    }
                    tracing::warn!(
                        "{e}; trying again in {:.1} s ({} of {} tries)",
                        delay.as_secs_f64(),
                        attempt + 1,
                        self.attempts
                    );
                    let jitter = Duration::from_millis(rand::random::<u64>() % (delay.as_millis() as u64 / 4 + 1));
                    std::thread::sleep(delay + jitter);
                    delay *= 2;
                    attempt += 1;
                }
            }
        }
    }
}

impl<S: Store> Store for Retrying<S> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn prepare(&self) -> StoreResult<()> {
        self.retry(|| self.inner.prepare())
    }
    fn write(&self, name: &str, data: &[u8]) -> StoreResult<()> {
        self.retry(|| self.inner.write(name, data))
    }
    fn write_shared(&self, name: &str, data: crate::Bytes) -> StoreResult<()> {
        self.retry(|| self.inner.write_shared(name, data.clone()))
    }
    fn write_new(&self, name: &str, data: &[u8]) -> StoreResult<bool> {
        self.retry(|| self.inner.write_new(name, data))
    }
    fn read(&self, name: &str, range: Option<Range<u64>>) -> StoreResult<Vec<u8>> {
        self.retry(|| self.inner.read(name, range.clone()))
    }
    fn stale_temporaries(&self, prefix: &str, age: std::time::Duration) -> StoreResult<Vec<String>> {
        self.inner.stale_temporaries(prefix, age)
    }
    fn readable_by_others(&self) -> StoreResult<Vec<String>> {
        self.inner.readable_by_others()
    }
    fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>> {
        self.retry(|| self.inner.list(prefix))
    }
    fn size(&self, name: &str) -> StoreResult<u64> {
        self.retry(|| self.inner.size(name))
    }
    fn remove(&self, name: &str) -> StoreResult<()> {
        self.retry(|| self.inner.remove(name))
    }
    fn connections(&self) -> usize {
        self.inner.connections()
    }
    fn write_concurrency(&self) -> usize {
        self.inner.write_concurrency()
    }
    fn free_space(&self) -> Option<u64> {
        self.inner.free_space()
    }
}
