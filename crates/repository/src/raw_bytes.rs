use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes that are usually text: file names, symlink targets, extended attribute names.
///
/// Stored in JSON as a plain string when they are valid UTF-8, and as
/// `{"base64": "…"}` otherwise, so names that are not UTF-8 survive exactly.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RawBytes(pub Vec<u8>);

impl RawBytes {
    pub fn as_os_str(&self) -> &OsStr {
        OsStr::from_bytes(&self.0)
    }
    pub fn to_os_string(&self) -> OsString {
        OsString::from_vec(self.0.clone())
    }
    pub fn from_os(s: &OsStr) -> Self {
        RawBytes(s.as_bytes().to_vec())
    }
    /// A lossy rendering for messages.
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl std::fmt::Debug for RawBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.display())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr<'a> {
    Text(std::borrow::Cow<'a, str>),
    Base64 { base64: String },
}

impl Serialize for RawBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => Repr::Text(text.into()).serialize(s),
            Err(_) => Repr::Base64 { base64: base64::engine::general_purpose::STANDARD.encode(&self.0) }.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for RawBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Text(t) => Ok(RawBytes(t.into_owned().into_bytes())),
            Repr::Base64 { base64 } => {
                base64::engine::general_purpose::STANDARD.decode(base64).map(RawBytes).map_err(serde::de::Error::custom)
            }
        }
    }
}

/// Serde helper for byte values that are rarely text (extended attribute values).
pub(crate) mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary_names_round_trip() {
        for bytes in [b"notes.txt".to_vec(), b"a\nb".to_vec(), vec![0xff, 0xfe, b'x']] {
            let json = serde_json::to_string(&RawBytes(bytes.clone())).unwrap();
            let back: RawBytes = serde_json::from_str(&json).unwrap();
            assert_eq!(back.0, bytes, "{json}");
        }
        assert_eq!(serde_json::to_string(&RawBytes(b"x".to_vec())).unwrap(), "\"x\"");
    }
}
