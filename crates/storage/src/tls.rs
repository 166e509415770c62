//! The one crypto provider behind every TLS connection (S3, WebDAV, the cloud drives, the
//! daemon's webhook): ring, which SSH (russh) uses too. Built without a default provider,
//! rustls needs it installed before the first HTTP client is made.

/// Installs ring as the process's TLS crypto provider; later calls do nothing.
pub fn install_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only when a provider is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_https_client_can_be_made_once_the_provider_is_installed() {
        super::install_provider();
        super::install_provider();
        // Without a provider, rustls' client configuration cannot be built and reqwest panics.
        assert!(reqwest::Client::builder().https_only(true).build().is_ok());
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
