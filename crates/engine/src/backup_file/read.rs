//! Reading a backup file as a stream: `backup.json` first, then each unit's file in the order
//! the manifest lists them, each hashed as it passes; `BLAKE3SUMS` last. Nothing is trusted
//! until [`FileReader::finish`] has compared every hash, so callers write into staging areas
//! and only then put anything in place.

use std::io::{self, Read};

use super::manifest::{self, Manifest, UnitFile};
use super::tarfmt::{Content, EntryKind, TarEntry, TarError, TarReader};
use super::{passphrase_identity, scrypt_mib, HashingReader, SCRYPT_LOG_N};
use crate::{EngineError, EngineResult};

pub(crate) struct FileReader<R> {
    outer: TarReader<R>,
    label: String,
    manifest: Manifest,
    manifest_hash: [u8; 32],
    /// Hash of each unit file read, by file name.
    hashes: Vec<(String, [u8; 32])>,
    next_unit: usize,
}

/// The largest zstd window a unit's stream may declare (16 MiB): the decoder sets aside the
/// whole window when a frame starts, so the frame, not its length, would choose the memory.
/// Lifeboat's own frames use at most 2 MiB (zstd level 3; raw frames 128 KiB).
pub(crate) const WINDOW_LOG_MAX: u32 = 24;

/// The inner tar of one unit, decrypted and decompressed.
pub(crate) type UnitTar<'a> = TarReader<Box<dyn Read + 'a>>;

pub(crate) fn error(label: &str, detail: impl Into<String>) -> EngineError {
    EngineError::BackupFile { file: label.to_string(), detail: detail.into() }
}

/// Reads just the manifest of a backup file.
pub fn read_manifest(input: impl Read, label: &str) -> EngineResult<Manifest> {
    Ok(FileReader::open(input, label)?.manifest)
}

impl<R: Read> FileReader<R> {
    pub fn open(input: R, label: &str) -> EngineResult<Self> {
        let mut outer = TarReader::new(input);
        let what = |e: TarError| match e {
            TarError::Truncated => error(label, "it ends before its list of contents: the file is incomplete"),
            other => error(label, format!("it is not a Lifeboat backup file ({other})")),
        };
        let entry = outer.next().map_err(what)?.ok_or_else(|| error(label, "it is an empty archive"))?;
        if entry.path != manifest::MANIFEST_NAME.as_bytes() || entry.kind != EntryKind::File {
            return Err(error(
                label,
                format!("it is not a Lifeboat backup file (it does not start with {})", manifest::MANIFEST_NAME),
            ));
        }
        if entry.size > manifest::MAX_MANIFEST {
            return Err(error(label, format!("its {} is {} bytes: refused", manifest::MANIFEST_NAME, entry.size)));
        }
        let mut json = Vec::new();
        Content::new(&mut outer, entry.size)
            .read_to_end(&mut json)
            .map_err(|e| error(label, format!("it ends or breaks inside {}: {e}", manifest::MANIFEST_NAME)))?;
        let manifest: Manifest = serde_json::from_slice(&json)
            .map_err(|e| error(label, format!("its {} is damaged: {e}", manifest::MANIFEST_NAME)))?;
        manifest.check().map_err(|e| error(label, e))?;
        Ok(FileReader {
            outer,
            label: label.to_string(),
            manifest,
            manifest_hash: *blake3::hash(&json).as_bytes(),
            hashes: Vec::new(),
            next_unit: 0,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn unit_error(&self, unit: &str, detail: impl std::fmt::Display) -> EngineError {
        error(&self.label, format!("unit {unit}: {detail}"))
    }

    /// Moves to the next unit's file. With `read`, calls it with the unit's tar (its entries
    /// must be read by it); otherwise the file is only hashed. `None` after the last unit.
    pub fn next_unit(
        &mut self,
        passphrase: Option<&str>,
        read: &mut dyn FnMut(&UnitFile, &mut UnitTar<'_>) -> EngineResult<()>,
        wanted: &dyn Fn(&UnitFile) -> bool,
    ) -> EngineResult<Option<UnitFile>> {
        let Some(unit) = self.manifest.units.get(self.next_unit).cloned() else { return Ok(None) };
        self.next_unit += 1;
        let name = unit.name.clone();
        let entry = match self.outer.next() {
            Ok(Some(e)) => e,
            Ok(None) | Err(TarError::Truncated) => {
                return Err(self.unit_error(&name, "the file ends before it: the file is incomplete"))
            }
            Err(e) => return Err(self.unit_error(&name, format!("its header is damaged ({e})"))),
        };
        if entry.path != unit.file.as_bytes() || entry.kind != EntryKind::File || entry.size != unit.size {
            return Err(self.unit_error(
                &name,
                format!(
                    "expected {} of {} bytes, found {:?} of {} bytes: the file is damaged",
                    unit.file,
                    unit.size,
                    String::from_utf8_lossy(&entry.path),
                    entry.size
                ),
            ));
        }
        let label = self.label.clone();
        let unit_error = |detail: &dyn std::fmt::Display| error(&label, format!("unit {name}: {detail}"));
        let mut hashing = HashingReader::new(Content::new(&mut self.outer, unit.size));
        // Only what is read is checked: damage in a unit not asked for does not stop a
        // restore of the others.
        let want = wanted(&unit);
        if want {
            let result = read_unit(&unit, &mut hashing, passphrase, read);
            if let Err(e) = result {
                // A damaged or short file explains a failure better than what it caused.
                let outer = hashing.inner_failure();
                return Err(match (outer, e) {
                    (Some(TarError::Truncated), _) => unit_error(&"the file ends inside it: the file is incomplete"),
                    (_, EngineError::BackupFile { detail, .. }) => unit_error(&detail),
                    (_, EngineError::BackupFilePassword { detail, .. }) => EngineError::BackupFilePassword {
                        file: label.clone(),
                        detail: format!("unit {name}: {detail}"),
                    },
                    (_, EngineError::BackupFileCost { mib, most, .. }) => {
                        EngineError::BackupFileCost { file: label.clone(), mib, most }
                    }
                    (_, e) => e,
                });
            }
        }
        if let Err(e) = io::copy(&mut hashing, &mut io::sink()) {
            return Err(match hashing.inner_failure() {
                Some(TarError::Truncated) => unit_error(&"the file ends inside it: the file is incomplete"),
                _ => unit_error(&e),
            });
        }
        let (_, hash) = hashing.finish();
        if want {
            self.hashes.push((unit.file.clone(), hash));
        }
        Ok(Some(unit))
    }

    /// Reads the checksums and compares every unit file read (and the manifest) with them.
    pub fn finish(mut self) -> EngineResult<()> {
        let label = self.label.clone();
        let last = self.manifest.units.last().map(|u| u.name.clone()).unwrap_or_else(|| "-".into());
        let incomplete = || {
            error(
                &label,
                format!("unit {last} cannot be verified: the file ends before its checksums; it is incomplete"),
            )
        };
        let entry = match self.outer.next() {
            Ok(Some(e)) if e.path == manifest::SUMS_NAME.as_bytes() && e.size <= 1 << 20 => e,
            Ok(Some(e)) => {
                return Err(error(
                    &label,
                    format!("unexpected entry {:?} where the checksums belong", String::from_utf8_lossy(&e.path)),
                ))
            }
            Ok(None) | Err(TarError::Truncated) => return Err(incomplete()),
            Err(e) => return Err(error(&label, format!("its checksums are damaged ({e})"))),
        };
        let mut text = Vec::new();
        Content::new(&mut self.outer, entry.size).read_to_end(&mut text).map_err(|_| incomplete())?;
        let sums = manifest::parse_sums(&String::from_utf8_lossy(&text));
        let expect = |name: &str| sums.iter().find(|(n, _)| n == name).map(|(_, h)| h.clone());
        if expect(manifest::MANIFEST_NAME) != Some(hex::encode(self.manifest_hash)) {
            return Err(error(
                &label,
                format!("its {} does not match its checksum: the file is damaged", manifest::MANIFEST_NAME),
            ));
        }
        for (file, hash) in &self.hashes {
            if expect(file) != Some(hex::encode(hash)) {
                let unit =
                    self.manifest.units.iter().find(|u| &u.file == file).map(|u| u.name.as_str()).unwrap_or(file);
                return Err(error(&label, format!("unit {unit}: its content does not match its checksum: the file is damaged; nothing was changed")));
            }
        }
        Ok(())
    }
}

impl<R: Read> HashingReader<Content<'_, R>> {
    fn inner_failure(&mut self) -> Option<TarError> {
        self.inner_mut().take_failure()
    }
}

fn read_unit(
    unit: &UnitFile,
    input: &mut dyn Read,
    passphrase: Option<&str>,
    read: &mut dyn FnMut(&UnitFile, &mut UnitTar<'_>) -> EngineResult<()>,
) -> EngineResult<()> {
    let fail = |d: String| EngineError::BackupFile { file: String::new(), detail: d };
    let no_key = |d: &str| EngineError::BackupFilePassword { file: String::new(), detail: d.into() };
    let plain: Box<dyn Read + '_> = if unit.encrypted {
        let Some(pass) = passphrase else {
            return Err(no_key("it is encrypted: give its password"));
        };
        let header = age_header(input).map_err(fail)?;
        let dec = age::Decryptor::new(io::Cursor::new(header).chain(input))
            .map_err(|e| fail(format!("its encryption header is damaged ({e})")))?;
        let id = passphrase_identity(pass);
        let r = dec.decrypt(std::iter::once(&id as &dyn age::Identity)).map_err(|e| match e {
            age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => {
                no_key("the password does not open it: give the password the backup was made with")
            }
            age::DecryptError::ExcessiveWork { required, .. } => EngineError::BackupFileCost {
                file: String::new(),
                mib: scrypt_mib(required),
                most: scrypt_mib(SCRYPT_LOG_N),
            },
            other => fail(format!("it cannot be decrypted ({other})")),
        })?;
        Box::new(r)
    } else {
        Box::new(input)
    };
    let mut zstd =
        zstd::stream::read::Decoder::new(plain).map_err(|e| fail(format!("cannot start reading it ({e})")))?;
    zstd.window_log_max(WINDOW_LOG_MAX).map_err(|e| fail(format!("cannot start reading it ({e})")))?;
    let mut tar: UnitTar<'_> = TarReader::new(Box::new(zstd));
    read(unit, &mut tar).map_err(|e| match e {
        EngineError::BackupFile { detail, .. } => fail(detail),
        other => other,
    })?;
    // Read to the very end, so age's last tag and zstd's last frame are checked too.
    let mut rest = tar.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| fail(damaged(&e)))?;
    Ok(())
}

/// The bytes a unit's files may hold in all: what its manifest declares, which is what a
/// restore's room check counted. Each file counts its whole length (a sparse file's real
/// size, holes included), so what is written, holes or not, never passes the declaration.
pub(crate) struct UnitBudget {
    declared: u64,
    left: u64,
}

impl UnitBudget {
    pub fn new(declared: u64) -> Self {
        UnitBudget { declared, left: declared }
    }

    /// Counts a file entry before any of its bytes are written.
    pub fn take(&mut self, e: &TarEntry) -> Result<(), String> {
        if e.kind != EntryKind::File {
            return Ok(());
        }
        self.left = self.left.checked_sub(e.size).ok_or_else(|| {
            format!(
                "its files hold more than the {} bytes its list of contents declares (at entry {:?}, of {} bytes)",
                self.declared,
                String::from_utf8_lossy(&e.path),
                e.size
            )
        })?;
        Ok(())
    }
}

/// The longest age header read (16 KiB). Lifeboat writes one scrypt stanza, about 150 bytes;
/// age's own reader keeps a header of any length in memory and parses it again from its
/// start each time it needs more.
pub(crate) const MAX_AGE_HEADER: usize = 16 * 1024;

/// Reads an age header up to its last line (`--- MAC`), refusing one past [`MAX_AGE_HEADER`].
fn age_header(input: &mut dyn Read) -> Result<Vec<u8>, String> {
    let mut header = Vec::new();
    let mut line_start = 0;
    let mut byte = [0u8; 1];
    while header.len() < MAX_AGE_HEADER {
        if input.read(&mut byte).map_err(|e| damaged(&e))? == 0 {
            return Err("its encryption header is cut short: the file is damaged".into());
        }
        header.push(byte[0]);
        if byte[0] == b'\n' {
            if header[line_start..].starts_with(b"--- ") {
                return Ok(header);
            }
            line_start = header.len();
        }
    }
    Err(format!("refused: its encryption header passes {} KiB", MAX_AGE_HEADER / 1024))
}

/// Words for an error met while reading a unit's stream.
pub(crate) fn damaged(e: &dyn std::fmt::Display) -> String {
    format!("its data is damaged ({e})")
}

/// Words for a reader's error inside a unit.
pub(crate) fn tar_problem(e: TarError) -> EngineError {
    let detail = match e {
        TarError::Truncated => "the file ends inside it: the file is incomplete".to_string(),
        TarError::Io(e) => damaged(&e),
        TarError::Malformed(m) => format!("refused: {m}"),
    };
    EngineError::BackupFile { file: String::new(), detail }
}

/// Reads backup-file input as a restore would, without writing anything. For the fuzz target;
/// errors are the expected end. The first byte picks what the rest is, so that mutations
/// reach every layer: 0, a unit's tar (compressed here); 1, a unit's zstd stream; anything
/// else, a whole backup file (outer tar, manifest, each unit's stream and tar, checksums).
pub(crate) fn read_everything(data: &[u8]) {
    match data.split_first() {
        Some((0, tar)) => {
            if let Ok(stream) = zstd::bulk::compress(tar, 1) {
                let _ = read_unit(&fuzz_unit(stream.len()), &mut &stream[..], None, &mut read_entries);
            }
        }
        Some((1, stream)) => {
            let _ = read_unit(&fuzz_unit(stream.len()), &mut &stream[..], None, &mut read_entries);
        }
        _ => read_file(data),
    }
}

fn read_file(data: &[u8]) {
    let Ok(mut reader) = FileReader::open(data, "fuzz") else { return };
    loop {
        match reader.next_unit(None, &mut read_entries, &|_| true) {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(_) => return,
        }
    }
    let _ = reader.finish();
}

fn fuzz_unit(size: usize) -> UnitFile {
    UnitFile {
        name: "fuzz".into(),
        file: "units/fuzz.tar.zst".into(),
        size: size as u64,
        encrypted: false,
        roots: Vec::new(),
    }
}

/// Every entry of a unit, as restore and import take them: counted against a budget (small,
/// so that runs stay fast), turned into a node, its content read to the end.
fn read_entries(_: &UnitFile, tar: &mut UnitTar<'_>) -> EngineResult<()> {
    let mut budget = UnitBudget::new(16 << 20);
    let map = crate::restore::plan::PathMap::new(b"/home/nemo", std::path::Path::new("/home/other"), &[]);
    while let Some(entry) = tar.next().map_err(tar_problem)? {
        budget.take(&entry).map_err(|e| error("fuzz", e))?;
        let _ = super::restore::node_of(&entry, &map);
        let mut content = Content::new(tar, entry.size);
        io::copy(&mut content, &mut io::sink()).map_err(|e| error("fuzz", e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup_file::tarfmt::tests::raw_entry;

    fn unit(encrypted: bool) -> UnitFile {
        let file = if encrypted { "units/docs.tar.zst.age" } else { "units/docs.tar.zst" };
        UnitFile { name: "docs".into(), file: file.into(), size: 0, encrypted, roots: Vec::new() }
    }

    /// Reads a unit's stream as a restore would: every entry and its content.
    fn read(unit: &UnitFile, stream: &[u8], passphrase: Option<&str>) -> EngineResult<usize> {
        let mut entries = 0;
        let mut each = |_: &UnitFile, tar: &mut UnitTar<'_>| -> EngineResult<()> {
            while let Some(e) = tar.next().map_err(tar_problem)? {
                let mut content = Content::new(tar, e.size);
                io::copy(&mut content, &mut io::sink()).map_err(|e| error("test", e.to_string()))?;
                entries += 1;
            }
            Ok(())
        };
        read_unit(unit, &mut &stream[..], passphrase, &mut each)?;
        Ok(entries)
    }

    /// One zstd frame of raw blocks declaring a window of 2^`window_log` bytes.
    fn frame_with_window(window_log: u8, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, (window_log - 10) << 3];
        let v = (data.len() as u32) << 3 | 1;
        f.extend_from_slice(&[v as u8, (v >> 8) as u8, (v >> 16) as u8]);
        f.extend_from_slice(data);
        f
    }

    fn small_tar() -> Vec<u8> {
        let mut tar = raw_entry(b'0', b"home/a", b"hello");
        tar.extend([0u8; 1024]);
        tar
    }

    /// The fuzz target's seeds of units (first byte 0: a tar; 1: a zstd stream) are read to
    /// their end, so that mutations start from inputs that reach every entry.
    #[test]
    fn the_fuzz_seeds_of_units_are_read_whole() {
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/backup_file");
        for (name, entries) in [("unit-tar-pax", 4), ("unit-zstd-pax", 4), ("unit-tar-sparse", 1)] {
            let data = std::fs::read(seeds.join(name)).unwrap();
            let stream = match data.split_first() {
                Some((0, tar)) => zstd::bulk::compress(tar, 1).unwrap(),
                Some((1, stream)) => stream.to_vec(),
                _ => panic!("{name}: not a unit seed"),
            };
            let read = read(&unit(false), &stream, None);
            assert_eq!(read.map_err(|e| e.to_string()), Ok(entries), "{name}");
        }
    }

    #[test]
    fn a_zstd_frame_that_asks_for_a_huge_window_is_refused() {
        let tar = small_tar();
        assert_eq!(read(&unit(false), &frame_with_window(21, &tar), None).unwrap(), 1);
        assert_eq!(read(&unit(false), &frame_with_window(WINDOW_LOG_MAX as u8, &tar), None).unwrap(), 1);
        // 128 MiB (zstd's own default limit) set aside for 1.5 KiB of data.
        let err = read(&unit(false), &frame_with_window(27, &tar), None).unwrap_err().to_string();
        assert!(err.contains("damaged") && err.contains("memory"), "{err}");
    }

    /// A unit's stream encrypted as Lifeboat does, then its scrypt work factor raised to
    /// `log_n` in the header (the header's MAC is only checked with the key, after scrypt).
    fn encrypted_asking(log_n: u8) -> Vec<u8> {
        let r = crate::backup_file::passphrase_recipient("pw");
        let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
        let mut out = Vec::new();
        let mut w = enc.wrap_output(&mut out).unwrap();
        std::io::Write::write_all(&mut w, &zstd::bulk::compress(&small_tar(), 3).unwrap()).unwrap();
        w.finish().unwrap();
        let own = format!(" {SCRYPT_LOG_N}\n");
        let at = out.windows(own.len()).position(|w| w == own.as_bytes()).expect("the scrypt stanza");
        out.splice(at..at + own.len(), format!(" {log_n}\n").into_bytes());
        out
    }

    #[test]
    fn an_age_header_past_16_kib_is_refused_before_it_is_parsed() {
        let own = encrypted_asking(SCRYPT_LOG_N);
        let at = own.windows(4).position(|w| w == b"\n-> ").expect("a stanza") + 1;
        // 2,000 stanzas of a kind no identity takes (a 36 KiB header), before the real one.
        let mut piled = own[..at].to_vec();
        for _ in 0..2_000 {
            piled.extend_from_slice(b"-> junk-stanza ab\n\n");
        }
        piled.extend_from_slice(&own[at..]);
        let err = read(&unit(true), &piled, Some("pw")).unwrap_err().to_string();
        assert!(err.contains("refused: its encryption header passes 16 KiB"), "{err}");
    }

    #[test]
    fn an_scrypt_work_factor_above_lifeboats_own_is_refused_before_the_password_is_tried() {
        assert_eq!(read(&unit(true), &encrypted_asking(SCRYPT_LOG_N), Some("pw")).unwrap(), 1);
        // 1 GiB: what main spent (and up to 4 GiB) before it could tell the password was wrong.
        match read(&unit(true), &encrypted_asking(20), Some("wrong")) {
            Err(EngineError::BackupFileCost { mib, most, .. }) => assert_eq!((mib, most), (1024, 128)),
            other => panic!("{other:?}"),
        }
        let e = EngineError::BackupFileCost { file: "f.tar".into(), mib: 4096, most: 128 };
        assert!(e.to_string().starts_with("backup file f.tar: this file asks for 4096 MiB of memory to open"), "{e}");
        assert_eq!(e.kind(), crate::ErrorKind::Damaged);
    }
}
