//! Moving backups between places: a copy to another location, a backup file out and in.

use std::io::Read;

use super::{Found, Lifeboat};
use crate::backup_file::{self, Export, ExportRequest, ImportOutcome};
use crate::copy::{self, CopyOutcome};
use crate::location::Location;
use crate::{EngineError, EngineResult, Progress};

/// A backup copied (or found already there).
pub struct Copied {
    pub outcome: CopyOutcome,
    pub from: Location,
    pub to: Location,
    /// Bytes sent to the destination by this process.
    pub sent: u64,
}

/// How a backup file is to be encrypted.
#[derive(Debug, Clone)]
pub enum FileEncryption {
    /// With age, under this password.
    Password(String),
    /// Not at all: what the backup holds lies open in the file. Said explicitly (never the
    /// default), and refused for a password-protected backup.
    Unencrypted,
    /// Nothing was said: a protected backup's file needs its password, another's is
    /// refused until the caller chooses.
    NotChosen,
}

impl Lifeboat {
    /// Copies a backup to location `to`, sending only the data it lacks; the backup is looked
    /// for in `from`, else wherever it is (see [`Lifeboat::find_backup`]). A destination with
    /// no repository yet gets one made like the source's (same blob ids and chunking).
    pub fn copy(&self, slug: &str, from: Option<&str>, to: &str, progress: &Progress) -> EngineResult<Copied> {
        let dst_loc = self.location(Some(to))?;
        if from == Some(to) {
            return Err(EngineError::SameLocation { slug: slug.into(), location: to.into() });
        }
        let found = self.find_backup(slug, from, Some(to))?;
        // A destination made now gets the source's blob ids and chunking (unless its own
        // `like` names others): then the copy and every later one send only what it lacks.
        let dst = self.repository_or_made_like(dst_loc, true, Some(&found.repo))?;
        let outcome = copy::copy(&found.repo, &dst, &found.snapshot.slug, progress)?;
        Ok(Copied {
            outcome,
            from: found.location,
            to: dst_loc.clone(),
            sent: dst_loc.traffic().map(|t| t.sent()).unwrap_or(0),
        })
    }

    /// A backup file of a found backup, ready to be written, encrypted as asked: a
    /// password-protected backup's file is always encrypted, and another's is unencrypted
    /// only when the caller said so in so many words (`how` names that word for the error);
    /// a full backup carries this device's configuration, without secrets.
    pub fn plan_export<'a>(
        &self,
        found: &'a Found,
        encryption: FileEncryption,
        how: &'static str,
    ) -> EngineResult<Export<'a>> {
        let passphrase = match encryption {
            FileEncryption::Password(p) => Some(p),
            FileEncryption::Unencrypted | FileEncryption::NotChosen if found.snapshot.protected => {
                return Err(EngineError::BackupFilePassword {
                    file: format!("of backup {}", found.snapshot.slug),
                    detail: "the backup is password protected, so its file is encrypted: give the password".into(),
                })
            }
            FileEncryption::Unencrypted => None,
            FileEncryption::NotChosen => {
                return Err(EngineError::UnencryptedExport { slug: found.snapshot.slug.clone(), how })
            }
        };
        // The configuration the backup recorded; a full backup made before backups recorded
        // it carries this device's.
        let config = match (&found.snapshot.configuration, found.snapshot.full) {
            (Some(c), _) => Some(c.clone()),
            (None, true) => self.configuration_without_secrets()?,
            (None, false) => None,
        };
        backup_file::plan_export(&found.repo, &found.snapshot, ExportRequest { passphrase, config })
    }

    /// Imports a backup file read from `input` into a location (the default one when none),
    /// creating its repository on first use.
    pub fn import(
        &self,
        input: impl Read,
        label: &str,
        location: Option<&str>,
        passphrase: Option<&str>,
        progress: &Progress,
    ) -> EngineResult<(Location, ImportOutcome)> {
        let loc = self.location(location)?;
        let repo = self.repository(loc, true)?;
        let outcome = backup_file::import(&repo, input, label, passphrase, progress)?;
        Ok((loc.clone(), outcome))
    }
}
