//! TLS material: PEM certificates and keys read from files, and the public
//! listener's rustls server configuration with a certificate that can be
//! replaced while serving (`SIGHUP`).
//!
//! Owns: reading PEM (also for the push client's certificates) and the
//! reloadable certificate. Imports nothing of this crate.
//!
//! Invariants: a [`ServerTls`] always holds a certificate whose key matches
//! it (checked at load, and a failed reload keeps the previous pair); a
//! reload changes only handshakes that start afterwards, never an open
//! connection; every error names the file and the reason.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Why TLS material was refused.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file named.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file does not hold what it should.
    #[error("{path}: {reason}")]
    Content {
        /// The file named.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })
}

fn content(path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::Content { path: path.to_path_buf(), reason: reason.into() }
}

/// Every certificate in PEM file `path` (at least one).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certificates: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
    match certificates {
        Ok(certificates) if !certificates.is_empty() => Ok(certificates),
        Ok(_) => Err(content(path, "holds no PEM certificate")),
        Err(error) => Err(content(path, format!("is not PEM certificates: {error}"))),
    }
}

/// The private key in PEM file `path` (PKCS#8, PKCS#1 or SEC1).
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|error| content(path, format!("holds no PEM private key: {error}")))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate chain in `cert_path` with the key in `key_path`,
/// checked to belong together.
fn load_certified_key(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = read_certificates(cert_path)?;
    let key = read_private_key(key_path)?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|error| {
        content(
            key_path,
            format!("does not fit the certificate in {}: {error}", cert_path.display()),
        )
    })
}

/// Hands every handshake the current certificate.
#[derive(Debug)]
struct ReloadableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A poisoned lock still holds a whole Arc: serve it.
        Some(self.current.read().unwrap_or_else(|poison| poison.into_inner()).clone())
    }
}

/// The public listener's TLS: a rustls server configuration (TLS 1.2 and
/// 1.3, ALPN `http/1.1`) whose certificate [`ServerTls::reload`] replaces.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    cert: Arc<ReloadableCert>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish()
    }
}

impl ServerTls {
    /// Loads the PEM certificate chain and key; the error names the file.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let certified = load_certified_key(cert_path, key_path)?;
        let cert = Arc::new(ReloadableCert { current: RwLock::new(Arc::new(certified)) });
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|error| content(cert_path, error.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(cert.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            cert,
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
        })
    }

    /// The configuration new connections use.
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }

    /// Reads both files again and serves the new pair to new handshakes;
    /// on an error the previous pair stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let certified = Arc::new(load_certified_key(&self.cert_path, &self.key_path)?);
        *self.cert.current.write().unwrap_or_else(|poison| poison.into_inner()) = certified;
        Ok(())
    }
}
