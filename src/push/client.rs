//! The HTTP/2 client the push worker sends through: one pool for both
//! providers (hyper's pool keeps one HTTP/2 connection per host, carrying
//! many concurrent streams). `https://` goes through rustls with the
//! webpki roots; `http://` is HTTP/2 cleartext with prior knowledge, for
//! loopback stand-ins in tests. Every request has a deadline.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::time::Duration;

/// A pooled HTTP/2 client.
pub type PushClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// Largest answer body read from a provider (errors are small JSON).
const ANSWER_BYTES_MAX: usize = 64 * 1024;

/// An answer: status, headers and (bounded) body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: http::HeaderMap,
    /// Body bytes (at most 64 KiB are kept).
    pub body: Vec<u8>,
}

/// A new client (HTTP/2 only) trusting the public web roots.
pub fn new_client() -> PushClient {
    let tls = tls_config(Vec::new(), None).expect("the web roots and no client cert are valid");
    new_client_with(tls)
}

/// A new client (HTTP/2 only) over `tls`.
pub fn new_client_with(tls: rustls::ClientConfig) -> PushClient {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http2()
        .build();
    Client::builder(TokioExecutor::new()).http2_only(true).build(connector)
}

/// TLS settings: the public web roots plus `extra_roots`, and a client
/// certificate chain with its key when given.
pub fn tls_config(
    extra_roots: Vec<CertificateDer<'static>>,
    client_auth: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for root in extra_roots {
        roots.add(root).map_err(|error| format!("a CA certificate: {error}"))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots);
    match client_auth {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|error| format!("the client certificate: {error}")),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// Sends `request` and reads the answer within `timeout`; `Err` for a
/// connection failure or the deadline (both retried by the caller).
pub async fn send(
    client: &PushClient,
    request: http::Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<Answer, String> {
    let exchange = async {
        let response = client.request(request).await.map_err(|error| error.to_string())?;
        let (parts, body) = response.into_parts();
        let limited = http_body_util::Limited::new(body, ANSWER_BYTES_MAX);
        let body = limited.collect().await.map_err(|error| error.to_string())?.to_bytes();
        Ok(Answer { status: parts.status.as_u16(), headers: parts.headers, body: body.to_vec() })
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| "timed out".to_string())?
}
