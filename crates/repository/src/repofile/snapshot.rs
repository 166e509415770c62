use serde::{Deserialize, Serialize};

use crate::{Node, RawBytes};

/// `snapshots/<id>`: one backup, sealed JSON. Written last, after every pack and index file
/// it needs, so a snapshot that can be read is a backup that can be restored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    /// Short, unique, stable name of the backup (8 hex digits).
    pub slug: String,
    pub name: String,
    /// When the backup started.
    pub date: jiff::Timestamp,
    pub finished: jiff::Timestamp,
    pub host: String,
    /// The id of the device that made it (random, made once per device). Absent in backups
    /// made before devices had ids: such a backup is its `host`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// The device's name when it made the backup (`device_name`, else the host name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    pub user: String,
    pub uid: u32,
    /// The home folder of the user who made the backup.
    pub home: RawBytes,
    /// True when the backup holds every configured unit.
    pub full: bool,
    pub status: SnapshotStatus,
    /// True when the repository is opened by a password a person chose.
    pub protected: bool,
    #[serde(default)]
    pub pinned: bool,
    pub units: Vec<SnapshotUnit>,
    /// Total bytes of the files in the backup, each counted once however many units hold it.
    pub size: u64,
    /// Entries other than folders, each counted once however many units hold it.
    pub files: u64,
    /// Bytes of new file content this backup added to the repository (before compression);
    /// the folder listings are counted in `stored` only.
    pub added: u64,
    /// Bytes this backup added to the location (compressed and encrypted).
    pub stored: u64,
    /// Bytes read from disk: files that were new or changed since the previous backup.
    /// Unchanged files are taken from it without reading.
    #[serde(default)]
    pub read: u64,
    #[serde(default)]
    pub tags: Vec<String>,
    pub program: String,
    /// Lifeboat's configuration (TOML) on the device that made the backup, without its
    /// secrets: offered back when a new device is set up from this backup. Absent in safety
    /// backups and in backups made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotStatus {
    Completed,
    CompletedWithWarnings,
    Failed,
}

impl Snapshot {
    /// The name of the device that made it: its recorded name, else its host name.
    pub fn device_name(&self) -> &str {
        self.device.as_deref().unwrap_or(&self.host)
    }
}

impl SnapshotStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            SnapshotStatus::Completed => "completed",
            SnapshotStatus::CompletedWithWarnings => "completed_with_warnings",
            SnapshotStatus::Failed => "failed",
        }
    }
}

/// One unit inside a backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotUnit {
    pub name: String,
    pub title: String,
    pub kind: String,
    pub status: SnapshotStatus,
    #[serde(default)]
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub roots: Vec<SnapshotRoot>,
    pub files: u64,
    pub dirs: u64,
    pub size: u64,
    #[serde(default)]
    pub not_included: Vec<String>,
    /// Paths (as written: `~/…` or absolute) that restoring this backup removes: what the
    /// restore a safety backup protects against created, so restoring it is an exact undo.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_on_restore: Vec<String>,
}

/// One configured path of a unit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotRoot {
    /// The path as written in the configuration (`~/.local/share/notes`), so a restore on
    /// another device or for another user lands under that user's home.
    pub path: String,
    /// Where it was on the device at backup time.
    pub absolute: RawBytes,
    /// The entry itself; a folder's contents hang from its subtree.
    pub node: Node,
    /// The tree holds only chosen entries of this path (a safety backup's): a restore never
    /// removes what it lacks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub selection: bool,
}
