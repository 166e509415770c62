//! Thread pools for the pipelines.

use crate::{EngineError, EngineResult};

/// A named pool of `threads` threads.
pub(crate) fn pool(name: &'static str, threads: usize) -> EngineResult<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .map_err(|e| EngineError::io("starting", "worker threads", std::io::Error::other(e)))
}

pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}
