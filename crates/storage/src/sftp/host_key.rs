//! The server's host key, checked against a known_hosts file (or learned into one on first
//! contact, when the location says so, or when the person confirmed its fingerprint).

use russh::client;
use russh::keys::{self, HashAlg, PublicKey};

use super::HostKeyCheck;

/// Checks the server's host key against the configured known_hosts file.
pub(super) struct HostKeyChecker {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) check: HostKeyCheck,
}

#[derive(Debug)]
pub(super) enum HostKeyError {
    /// The server is not in known_hosts yet: its key's fingerprint (`SHA256:…`, as
    /// `ssh-keygen -l` prints it), to be confirmed by a person before it is trusted.
    Unknown {
        fingerprint: String,
    },
    /// The key differs from the one recorded, or cannot be checked at all.
    Refused(String),
    Ssh(russh::Error),
}

impl From<russh::Error> for HostKeyError {
    fn from(e: russh::Error) -> Self {
        HostKeyError::Ssh(e)
    }
}

impl client::Handler for HostKeyChecker {
    type Error = HostKeyError;

    async fn check_server_key(&mut self, key: &keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        match key {
            keys::PublicKeyOrCertificate::PublicKey { key, .. } => self.verdict(key).map(|()| true),
            keys::PublicKeyOrCertificate::Certificate(_) => Err(HostKeyError::Refused(
                "the server presents a certificate; list its plain host key in known_hosts".to_string(),
            )),
        }
    }
}

/// A key's fingerprint as `ssh-keygen -l` prints it: `SHA256:` and unpadded base64.
fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

impl HostKeyChecker {
    fn verdict(&self, key: &PublicKey) -> Result<(), HostKeyError> {
        let path = self.check.known_hosts();
        let seen = fingerprint(key);
        let learn = match &self.check {
            HostKeyCheck::KnownHosts(_) => false,
            HostKeyCheck::LearnInto(_) => true,
            // Only the very key the person confirmed.
            HostKeyCheck::Confirmed { fingerprint, .. } => fingerprint.trim() == seen,
        };
        match keys::check_known_hosts_path(&self.host, self.port, key, path) {
            Ok(true) => Ok(()),
            Ok(false) if learn => {
                keys::known_hosts::learn_known_hosts_path(&self.host, self.port, key, path).map_err(|e| {
                    HostKeyError::Refused(format!("could not record the host key in {}: {e}", path.display()))
                })
            }
            Ok(false) => Err(HostKeyError::Unknown { fingerprint: seen }),
            Err(keys::Error::KeyChanged { line }) => Err(HostKeyError::Refused(format!(
                "the key it presents ({seen}) differs from line {line} of {}",
                path.display()
            ))),
            Err(e) => Err(HostKeyError::Refused(format!("{} could not be read: {e}", path.display()))),
        }
    }
}
