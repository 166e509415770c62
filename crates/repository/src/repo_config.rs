//! Reading the repository config so that one bad object never loses a backup: the `config`
//! object; else the sealed copy a key slot carries; else, for repositories whose slots predate
//! the copies, a config rebuilt from the master key (backups restore the same; only new data
//! stops sharing chunks with older data until the next full backup). `check` names the damage
//! and `check --repair` writes the config back.

use serde::Serialize;

use crate::crypto::MasterKey;
use crate::keys::config_copy;
use crate::repofile::config::{ChunkerParams, RepoConfig};
use crate::repofile::keyfile::KeyFile;
use crate::{Id, RepoError, RepoResult, FORMAT_VERSION};

/// Target size of a pack file in bytes, for new repositories and rebuilt configs.
pub(crate) const PACK_SIZE: u32 = 16 * 1024 * 1024;

/// What opening found of the `config` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConfigState {
    Intact,
    /// `config` is damaged or missing; the copy in a key slot stands in.
    FromCopy {
        problem: String,
        slot: String,
    },
    /// `config` is damaged or missing and no slot carries a copy; one rebuilt from the master
    /// key stands in.
    Rebuilt {
        problem: String,
    },
}

impl ConfigState {
    /// What is wrong and what stands in, in words; `None` when the config is intact.
    pub fn problem(&self) -> Option<String> {
        match self {
            ConfigState::Intact => None,
            ConfigState::FromCopy { problem, slot } => Some(format!("{problem}; the copy in {slot} stands in")),
            ConfigState::Rebuilt { problem } => Some(format!(
                "{problem} and no key slot holds a copy; a config rebuilt from the master key stands in (backups restore as before; new data is stored again once)"
            )),
        }
    }
}

/// The config in use, its sealed bytes (what a new key slot keeps a copy of), and where it
/// came from.
pub(crate) struct LoadedConfig {
    pub config: RepoConfig,
    pub sealed: Vec<u8>,
    pub state: ConfigState,
}

pub(crate) fn seal(key: &MasterKey, config: &RepoConfig) -> Vec<u8> {
    key.seal(&serde_json::to_vec(config).expect("config serialises"), true)
}

/// Decodes sealed config bytes; `Err` says what is wrong with them.
fn decode(key: &MasterKey, sealed: &[u8]) -> Result<RepoConfig, String> {
    let plain = key.open(sealed, None).map_err(|_| "failed authentication (damaged or tampered with)".to_string())?;
    serde_json::from_slice(&plain).map_err(|e| format!("is malformed ({e})"))
}

fn supported(config: RepoConfig, location: &str) -> RepoResult<RepoConfig> {
    if config.version != FORMAT_VERSION {
        return Err(RepoError::UnsupportedVersion {
            location: location.to_string(),
            found: config.version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(config)
}

/// Reads the config with the master key from `opened`; the slots give the copies, the one
/// that opened first.
pub(crate) fn load(
    location: &str,
    stored: Option<Vec<u8>>,
    key: &MasterKey,
    slots: &[(Id, KeyFile)],
    opened: Id,
) -> RepoResult<LoadedConfig> {
    let problem = match stored {
        Some(sealed) => match decode(key, &sealed) {
            Ok(config) => {
                return Ok(LoadedConfig { config: supported(config, location)?, sealed, state: ConfigState::Intact })
            }
            Err(why) => format!("the repository config {why}"),
        },
        None => "the repository config is missing".to_string(),
    };
    let mut order: Vec<&(Id, KeyFile)> = slots.iter().collect();
    order.sort_by_key(|(id, _)| *id != opened);
    for (id, slot) in order {
        let Some(sealed) = config_copy(slot) else { continue };
        if let Ok(config) = decode(key, &sealed) {
            let state = ConfigState::FromCopy { problem, slot: crate::keys::slot_name(id) };
            return Ok(LoadedConfig { config: supported(config, location)?, sealed, state });
        }
    }
    let config = rebuilt(key, slots);
    Ok(LoadedConfig { sealed: seal(key, &config), config, state: ConfigState::Rebuilt { problem } })
}

/// A config made from what the master key determines: the same every time, so every device
/// that rebuilds it chunks alike. Its settings are the ones every repository was made with.
fn rebuilt(key: &MasterKey, slots: &[(Id, KeyFile)]) -> RepoConfig {
    RepoConfig {
        version: FORMAT_VERSION,
        id: Id(blake3::derive_key("lifeboat 2026 rebuilt config id v1", &key.to_bytes())),
        created: slots.iter().map(|(_, s)| s.created).min().unwrap_or_else(jiff::Timestamp::now),
        chunker: ChunkerParams::default(),
        pack_size: PACK_SIZE,
    }
}
