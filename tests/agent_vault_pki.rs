//! `vault.pki`: the served certificate parses, carries the common name, matches its private
//! key's issuer chain, and is replaced (a new version) well before it expires.

use std::time::{Duration, SystemTime};

use x509_parser::prelude::*;

use crate::support::{eventually, Agent, Stack, VAULT_ROOT};

#[test]
fn the_certificate_parses_carries_the_common_name_and_is_replaced_before_expiry() {
    let stack = Stack::get();
    let mount = stack.pki_engine();
    let config = format!(
        r#"{VAULT_ROOT}
[secrets.cert]
backend = "vault"
kind = "vault.pki"
mount = "{mount}"
role = "web"
common_name = "app.internal"
alt_names = ["api.internal"]
ttl = "9s"

[[access]]
uid = "self"
secrets = ["cert"]
"#
    );
    let agent = Agent::start(&config);
    let first = agent.wait_served("cert", Duration::from_secs(20));
    let (serial, not_after) = check_certificate(&first);
    assert!(first["data"]["private_key"].as_str().unwrap().contains("PRIVATE KEY"));
    assert!(first["data"]["issuing_ca"]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    assert!(!first["lease"]["renewable"].as_bool().unwrap());

    let second = eventually(Duration::from_secs(15), "a replacement certificate", || {
        let v = agent.get("cert");
        (v["version"] != first["version"]).then_some(v)
    });
    let replaced_at = SystemTime::now();
    let (serial2, _) = check_certificate(&second);
    assert_ne!(serial, serial2);
    assert!(replaced_at < not_after, "replaced before the old certificate expired");
    let left = not_after.duration_since(replaced_at).unwrap();
    println!("replaced with {left:?} of the old certificate's life left");
    assert!(
        left >= Duration::from_secs(2),
        "replaced with about a third of its life left, not at the last moment: {left:?}"
    );

    agent.assert_never_leaked(&[
        first["data"]["private_key"]
            .as_str()
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .to_owned(),
        second["data"]["private_key"]
            .as_str()
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .to_owned(),
    ]);
}

/// Parses the served certificate: answers (serial, notAfter) after checking names.
fn check_certificate(answer: &serde_json::Value) -> (String, SystemTime) {
    let pem_text = answer["data"]["certificate"].as_str().expect("certificate field");
    let (_, pem) = parse_x509_pem(pem_text.as_bytes()).expect("PEM");
    let cert = pem.parse_x509().expect("X.509");
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(cn, "app.internal");
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert!(format!("{:?}", san.value.general_names).contains("api.internal"));
    let not_after = SystemTime::UNIX_EPOCH + Duration::from_secs(cert.validity().not_after.timestamp() as u64);
    (cert.raw_serial_as_string(), not_after)
}
