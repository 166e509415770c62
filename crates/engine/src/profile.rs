//! Ready-made unit sets (profiles/), built into the binary, and `units use PROFILE`.

use std::io::Write;
use std::path::Path;

use crate::config::parse;
use crate::{EngineError, EngineResult};

/// Name and TOML text of every profile.
pub(crate) const PROFILES: &[(&str, &str)] = &[
    ("phone", include_str!("../../../profiles/phone.toml")),
    ("home-automation", include_str!("../../../profiles/home-automation.toml")),
    ("desktop", include_str!("../../../profiles/desktop.toml")),
];

pub(crate) fn text(name: &str) -> EngineResult<&'static str> {
    PROFILES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t).ok_or_else(|| EngineError::UnknownProfile {
        name: name.to_string(),
        known: PROFILES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
    })
}

/// What `units use` did.
#[derive(Debug, Clone)]
pub struct ProfileUsed {
    /// The units added.
    pub added: Vec<String>,
    /// The built-in `home` unit was written into the file: it was backed up until now, and a
    /// configuration with units of its own would otherwise leave it out.
    pub kept_home: bool,
}

/// Adds a profile's units to the configuration file (created when missing), keeping what is
/// there, comments included. Refuses when a unit of the profile is already configured. When
/// the file had no units, the built-in `home` unit is written first, so that what was backed
/// up before still is.
pub fn use_profile(name: &str, file: &Path) -> EngineResult<ProfileUsed> {
    let profile = text(name)?;
    let existing = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(EngineError::io("reading", file, e)),
    };
    let current = parse(&existing, file)?;
    let adding = parse(profile, Path::new(name))?;
    let clash: Vec<&String> = adding.unit.keys().filter(|u| current.unit.contains_key(*u)).collect();
    if !clash.is_empty() {
        return Err(EngineError::Config {
            path: file.to_path_buf(),
            detail: format!(
                "already has units {}: remove them first to use profile {name}",
                clash.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io("creating", dir, e))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(|e| EngineError::io("writing", file, e))?;
    let sep = if existing.is_empty() || existing.ends_with("\n\n") { "" } else { "\n" };
    let kept_home = current.unit.is_empty() && !adding.unit.contains_key("home");
    let home = if kept_home { format!("{}\n", crate::unit::HOME_UNIT_TOML) } else { String::new() };
    write!(f, "{sep}{home}{profile}").map_err(|e| EngineError::io("writing", file, e))?;
    Ok(ProfileUsed { added: adding.unit.keys().cloned().collect(), kept_home })
}
