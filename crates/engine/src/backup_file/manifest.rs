//! `backup.json` and `BLAKE3SUMS`: the on-disk records of a backup file.

use lifeboat_repository::{RawBytes, Snapshot};
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "lifeboat backup file";
pub const VERSION: u32 = 1;
pub const MANIFEST_NAME: &str = "backup.json";
pub const SUMS_NAME: &str = "BLAKE3SUMS";
/// The largest `backup.json` a reader accepts.
pub(crate) const MAX_MANIFEST: u64 = 64 << 20;

/// The first entry of a backup file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub program: String,
    pub created: jiff::Timestamp,
    /// The backup's metadata, as in its repository, without the repository's blob ids.
    pub backup: Snapshot,
    /// One file per unit, in the order they follow.
    pub units: Vec<UnitFile>,
    /// Lifeboat's configuration on the device that made a full backup, without secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// One unit's file inside the backup file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitFile {
    pub name: String,
    /// `units/NAME.tar.zst`, or `units/NAME.tar.zst.age` when encrypted.
    pub file: String,
    /// Its length in bytes.
    pub size: u64,
    pub encrypted: bool,
    /// Where each of the unit's paths is inside its tar, in the order of the backup's roots.
    pub roots: Vec<RootPath>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootPath {
    /// The path as configured (`~/Documents`).
    pub path: String,
    /// The path inside the tar (`home/nemo/Documents`).
    pub archive: RawBytes,
}

impl Manifest {
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("it is not a Lifeboat backup file (format {:?})", self.format));
        }
        if self.version > VERSION {
            return Err(format!(
                "it was written in format version {} by {}: this Lifeboat reads up to version {VERSION}; update Lifeboat",
                self.version, self.program
            ));
        }
        for u in &self.units {
            let plain = format!("units/{}.tar.zst", u.name);
            let expected = if u.encrypted { format!("{plain}.age") } else { plain };
            if u.file != expected || u.name.is_empty() || u.name.contains('/') {
                return Err(format!("its list of units names a bad file {:?}", u.file));
            }
            // Where a restore writes comes from these: refuse the file before anything is
            // written rather than trust them (its checksums sit in the same file).
            lifeboat_repository::check_unit_name(&u.name).map_err(|e| format!("refused: {e}"))?;
            for r in &u.roots {
                lifeboat_repository::check_root_path(&r.path).map_err(|e| format!("refused: unit {}: {e}", u.name))?;
                if r.archive.0 != b"." {
                    lifeboat_repository::check_relative(&r.archive.0)
                        .map_err(|e| format!("refused: unit {}: its place in the file: {e}", u.name))?;
                }
            }
        }
        self.backup.check_paths().map_err(|e| format!("refused: {e}"))?;
        Ok(())
    }
}

/// `BLAKE3SUMS`, in the format `b3sum --check` reads: `HEX  NAME` a line.
pub(crate) fn sums_text(sums: &[(String, [u8; 32])]) -> String {
    sums.iter().map(|(name, h)| format!("{}  {name}\n", hex::encode(h))).collect()
}

pub(crate) fn sums_len(names: &[String]) -> u64 {
    names.iter().map(|n| 64 + 2 + n.len() as u64 + 1).sum()
}

pub(crate) fn parse_sums(text: &str) -> Vec<(String, String)> {
    text.lines().filter_map(|l| l.split_once("  ")).map(|(h, n)| (n.to_string(), h.to_ascii_lowercase())).collect()
}
