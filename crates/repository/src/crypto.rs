//! Sealing: every stored byte is compressed (when that helps) and then encrypted with
//! XChaCha20-Poly1305 under a fresh random 192-bit nonce.

use std::cell::RefCell;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};

use crate::Id;

pub(crate) const NONCE_LEN: usize = 24;
pub(crate) const TAG_LEN: usize = 16;
/// Bytes a sealed object has beyond its (compressed) payload: nonce, frame flag, tag.
pub(crate) const OVERHEAD: usize = NONCE_LEN + 1 + TAG_LEN;

const FLAG_RAW: u8 = 0;
const FLAG_ZSTD: u8 = 1;
const ZSTD_LEVEL: i32 = 3;

/// The repository's secret: a data-encryption key and a key for blob ids.
/// Created at random when a repository is made, stored only wrapped in key slots.
#[derive(Clone)]
pub(crate) struct MasterKey {
    cipher: XChaCha20Poly1305,
    id_key: [u8; 32],
    raw: [u8; 64],
}

impl MasterKey {
    pub fn random() -> Self {
        let mut raw = [0u8; 64];
        rand::Rng::fill(&mut rand::thread_rng(), &mut raw[..]);
        Self::from_bytes(&raw)
    }

    pub fn from_bytes(raw: &[u8; 64]) -> Self {
        let mut enc = [0u8; 32];
        enc.copy_from_slice(&raw[..32]);
        let mut id_key = [0u8; 32];
        id_key.copy_from_slice(&raw[32..]);
        MasterKey { cipher: XChaCha20Poly1305::new(&enc.into()), id_key, raw: *raw }
    }

    pub fn to_bytes(&self) -> [u8; 64] {
        self.raw
    }

    /// The key blob ids are keyed with (bytes 32–63).
    pub fn id_key(&self) -> [u8; 32] {
        self.id_key
    }

    /// A blob's id: BLAKE3 keyed with the repository's id key, so ids reveal nothing about
    /// content to someone without the key.
    pub fn blob_id(&self, plaintext: &[u8]) -> Id {
        Id(*blake3::keyed_hash(&self.id_key, plaintext).as_bytes())
    }

    /// Compresses (unless `compress` is false or it does not help) and encrypts.
    pub fn seal(&self, plaintext: &[u8], compress: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
        self.seal_into(plaintext, compress, &mut out);
        out
    }

    /// Appends the sealed form of `plaintext` to `out` (a buffer the caller reuses).
    pub fn seal_into(&self, plaintext: &[u8], compress: bool, out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(plaintext.len() + OVERHEAD);
        out.extend_from_slice(&random_nonce());
        out.push(FLAG_RAW);
        let mut compressed = false;
        if compress && plaintext.len() > 64 {
            COMPRESSOR.with(|c| {
                let (c, scratch) = &mut *c.borrow_mut();
                scratch.clear();
                scratch.reserve(plaintext.len());
                if let Ok(n) = c.compress_to_buffer(plaintext, scratch) {
                    if n < plaintext.len() {
                        out.extend_from_slice(&scratch[..n]);
                        compressed = true;
                    }
                }
                // Keep the scratch buffer for the next blob, but not a huge one.
                if scratch.capacity() > 16 << 20 {
                    *scratch = Vec::new();
                }
            });
        }
        if compressed {
            out[start + NONCE_LEN] = FLAG_ZSTD;
        } else {
            out.extend_from_slice(plaintext);
        }
        self.encrypt_tail(out, start);
    }

    fn encrypt_tail(&self, out: &mut Vec<u8>, start: usize) {
        let nonce = *XNonce::from_slice(&out[start..start + NONCE_LEN]);
        let tag = self
            .cipher
            .encrypt_in_place_detached(&nonce, b"", &mut out[start + NONCE_LEN..])
            .expect("XChaCha20-Poly1305 accepts any length below 256 GiB");
        out.extend_from_slice(&tag);
    }

    /// Decrypts and decompresses a named file (index, snapshot, lock, config, a pack's
    /// header), whose name the caller checks. `raw_len` is the plaintext length when known.
    /// Never for a blob: see [`MasterKey::open_blob`].
    pub fn open(&self, sealed: &[u8], raw_len: Option<usize>) -> Result<Vec<u8>, OpenError> {
        match self.open_payload(sealed)? {
            (false, plain) => Ok(plain),
            (true, frame) => Self::decompress(&frame, raw_len),
        }
    }

    /// Decrypts without decompressing: whether the payload is a zstd frame, and its bytes.
    /// Private: a blob's payload leaves this module only through [`MasterKey::open_blob`],
    /// which also checks that it is the blob it is meant to be.
    fn open_payload(&self, sealed: &[u8]) -> Result<(bool, Vec<u8>), OpenError> {
        if sealed.len() < OVERHEAD {
            return Err(OpenError::Auth);
        }
        let nonce = XNonce::from_slice(&sealed[..NONCE_LEN]);
        let tag_at = sealed.len() - TAG_LEN;
        let tag = Tag::from_slice(&sealed[tag_at..]);
        let mut body = sealed[NONCE_LEN..tag_at].to_vec();
        self.cipher.decrypt_in_place_detached(nonce, b"", &mut body, tag).map_err(|_| OpenError::Auth)?;
        match body[0] {
            FLAG_RAW | FLAG_ZSTD => {
                let zstd = body[0] == FLAG_ZSTD;
                body.remove(0);
                Ok((zstd, body))
            }
            other => Err(OpenError::Decompress(format!("unknown frame flag {other}"))),
        }
    }

    fn decompress(frame: &[u8], raw_len: Option<usize>) -> Result<Vec<u8>, OpenError> {
        match raw_len {
            Some(n) => DECOMPRESSOR
                .with(|d| d.borrow_mut().decompress(frame, n))
                .map_err(|e| OpenError::Decompress(e.to_string())),
            None => zstd::stream::decode_all(frame).map_err(|e| OpenError::Decompress(e.to_string())),
        }
    }

    /// The one way to a blob's content: decrypts it, decompresses it (also when the caller
    /// wants the compressed frame) and checks that its plaintext hashes to `id`. The seal
    /// binds no identity, so a blob of the same length swapped in by someone who can write
    /// to the location authenticates; only the id check refuses it.
    pub fn open_blob<'a>(
        &self,
        id: &Id,
        sealed: SealedBlob<'a>,
        raw_len: usize,
    ) -> Result<VerifiedBlob<'a>, OpenError> {
        let (zstd, payload) = self.open_payload(sealed.0)?;
        let (plain, frame) =
            if zstd { (Self::decompress(&payload, Some(raw_len))?, Some(payload)) } else { (payload, None) };
        if plain.len() != raw_len || self.blob_id(&plain) != *id {
            return Err(OpenError::NotItsId);
        }
        Ok(VerifiedBlob { sealed: sealed.0, plain, frame })
    }

    /// Encrypts a small secret with a key-encryption key (used by key slots).
    pub fn wrap(kek: &[u8; 32], secret: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new(kek.into());
        let mut out = random_nonce().to_vec();
        out.extend_from_slice(secret);
        let nonce = *XNonce::from_slice(&out[..NONCE_LEN]);
        let tag = cipher.encrypt_in_place_detached(&nonce, b"", &mut out[NONCE_LEN..]).expect("small input");
        out.extend_from_slice(&tag);
        out
    }

    pub fn unwrap(kek: &[u8; 32], wrapped: &[u8]) -> Option<Vec<u8>> {
        if wrapped.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let cipher = XChaCha20Poly1305::new(kek.into());
        let nonce = XNonce::from_slice(&wrapped[..NONCE_LEN]);
        let tag_at = wrapped.len() - TAG_LEN;
        let mut body = wrapped[NONCE_LEN..tag_at].to_vec();
        cipher.decrypt_in_place_detached(nonce, b"", &mut body, Tag::from_slice(&wrapped[tag_at..])).ok()?;
        Some(body)
    }
}

#[derive(Debug)]
pub(crate) enum OpenError {
    Auth,
    Decompress(String),
    /// A blob authenticated, but its plaintext is not the one its id names.
    NotItsId,
}

/// A blob's bytes as stored (in a pack, or in the metadata cache), not yet trusted. Their
/// content is reached only through [`MasterKey::open_blob`]; [`SealedBlob::stored`] gives the
/// bytes to keep as they are (the cache verifies them again when they are read back).
#[derive(Clone, Copy)]
pub(crate) struct SealedBlob<'a>(&'a [u8]);

impl<'a> SealedBlob<'a> {
    pub fn new(stored: &'a [u8]) -> Self {
        SealedBlob(stored)
    }

    /// The bytes as stored, to keep: never to be opened other than by `open_blob`.
    pub fn stored(&self) -> &'a [u8] {
        self.0
    }
}

/// A blob that authenticated and whose plaintext hashes to its id: what every read of a
/// blob hands on, in the form its caller wants.
pub(crate) struct VerifiedBlob<'a> {
    sealed: &'a [u8],
    plain: Vec<u8>,
    /// The stored zstd frame, when the blob is stored compressed.
    frame: Option<Vec<u8>>,
}

impl<'a> VerifiedBlob<'a> {
    pub fn into_plain(self) -> Vec<u8> {
        self.plain
    }

    /// The payload as stored: the zstd frame, or the plain bytes when compressing did not help.
    pub fn into_payload(self) -> (bool, Vec<u8>) {
        match self.frame {
            Some(frame) => (true, frame),
            None => (false, self.plain),
        }
    }

    /// The sealed bytes, known now to be this blob's: what a repack copies.
    pub fn sealed(&self) -> &'a [u8] {
        self.sealed
    }
}

fn random_nonce() -> [u8; NONCE_LEN] {
    rand::random()
}

thread_local! {
    /// One decompression context per thread: making one per blob cost a tenth of a restore.
    static DECOMPRESSOR: RefCell<zstd::bulk::Decompressor<'static>> =
        RefCell::new(zstd::bulk::Decompressor::new().expect("a zstd decompression context"));
    static COMPRESSOR: RefCell<(zstd::bulk::Compressor<'static>, Vec<u8>)> =
        RefCell::new((zstd::bulk::Compressor::new(ZSTD_LEVEL).expect("zstd level 3 is valid"), Vec::new()));
}

/// A cheap guess whether compressing `data` is worth it: large blobs whose middle does not
/// shrink at the fastest level (photos, music, archives) are stored raw without spending a
/// full compression pass on them.
pub(crate) fn worth_compressing(data: &[u8]) -> bool {
    const SAMPLE: usize = 32 * 1024;
    if data.len() < 4 * SAMPLE {
        return true;
    }
    let mid = data.len() / 2 - SAMPLE / 2;
    let sample = &data[mid..mid + SAMPLE];
    match zstd::bulk::compress(sample, 1) {
        Ok(c) => c.len() < SAMPLE * 97 / 100,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_and_detect_tampering() {
        let key = MasterKey::random();
        let text = b"hello hello hello hello hello hello hello hello hello hello hello hello".repeat(50);
        let sealed = key.seal(&text, true);
        assert!(sealed.len() < text.len(), "compressible text shrinks");
        assert_eq!(key.open(&sealed, Some(text.len())).unwrap(), text);
        assert_eq!(key.open(&sealed, None).unwrap(), text);
        let mut bad = sealed.clone();
        bad[30] ^= 1;
        assert!(key.open(&bad, None).is_err());
        let other = MasterKey::random();
        assert!(other.open(&sealed, None).is_err());
        let random: Vec<u8> = (0..5000).map(|_| rand::random::<u8>()).collect();
        let sealed = key.seal(&random, true);
        assert_eq!(sealed.len(), random.len() + OVERHEAD, "incompressible data is stored raw");
        assert_eq!(key.open(&sealed, Some(random.len())).unwrap(), random);
    }

    #[test]
    fn two_seals_differ() {
        let key = MasterKey::random();
        assert_ne!(key.seal(b"same", true), key.seal(b"same", true));
    }
}
