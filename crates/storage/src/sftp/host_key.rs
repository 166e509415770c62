//! The server's host key, checked against a known_hosts file (or learned into one on first
//! contact, when the location says so).

use russh::client;
use russh::keys::{self, PublicKey};

use super::HostKeyCheck;

/// Checks the server's host key against the configured known_hosts file.
pub(super) struct HostKeyChecker {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) check: HostKeyCheck,
}

#[derive(Debug)]
pub(super) enum HostKeyError {
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
        let verdict = match key {
            keys::PublicKeyOrCertificate::PublicKey { key, .. } => self.verdict(key),
            keys::PublicKeyOrCertificate::Certificate(_) => {
                Err("the server presents a certificate; list its plain host key in known_hosts".to_string())
            }
        };
        match verdict {
            Ok(()) => Ok(true),
            Err(why) => Err(HostKeyError::Refused(why)),
        }
    }
}

impl HostKeyChecker {
    fn verdict(&self, key: &PublicKey) -> Result<(), String> {
        let (path, learn) = match &self.check {
            HostKeyCheck::KnownHosts(p) => (p, false),
            HostKeyCheck::LearnInto(p) => (p, true),
        };
        match keys::check_known_hosts_path(&self.host, self.port, key, path) {
            Ok(true) => Ok(()),
            Ok(false) if learn => keys::known_hosts::learn_known_hosts_path(&self.host, self.port, key, path)
                .map_err(|e| format!("could not record the host key in {}: {e}", path.display())),
            Ok(false) => Err(format!(
                "{}:{} is not in {} (add it with: ssh-keyscan -p {} {} >> {})",
                self.host,
                self.port,
                path.display(),
                self.port,
                self.host,
                path.display()
            )),
            Err(keys::Error::KeyChanged { line }) => {
                Err(format!("the key differs from line {line} of {}", path.display()))
            }
            Err(e) => Err(format!("{} could not be read: {e}", path.display())),
        }
    }
}
