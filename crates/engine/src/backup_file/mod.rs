//! Backup files: one backup as one self-contained file in open formats, for download, upload
//! and moving to a new device. An uncompressed tar holding `backup.json`, one
//! `units/NAME.tar.zst` per unit (age-encrypted as `.tar.zst.age` when the backup is password
//! protected) and `BLAKE3SUMS`. docs/FORMAT.md describes it and how to read it without
//! Lifeboat.

mod export;
mod frames;
mod import;
pub mod manifest;
mod read;
pub(crate) use read::read_everything;
mod restore;
mod tarfmt;

use std::io::{self, Read, Write};

pub use export::{plan as plan_export, Export, ExportRequest};
pub use import::{import, ImportOutcome};
pub use manifest::Manifest;
pub use read::read_manifest;
pub use restore::{restore, FileRestoreRequest};

/// scrypt work factor of the passphrase recipient: 2^17 iterations take about half a second
/// and 128 MiB, under the memory bound of an export.
pub(crate) const SCRYPT_LOG_N: u8 = 17;

pub(crate) fn passphrase_recipient(passphrase: &str) -> age::scrypt::Recipient {
    let mut r = age::scrypt::Recipient::new(age::secrecy::SecretString::from(passphrase.to_owned()));
    r.set_work_factor(SCRYPT_LOG_N);
    r
}

pub(crate) fn passphrase_identity(passphrase: &str) -> age::scrypt::Identity {
    let mut i = age::scrypt::Identity::new(age::secrecy::SecretString::from(passphrase.to_owned()));
    // The work factor is the file's to choose and is spent before the password is known to
    // be right: nothing above what Lifeboat itself writes, as for the repository's key slots.
    i.set_max_work_factor(SCRYPT_LOG_N);
    i
}

/// Memory scrypt takes at work factor `log_n` (`128 · r · N` bytes with r = 8, age's choice).
pub(crate) fn scrypt_mib(log_n: u8) -> u64 {
    1u64.checked_shl(u32::from(log_n)).map_or(u64::MAX, |n| n.saturating_mul(1024) >> 20)
}

/// Length of an age file of `plain` bytes whose header (with the payload nonce) is
/// `header` bytes: the payload is cut in 64 KiB chunks, each with a 16-byte tag, and there is
/// always at least one chunk.
pub(crate) fn age_len(header: u64, plain: u64) -> u64 {
    const CHUNK: u64 = 64 * 1024;
    header + plain + 16 * plain.div_ceil(CHUNK).max(1)
}

/// A writer into a buffer another owner drains (what an age stream writes, taken out after
/// each write).
#[derive(Clone, Default)]
pub(crate) struct SharedBuf(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("shared buffer").extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hashes (BLAKE3) and counts what passes through to the inner writer.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: blake3::Hasher::new(), len: 0 }
    }

    pub fn finish(self) -> (u64, [u8; 32]) {
        (self.len, *self.hasher.finalize().as_bytes())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.hasher.update(&data[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes and counts what is read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
    len: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader { inner, hasher: blake3::Hasher::new(), len: 0 }
    }

    pub fn finish(self) -> (u64, [u8; 32]) {
        (self.len, *self.hasher.finalize().as_bytes())
    }

    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_lengths_are_known_before_encrypting() {
        for plain in [0usize, 1, 65_535, 65_536, 65_537, 200_000] {
            let r = passphrase_recipient("correct horse");
            let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
            let buf = SharedBuf::default();
            let mut w = enc.wrap_output(buf.clone()).unwrap();
            let header = buf.0.lock().unwrap().len() as u64;
            w.write_all(&vec![7u8; plain]).unwrap();
            w.finish().unwrap();
            let out = buf.0.lock().unwrap().clone();
            assert_eq!(out.len() as u64, age_len(header, plain as u64), "{plain} bytes");
            let dec = age::Decryptor::new(&out[..]).unwrap();
            let mut back = Vec::new();
            let id = passphrase_identity("correct horse");
            dec.decrypt(std::iter::once(&id as &dyn age::Identity)).unwrap().read_to_end(&mut back).unwrap();
            assert_eq!(back.len(), plain);
        }
    }
}
