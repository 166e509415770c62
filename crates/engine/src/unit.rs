//! Units: named pieces of data backed up and restored as a whole.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;

use crate::config::{Config, UnitConfig, UnitKind};
use crate::paths::Dirs;
use crate::{EngineError, EngineResult};

/// A unit ready to back up: its paths expanded for this user, its filters compiled.
#[derive(Debug, Clone)]
pub struct Unit {
    pub name: String,
    pub title: String,
    pub kind: UnitKind,
    /// Paths as written in the configuration, and as they are on this device.
    pub paths: Vec<(String, PathBuf)>,
    pub filter: Filter,
    pub not_included: Vec<String>,
    pub exclude_patterns: Vec<String>,
    /// How a `command` unit exports and imports its data.
    pub commands: Option<Commands>,
    /// Missing paths are skipped quietly.
    pub optional: bool,
    pub hooks: Hooks,
}

/// The export and import of a `command` unit.
#[derive(Debug, Clone)]
pub enum Commands {
    /// Shell commands working in `$LIFEBOAT_DIR`, or on standard output and input (`stream`).
    Shell { export: String, import: String, stream: bool },
    /// A Sailfish OS vault unit script.
    Vault { script: PathBuf },
}

/// Commands run around a unit's backup and restore.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub before_backup: Option<String>,
    pub after_backup: Option<String>,
    pub before_restore: Option<String>,
    pub after_restore: Option<String>,
    /// Applications stopped while the unit is restored in place, and started again after.
    pub stop_while_restoring: Vec<crate::services::ServicePattern>,
    pub timeout: std::time::Duration,
}

/// The root path recorded for a `command` unit's exported data.
pub(crate) fn command_root(name: &str) -> String {
    format!("unit:{name}")
}

/// A unit as listed by `units list`.
#[derive(Debug, Clone, Serialize)]
pub struct UnitInfo {
    pub name: String,
    pub title: String,
    pub kind: String,
    pub paths: Vec<String>,
    pub exclude: Vec<String>,
    pub not_included: Vec<String>,
    /// Files and bytes the unit holds now (not known for `command` units before their export).
    pub files: Option<u64>,
    pub size: Option<u64>,
}

impl Unit {
    /// The unit's listing with its current size (walks its paths).
    pub fn info_with_size(&self) -> UnitInfo {
        let mut info = self.info();
        if self.commands.is_none() {
            let (files, size) = crate::backup::count_unit(self, &crate::Progress::default());
            info.files = Some(files);
            info.size = Some(size);
        }
        info
    }

    pub fn info(&self) -> UnitInfo {
        UnitInfo {
            name: self.name.clone(),
            title: self.title.clone(),
            kind: self.kind.as_str().to_string(),
            paths: match &self.commands {
                Some(Commands::Shell { export, .. }) => vec![format!("export: {export}")],
                Some(Commands::Vault { script }) => vec![format!("script: {}", script.display())],
                None => self.paths.iter().map(|(w, _)| w.clone()).collect(),
            },
            exclude: self.exclude_patterns.clone(),
            not_included: self.not_included.clone(),
            files: None,
            size: None,
        }
    }
}

/// The units of a configuration; with none configured, the built-in `home` unit.
pub fn units(config: &Config, dirs: &Dirs, extra_excludes: &[PathBuf]) -> EngineResult<Vec<Unit>> {
    let mut out = Vec::new();
    if config.unit.is_empty() {
        let default = default_home_unit();
        out.push(resolve("home", &default, dirs, extra_excludes)?);
    }
    for (name, uc) in &config.unit {
        out.push(resolve(name, uc, dirs, extra_excludes)?);
    }
    Ok(out)
}

/// The built-in `home` unit as configuration text: written into the file when units are first
/// configured, so that adding a profile does not silently stop backing up the home folder.
pub(crate) const HOME_UNIT_TOML: &str = r#"[unit.home]
title = "Home folder"
paths = ["~"]
exclude = ["~/.cache", "~/.local/share/Trash", "~/.thumbnails", "~/.local/state/lifeboat", "~/.local/share/lifeboat"]
not_included = ["Caches and the trash", "Lifeboat's own backups and logs", "Files outside the home folder"]
"#;

fn default_home_unit() -> UnitConfig {
    UnitConfig {
        title: Some("Home folder".into()),
        paths: vec!["~".into()],
        exclude: vec![
            "~/.cache".into(),
            "~/.local/share/Trash".into(),
            "~/.thumbnails".into(),
            "~/.local/state/lifeboat".into(),
            "~/.local/share/lifeboat".into(),
        ],
        not_included: vec![
            "Caches and the trash".into(),
            "Lifeboat's own backups and logs".into(),
            "Files outside the home folder".into(),
        ],
        ..Default::default()
    }
}

fn resolve(name: &str, uc: &UnitConfig, dirs: &Dirs, extra_excludes: &[PathBuf]) -> EngineResult<Unit> {
    let bad = |detail: String| EngineError::Config { path: PathBuf::from(format!("[unit.{name}]")), detail };
    let paths: Vec<(String, PathBuf)> = match uc.kind {
        // A path given twice is one path: each is read (and counted) once.
        UnitKind::Paths => {
            let mut seen = std::collections::HashSet::new();
            uc.paths.iter().map(|w| (w.clone(), dirs.expand(w))).filter(|(_, p)| seen.insert(p.clone())).collect()
        }
        UnitKind::Sqlite => match &uc.database {
            Some(db) => vec![(db.clone(), dirs.expand(db))],
            None => return Err(bad("a sqlite unit needs database = \"~/…/file.db\"".into())),
        },
        UnitKind::Command => Vec::new(),
    };
    let commands = match (uc.kind, &uc.script, &uc.export, &uc.import) {
        (UnitKind::Command, Some(script), _, _) => Some(Commands::Vault { script: dirs.expand(script) }),
        (UnitKind::Command, None, Some(export), Some(import)) => {
            Some(Commands::Shell { export: export.clone(), import: import.clone(), stream: uc.stream })
        }
        (UnitKind::Command, ..) => return Err(bad("give export and import commands, or a script".into())),
        _ => None,
    };
    let hooks = Hooks {
        before_backup: uc.before_backup.clone(),
        after_backup: uc.after_backup.clone(),
        before_restore: uc.before_restore.clone(),
        after_restore: uc.after_restore.clone(),
        stop_while_restoring: uc
            .stop_while_restoring
            .iter()
            .map(|e| crate::services::ServicePattern::parse(e))
            .collect::<Result<_, _>>()
            .map_err(bad)?,
        timeout: uc.timeout.map(std::time::Duration::from_secs).unwrap_or(crate::command::DEFAULT_TIMEOUT),
    };
    for (w, p) in &paths {
        if !p.is_absolute() {
            return Err(bad(format!("path {w:?} must start with / or ~/")));
        }
    }
    let mut excludes: Vec<String> = uc.exclude.clone();
    excludes.extend(extra_excludes.iter().map(|p| p.display().to_string()));
    let filter = Filter::new(&excludes, &uc.include, dirs).map_err(bad)?;
    Ok(Unit {
        name: name.to_string(),
        title: uc.title.clone().unwrap_or_else(|| name.to_string()),
        kind: uc.kind,
        paths,
        filter,
        not_included: uc.not_included.clone(),
        exclude_patterns: uc.exclude.clone(),
        commands,
        hooks,
        optional: uc.optional,
    })
}

/// Include and exclude rules of a unit.
#[derive(Debug, Clone)]
pub struct Filter {
    exclude_names: GlobSet,
    exclude_paths: GlobSet,
    exclude_relative: GlobSet,
    include_names: GlobSet,
    include_paths: GlobSet,
    include_relative: GlobSet,
    has_includes: bool,
    /// When set, only these paths are backed up (and the folders on the way to them).
    only: Option<std::sync::Arc<Selection>>,
}

/// Chosen paths: each one itself (a folder without what is in it, unless that is chosen too)
/// and the folders that lead to them.
#[derive(Debug, Default)]
pub struct Selection {
    paths: std::collections::HashSet<PathBuf>,
    ancestors: std::collections::HashSet<PathBuf>,
}

impl Selection {
    pub fn new(paths: impl IntoIterator<Item = PathBuf>) -> Selection {
        let mut s = Selection::default();
        for p in paths {
            for a in p.ancestors().skip(1) {
                if !s.ancestors.insert(a.to_path_buf()) {
                    break;
                }
            }
            s.paths.insert(p);
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

fn compile(patterns: &[String], dirs: &Dirs) -> Result<(GlobSet, GlobSet, GlobSet), String> {
    let mut names = GlobSetBuilder::new();
    let mut paths = GlobSetBuilder::new();
    let mut rel = GlobSetBuilder::new();
    for p in patterns {
        let trimmed = p.trim_end_matches('/');
        let glob = |pat: &str| -> Result<Glob, String> {
            GlobBuilder::new(pat)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!("pattern {p:?}: {e}"))
        };
        if trimmed.starts_with('/') || trimmed.starts_with("~/") || trimmed == "~" {
            paths.add(glob(&dirs.expand(trimmed).to_string_lossy())?);
        } else if trimmed.contains('/') {
            rel.add(glob(trimmed)?);
        } else {
            names.add(glob(trimmed)?);
        }
    }
    let build = |b: GlobSetBuilder| b.build().map_err(|e| e.to_string());
    Ok((build(names)?, build(paths)?, build(rel)?))
}

impl Filter {
    pub fn new(exclude: &[String], include: &[String], dirs: &Dirs) -> Result<Filter, String> {
        let (exclude_names, exclude_paths, exclude_relative) = compile(exclude, dirs)?;
        let (include_names, include_paths, include_relative) = compile(include, dirs)?;
        Ok(Filter {
            exclude_names,
            exclude_paths,
            exclude_relative,
            include_names,
            include_paths,
            include_relative,
            has_includes: !include.is_empty(),
            only: None,
        })
    }

    /// A filter that keeps exactly the selection (for a safety backup of what a restore
    /// replaces or deletes).
    pub fn selection(selection: Selection) -> Filter {
        let empty = GlobSet::empty();
        Filter {
            exclude_names: empty.clone(),
            exclude_paths: empty.clone(),
            exclude_relative: empty.clone(),
            include_names: empty.clone(),
            include_paths: empty.clone(),
            include_relative: empty,
            has_includes: false,
            only: Some(std::sync::Arc::new(selection)),
        }
    }

    /// Whether this filter keeps only chosen paths.
    pub fn is_selection(&self) -> bool {
        self.only.is_some()
    }

    /// Whether to skip an entry. `rel` is its path below the unit's path.
    pub fn excludes(&self, abs: &Path, rel: &Path, is_dir: bool) -> bool {
        if let Some(only) = &self.only {
            return !(only.paths.contains(abs) || only.ancestors.contains(abs));
        }
        let name = abs.file_name().map(Path::new).unwrap_or(abs);
        if self.exclude_names.is_match(name) || self.exclude_paths.is_match(abs) || self.exclude_relative.is_match(rel)
        {
            return true;
        }
        if self.has_includes && !is_dir {
            let included = self.include_names.is_match(name)
                || self.include_paths.is_match(abs)
                || self.include_relative.is_match(rel);
            return !included;
        }
        false
    }
}

/// The units a backup or restore is about: all of them, or those named.
pub fn select<'a>(all: &'a [Unit], names: &[String]) -> EngineResult<Vec<&'a Unit>> {
    if names.is_empty() {
        return Ok(all.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            all.iter().find(|u| &u.name == n).ok_or_else(|| EngineError::UnknownUnit {
                name: n.clone(),
                known: all.iter().map(|u| u.name.as_str()).collect::<Vec<_>>().join(", "),
            })
        })
        .collect()
}

#[cfg(test)]
mod home_unit_tests {
    /// The text written into the configuration is the built-in unit, key for key.
    #[test]
    fn the_written_home_unit_is_the_built_in_one() {
        let c = crate::config::parse(super::HOME_UNIT_TOML, std::path::Path::new("home")).expect("parses");
        let written = &c.unit["home"];
        let built_in = super::default_home_unit();
        assert_eq!(written.title, built_in.title);
        assert_eq!(written.paths, built_in.paths);
        assert_eq!(written.exclude, built_in.exclude);
        assert_eq!(written.not_included, built_in.not_included);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> Dirs {
        Dirs {
            home: "/home/u".into(),
            config: "/c".into(),
            data: "/d".into(),
            logs: "/l".into(),
            cache: None,
            root: false,
        }
    }

    #[test]
    fn exclude_rules() {
        let f = Filter::new(&["*.tmp".into(), "~/.cache".into(), "build/out".into()], &[], &dirs()).unwrap();
        assert!(f.excludes(Path::new("/home/u/a/b.tmp"), Path::new("a/b.tmp"), false));
        assert!(f.excludes(Path::new("/home/u/.cache"), Path::new(".cache"), true));
        assert!(f.excludes(Path::new("/home/u/x/build/out"), Path::new("build/out"), true));
        assert!(!f.excludes(Path::new("/home/u/a/b.txt"), Path::new("a/b.txt"), false));
        assert!(!f.excludes(Path::new("/home/u/x/y/build/out"), Path::new("y/build/out"), true));
        let inc = Filter::new(&[], &["*.jpg".into()], &dirs()).unwrap();
        assert!(inc.excludes(Path::new("/p/a.txt"), Path::new("a.txt"), false));
        assert!(!inc.excludes(Path::new("/p/a.jpg"), Path::new("a.jpg"), false));
        assert!(!inc.excludes(Path::new("/p/sub"), Path::new("sub"), true));
    }
}
