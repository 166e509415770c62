//! `lifeboat serve` against another local user who wants it to stop answering: thousands of
//! connections that send nothing or never finish their headers (docs/RELIABILITY.md, "The
//! daemon under abuse"). Real daemons on free loopback ports.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::daemon::Daemon;
use crate::common::*;

/// The test itself holds thousands of sockets: its soft open-file limit goes up to `need`
/// (within its hard limit).
fn allow_own_open_files(need: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write one valid, owned rlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < need && lim.rlim_max >= need {
            lim.rlim_cur = need;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
    assert!(lim.rlim_cur >= need, "this test holds {need} sockets; the hard open-file limit is {}", lim.rlim_max);
}

fn address(d: &Daemon) -> String {
    d.url.strip_prefix("http://").unwrap().to_string()
}

#[test]
fn thousands_of_idle_and_slow_connections_do_not_lock_the_owner_out() {
    allow_own_open_files(4096);
    let sb = Sandbox::new("");
    // What a service gets without `LimitNOFILE=`, and a shell's `ulimit -n`: before the fix,
    // 1,030 such connections made every accept fail with EMFILE.
    let d = Daemon::start_with_open_files(&sb, 1024);
    let addr: std::net::SocketAddr = address(&d).parse().unwrap();
    let mut held = Vec::with_capacity(2000);
    for i in 0..2000 {
        // A daemon that takes no more connections (their queue full) leaves a connect
        // waiting: then it is the owner's request below that tells.
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
            break;
        };
        if i % 2 == 1 {
            // Slow: a request whose headers never end. (The daemon may have closed the
            // connection already; what the write does then does not matter.)
            let _ = s.write_all(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
        }
        held.push(s);
    }
    // The owner's client, on the same address: every request answered within a second.
    let owner = http().timeout(Duration::from_secs(1)).build().unwrap();
    for attempt in 1..=5 {
        let r = owner.get(format!("{}/api/status", d.url)).bearer_auth(&d.token).send().unwrap_or_else(|e| {
            let n = held.len();
            panic!("attempt {attempt}: /api/status did not answer within 1 s beside {n} idle and slow connections: {e}")
        });
        assert_eq!(r.status().as_u16(), 200, "attempt {attempt}");
    }
    assert_eq!(held.len(), 2000, "every connection was taken");
    // The held connections do not hold the daemon up when it stops.
    assert!(d.stop().success());
    drop(held);
}

#[test]
fn a_connection_that_never_finishes_its_headers_is_closed() {
    let sb = Sandbox::new("");
    let d = Daemon::start(&sb);
    let mut s = TcpStream::connect(address(&d)).unwrap();
    s.write_all(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
    // The daemon's deadline is 10 s; 60 s is the bound past which it is taken to be never.
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut answer = Vec::new();
    match s.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("a connection with unfinished headers was still open after 60 s: {e}"),
    }
    // Closed, perhaps with a refusal; never with an answer to the unfinished request.
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 4"), "{answer}");
}
