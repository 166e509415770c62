//! The one asynchronous runtime behind the network backends.
//!
//! The [`crate::Store`] trait is blocking: the repository calls it from its own worker
//! threads. The client libraries of the network backends are asynchronous, so each call is
//! run to completion on this shared runtime, with a time limit, from the calling thread.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::runtime::Runtime;

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lifeboat-net")
            .enable_all()
            .build()
            // Without a runtime no network location can work; there is nothing to recover.
            .expect("the network runtime (threads and an event loop) could not be created")
    })
}

/// Time allowed for connecting and for one small request.
pub(crate) const REQUEST_LIMIT: Duration = Duration::from_secs(60);
/// Time allowed to move one mebibyte, on top of the above: a very slow line still finishes.
const PER_MIB: Duration = Duration::from_secs(30);

/// The time allowed for a request that moves `bytes`.
pub(crate) fn limit_for(bytes: u64) -> Duration {
    REQUEST_LIMIT + PER_MIB * u32::try_from(bytes >> 20).unwrap_or(u32::MAX)
}

/// Runs `fut` to completion; `None` when it took longer than `limit`.
pub(crate) fn block_on_for<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    runtime().block_on(async { tokio::time::timeout(limit, fut).await.ok() })
}
