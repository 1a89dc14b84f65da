//! The HTTP client of one Vault node, built from the backend's settings alone: the CA bundle
//! (`ca_cert`, besides the system roots), the TLS client certificate (`client_cert`,
//! `client_key`), the name the server certificate is checked against (`tls_server_name`) and
//! the namespace (`X-Vault-Namespace`).
//!
//! The client is assembled here rather than by `vaultrs::VaultClient::new`, whose settings
//! fall back to `VAULT_CACERT`, `VAULT_CAPATH`, `VAULT_CLIENT_CERT` and `VAULT_SKIP_VERIFY`
//! behind the config's back: the environment is read once, by the config (`VAULT_ADDR`,
//! `VAULT_CACERT`, `VAULT_NAMESPACE` and their `BAO_` twins, reported by `check`), and TLS is
//! always verified.
//!
//! `tls_server_name` is done the way reqwest allows: the request URL carries the server name
//! (so SNI and certificate verification use it) and a resolver of our own connects to the
//! configured address's host. A client is built per login and per node move, so a client
//! certificate renewed on disk is presented from the next login on.

use std::net::SocketAddr;
use std::time::Duration;

use sidekey::config::VaultBackend;
use sidekey::SecretString;
use vaultrs::api::EndpointMiddleware;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use zeroize::Zeroizing;

use super::Error;

/// How long one call may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A client for the node at `address` calling with `token`; `namespaced` sends the backend's
/// namespace (the HA probes ask `sys/leader`, which lives in the root namespace, without it).
pub(super) fn build(
    backend: &str,
    config: &VaultBackend,
    address: &str,
    token: Option<&SecretString>,
    namespaced: bool,
) -> Result<VaultClient, Error> {
    let bad = |what: String| Error::Permanent(format!("{backend}: {what}"));
    let mut url = url::Url::parse(address).map_err(|e| bad(format!("address {address:?}: {e}")))?;
    let https = url.scheme() == "https";
    let mut http = reqwest::Client::builder().tls_backend_rustls().timeout(TIMEOUT);
    if !https {
        // As vaultrs does (reqwest#2988): a plain-HTTP client needs no trust store.
        http = http.tls_certs_only(Vec::new());
    } else {
        if let Some(ca) = &config.ca_cert {
            let pem = std::fs::read(ca).map_err(|e| bad(format!("cannot read ca_cert {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| bad(format!("ca_cert {} is not a PEM certificate file: {e}", ca.display())))?;
            http = http.tls_certs_merge(certs);
        }
        if let Some(pair) = &config.client_cert {
            let mut pem = Zeroizing::new(
                std::fs::read(&pair.cert)
                    .map_err(|e| bad(format!("cannot read client_cert {}: {e}", pair.cert.display())))?,
            );
            pem.push(b'\n');
            let key = Zeroizing::new(
                std::fs::read(&pair.key)
                    .map_err(|e| bad(format!("cannot read client_key {}: {e}", pair.key.display())))?,
            );
            pem.extend_from_slice(&key);
            // reqwest's message about a bad identity names the PEM section, never its bytes.
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                bad(format!(
                    "client_cert {} / client_key {}: not a certificate and its key: {e}",
                    pair.cert.display(),
                    pair.key.display()
                ))
            })?;
            http = http.identity(identity);
        }
        if let Some(name) = &config.tls_server_name {
            let host = match url.host() {
                Some(url::Host::Ipv6(ip)) => ip.to_string(),
                Some(host) => host.to_string(),
                None => return Err(bad(format!("address {address:?} has no host"))),
            };
            let port = url.port_or_known_default().unwrap_or(443);
            http = http.dns_resolver(std::sync::Arc::new(Node { host, port }));
            url.set_host(Some(name))
                .map_err(|e| bad(format!("tls_server_name {name:?}: {e}")))?;
        }
    }
    let http = http
        .build()
        .map_err(|e| bad(format!("cannot set up the HTTP client: {e}")))?;
    let namespace = config.namespace.clone().filter(|_| namespaced);
    let token = token.map(|t| t.expose().to_owned()).unwrap_or_default();
    // vaultrs keeps the settings beside the client; nothing here reads them, and every field
    // that would otherwise default from the environment is set.
    let settings = VaultClientSettingsBuilder::default()
        .address(address)
        .token(token.clone())
        .ca_certs(Vec::new())
        .identity(None)
        .verify(true)
        .timeout(Some(TIMEOUT))
        .namespace(namespace.clone())
        .build()
        .map_err(|e| bad(format!("bad client settings: {e}")))?;
    Ok(VaultClient {
        http: rustify::clients::reqwest::Client::new(url.as_str(), http),
        middle: EndpointMiddleware {
            token,
            version: "v1".to_owned(),
            wrap: None,
            namespace,
        },
        settings,
    })
}

/// Resolves whatever name a request carries (the `tls_server_name`) to the node's configured
/// host, looked up afresh at each connection.
struct Node {
    host: String,
    port: u16,
}

impl reqwest::dns::Resolve for Node {
    fn resolve(&self, _: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let target = (self.host.clone(), self.port);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host(target).await?.collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
