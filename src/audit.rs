//! Audit events: what the agent did and whom it answered. No field can hold a secret value —
//! names, lease ids, versions, peers and reasons only — so an audit line can be shipped
//! anywhere.

use std::time::SystemTime;

use serde::Serialize;

use crate::lease::LeaseId;
use crate::secret::SecretName;

/// Who asked, as the kernel reported it (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Peer {
    /// Effective uid of the connecting process.
    pub uid: u32,
    /// Effective gid of the connecting process.
    pub gid: u32,
    /// Pid of the connecting process, when known.
    pub pid: Option<i32>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A credential was issued (first fetch, or a changed value).
    Issue,
    /// A lease was renewed in place.
    Renew,
    /// A fresh credential replaced one near its end.
    Reissue,
    /// An old lease was revoked at the issuer.
    Revoke,
    /// The secret was rotated at its source (`rotate_every`).
    Rotate,
    /// A peer read a secret.
    Read,
    /// A peer asked which fingerprints are the broker's (`count`: how many matched).
    Match {
        /// How many fingerprints it asked about.
        asked: usize,
    },
    /// A peer was refused.
    Refusal {
        /// Why, e.g. "no [[access]] rule grants uid 65534".
        reason: String,
    },
    /// A `[[file]]` was written with the served version of the secret.
    Render {
        /// The file written.
        path: String,
    },
    /// A `[[proxy]]` session logged in upstream with the served version.
    SessionOpen,
    /// A `[[proxy]]` session ended.
    SessionEnd {
        /// Why: `client closed`, `server closed`, `expired`, `revoked`, `stopping`.
        reason: String,
        /// Bytes relayed from the client to the database server.
        bytes_to_server: u64,
        /// Bytes relayed from the database server to the client.
        bytes_to_client: u64,
        /// How long the session ran, in whole seconds.
        seconds: u64,
    },
    /// Fetching, renewing or revoking failed, or a `[[file]]` could not be written or its
    /// `on_change` command failed.
    Failure {
        /// The action that failed: issue, renew, reissue, revoke, auth, render, on_change.
        action: String,
        /// The error, which never contains a value.
        reason: String,
    },
}

/// One audit line.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    /// RFC 3339 UTC time, with milliseconds.
    #[serde(serialize_with = "rfc3339")]
    pub ts: SystemTime,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
    /// The secret concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretName>,
    /// The backend concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The lease concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<LeaseId>,
    /// The served version after the event, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The requesting peer, for reads and refusals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<Peer>,
    /// The verified token name the request carried, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The remote address, for requests on the TCP listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// The HTTP route, for reads and refusals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The `[[proxy]]` socket, for proxy sessions and their refusals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// The `[[access]]` rule (0-based) that granted a read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
    /// For reads: how many identical reads this line stands for (from `ts` on, within the
    /// agent's tally window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl AuditEvent {
    /// An event of `kind` now, with no other fields set.
    pub fn new(kind: EventKind) -> Self {
        AuditEvent {
            ts: SystemTime::now(),
            kind,
            secret: None,
            backend: None,
            lease_id: None,
            version: None,
            peer: None,
            route: None,
            token: None,
            remote: None,
            proxy: None,
            rule: None,
            count: None,
        }
    }

    /// Sets the secret.
    pub fn secret(mut self, name: &SecretName) -> Self {
        self.secret = Some(name.clone());
        self
    }

    /// Sets the backend.
    pub fn backend(mut self, backend: &str) -> Self {
        self.backend = Some(backend.to_owned());
        self
    }

    /// Sets the lease.
    pub fn lease(mut self, lease: Option<&LeaseId>) -> Self {
        self.lease_id = lease.cloned();
        self
    }

    /// Sets the version.
    pub fn version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    /// Sets the peer and route.
    pub fn request(mut self, peer: Peer, route: &str) -> Self {
        self.peer = Some(peer);
        self.route = Some(route.to_owned());
        self
    }
}

/// RFC 3339 UTC with seconds, as used across the API.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Audit lines carry milliseconds, so events can be ordered and timed.
fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_rfc3339_millis(*t).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_flat_with_their_kind() {
        let e = AuditEvent::new(EventKind::Refusal {
            reason: "no rule".into(),
        })
        .secret(&SecretName::new("db"))
        .request(
            Peer {
                uid: 65534,
                gid: 65534,
                pid: Some(7),
            },
            "/v1/secrets/db",
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["event"], "refusal");
        assert_eq!(json["reason"], "no rule");
        assert_eq!(json["secret"], "db");
        assert_eq!(json["peer"]["uid"], 65534);
        assert!(json["ts"].as_str().unwrap().ends_with('Z'));
        assert!(json.get("lease_id").is_none());
    }
}
