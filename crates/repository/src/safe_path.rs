//! What a path or name read from a backup may look like before anything is written with it.
//! A snapshot or a backup file comes from a location, which is as untrusted as a network: its
//! unit names, root paths and entry names decide where a restore writes, so each is checked
//! here, once, by every reader (restore, import, check).

/// A unit root as stored: `~`, `~/a/b` or `/a/b` with no empty, `.` or `..` part, or
/// `unit:NAME` for the exported data of a `command` unit.
pub fn check_root_path(path: &str) -> Result<(), String> {
    if let Some(name) = path.strip_prefix("unit:") {
        return check_unit_name(name).map_err(|e| format!("root {path:?}: {e}"));
    }
    let rest = if path == "~" {
        return Ok(());
    } else if let Some(rest) = path.strip_prefix("~/") {
        rest
    } else if let Some(rest) = path.strip_prefix('/') {
        if rest.is_empty() {
            return Ok(());
        }
        rest
    } else {
        return Err(format!("root {path:?} is neither absolute nor under ~/"));
    };
    if path.contains('\0') {
        return Err(format!("root {path:?} holds a NUL byte"));
    }
    for part in rest.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(format!("root {path:?} has an empty, '.' or '..' part"));
        }
    }
    Ok(())
}

/// A unit's name: it becomes a folder name (`lifeboat-units/NAME`), so one plain name.
pub fn check_unit_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(format!("unit name {name:?} is not a plain name"));
    }
    Ok(())
}

/// A backup's slug: it goes into names on the device (the backup's version of a file kept
/// beside a changed one, `NAME.restored-SLUG`, renamed by handle relative to a folder of the
/// destination) and of logs, so short and plain: letters, digits, `-` and `_` only. Lifeboat
/// makes 8 hex digits.
pub fn check_slug(slug: &str) -> Result<(), String> {
    if slug.is_empty() || slug.len() > 64 || !slug.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!("backup slug {slug:?} is not a plain name"));
    }
    Ok(())
}

/// One entry of a folder listing: a single name, never a path.
pub fn check_entry_name(name: &[u8]) -> Result<(), String> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
        return Err(format!("entry name {:?} is not a plain name", String::from_utf8_lossy(name)));
    }
    Ok(())
}

/// A path relative to a unit root (`a/b/c`), as a backup file or an undo list holds it.
pub fn check_relative(path: &[u8]) -> Result<(), String> {
    if path.starts_with(b"/") {
        return Err(format!("path {:?} is absolute", String::from_utf8_lossy(path)));
    }
    for part in path.split(|&b| b == b'/') {
        check_entry_name(part)
            .map_err(|_| format!("path {:?} has an empty, '.' or '..' part", String::from_utf8_lossy(path)))?;
    }
    Ok(())
}

impl crate::Snapshot {
    /// Every unit name and root path is one a restore can place (see the module comment).
    pub fn check_paths(&self) -> Result<(), String> {
        check_slug(&self.slug)?;
        for unit in &self.units {
            check_unit_name(&unit.name)?;
            for root in &unit.roots {
                check_root_path(&root.path).map_err(|e| format!("unit {}: {e}", unit.name))?;
            }
            for path in &unit.remove_on_restore {
                if path.starts_with("unit:") {
                    return Err(format!("unit {}: undo list: {path:?} is not a path", unit.name));
                }
                check_root_path(path).map_err(|e| format!("unit {}: undo list: {e}", unit.name))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_that_are_not_plain_names_are_refused() {
        for ok in ["0a1b2c3d", "deadbeef", "a-b_C9"] {
            assert!(check_slug(ok).is_ok(), "{ok}");
        }
        for bad in ["", "x/../../etc/cron.d/p", "..", "a b", "a\0", &"a".repeat(65)] {
            assert!(check_slug(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roots_that_climb_or_are_relative_are_refused() {
        for ok in ["~", "~/notes", "/srv/data", "/", "~/.local/share/notes", "unit:contacts"] {
            assert!(check_root_path(ok).is_ok(), "{ok}");
        }
        for bad in
            ["/../../srv/victim", "~/../x", "notes", "", "~/a//b", "/a/./b", "/a/", "~x", "unit:../x", "unit:", "/a\0b"]
        {
            assert!(check_root_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_entry_name(b"a.b").is_ok());
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0"] {
            assert!(check_entry_name(bad).is_err());
        }
        assert!(check_relative(b"a/b").is_ok());
        assert!(check_relative(b"a/../b").is_err() && check_relative(b"/a").is_err() && check_relative(b"").is_err());
    }
}
