//! What Lifeboat does with a repository: units from the configuration, backups and restores
//! of them, listings, estimates. The command line and the daemon are thin layers over this.

#![warn(unnameable_types)]

// The surface: the use cases (`app`), the configuration and its editing, the credentials, the
// folders, progress, run logs and schedules. Everything else is how the use cases are done, and
// stays inside; the types the surface speaks in are re-exported below.
pub mod app;
pub mod config;
pub mod config_edit;
pub mod credentials;
#[doc(hidden)]
pub mod fuzzing;
pub mod paths;
pub mod progress;
pub mod runlog;
pub mod schedule;
pub mod setup;
pub mod size;

mod backup;
mod backup_file;
mod browse;
mod catalog;
mod command;
mod copy;
mod device;
mod error;
mod estimate;
mod location;
mod meta;
mod profile;
mod restore;
mod retention;
mod services;
mod unit;
mod workers;

pub use app::Lifeboat;
pub use catalog::BackupInfo;
pub use config::{Config, LoadedConfig};
pub use error::{classify, unknown_host, EngineError, EngineResult, ErrorKind, Remedy, UnknownHost};
pub use location::Location;
pub use paths::Dirs;
pub use progress::Progress;
pub use runlog::RunLog;
pub use unit::{Commands, Hooks, Unit, UnitInfo};

pub use backup_file::manifest::{RootPath, UnitFile};
pub use backup_file::{read_manifest, Export, ImportOutcome, Manifest};
pub use browse::diff::{Change, Diff};
pub use browse::dump::FileReader;
pub use browse::find::{FoundPath, Version};
pub use browse::mount::Mounted;
pub use browse::Entry;
pub use catalog::{BackupDetails, UnitDetail};
pub use copy::CopyOutcome;
pub use device::{Device, Devices};
pub use estimate::UnitEstimate;
pub use location::LocationInfo;
pub use restore::writers::Process;
pub use restore::{Action as PlanAction, DatabaseInUse, RestoreMode, RestoreReport, SafetyBackup, Step as PlanStep};
pub use retention::Policy as RetentionPolicy;
pub use services::{Manager as ServiceManager, ServicePattern};
pub use unit::{Filter, Selection};

pub(crate) use lifeboat_repository::{hostname as host, username as user};
