//! The issuers of leaked credentials the scanner talks to, one room each: [`aws`] (STS to tell
//! whether a key pair works, IAM to deactivate it) and [`vault`] (one Vault/OpenBao client:
//! token lookup-self and revoke-self, the agents' fingerprint registry, lease revocation).
//! [`crate::verify`] and [`crate::response`] decide what to ask; the issuers only ask.
//!
//! What is common: an issuer's [`Answer`] about a credential, and the [`Action`] one
//! revocation came to. Values never appear in either (errors quoting a value are scrubbed).

pub mod aws;
pub mod vault;

use sidekey::api::RevokeAction;

/// An issuer's answer about a leaked credential.
#[derive(Debug, Clone)]
pub enum Answer {
    /// It works; who it is, and (Vault) its accessor.
    Live {
        /// The identity the issuer named (an ARN, a token's display name).
        who: Option<String>,
        /// A Vault token's accessor.
        accessor: Option<String>,
    },
    /// The issuer refused it.
    Dead,
    /// Nothing could tell (why).
    Unknown(String),
}

/// What one action on a leaked credential came to.
#[derive(Debug, Clone)]
pub struct Action {
    /// What was done.
    pub action: RevokeAction,
    /// Whether it is now unusable.
    pub revoked: bool,
    /// Whose it is, when the issuer said.
    pub principal: Option<String>,
    /// What happened, in words.
    pub detail: String,
}

impl Action {
    /// An action record.
    pub fn new(action: RevokeAction, revoked: bool, principal: Option<String>, detail: String) -> Action {
        Action {
            action,
            revoked,
            principal,
            detail,
        }
    }
}

/// An error and its sources in words, `a: b: c` (each said once).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}
