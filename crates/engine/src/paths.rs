//! Where Lifeboat keeps its own files, following the XDG base directories for users and the
//! FHS for root, and how `~` in the configuration is understood.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::{EngineError, EngineResult};

/// The folders of the user running Lifeboat.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub home: PathBuf,
    pub config: PathBuf,
    pub data: PathBuf,
    pub logs: PathBuf,
    /// The metadata cache's folder; `None` when it is not to be used (`--no-cache`).
    pub cache: Option<PathBuf>,
    pub root: bool,
}

impl Dirs {
    pub fn from_env() -> EngineResult<Dirs> {
        let root = nix::unistd::geteuid().is_root();
        let home = home_dir().ok_or(EngineError::NoHome)?;
        let xdg = |var: &str, default: &str| -> PathBuf {
            std::env::var_os(var)
                .filter(|v| !v.is_empty() && Path::new(v).is_absolute())
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(default))
        };
        // Root uses the system folders, unless its environment names XDG folders on purpose
        // (a root shell normally has none set).
        let explicit = |var: &str| {
            std::env::var_os(var).filter(|v| !v.is_empty() && Path::new(v).is_absolute()).map(PathBuf::from)
        };
        Ok(if root {
            Dirs {
                config: explicit("XDG_CONFIG_HOME")
                    .map(|p| p.join("lifeboat"))
                    .unwrap_or_else(|| "/etc/lifeboat".into()),
                data: explicit("XDG_DATA_HOME")
                    .map(|p| p.join("lifeboat"))
                    .unwrap_or_else(|| "/var/lib/lifeboat".into()),
                logs: explicit("XDG_STATE_HOME")
                    .map(|p| p.join("lifeboat").join("logs"))
                    .unwrap_or_else(|| "/var/log/lifeboat".into()),
                cache: Some(
                    explicit("XDG_CACHE_HOME")
                        .map(|p| p.join("lifeboat"))
                        .unwrap_or_else(|| "/var/cache/lifeboat".into()),
                ),
                home,
                root,
            }
        } else {
            Dirs {
                config: xdg("XDG_CONFIG_HOME", ".config").join("lifeboat"),
                data: xdg("XDG_DATA_HOME", ".local/share").join("lifeboat"),
                logs: xdg("XDG_STATE_HOME", ".local/state").join("lifeboat").join("logs"),
                cache: Some(xdg("XDG_CACHE_HOME", ".cache").join("lifeboat")),
                home,
                root,
            }
        })
    }

    /// The folders a user has by default, from their home alone (no XDG variables): whose a
    /// hook runs for, found from the password database rather than an environment that is
    /// not theirs (sudo's, APT's).
    pub fn of_user(home: PathBuf, root: bool) -> Dirs {
        if root {
            return Dirs {
                config: "/etc/lifeboat".into(),
                data: "/var/lib/lifeboat".into(),
                logs: "/var/log/lifeboat".into(),
                cache: Some("/var/cache/lifeboat".into()),
                home,
                root,
            };
        }
        Dirs {
            config: home.join(".config/lifeboat"),
            data: home.join(".local/share/lifeboat"),
            logs: home.join(".local/state/lifeboat/logs"),
            cache: Some(home.join(".cache/lifeboat")),
            home,
            root,
        }
    }

    /// The environment under which [`Dirs::from_env`] gives these folders again: `HOME`, and
    /// each XDG variable whose folder is not the default one.
    pub fn environment(&self) -> Vec<(&'static str, PathBuf)> {
        let default = Dirs::of_user(self.home.clone(), self.root);
        let mut env = vec![("HOME", self.home.clone())];
        let parent = |p: &Path, up: usize| p.ancestors().nth(up).map(Path::to_path_buf);
        let wanted = [
            ("XDG_CONFIG_HOME", &self.config, &default.config, 1),
            ("XDG_DATA_HOME", &self.data, &default.data, 1),
            ("XDG_STATE_HOME", &self.logs, &default.logs, 2),
        ];
        for (var, mine, theirs, up) in wanted {
            if mine != theirs {
                env.extend(parent(mine, up).map(|p| (var, p)));
            }
        }
        if let (Some(mine), Some(theirs)) = (&self.cache, &default.cache) {
            if mine != theirs {
                env.extend(parent(mine, 1).map(|p| ("XDG_CACHE_HOME", p)));
            }
        }
        env
    }

    /// The configuration file used when none is named.
    pub fn config_file(&self) -> PathBuf {
        self.config.join("lifeboat.toml")
    }

    /// The folder of device keys (random keys made for repositories nobody gave a password for).
    pub fn key_dir(&self) -> PathBuf {
        self.config.join("keys")
    }

    /// Expands a leading `~` to this user's home.
    pub fn expand(&self, written: &str) -> PathBuf {
        expand_home(written, &self.home)
    }
}

/// Expands a leading `~` (alone or followed by `/`) to `home`.
pub fn expand_home(written: &str, home: &Path) -> PathBuf {
    if written == "~" {
        home.to_path_buf()
    } else if let Some(rest) = written.strip_prefix("~/") {
        home.join(rest)
    } else {
        PathBuf::from(written)
    }
}

fn home_dir() -> Option<PathBuf> {
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(h));
    }
    nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten().map(|u| u.dir)
}

/// `dir` joined with `abs` as if `abs` were relative: `/t` + `/home/u/a` = `/t/home/u/a`.
pub fn reroot(dir: &Path, abs: &Path) -> PathBuf {
    let bytes = abs.as_os_str().as_bytes();
    let trimmed = bytes.iter().position(|&b| b != b'/').map(|i| &bytes[i..]).unwrap_or(&[]);
    dir.join(OsString::from_vec(trimmed.to_vec()))
}

/// Creates a folder of Lifeboat's own (logs, state, keys) and its missing parents, each one
/// only its owner can open: other users of the device must not read what a run logged.
pub fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Creates (or truncates) a file only its owner can read; one made earlier with wider
/// permissions is narrowed.
pub fn private_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_and_reroot() {
        let home = Path::new("/home/nemo");
        assert_eq!(expand_home("~", home), PathBuf::from("/home/nemo"));
        assert_eq!(expand_home("~/notes", home), PathBuf::from("/home/nemo/notes"));
        assert_eq!(expand_home("/etc/x", home), PathBuf::from("/etc/x"));
        assert_eq!(expand_home("~other/x", home), PathBuf::from("~other/x"));
        assert_eq!(reroot(Path::new("/t"), Path::new("/home/u/a")), PathBuf::from("/t/home/u/a"));
    }
}
