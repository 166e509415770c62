//! The keys of each location kind (docs/CONFIG.md), read into a storage backend's
//! configuration. Every key may be given as `KEY_file` (a file holding the value) or as
//! `"$VARIABLE"` (an environment variable holding it), so secrets need not sit in the file.

use std::path::PathBuf;

use lifeboat_storage::{DriveKind, HostKeyCheck, ServiceConfig, SftpConfig, SmbConfig};

use crate::config::{LocationConfig, LocationKind};
use crate::paths::Dirs;

/// The keys a kind accepts besides `type` and `path`, and which of them must be present.
fn keys_of(kind: LocationKind) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        LocationKind::Local => (&[], &["path"]),
        LocationKind::Removable => (&["uuid", "label"], &["path"]),
        LocationKind::Sftp => {
            (&["host", "port", "user", "key_file", "password", "known_hosts", "trust_new_host"], &["host"])
        }
        LocationKind::S3 => {
            (&["endpoint", "region", "bucket", "root", "access_key_id", "secret_access_key"], &["bucket"])
        }
        LocationKind::Webdav => (&["url", "root", "username", "password"], &["url"]),
        LocationKind::Smb => (&["host", "port", "share", "username", "password", "domain"], &["host", "share"]),
        LocationKind::Dropbox | LocationKind::Onedrive | LocationKind::Gdrive => {
            (&["root", "refresh_token", "access_token", "client_id", "client_secret"], &[])
        }
    }
}

/// Keys every kind accepts. `repository_password` is the secret that opens the location's
/// repository (not a login to the location, which some kinds call `password`); `like` names
/// the location whose repository's blob ids and chunking a repository made here takes.
const COMMON: &[&str] = &["upload_limit", "connections", "repository_password", "like"];

/// Checks a location's keys when the configuration is read, so a typo is reported at once
/// and not at the first backup.
pub fn validate(name: &str, lc: &LocationConfig) -> Result<(), String> {
    let (allowed, required) = keys_of(lc.kind);
    let kind = lc.kind.as_str();
    for key in lc.other.keys() {
        let base =
            if allowed.contains(&key.as_str()) { key.as_str() } else { key.strip_suffix("_file").unwrap_or(key) };
        if !allowed.contains(&base) && !COMMON.contains(&base) && base != "path" {
            let mut all: Vec<&str> = allowed.to_vec();
            all.extend(COMMON);
            all.insert(0, "path");
            return Err(format!("location {name} ({kind}) has no key {key:?}: its keys are {}", all.join(", ")));
        }
    }
    for key in required {
        let present = match *key {
            "path" => lc.path.is_some() || lc.other.contains_key("path_file"),
            k => lc.other.contains_key(k) || lc.other.contains_key(&format!("{k}_file")),
        };
        if !present {
            return Err(format!("location {name} ({kind}) needs {key} = \"…\""));
        }
    }
    // A folder location's path is where the backups are: relative to whatever folder a
    // command happened to start in, it would be a different place each time. A card found
    // by its uuid or label is the exception: there a relative path is a folder on the card.
    let on_a_card = lc.kind == LocationKind::Removable
        && ["uuid", "label"].iter().any(|k| lc.other.contains_key(*k) || lc.other.contains_key(&format!("{k}_file")));
    if let (LocationKind::Local | LocationKind::Removable, Some(path), false) = (lc.kind, &lc.path, on_a_card) {
        let p = path.as_str();
        if !(p.starts_with('/') || p == "~" || p.starts_with("~/") || p.starts_with('$')) {
            return Err(format!("location {name} ({kind}) path {p:?} must start with / or ~/"));
        }
    }
    if let Some(limit) = lc.other.get("upload_limit") {
        parse_rate(limit).map_err(|e| format!("location {name}: upload_limit {e}"))?;
    }
    connections(lc).map_err(|e| format!("location {name}: {e}"))?;
    Ok(())
}

/// Reads the keys of one location, resolving `_file` and `$VARIABLE` forms.
pub(crate) struct Settings<'a> {
    name: &'a str,
    lc: &'a LocationConfig,
    dirs: &'a Dirs,
}

impl<'a> Settings<'a> {
    pub fn new(name: &'a str, lc: &'a LocationConfig, dirs: &'a Dirs) -> Self {
        Settings { name, lc, dirs }
    }

    /// A key's value, if given.
    pub fn get(&self, key: &str) -> Result<Option<String>, String> {
        let file_key = format!("{key}_file");
        if let Some(v) = self.lc.other.get(&file_key) {
            let path = self.dirs.expand(v.as_str().ok_or_else(|| format!("{file_key} must be a string"))?);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!("{file_key} = {} cannot be read ({e}): create it or correct the path", path.display())
            })?;
            let value = text.trim_end_matches(['\n', '\r']).to_string();
            if value.is_empty() {
                return Err(format!("{file_key} = {} is empty: write the value into it", path.display()));
            }
            return Ok(Some(value));
        }
        let raw = match key {
            "path" => self.lc.path.clone(),
            _ => match self.lc.other.get(key) {
                None => None,
                Some(v) => Some(match v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    _ => return Err(format!("{key} must be a string")),
                }),
            },
        };
        match raw {
            Some(s) if s.starts_with('$') && s.len() > 1 => {
                let var = &s[1..];
                crate::command::keep_from_children(var);
                match std::env::var(var) {
                    Ok(v) if !v.is_empty() => Ok(Some(v)),
                    _ => Err(format!(
                        "{key} names the environment variable {var}, which is not set: set it or write the value"
                    )),
                }
            }
            other => Ok(other),
        }
    }

    pub fn required(&self, key: &str) -> Result<String, String> {
        self.get(key)?.ok_or_else(|| format!("{key} is missing: add {key} = \"…\" to [location.{}]", self.name))
    }

    fn path(&self, key: &str) -> Result<Option<PathBuf>, String> {
        Ok(self.get(key)?.map(|p| self.dirs.expand(&p)))
    }

    /// `connections = N`: requests to the location at once.
    pub fn connections(&self) -> Result<Option<usize>, String> {
        connections(self.lc)
    }

    pub fn upload_limit(&self) -> Result<Option<u64>, String> {
        match self.lc.other.get("upload_limit") {
            None => Ok(None),
            Some(v) => parse_rate(v).map(Some).map_err(|e| format!("upload_limit {e}")),
        }
    }

    pub fn sftp(&self) -> Result<SftpConfig, String> {
        let host = self.required("host")?;
        let port = match self.get("port")? {
            None => 22,
            Some(p) => p.parse().map_err(|_| format!("port {p:?} is not a port number"))?,
        };
        let user = match self.get("user")? {
            Some(u) => u,
            None => crate::user(),
        };
        let known_hosts = self.path("known_hosts")?.unwrap_or_else(|| self.dirs.home.join(".ssh/known_hosts"));
        let trust_new = self.get("trust_new_host")?.is_some_and(|v| v == "true");
        let key_file = self.path("key_file")?;
        let password = self.get("password")?;
        if key_file.is_none() && password.is_none() {
            return Err("needs key_file = \"~/.ssh/id_ed25519\" or a password".into());
        }
        Ok(SftpConfig {
            host,
            port,
            user,
            path: self.get("path")?.unwrap_or_default(),
            key_file,
            password,
            host_key: if trust_new {
                HostKeyCheck::LearnInto(known_hosts)
            } else {
                HostKeyCheck::KnownHosts(known_hosts)
            },
        })
    }

    pub fn smb(&self) -> Result<SmbConfig, String> {
        let port = match self.get("port")? {
            None => 445,
            Some(p) => p.parse().map_err(|_| format!("port {p:?} is not a port number"))?,
        };
        Ok(SmbConfig {
            host: self.required("host")?,
            port,
            share: self.required("share")?,
            path: self.get("path")?.unwrap_or_else(|| "lifeboat".into()),
            username: self.get("username")?.unwrap_or_else(crate::user),
            password: self.required("password")?,
            domain: self.get("domain")?,
        })
    }

    pub fn service(&self) -> Result<ServiceConfig, String> {
        let root = self.get("root")?.unwrap_or_else(|| "lifeboat".into());
        Ok(match self.lc.kind {
            LocationKind::S3 => {
                let access_key_id = self.get("access_key_id")?;
                let secret_access_key = self.get("secret_access_key")?;
                if access_key_id.is_some() != secret_access_key.is_some() {
                    return Err("give both access_key_id and secret_access_key, or neither".into());
                }
                ServiceConfig::S3 {
                    endpoint: self.get("endpoint")?,
                    region: self.get("region")?,
                    bucket: self.required("bucket")?,
                    root: self.get("root")?.unwrap_or_default(),
                    access_key_id,
                    secret_access_key,
                }
            }
            LocationKind::Webdav => ServiceConfig::Webdav {
                url: self.required("url")?,
                root: self.get("root")?.unwrap_or_default(),
                username: self.get("username")?,
                password: self.get("password")?,
            },
            kind @ (LocationKind::Dropbox | LocationKind::Onedrive | LocationKind::Gdrive) => {
                let refresh_token = self.get("refresh_token")?;
                let access_token = self.get("access_token")?;
                if refresh_token.is_none() && access_token.is_none() {
                    return Err("needs refresh_token (with client_id and client_secret) or access_token".into());
                }
                ServiceConfig::Drive {
                    kind: match kind {
                        LocationKind::Dropbox => DriveKind::Dropbox,
                        LocationKind::Onedrive => DriveKind::Onedrive,
                        _ => DriveKind::Gdrive,
                    },
                    root,
                    refresh_token,
                    access_token,
                    client_id: self.get("client_id")?,
                    client_secret: self.get("client_secret")?,
                }
            }
            other => return Err(format!("{} is not a storage service", other.as_str())),
        })
    }
}

/// Most requests at once a location may be given: more only queue at the server.
const MAX_CONNECTIONS: i64 = 64;

fn connections(lc: &LocationConfig) -> Result<Option<usize>, String> {
    match lc.other.get("connections") {
        None => Ok(None),
        Some(toml::Value::Integer(n)) if (1..=MAX_CONNECTIONS).contains(n) => Ok(Some(*n as usize)),
        Some(v) => Err(format!("connections = {v} must be a whole number from 1 to {MAX_CONNECTIONS}")),
    }
}

/// `1000000`, `"500 KiB/s"`, `"2MB"`, `"1.5 MiB/s"`: bytes per second.
fn parse_rate(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::Integer(i) if *i > 0 => Ok(*i as u64),
        toml::Value::String(s) => {
            let t = s.trim().trim_end_matches("/s").trim();
            let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
            let (num, unit) = t.split_at(split);
            let num: f64 = num.parse().map_err(|_| format!("{s:?} is not a rate such as \"2 MiB/s\""))?;
            let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
                "" | "b" => 1.0,
                "k" | "kb" => 1e3,
                "kib" => 1024.0,
                "m" | "mb" => 1e6,
                "mib" => 1024.0 * 1024.0,
                "g" | "gb" => 1e9,
                "gib" => 1024.0 * 1024.0 * 1024.0,
                _ => return Err(format!("{s:?} has an unknown unit; use KB, MB, KiB or MiB per second")),
            };
            let rate = (num * mult) as u64;
            if rate == 0 {
                return Err("must be more than 0".into());
            }
            Ok(rate)
        }
        _ => Err("must be a number of bytes per second or a string such as \"2 MiB/s\"".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_limits_read_as_bytes_per_second() {
        let v = |s: &str| parse_rate(&toml::Value::String(s.into()));
        assert_eq!(parse_rate(&toml::Value::Integer(500_000)), Ok(500_000));
        assert_eq!(v("2 MiB/s"), Ok(2 << 20));
        assert_eq!(v("500KB/s"), Ok(500_000));
        assert_eq!(v("1.5 MB"), Ok(1_500_000));
        assert!(v("fast").is_err());
        assert!(v("3 parsecs").is_err());
        assert!(parse_rate(&toml::Value::Integer(0)).is_err());
    }

    #[test]
    fn secrets_come_from_files_and_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cr3t\n").unwrap();
        let mut lc = LocationConfig { kind: LocationKind::Webdav, ..Default::default() };
        lc.other.insert("url".into(), toml::Value::String("$LIFEBOAT_SETTINGS_TEST_URL".into()));
        lc.other.insert("password_file".into(), toml::Value::String(secret.display().to_string()));
        let home = dir.path().to_path_buf();
        let dirs = Dirs {
            config: home.join(".config/lifeboat"),
            data: home.join(".local/share/lifeboat"),
            logs: home.join(".local/state/lifeboat/logs"),
            home,
            cache: None,
            root: false,
        };
        let s = Settings::new("cloud", &lc, &dirs);
        assert_eq!(s.get("password").unwrap().as_deref(), Some("s3cr3t"));
        let err = s.get("url").unwrap_err();
        assert!(err.contains("LIFEBOAT_SETTINGS_TEST_URL, which is not set"), "{err}");
        assert!(validate("cloud", &lc).is_ok());
        lc.other.insert("bucket".into(), toml::Value::String("x".into()));
        assert!(validate("cloud", &lc).unwrap_err().contains("has no key \"bucket\""));
    }
}
