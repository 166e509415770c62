use serde::{Deserialize, Serialize};

use crate::Id;

/// `config`: sealed JSON, written once when the repository is created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RepoConfig {
    pub version: u32,
    pub id: Id,
    pub created: jiff::Timestamp,
    pub chunker: ChunkerParams,
    /// Target size of a pack file in bytes.
    pub pack_size: u32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub algorithm: ChunkerAlgorithm,
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            algorithm: ChunkerAlgorithm::FastCdc2020,
            min_size: 512 * 1024,
            avg_size: 1024 * 1024,
            max_size: 8 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkerAlgorithm {
    /// FastCDC 2020 with normalisation level 1, gear table XOR-ed with a secret seed.
    #[serde(rename = "fastcdc-2020")]
    FastCdc2020,
}
