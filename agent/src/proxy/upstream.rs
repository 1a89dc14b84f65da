//! The connection to the database server, whatever the protocol: TCP (with a connect
//! timeout), and the TLS client settings of `upstream_tls`, built once per proxy. When and how
//! TLS starts is the protocol's (PostgreSQL asks with an `SSLRequest` first): it calls
//! [`Tls::upgrade`] on the TCP stream.
//!
//! `prefer` and `require` encrypt without checking the server's certificate, as libpq's
//! `sslmode` of the same names do; `verify-full` checks it against `ca_cert` (or the system's
//! roots) and the server name.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use sidekey::config::{Upstream, UpstreamTls};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// How long a TCP connect to the database server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A proxy's TLS settings, ready to use.
#[derive(Clone)]
pub struct Tls {
    /// The mode as configured.
    pub mode: Mode,
    connector: Option<(TlsConnector, ServerName<'static>)>,
}

/// `upstream_tls`, without its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No TLS.
    Disable,
    /// TLS when offered.
    Prefer,
    /// TLS or no connection.
    Require,
    /// TLS with the certificate and name checked.
    VerifyFull,
}

impl Tls {
    /// The client settings for `tls` towards `upstream`; fails naming what is wrong (an
    /// unreadable CA file, a server name rustls refuses).
    pub fn new(tls: &UpstreamTls, upstream: &Upstream) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
        let (mode, config, name) = match tls {
            UpstreamTls::Disable => {
                return Ok(Tls {
                    mode: Mode::Disable,
                    connector: None,
                })
            }
            UpstreamTls::Prefer | UpstreamTls::Require => {
                let config = builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
                    .with_no_client_auth();
                let mode = if matches!(tls, UpstreamTls::Prefer) {
                    Mode::Prefer
                } else {
                    Mode::Require
                };
                (mode, config, upstream.host.clone())
            }
            UpstreamTls::VerifyFull { ca_cert, server_name } => {
                let config = match ca_cert {
                    Some(path) => {
                        use rustls::pki_types::pem::PemObject as _;
                        let mut roots = rustls::RootCertStore::empty();
                        let pem = std::fs::read(path)
                            .map_err(|e| anyhow::anyhow!("cannot read ca_cert {}: {e}", path.display()))?;
                        for cert in CertificateDer::pem_slice_iter(&pem) {
                            let cert = cert.map_err(|e| {
                                anyhow::anyhow!("ca_cert {} is not a PEM certificate file: {e}", path.display())
                            })?;
                            roots.add(cert)?;
                        }
                        builder.with_root_certificates(roots).with_no_client_auth()
                    }
                    None => {
                        use rustls_platform_verifier::BuilderVerifierExt as _;
                        builder.with_platform_verifier()?.with_no_client_auth()
                    }
                };
                (Mode::VerifyFull, config, server_name.clone())
            }
        };
        let name = ServerName::try_from(name.clone())
            .map_err(|e| anyhow::anyhow!("{name:?} cannot be a TLS server name: {e}"))?;
        Ok(Tls {
            mode,
            connector: Some((TlsConnector::from(Arc::new(config)), name)),
        })
    }

    /// Runs the TLS handshake on `tcp`.
    pub async fn upgrade(&self, tcp: TcpStream) -> io::Result<Stream> {
        let (connector, name) = self
            .connector
            .as_ref()
            .ok_or_else(|| io::Error::other("TLS is disabled for this upstream"))?;
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name.clone(), tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// Opens a TCP connection to `upstream` (first address that answers), with
/// [`CONNECT_TIMEOUT`] and `TCP_NODELAY`.
pub async fn tcp(upstream: &Upstream) -> io::Result<TcpStream> {
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((upstream.host.as_str(), upstream.port)),
    )
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("no answer within {CONNECT_TIMEOUT:?}")))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A connection to the database server, plain or TLS.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// `prefer`/`require`: any certificate is accepted (the handshake's signatures are still
/// checked), as libpq does for these modes. Encryption against passive listeners only.
#[derive(Debug)]
struct Unverified(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(host: &str) -> Upstream {
        Upstream {
            host: host.into(),
            port: 5432,
        }
    }

    #[test]
    fn each_mode_builds_and_verify_full_reads_its_ca() {
        assert_eq!(
            Tls::new(&UpstreamTls::Disable, &upstream("db")).unwrap().mode,
            Mode::Disable
        );
        assert_eq!(
            Tls::new(&UpstreamTls::Prefer, &upstream("127.0.0.1")).unwrap().mode,
            Mode::Prefer
        );
        assert_eq!(
            Tls::new(&UpstreamTls::Require, &upstream("db.internal")).unwrap().mode,
            Mode::Require
        );
        let missing = Tls::new(
            &UpstreamTls::VerifyFull {
                ca_cert: Some("/nonexistent/ca.pem".into()),
                server_name: "db".into(),
            },
            &upstream("db"),
        )
        .err()
        .unwrap();
        assert!(missing.to_string().contains("/nonexistent/ca.pem"), "{missing}");
    }
}
