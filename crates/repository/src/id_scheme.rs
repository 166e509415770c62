//! What turns content into blob ids: the id key, the chunker's sizes and its seed. Two
//! repositories of one owner that share them (one made "like" the other) give equal content
//! equal blob ids, so a copy between them sends only what the destination lacks and two
//! backups in them compare by id. The encryption key is never shared (docs/FORMAT.md, "Keys").

use crate::crypto::MasterKey;
use crate::repofile::config::ChunkerParams;
use crate::Id;

/// A repository's id key, chunker sizes and chunker seed: secret (whoever holds it can tell
/// whether a repository stores a given chunk), so it leaves a repository only to make another
/// like it, and is never printed.
#[derive(Clone)]
pub struct IdScheme {
    pub(crate) id_key: [u8; 32],
    pub(crate) chunker: ChunkerParams,
    pub(crate) seed: u64,
}

impl std::fmt::Debug for IdScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdScheme(…)")
    }
}

impl IdScheme {
    /// Whether two repositories with these schemes give one blob the same id.
    pub fn same_ids(&self, other: &IdScheme) -> bool {
        self.id_key == other.id_key
    }

    /// Whether they also cut files at the same places, so that equal files have equal blob
    /// lists (and unequal lists mean unequal files).
    pub fn same_chunking(&self, other: &IdScheme) -> bool {
        self.same_ids(other)
            && self.seed == other.seed
            && self.chunker.algorithm == other.chunker.algorithm
            && (self.chunker.min_size, self.chunker.avg_size, self.chunker.max_size)
                == (other.chunker.min_size, other.chunker.avg_size, other.chunker.max_size)
    }
}

/// The chunker seed of a repository: its config id's first 8 bytes XOR a value derived
/// from the master key (docs/FORMAT.md, "Blobs and their ids").
pub(crate) fn chunker_seed(key: &MasterKey, config_id: &Id) -> u64 {
    u64::from_le_bytes(config_id.0[..8].try_into().expect("8 bytes")) ^ key_part(key)
}

fn key_part(key: &MasterKey) -> u64 {
    u64::from_le_bytes(
        blake3::derive_key("lifeboat 2026 chunker seed v1", &key.to_bytes())[..8].try_into().expect("8 bytes"),
    )
}

/// The master key, config id and chunker sizes of a new repository: random, or (`like`)
/// with a fresh encryption key beside the other's id key, and a config id whose first 8
/// bytes make the chunker seed the other's. Nothing in the format changes: a reader of any
/// version computes ids and seed as always and finds them equal to the other repository's.
pub(crate) fn new_keys(like: Option<&IdScheme>) -> (MasterKey, Id, ChunkerParams) {
    let Some(like) = like else { return (MasterKey::random(), Id::random(), ChunkerParams::default()) };
    let mut raw = [0u8; 64];
    rand::Rng::fill(&mut rand::thread_rng(), &mut raw[..32]);
    raw[32..].copy_from_slice(&like.id_key);
    let key = MasterKey::from_bytes(&raw);
    let mut id = Id::random();
    id.0[..8].copy_from_slice(&(like.seed ^ key_part(&key)).to_le_bytes());
    (key, id, like.chunker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_made_like_another_shares_ids_and_seed_but_not_its_encryption_key() {
        let (key, id, chunker) = new_keys(None);
        let first = IdScheme { id_key: key.id_key(), chunker, seed: chunker_seed(&key, &id) };
        let (key2, id2, chunker2) = new_keys(Some(&first));
        let second = IdScheme { id_key: key2.id_key(), chunker: chunker2, seed: chunker_seed(&key2, &id2) };
        assert!(first.same_chunking(&second));
        assert_eq!(key.blob_id(b"x"), key2.blob_id(b"x"));
        assert_ne!(key.to_bytes()[..32], key2.to_bytes()[..32], "the encryption key is its own");
        assert!(key2.open(&key.seal(b"secret", false), None).is_err());
        assert_ne!(id, id2);
        let (key3, id3, chunker3) = new_keys(None);
        let third = IdScheme { id_key: key3.id_key(), chunker: chunker3, seed: chunker_seed(&key3, &id3) };
        assert!(!first.same_ids(&third) && !first.same_chunking(&third));
    }
}
