//! What the config knows, one table entry each: the secret [`KINDS`], the [`BACKEND_TYPES`]
//! and the Vault [`AUTH_METHODS`]. An entry holds the name as written, the backend type a
//! kind needs, the keys it takes, one line about it, and the function that builds the model
//! from its table. Validation, the "known: ..." lists and the per-kind key checks of error
//! messages, [`SecretSource::kind_name`] and [`BackendConfig::type_name`] all read these
//! tables, so a new kind is one entry here, its [`SecretSource`] variant, and the agent's
//! backend that serves it.
//!
//! Invariant: an entry's `is` recognises exactly what its `build` makes (checked by
//! `every_entry_recognises_what_it_builds` in the tests); the keys it takes are checked
//! before `build` runs, so `build` only reads keys of its own entry.

use std::path::PathBuf;
use std::time::Duration;

use super::check::{Table, MIN_LIFETIME, MIN_ROTATE_EVERY};
use super::raw::{OneOrMany, RawAuth, RawBackend, RawSecret};
use crate::template::Fields;

use super::{
    AwsBackend, BackendConfig, ClientCert, Error, FromEnv, LocalBackend, SecretSource, VaultAuth, VaultBackend,
    DEFAULT_REFRESH,
};

/// One secret `kind`.
pub struct Kind {
    /// `kind = "..."`
    pub name: &'static str,
    /// The `type` of backend it is read from.
    pub backend: &'static str,
    /// The keys it takes besides `backend` and `kind`.
    pub keys: &'static [&'static str],
    /// What it is, in one line.
    pub about: &'static str,
    /// How often it is re-read when `refresh` is not set.
    pub default_refresh: Duration,
    /// The fields of its data when the kind fixes them (`check` refuses a template naming
    /// another); `None` when they depend on the data (a KV map, a stored JSON object).
    pub fields: Fields,
    is: fn(&SecretSource) -> bool,
    build: fn(&Table<'_>, &RawSecret) -> Result<SecretSource, Error>,
}

/// One backend `type`.
pub struct BackendType {
    /// `type = "..."`
    pub name: &'static str,
    /// The keys it takes besides `type`.
    pub keys: &'static [&'static str],
    /// What it is, in one line.
    pub about: &'static str,
    is: fn(&BackendConfig) -> bool,
    build: fn(&Table<'_>, &RawBackend) -> Result<BackendConfig, Error>,
}

/// One Vault auth `method`.
pub struct AuthMethod {
    /// `auth = { method = "..." }`
    pub name: &'static str,
    /// The keys it takes besides `method`.
    pub keys: &'static [&'static str],
    /// What it is, in one line.
    pub about: &'static str,
    is: fn(&VaultAuth) -> bool,
    build: fn(&Table<'_>, &RawAuth) -> Result<VaultAuth, Error>,
}

/// Every secret kind, in the order messages list them.
pub static KINDS: &[Kind] = &[
    Kind {
        name: "vault.kv2",
        backend: "vault",
        keys: &["mount", "path", "refresh"],
        about: "the KV v2 map at mount/path, re-read every refresh",
        default_refresh: DEFAULT_REFRESH,
        fields: None,
        is: |s| matches!(s, SecretSource::VaultKv2 { .. }),
        build: |t, s| {
            Ok(SecretSource::VaultKv2 {
                mount: or(&s.mount, "secret"),
                path: t.required("path", &s.path, "the KV path")?.clone(),
            })
        },
    },
    Kind {
        name: "vault.database",
        backend: "vault",
        keys: &["mount", "role"],
        about: "a dynamic database user of a role, renewed and re-issued before its lease ends",
        default_refresh: DEFAULT_REFRESH,
        fields: Some(&[
            "username",
            "password",
            // credential_type = "rsa_private_key" or "client_certificate" (Snowflake, ...)
            "rsa_private_key",
            "client_certificate",
            "private_key",
            "private_key_type",
        ]),
        is: |s| matches!(s, SecretSource::VaultDatabase { .. }),
        build: |t, s| {
            Ok(SecretSource::VaultDatabase {
                mount: or(&s.mount, "database"),
                role: t.required("role", &s.role, "the database role")?.clone(),
            })
        },
    },
    Kind {
        name: "vault.pki",
        backend: "vault",
        keys: &["mount", "role", "common_name", "alt_names", "ttl"],
        about: "a certificate and key issued from a PKI role, re-issued before it expires",
        default_refresh: DEFAULT_REFRESH,
        fields: Some(&[
            "certificate",
            "private_key",
            "private_key_type",
            "issuing_ca",
            "ca_chain",
            "serial_number",
            "expiration",
        ]),
        is: |s| matches!(s, SecretSource::VaultPki { .. }),
        build: |t, s| {
            Ok(SecretSource::VaultPki {
                mount: or(&s.mount, "pki"),
                role: t.required("role", &s.role, "the PKI role")?.clone(),
                common_name: t
                    .required("common_name", &s.common_name, "the certificate's common name")?
                    .clone(),
                alt_names: s.alt_names.clone().unwrap_or_default(),
                ttl: t.duration_opt("ttl", &s.ttl, MIN_LIFETIME)?,
            })
        },
    },
    Kind {
        name: "vault.lease",
        backend: "vault",
        keys: &["path"],
        about: "any leased read path (e.g. rabbitmq/creds/app), renewed and re-read",
        default_refresh: DEFAULT_REFRESH,
        fields: None,
        is: |s| matches!(s, SecretSource::VaultLease { .. }),
        build: |t, s| {
            let path = t.required("path", &s.path, "the leased read path")?;
            Ok(SecretSource::VaultLease {
                path: path.trim_matches('/').to_owned(),
            })
        },
    },
    Kind {
        name: "aws.secretsmanager",
        backend: "aws",
        keys: &["secret_id", "version_stage", "refresh", "rotate_every"],
        about: "GetSecretValue of one secret and stage; RotateSecret when rotate_every is set",
        default_refresh: DEFAULT_REFRESH,
        fields: None,
        is: |s| matches!(s, SecretSource::AwsSecretsManager { .. }),
        build: |t, s| {
            Ok(SecretSource::AwsSecretsManager {
                secret_id: t
                    .required("secret_id", &s.secret_id, "the secret's name or ARN")?
                    .clone(),
                version_stage: or(&s.version_stage, "AWSCURRENT"),
                rotate_every: t.duration_opt("rotate_every", &s.rotate_every, MIN_ROTATE_EVERY)?,
            })
        },
    },
    Kind {
        name: "aws.sts",
        backend: "aws",
        keys: &["role_arn", "duration", "external_id", "session_name"],
        about: "AssumeRole session credentials, re-issued before they expire",
        default_refresh: DEFAULT_REFRESH,
        fields: Some(&["access_key_id", "secret_access_key", "session_token"]),
        is: |s| matches!(s, SecretSource::AwsSts { .. }),
        build: |t, s| {
            let role_arn = t.required("role_arn", &s.role_arn, "the role ARN")?;
            if !role_arn.starts_with("arn:") {
                return Err(t.invalid(
                    "role_arn",
                    format!("{role_arn:?} is not an ARN (arn:aws:iam::ACCOUNT:role/NAME)"),
                ));
            }
            Ok(SecretSource::AwsSts {
                role_arn: role_arn.clone(),
                duration: t
                    .duration_opt("duration", &s.duration, MIN_LIFETIME)?
                    .unwrap_or(Duration::from_secs(900)),
                external_id: s.external_id.clone(),
                session_name: or(&s.session_name, "sidekey-agent"),
            })
        },
    },
    Kind {
        name: "local.generated",
        backend: "local",
        keys: &["rotate_every", "length"],
        about: "random bytes (hex) regenerated every rotate_every",
        default_refresh: DEFAULT_REFRESH,
        fields: Some(&["value"]),
        is: |s| matches!(s, SecretSource::LocalGenerated { .. }),
        build: |t, s| {
            let every = t.required("rotate_every", &s.rotate_every, "how often to regenerate")?;
            let length = s.length.unwrap_or(32);
            if !(8..=1024).contains(&length) {
                return Err(t.invalid("length", "length must be between 8 and 1024 bytes"));
            }
            Ok(SecretSource::LocalGenerated {
                rotate_every: t.duration("rotate_every", every, MIN_ROTATE_EVERY)?,
                length,
            })
        },
    },
    Kind {
        name: "local.static",
        backend: "local",
        keys: &["refresh"],
        about: "a value set with `sidekey-agent store set`, re-read every refresh",
        default_refresh: Duration::from_secs(5),
        fields: None,
        is: |s| matches!(s, SecretSource::LocalStatic),
        build: |_, _| Ok(SecretSource::LocalStatic),
    },
];

/// Every backend type, in the order messages list them.
pub static BACKEND_TYPES: &[BackendType] = &[
    BackendType {
        name: "vault",
        keys: &[
            "address",
            "auth",
            "ca_cert",
            "client_cert",
            "client_key",
            "tls_server_name",
            "namespace",
        ],
        about: "HashiCorp Vault or OpenBao",
        is: |b| matches!(b, BackendConfig::Vault(_)),
        build: |t, b| vault_backend(t, b).map(BackendConfig::Vault),
    },
    BackendType {
        name: "local",
        keys: &["path", "key_file"],
        about: "the embedded encrypted store",
        is: |b| matches!(b, BackendConfig::Local(_)),
        build: |t, b| {
            let path = t.required("path", &b.path, "the store file")?;
            let key_file = t.required("key_file", &b.key_file, "the key file")?;
            Ok(BackendConfig::Local(LocalBackend {
                path: PathBuf::from(path),
                key_file: PathBuf::from(key_file),
            }))
        },
    },
    BackendType {
        name: "aws",
        keys: &["region", "endpoint_url"],
        about: "AWS (Secrets Manager, STS), credentials from the standard chain",
        is: |b| matches!(b, BackendConfig::Aws(_)),
        build: |t, b| {
            if let Some(url) = &b.endpoint_url {
                if !is_http_url(url) {
                    return Err(t.invalid("endpoint_url", format!("{url:?} is not an http:// or https:// URL")));
                }
            }
            Ok(BackendConfig::Aws(AwsBackend {
                region: b.region.clone(),
                endpoint_url: b.endpoint_url.clone(),
            }))
        },
    },
];

/// Every Vault auth method, in the order messages list them. Each logs in at
/// `auth/MOUNT/login` (the agent's `backend/vault/auth/METHOD.rs`); `mount` defaults to the
/// method's name.
pub static AUTH_METHODS: &[AuthMethod] = &[
    AuthMethod {
        name: "token",
        keys: &["token_file"],
        about: "a token read from a file, re-read when it can no longer be renewed",
        is: |a| matches!(a, VaultAuth::Token { .. }),
        build: |t, a| {
            Ok(VaultAuth::Token {
                token_file: t
                    .existing_file("token_file", t.required("token_file", &a.token_file, "the token file")?)?,
            })
        },
    },
    AuthMethod {
        name: "approle",
        keys: &["mount", "role_id_file", "secret_id_file", "secret_id_wrapped"],
        about: "AppRole login with a role id and a secret id (or a wrapping token of one) read from files",
        is: |a| matches!(a, VaultAuth::AppRole { .. }),
        build: |t, a| {
            Ok(VaultAuth::AppRole {
                mount: mount(t, &a.mount, "approle")?,
                role_id_file: t.existing_file(
                    "role_id_file",
                    t.required("role_id_file", &a.role_id_file, "the role id file")?,
                )?,
                secret_id_file: t.existing_file(
                    "secret_id_file",
                    t.required("secret_id_file", &a.secret_id_file, "the secret id file")?,
                )?,
                secret_id_wrapped: a.secret_id_wrapped.unwrap_or(false),
            })
        },
    },
    AuthMethod {
        name: "jwt",
        keys: &["mount", "role", "token_file"],
        about: "JWT/OIDC login (projected service account tokens, CI OIDC tokens), the file read at every login",
        is: |a| matches!(a, VaultAuth::Jwt { .. }),
        build: |t, a| {
            Ok(VaultAuth::Jwt {
                mount: mount(t, &a.mount, "jwt")?,
                role: role(t, &a.role, "the jwt role to log in as")?,
                token_file: t.existing_file("token_file", t.required("token_file", &a.token_file, "the JWT file")?)?,
            })
        },
    },
    AuthMethod {
        name: "kubernetes",
        keys: &["mount", "role", "token_file"],
        about: "Kubernetes login with the pod's service account token, the file read at every login",
        is: |a| matches!(a, VaultAuth::Kubernetes { .. }),
        build: |t, a| {
            let token_file = match &a.token_file {
                Some(f) => t.existing_file("token_file", f)?,
                None => t
                    .existing_file("token_file", KUBERNETES_TOKEN_FILE)
                    .map_err(|e| t.invalid("token_file", format!("{} (the default)", reason(e))))?,
            };
            Ok(VaultAuth::Kubernetes {
                mount: mount(t, &a.mount, "kubernetes")?,
                role: role(t, &a.role, "the kubernetes role to log in as")?,
                token_file,
            })
        },
    },
    AuthMethod {
        name: "cert",
        keys: &["mount", "name"],
        about: "TLS certificate login with the backend's client_cert and client_key",
        is: |a| matches!(a, VaultAuth::Cert { .. }),
        build: |t, a| {
            Ok(VaultAuth::Cert {
                mount: mount(t, &a.mount, "cert")?,
                name: match &a.name {
                    Some(name) if name.is_empty() || name.contains('/') => {
                        return Err(t.invalid("name", format!("{name:?} is not a certificate role name")))
                    }
                    name => name.clone(),
                },
            })
        },
    },
];

/// Where a pod's service account token is projected: the `kubernetes` method's `token_file`.
pub const KUBERNETES_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// `[backends.NAME]` of type vault (at `t`). `address`, `ca_cert` and `namespace` fall back to
/// `VAULT_ADDR`/`BAO_ADDR`, `VAULT_CACERT`/`BAO_CACERT` and `VAULT_NAMESPACE`/`BAO_NAMESPACE`
/// (the CLI's conventions) when the config leaves them out, and the model records which.
fn vault_backend(t: &Table<'_>, b: &RawBackend) -> Result<VaultBackend, Error> {
    let mut from_env = Vec::new();
    let addresses = match &b.address {
        Some(OneOrMany::One(a)) => vec![a.clone()],
        Some(OneOrMany::Many(list)) => list.clone(),
        None => match t.env(&["VAULT_ADDR", "BAO_ADDR"]) {
            Some((var, value)) => {
                if !is_http_url(&value) {
                    return Err(t.invalid(
                        "address",
                        format!("{value:?} (from {var}) is not an http:// or https:// URL"),
                    ));
                }
                from_env.push(FromEnv {
                    key: "address",
                    var,
                    value: value.clone(),
                });
                vec![value]
            }
            None => return Err(t.invalid("address", "missing: the Vault address (or set VAULT_ADDR or BAO_ADDR)")),
        },
    };
    if addresses.is_empty() {
        return Err(t.invalid("address", "the list of addresses is empty"));
    }
    for a in &addresses {
        if !is_http_url(a) {
            return Err(t.invalid("address", format!("{a:?} is not an http:// or https:// URL")));
        }
    }
    let https = addresses.iter().any(|a| a.starts_with("https://"));

    let ca_cert = match &b.ca_cert {
        Some(f) => Some(t.pem_certificates("ca_cert", f)?),
        None => match t.env(&["VAULT_CACERT", "BAO_CACERT"]) {
            Some((var, value)) => {
                let path = t.pem_certificates("ca_cert", &value).map_err(|e| {
                    t.invalid(
                        "ca_cert",
                        format!("{} (from {var}; the config sets no ca_cert)", reason(e)),
                    )
                })?;
                from_env.push(FromEnv {
                    key: "ca_cert",
                    var,
                    value,
                });
                Some(path)
            }
            None => None,
        },
    };
    let client_cert = match (&b.client_cert, &b.client_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(ClientCert {
            cert: t.pem_certificates("client_cert", cert)?,
            key: t.pem_private_key("client_key", key)?,
        }),
        (Some(_), None) => return Err(t.invalid("client_key", "missing: client_cert needs its private key")),
        (None, Some(_)) => return Err(t.invalid("client_cert", "missing: client_key is set but no client_cert")),
    };
    if client_cert.is_some() && !https {
        return Err(t.invalid("client_cert", "a TLS client certificate needs an https:// address"));
    }
    let tls_server_name = match &b.tls_server_name {
        Some(name) => {
            if name.parse::<std::net::IpAddr>().is_ok() || rustls_pki_types::DnsName::try_from(name.as_str()).is_err() {
                return Err(t.invalid(
                    "tls_server_name",
                    format!("{name:?} is not a DNS name (the name Vault's certificate is issued for)"),
                ));
            }
            if !https {
                return Err(t.invalid("tls_server_name", "only used with an https:// address"));
            }
            Some(name.clone())
        }
        None => None,
    };
    let namespace = match &b.namespace {
        Some(ns) if ns.trim_matches('/').is_empty() => {
            return Err(t.invalid("namespace", "empty: leave it out for the root namespace"))
        }
        Some(ns) => Some(ns.clone()),
        None => t.env(&["VAULT_NAMESPACE", "BAO_NAMESPACE"]).map(|(var, value)| {
            from_env.push(FromEnv {
                key: "namespace",
                var,
                value: value.clone(),
            });
            value
        }),
    };

    let auth_table = t.nested("auth");
    let auth = auth_method(&auth_table, t.required("auth", &b.auth, "an auth method")?)?;
    if matches!(auth, VaultAuth::Cert { .. }) && client_cert.is_none() {
        return Err(auth_table.invalid(
            "method",
            format!(
                "method \"cert\" logs in with the backend's TLS client certificate: set {0}.client_cert and {0}.client_key",
                t.path()
            ),
        ));
    }
    Ok(VaultBackend {
        addresses,
        auth,
        ca_cert,
        client_cert,
        tls_server_name,
        namespace,
        from_env,
    })
}

/// An auth method's `mount` (leading and trailing `/` trimmed), or its default.
fn mount(t: &Table<'_>, value: &Option<String>, default: &str) -> Result<String, Error> {
    match value {
        None => Ok(default.to_owned()),
        Some(m) if m.trim_matches('/').is_empty() => Err(t.invalid("mount", "empty: leave it out for the default")),
        Some(m) => Ok(m.trim_matches('/').to_owned()),
    }
}

/// `role`: required and a plain name (Vault role names hold no `/`).
fn role(t: &Table<'_>, value: &Option<String>, what: &str) -> Result<String, Error> {
    let role = t.required("role", value, what)?;
    if role.is_empty() || role.contains('/') {
        return Err(t.invalid("role", format!("{role:?} is not a role name")));
    }
    Ok(role.clone())
}

/// The reason of an error made by a [`Table`], to say more about it.
fn reason(e: Error) -> String {
    match e {
        Error::Invalid { reason, .. } | Error::Parse { reason, .. } => reason,
        Error::Read { .. } => e.to_string(),
    }
}

impl Kind {
    /// The entry of `source`'s kind.
    pub fn of(source: &SecretSource) -> &'static Kind {
        KINDS
            .iter()
            .find(|k| (k.is)(source))
            .expect("every SecretSource variant has an entry in KINDS")
    }

    /// The entry named `name`.
    pub fn named(name: &str) -> Option<&'static Kind> {
        KINDS.iter().find(|k| k.name == name)
    }

    /// Checks the keys of `[secrets.NAME]` (at `t`) for this kind and builds its source.
    pub(super) fn build(&self, t: &Table<'_>, s: &RawSecret) -> Result<SecretSource, Error> {
        let takes: Vec<&str> = ["backend", "kind"]
            .into_iter()
            .chain(self.keys.iter().copied())
            .collect();
        t.only(&format!("kind {:?}", s.kind), s, &[], &takes)?;
        (self.build)(t, s)
    }
}

impl AuthMethod {
    /// The entry of `auth`'s method.
    pub fn of(auth: &VaultAuth) -> &'static AuthMethod {
        AUTH_METHODS
            .iter()
            .find(|m| (m.is)(auth))
            .expect("every VaultAuth variant has an entry in AUTH_METHODS")
    }
}

impl BackendType {
    /// The entry of `backend`'s type.
    pub fn of(backend: &BackendConfig) -> &'static BackendType {
        BACKEND_TYPES
            .iter()
            .find(|b| (b.is)(backend))
            .expect("every BackendConfig variant has an entry in BACKEND_TYPES")
    }

    /// The entry named `name`.
    pub fn named(name: &str) -> Option<&'static BackendType> {
        BACKEND_TYPES.iter().find(|b| b.name == name)
    }
}

/// Builds `[backends.NAME]` (at `t`): its type's keys, then its type's checks.
pub(super) fn backend(t: &Table<'_>, b: &RawBackend) -> Result<BackendConfig, Error> {
    let Some(ty) = BackendType::named(&b.kind) else {
        return Err(t.invalid(
            "type",
            format!(
                "unknown backend type {:?} (known: {})",
                b.kind,
                names(BACKEND_TYPES.iter().map(|b| b.name))
            ),
        ));
    };
    t.only(&format!("type {:?}", ty.name), b, &["type"], ty.keys)?;
    (ty.build)(t, b)
}

/// Builds the `auth` table of a vault backend (at `t`).
fn auth_method(t: &Table<'_>, a: &RawAuth) -> Result<VaultAuth, Error> {
    let Some(method) = AUTH_METHODS.iter().find(|m| m.name == a.method) else {
        return Err(t.invalid(
            "method",
            format!(
                "unknown auth method {:?} (known: {})",
                a.method,
                names(AUTH_METHODS.iter().map(|m| m.name))
            ),
        ));
    };
    let takes: Vec<&str> = ["method"].into_iter().chain(method.keys.iter().copied()).collect();
    t.only(&format!("auth method {:?}", method.name), a, &[], &takes)?;
    (method.build)(t, a)
}

/// The "known: ..." list of a message.
pub(super) fn names<'n>(names: impl Iterator<Item = &'n str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

fn or(value: &Option<String>, default: &str) -> String {
    value.clone().unwrap_or_else(|| default.to_owned())
}

fn is_http_url(value: &str) -> bool {
    matches!(url::Url::parse(value), Ok(u) if u.scheme() == "http" || u.scheme() == "https")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_kinds_need_a_known_backend_type() {
        for (i, k) in KINDS.iter().enumerate() {
            assert!(KINDS[..i].iter().all(|o| o.name != k.name), "{} twice", k.name);
            assert!(
                BackendType::named(k.backend).is_some(),
                "{}: no backend type {}",
                k.name,
                k.backend
            );
            assert!(
                k.name.starts_with(&format!("{}.", k.backend)),
                "{} is named after its backend",
                k.name
            );
        }
        for (i, b) in BACKEND_TYPES.iter().enumerate() {
            assert!(BACKEND_TYPES[..i].iter().all(|o| o.name != b.name), "{} twice", b.name);
        }
    }
}
