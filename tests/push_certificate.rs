//! APNs certificate auth: the server sends pushes over TLS with the client
//! certificate Apple issued (no JWT), to a TLS HTTP/2 stand-in that refuses
//! any connection without a certificate signed by its CA. Certificates are
//! made in the test (rcgen); the stand-in's CA is trusted through
//! `ca_file`. A missing certificate file stops start-up with its name.

mod common;
#[path = "common/messaging.rs"]
mod messaging;

use common::{request_at, Account};
use messaging::{send_body, REGISTRATION_ID};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::clock::Clock;
use switchboard::config::{ApnsConfig, Config};

/// What the stand-in saw: per request, (path, authorization header, whether
/// the client presented a certificate).
type Seen = Arc<Mutex<Vec<(String, Option<String>, bool)>>>;

/// PEM files of a CA, a server certificate for 127.0.0.1 and a client
/// certificate, all written to `dir`.
struct Pki {
    ca: String,
    server_chain: String,
    server_key: String,
}

fn make_pki(dir: &Path) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["switchboard-push".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("client.pem"), client.pem()).unwrap();
    std::fs::write(dir.join("client-key.pem"), client_key.serialize_pem()).unwrap();
    Pki { ca: ca.pem(), server_chain: server.pem(), server_key: server_key.serialize_pem() }
}

/// A TLS HTTP/2 APNs stand-in requiring a client certificate from the CA:
/// its port and what it saw.
fn start_tls_standin(pki: &Pki) -> (u16, Seen) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(pki.ca.as_bytes()).unwrap()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let chain = vec![CertificateDer::from_pem_slice(pki.server_chain.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes()).unwrap();
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let seen: Seen = Arc::default();
    let recorded = seen.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(serve(listener, acceptor, recorded));
    });
    (port, seen)
}

async fn serve(listener: std::net::TcpListener, acceptor: tokio_rustls::TlsAcceptor, seen: Seen) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let Ok((tcp, _)) = listener.accept().await else { return };
        let (acceptor, seen) = (acceptor.clone(), seen.clone());
        tokio::spawn(async move {
            // A client without a certificate from the CA fails here.
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            let presented = tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
            let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
                let authorization = request
                    .headers()
                    .get("authorization")
                    .map(|value: &http::HeaderValue| value.to_str().unwrap().to_string());
                seen.lock().unwrap().push((
                    request.uri().path().to_string(),
                    authorization,
                    presented,
                ));
                async move {
                    let body = http_body_util::Full::new(bytes::Bytes::new());
                    hyper::Response::builder().status(200).body(body)
                }
            });
            let io = hyper_util::rt::TokioIo::new(tls);
            let builder =
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
            let _ = builder.serve_connection(io, service).await;
        });
    }
}

fn config(dir: &Path, apns: ApnsConfig) -> Config {
    let mut config = common::in_process_config(dir.join("data"), 1);
    config.push.apns = Some(apns);
    config
}

fn register(addr: &str) -> Account {
    let password = format!("pw-{}", uuid::Uuid::new_v4());
    let body = json!({"password": password, "registrationId": REGISTRATION_ID}).to_string();
    let (status, answer) = request_at(addr, "PUT", "/v1/accounts", None, &[], body.as_bytes());
    assert_eq!(status, 200);
    let json: Value = serde_json::from_slice(&answer).unwrap();
    Account { uuid: json["uuid"].as_str().unwrap().parse().unwrap(), device_id: 1, password }
}

#[test]
fn certificate_auth_pushes_over_tls_with_the_client_certificate_and_no_jwt() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let (port, seen) = start_tls_standin(&pki);
    let apns = ApnsConfig {
        base_url: format!("https://127.0.0.1:{port}"),
        topic: "org.example.switchboard".into(),
        certificate_file: Some(dir.path().join("client.pem")),
        certificate_key_file: Some(dir.path().join("client-key.pem")),
        ca_file: Some(dir.path().join("ca.pem")),
        ..ApnsConfig::default()
    };
    let running = switchboard::server::start_with_clock(config(dir.path(), apns), Clock::manual(1))
        .expect("start the server");
    let addr = running.local_addr.to_string();
    let (sender, device) = (register(&addr), register(&addr));
    let token = "ab".repeat(32);
    let body = json!({ "apnRegistrationId": token }).to_string();
    assert_eq!(
        request_at(&addr, "PUT", "/v1/accounts/apn", Some(&device), &[], body.as_bytes()).0,
        204
    );
    let send = send_body(&[(1, REGISTRATION_ID)], b"hi", false, 1);
    let path = format!("/v1/messages/{}", device.uuid);
    assert_eq!(request_at(&addr, "PUT", &path, Some(&sender), &[], &send).0, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no push reached the TLS stand-in");
        std::thread::sleep(Duration::from_millis(20));
    }
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests, vec![(format!("/3/device/{token}"), None, true)]);
    running.begin_drain();
    running.wait();
}

#[test]
fn a_missing_certificate_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-cert.pem");
    let apns = ApnsConfig {
        topic: "org.example.switchboard".into(),
        certificate_file: Some(missing),
        certificate_key_file: Some(dir.path().join("no-such-key.pem")),
        ..ApnsConfig::default()
    };
    let error = switchboard::server::start_with_clock(config(dir.path(), apns), Clock::manual(1))
        .err()
        .expect("start-up refused");
    assert!(error.to_string().contains("no-such-cert.pem"), "{error}");
    let half = ApnsConfig {
        topic: "t".into(),
        certificate_file: Some(dir.path().join("c.pem")),
        ..ApnsConfig::default()
    };
    let error = switchboard::server::start_with_clock(config(dir.path(), half), Clock::manual(1))
        .err()
        .expect("a half-configured APNs is refused");
    assert!(error.to_string().contains("push.apns"), "{error}");
}
