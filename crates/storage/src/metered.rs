use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{ObjectInfo, Store, StoreResult};

/// Bytes that crossed to and from a location.
#[derive(Debug, Default)]
pub struct Traffic {
    sent: AtomicU64,
    received: AtomicU64,
}

impl Traffic {
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// Counts the bytes sent to and read from a location, and keeps uploads under an optional
/// bandwidth limit (so a backup does not fill a home's uplink).
pub struct Metered<S> {
    inner: S,
    traffic: Arc<Traffic>,
    limit: Option<u64>,
    // When the line is next free, at the limited rate.
    next_free: Mutex<Instant>,
    /// `connections = N` of the location: requests at once, uploads included.
    connections: Option<usize>,
}

impl<S: Store> Metered<S> {
    /// `upload_limit`: bytes per second, or `None` for as fast as the line goes.
    pub fn new(inner: S, upload_limit: Option<u64>) -> Self {
        Metered {
            inner,
            traffic: Arc::default(),
            limit: upload_limit.filter(|l| *l > 0),
            next_free: Mutex::new(Instant::now()),
            connections: None,
        }
    }

    /// Sets how many requests go to the location at once (reads, and at most as many uploads).
    pub fn with_connections(mut self, connections: Option<usize>) -> Self {
        self.connections = connections.filter(|n| *n > 0);
        self
    }

    pub fn traffic(&self) -> Arc<Traffic> {
        self.traffic.clone()
    }

    /// Waits until sending `bytes` keeps the average rate under the limit.
    fn pace(&self, bytes: usize) {
        let Some(limit) = self.limit else { return };
        let cost = Duration::from_secs_f64(bytes as f64 / limit as f64);
        let start = {
            let Ok(mut next) = self.next_free.lock() else { return };
            let start = (*next).max(Instant::now());
            *next = start + cost;
            start
        };
        let now = Instant::now();
        if start > now {
            std::thread::sleep(start - now);
        }
    }

    fn sent(&self, n: usize) {
        self.traffic.sent.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Runs one request and logs it at debug level with its time, so that
/// `LIFEBOAT_LOG=lifeboat_storage=debug` shows every request a command makes of a location
/// and which ones waited.
fn logged<T>(op: &str, name: impl std::fmt::Display, f: impl FnOnce() -> StoreResult<T>) -> StoreResult<T> {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return f();
    }
    let start = Instant::now();
    let result = f();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let outcome = if result.is_ok() { "ok" } else { "failed" };
    tracing::debug!("{op} {name}: {outcome} in {ms:.1} ms");
    result
}

impl<S: Store> Store for Metered<S> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn prepare(&self) -> StoreResult<()> {
        self.inner.prepare()
    }
    fn write(&self, name: &str, data: &[u8]) -> StoreResult<()> {
        self.pace(data.len());
        logged("write", name, || self.inner.write(name, data))?;
        self.sent(data.len());
        Ok(())
    }
    fn write_shared(&self, name: &str, data: crate::Bytes) -> StoreResult<()> {
        let len = data.len();
        self.pace(len);
        logged("write", name, || self.inner.write_shared(name, data))?;
        self.sent(len);
        Ok(())
    }
    fn write_new(&self, name: &str, data: &[u8]) -> StoreResult<bool> {
        self.pace(data.len());
        let created = logged("write_new", name, || self.inner.write_new(name, data))?;
        self.sent(data.len());
        Ok(created)
    }
    fn read(&self, name: &str, range: Option<Range<u64>>) -> StoreResult<Vec<u8>> {
        let (start, end) = range.as_ref().map_or((0, 0), |r| (r.start, r.end));
        let data = match range {
            Some(_) => logged("read", format_args!("{name} [{start}..{end}]"), || self.inner.read(name, range))?,
            None => logged("read", name, || self.inner.read(name, range))?,
        };
        self.traffic.received.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(data)
    }
    fn stale_temporaries(&self, prefix: &str, age: std::time::Duration) -> StoreResult<Vec<String>> {
        self.inner.stale_temporaries(prefix, age)
    }
    fn readable_by_others(&self) -> StoreResult<Vec<String>> {
        self.inner.readable_by_others()
    }
    fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>> {
        logged("list", prefix, || self.inner.list(prefix))
    }
    fn size(&self, name: &str) -> StoreResult<u64> {
        logged("size", name, || self.inner.size(name))
    }
    fn remove(&self, name: &str) -> StoreResult<()> {
        logged("remove", name, || self.inner.remove(name))
    }
    fn connections(&self) -> usize {
        self.connections.unwrap_or_else(|| self.inner.connections())
    }
    fn write_concurrency(&self) -> usize {
        match self.connections {
            Some(n) => n,
            None => self.inner.write_concurrency(),
        }
    }
    fn free_space(&self) -> Option<u64> {
        self.inner.free_space()
    }
}
