//! Checksums that token formats carry, so a random string of the right shape is not reported.
//!
//! GitHub's tokens (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`) and npm's (`npm_`) end in six base62
//! characters: the CRC32 of the 30 random characters before them.
//! <https://github.blog/engineering/platform-security/behind-githubs-new-authentication-token-formats/>

/// A checksum scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// PREFIX_ + 30 base62 + 6 base62 CRC32 of the 30.
    Github,
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl Checksum {
    /// The scheme named in a rule's `checksum` key.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "github" | "npm" => Some(Checksum::Github),
            _ => None,
        }
    }

    /// Whether `token` carries a valid checksum.
    pub fn verify(self, token: &[u8]) -> bool {
        match self {
            Checksum::Github => {
                let Some(body) = token.iter().rposition(|b| *b == b'_').map(|i| &token[i + 1..]) else {
                    return false;
                };
                if body.len() != 36 {
                    return false;
                }
                let (random, check) = body.split_at(30);
                check == base62_crc32(random).as_slice()
            }
        }
    }
}

/// CRC32 of `data` in base62, left-padded with `0` to 6 characters.
pub fn base62_crc32(data: &[u8]) -> [u8; 6] {
    let mut n = crc32fast::hash(data);
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_checksums_verify_and_a_changed_character_fails() {
        let random = b"abcdefghijklmnopqrstuvwxyz0123";
        let mut token = b"ghp_".to_vec();
        token.extend_from_slice(random);
        token.extend_from_slice(&base62_crc32(random));
        assert!(Checksum::Github.verify(&token));
        token[10] = b'Z';
        assert!(!Checksum::Github.verify(&token));
        assert!(!Checksum::Github.verify(b"ghp_short"));
    }
}
