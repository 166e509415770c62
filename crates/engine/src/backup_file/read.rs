//! Reading a backup file as a stream: `backup.json` first, then each unit's file in the order
//! the manifest lists them, each hashed as it passes; `BLAKE3SUMS` last. Nothing is trusted
//! until [`FileReader::finish`] has compared every hash, so callers write into staging areas
//! and only then put anything in place.

use std::io::{self, Read};

use super::manifest::{self, Manifest, UnitFile};
use super::tarfmt::{Content, EntryKind, TarError, TarReader};
use super::{passphrase_identity, HashingReader};
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
        let dec = age::Decryptor::new(input).map_err(|e| fail(format!("its encryption header is damaged ({e})")))?;
        let id = passphrase_identity(pass);
        let r = dec.decrypt(std::iter::once(&id as &dyn age::Identity)).map_err(|e| match e {
            age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => {
                no_key("the password does not open it: give the password the backup was made with")
            }
            other => fail(format!("it cannot be decrypted ({other})")),
        })?;
        Box::new(r)
    } else {
        Box::new(input)
    };
    let zstd = zstd::stream::read::Decoder::new(plain).map_err(|e| fail(format!("cannot start reading it ({e})")))?;
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

/// Reads a whole backup file as a restore would, without writing anything: every unit's
/// entries and content, then the checksums. For the fuzz target; errors are the expected end.
pub(crate) fn read_everything(data: &[u8]) {
    let Ok(mut reader) = FileReader::open(data, "fuzz") else { return };
    let mut read = |_: &UnitFile, tar: &mut UnitTar<'_>| -> EngineResult<()> {
        while let Some(entry) = tar.next().map_err(tar_problem)? {
            let mut content = Content::new(tar, super::tarfmt::stored_size(&entry));
            io::copy(&mut content, &mut io::sink()).map_err(|e| error("fuzz", e.to_string()))?;
        }
        Ok(())
    };
    loop {
        match reader.next_unit(None, &mut read, &|_| true) {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(_) => return,
        }
    }
    let _ = reader.finish();
}
