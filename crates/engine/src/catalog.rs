//! Backups as people see them: the fields of `backups list --json` (DESIGN.md).

use std::collections::HashMap;

use lifeboat_repository::{Id, Snapshot};

use crate::Device;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct BackupInfo {
    pub slug: String,
    pub name: String,
    /// RFC 3339.
    pub date: String,
    pub location: String,
    /// `full` or `partial`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub units: Vec<String>,
    /// Bytes of the files in the backup, each file once however many units hold it.
    pub size: u64,
    pub protected: bool,
    pub status: &'static str,
    pub pinned: bool,
    /// The name of the device that made it (its newest name, when it was renamed).
    pub device: String,
    /// Its device's id; none for a backup made before devices had ids.
    pub device_id: Option<String>,
    /// Whether this device made it.
    pub this_device: bool,
    pub host: String,
    pub user: String,
    pub home: String,
    pub files: u64,
    /// Bytes of new file content this backup stored (before compression).
    pub added: u64,
    /// Bytes it added to the location.
    pub stored: u64,
    /// Bytes read from disk (new and changed files).
    pub read: u64,
    pub warnings: usize,
    pub finished: String,
    pub id: String,
    /// `schedule:NAME` for backups a schedule made, `safety` for safety backups.
    pub tags: Vec<String>,
}

impl BackupInfo {
    pub fn new(id: &Id, s: &Snapshot, location: &str) -> BackupInfo {
        BackupInfo {
            slug: s.slug.clone(),
            name: s.name.clone(),
            date: s.date.to_string(),
            location: location.to_string(),
            kind: if s.full { "full" } else { "partial" },
            units: s.units.iter().map(|u| u.name.clone()).collect(),
            size: s.size,
            protected: s.protected,
            status: s.status.as_str(),
            pinned: s.pinned,
            device: s.device_name().to_string(),
            device_id: s.device_id.clone(),
            this_device: false,
            host: s.host.clone(),
            user: s.user.clone(),
            home: s.home.display(),
            files: s.files,
            added: s.added,
            stored: s.stored,
            read: s.read,
            warnings: s.units.iter().map(|u| u.warnings.len()).sum(),
            finished: s.finished.to_string(),
            id: id.to_hex(),
            tags: s.tags.clone(),
        }
    }

    /// With its device as this device sees it: its own backups under its current name, another
    /// device's under the newest name in `names` (see [`crate::device::current_names`]).
    pub fn seen_from(mut self, this: &Device, names: &HashMap<String, String>, s: &Snapshot) -> BackupInfo {
        self.device = this.name_of(names, s).to_string();
        self.this_device = this.owns(s);
        self
    }
}

/// One backup in full: its listing fields, each unit's, and where its log is (when this
/// device made it). `backups info --json` and `GET /api/backups/{slug}` are this.
#[derive(Debug, Clone, Serialize)]
pub struct BackupDetails {
    #[serde(flatten)]
    pub info: BackupInfo,
    pub unit_details: Vec<UnitDetail>,
    pub log: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnitDetail {
    pub name: String,
    pub title: String,
    pub kind: String,
    pub status: String,
    pub files: u64,
    pub dirs: u64,
    pub size: u64,
    pub paths: Vec<String>,
    pub warnings: Vec<String>,
    pub error: Option<String>,
    pub not_included: Vec<String>,
}

impl BackupDetails {
    pub fn new(id: &Id, s: &Snapshot, location: &str, logs: &std::path::Path) -> BackupDetails {
        BackupDetails {
            info: BackupInfo::new(id, s, location),
            unit_details: s
                .units
                .iter()
                .map(|u| UnitDetail {
                    name: u.name.clone(),
                    title: u.title.clone(),
                    kind: u.kind.clone(),
                    status: u.status.as_str().into(),
                    files: u.files,
                    dirs: u.dirs,
                    size: u.size,
                    paths: u.roots.iter().map(|r| r.path.clone()).collect(),
                    warnings: u.warnings.clone(),
                    error: u.error.clone(),
                    not_included: u.not_included.clone(),
                })
                .collect(),
            log: crate::runlog::find(logs, Some(&s.slug), "backup").map(|p| p.display().to_string()),
        }
    }
}
