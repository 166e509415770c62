//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz): each parser of bytes a
//! repository holds, after decryption (a forger without the key cannot get past the AEAD, but
//! a bug or a damaged disk after it must still not crash a reader). Not part of the API.

use crate::crypto::MasterKey;
use crate::keys::{check_kdf, open_slot};
use crate::repofile::index_file::IndexFile;
use crate::repofile::keyfile::{Kdf, KeyFile};
use crate::repofile::pack_header;
use crate::{RecoveryKey, Snapshot, Tree};

fn fixed_key() -> MasterKey {
    MasterKey::from_bytes(&[7u8; 64])
}

/// A pack's header, plain and sealed; what decodes must encode back to the same bytes.
pub fn pack_header(data: &[u8]) {
    if let Ok(entries) = pack_header::decode(data) {
        assert_eq!(pack_header::encode(&entries), data, "a decoded header encodes back");
    }
    let _ = crate::pack::PackBytes::new(data.to_vec()).header(&fixed_key());
}

/// An index file's plaintext; what decodes must survive a round trip.
pub fn index_file(data: &[u8]) {
    if let Ok(file) = IndexFile::decode(data) {
        let again = IndexFile::decode(&file.encode()).expect("an encoded index decodes");
        assert_eq!(again.packs.len(), file.packs.len());
    }
}

/// A folder listing, as stored.
pub fn tree(data: &[u8]) {
    if let Ok(tree) = serde_json::from_slice::<Tree>(data) {
        let again: Tree = serde_json::from_slice(&crate::Repository::encode_tree(&tree)).expect("a tree re-reads");
        assert_eq!(again.nodes.len(), tree.nodes.len());
    }
}

/// A snapshot, as stored.
pub fn snapshot(data: &[u8]) {
    if let Ok(s) = serde_json::from_slice::<Snapshot>(data) {
        let _ = serde_json::to_vec(&s).expect("a snapshot serialises");
    }
}

/// A key slot: parsed, its KDF parameters bounded, and (for key slots opened by a full-entropy
/// key, which cost nothing) opened with a fixed key.
pub fn key_file(data: &[u8]) {
    let Ok(slot) = serde_json::from_slice::<KeyFile>(data) else { return };
    if check_kdf(&slot.kdf).is_err() {
        return;
    }
    if matches!(slot.kdf, Kdf::Blake3 { .. }) {
        let key = RecoveryKey::parse("AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH").expect("a well-formed key");
        let _ = open_slot(&slot, &key.as_secret());
    }
}
