//! The API token: made at random on first start, kept 0600 in the data folder.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub fn token_file(data: &Path) -> PathBuf {
    data.join("api-token")
}

/// The token, created when there is none yet.
pub fn read_or_create(data: &Path) -> std::io::Result<String> {
    let path = token_file(data);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    lifeboat_engine::paths::private_dir(data)?;
    let token = hex::encode(rand::random::<[u8; 32]>());
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    writeln!(f, "{token}")?;
    f.sync_all()?;
    // Another process that made one first wins; both then read the same.
    match std::fs::hard_link(&tmp, &path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let _ = std::fs::remove_file(&tmp);
    Ok(std::fs::read_to_string(&path)?.trim().to_string())
}
