use serde::{Deserialize, Serialize};

use crate::KeyKind;

/// `keys/<id>`: one key slot, plain JSON (it must be readable before anything is unlocked).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct KeyFile {
    pub version: u32,
    pub kind: KeyKind,
    #[serde(default)]
    pub label: String,
    pub created: jiff::Timestamp,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub user: String,
    pub kdf: Kdf,
    /// base64 of nonce (24) ‖ XChaCha20-Poly1305(master key, 64 bytes) ‖ tag (16).
    pub master: String,
    /// base64 of a BLAKE3 MAC over the fields above, keyed from the master key: whoever opens
    /// the repository can tell a damaged slot from one for a secret they do not have.
    /// Absent in slots made before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// base64 of a copy of the sealed `config` object, so that a damaged or missing config is
    /// rebuilt from whatever slot opens. Not covered by `check`: the seal authenticates it.
    /// Absent in slots made before it existed (`check --repair` adds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "lowercase")]
pub(crate) enum Kdf {
    Argon2id { memory_kib: u32, iterations: u32, parallelism: u32, salt: String },
    Blake3 { salt: String },
}
