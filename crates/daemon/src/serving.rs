//! Accepting connections and serving HTTP/1.1 on them: what `axum::serve` did, plus what it
//! cannot be asked for and a daemon any local user can reach needs (docs/RELIABILITY.md,
//! "The daemon under abuse"):
//!
//! - a deadline for a request's headers (and for the next request's on an idle keep-alive
//!   connection), so that a connection that never finishes them is closed;
//! - at most so many connections in all and per address, where a new one makes room by
//!   closing the quietest connection without a request in flight (`connections.rs`);
//! - an `accept` that fails (EMFILE: out of file descriptors) closes the quietest connection
//!   and retries shortly, instead of sleeping a whole second per failure or spinning;
//! - a listen queue long enough for a burst of connections.
//!
//! Requests carry `ConnectInfo<SocketAddr>` as with `into_make_service_with_connect_info`;
//! on stop, no new connection is taken, idle ones are closed at once and the others finish
//! their request first.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::connections::{Admitted, Connections, InFlight, Limits};

/// How long a client has to send a request's headers, counted from when the connection is
/// ready for them (it opened, or its previous response was sent). Clients send theirs at
/// once; browsers open a new connection when an idle one was closed.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The most a connection buffers of what it reads (headers, at most). The API's headers
/// are small; hyper's default (about 400 KiB) times thousands of slow connections is memory
/// a small device does not have.
const MAX_BUFFER: usize = 64 * 1024;

/// After an `accept` that failed for want of resources: long enough not to spin, short
/// enough that a waiting client is barely delayed.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Connections the kernel completes and queues before the daemon accepts them. The default
/// of tokio's `TcpListener::bind` (128) is taken up by a burst of connections in a moment;
/// past it, the kernel drops a client's connection attempt, which it repeats only after a
/// second. Queued connections use no file descriptor of the daemon's.
const BACKLOG: u32 = 1024;

/// A listening socket on `addr`, as `TcpListener::bind` makes it, with a longer queue.
pub(crate) fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // A daemon started again at once must not find its address taken by the last one's
    // closing connections.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves `app` on `listener` until `stop` turns true; returns once every connection ended.
pub(crate) async fn serve(listener: TcpListener, app: Router, limits: Limits, mut stop: watch::Receiver<bool>) {
    let connections = Connections::new(limits);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).max_buf_size(MAX_BUFFER);
    let http = Arc::new(http);
    // Each connection's task holds a receiver; all of them gone is all connections ended.
    let (all_ended, ended) = watch::channel(());
    let mut failing = false;
    while !*stop.borrow() {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                if failing {
                    tracing::warn!("accepting connections again");
                    failing = false;
                }
                let Some(admitted) = connections.admit(peer.ip()) else {
                    // Every connection it would compete with has a request in flight.
                    tracing::debug!("turned a connection from {peer} away: too many connections are busy");
                    continue;
                };
                let task =
                    Connection { http: http.clone(), app: app.clone(), stop: stop.clone(), _ended: ended.clone() };
                tokio::spawn(task.run(stream, peer, admitted));
            }
            // The client gave up before it was accepted: nothing to do.
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // Once per episode, not once per retry: the log must not become the flood.
                if !failing {
                    tracing::error!("cannot accept connections: {e}; closing idle ones and retrying");
                    failing = true;
                }
                connections.evict_quietest();
                tokio::select! {
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    _ = stop.changed() => break,
                }
            }
        }
    }
    drop(listener);
    drop(ended);
    all_ended.closed().await;
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

struct Connection {
    http: Arc<http1::Builder>,
    app: Router,
    stop: watch::Receiver<bool>,
    /// Dropped when the connection ends (see `serve`).
    _ended: watch::Receiver<()>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream, peer: SocketAddr, admitted: Admitted) {
        let conn = admitted.conn().clone();
        let app = self.app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let in_flight = conn.begin();
            req.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            async move {
                let response = app.oneshot(req.map(Body::new)).await?;
                Ok::<_, Infallible>(response.map(|body| Body::new(Tracked { body, _in_flight: in_flight })))
            }
        });
        let mut served = pin!(self.http.serve_connection(TokioIo::new(stream), service));
        let conn = admitted.conn();
        let mut closing = false;
        loop {
            tokio::select! {
                ended = served.as_mut() => {
                    if let Err(e) = ended {
                        tracing::debug!("connection from {peer}: {e}");
                    }
                    return;
                }
                _ = conn.evicted(), if !closing => {}
                _ = self.stop.changed(), if !closing => {}
            }
            // Evicted or stopping. Without a request in flight there is nothing to finish
            // (not even headers half sent): close now. Otherwise the request finishes first.
            if conn.is_idle() {
                return;
            }
            served.as_mut().graceful_shutdown();
            closing = true;
        }
    }
}

/// A response body that keeps its request counted as in flight until it was sent whole.
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
