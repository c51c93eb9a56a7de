//! Loopback stand-ins for the push providers: APNs, FCM and Google's OAuth
//! token endpoint. Each serves HTTP/2 cleartext with prior knowledge (h2c,
//! what the server's HTTP/2-only client speaks to an `http://` base URL) on
//! 127.0.0.1, on its own thread with a small tokio runtime.
//!
//! A stand-in records every request (method, path, lowercase headers, body,
//! arrival time) and answers from a script: canned answers queued with
//! [`StandIn::push_answer`], one per request in order, then its kind's
//! default answer. Dropping it stops the thread and closes every connection.
//!
//! Also here: the provider's side of the JWTs the server signs (decoding and
//! verifying them against the committed test keys).
#![allow(dead_code)]

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use switchboard::protocol::base64;

/// Which provider a stand-in plays; decides its default answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// APNs: 200, empty body, an `apns-id` header.
    Apns,
    /// FCM HTTP v1: 200 `{"name":"projects/test-project/messages/1"}`.
    Fcm,
    /// Google's token endpoint: 200 with `test-access-token-<n>`, n = 1, 2, ...
    Token,
}

/// One request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The path (and query, if any) of the request URI.
    pub path: String,
    /// Header names in lowercase; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// When the request's head arrived.
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!("{} {} body is not JSON: {:?}", self.method, self.path, self.text())
        })
    }
}

/// A canned answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The answers still to give, and how many default tokens were issued.
struct Script {
    queued: VecDeque<Answer>,
    tokens_issued: u64,
}

impl Script {
    fn next(&mut self, kind: Kind) -> Answer {
        if let Some(answer) = self.queued.pop_front() {
            return answer;
        }
        let json = |status: u16, body: Value| Answer {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&body).unwrap(),
        };
        match kind {
            Kind::Apns => Answer {
                status: 200,
                headers: vec![("apns-id".into(), uuid::Uuid::new_v4().to_string().to_uppercase())],
                body: vec![],
            },
            Kind::Fcm => json(200, serde_json::json!({"name": "projects/test-project/messages/1"})),
            Kind::Token => {
                self.tokens_issued += 1;
                let token = format!("test-access-token-{}", self.tokens_issued);
                let body = serde_json::json!({
                    "access_token": token, "expires_in": 3600, "token_type": "Bearer",
                });
                json(200, body)
            }
        }
    }
}

/// A running stand-in; stops when dropped.
pub struct StandIn {
    kind: Kind,
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<Script>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Binds 127.0.0.1:0 and starts serving at once (the listener is bound
    /// before this returns, so the port accepts connections immediately).
    pub fn start(kind: Kind) -> StandIn {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind stand-in");
        listener.set_nonblocking(true).expect("non-blocking stand-in listener");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(Script { queued: VecDeque::new(), tokens_issued: 0 }));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (thread_requests, thread_script) = (requests.clone(), script.clone());
        let thread = std::thread::Builder::new()
            .name(format!("standin-{kind:?}"))
            .spawn(move || serve(kind, listener, stopped, thread_requests, thread_script))
            .expect("start stand-in thread");
        StandIn { kind, addr, requests, script, stop: Some(stop), thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Queues an answer for a later request (answers are used in order,
    /// before any default answer).
    pub fn push_answer(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let mut headers: Vec<(String, String)> = headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
            .collect();
        if !body.is_empty() && !headers.iter().any(|(name, _)| name == "content-type") {
            headers.push(("content-type".into(), "application/json".into()));
        }
        let answer = Answer { status, headers, body: body.to_vec() };
        self.script.lock().unwrap().queued.push_back(answer);
    }

    /// Waits until at least `count` requests arrived and returns them all;
    /// panics (listing what did arrive) after `timeout`.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if requests.len() >= count {
                return requests;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{:?} stand-in: {} of {count} requests after {timeout:?}: {:#?}",
                    self.kind,
                    requests.len(),
                    requests
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits `quiet` (a short fixed wait for something that must not
    /// happen), then asserts exactly `count` requests arrived in all.
    pub fn assert_count_after(&self, quiet: Duration, count: usize) -> Vec<Recorded> {
        std::thread::sleep(quiet);
        let requests = self.requests();
        assert_eq!(requests.len(), count, "{:?} stand-in requests: {requests:#?}", self.kind);
        requests
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The stand-in's thread: accepts until told to stop; dropping the runtime
/// at the end cancels every connection task.
fn serve(
    kind: Kind,
    listener: std::net::TcpListener,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<Script>>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("stand-in runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("stand-in listener");
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => {
                    let Ok((tcp, _)) = accepted else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    let (requests, script) = (requests.clone(), script.clone());
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        answer(kind, requests.clone(), script.clone(), request)
                    });
                    tokio::spawn(async move {
                        let builder = hyper::server::conn::http2::Builder::new(
                            hyper_util::rt::TokioExecutor::new(),
                        );
                        let _ = builder
                            .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                            .await;
                    });
                }
            }
        }
    });
}

/// Records one request, then answers it from the script.
async fn answer(
    kind: Kind,
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<Script>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let at = Instant::now();
    let method = request.method().to_string();
    let path = request.uri().path_and_query().map_or("/".into(), |p| p.as_str().to_string());
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in request.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_ascii_lowercase())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    };
    requests.lock().unwrap().push(Recorded { method, path, headers, body, at });
    let canned = script.lock().unwrap().next(kind);
    let mut response = Response::builder().status(canned.status);
    for (name, value) in &canned.headers {
        response = response.header(name.as_str(), value.as_str());
    }
    Ok(response.body(Full::new(Bytes::from(canned.body))).expect("valid canned answer"))
}

// ---- The provider's side of the JWTs ----

/// Base64url (no padding) to bytes.
pub fn base64url_decode(text: &str) -> Vec<u8> {
    let standard: String = text
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    base64::decode(standard.as_bytes()).unwrap_or_else(|_| panic!("not base64url: {text:?}"))
}

/// A JWT's header and claims, after checking its signature with `key`
/// under `algorithm` (as the provider would).
pub fn verified_jwt(
    jwt: &str,
    key: &jsonwebtoken::DecodingKey,
    algorithm: jsonwebtoken::Algorithm,
) -> (Value, Value) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts: {jwt:?}");
    let message = format!("{}.{}", parts[0], parts[1]);
    let valid = jsonwebtoken::crypto::verify(parts[2], message.as_bytes(), key, algorithm)
        .unwrap_or_else(|error| panic!("JWT signature does not parse ({error}): {jwt}"));
    assert!(valid, "JWT signature does not verify under {algorithm:?}: {jwt}");
    let part = |text: &str| -> Value {
        serde_json::from_slice(&base64url_decode(text))
            .unwrap_or_else(|_| panic!("JWT part is not JSON: {text:?}"))
    };
    (part(parts[0]), part(parts[1]))
}

/// The DER bytes inside a PEM file.
pub fn pem_der(path: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let body: String = text.lines().filter(|line| !line.starts_with("-----")).collect();
    base64::decode(body.trim().as_bytes()).expect("PEM body is Base64")
}

/// One DER item at the start of `bytes`: (tag, content, the rest).
fn der_item(bytes: &[u8]) -> (u8, &[u8], &[u8]) {
    let (length, start) = match bytes[1] {
        short if short < 0x80 => (usize::from(short), 2),
        long => {
            let count = usize::from(long & 0x7f);
            let length = bytes[2..2 + count].iter().fold(0, |acc, b| acc << 8 | usize::from(*b));
            (length, 2 + count)
        }
    };
    (bytes[0], &bytes[start..start + length], &bytes[start + length..])
}

/// The items of a DER SEQUENCE's content.
fn der_items(mut content: &[u8]) -> Vec<(u8, &[u8])> {
    let mut items = Vec::new();
    while !content.is_empty() {
        let (tag, item, rest) = der_item(content);
        items.push((tag, item));
        content = rest;
    }
    items
}

/// The PKCS#8 `privateKey` octets of a PEM private key.
fn pkcs8_private_key(path: &str) -> Vec<u8> {
    let der = pem_der(path);
    let (tag, info, _) = der_item(&der);
    assert_eq!(tag, 0x30, "PKCS#8 PrivateKeyInfo");
    let items = der_items(info);
    assert_eq!(items[2].0, 0x04, "PKCS#8 privateKey octets");
    items[2].1.to_vec()
}

/// The public key (for verifying ES256) of a PKCS#8 EC P-256 private key
/// that carries its public point, like the APNs `.p8` key.
pub fn ec_public_key(path: &str) -> jsonwebtoken::DecodingKey {
    let private = pkcs8_private_key(path);
    let (_, ec_private_key, _) = der_item(&private);
    let (_, public) = der_items(ec_private_key)
        .into_iter()
        .find(|(tag, _)| *tag == 0xa1)
        .expect("the EC key carries its public point");
    let (tag, bits, _) = der_item(public);
    assert_eq!((tag, bits[0], bits.len()), (0x03, 0, 66), "uncompressed P-256 point");
    jsonwebtoken::DecodingKey::from_ec_der(&bits[1..])
}

/// The public key (for verifying RS256) of a PKCS#8 RSA private key.
pub fn rsa_public_key(path: &str) -> jsonwebtoken::DecodingKey {
    let private = pkcs8_private_key(path);
    let (_, rsa_private_key, _) = der_item(&private);
    let items = der_items(rsa_private_key);
    let minimal = |integer: &[u8]| -> Vec<u8> {
        let first = integer.iter().position(|b| *b != 0).unwrap_or(integer.len() - 1);
        integer[first..].to_vec()
    };
    jsonwebtoken::DecodingKey::from_rsa_raw_components(&minimal(items[1].1), &minimal(items[2].1))
}
