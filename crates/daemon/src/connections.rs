//! The connections the daemon holds open, how many it takes, and which one gives way when
//! there are too many.
//!
//! Every local user can connect to the daemon's port, and on loopback they all share
//! 127.0.0.1, so a cap per address alone would let any of them lock the owner out by
//! filling it. What tells the owner's client from a flood is what a connection is doing: a
//! client that connects sends its request at once, while a connection that is idle, or still
//! has not finished its headers, holds nothing that closing it would lose (an HTTP client
//! opens another). So when a cap is reached, the connection that has been quiet longest and
//! has no request in flight is closed to make room for the new one; a new connection is
//! turned away only when every connection it competes with is in the middle of a request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// How many connections the daemon holds at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub total: usize,
    /// From any one client address.
    pub per_address: usize,
}

/// Below this many, the page (a handful of parallel requests) would not load.
const MIN_TOTAL: u64 = 16;
/// Past this, more connections only cost memory: a backup daemon has one owner.
const MAX_TOTAL: u64 = 16_384;

impl Limits {
    /// From the process's open-file limit (RLIMIT_NOFILE): connections get half of it, the
    /// daemon's own work the other half (the event database, repositories and their packs,
    /// the files a backup reads, SSH sessions), so a flood of connections never leaves a job
    /// without a file descriptor nor the listener unable to accept. One address gets at most
    /// half of the connections: once at that cap, a flood from it (all local users, on
    /// loopback) closes only its own, and clients at other addresses keep the other half.
    pub fn for_open_files(limit: u64) -> Limits {
        let total = (limit / 2).clamp(MIN_TOTAL, MAX_TOTAL) as usize;
        Limits { total, per_address: total / 2 }
    }
}

/// The open-file limit the daemon runs under (the soft one: the one that makes `accept`
/// fail with EMFILE).
pub(crate) fn open_file_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit into the valid, owned struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    // 1024 is the usual default; a failure here (it cannot fail for RLIMIT_NOFILE) keeps it.
    if ok {
        lim.rlim_cur
    } else {
        1024
    }
}

/// Orders activity without reading a clock: each accept and each request's start and end
/// takes the next tick, so the smallest tick is the connection quiet for longest.
static TICK: AtomicU64 = AtomicU64::new(0);

fn tick() -> u64 {
    TICK.fetch_add(1, Ordering::Relaxed)
}

/// What the connection's task and its requests share with the registry.
pub(crate) struct Conn {
    id: u64,
    peer: IpAddr,
    in_flight: AtomicUsize,
    last_active: AtomicU64,
    evicted: AtomicBool,
    close: Notify,
}

impl Conn {
    /// A request starts on this connection; it counts as in flight until the guard is
    /// dropped, which is when its response has been sent to the end (a download, a stream of
    /// a job's events), not merely when the handler returned.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.last_active.store(tick(), Ordering::Relaxed);
        InFlight(self.clone())
    }

    pub fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// Resolves once the registry chose this connection to make room for another.
    pub async fn evicted(&self) {
        self.close.notified().await
    }
}

pub(crate) struct InFlight(Arc<Conn>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_active.store(tick(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Default)]
struct Open {
    next_id: u64,
    by_id: HashMap<u64, Arc<Conn>>,
    per_address: HashMap<IpAddr, usize>,
}

impl Open {
    fn remove(&mut self, id: u64) -> Option<Arc<Conn>> {
        let c = self.by_id.remove(&id)?;
        if let Some(n) = self.per_address.get_mut(&c.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&c.peer);
            }
        }
        Some(c)
    }

    /// Closes the quietest connection without a request in flight, of `peer` only if given.
    fn evict(&mut self, peer: Option<IpAddr>) -> bool {
        let victim = self
            .by_id
            .values()
            .filter(|c| c.is_idle() && (peer.is_none() || peer == Some(c.peer)))
            .min_by_key(|c| c.last_active.load(Ordering::Relaxed))
            .map(|c| c.id);
        match victim.and_then(|id| self.remove(id)) {
            Some(c) => {
                c.evicted.store(true, Ordering::Release);
                // A permit is stored if the task is not waiting at this moment: never lost.
                c.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Every connection the daemon holds, with the limits it keeps them to.
pub(crate) struct Connections {
    limits: Limits,
    open: Mutex<Open>,
}

impl Connections {
    pub fn new(limits: Limits) -> Arc<Connections> {
        Arc::new(Connections { limits, open: Mutex::new(Open::default()) })
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        // Nothing panics while holding it; if something did, the counts are still usable.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a new connection from `peer`, closing a quiet one first where a limit is
    /// reached. `None`: every connection it would compete with is busy with a request, and
    /// this one is to be closed at once.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Admitted> {
        let mut open = self.lock();
        let from_peer = open.per_address.get(&peer).copied().unwrap_or(0);
        // Room is made among the peer's own connections when it is the peer that is at its
        // cap (which also makes room in all), among everyone's when only the total is.
        if from_peer >= self.limits.per_address {
            if !open.evict(Some(peer)) {
                return None;
            }
        } else if open.by_id.len() >= self.limits.total && !open.evict(None) {
            return None;
        }
        let id = open.next_id;
        open.next_id += 1;
        let conn = Arc::new(Conn {
            id,
            peer,
            in_flight: AtomicUsize::new(0),
            last_active: AtomicU64::new(tick()),
            evicted: AtomicBool::new(false),
            close: Notify::new(),
        });
        open.by_id.insert(id, conn.clone());
        *open.per_address.entry(peer).or_insert(0) += 1;
        Some(Admitted { registry: self.clone(), conn })
    }

    /// Closes the quietest connection there is: when `accept` fails for want of file
    /// descriptors, that frees one for the connection waiting to be accepted.
    pub fn evict_quietest(&self) -> bool {
        self.lock().evict(None)
    }

    #[cfg(test)]
    fn count(&self) -> usize {
        self.lock().by_id.len()
    }
}

/// A connection's place in the registry, given up when its task ends.
pub(crate) struct Admitted {
    registry: Arc<Connections>,
    conn: Arc<Conn>,
}

impl Admitted {
    pub fn conn(&self) -> &Arc<Conn> {
        &self.conn
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if !self.conn.evicted.load(Ordering::Acquire) {
            self.registry.lock().remove(self.conn.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn was_evicted(a: &Admitted) -> bool {
        a.conn.evicted.load(Ordering::Acquire)
    }

    #[test]
    fn limits_leave_half_the_open_files_to_the_daemons_own_work() {
        assert_eq!(Limits::for_open_files(1024), Limits { total: 512, per_address: 256 });
        assert_eq!(Limits::for_open_files(8192), Limits { total: 4096, per_address: 2048 });
        assert_eq!(Limits::for_open_files(10), Limits { total: 16, per_address: 8 });
        assert_eq!(Limits::for_open_files(u64::MAX).total, 16_384);
    }

    #[test]
    fn a_full_address_makes_room_by_closing_its_own_quietest_idle_connection() {
        let reg = Connections::new(Limits { total: 10, per_address: 3 });
        let other = reg.admit(ip("127.0.0.2")).unwrap();
        let a: Vec<_> = (0..3).map(|_| reg.admit(ip("127.0.0.1")).unwrap()).collect();
        // The oldest one is busy with a request: the next oldest gives way.
        let busy = a[0].conn().begin();
        let new = reg.admit(ip("127.0.0.1")).unwrap();
        assert!(!was_evicted(&a[0]) && was_evicted(&a[1]) && !was_evicted(&a[2]));
        assert!(!was_evicted(&other), "another address's connection is never closed for this one");
        assert!(!was_evicted(&new));
        assert_eq!(reg.count(), 4);
        drop(busy);
        // Now idle again, and active more recently than a[2]: a[2] goes first.
        reg.admit(ip("127.0.0.1")).unwrap();
        assert!(was_evicted(&a[2]) && !was_evicted(&a[0]));
    }

    #[test]
    fn when_every_competitor_is_busy_the_new_connection_is_turned_away() {
        let reg = Connections::new(Limits { total: 4, per_address: 2 });
        let a: Vec<_> = (0..2).map(|_| reg.admit(ip("127.0.0.1")).unwrap()).collect();
        let _busy: Vec<_> = a.iter().map(|c| c.conn().begin()).collect();
        assert!(reg.admit(ip("127.0.0.1")).is_none());
        // Another address still has room.
        assert!(reg.admit(ip("127.0.0.2")).is_some());
    }

    #[test]
    fn a_full_total_closes_the_quietest_idle_connection_of_any_address() {
        let reg = Connections::new(Limits { total: 3, per_address: 2 });
        let first = reg.admit(ip("127.0.0.2")).unwrap();
        let _b = reg.admit(ip("127.0.0.3")).unwrap();
        let _c = reg.admit(ip("127.0.0.4")).unwrap();
        let _d = reg.admit(ip("127.0.0.5")).unwrap();
        assert!(was_evicted(&first));
        assert_eq!(reg.count(), 3);
    }

    #[test]
    fn a_closed_connection_gives_its_place_back_once() {
        let reg = Connections::new(Limits { total: 3, per_address: 3 });
        let a = reg.admit(ip("127.0.0.1")).unwrap();
        let b = reg.admit(ip("127.0.0.1")).unwrap();
        drop(a);
        assert_eq!(reg.count(), 1);
        assert!(reg.evict_quietest());
        assert!(was_evicted(&b));
        drop(b);
        assert_eq!(reg.count(), 0);
        assert!(!reg.evict_quietest());
        assert_eq!(reg.lock().per_address.len(), 0);
    }
}
