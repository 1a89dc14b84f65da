//! Leak fingerprints: `HMAC-SHA256(key, value)` of each secret-bearing field of a served
//! credential. The agent records them; a scanner holding the same key fingerprints strings it
//! finds and asks the agent which are its own — no value ever crosses, and a random password
//! that no rule recognises is still known by its fingerprint.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::SecretData;

/// Fields that identify or describe a credential but are not secret: not fingerprinted (a
/// leaked user name or certificate is not a leaked credential).
pub const PUBLIC_FIELDS: &[&str] = &[
    "username",
    "user",
    "certificate",
    "issuing_ca",
    "ca_chain",
    "serial_number",
    "private_key_type",
    "expiration",
    "Expiration",
    "lease_id",
];

/// Shortest value fingerprinted: shorter strings are not credentials worth matching.
pub const MIN_LEN: usize = 8;

/// The HMAC key, read from `fingerprint_key_file` (its bytes; a trailing newline ignored).
/// Holds the keyed HMAC state, so each fingerprint costs only the value's own hashing.
#[derive(Clone)]
pub struct FingerprintKey(Hmac<Sha256>);

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(***)")
    }
}

impl FingerprintKey {
    /// Reads the key file; an empty key is refused.
    pub fn load(path: &Path) -> Result<FingerprintKey, String> {
        let mut bytes =
            Zeroizing::new(std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?);
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        if bytes.is_empty() {
            return Err(format!("{}: the fingerprint key file is empty", path.display()));
        }
        Ok(FingerprintKey::from_bytes(&bytes))
    }

    /// A key from bytes (tests, generated keys).
    pub fn from_bytes(bytes: &[u8]) -> FingerprintKey {
        FingerprintKey(Hmac::<Sha256>::new_from_slice(bytes).expect("HMAC takes keys of any length"))
    }

    /// The fingerprint of `value`: lowercase hex of `HMAC-SHA256(key, value)`.
    pub fn fingerprint(&self, value: &[u8]) -> String {
        let mut mac = self.0.clone();
        mac.update(value);
        hex::encode(mac.finalize().into_bytes())
    }

    /// The fingerprints of `data`'s secret-bearing fields (every string field of at least
    /// [`MIN_LEN`] characters but the public ones): field name, fingerprint, value length in
    /// bytes (published too, so scanners HMAC only strings of those lengths).
    pub fn fingerprints(&self, data: &SecretData) -> Vec<(String, String, usize)> {
        let Ok(mut parsed) = serde_json::from_str::<serde_json::Value>(data.expose_json()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (field, value) in parsed.as_object().into_iter().flatten() {
            if PUBLIC_FIELDS.contains(&field.as_str()) {
                continue;
            }
            if let serde_json::Value::String(s) = value {
                if s.len() >= MIN_LEN {
                    out.push((field.clone(), self.fingerprint(s.as_bytes()), s.len()));
                }
            }
        }
        crate::secret::scrub(&mut parsed);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_keyed_hmacs_of_secret_fields_only() {
        let key = FingerprintKey::from_bytes(b"k");
        // RFC 4231-style check against an independent HMAC computation.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        mac.update(b"s3cret-value");
        assert_eq!(
            key.fingerprint(b"s3cret-value"),
            hex::encode(mac.finalize().into_bytes())
        );
        assert_ne!(
            key.fingerprint(b"x"),
            FingerprintKey::from_bytes(b"other").fingerprint(b"x")
        );

        let data = SecretData::from_json(
            r#"{"username":"v-app-123456","password":"A1b2C3d4E5f6G7h8","ttl":3600,"pin":"1234"}"#,
        )
        .unwrap();
        let fields: Vec<String> = key.fingerprints(&data).into_iter().map(|(f, _, _)| f).collect();
        assert_eq!(fields, vec!["password"]);
        assert_eq!(format!("{key:?}"), "FingerprintKey(***)");
    }
}
