//! Setting up this device from a backup: the configuration it recorded, offered and merged.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Found, Lifeboat, Pick};
use crate::setup::{self, SetupApplied, SetupOffer};
use crate::{config_edit, Devices, EngineError, EngineResult};

impl Lifeboat {
    /// This device's configuration without its secrets, as a backup records it (none when the
    /// built-in defaults apply).
    pub fn configuration_without_secrets(&self) -> EngineResult<Option<String>> {
        let Some(f) = &self.config.file else { return Ok(None) };
        let text = std::fs::read_to_string(f).map_err(|e| EngineError::io("reading", f, e))?;
        let bare = config_edit::without_secrets(&text)
            .map_err(|detail| EngineError::Config { path: f.clone(), detail: detail.to_string() })?;
        Ok(Some(bare))
    }

    /// The configuration a backup in a location recorded, checked and offered for this
    /// device (`latest`: the newest of any device's).
    pub fn setup_offer(&self, slug: &str, location: Option<&str>) -> EngineResult<SetupOffer> {
        let pick = Pick {
            location: location.map(str::to_string),
            devices: (slug == "latest").then_some(Devices::All),
            ..Pick::default()
        };
        self.setup_offer_of(&self.pick_backup(slug, &pick)?)
    }

    /// The configuration a found backup recorded, checked and offered for this device.
    pub fn setup_offer_of(&self, found: &Found) -> EngineResult<SetupOffer> {
        let Some(text) = &found.snapshot.configuration else {
            return Err(EngineError::NoConfiguration { slug: found.snapshot.slug.clone() });
        };
        setup::offer(text, &setup::home_of(&found.snapshot.home.0), &self.dirs.home)
    }

    /// The configuration a backup file carries, checked and offered for this device.
    pub fn setup_offer_from_file(&self, file: &Path) -> EngineResult<SetupOffer> {
        let input = std::fs::File::open(file).map_err(|e| EngineError::io("opening", file, e))?;
        let manifest = crate::read_manifest(std::io::BufReader::new(input), &file.display().to_string())?;
        let text = manifest.config.as_ref().or(manifest.backup.configuration.as_ref());
        let Some(text) = text else {
            return Err(EngineError::NoConfiguration { slug: manifest.backup.slug.clone() });
        };
        setup::offer(text, &setup::home_of(&manifest.backup.home.0), &self.dirs.home)
    }

    /// Merges an offer into this device's configuration file, with the secrets given again
    /// (`secrets[location][key]`).
    pub fn apply_setup(
        &self,
        offer: &SetupOffer,
        secrets: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> EngineResult<SetupApplied> {
        // A device with a location of its own (configured, or the implicit one holding
        // backups) keeps its default.
        let implicit = self.dirs.data.join("backups");
        let own = !self.config.config.location.is_empty()
            || implicit.join("config").exists()
            || implicit.join("keys").is_dir();
        setup::apply(&self.config.target_file, offer, secrets, own.then_some(self.default_location.as_str()))
    }
}
