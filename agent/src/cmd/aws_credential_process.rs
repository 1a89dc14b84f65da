//! `sidekey-agent aws-credential-process NAME [--socket PATH]`: an `aws.sts` secret, read over
//! the socket, printed as the JSON an AWS profile's `credential_process` runs for, so the AWS
//! CLI and every SDK use the agent's short-lived session with nothing but a profile:
//!
//! ```ini
//! [profile deploy]
//! credential_process = sidekey-agent aws-credential-process deploy --socket /run/sidekey/agent.sock
//! ```
//!
//! The shape is AWS's: `Version` 1, the three keys, and `Expiration` (RFC 3339), which tells
//! the SDK when to run the command again.
//! <https://docs.aws.amazon.com/cli/v1/userguide/cli-configure-sourcing-external.html>

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use sidekey::SecretData;
use sidekey_client::blocking::Client;
use sidekey_client::Error;
use zeroize::Zeroizing;

/// The fields an `aws.sts` secret's data holds (agent/src/backend/aws/sts.rs).
const FIELDS: [&str; 3] = ["access_key_id", "secret_access_key", "session_token"];

/// What `credential_process` must print.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessCredentials<'a> {
    version: u8,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    /// Left out for a value with no lease: the SDK then keeps the credentials (AWS's rule).
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration: Option<&'a str>,
}

pub fn print(name: &str, socket: &Path) -> anyhow::Result<()> {
    let secret = Client::new(socket)?.secret(name).map_err(|e| match e {
        Error::Agent { .. } => anyhow::anyhow!("{name}: {e}"),
        other => other.into(),
    })?;
    let [key, secret_key, token] = sts_fields(name, &secret.source, &secret.data)?;
    let body = ProcessCredentials {
        version: 1,
        access_key_id: key.expose(),
        secret_access_key: secret_key.expose(),
        session_token: token.expose(),
        expiration: secret.lease.as_ref().map(|l| l.expires_at.as_str()),
    };
    // The value leaves here, to the SDK that ran us; the buffer is zeroized.
    let mut out = Zeroizing::new(Vec::with_capacity(4096));
    serde_json::to_writer(&mut *out, &body)?;
    out.push(b'\n');
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(())
}

/// The three session fields, or an error naming the ones the data lacks (never a value).
fn sts_fields(name: &str, source: &str, data: &SecretData) -> anyhow::Result<[sidekey::SecretString; 3]> {
    let missing: Vec<&str> = FIELDS.into_iter().filter(|f| data.field(f).is_none()).collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "{name} is not an aws.sts secret (source {source}): its data lacks {} (it has: {})",
            missing.join(", "),
            data.field_names().join(", ")
        );
    }
    Ok(FIELDS.map(|f| data.field(f).expect("checked above")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_of_another_shape_is_refused_naming_the_missing_fields_only() {
        let data = SecretData::from_json(r#"{"username":"u","password":"not-a-real-value"}"#).unwrap();
        let e = sts_fields("db", "vault/vault.database", &data).unwrap_err().to_string();
        assert_eq!(
            e,
            "db is not an aws.sts secret (source vault/vault.database): its data lacks \
             access_key_id, secret_access_key, session_token (it has: password, username)"
        );
        assert!(!e.contains("not-a-real-value"));
    }

    #[test]
    fn the_json_is_what_credential_process_expects() {
        let data =
            SecretData::from_json(r#"{"access_key_id":"AK","secret_access_key":"SK","session_token":"ST"}"#).unwrap();
        let [k, s, t] = sts_fields("deploy", "aws/aws.sts", &data).unwrap();
        let body = ProcessCredentials {
            version: 1,
            access_key_id: k.expose(),
            secret_access_key: s.expose(),
            session_token: t.expose(),
            expiration: Some("2026-11-26T10:15:00Z"),
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"Version":1,"AccessKeyId":"AK","SecretAccessKey":"SK","SessionToken":"ST","Expiration":"2026-11-26T10:15:00Z"}"#
        );
    }
}
