//! An S3 location's access key, handed to OpenDAL's request signer in a wrapper of our own.
//!
//! OpenDAL's own way (`access_key_id` and `secret_access_key` on its builder) puts the keys
//! in reqsign's `StaticCredentialProvider`, whose derived `Debug` prints both in full, and
//! reqsign logs that provider at debug level each time it loads credentials ("Trying
//! credential provider: …"): `LIFEBOAT_LOG=debug` printed the secret key. This provider
//! gives the signer the same keys, and its `Debug` shows neither.

use reqsign_aws_v4::Credential;
use reqsign_core::{Context, ProvideCredential, ProvideCredentialChain};

pub(crate) struct S3Keys {
    access_key_id: String,
    secret_access_key: String,
}

impl std::fmt::Debug for S3Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("S3Keys { access_key_id: <not shown>, secret_access_key: <not shown> }")
    }
}

impl ProvideCredential for S3Keys {
    type Credential = Credential;

    async fn provide_credential(&self, _: &Context) -> reqsign_core::Result<Option<Credential>> {
        Ok(Some(Credential {
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            session_token: None,
            expires_in: None,
        }))
    }
}

/// The only credentials the signer is to use: these keys (nothing from the environment,
/// profiles or instance metadata, as with `disable_config_load`).
pub(crate) fn only(access_key_id: &str, secret_access_key: &str) -> ProvideCredentialChain<Credential> {
    ProvideCredentialChain::new()
        .push(S3Keys { access_key_id: access_key_id.to_string(), secret_access_key: secret_access_key.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neither_key_is_shown_by_debug() {
        let keys = S3Keys { access_key_id: "AKIDEXAMPLEID".into(), secret_access_key: "s3cr3t-k3y-v4lu3".into() };
        let shown = format!("{keys:?} {:?}", only("AKIDEXAMPLEID", "s3cr3t-k3y-v4lu3"));
        assert!(!shown.contains("AKIDEXAMPLEID") && !shown.contains("s3cr3t-k3y-v4lu3"), "{shown}");
    }
}
