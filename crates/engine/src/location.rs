//! Locations: where backups are kept. Each holds one repository.

use std::path::PathBuf;
use std::sync::Arc;

use lifeboat_storage::{LocalStore, Store};
use serde::Serialize;

use crate::config::{Config, LocationConfig, LocationKind};
use crate::paths::Dirs;
use crate::{EngineError, EngineResult};

#[derive(Debug, Clone)]
pub struct Location {
    pub name: String,
    pub kind: LocationKind,
    pub config: LocationConfig,
    /// The folder, for kinds that are folders on this machine.
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LocationInfo {
    pub name: String,
    pub kind: String,
    pub path: Option<String>,
    pub default: bool,
}

impl Location {
    pub fn store(&self) -> EngineResult<Arc<dyn Store>> {
        match (self.kind, &self.path) {
            (LocationKind::Local, Some(p)) => Ok(Arc::new(LocalStore::new(p.clone()))),
            _ => Err(EngineError::UnsupportedLocation { name: self.name.clone(), kind: self.kind.as_str().into() }),
        }
    }

    pub fn describe(&self) -> String {
        match &self.path {
            Some(p) => format!("{} ({})", self.name, p.display()),
            None => self.name.clone(),
        }
    }
}

/// The configured locations; with none configured, `local` in the data folder.
pub fn locations(config: &Config, dirs: &Dirs) -> Vec<Location> {
    let mut out: Vec<Location> = config
        .location
        .iter()
        .map(|(name, lc)| Location {
            name: name.clone(),
            kind: lc.kind,
            config: lc.clone(),
            path: lc.path.as_deref().map(|p| dirs.expand(p)),
        })
        .collect();
    if !out.iter().any(|l| l.name == "local") && (out.is_empty() || config.default_location.as_deref() == Some("local"))
    {
        out.insert(
            0,
            Location {
                name: "local".into(),
                kind: LocationKind::Local,
                config: LocationConfig::default(),
                path: Some(dirs.data.join("backups")),
            },
        );
    }
    out
}

pub fn default_location_name(config: &Config, dirs: &Dirs) -> String {
    config
        .default_location
        .clone()
        .unwrap_or_else(|| locations(config, dirs).first().map(|l| l.name.clone()).unwrap_or_else(|| "local".into()))
}

/// The named location, or the default one.
pub fn location(config: &Config, dirs: &Dirs, name: Option<&str>) -> EngineResult<Location> {
    let all = locations(config, dirs);
    let wanted = name.map(str::to_string).unwrap_or_else(|| default_location_name(config, dirs));
    all.iter().find(|l| l.name == wanted).cloned().ok_or_else(|| EngineError::UnknownLocation {
        name: wanted,
        known: all.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", "),
    })
}

pub fn info(config: &Config, dirs: &Dirs) -> Vec<LocationInfo> {
    let default = default_location_name(config, dirs);
    locations(config, dirs)
        .into_iter()
        .map(|l| LocationInfo {
            default: l.name == default,
            name: l.name,
            kind: l.kind.as_str().into(),
            path: l.path.map(|p| p.display().to_string()),
        })
        .collect()
}
