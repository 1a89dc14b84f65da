//! JSON shapes of the agent's HTTP API (PRODUCT.md, "HTTP API"), shared by the server, the
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
}

/// A `[[file]]` delivery that failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailingFile {
    /// The file, as configured.
    pub path: String,
    /// The secret it renders.
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

/// `GET /v1/fingerprints` answer (an addition to PRODUCT.md): every fingerprint the caller's
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

/// `POST /v1/revoke` request: exactly one of the three.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RevokeRequest {
    /// Revoke what this secret serves now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Revoke the credential with this fingerprint (any version the registry still holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Revoke the credential with this value (fingerprinted on arrival, never stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `POST /v1/revoke` answer: what was done (never a value).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokeAnswer {
    /// The secret concerned.
    pub secret: String,
    /// `revoked_lease`, `regenerated`, `rotated`, `not_revocable` or `failed`.
    pub action: String,
    /// Whether the credential was made unusable at its source.
    pub revoked: bool,
    /// The lease revoked, if any.
    pub lease_id: Option<String>,
    /// The version served afterwards.
    pub version: Option<u64>,
    /// What happened, in words (for `not_revocable`: what to do instead).
    pub detail: String,
}
