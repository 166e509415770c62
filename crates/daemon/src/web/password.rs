//! The web page's optional password (`lifeboat passwd`): an Argon2id hash in the data folder,
//! 0600. The API token always works too.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

pub fn password_file(data: &Path) -> PathBuf {
    data.join("web-password")
}

/// Saves the hash of a new password (replacing any earlier one).
pub fn set(data: &Path, password: &str) -> std::io::Result<()> {
    if password.chars().count() < 8 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the password is shorter than 8 characters: choose a longer one",
        ));
    }
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| std::io::Error::other(e.to_string()))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .to_string();
    lifeboat_engine::paths::private_dir(data)?;
    let path = password_file(data);
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    writeln!(f, "{hash}")?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)
}

/// Removes the password: only the token signs in then.
pub fn remove(data: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(password_file(data)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// True when a password is set and `given` is it. Read at each sign-in, so `lifeboat passwd`
/// takes effect without restarting the daemon.
pub fn matches(data: &Path, given: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(password_file(data)) else { return false };
    let Ok(hash) = PasswordHash::new(text.trim()) else {
        tracing::error!(
            "{} does not hold a password hash: set the password again with `lifeboat passwd`",
            password_file(data).display()
        );
        return false;
    };
    Argon2::default().verify_password(given.as_bytes(), &hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_set_password_matches_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!matches(dir.path(), "anything at all"));
        assert!(set(dir.path(), "short").is_err());
        set(dir.path(), "correct horse").unwrap();
        let mode = std::fs::metadata(password_file(dir.path())).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!std::fs::read_to_string(password_file(dir.path())).unwrap().contains("correct horse"));
        assert!(matches(dir.path(), "correct horse"));
        assert!(!matches(dir.path(), "correct horse "));
        assert!(remove(dir.path()).unwrap());
        assert!(!matches(dir.path(), "correct horse"));
    }
}
