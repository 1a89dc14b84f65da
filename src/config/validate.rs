//! Stage two of config loading: `RawConfig` → [`Config`], with one error per fault
//! naming the key path. Checks durations, kinds, references between tables and the files
//! that must exist; binds and starts nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{OneOrMany, RawAccess, RawAuth, RawBackend, RawConfig, RawFile, RawSecret, RawUid};
use super::*;

/// Stage one: TOML text → [`RawConfig`], with the key path of any shape error.
pub(super) fn parse_raw(file: &Path, text: &str) -> Result<RawConfig, Error> {
    let deserializer = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let key = match err.path().to_string() {
            p if p.is_empty() || p == "." => "(top level)".to_owned(),
            p => p,
        };
        let inner = err.into_inner();
        let mut reason = inner
            .message()
            .replace("\n", " ")
            .replace("unknown field", "unknown key")
            .trim()
            .to_owned();
        if let Some(span) = inner.span() {
            let line = text.as_bytes()[..span.start.min(text.len())]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            reason = format!("{reason} (line {line})");
        }
        Error::Parse {
            file: file.to_owned(),
            key,
            reason,
        }
    })
}

struct Checker<'a> {
    file: &'a Path,
}

impl Checker<'_> {
    fn invalid(&self, key: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Invalid {
            file: self.file.to_owned(),
            key: key.into(),
            reason: reason.into(),
        }
    }

    fn duration(&self, key: &str, value: &str) -> Result<Duration, Error> {
        let d = humantime::parse_duration(value).map_err(|e| {
            self.invalid(
                key,
                format!("invalid duration {value:?}: {e} (write e.g. \"90s\", \"15m\", \"1h\", \"30d\")"),
            )
        })?;
        if d.is_zero() {
            return Err(self.invalid(key, "duration must be greater than zero"));
        }
        Ok(d)
    }

    fn existing_file(&self, key: &str, value: &str) -> Result<PathBuf, Error> {
        let path = PathBuf::from(value);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(path),
            Ok(_) => Err(self.invalid(key, format!("{value} is not a regular file"))),
            Err(e) => Err(self.invalid(key, format!("cannot read {value}: {e}"))),
        }
    }

    fn required<'v, T>(&self, key: &str, value: &'v Option<T>, what: &str) -> Result<&'v T, Error> {
        value
            .as_ref()
            .ok_or_else(|| self.invalid(key, format!("missing: {what}")))
    }

    /// Refuses keys that are set but mean nothing for this `type`/`kind`.
    fn only(&self, table: &str, what: &str, present: &[(&str, bool)], allowed: &[&str]) -> Result<(), Error> {
        for (key, set) in present {
            if *set && !allowed.contains(key) {
                return Err(self.invalid(
                    format!("{table}.{key}"),
                    format!("not a key of {what} (it takes: {})", allowed.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

pub(super) fn validate(file: &Path, raw: RawConfig) -> Result<Config, Error> {
    let c = Checker { file };

    let agent = raw.agent;
    let cache = match (&agent.cache, &agent.cache_key_file) {
        (None, None) => None,
        (Some(path), Some(key)) => Some((PathBuf::from(path), c.existing_file("agent.cache_key_file", key)?)),
        (Some(_), None) => return Err(c.invalid("agent.cache_key_file", "missing: the cache needs a key file")),
        (None, Some(_)) => return Err(c.invalid("agent.cache", "missing: cache_key_file is set but no cache file")),
    };
    let fingerprint_key_file = match &agent.fingerprint_key_file {
        Some(f) => Some(c.existing_file("agent.fingerprint_key_file", f)?),
        None => None,
    };
    let tcp = agent.tcp.as_deref().map(|t| tcp_listener(&c, t)).transpose()?;
    if let Some(group) = &agent.socket_group {
        socket_group(&c, group)?;
    }
    let tokens = agent.tokens.unwrap_or_default();
    for (name, hash) in &tokens {
        let parsed = argon2::password_hash::PasswordHash::new(hash).map_err(|e| {
            c.invalid(
                format!("agent.tokens.{name}"),
                format!("not an argon2id hash ({e}); make one with `sidekey-agent hash-token`"),
            )
        })?;
        if parsed.algorithm.as_str() != "argon2id" {
            return Err(c.invalid(
                format!("agent.tokens.{name}"),
                format!("hash algorithm is {}, not argon2id", parsed.algorithm),
            ));
        }
    }
    let agent_settings = AgentSettings {
        tcp,
        tokens,
        socket: PathBuf::from(agent.socket.as_deref().unwrap_or("/run/sidekey/agent.sock")),
        socket_group: agent.socket_group,
        audit_log: agent.audit_log.map(PathBuf::from),
        fingerprint_key_file,
        revoke_on_exit: agent.revoke_on_exit.unwrap_or(false),
        cache,
    };
    let dirs_needed = [
        ("agent.socket", Some(&agent_settings.socket)),
        ("agent.audit_log", agent_settings.audit_log.as_ref()),
    ];
    for (key, path) in dirs_needed {
        if let Some(parent) = path.and_then(|p| p.parent()).filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(c.invalid(key, format!("directory {} does not exist", parent.display())));
            }
        }
    }

    let mut backends = BTreeMap::new();
    for (name, b) in raw.backends {
        backends.insert(name.clone(), backend(&c, &name, b)?);
    }

    let mut secrets = BTreeMap::new();
    for (name, s) in raw.secrets {
        let spec = secret(&c, &name, s, &backends)?;
        secrets.insert(spec.name.clone(), spec);
    }

    let access = raw
        .access
        .into_iter()
        .enumerate()
        .map(|(i, a)| access_rule(&c, i, a, &secrets, &agent_settings.tokens))
        .collect::<Result<Vec<_>, _>>()?;

    let files = raw
        .file
        .into_iter()
        .enumerate()
        .map(|(i, f)| file_spec(&c, i, f, &secrets))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, f) in files.iter().enumerate() {
        if let Some(first) = files[..i].iter().position(|g| g.path == f.path) {
            return Err(c.invalid(
                format!("file[{i}].path"),
                format!("{} is already written by file[{first}]", f.path.display()),
            ));
        }
    }

    let registry = raw
        .registry
        .map(|r| registry(&c, r, &backends, agent_settings.fingerprint_key_file.is_some()))
        .transpose()?;
    Ok(Config {
        file: file.to_owned(),
        agent: agent_settings,
        backends,
        secrets,
        access,
        files,
        registry,
    })
}

/// `[registry]`: a `vault` backend to publish with, and the fingerprint key to have anything.
fn registry(
    c: &Checker,
    r: super::raw::RawRegistry,
    backends: &BTreeMap<String, BackendConfig>,
    fingerprints: bool,
) -> Result<RegistryConfig, Error> {
    match backends.get(&r.backend) {
        Some(BackendConfig::Vault(_)) => {}
        Some(other) => {
            return Err(c.invalid(
                "registry.backend",
                format!(
                    "{:?} is a {} backend; the registry is published to a vault backend",
                    r.backend,
                    other.type_name()
                ),
            ))
        }
        None => {
            let known: Vec<&str> = backends.keys().map(String::as_str).collect();
            return Err(c.invalid(
                "registry.backend",
                format!("no backend {:?} (defined: {})", r.backend, known.join(", ")),
            ));
        }
    }
    if !fingerprints {
        return Err(c.invalid(
            "registry",
            "needs agent.fingerprint_key_file: the registry publishes fingerprints",
        ));
    }
    let path = r.path.unwrap_or_else(|| "sidekey/registry".to_owned());
    let name = match r.name {
        Some(n) => n,
        None => hostname().unwrap_or_else(|| "sidekey-agent".to_owned()),
    };
    for (key, value) in [("registry.path", &path), ("registry.name", &name)] {
        if value.is_empty() || value.starts_with('/') || value.split('/').any(|p| p.is_empty() || p == "..") {
            return Err(c.invalid(key, format!("{value:?} is not a relative KV path")));
        }
    }
    Ok(RegistryConfig {
        backend: r.backend,
        mount: r.mount.unwrap_or_else(|| "secret".to_owned()),
        path,
        name,
    })
}

/// This machine's host name, from `/proc/sys/kernel/hostname` (Linux) or `$HOSTNAME`.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

fn backend(c: &Checker, name: &str, b: RawBackend) -> Result<BackendConfig, Error> {
    let table = format!("backends.{name}");
    let present = [
        ("address", b.address.is_some()),
        ("auth", b.auth.is_some()),
        ("ca_cert", b.ca_cert.is_some()),
        ("namespace", b.namespace.is_some()),
        ("region", b.region.is_some()),
        ("endpoint_url", b.endpoint_url.is_some()),
        ("path", b.path.is_some()),
        ("key_file", b.key_file.is_some()),
    ];
    match b.kind.as_str() {
        "vault" => {
            c.only(
                &table,
                "type \"vault\"",
                &present,
                &["address", "auth", "ca_cert", "namespace"],
            )?;
            let addresses = match c.required(&format!("{table}.address"), &b.address, "the Vault address")? {
                OneOrMany::One(a) => vec![a.clone()],
                OneOrMany::Many(list) => list.clone(),
            };
            if addresses.is_empty() {
                return Err(c.invalid(format!("{table}.address"), "the list of addresses is empty"));
            }
            for a in &addresses {
                match url::Url::parse(a) {
                    Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                    _ => {
                        return Err(c.invalid(
                            format!("{table}.address"),
                            format!("{a:?} is not an http:// or https:// URL"),
                        ))
                    }
                }
            }
            let auth = vault_auth(
                c,
                &table,
                c.required(&format!("{table}.auth"), &b.auth, "an auth method")?,
            )?;
            let ca_cert = match &b.ca_cert {
                Some(f) => Some(c.existing_file(&format!("{table}.ca_cert"), f)?),
                None => None,
            };
            Ok(BackendConfig::Vault(VaultBackend {
                addresses,
                auth,
                ca_cert,
                namespace: b.namespace,
            }))
        }
        "local" => {
            c.only(&table, "type \"local\"", &present, &["path", "key_file"])?;
            let path = c.required(&format!("{table}.path"), &b.path, "the store file")?;
            let key_file = c.required(&format!("{table}.key_file"), &b.key_file, "the key file")?;
            Ok(BackendConfig::Local(LocalBackend {
                path: PathBuf::from(path),
                key_file: PathBuf::from(key_file),
            }))
        }
        "aws" => {
            c.only(&table, "type \"aws\"", &present, &["region", "endpoint_url"])?;
            if let Some(url) = &b.endpoint_url {
                if !matches!(url::Url::parse(url), Ok(u) if u.scheme() == "http" || u.scheme() == "https") {
                    return Err(c.invalid(
                        format!("{table}.endpoint_url"),
                        format!("{url:?} is not an http:// or https:// URL"),
                    ));
                }
            }
            Ok(BackendConfig::Aws(AwsBackend {
                region: b.region,
                endpoint_url: b.endpoint_url,
            }))
        }
        other => Err(c.invalid(
            format!("{table}.type"),
            format!("unknown backend type {other:?} (known: vault, local, aws)"),
        )),
    }
}

fn vault_auth(c: &Checker, table: &str, auth: &RawAuth) -> Result<VaultAuth, Error> {
    let key = |k: &str| format!("{table}.auth.{k}");
    match auth.method.as_str() {
        "token" => Ok(VaultAuth::Token {
            token_file: c.existing_file(
                &key("token_file"),
                c.required(&key("token_file"), &auth.token_file, "the token file")?,
            )?,
        }),
        "approle" => Ok(VaultAuth::AppRole {
            mount: auth.mount.clone().unwrap_or_else(|| "approle".to_owned()),
            role_id_file: c.existing_file(
                &key("role_id_file"),
                c.required(&key("role_id_file"), &auth.role_id_file, "the role id file")?,
            )?,
            secret_id_file: c.existing_file(
                &key("secret_id_file"),
                c.required(&key("secret_id_file"), &auth.secret_id_file, "the secret id file")?,
            )?,
        }),
        other => Err(c.invalid(
            key("method"),
            format!("unknown auth method {other:?} (known: token, approle)"),
        )),
    }
}

fn secret(
    c: &Checker,
    name: &str,
    s: RawSecret,
    backends: &BTreeMap<String, BackendConfig>,
) -> Result<SecretSpec, Error> {
    let table = format!("secrets.{name}");
    let key = |k: &str| format!("{table}.{k}");
    if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)) {
        return Err(c.invalid(&table, "a secret name may use only letters, digits, '-', '_' and '.'"));
    }
    let backend = backends.get(&s.backend).ok_or_else(|| {
        let known: Vec<&str> = backends.keys().map(String::as_str).collect();
        c.invalid(
            key("backend"),
            format!(
                "unknown backend {:?} (defined: {})",
                s.backend,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        )
    })?;
    let present = [
        ("mount", s.mount.is_some()),
        ("path", s.path.is_some()),
        ("role", s.role.is_some()),
        ("refresh", s.refresh.is_some()),
        ("common_name", s.common_name.is_some()),
        ("alt_names", s.alt_names.is_some()),
        ("ttl", s.ttl.is_some()),
        ("secret_id", s.secret_id.is_some()),
        ("version_stage", s.version_stage.is_some()),
        ("rotate_every", s.rotate_every.is_some()),
        ("role_arn", s.role_arn.is_some()),
        ("duration", s.duration.is_some()),
        ("external_id", s.external_id.is_some()),
        ("session_name", s.session_name.is_some()),
        ("length", s.length.is_some()),
    ];
    let base = ["backend", "kind"];
    let allow = |extra: &[&'static str]| -> Vec<&'static str> { base.iter().chain(extra).copied().collect() };
    let kind_label = format!("kind {:?}", s.kind);
    let mount = |default: &str| s.mount.clone().unwrap_or_else(|| default.to_owned());
    let source = match s.kind.as_str() {
        "vault.kv2" => {
            c.only(&table, &kind_label, &present, &allow(&["mount", "path", "refresh"]))?;
            SecretSource::VaultKv2 { mount: mount("secret"), path: c.required(&key("path"), &s.path, "the KV path")?.clone() }
        }
        "vault.database" => {
            c.only(&table, &kind_label, &present, &allow(&["mount", "role"]))?;
            SecretSource::VaultDatabase { mount: mount("database"), role: c.required(&key("role"), &s.role, "the database role")?.clone() }
        }
        "vault.pki" => {
            c.only(&table, &kind_label, &present, &allow(&["mount", "role", "common_name", "alt_names", "ttl"]))?;
            SecretSource::VaultPki {
                mount: mount("pki"),
                role: c.required(&key("role"), &s.role, "the PKI role")?.clone(),
                common_name: c.required(&key("common_name"), &s.common_name, "the certificate's common name")?.clone(),
                alt_names: s.alt_names.clone().unwrap_or_default(),
                ttl: s.ttl.as_deref().map(|t| c.duration(&key("ttl"), t)).transpose()?,
            }
        }
        "vault.lease" => {
            c.only(&table, &kind_label, &present, &allow(&["path"]))?;
            let path = c.required(&key("path"), &s.path, "the leased read path")?;
            SecretSource::VaultLease { path: path.trim_matches('/').to_owned() }
        }
        "local.generated" => {
            c.only(&table, &kind_label, &present, &allow(&["rotate_every", "length"]))?;
            let every = c.required(&key("rotate_every"), &s.rotate_every, "how often to regenerate")?;
            let length = s.length.unwrap_or(32);
            if !(8..=1024).contains(&length) {
                return Err(c.invalid(key("length"), "length must be between 8 and 1024 bytes"));
            }
            SecretSource::LocalGenerated { rotate_every: c.duration(&key("rotate_every"), every)?, length }
        }
        "local.static" => {
            c.only(&table, &kind_label, &present, &allow(&["refresh"]))?;
            SecretSource::LocalStatic
        }
        "aws.secretsmanager" => {
            c.only(&table, &kind_label, &present, &allow(&["secret_id", "version_stage", "refresh", "rotate_every"]))?;
            SecretSource::AwsSecretsManager {
                secret_id: c.required(&key("secret_id"), &s.secret_id, "the secret's name or ARN")?.clone(),
                version_stage: s.version_stage.clone().unwrap_or_else(|| "AWSCURRENT".to_owned()),
                rotate_every: s.rotate_every.as_deref().map(|r| c.duration(&key("rotate_every"), r)).transpose()?,
            }
        }
        "aws.sts" => {
            c.only(&table, &kind_label, &present, &allow(&["role_arn", "duration", "external_id", "session_name"]))?;
            let role_arn = c.required(&key("role_arn"), &s.role_arn, "the role ARN")?;
            if !role_arn.starts_with("arn:") {
                return Err(c.invalid(key("role_arn"), format!("{role_arn:?} is not an ARN (arn:aws:iam::ACCOUNT:role/NAME)")));
            }
            SecretSource::AwsSts {
                role_arn: role_arn.clone(),
                duration: s.duration.as_deref().map(|d| c.duration(&key("duration"), d)).transpose()?.unwrap_or(Duration::from_secs(900)),
                external_id: s.external_id.clone(),
                session_name: s.session_name.clone().unwrap_or_else(|| "sidekey-agent".to_owned()),
            }
        }
        other => {
            return Err(c.invalid(
                key("kind"),
                format!("unknown kind {other:?} (known: vault.kv2, vault.database, vault.pki, vault.lease, aws.secretsmanager, aws.sts, local.generated, local.static)"),
            ))
        }
    };
    let wants = source.kind_name().split('.').next().unwrap_or_default();
    if wants != backend.type_name() {
        return Err(c.invalid(
            key("backend"),
            format!(
                "kind {:?} needs a backend of type {wants:?}, but {:?} is {:?}",
                s.kind,
                s.backend,
                backend.type_name()
            ),
        ));
    }
    let default_refresh = if matches!(source, SecretSource::LocalStatic) {
        Duration::from_secs(5)
    } else {
        DEFAULT_REFRESH
    };
    Ok(SecretSpec {
        name: SecretName::new(name),
        backend: s.backend,
        refresh: s
            .refresh
            .as_deref()
            .map(|r| c.duration(&key("refresh"), r))
            .transpose()?
            .unwrap_or(default_refresh),
        source,
    })
}

fn access_rule(
    c: &Checker,
    index: usize,
    a: RawAccess,
    secrets: &BTreeMap<SecretName, SecretSpec>,
    tokens: &BTreeMap<String, String>,
) -> Result<AccessRule, Error> {
    let table = format!("access[{index}]");
    if let Some(token) = &a.token {
        if token != AWS_TOKEN_NAME && !tokens.contains_key(token) {
            let mut known: Vec<&str> = tokens.keys().map(String::as_str).collect();
            known.push(AWS_TOKEN_NAME);
            return Err(c.invalid(
                format!("{table}.token"),
                format!(
                    "unknown token {token:?} (defined in [agent] tokens: {}; \"aws\" is the AWS_TOKEN value)",
                    known.join(", ")
                ),
            ));
        }
    }
    let uid = match a.uid {
        None => None,
        Some(RawUid::Id(id)) => Some(UidMatch::Id(id)),
        Some(RawUid::Name(n)) if n == "self" => Some(UidMatch::Agent),
        Some(RawUid::Name(n)) => {
            return Err(c.invalid(
                format!("{table}.uid"),
                format!("{n:?} is neither a number nor \"self\""),
            ))
        }
    };
    if uid.is_none() && a.gid.is_none() && a.token.is_none() {
        return Err(c.invalid(
            &table,
            "a rule must match on uid, gid and/or token (a rule matching everyone is not allowed)",
        ));
    }
    for pattern in &a.secrets {
        let glob = globset::Glob::new(pattern)
            .map_err(|e| c.invalid(format!("{table}.secrets"), format!("bad pattern {pattern:?}: {e}")))?
            .compile_matcher();
        if !secrets.keys().any(|n| glob.is_match(n.as_str())) {
            return Err(c.invalid(
                format!("{table}.secrets"),
                format!("{pattern:?} matches no configured secret"),
            ));
        }
    }
    Ok(AccessRule {
        index,
        uid,
        gid: a.gid,
        token: a.token,
        secrets: a.secrets,
        revoke: a.revoke.unwrap_or(false),
    })
}

fn file_spec(
    c: &Checker,
    index: usize,
    f: RawFile,
    secrets: &BTreeMap<SecretName, SecretSpec>,
) -> Result<FileSpec, Error> {
    let table = format!("file[{index}]");
    let secret = SecretName::new(&f.secret);
    if !secrets.contains_key(&secret) {
        return Err(c.invalid(format!("{table}.secret"), format!("unknown secret {:?}", f.secret)));
    }
    let path = PathBuf::from(&f.path);
    if f.path.is_empty() {
        return Err(c.invalid(format!("{table}.path"), "missing: the file to write"));
    }
    if path.is_dir() {
        return Err(c.invalid(format!("{table}.path"), format!("{} is a directory", f.path)));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(c.invalid(
                format!("{table}.path"),
                format!("directory {} does not exist", parent.display()),
            ));
        }
    }
    if let Some(template) = &f.template {
        crate::template::Template::parse(template)
            .map_err(|e| c.invalid(format!("{table}.template"), e.to_string()))?;
    }
    let mode = match &f.mode {
        None => 0o600,
        Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                c.invalid(
                    format!("{table}.mode"),
                    format!("{m:?} is not an octal file mode like \"0600\""),
                )
            })?,
    };
    let on_change_set = f.on_change.is_some();
    let on_change = f.on_change.unwrap_or_default();
    if on_change_set && on_change.first().is_none_or(|program| program.is_empty()) {
        return Err(c.invalid(
            format!("{table}.on_change"),
            "must name a program and its arguments, e.g. [\"kill\", \"-HUP\", \"1234\"]",
        ));
    }
    Ok(FileSpec {
        secret,
        path,
        template: f.template,
        mode,
        on_change,
    })
}

#[cfg(test)]
mod tests;

/// `[agent] socket_group`: a gid, or the name of a group this machine knows (the agent hands
/// the socket to it at start; `check` refuses what `run` could not do).
fn socket_group(c: &Checker, group: &str) -> Result<(), Error> {
    if group.parse::<u32>().is_ok() {
        return Ok(());
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(c.invalid("agent.socket_group", format!("no group named {group:?}"))),
        Err(e) => Err(c.invalid("agent.socket_group", format!("cannot look up group {group:?}: {e}"))),
    }
}

/// `[agent] tcp`: an IP:port on the loopback interface; anything else is refused.
fn tcp_listener(c: &Checker, value: &str) -> Result<std::net::SocketAddr, Error> {
    let addr: std::net::SocketAddr = value.parse().map_err(|_| {
        c.invalid(
            "agent.tcp",
            format!("{value:?} is not an IP:port like \"127.0.0.1:2773\""),
        )
    })?;
    if !addr.ip().is_loopback() {
        return Err(c.invalid(
            "agent.tcp",
            format!("{addr} is not a loopback address (use 127.0.0.1 or [::1])"),
        ));
    }
    Ok(addr)
}
