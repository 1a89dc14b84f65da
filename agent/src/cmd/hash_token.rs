//! `sidekey-agent hash-token`: stdin → argon2id PHC hash for `[agent] tokens`.

use std::io::Read;

use zeroize::Zeroizing;

use super::UsageError;

pub fn hash_token() -> anyhow::Result<()> {
    let mut raw = Zeroizing::new(Vec::new());
    std::io::stdin().read_to_end(&mut raw)?;
    let token = sidekey::crypto::passphrase_from_file_bytes(raw.to_vec());
    if token.is_empty() {
        return Err(UsageError(
            "no token on stdin (pipe it in: printf %s \"$TOKEN\" | sidekey-agent hash-token)".into(),
        )
        .into());
    }
    println!("{}", sidekey::crypto::hash_token(&token)?);
    Ok(())
}
