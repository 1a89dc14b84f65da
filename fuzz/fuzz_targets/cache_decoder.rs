//! The encrypted cache decoder, under a fixed key (Argon2id is far too slow to run per input).
//! The first byte picks the mode: even, the rest is a sealed blob as read from disk (header,
//! salt, nonce, AES-GCM); odd, the rest is the plaintext after decryption (the JSON map of
//! entries), decoded directly and also sealed and decoded again, which must agree.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use sidekey::crypto::{self, SealingKey};
use sidekey_agent::cache;

fn key() -> &'static SealingKey {
    static KEY: OnceLock<SealingKey> = OnceLock::new();
    KEY.get_or_init(|| SealingKey::derive(b"fuzz passphrase", [7; 16]).expect("fixed parameters derive"))
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    if mode % 2 == 0 {
        let _ = crypto::salt_of(rest);
        let _ = cache::decode(key(), rest, now);
        return;
    }
    let direct = cache::decode_plain(rest, now);
    let sealed = key().seal(rest);
    let opened = cache::decode(key(), &sealed, now);
    match (&direct, &opened) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.len(), b.len());
            for (name, restored) in a {
                assert_eq!(restored.version, b[name].version);
            }
        }
        (Err(_), Err(cache::Error::Content(_))) => {}
        _ => panic!("decoding the plaintext and its sealed blob disagree"),
    }
});
