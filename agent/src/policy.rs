//! The access policy: `[[access]]` rules over the kernel-reported peer (`SO_PEERCRED`) and
//! the verified token a request carries. Default deny. A caller that no rule matches is refused everything; a matched caller gets
//! an [`Admitted`], and reading a secret takes a [`Permit`] that only
//! [`Admitted::permit`] makes, so a handler that forgets the check does not compile.
//!
//! A rule matches a caller when every criterion it names matches: `uid`/`gid` need a Unix
//! socket peer (the TCP listener has none), `token` needs a request carrying that token.
//! `gid` matches the peer's effective gid as the kernel reports it (its primary group);
//! supplementary groups are not visible through `SO_PEERCRED`.

use std::net::SocketAddr;

use globset::{Glob, GlobSet, GlobSetBuilder};
use sidekey::audit::Peer;
use sidekey::config::{AccessRule, UidMatch};

/// The compiled `[[access]]` rules.
pub struct Policy {
    rules: Vec<Rule>,
}

struct Rule {
    index: usize,
    uid: Option<u32>,
    gid: Option<u32>,
    token: Option<String>,
    secrets: Secrets,
    revoke: bool,
}

/// The secrets a rule grants: names written out in full, compared as they are, and the
/// patterns with glob syntax. Most rules list names; matching those directly skips the glob
/// set's per-call candidate setup (a cached read checks one on every request).
struct Secrets {
    names: Vec<String>,
    globs: GlobSet,
}

impl Secrets {
    fn new(patterns: &[String]) -> anyhow::Result<Self> {
        let (names, globs): (Vec<&String>, Vec<&String>) = patterns
            .iter()
            .partition(|p| !p.contains(['*', '?', '[', ']', '{', '}', '\\']));
        let mut set = GlobSetBuilder::new();
        for pattern in globs {
            set.add(Glob::new(pattern)?);
        }
        Ok(Secrets {
            names: names.into_iter().cloned().collect(),
            globs: set.build()?,
        })
    }

    fn is_match(&self, secret: &str) -> bool {
        self.names.iter().any(|n| n == secret) || self.globs.is_match(secret)
    }
}

/// Who is asking: the kernel's word on a Unix socket, the address on TCP, and the verified
/// token name if the request carried one.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The Unix socket peer.
    pub peer: Option<Peer>,
    /// The TCP remote address.
    pub remote: Option<SocketAddr>,
    /// The verified token's name: borrowed for the `AWS_TOKEN` token (`aws`), so that the
    /// AWS-compatible route's every request does not copy it.
    pub token: Option<std::borrow::Cow<'static, str>>,
}

impl Caller {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.peer {
            parts.push(format!("uid {} gid {}", p.uid, p.gid));
        }
        if let Some(t) = &self.token {
            parts.push(format!("token {t:?}"));
        }
        if parts.is_empty() {
            parts.push("a caller without token".to_owned());
        }
        parts.join(", ")
    }
}

/// A caller some rule matched; each secret is checked against the rules that match it.
pub struct Admitted<'p> {
    rules: &'p [Rule],
    caller: &'p Caller,
}

impl<'p> Admitted<'p> {
    /// The rules that match the caller, in order (matching is a few comparisons: asked again
    /// rather than kept, with nothing allocated per request).
    fn rules(&self) -> impl Iterator<Item = &'p Rule> + '_ {
        self.rules.iter().filter(|r| r.matches(self.caller))
    }
}

/// Proof that the caller may read one secret.
#[derive(Debug)]
pub struct Permit {
    /// The `[[access]]` rule that granted it (0-based).
    pub rule: usize,
}

/// A refusal, with the reason to audit (names no value).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

impl Policy {
    /// Compiles validated rules; `agent_uid` resolves `uid = "self"`.
    pub fn new(rules: &[AccessRule], agent_uid: u32) -> anyhow::Result<Self> {
        let rules = rules
            .iter()
            .map(|r| {
                Ok(Rule {
                    index: r.index,
                    uid: r.uid.map(|u| match u {
                        UidMatch::Id(id) => id,
                        UidMatch::Agent => agent_uid,
                    }),
                    gid: r.gid,
                    token: r.token.clone(),
                    secrets: Secrets::new(&r.secrets)?,
                    revoke: r.revoke,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Policy { rules })
    }

    /// Admits a peer that at least one rule matches.
    pub fn admit<'p>(&'p self, caller: &'p Caller) -> Result<Admitted<'p>, Denied> {
        if !self.rules.iter().any(|r| r.matches(caller)) {
            return Err(Denied(format!("no [[access]] rule matches {}", caller.describe())));
        }
        Ok(Admitted {
            rules: &self.rules,
            caller,
        })
    }
}

impl Rule {
    fn matches(&self, caller: &Caller) -> bool {
        let uid = self.uid.is_none_or(|u| caller.peer.is_some_and(|p| p.uid == u));
        let gid = self.gid.is_none_or(|g| caller.peer.is_some_and(|p| p.gid == g));
        let token = self
            .token
            .as_ref()
            .is_none_or(|t| caller.token.as_deref() == Some(t.as_str()));
        uid && gid && token
    }
}

impl Admitted<'_> {
    /// Permits reading `secret`, or says no rule for this caller grants it.
    pub fn permit(&self, secret: &str) -> Result<Permit, Denied> {
        self.rules()
            .find(|r| r.secrets.is_match(secret))
            .map(|r| Permit { rule: r.index })
            .ok_or_else(|| Denied(format!("no [[access]] rule grants this caller secret {secret:?}")))
    }

    /// Permits revoking `secret` (a rule with `revoke = true` that lists it), or says no.
    pub fn permit_revoke(&self, secret: &str) -> Result<Permit, Denied> {
        self.rules()
            .find(|r| r.revoke && r.secrets.is_match(secret))
            .map(|r| Permit { rule: r.index })
            .ok_or_else(|| {
                Denied(format!(
                    "no [[access]] rule with revoke = true grants this caller secret {secret:?}"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(index: usize, uid: Option<UidMatch>, gid: Option<u32>, secrets: &[&str]) -> AccessRule {
        token_rule(index, uid, gid, None, secrets)
    }

    fn token_rule(
        index: usize,
        uid: Option<UidMatch>,
        gid: Option<u32>,
        token: Option<&str>,
        secrets: &[&str],
    ) -> AccessRule {
        AccessRule {
            index,
            uid,
            gid,
            token: token.map(str::to_owned),
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
            revoke: false,
        }
    }

    fn peer(uid: u32, gid: u32) -> Caller {
        Caller {
            peer: Some(Peer { uid, gid, pid: None }),
            ..Caller::default()
        }
    }

    fn token(name: &str) -> Caller {
        Caller {
            remote: Some("127.0.0.1:5000".parse().unwrap()),
            token: Some(name.to_owned().into()),
            ..Caller::default()
        }
    }

    #[test]
    fn token_rules_match_requests_carrying_that_token_only() {
        let policy = Policy::new(
            &[
                token_rule(0, None, None, Some("deploy"), &["db"]),
                token_rule(1, Some(UidMatch::Id(7)), None, Some("ops"), &["cert"]),
            ],
            0,
        )
        .unwrap();
        assert_eq!(policy.admit(&token("deploy")).unwrap().permit("db").unwrap().rule, 0);
        assert!(policy.admit(&token("other")).is_err());
        // uid + token: both must match; a TCP caller has no uid.
        assert!(policy.admit(&token("ops")).is_err());
        let mut both = peer(7, 7);
        both.token = Some("ops".into());
        assert_eq!(policy.admit(&both).unwrap().permit("cert").unwrap().rule, 1);
        let denied = policy.admit(&peer(7, 7)).err().unwrap();
        assert!(denied.0.contains("uid 7"), "{}", denied.0);
    }

    #[test]
    fn default_deny() {
        let policy = Policy::new(&[rule(0, Some(UidMatch::Id(1000)), None, &["db"])], 0).unwrap();
        let err = policy.admit(&peer(65534, 65534)).err().unwrap();
        assert!(err.0.contains("uid 65534"));
    }

    #[test]
    fn rules_grant_names_and_globs_to_matching_peers_only() {
        let policy = Policy::new(
            &[
                rule(0, Some(UidMatch::Id(1000)), None, &["db", "api-*"]),
                rule(1, None, Some(50), &["cert"]),
            ],
            0,
        )
        .unwrap();
        let user = peer(1000, 1000);
        let user = policy.admit(&user).unwrap();
        assert_eq!(user.permit("api-stripe").unwrap().rule, 0);
        assert_eq!(user.permit("db").unwrap().rule, 0);
        for other in ["db2", "DB", "d", "", "cert", "api-"] {
            assert_eq!(user.permit(other).is_ok(), other == "api-", "{other:?}");
        }
        let group = peer(7, 50);
        let group = policy.admit(&group).unwrap();
        assert_eq!(group.permit("cert").unwrap().rule, 1);
        assert!(group.permit("db").is_err());
    }

    /// A name is compared as written; anything with glob syntax (an escape included) is a glob.
    #[test]
    fn names_and_globs_match_as_globset_would() {
        let patterns = ["db", "a\\*", "x[0-9]", "{p,q}r"];
        let secrets = Secrets::new(&patterns.map(str::to_owned)).unwrap();
        assert_eq!(secrets.names, ["db"]);
        let mut set = GlobSetBuilder::new();
        for p in patterns {
            set.add(Glob::new(p).unwrap());
        }
        let set = set.build().unwrap();
        for name in ["db", "db ", "a*", "ab", "a\\*", "x5", "xx", "pr", "qr", "{p,q}r"] {
            assert_eq!(secrets.is_match(name), set.is_match(name), "{name:?}");
        }
    }

    #[test]
    fn uid_self_is_the_agents_uid() {
        let policy = Policy::new(&[rule(0, Some(UidMatch::Agent), None, &["*"])], 4242).unwrap();
        assert!(policy.admit(&peer(4242, 1)).is_ok());
        assert!(policy.admit(&peer(0, 0)).is_err());
    }

    /// The first matching rule that grants the secret wins, with few rules and with many.
    #[test]
    fn many_rules_admit_as_few_do() {
        for n in [8, 64, 65, 130] {
            let rules: Vec<AccessRule> = (0..n)
                .map(|i| {
                    let uid = (i % 3 == 0).then_some(UidMatch::Id(5));
                    let secret = format!("s{}", i % 4);
                    token_rule(i, uid.or(Some(UidMatch::Id(6))), None, None, &[secret.as_str()])
                })
                .collect();
            let policy = Policy::new(&rules, 0).unwrap();
            let five = peer(5, 5);
            let admitted = policy.admit(&five).unwrap();
            // uid 5 holds rules 0, 3, 6, ...: rule i grants s{i % 4}.
            assert_eq!(admitted.permit("s0").unwrap().rule, 0, "{n} rules");
            assert_eq!(admitted.permit("s3").unwrap().rule, 3, "{n} rules");
            assert_eq!(admitted.permit("s2").unwrap().rule, 6, "{n} rules");
            assert!(admitted.permit("s9").is_err(), "{n} rules");
            let six = peer(6, 6);
            let six = policy.admit(&six).unwrap();
            assert_eq!(six.permit("s1").unwrap().rule, 1, "{n} rules");
            assert!(policy.admit(&peer(7, 7)).is_err(), "{n} rules");
        }
    }
}
