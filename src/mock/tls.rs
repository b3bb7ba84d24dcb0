//! Optional TLS for the mock provider: a certificate chain and key from PEM files, a rustls
//! server config that offers `http/1.1` over ALPN, and the handshake of one connection.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Longest time a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The mock's TLS identity: every accepted connection does a TLS handshake with it before any
/// HTTP. Cheap to clone (the rustls config is shared).
#[derive(Clone)]
pub struct MockTls {
    acceptor: TlsAcceptor,
    chain_len: usize,
}

impl MockTls {
    /// Loads a certificate chain (leaf first, PEM, one or more `CERTIFICATE` blocks) and its
    /// private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, String> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read certificates from {}: {e}", cert.display()))?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| format!("cannot read a private key from {}: {e}", key.display()))?;
        Self::new(chain, key)
    }

    /// From a certificate chain (leaf first) and the leaf's private key.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, String> {
        if chain.is_empty() {
            return Err("no certificate found".to_owned());
        }
        let chain_len = chain.len();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| format!("the certificate and key do not make a TLS identity: {e}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            chain_len,
        })
    }

    /// Runs the server side of the handshake on `tcp`, within [`HANDSHAKE_TIMEOUT`].
    pub(crate) async fn accept(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(tcp)).await {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            )),
        }
    }
}

impl fmt::Debug for MockTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockTls")
            .field("chain_len", &self.chain_len)
            .field("alpn", &"http/1.1")
            .finish_non_exhaustive()
    }
}

/// Headers that tell a client what the handshake settled, echoed on every reply of a TLS
/// connection: `x-mock-tls` (protocol version), `x-mock-tls-sni` (the server name the client
/// asked for, when it sent one) and `x-mock-tls-alpn` (the protocol agreed, when any).
pub(crate) fn echo_headers(stream: &TlsStream<TcpStream>) -> Vec<(&'static str, String)> {
    let (_, conn) = stream.get_ref();
    let mut headers = Vec::with_capacity(3);
    let version = conn
        .protocol_version()
        .map_or_else(|| "unknown".to_owned(), |v| format!("{v:?}"));
    headers.push(("x-mock-tls", version));
    if let Some(sni) = conn.server_name() {
        headers.push(("x-mock-tls-sni", sni.to_owned()));
    }
    if let Some(alpn) = conn.alpn_protocol() {
        headers.push((
            "x-mock-tls-alpn",
            String::from_utf8_lossy(alpn).into_owned(),
        ));
    }
    headers
}
