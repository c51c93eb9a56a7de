//! Contact-discovery lookups end to end: `PUT /v1/directory/lookup` over one
//! keep-alive HTTP connection to a server started in-process on loopback,
//! with 1,000 discoverable accounts and half of each request's hashes
//! matching. Throughput is in hashes, so criterion reports the cost per
//! hash. Measured against one shard (every owner local) and two shards (a
//! scatter over the rings to the other shard and a gather of its answer),
//! and beside `GET /v1/keepalive` on the same connection: the fixed cost of
//! one request, the baseline the per-hash cost sits on.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use switchboard::config::{Config, Durability};
use switchboard::protocol::base64;

const DISCOVERABLE_ACCOUNTS: usize = 1000;

/// One request on `stream` (`auth` empty: no credentials), answered with
/// (status, body).
fn request(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    auth: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let auth = if auth.is_empty() { String::new() } else { format!("Authorization: {auth}\r\n") };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: bench\r\n{auth}Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&buf[..end]).to_string();
            let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
            let len: usize = text
                .lines()
                .find_map(|line| line.strip_prefix("Content-Length: "))
                .map_or(0, |value| value.trim().parse().unwrap());
            while buf.len() < end + 4 + len {
                let read = stream.read(&mut chunk).unwrap();
                assert!(read > 0, "server closed");
                buf.extend_from_slice(&chunk[..read]);
            }
            return (status, buf[end + 4..end + 4 + len].to_vec());
        }
        let read = stream.read(&mut chunk).unwrap();
        assert!(read > 0, "server closed");
        buf.extend_from_slice(&chunk[..read]);
    }
}

/// Registers an account; its Basic credentials.
fn register(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    let body = br#"{"password":"bench-password","registrationId":1}"#;
    let (status, answer) = request(&mut stream, "PUT", "/v1/accounts", "", body);
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    let login = format!("{}.1:bench-password", json["uuid"].as_str().unwrap());
    format!("Basic {}", base64::encode(login.as_bytes()))
}

fn identifier(n: usize) -> String {
    format!("+1555{n:07}")
}

fn hash_of(identifier: &str) -> String {
    base64::encode(&Sha256::digest(identifier.as_bytes())[..10])
}

/// A server with `shards` shards and the discoverable accounts; the
/// credentials of a looking-up account.
fn start(shards: usize, dir: &std::path::Path) -> (SocketAddr, String) {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        shards,
        data_dir: dir.to_path_buf(),
        durability: Durability::None,
        pin_cores: false,
        log: "error".into(),
        ..Config::default()
    };
    config.rate_limits.directory_lookup.permits = 0;
    let running = switchboard::server::start(config).unwrap();
    let addr = running.local_addr;
    std::mem::forget(running); // serves until the bench process exits
    for n in 0..DISCOVERABLE_ACCOUNTS {
        let auth = register(addr);
        let mut stream = TcpStream::connect(addr).unwrap();
        let body = format!(r#"{{"identifier":"{}"}}"#, identifier(n));
        let (status, _) =
            request(&mut stream, "PUT", "/v1/accounts/discoverable", &auth, body.as_bytes());
        assert_eq!(status, 200);
    }
    (addr, register(addr))
}

/// A lookup body of `len` hashes, every other one held by an account.
fn lookup_body(len: usize) -> Vec<u8> {
    let hashes: Vec<String> = (0..len)
        .map(|n| if n % 2 == 0 { hash_of(&identifier(n / 2)) } else { hash_of(&format!("x{n}")) })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "hashes": hashes })).unwrap()
}

fn directory(c: &mut Criterion) {
    for shards in [1usize, 2] {
        let dir = tempfile::tempdir().unwrap();
        let (addr, auth) = start(shards, dir.path());
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut group = c.benchmark_group(format!("directory_lookup_{shards}_shards"));
        group.sample_size(20);
        group.throughput(Throughput::Elements(1));
        group.bench_function("baseline_keepalive_request", |b| {
            b.iter(|| assert_eq!(request(&mut stream, "GET", "/v1/keepalive", &auth, b"").0, 200))
        });
        for len in [1usize, 100, 1000] {
            let body = lookup_body(len);
            let (status, answer) =
                request(&mut stream, "PUT", "/v1/directory/lookup", &auth, &body);
            assert_eq!(status, 200);
            let found: serde_json::Value = serde_json::from_slice(&answer).unwrap();
            assert_eq!(found["contacts"].as_array().unwrap().len(), len.div_ceil(2));
            group.throughput(Throughput::Elements(len as u64));
            group.bench_function(format!("lookup_{len}_hashes"), |b| {
                b.iter(|| request(&mut stream, "PUT", "/v1/directory/lookup", &auth, &body))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, directory);
criterion_main!(benches);
