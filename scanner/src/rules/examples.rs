//! Example templates: rule examples are written with placeholders expanded with random
//! characters when tests run, so the repository never holds a key-shaped literal.
//!
//! `{alnum:N}` `{upper:N}` (A-Z0-9) `{lower:N}` (a-z0-9) `{alpha:N}` `{digits:N}` `{hex:N}`
//! `{HEX:N}` `{b64:N}` `{b64url:N}`; `{github:PREFIX}` a checksum-valid GitHub/npm token;
//! `{pem:LABEL}` a PEM block; `{pemjson:LABEL}` the same with `\n` escaped as in JSON; `{jwt}`;
//! `{{` and `}}` for literal braces.

use rand::Rng;

use super::checksum::base62_crc32;

/// Why a template could not be expanded.
#[derive(Debug, thiserror::Error)]
#[error("template {template:?}: {reason}")]
pub struct Error {
    template: String,
    reason: String,
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Expands `template` with random characters from `rng`.
pub fn expand(template: &str, rng: &mut impl Rng) -> Result<String, Error> {
    let fail = |reason: &str| Error {
        template: template.to_owned(),
        reason: reason.to_owned(),
    };
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(r) = rest.strip_prefix("{{") {
            out.push('{');
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix("}}") {
            out.push('}');
            rest = r;
            continue;
        }
        if rest.starts_with('}') {
            return Err(fail("unmatched '}' (write }} for a literal brace)"));
        }
        let end = rest.find('}').ok_or_else(|| fail("unclosed '{'"))?;
        let placeholder = &rest[1..end];
        rest = &rest[end + 1..];
        let (kind, arg) = placeholder.split_once(':').unwrap_or((placeholder, ""));
        let count = || {
            arg.parse::<usize>()
                .map_err(|_| fail(&format!("{{{placeholder}}} needs a length")))
        };
        match kind {
            "alnum" => push_random(&mut out, rng, ALNUM, count()?),
            "upper" => push_random(&mut out, rng, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", count()?),
            "lower" => push_random(&mut out, rng, b"abcdefghijklmnopqrstuvwxyz0123456789", count()?),
            "alpha" => push_random(&mut out, rng, &ALNUM[..52], count()?),
            "digits" => push_random(&mut out, rng, b"0123456789", count()?),
            "hex" => push_random(&mut out, rng, b"0123456789abcdef", count()?),
            "HEX" => push_random(&mut out, rng, b"0123456789ABCDEF", count()?),
            "b64" => push_random(
                &mut out,
                rng,
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                count()?,
            ),
            "b64url" => push_random(
                &mut out,
                rng,
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                count()?,
            ),
            "github" => {
                if arg.is_empty() {
                    return Err(fail("{github:PREFIX} needs a prefix such as ghp"));
                }
                let mut random = String::new();
                push_random(&mut random, rng, ALNUM, 30);
                out.push_str(arg);
                out.push('_');
                out.push_str(&random);
                out.push_str(std::str::from_utf8(&base62_crc32(random.as_bytes())).expect("base62 is ASCII"));
            }
            "pem" | "pemjson" => {
                if arg.is_empty() {
                    return Err(fail("{pem:LABEL} needs a label such as RSA PRIVATE KEY"));
                }
                let newline = if kind == "pem" { "\n" } else { "\\n" };
                out.push_str(&format!("-----BEGIN {arg}-----{newline}"));
                for _ in 0..8 {
                    push_random(
                        &mut out,
                        rng,
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                        64,
                    );
                    out.push_str(newline);
                }
                push_random(
                    &mut out,
                    rng,
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                    20,
                );
                out.push_str(&format!("=={newline}-----END {arg}-----"));
            }
            "jwt" => {
                // {"alg":"HS256","typ":"JWT"} in base64url, then a payload and a signature.
                out.push_str("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI");
                push_random(
                    &mut out,
                    rng,
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                    24,
                );
                out.push_str("In0.");
                push_random(
                    &mut out,
                    rng,
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                    43,
                );
            }
            _ => return Err(fail(&format!("unknown placeholder {{{placeholder}}}"))),
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn push_random(out: &mut String, rng: &mut impl Rng, alphabet: &[u8], n: usize) {
    out.extend((0..n).map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::checksum::Checksum;
    use rand::SeedableRng;

    #[test]
    fn placeholders_expand_to_their_alphabet_and_length() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let s = expand("key={hex:40} id=AKIA{upper:16} {{literal}}", &mut rng).unwrap();
        let hex = &s[4..44];
        assert!(
            hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{s}"
        );
        assert!(s.ends_with(" {literal}"), "{s}");
        let token = expand("{github:ghp}", &mut rng).unwrap();
        assert!(token.starts_with("ghp_") && token.len() == 40 && Checksum::Github.verify(token.as_bytes()));
        let pem = expand("{pemjson:PRIVATE KEY}", &mut rng).unwrap();
        let header = format!("-----BEGIN {}-----\\n", "PRIVATE KEY");
        assert!(pem.starts_with(&header) && !pem.contains('\n'));
        assert!(expand("{nope:3}", &mut rng).is_err());
        assert!(expand("{hex}", &mut rng).is_err());
        assert!(expand("a } b", &mut rng).is_err());
    }
}
