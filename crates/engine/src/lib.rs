//! What Lifeboat does with a repository: units from the configuration, backups and restores
//! of them, listings, estimates. The command line and the daemon are thin layers over this.

pub mod app;
pub mod backup;
pub mod backup_file;
pub mod catalog;
mod command;
pub mod config;
pub mod config_edit;
pub mod copy;
pub mod credentials;
mod error;
pub mod estimate;
#[doc(hidden)]
pub mod fuzzing;
pub mod location;
mod meta;
pub mod paths;
pub mod profile;
pub mod progress;
pub mod restore;
pub mod retention;
pub mod runlog;
pub mod schedule;
pub mod unit;
mod workers;

pub use app::Lifeboat;
pub use catalog::BackupInfo;
pub use config::{Config, LoadedConfig};
pub use error::{classify, EngineError, EngineResult, ErrorKind, Remedy};
pub use location::Location;
pub use paths::Dirs;
pub use progress::Progress;
pub use runlog::RunLog;
pub use unit::Unit;

pub(crate) use lifeboat_repository::{hostname as host, username as user};
