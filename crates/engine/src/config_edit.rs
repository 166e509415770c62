//! `locations add` and `locations remove`: edits of the configuration file that keep its
//! comments and layout, checked before they are written, and written atomically.

use std::path::Path;

use toml_edit::{value, DocumentMut, Item, Table};

use crate::config::{parse, valid_name};
use crate::{EngineError, EngineResult};

/// Adds `[location.NAME]` with these keys (the first is `type`).
pub fn add_location(file: &Path, name: &str, keys: &[(String, String)], make_default: bool) -> EngineResult<()> {
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
    write(file, &doc)
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

fn read(file: &Path) -> EngineResult<DocumentMut> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(EngineError::io("reading", file, e)),
    };
    text.parse::<DocumentMut>().map_err(|e| EngineError::Config { path: file.to_path_buf(), detail: e.to_string() })
}

fn write(file: &Path, doc: &DocumentMut) -> EngineResult<()> {
    let text = doc.to_string();
    // The edit must leave a configuration Lifeboat can read.
    parse(&text, file)?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io("creating", dir, e))?;
    }
    let tmp = file.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(|e| EngineError::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, file).map_err(|e| EngineError::io("writing", file, e))
}
