//! Which device made a backup, and which devices a command means.
//!
//! A device has an id, random and made once (`device-id` beside its keys, in the
//! configuration folder), and a name a person reads (`device_name`, else the host name). Every
//! backup records both; a backup made before devices had ids is its host's, and so is every
//! backup of its host to a device that has made none yet. A device renamed keeps its backups:
//! they are its own by id.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lifeboat_repository::{Id, Snapshot};

use crate::{EngineError, EngineResult};

/// This device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// `None` until its first backup makes one.
    pub id: Option<String>,
    pub name: String,
    /// The host name (a backup without a device id is this device's when it has this host).
    pub host: String,
}

/// Which devices' backups a command means.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Devices {
    /// This device's (the default of `latest`, retention and `forget`).
    #[default]
    This,
    /// The device of this name (or id).
    Named(String),
    /// Every device's.
    All,
}

impl Devices {
    /// From `--device NAME` and `--all-devices`.
    pub fn from_args(device: Option<&str>, all: bool) -> Devices {
        match (device, all) {
            (_, true) => Devices::All,
            (Some(n), false) => Devices::Named(n.to_string()),
            (None, false) => Devices::This,
        }
    }

    /// Whether the backup is one of the devices meant. `names` gives each device id its
    /// newest name (see [`current_names`]), so a renamed device answers to its new name.
    pub fn admits(&self, this: &Device, names: &HashMap<String, String>, s: &Snapshot) -> bool {
        match self {
            Devices::All => true,
            Devices::This => this.owns(s),
            Devices::Named(n) => {
                (n == &this.name && this.owns(s))
                    || s.device_name() == n
                    || s.device_id.as_deref().is_some_and(|id| id == n || names.get(id) == Some(n))
            }
        }
    }
}

impl Device {
    /// Whether this device made the backup: by id; by host name for a backup without one,
    /// and on a device that has made no backup yet (a reinstalled system, or a user renamed
    /// as on Sailfish OS, "nemo" to "defaultuser": a new configuration on the same host).
    pub fn owns(&self, s: &Snapshot) -> bool {
        match (&s.device_id, &self.id) {
            (Some(theirs), Some(mine)) => theirs == mine,
            (_, None) | (None, _) => s.host == self.host,
        }
    }

    /// The name to show for a backup's device: this device's current name for its own, else
    /// the newest name its device recorded.
    pub fn name_of<'a>(&'a self, names: &'a HashMap<String, String>, s: &'a Snapshot) -> &'a str {
        if self.owns(s) {
            return &self.name;
        }
        s.device_id.as_ref().and_then(|id| names.get(id)).map(String::as_str).unwrap_or_else(|| s.device_name())
    }
}

/// Each device id's name in its newest backup among `snaps`.
pub fn current_names<'a>(snaps: impl IntoIterator<Item = &'a (Id, Snapshot)>) -> HashMap<String, String> {
    let mut newest: HashMap<String, (jiff::Timestamp, String)> = HashMap::new();
    for (_, s) in snaps {
        let Some(id) = &s.device_id else { continue };
        let entry = newest.entry(id.clone()).or_insert((s.date, s.device_name().to_string()));
        if s.date > entry.0 {
            *entry = (s.date, s.device_name().to_string());
        }
    }
    newest.into_iter().map(|(id, (_, name))| (id, name)).collect()
}

/// The file holding this device's id.
pub fn id_file(config_dir: &Path) -> PathBuf {
    config_dir.join("device-id")
}

/// This device's id, if one was made; an unreadable or malformed file is an error.
pub fn read_id(config_dir: &Path) -> EngineResult<Option<String>> {
    let path = id_file(config_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(Some(id.to_ascii_lowercase()))
            } else {
                Err(EngineError::Config {
                    path,
                    detail: "is not a device id (32 hex digits): remove it and a new id is made, which leaves \
                             this device's earlier backups another device's"
                        .into(),
                })
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EngineError::io("read", path, e)),
    }
}

/// This device's id, made now when it has none (written whole: a temporary file renamed).
pub fn make_id(config_dir: &Path) -> EngineResult<String> {
    if let Some(id) = read_id(config_dir)? {
        return Ok(id);
    }
    crate::paths::private_dir(config_dir).map_err(|e| EngineError::io("create", config_dir, e))?;
    let id = hex::encode(rand::random::<[u8; 16]>());
    let path = id_file(config_dir);
    let tmp = config_dir.join(format!(".device-id.{}", std::process::id()));
    let written = (|| {
        use std::io::Write;
        let mut f = crate::paths::private_file(&tmp)?;
        f.write_all(format!("{id}\n").as_bytes())?;
        f.sync_all()?;
        // Two processes making one at once: the first link wins and both read it.
        match std::fs::hard_link(&tmp, &path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    written.map_err(|e| EngineError::io("write", &path, e))?;
    read_id(config_dir)?
        .ok_or_else(|| EngineError::Internal(format!("{} vanished after it was written", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(host: &str, id: Option<&str>, name: Option<&str>, second: i64) -> (Id, Snapshot) {
        let mut s: Snapshot = serde_json::from_value(serde_json::json!({
            "version": 1, "slug": "aaaaaaaa", "name": "n", "date": "2026-01-01T00:00:00Z",
            "finished": "2026-01-01T00:00:00Z", "host": host, "user": "u", "uid": 1, "home": "/home/u",
            "full": true, "status": "completed", "protected": false, "units": [], "size": 0, "files": 0,
            "added": 0, "stored": 0, "program": "t"
        }))
        .expect("an old snapshot reads");
        s.device_id = id.map(str::to_string);
        s.device = name.map(str::to_string);
        s.date = jiff::Timestamp::from_second(1_767_225_600 + second).expect("a time");
        (Id::random(), s)
    }

    #[test]
    fn an_old_backup_is_its_hosts_and_a_new_one_its_ids() {
        let me = Device { id: Some("a".repeat(32)), name: "kitchen".into(), host: "pi".into() };
        assert!(me.owns(&snap("pi", None, None, 0).1));
        assert!(!me.owns(&snap("laptop", None, None, 0).1));
        assert!(me.owns(&snap("other-host", Some(&"a".repeat(32)), Some("old-name"), 0).1));
        assert!(!me.owns(&snap("pi", Some(&"b".repeat(32)), Some("pi"), 0).1));
        // Before its first backup a device is its host.
        let fresh = Device { id: None, ..me };
        assert!(fresh.owns(&snap("pi", Some(&"b".repeat(32)), Some("pi"), 0).1));
        assert!(!fresh.owns(&snap("laptop", Some(&"b".repeat(32)), Some("laptop"), 0).1));
    }

    #[test]
    fn a_renamed_device_answers_to_its_new_name() {
        let kid = "b".repeat(32);
        let all = vec![snap("h", Some(&kid), Some("kids"), 0), snap("h", Some(&kid), Some("den"), 10)];
        let names = current_names(&all);
        let me = Device { id: Some("a".repeat(32)), name: "parent".into(), host: "h".into() };
        let den = Devices::Named("den".into());
        assert!(all.iter().all(|(_, s)| den.admits(&me, &names, s)));
        assert_eq!(me.name_of(&names, &all[0].1), "den");
        assert!(!Devices::This.admits(&me, &names, &all[0].1));
    }

    #[test]
    fn an_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("a folder");
        assert_eq!(read_id(dir.path()).expect("reads"), None);
        let id = make_id(dir.path()).expect("made");
        assert_eq!(make_id(dir.path()).expect("kept"), id);
        std::fs::write(id_file(dir.path()), "nonsense").expect("written");
        assert!(read_id(dir.path()).is_err());
    }
}
