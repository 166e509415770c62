//! `locations add` and `locations remove`: edits of the configuration file that keep its
//! comments and layout, checked before they are written, and written atomically.

use std::path::Path;

use toml_edit::{value, DocumentMut, Item, Table};

use crate::config::{parse, valid_name};
use crate::{EngineError, EngineResult};

/// Adding a ready-made set of units is an edit of the file like the others.
pub use crate::profile::{use_profile, ProfileUsed};

/// Adds `[location.NAME]` with these keys (the first is `type`).
pub fn add_location(file: &Path, name: &str, keys: &[(String, String)], make_default: bool) -> EngineResult<()> {
    write(file, &with_location(file, name, keys, make_default)?)
}

/// The configuration [`add_location`] would write, checked, without writing it: to look at
/// the new location first (`locations add --like` checks the repository already there).
pub fn preview_add_location(
    file: &Path,
    name: &str,
    keys: &[(String, String)],
    make_default: bool,
) -> EngineResult<crate::Config> {
    parse(&with_location(file, name, keys, make_default)?.to_string(), file)
}

fn with_location(file: &Path, name: &str, keys: &[(String, String)], make_default: bool) -> EngineResult<DocumentMut> {
    let err = |detail: String| EngineError::Config { path: file.to_path_buf(), detail };
    if !valid_name(name) {
        return Err(err(format!("location name {name:?} may only hold letters, digits, '-' and '_'")));
    }
    let mut doc = read(file)?;
    let locations = doc.entry("location").or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    let Some(locations) = locations.as_table_mut() else {
        return Err(err("location is not a table".into()));
    };
    if locations.contains_key(name) {
        return Err(err(format!("already has a location {name}: remove it first or choose another name")));
    }
    let mut t = Table::new();
    for (k, v) in keys {
        match v.parse::<i64>() {
            Ok(n) if k == "port" => t[k.as_str()] = value(n),
            _ => match v.as_str() {
                "true" | "false" if k == "trust_new_host" => t[k.as_str()] = value(v == "true"),
                _ => t[k.as_str()] = value(v.as_str()),
            },
        }
    }
    locations.insert(name, Item::Table(t));
    if make_default {
        doc["default_location"] = value(name);
    }
    Ok(doc)
}

/// Removes `[location.NAME]`; the backups in it stay where they are.
pub fn remove_location(file: &Path, name: &str) -> EngineResult<()> {
    let mut doc = read(file)?;
    let removed = doc.get_mut("location").and_then(|l| l.as_table_mut()).and_then(|l| l.remove(name)).is_some();
    if !removed {
        return Err(EngineError::Config {
            path: file.to_path_buf(),
            detail: format!("has no location {name} (see `lifeboat locations list`)"),
        });
    }
    if doc.get("default_location").and_then(|d| d.as_str()) == Some(name) {
        doc.remove("default_location");
    }
    write(file, &doc)
}

pub(crate) fn read(file: &Path) -> EngineResult<DocumentMut> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(EngineError::io("reading", file, e)),
    };
    text.parse::<DocumentMut>().map_err(|e| EngineError::Config { path: file.to_path_buf(), detail: e.to_string() })
}

pub(crate) fn write(file: &Path, doc: &DocumentMut) -> EngineResult<()> {
    let text = doc.to_string();
    // The edit must leave a configuration Lifeboat can read.
    parse(&text, file)?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io("creating", dir, e))?;
    }
    let tmp = file.with_extension("toml.tmp");
    // The file may hold location secrets: readable by its owner only, whatever it was.
    let written = (|| -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    })();
    written.map_err(|e| EngineError::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, file).map_err(|e| EngineError::io("writing", file, e))
}

/// Keys whose literal values are secrets. A value naming a variable (`"$VAR"`) or a file
/// (`KEY_file`) is a reference, not a secret, and is kept.
const SECRET_KEYS: &[&str] = &[
    "password",
    "repository_password",
    "secret_access_key",
    "refresh_token",
    "access_token",
    "client_secret",
    "token",
    "passphrase",
];

/// Keys whose values are commands: a command line often holds a password (`mysqldump
/// -pSECRET`, `curl -u me:token`), so a backup records only that there is one.
const COMMAND_KEYS: &[&str] =
    &["before_backup", "after_backup", "before_restore", "after_restore", "export", "import", "script"];

/// What a backup records in place of a command: one that fails saying so, should a
/// configuration written back from a backup (`restore --with-config`) run it.
pub const COMMAND_LEFT_OUT: &str =
    "echo 'lifeboat: this command was not recorded in the backup: write it again' >&2; exit 1";

/// The configuration's text without its secrets: what a backup and a backup file carry.
/// Comments are dropped too (a line commented out is often an old password), as are the
/// daemon's `webhook` (its address is its credential) and `notify_command`, and every
/// command is replaced by [`COMMAND_LEFT_OUT`].
pub fn without_secrets(text: &str) -> Result<String, String> {
    let plain: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let plain = toml::to_string(&plain).map_err(|e| e.to_string())?;
    let mut doc: DocumentMut = plain.parse().map_err(|e: toml_edit::TomlError| e.to_string())?;
    strip(doc.as_table_mut());
    Ok(doc.to_string())
}

fn strip(table: &mut dyn toml_edit::TableLike) {
    let secret: Vec<String> = table
        .iter()
        .filter(|(k, v)| {
            (SECRET_KEYS.contains(k) && !v.as_str().is_some_and(|s| s.starts_with('$')))
                || ["webhook", "notify_command"].contains(k)
        })
        .map(|(k, _)| k.to_string())
        .collect();
    for k in secret {
        table.remove(&k);
    }
    for key in COMMAND_KEYS {
        if table.get(key).is_some_and(|v| v.is_str()) {
            table.insert(key, value(COMMAND_LEFT_OUT));
        }
    }
    // A password can also hide inside an address (`https://user:password@host/`).
    for key in ["url", "endpoint"] {
        let clean = table.get(key).and_then(|v| v.as_str()).and_then(url_without_credentials);
        if let Some(clean) = clean {
            table.insert(key, value(clean));
        }
    }
    // Inline tables (`nas = { password = "…" }`) too.
    for (_, item) in table.iter_mut() {
        if let Some(t) = item.as_table_like_mut() {
            strip(t);
        }
    }
}

/// The address without the `user:password@` written in it, when it has one.
pub fn url_without_credentials(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..end].rfind('@')?;
    Some(format!("{scheme}://{}", &rest[at + 1..]))
}

/// Replaces every `[schedule.NAME]` with these schedules (other tables and comments stay);
/// the result is checked as a whole before it is written, atomically.
pub fn set_schedules(
    file: &Path,
    schedules: &std::collections::BTreeMap<String, crate::schedule::ScheduleConfig>,
) -> EngineResult<()> {
    let err = |detail: String| EngineError::Config { path: file.to_path_buf(), detail };
    let mut doc = read(file)?;
    doc.remove("schedule");
    if !schedules.is_empty() {
        let mut all = Table::new();
        all.set_implicit(true);
        for (name, sc) in schedules {
            if !valid_name(name) {
                return Err(err(format!("schedule name {name:?} may only hold letters, digits, '-' and '_'")));
            }
            let text = toml::to_string(sc).map_err(|e| err(format!("schedule {name}: {e}")))?;
            let table: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| err(e.to_string()))?;
            all.insert(name, Item::Table(table.as_table().clone()));
        }
        doc.insert("schedule", Item::Table(all));
    }
    write(file, &doc)
}

#[cfg(test)]
mod secret_tests {
    #[test]
    fn secrets_are_dropped_and_references_kept() {
        let text = "# mine\n[location.nas]\ntype = \"sftp\"\npassword = \"hunter2\"\n[location.s3]\nsecret_access_key = \"$S3_SECRET\"\nrefresh_token_file = \"/k\"\n";
        let out = super::without_secrets(text).unwrap();
        assert!(!out.contains("hunter2") && out.contains("$S3_SECRET") && out.contains("refresh_token_file"));
        assert!(!out.contains("# mine") && out.contains("type = \"sftp\""));
        let text = "[location]\nnas = { type = \"sftp\", host = \"h\", password = \"inline2\" }\n\
                    #password = \"old3\"\n[daemon]\nwebhook = \"https://chat/hooks/TOKEN4\"\n\
                    [unit.db]\npaths = [\"~/db\"]\nbefore_backup = \"mysqldump -pSECRET5 db\"\n";
        let out = super::without_secrets(text).unwrap();
        for secret in ["inline2", "old3", "TOKEN4", "SECRET5"] {
            assert!(!out.contains(secret), "{secret}: {out}");
        }
        assert!(out.contains("before_backup") && out.contains("host = \"h\""), "{out}");
    }
}
