//! `lifeboat serve`: the scheduler, the jobs, the event history and the HTTP API, in one
//! long-running process. The command line and the daemon may work on the same locations at
//! once: repositories take their own locks.

mod api;
mod conditions;
mod connections;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
mod jobs;
mod notify;
mod scheduler;
mod schedules;
mod serving;
mod state;
pub mod token;
pub mod web;
mod work;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use lifeboat_engine::{Dirs, LoadedConfig};

pub use api::{status as http_status, OPENAPI};
pub use schedules::{Local, ScheduleRun, ScheduleView};
pub use work::{backup_event, describe_backup, BackupSpec};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Engine(#[from] lifeboat_engine::EngineError),
    #[error(transparent)]
    Events(#[from] events::EventsError),
    #[error("the API token in {path} cannot be read or made: {source}")]
    Token {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}; choose another address with --listen")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("listen address {0:?} is not ADDRESS:PORT (e.g. 127.0.0.1:8417)")]
    BadAddress(String),
    #[error(
        "{0} is not a loopback address: the API would be reachable from the network; set [daemon] listen in the configuration to allow it"
    )]
    NotLoopback(String),
    #[error("cannot start the daemon's runtime: {0}")]
    Runtime(std::io::Error),
}

pub struct ServeOptions {
    pub dirs: Dirs,
    pub config_file: Option<PathBuf>,
    pub config: LoadedConfig,
    pub password_file: Option<PathBuf>,
    /// `--listen`, overriding `[daemon] listen`.
    pub listen: Option<String>,
    /// Called with the address once listening (the port, when 0 was asked for).
    pub on_listening: Box<dyn FnOnce(SocketAddr) + Send>,
}

/// What `serve` did when it stopped.
pub struct Stopped {
    /// Jobs that were running and were stopped.
    pub interrupted: Vec<String>,
}

/// Where to listen: `--listen`, else `[daemon] listen` from a configuration file, else
/// 127.0.0.1:8417. A non-loopback address is refused unless one of the first two asked for it.
pub fn listen_address(flag: Option<&str>, config: &LoadedConfig) -> Result<SocketAddr, DaemonError> {
    let from_config = config.config.daemon.listen.clone();
    let explicit = flag.is_some() || config.file.is_some() && from_config != DEFAULT_LISTEN;
    let listen = flag.map(str::to_string).unwrap_or(from_config);
    let addr: SocketAddr = listen.parse().map_err(|_| DaemonError::BadAddress(listen.clone()))?;
    if !addr.ip().is_loopback() && !explicit {
        return Err(DaemonError::NotLoopback(listen));
    }
    Ok(addr)
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8417";

pub fn serve(opts: ServeOptions) -> Result<Stopped, DaemonError> {
    let addr = listen_address(opts.listen.as_deref(), &opts.config)?;
    let listen = addr.to_string();
    let events = events::Events::open(&events::database_path(&opts.dirs.data))?;
    let token = token::read_or_create(&opts.dirs.data)
        .map_err(|source| DaemonError::Token { path: token::token_file(&opts.dirs.data), source })?;
    let d = Arc::new(state::Daemon::new(opts.dirs, opts.config_file, opts.config, opts.password_file, events, token));
    // Before anything listens: a client that sees the daemon up sees these events too.
    scheduler::check_stale(&d, jiff::Timestamp::now());

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(DaemonError::Runtime)?;
    rt.block_on(async move {
        let listener = serving::listen(addr).map_err(|source| DaemonError::Listen { addr: listen.clone(), source })?;
        let bound = listener.local_addr().map_err(|source| DaemonError::Listen { addr: listen.clone(), source })?;
        (opts.on_listening)(bound);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let sched = tokio::spawn(scheduler::run(d.clone(), stop_rx.clone()));
        let app = api::router(d.clone());
        let limits = connections::Limits::for_open_files(connections::open_file_limit());
        tracing::info!("taking at most {} connections, {} from any one address", limits.total, limits.per_address);
        let server = tokio::spawn(serving::serve(listener, app, limits, stop_rx.clone()));
        wait_for_signal(&d).await;
        tracing::info!("stopping");
        let _ = stop_tx.send(true);
        let _ = sched.await;
        let d2 = d.clone();
        let stopped = tokio::task::spawn_blocking(move || d2.jobs.shutdown()).await.unwrap_or_default();
        let mut interrupted = Vec::new();
        for j in stopped {
            let msg = format!("job {} ({}) was stopped because the daemon stopped", j.id, j.description);
            d.event(
                events::kind::CANCELLED,
                "warning",
                &msg,
                events::About { location: j.location.clone(), job: Some(j.id), ..Default::default() },
            );
            interrupted.push(msg);
        }
        let _ = server.await;
        Ok(Stopped { interrupted })
    })
}

/// Until SIGTERM or SIGINT. SIGHUP, as for other daemons, reads the configuration again.
async fn wait_for_signal(d: &state::Shared) {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    let hup = signal(SignalKind::hangup());
    match (term, int, hup) {
        (Ok(mut t), Ok(mut i), Ok(mut h)) => loop {
            tokio::select! {
                _ = t.recv() => return,
                _ = i.recv() => return,
                _ = h.recv() => {
                    let d = d.clone();
                    let reloaded = tokio::task::spawn_blocking(move || d.reload()).await;
                    match reloaded {
                        Ok(Ok(())) => tracing::warn!("SIGHUP: configuration read again"),
                        Ok(Err(e)) => tracing::error!("SIGHUP: the configuration cannot be used ({e}); the one read before stays"),
                        Err(e) => tracing::error!("SIGHUP: reading the configuration stopped: {e}"),
                    }
                }
            }
        },
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(text: Option<&str>) -> LoadedConfig {
        let dir = tempfile::tempdir().unwrap();
        let dirs = Dirs {
            home: dir.path().into(),
            config: dir.path().join("c"),
            data: dir.path().join("d"),
            logs: dir.path().join("l"),
            cache: None,
            root: false,
        };
        match text {
            Some(t) => {
                let f = dir.path().join("lifeboat.toml");
                std::fs::write(&f, t).unwrap();
                LoadedConfig::load(Some(&f), &dirs).unwrap()
            }
            None => LoadedConfig::load(None, &dirs).unwrap(),
        }
    }

    #[test]
    fn only_loopback_unless_asked_for_otherwise() {
        let none = loaded(None);
        assert_eq!(listen_address(None, &none).unwrap().to_string(), "127.0.0.1:8417");
        assert!(listen_address(None, &none).unwrap().ip().is_loopback());
        // Asked for: by the flag, or by the configuration file.
        assert!(listen_address(Some("0.0.0.0:8417"), &none).is_ok());
        let configured = loaded(Some("[daemon]\nlisten = \"0.0.0.0:9000\"\n"));
        assert_eq!(listen_address(None, &configured).unwrap().to_string(), "0.0.0.0:9000");
        assert!(matches!(listen_address(Some("nonsense"), &none), Err(DaemonError::BadAddress(_))));
    }
}
