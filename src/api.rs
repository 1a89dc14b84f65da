//! JSON shapes of the agent's HTTP API (docs/http-api.md), shared by the server, the
//! `sidekey-agent get` client and the scanner. Response types that carry secret data hold it
//! as raw JSON text written by the server, so this module never parses a value.

use serde::{Deserialize, Serialize};

/// `GET /v1/secrets`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretList {
    /// Names this peer may read.
    pub secrets: Vec<SecretSummary>,
}

/// One entry of [`SecretList`]: no value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretSummary {
    /// The secret's name.
    pub name: String,
    /// The served version (0 when nothing is served yet).
    pub version: u64,
    /// RFC 3339 end of validity, when leased.
    pub expires_at: Option<String>,
}

/// The `lease` object of a secret answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// The issuer's lease id (empty for leases without one, e.g. certificates).
    pub id: String,
    /// Seconds of validity left when the answer was made.
    pub ttl_s: u64,
    /// RFC 3339 end of validity.
    pub expires_at: String,
    /// Whether the issuer allows renewal.
    pub renewable: bool,
}

/// `GET /v1/secrets/{name}` minus `data`, which the server splices in as raw JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretMeta {
    /// The secret's name.
    pub name: String,
    /// Increases each time the served value changes.
    pub version: u64,
    /// Lease details, or null for unleased secrets.
    pub lease: Option<LeaseInfo>,
    /// RFC 3339 time the value was fetched from its source.
    pub fetched_at: String,
    /// `backend/kind`, e.g. `vault/vault.database`.
    pub source: String,
}

/// `GET /v1/health`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    /// `ok`, or `degraded` (503 when a secret is not served; 200 when every secret is served
    /// but some could not be refreshed).
    pub status: String,
    /// Secrets not being served, with the reason (empty when ok).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<FailingSecret>,
    /// `[[file]]` deliveries whose last render, write or `on_change` failed (the file holds
    /// the previous content, or none yet); such failures alone make the status `degraded`
    /// with 200.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FailingFile>,
    /// `[[proxy]]` sockets whose database server cannot be reached or refused the served
    /// credential at the last attempt; such failures alone make the status `degraded` with
    /// 200.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proxies: Vec<FailingProxy>,
}

/// A `[[proxy]]` whose database server is down (or refuses the served credential).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailingProxy {
    /// The proxy's socket, as configured.
    pub listen: String,
    /// The secret it logs in with.
    pub secret: String,
    /// The database server, `host:port`.
    pub upstream: String,
    /// Why (never a value), e.g. `cannot connect to db.internal:5432 (prefer): Connection refused`.
    pub reason: String,
}

/// A `[[file]]` delivery that failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailingFile {
    /// The file, as configured.
    pub path: String,
    /// The secret it renders; for a file of several secrets, their names comma-separated
    /// (`db,api`: its `secret` first, then the template's order).
    pub secret: String,
    /// Why (never a value), e.g. `template names unknown field "pasword" (the secret has: password, username)`.
    pub reason: String,
}

/// A secret that cannot be served right now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailingSecret {
    /// The secret's name.
    pub name: String,
    /// Why (never a value).
    pub reason: String,
    /// Whether an older, still valid value is being served meanwhile.
    #[serde(default)]
    pub served: bool,
}

/// Every error answer: `{"error": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

/// `POST /v1/fingerprints/match` request: `{"fingerprints": [HEX, ...]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FingerprintQuery {
    /// Fingerprints (lowercase hex HMAC-SHA256) to look up.
    pub fingerprints: Vec<String>,
}

/// `POST /v1/fingerprints/match` answer: the fingerprints that are the broker's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FingerprintMatches {
    /// One per matched fingerprint.
    pub matches: Vec<FingerprintMatch>,
}

/// One fingerprint the broker issued.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FingerprintMatch {
    /// The fingerprint asked about.
    pub fingerprint: String,
    /// The secret it belongs to.
    pub secret: String,
    /// The field of the secret's data it was in.
    pub field: String,
    /// The secret's backend.
    pub backend: String,
    /// The served version it belonged to.
    pub version: u64,
    /// The issuer's lease id, if any.
    pub lease_id: Option<String>,
    /// When the credential stops being valid (RFC 3339), if it expires.
    pub valid_until: Option<String>,
    /// Whether a newer version has replaced it.
    pub replaced: bool,
}

/// `GET /v1/fingerprints` answer (docs/http-api.md, "GET /v1/fingerprints"): every fingerprint the caller's
/// grants cover, so a scanner can match locally with one request per scan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FingerprintSet {
    /// `(fingerprint, secret name)` pairs.
    pub fingerprints: Vec<FingerprintOwner>,
}

/// A fingerprint and the secret it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FingerprintOwner {
    /// Lowercase hex HMAC-SHA256.
    pub fingerprint: String,
    /// The secret's name.
    pub secret: String,
    /// The value's length in bytes: a scanner fingerprints only strings of these lengths.
    #[serde(default)]
    pub length: Option<usize>,
}

/// What went wrong parsing a JSON body that may hold a secret value, without repeating any of
/// it: serde's messages quote what they found (`invalid type: string "hunter2", expected u64`),
/// so only the kind of error and its position are given — except the refusals this module
/// writes itself, which hold no value.
pub fn json_error(e: &serde_json::Error) -> String {
    let own = e.to_string();
    if own.starts_with(RevokeRequest::EXACTLY_ONE) {
        return RevokeRequest::EXACTLY_ONE.to_owned();
    }
    let what = match e.classify() {
        serde_json::error::Category::Io => "it could not be read",
        serde_json::error::Category::Syntax => "it is not JSON",
        serde_json::error::Category::Eof => "it ends too early",
        serde_json::error::Category::Data => "a field is missing or of the wrong type",
    };
    format!("{what} (line {}, column {})", e.line(), e.column())
}

/// `POST /v1/revoke` request: exactly one of `{"secret": NAME}`, `{"fingerprint": HEX}` or
/// `{"value": "..."}`. A body naming none or several is refused with
/// [`RevokeRequest::EXACTLY_ONE`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RevokeFields", into = "RevokeFields")]
pub enum RevokeRequest {
    /// Revoke what this secret serves now.
    Secret(String),
    /// Revoke the credential with this fingerprint (any version the registry still holds).
    Fingerprint(String),
    /// Revoke the credential with this value (fingerprinted on arrival, never stored).
    Value(zeroize::Zeroizing<String>),
}

impl RevokeRequest {
    /// The refusal of a body that names none or several of the three.
    pub const EXACTLY_ONE: &'static str = "name exactly one of \"secret\", \"fingerprint\" or \"value\"";
}

impl std::fmt::Debug for RevokeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RevokeRequest::Secret(s) => f.debug_tuple("Secret").field(s).finish(),
            RevokeRequest::Fingerprint(p) => f.debug_tuple("Fingerprint").field(p).finish(),
            RevokeRequest::Value(_) => f.write_str("Value(***)"),
        }
    }
}

/// The wire form of [`RevokeRequest`]: three optional keys.
#[derive(Default, Serialize, Deserialize)]
struct RevokeFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<zeroize::Zeroizing<String>>,
}

impl TryFrom<RevokeFields> for RevokeRequest {
    type Error = &'static str;

    fn try_from(fields: RevokeFields) -> Result<Self, Self::Error> {
        match (fields.secret, fields.fingerprint, fields.value) {
            (Some(name), None, None) => Ok(RevokeRequest::Secret(name)),
            (None, Some(print), None) => Ok(RevokeRequest::Fingerprint(print)),
            (None, None, Some(value)) => Ok(RevokeRequest::Value(value)),
            _ => Err(RevokeRequest::EXACTLY_ONE),
        }
    }
}

impl From<RevokeRequest> for RevokeFields {
    fn from(request: RevokeRequest) -> Self {
        match request {
            RevokeRequest::Secret(name) => RevokeFields {
                secret: Some(name),
                ..Default::default()
            },
            RevokeRequest::Fingerprint(print) => RevokeFields {
                fingerprint: Some(print),
                ..Default::default()
            },
            RevokeRequest::Value(value) => RevokeFields {
                value: Some(value),
                ..Default::default()
            },
        }
    }
}

/// What a revocation came to: the `action` of [`RevokeAnswer`] and of the scanner's incident
/// records, serialised in snake case (`"revoked_lease"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeAction {
    /// A Vault lease (`vault.database`, `vault.lease`) revoked at the issuer; a fresh one served.
    RevokedLease,
    /// A `vault.pki` certificate revoked by serial (it goes on the CRL); a new one served.
    RevokedCertificate,
    /// The role's older `aws.sts` sessions denied (an inline policy on `aws:TokenIssueTime`);
    /// the role assumed again.
    RevokedSessions,
    /// A `local.generated` value generated anew.
    Regenerated,
    /// An `aws.secretsmanager` secret rotated at its source (RotateSecret).
    Rotated,
    /// A live AWS access key deactivated through IAM (`sidekey-scan --revoke`).
    DeactivatedAccessKey,
    /// A live Vault token revoked (revoke-self; `sidekey-scan --revoke`).
    RevokedToken,
    /// Nothing sidekey can revoke at the source: `detail` says what to do instead.
    NotRevocable,
    /// The attempt failed: `detail` says why.
    Failed,
    /// `sidekey-scan --revoke=dry-run`: what would be done, nothing done.
    DryRun,
}

impl RevokeAction {
    /// Every action, in the order the docs list them.
    pub const ALL: [RevokeAction; 10] = [
        RevokeAction::RevokedLease,
        RevokeAction::RevokedCertificate,
        RevokeAction::RevokedSessions,
        RevokeAction::Regenerated,
        RevokeAction::Rotated,
        RevokeAction::DeactivatedAccessKey,
        RevokeAction::RevokedToken,
        RevokeAction::NotRevocable,
        RevokeAction::Failed,
        RevokeAction::DryRun,
    ];

    /// The wire name, e.g. `revoked_lease` (also used in logs and metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeAction::RevokedLease => "revoked_lease",
            RevokeAction::RevokedCertificate => "revoked_certificate",
            RevokeAction::RevokedSessions => "revoked_sessions",
            RevokeAction::Regenerated => "regenerated",
            RevokeAction::Rotated => "rotated",
            RevokeAction::DeactivatedAccessKey => "deactivated_access_key",
            RevokeAction::RevokedToken => "revoked_token",
            RevokeAction::NotRevocable => "not_revocable",
            RevokeAction::Failed => "failed",
            RevokeAction::DryRun => "dry_run",
        }
    }
}

impl std::fmt::Display for RevokeAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /v1/revoke` answer: what was done (never a value).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokeAnswer {
    /// The secret concerned.
    pub secret: String,
    /// What was done.
    pub action: RevokeAction,
    /// Whether the credential was made unusable at its source.
    pub revoked: bool,
    /// The lease revoked, if any.
    pub lease_id: Option<String>,
    /// The version served afterwards.
    pub version: Option<u64>,
    /// What happened, in words (for `not_revocable`: what to do instead).
    pub detail: String,
}

/// The fingerprint registry as an agent publishes it (`[registry]`, the KV v2 entry
/// `MOUNT/data/PATH/NAME`) and a scanner reads it back (`sidekey-scan --verify --vault-addr`).
/// Fingerprints, names, lease ids and validity; never a value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistrySnapshot {
    /// The publishing agent's `[registry] name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// When it was published (RFC 3339 UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<String>,
    /// Fingerprint (lowercase hex HMAC-SHA256) → what it belongs to.
    #[serde(default)]
    pub fingerprints: std::collections::BTreeMap<String, RegistryEntry>,
}

/// One fingerprint of a [`RegistrySnapshot`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistryEntry {
    /// The secret's name.
    pub secret: String,
    /// Its backend (`[backends.NAME]`).
    #[serde(default)]
    pub backend: String,
    /// The field of the secret's data the value was in.
    #[serde(default)]
    pub field: String,
    /// The served version it belonged to.
    #[serde(default)]
    pub version: u64,
    /// The issuer's lease id, if any.
    #[serde(default)]
    pub lease_id: Option<String>,
    /// When the credential stops being valid (RFC 3339), if it expires.
    #[serde(default)]
    pub valid_until: Option<String>,
    /// Whether a newer version has replaced it.
    #[serde(default)]
    pub replaced: bool,
    /// The value's length in bytes.
    #[serde(default)]
    pub length: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoke_request_is_exactly_one_of_three_on_the_wire() {
        let secret: RevokeRequest = serde_json::from_str(r#"{"secret":"db"}"#).unwrap();
        assert_eq!(secret, RevokeRequest::Secret("db".into()));
        assert_eq!(serde_json::to_string(&secret).unwrap(), r#"{"secret":"db"}"#);
        let print = RevokeRequest::Fingerprint("ab12".into());
        assert_eq!(serde_json::to_string(&print).unwrap(), r#"{"fingerprint":"ab12"}"#);
        let value: RevokeRequest = serde_json::from_str(r#"{"value":"hunter2-xyz"}"#).unwrap();
        assert_eq!(format!("{value:?}"), "Value(***)");
        for bad in [
            r#"{}"#,
            r#"{"secret":"a","fingerprint":"b"}"#,
            r#"{"secret":"a","value":"b"}"#,
        ] {
            let e = serde_json::from_str::<RevokeRequest>(bad).unwrap_err().to_string();
            assert!(e.starts_with(RevokeRequest::EXACTLY_ONE), "{bad}: {e}");
        }
        assert!(serde_json::from_str::<RevokeRequest>(r#"{"secrets":"a"}"#).is_err());
        assert!(serde_json::from_str::<RevokeRequest>(r#"{"value":7}"#).is_err());
    }

    #[test]
    fn json_errors_never_repeat_what_they_found() {
        let value = format!("pw-{}", std::process::id());
        for body in [
            format!(r#"{{"value": {{"nested": "{value}"}}}}"#),
            format!(r#"{{"secret": ["{value}"]}}"#),
            format!(r#"{{"value": "{value}"#),
        ] {
            let e = serde_json::from_str::<RevokeRequest>(&body).unwrap_err();
            let said = json_error(&e);
            assert!(!said.contains(&value), "{said}");
            assert!(said.contains("line 1"), "{said}");
        }
        let e = serde_json::from_str::<RevokeRequest>("{}").unwrap_err();
        assert_eq!(json_error(&e), RevokeRequest::EXACTLY_ONE);
    }

    #[test]
    fn revoke_actions_serialise_as_their_names() {
        for action in RevokeAction::ALL {
            let wire = serde_json::to_string(&action).unwrap();
            assert_eq!(wire, format!("\"{}\"", action.as_str()));
            assert_eq!(serde_json::from_str::<RevokeAction>(&wire).unwrap(), action);
        }
    }

    #[test]
    fn registry_snapshot_keeps_the_published_shape() {
        let text = r#"{"agent":"web-1","fingerprints":{"ab":{"backend":"vault","field":"password",
            "lease_id":"database/creds/app/x","length":24,"replaced":false,"secret":"db",
            "valid_until":"2026-01-01T00:00:00Z","version":3}},"published_at":"2026-01-01T00:00:00Z"}"#;
        let snapshot: RegistrySnapshot = serde_json::from_str(text).unwrap();
        assert_eq!(snapshot.fingerprints["ab"].length, Some(24));
        let again: serde_json::Value = serde_json::to_value(&snapshot).unwrap();
        let want: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(again, want);
        // Entries without a lease keep `null`s, as the agent wrote them with `json!`.
        let bare = serde_json::to_value(RegistryEntry::default()).unwrap();
        assert!(bare["lease_id"].is_null() && bare["valid_until"].is_null());
    }
}
