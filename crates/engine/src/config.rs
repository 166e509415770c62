//! The configuration file (docs/CONFIG.md), and the defaults that apply without one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::Dirs;
use crate::{EngineError, EngineResult};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_location: Option<String>,
    /// This device's name in every backup it makes (default: the host name). Renaming keeps
    /// its backups its own: they are known by the device's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    #[serde(default)]
    pub location: BTreeMap<String, LocationConfig>,
    #[serde(default)]
    pub unit: BTreeMap<String, UnitConfig>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub schedule: BTreeMap<String, crate::schedule::ScheduleConfig>,
    #[serde(default)]
    pub daemon: DaemonConfig,
}

/// `[daemon]`: how `lifeboat serve` listens and warns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Address and port of the HTTP API and page (loopback unless set otherwise).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Days without a successful backup (per schedule and location) before a "stale" event.
    #[serde(default = "default_stale")]
    pub stale_after: u32,
    /// Minutes a job may make no progress before a "stuck" event.
    #[serde(default = "default_stuck")]
    pub stuck_after: u32,
    /// Events are also POSTed as JSON to this URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Events are also given to this shell command (`$LIFEBOAT_EVENT` holds the JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_command: Option<String>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            listen: default_listen(),
            stale_after: default_stale(),
            stuck_after: default_stuck(),
            webhook: None,
            notify_command: None,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8417".into()
}
fn default_stale() -> u32 {
    7
}
fn default_stuck() -> u32 {
    30
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocationKind {
    #[default]
    Local,
    Removable,
    Sftp,
    S3,
    Webdav,
    Smb,
    Dropbox,
    Onedrive,
    Gdrive,
}

impl LocationKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            LocationKind::Local => "local",
            LocationKind::Removable => "removable",
            LocationKind::Sftp => "sftp",
            LocationKind::S3 => "s3",
            LocationKind::Webdav => "webdav",
            LocationKind::Smb => "smb",
            LocationKind::Dropbox => "dropbox",
            LocationKind::Onedrive => "onedrive",
            LocationKind::Gdrive => "gdrive",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LocationConfig {
    #[serde(rename = "type", default)]
    pub kind: LocationKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Keys of the remote kinds (host, bucket, …), read by their backends.
    #[serde(flatten)]
    pub other: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    #[default]
    Paths,
    Sqlite,
    Command,
}

impl UnitKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            UnitKind::Paths => "paths",
            UnitKind::Sqlite => "sqlite",
            UnitKind::Command => "command",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: UnitKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Glob patterns: without `/` they match a name at any depth; starting with `~/` or `/`
    /// they match that path; otherwise they match a path relative to the unit's path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// When given, only entries matching one of these (same rules as `exclude`) are kept;
    /// folders are always entered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_included: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Paths (or the database) that do not exist are skipped quietly instead of warned about:
    /// for profiles that name the usual places of several systems.
    #[serde(default)]
    pub optional: bool,
    /// `command` units: a shell command that writes the unit's data into `$LIFEBOAT_DIR`
    /// (or, with `stream = true`, to its standard output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<String>,
    /// `command` units: a shell command that reads the data back from `$LIFEBOAT_DIR` (or,
    /// with `stream = true`, from its standard input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<String>,
    #[serde(default)]
    pub stream: bool,
    /// `command` units: a Sailfish OS vault unit script, called as
    /// `SCRIPT --action export|import --dir D --bin-dir B --home-dir H --name N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Commands run around the unit's backup and restore (stop a service, start it again).
    /// A failing `before_*` command fails the unit; a failing `after_*` one is a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_backup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_backup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_restore: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_restore: Option<String>,
    /// Applications stopped while the unit is restored in place and started again after
    /// (`systemd:NAME`, `docker:NAME`, `podman:NAME`; see `ServicePattern`): only those that
    /// run, each once however many units name it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_while_restoring: Vec<String>,
    /// Seconds a hook, export or import may run before it is stopped (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// The configuration in force and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    /// The file read, or `None` when the built-in defaults apply.
    pub file: Option<PathBuf>,
    /// Where `locations add` and friends would write.
    pub target_file: PathBuf,
}

impl LoadedConfig {
    /// `--config FILE`, else `$LIFEBOAT_CONFIG`, else the user's (or root's) default file;
    /// a missing default file means the built-in defaults.
    pub fn load(explicit: Option<&Path>, dirs: &Dirs) -> EngineResult<LoadedConfig> {
        let env = std::env::var_os("LIFEBOAT_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from);
        let (path, must_exist) = match (explicit, env) {
            (Some(p), _) => (p.to_path_buf(), true),
            (None, Some(p)) => (p, true),
            (None, None) => (dirs.config_file(), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                return Ok(LoadedConfig { config: Config::default(), file: None, target_file: path });
            }
            Err(e) => {
                return Err(EngineError::Config {
                    detail: format!("cannot be read ({e}); check the path given with --config or LIFEBOAT_CONFIG"),
                    path,
                })
            }
        };
        let config = parse(&text, &path)?;
        Ok(LoadedConfig { config, file: Some(path.clone()), target_file: path })
    }
}

pub fn parse(text: &str, path: &Path) -> EngineResult<Config> {
    let config: Config = toml::from_str(text)
        // The parser's text points at the mistake: the line, and a caret under it, on lines of
        // their own (the command line keeps them so; one-line displays fold them).
        .map_err(|e| EngineError::Config { path: path.to_path_buf(), detail: e.to_string().trim_end().to_string() })?;
    // A secret given as "$VARIABLE" is a secret in this process's environment from now on:
    // no hook or command unit inherits that variable, whether the location is used or not.
    for loc in config.location.values() {
        for value in loc.other.values() {
            if let Some(var) = value.as_str().and_then(|s| s.strip_prefix('$')).filter(|v| !v.is_empty()) {
                crate::command::keep_from_children(var);
            }
        }
    }
    for (name, unit) in &config.unit {
        if !valid_name(name) {
            return Err(EngineError::Config {
                path: path.to_path_buf(),
                detail: format!("unit name {name:?} may only hold letters, digits, '-' and '_'"),
            });
        }
        for entry in &unit.stop_while_restoring {
            if let Err(detail) = crate::services::ServicePattern::parse(entry) {
                return Err(EngineError::Config { path: path.to_path_buf(), detail: format!("unit {name}: {detail}") });
            }
        }
        if unit.kind == UnitKind::Sqlite && unit.database.is_none() {
            return Err(EngineError::Config {
                path: path.to_path_buf(),
                detail: format!("unit {name} is of type sqlite: add database = \"~/…/file.db\""),
            });
        }
        if unit.kind == UnitKind::Command && unit.script.is_none() && (unit.export.is_none() || unit.import.is_none()) {
            return Err(EngineError::Config {
                path: path.to_path_buf(),
                detail: format!("unit {name} is of type command: give export and import commands, or a script"),
            });
        }
        if unit.kind == UnitKind::Paths && unit.paths.is_empty() {
            return Err(EngineError::Config {
                path: path.to_path_buf(),
                detail: format!("unit {name} has no paths: add paths = [\"~/…\"]"),
            });
        }
    }
    for (name, lc) in &config.location {
        if !valid_name(name) {
            return Err(EngineError::Config {
                path: path.to_path_buf(),
                detail: format!("location name {name:?} may only hold letters, digits, '-' and '_'"),
            });
        }
        crate::location::settings::validate(name, lc)
            .map_err(|detail| EngineError::Config { path: path.to_path_buf(), detail })?;
        if let Some(like) = lc.other.get("like") {
            let detail = match like.as_str() {
                Some(l) if l == name => {
                    Some(format!("location {name}: like = {l:?} names itself; name another location"))
                }
                Some(l) if config.location.contains_key(l) || l == "local" => None,
                Some(l) => Some(format!("location {name}: like = {l:?} names no [location.{l}]")),
                None => Some(format!("location {name}: like must be a location's name, in quotes")),
            };
            if let Some(detail) = detail {
                return Err(EngineError::Config { path: path.to_path_buf(), detail });
            }
        }
    }
    for (name, sc) in &config.schedule {
        let err = |detail: String| EngineError::Config {
            path: path.to_path_buf(),
            detail: format!("schedule {name}: {detail}"),
        };
        if !valid_name(name) {
            return Err(err("its name may only hold letters, digits, '-' and '_'".into()));
        }
        sc.cadence().map_err(err)?;
        for l in &sc.locations {
            if !config.location.contains_key(l) && l != "local" {
                return Err(err(format!("names no [location.{l}]")));
            }
        }
        for u in &sc.units {
            let known = config.unit.contains_key(u) || (config.unit.is_empty() && u == "home");
            if !known {
                return Err(err(format!("names no [unit.{u}]")));
            }
        }
    }
    if let Some(d) = &config.device_name {
        let bad = d.trim().is_empty() || d.chars().any(char::is_control) || d.chars().count() > 64;
        if bad {
            return Err(EngineError::Config {
                path: path.to_path_buf(),
                detail: format!("device_name = {d:?} must be 1 to 64 characters with no control characters"),
            });
        }
    }
    if let Some(d) = &config.default_location {
        if !config.location.contains_key(d) && d != "local" {
            return Err(EngineError::Config {
                path: path.to_path_buf(),
                detail: format!("default_location = {d:?} names no [location.{d}]"),
            });
        }
    }
    Ok(config)
}

pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_design_example_and_rejects_typos() {
        let text = r#"
default_location = "local"
[location.local]
type = "local"
path = "/var/lib/lifeboat/backups"
[unit.notes]
title = "Notes"
type = "paths"
paths = ["~/.local/share/notes"]
exclude = ["*.tmp"]
not_included = ["Notes synchronised to a cloud service"]
[unit.messages]
type = "sqlite"
database = "~/.local/share/messages/messages.db"
"#;
        let c = parse(text, Path::new("x.toml")).unwrap();
        assert_eq!(c.unit["notes"].exclude, vec!["*.tmp"]);
        assert_eq!(c.unit["messages"].kind, UnitKind::Sqlite);
        let err = parse("[unit.a]\npaths=['~']\nexclud=['x']\n", Path::new("x.toml")).unwrap_err().to_string();
        assert!(err.contains("exclud"), "{err}");
        // The parser's picture of the place: the line, and a caret under the mistake.
        assert!(err.contains('^') && err.lines().count() > 1, "{err}");
        assert!(parse("[unit.a]\ntitle='x'\n", Path::new("x.toml")).is_err());
    }

    #[test]
    fn like_names_another_location() {
        let with = |like: &str| {
            let text = format!(
                "[location.nas]\ntype = 'local'\npath = '/srv/b'\n[location.cloud]\ntype = 'local'\npath = '/mnt/c'\nlike = {like}\n"
            );
            parse(&text, Path::new("x.toml")).map_err(|e| e.to_string())
        };
        assert!(with("'nas'").is_ok());
        assert!(with("'local'").is_ok(), "the implicit location may be named");
        let errors = [with("'cloud'"), with("'nope'"), with("3")].map(|r| r.unwrap_err());
        assert!(errors[0].contains("names itself"), "{}", errors[0]);
        assert!(errors[1].contains("names no [location.nope]"), "{}", errors[1]);
        assert!(errors[2].contains("location's name"), "{}", errors[2]);
    }

    #[test]
    fn the_packaged_example_is_a_valid_configuration() {
        let c = parse(include_str!("../../../packaging/lifeboat.example.toml"), Path::new("example.toml")).unwrap();
        assert!(c.location.contains_key("card") && c.unit.contains_key("photos") && c.schedule.contains_key("nightly"));
    }
}
