//! Stage two of config loading: `RawConfig` → [`Config`], with one error per fault
//! naming the key path. Checks durations, kinds, references between tables and the files
//! that must exist; binds and starts nothing. What each backend type, auth method and secret
//! kind takes and builds is in the tables of [`super::kinds`], not here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::check::{Checker, Env, Table, MIN_REFRESH};
use super::kinds::{self, Kind, KINDS};
use super::raw::{RawAccess, RawAccount, RawConfig, RawFile, RawProxy, RawSecret, RawUid};
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

/// Stage two, with `env` for the settings a config may leave to the environment
/// (`VAULT_ADDR`, ...): the process environment in [`super::parse`], a map in the tests.
/// `host`: hold the files, directories and groups the config names against this machine;
/// `binds`: and the socket the agent will bind (its directory, what is at its path, its group).
pub(super) fn validate(file: &Path, raw: RawConfig, host: bool, binds: bool, env: Env<'_>) -> Result<Config, Error> {
    let c = Checker::new(file, host, env);
    let socket_on_host = host && binds;

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
    if let Some(group) = agent.socket_group.as_ref().filter(|_| socket_on_host) {
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
        ("agent.socket", Some(&agent_settings.socket).filter(|_| binds)),
        ("agent.audit_log", agent_settings.audit_log.as_ref()),
    ];
    for (key, path) in dirs_needed {
        if let Some(parent) = path.and_then(|p| p.parent()).filter(|p| !p.as_os_str().is_empty()) {
            if c.on_host() && !parent.is_dir() {
                return Err(c.invalid(key, format!("directory {} does not exist", parent.display())));
            }
        }
    }
    if socket_on_host {
        if let Some(kind) = not_a_socket(&agent_settings.socket) {
            return Err(c.invalid(
                "agent.socket",
                format!(
                    "{} exists and is {kind}, not a socket (the agent replaces only a stale socket)",
                    agent_settings.socket.display()
                ),
            ));
        }
    }

    let mut backends = BTreeMap::new();
    for (name, b) in raw.backends {
        let table = Table::new(&c, format!("backends.{name}"));
        backends.insert(name, kinds::backend(&table, &b)?);
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

    let fields: BTreeMap<SecretName, crate::template::Fields> = secrets
        .iter()
        .map(|(name, spec)| (name.clone(), Kind::of(&spec.source).fields))
        .collect();
    let files = raw
        .file
        .into_iter()
        .enumerate()
        .map(|(i, f)| file_spec(&c, i, f, &fields))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, f) in files.iter().enumerate() {
        if let Some(first) = files[..i].iter().position(|g| g.path == f.path) {
            return Err(c.invalid(
                format!("file[{i}].path"),
                format!("{} is already written by file[{first}]", f.path.display()),
            ));
        }
    }

    let proxies = raw
        .proxy
        .into_iter()
        .enumerate()
        .map(|(i, p)| proxy_spec(&c, i, p, &secrets, binds))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, p) in proxies.iter().enumerate() {
        let taken = if binds && p.listen == agent_settings.socket {
            Some("agent.socket".to_owned())
        } else {
            proxies[..i]
                .iter()
                .position(|q| q.listen == p.listen)
                .map(|first| format!("proxy[{first}]"))
        };
        if let Some(by) = taken {
            return Err(c.invalid(
                format!("proxy[{i}].listen"),
                format!("{} is already the socket of {by}", p.listen.display()),
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
        proxies,
    })
}

/// `[[proxy]]` at `index`: a socket to listen on, a protocol, a served secret with a
/// `username` and a `password`, and the database server with its TLS settings.
fn proxy_spec(
    c: &Checker,
    index: usize,
    p: RawProxy,
    secrets: &BTreeMap<SecretName, SecretSpec>,
    binds: bool,
) -> Result<ProxySpec, Error> {
    let table = format!("proxy[{index}]");
    let key = |k: &str| format!("{table}.{k}");
    let listen = c.required(
        &key("listen"),
        &p.listen,
        "the Unix socket to listen on, e.g. \"/run/sidekey/.s.PGSQL.5432\"",
    )?;
    let listen_path = PathBuf::from(listen);
    if listen.is_empty() || listen.ends_with('/') || listen_path.file_name().is_none() {
        return Err(c.invalid(key("listen"), format!("{listen:?} is not a socket path")));
    }
    if binds && c.on_host() {
        if let Some(parent) = listen_path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(c.invalid(key("listen"), format!("directory {} does not exist", parent.display())));
            }
        }
        if let Some(kind) = not_a_socket(&listen_path) {
            return Err(c.invalid(
                key("listen"),
                format!("{listen} exists and is {kind}, not a socket (the agent replaces only a stale socket)"),
            ));
        }
    }
    let protocol = match c
        .required(&key("protocol"), &p.protocol, "the wire protocol (postgres)")?
        .as_str()
    {
        "postgres" => ProxyProtocol::Postgres,
        other => {
            return Err(c.invalid(
                key("protocol"),
                format!(
                    "unknown protocol {other:?} (known: {})",
                    ProxyProtocol::NAMES.join(", ")
                ),
            ))
        }
    };
    let secret_name = c.required(&key("secret"), &p.secret, "the served secret that logs in upstream")?;
    let Some(spec) = secrets.get(secret_name.as_str()) else {
        return Err(c.invalid(key("secret"), format!("unknown secret {secret_name:?}")));
    };
    if let Some(fields) = Kind::of(&spec.source).fields {
        if !(fields.contains(&"username") && fields.contains(&"password")) {
            return Err(c.invalid(
                key("secret"),
                format!(
                    "secret {secret_name:?} is of kind {}, which has no username and password fields (it has: {})",
                    spec.source.kind_name(),
                    fields.join(", ")
                ),
            ));
        }
    }
    let upstream = upstream(
        c,
        &key("upstream"),
        c.required(&key("upstream"), &p.upstream, "the database server, host:port")?,
    )?;
    let mode = p.upstream_tls.as_deref().unwrap_or("prefer");
    let verify_only = |k: &str, set: bool| {
        if set && mode != "verify-full" {
            Err(c.invalid(
                key(k),
                format!("applies only to upstream_tls = \"verify-full\" (this proxy has {mode:?})"),
            ))
        } else {
            Ok(())
        }
    };
    verify_only("ca_cert", p.ca_cert.is_some())?;
    verify_only("tls_server_name", p.tls_server_name.is_some())?;
    let tls = match mode {
        "disable" => UpstreamTls::Disable,
        "prefer" => UpstreamTls::Prefer,
        "require" => UpstreamTls::Require,
        "verify-full" => UpstreamTls::VerifyFull {
            ca_cert: p
                .ca_cert
                .as_deref()
                .map(|f| c.pem_certificates(&key("ca_cert"), f))
                .transpose()?,
            server_name: match p.tls_server_name {
                Some(name) if name.is_empty() || name.chars().any(|ch| ch.is_whitespace() || ch == '/') => {
                    return Err(c.invalid(key("tls_server_name"), format!("{name:?} is not a host name")))
                }
                Some(name) => name,
                None => upstream.host.clone(),
            },
        },
        other => {
            return Err(c.invalid(
                key("upstream_tls"),
                format!("unknown mode {other:?} (known: {})", UpstreamTls::NAMES.join(", ")),
            ))
        }
    };
    Ok(ProxySpec {
        index,
        listen: listen_path,
        protocol,
        secret: spec.name.clone(),
        upstream,
        tls,
    })
}

/// `host:port`, `[v6]:port`: a host and a TCP port.
fn upstream(c: &Checker, key: &str, value: &str) -> Result<Upstream, Error> {
    let bad = || {
        c.invalid(
            key,
            format!("{value:?} is not host:port, e.g. \"db.internal:5432\" or \"[::1]:5432\""),
        )
    };
    let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or_else(bad)?,
        None if host.contains(':') => return Err(bad()),
        None => host,
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 || host.chars().any(|ch| ch.is_whitespace() || "/@?#".contains(ch)) {
        return Err(bad());
    }
    Ok(Upstream {
        host: host.to_owned(),
        port,
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
    let Some(kind) = Kind::named(&s.kind) else {
        return Err(c.invalid(
            key("kind"),
            format!(
                "unknown kind {:?} (known: {})",
                s.kind,
                kinds::names(KINDS.iter().map(|k| k.name))
            ),
        ));
    };
    let source = kind.build(&Table::new(c, table.clone()), &s)?;
    if kind.backend != backend.type_name() {
        return Err(c.invalid(
            key("backend"),
            format!(
                "kind {:?} needs a backend of type {:?}, but {:?} is {:?}",
                s.kind,
                kind.backend,
                s.backend,
                backend.type_name()
            ),
        ));
    }
    Ok(SecretSpec {
        name: SecretName::new(name),
        backend: s.backend,
        refresh: s
            .refresh
            .as_deref()
            .map(|r| c.duration(&key("refresh"), r, MIN_REFRESH))
            .transpose()?
            .unwrap_or(kind.default_refresh),
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

/// `[[file]]` at `index`: the secrets it renders (its `secret` and those its template names,
/// every name resolved against `secrets` and their kinds' fields), where, how and who owns it.
fn file_spec(
    c: &Checker,
    index: usize,
    f: RawFile,
    secrets: &BTreeMap<SecretName, crate::template::Fields>,
) -> Result<FileSpec, Error> {
    let table = format!("file[{index}]");
    let secret = match &f.secret {
        Some(name) if !secrets.contains_key(name.as_str()) => {
            return Err(c.invalid(format!("{table}.secret"), format!("unknown secret {name:?}")))
        }
        Some(name) => Some(SecretName::new(name)),
        None if f.template.is_none() => {
            return Err(c.invalid(
                format!("{table}.secret"),
                "missing: the secret to write (or a template naming the secrets it writes)",
            ))
        }
        None => None,
    };
    let path = PathBuf::from(&f.path);
    if f.path.is_empty() {
        return Err(c.invalid(format!("{table}.path"), "missing: the file to write"));
    }
    if c.on_host() && path.is_dir() {
        return Err(c.invalid(format!("{table}.path"), format!("{} is a directory", f.path)));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty() && c.on_host()) {
        if !parent.is_dir() {
            return Err(c.invalid(
                format!("{table}.path"),
                format!("directory {} does not exist", parent.display()),
            ));
        }
    }
    let template = match &f.template {
        Some(text) => {
            let invalid = |reason: String| c.invalid(format!("{table}.template"), reason);
            let names = crate::template::Names {
                own: secret.as_ref().map(SecretName::as_str),
                secrets,
            };
            let bound = crate::template::Template::parse(text)
                .map_err(|e| invalid(e.to_string()))?
                .bind(names)
                .map_err(|e| invalid(e.to_string()))?;
            if bound.secrets().is_empty() {
                return Err(invalid(
                    "names no secret: write SECRET.FIELD (or set `secret` and write its fields)".into(),
                ));
            }
            Some(bound)
        }
        None => None,
    };
    let files_secrets = match &template {
        Some(bound) => bound.secrets().to_vec(),
        None => secret.iter().cloned().collect(),
    };
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
    let owner = f
        .owner
        .as_ref()
        .map(|o| account(c, &format!("{table}.owner"), o, Who::User))
        .transpose()?;
    let group = f
        .group
        .as_ref()
        .map(|g| account(c, &format!("{table}.group"), g, Who::Group))
        .transpose()?;
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
        secrets: files_secrets,
        path,
        template,
        mode,
        owner,
        group,
        on_change,
    })
}

/// Whether an [`Account`] names a user or a group.
#[derive(Debug, Clone, Copy)]
enum Who {
    /// `owner`
    User,
    /// `group`
    Group,
}

impl Who {
    /// The id of the user or group `name` on this host (`None`: there is none).
    fn lookup(self, name: &str) -> nix::Result<Option<u32>> {
        Ok(match self {
            Who::User => nix::unistd::User::from_name(name)?.map(|u| u.uid.as_raw()),
            Who::Group => nix::unistd::Group::from_name(name)?.map(|g| g.gid.as_raw()),
        })
    }

    fn word(self) -> &'static str {
        match self {
            Who::User => "user",
            Who::Group => "group",
        }
    }
}

/// `owner`/`group` (at `key`): a number, or a name looked up on this host (names are kept
/// unresolved by `check --portable`).
fn account(c: &Checker, key: &str, raw: &RawAccount, who: Who) -> Result<Account, Error> {
    let name = match raw {
        RawAccount::Id(id) => {
            return Ok(Account {
                name: id.to_string(),
                id: Some(*id),
            })
        }
        RawAccount::Name(name) => name,
    };
    if let Ok(id) = name.parse::<u32>() {
        return Ok(Account {
            name: name.clone(),
            id: Some(id),
        });
    }
    if name.is_empty() || name.contains(['/', ':']) || name.chars().any(char::is_whitespace) {
        return Err(c.invalid(key, format!("{name:?} is not a {} name or id", who.word())));
    }
    let id = if c.on_host() {
        match who.lookup(name) {
            Ok(Some(id)) => Some(id),
            Ok(None) => return Err(c.invalid(key, format!("no {} named {name:?} on this host", who.word()))),
            Err(e) => return Err(c.invalid(key, format!("cannot look up {} {name:?}: {e}", who.word()))),
        }
    } else {
        None
    };
    Ok(Account { name: name.clone(), id })
}

#[cfg(test)]
mod tests;

/// What is at `path` when it exists and is not a socket (`"a regular file"`, `"a symlink"`,
/// ...), read without following a symlink; `None` when nothing is there or a socket is. The
/// agent removes a stale socket at start and must never remove anything else: `run` refuses
/// the same paths with the same words.
pub fn not_a_socket(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt as _;
    let kind = std::fs::symlink_metadata(path).ok()?.file_type();
    Some(match () {
        _ if kind.is_socket() => return None,
        _ if kind.is_file() => "a regular file",
        _ if kind.is_dir() => "a directory",
        _ if kind.is_symlink() => "a symlink",
        _ if kind.is_fifo() => "a FIFO",
        _ if kind.is_block_device() || kind.is_char_device() => "a device",
        _ => "something else",
    })
}

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
