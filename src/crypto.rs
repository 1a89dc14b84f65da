//! At-rest sealing and token hashes.
//!
//! Sealed blobs are `SKS1 | salt (16) | nonce (12) | AES-256-GCM ciphertext+tag`; the key is
//! derived from a passphrase file with Argon2id (the `argon2` crate's default parameters,
//! RFC 9106's second recommended option), so a copied store is useless without the key file.
//! Sealing is authenticated: a tampered blob or a wrong key fails to open, never decrypts to
//! garbage.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use zeroize::Zeroizing;

const MAGIC: &[u8; 4] = b"SKS1";
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;

/// Why sealing or opening failed. Never carries key or plaintext bytes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not a sealed blob of this format.
    #[error("not a sidekey sealed file (bad header)")]
    Format,
    /// Authentication failed: the file was modified or the key is wrong.
    #[error("authentication failed: the file was modified or the key is wrong")]
    Authentication,
    /// Key derivation failed (should not happen with the fixed parameters).
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

/// A 256-bit key derived from a passphrase; zeroed on drop, never printed.
pub struct SealingKey {
    salt: [u8; SALT_LEN],
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(***)")
    }
}

impl SealingKey {
    /// Derives a key for a new salt.
    pub fn derive_new(passphrase: &[u8]) -> Result<Self, Error> {
        let mut salt = [0u8; SALT_LEN];
        rand::thread_rng().fill_bytes(&mut salt);
        Self::derive(passphrase, salt)
    }

    /// Derives the key for an existing salt.
    pub fn derive(passphrase: &[u8], salt: [u8; SALT_LEN]) -> Result<Self, Error> {
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::default()
            .hash_password_into(passphrase, &salt, key.as_mut())
            .map_err(|e| Error::Kdf(e.to_string()))?;
        Ok(SealingKey { salt, key })
    }

    /// The salt this key was derived with.
    pub fn salt(&self) -> [u8; SALT_LEN] {
        self.salt
    }

    /// Encrypts `plaintext` under this key with a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new_from_slice(self.key.as_ref()).expect("key is 32 bytes");
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(4 + SALT_LEN + NONCE_LEN + ciphertext.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Decrypts a blob made by [`SealingKey::seal`] with the same salt.
    pub fn open(&self, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let (salt, nonce, ciphertext) = split(blob)?;
        if salt != self.salt {
            return Err(Error::Authentication);
        }
        let cipher = Aes256Gcm::new_from_slice(self.key.as_ref()).expect("key is 32 bytes");
        cipher
            .decrypt(Nonce::from_slice(&nonce), ciphertext)
            .map(Zeroizing::new)
            .map_err(|_| Error::Authentication)
    }
}

/// The salt of a sealed blob, to derive its key.
pub fn salt_of(blob: &[u8]) -> Result<[u8; SALT_LEN], Error> {
    split(blob).map(|(salt, _, _)| salt)
}

/// A sealed blob's parts: salt, nonce, ciphertext.
type Parts<'a> = ([u8; SALT_LEN], [u8; NONCE_LEN], &'a [u8]);

fn split(blob: &[u8]) -> Result<Parts<'_>, Error> {
    if blob.len() < 4 + SALT_LEN + NONCE_LEN + 16 || &blob[..4] != MAGIC {
        return Err(Error::Format);
    }
    let salt: [u8; SALT_LEN] = blob[4..4 + SALT_LEN].try_into().expect("length checked");
    let nonce: [u8; NONCE_LEN] = blob[4 + SALT_LEN..4 + SALT_LEN + NONCE_LEN]
        .try_into()
        .expect("length checked");
    Ok((salt, nonce, &blob[4 + SALT_LEN + NONCE_LEN..]))
}

/// Reads a key file: its bytes with one trailing newline (`\n` or `\r\n`) removed.
pub fn passphrase_from_file_bytes(mut bytes: Vec<u8>) -> Zeroizing<Vec<u8>> {
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    Zeroizing::new(bytes)
}

/// The argon2id PHC hash of a bearer token, for `[agent] tokens`.
pub fn hash_token(token: &[u8]) -> Result<String, Error> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(token, &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Kdf(e.to_string()))
}

/// Whether `token` matches the PHC `hash` (constant-time inside argon2).
pub fn verify_token(token: &[u8], hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(token, &parsed).is_ok())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_blobs_open_only_with_the_same_key_and_untouched() {
        let key = SealingKey::derive_new(b"passphrase").unwrap();
        let blob = key.seal(b"the plaintext");
        assert!(!blob.windows(9).any(|w| w == b"plaintext"));
        let again = SealingKey::derive(b"passphrase", salt_of(&blob).unwrap()).unwrap();
        assert_eq!(again.open(&blob).unwrap().as_slice(), b"the plaintext");

        let wrong = SealingKey::derive(b"other", salt_of(&blob).unwrap()).unwrap();
        assert!(matches!(wrong.open(&blob), Err(Error::Authentication)));
        let mut tampered = blob.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(matches!(again.open(&tampered), Err(Error::Authentication)));
        assert!(matches!(again.open(b"short"), Err(Error::Format)));
    }

    #[test]
    fn token_hashes_verify_only_their_token() {
        let hash = hash_token(b"tok-123").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_token(b"tok-123", &hash));
        assert!(!verify_token(b"tok-124", &hash));
        assert!(!verify_token(b"tok-123", "not a hash"));
    }

    #[test]
    fn key_files_lose_one_trailing_newline() {
        assert_eq!(passphrase_from_file_bytes(b"abc\n".to_vec()).as_slice(), b"abc");
        assert_eq!(passphrase_from_file_bytes(b"abc\r\n".to_vec()).as_slice(), b"abc");
        assert_eq!(passphrase_from_file_bytes(b"abc\n\n".to_vec()).as_slice(), b"abc\n");
    }
}
