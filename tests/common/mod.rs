//! Test support: start the real `switchboard` binary on a random port with a
//! temporary data directory, and talk to it with real sockets: raw HTTP/1.1
//! and tungstenite WebSocket clients.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchboard::protocol::base64;
use switchboard::protocol::frame::{self, Frame, WsRequest, WsResponse};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};
use uuid::Uuid;

/// Limits small enough for tests to reach quickly.
pub const TEST_LIMITS: &str = r#"
[limits]
header_bytes_max = 2048
header_count_max = 32
body_bytes_max = 16384
frame_bytes_max = 32768
handshake_timeout_ms = 1000
http_idle_timeout_ms = 5000
idle_timeout_ms = 2000
ping_interval_ms = 500
request_timeout_ms = 5000
"#;

/// A running server process, killed on drop.
pub struct Server {
    pub port: u16,
    /// The admin listener (`/metrics`, readiness `/health`).
    pub admin: String,
    pub child: Child,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

pub struct ServerOptions {
    pub shards: usize,
    pub config_toml: String,
    pub extra_args: Vec<String>,
    pub data_dir: Option<PathBuf>,
    /// Where the server's log (stderr) goes; inherited when `None`.
    pub log_path: Option<PathBuf>,
    /// The server process's open-file limit (`RLIMIT_NOFILE`), if lowered.
    pub nofile_limit: Option<u64>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            shards: 2,
            config_toml: TEST_LIMITS.to_string(),
            extra_args: vec![],
            data_dir: None,
            log_path: None,
            nofile_limit: None,
        }
    }
}

/// An admin address no other test server uses: port 9090 on a random
/// loopback address (all of 127/8 is local), so parallel servers never
/// race for a port.
pub fn unique_admin_addr() -> String {
    let mut bytes = [0u8; 3];
    getrandom::fill(&mut bytes).expect("random bytes");
    format!("127.{}.{}.{}:9090", bytes[0], bytes[1], bytes[2].max(2))
}

/// The configuration of a server a test runs in-process: loopback with
/// ports picked by the kernel (public and admin), `shards` unpinned shards,
/// data in `data_dir`, warnings only, a 2 s drain.
pub fn in_process_config(data_dir: PathBuf, shards: usize) -> switchboard::config::Config {
    switchboard::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".into(),
        shards,
        data_dir,
        pin_cores: false,
        log: "warn".into(),
        drain_timeout_ms: 2_000,
        ..Default::default()
    }
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_switchboard")
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    pub fn start_with(options: ServerOptions) -> Self {
        Self::start_with_env(options, &[])
    }

    /// Like [`Self::start_with`], with `env` added to the server process's
    /// environment (e.g. `LD_PRELOAD` for a shim that watches its syscalls).
    pub fn start_with_env(options: ServerOptions, env: &[(&str, &std::ffi::OsStr)]) -> Self {
        let (temp, data_dir) = match options.data_dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::tempdir().expect("temp dir");
                let dir = temp.path().join("data");
                (Some(temp), dir)
            }
        };
        let config_path = data_dir.with_extension("toml");
        std::fs::create_dir_all(data_dir.parent().unwrap()).unwrap();
        std::fs::write(&config_path, &options.config_toml).unwrap();
        let admin = unique_admin_addr();
        let mut command = Command::new(binary());
        if let Some(limit) = options.nofile_limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; the closure touches no
            // memory of the parent between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--shards")
            .arg(options.shards.to_string())
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--config")
            .arg(&config_path)
            .arg("--no-pin")
            .args(match options.extra_args.iter().any(|arg| arg == "--admin-listen") {
                true => vec![],
                false => vec!["--admin-listen", admin.as_str()],
            })
            .args(&options.extra_args)
            .env("SWITCHBOARD_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(match &options.log_path {
                Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
                None => Stdio::inherit(),
            })
            .spawn()
            .expect("start switchboard");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read listening line");
        let port =
            line.trim().rsplit(':').next().and_then(|port| port.parse().ok()).unwrap_or_else(
                || {
                    // How it ended, when it did (a signal leaves no log line).
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    panic!("no port in {line:?}; the server: {:?}", child.try_wait())
                },
            );
        let server = Self { port, admin, child, data_dir, _temp: temp };
        // Every shard has loaded its state once readiness says so (the
        // listening line comes before that; the kernel queues connections).
        if !options.extra_args.iter().any(|arg| arg == "--admin-listen") {
            wait_until("the server is ready", Duration::from_secs(30), || {
                server.admin_get("/health").0 == 200
            });
        }
        server
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asserts the server still answers: health over HTTP, and a fresh
    /// account can open a WebSocket and be answered over it.
    pub fn assert_serving(&self) {
        let (status, _) = self.request("GET", "/health", None, b"");
        assert_eq!(status, 200, "health after hostile input");
        let account = self.register();
        let mut ws = self.connect(&account).expect("websocket after hostile input");
        let response = ws_call(&mut ws, 900_001, "GET", "/v1/keepalive", None);
        assert_eq!(response.status, 200);
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends raw bytes on a new connection and returns all bytes read until
    /// the server closes or `wait` passes.
    pub fn raw(&self, bytes: &[u8], wait: Duration) -> Vec<u8> {
        exchange(&self.addr(), bytes, wait)
    }

    /// One HTTP request on a new connection: (status, body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        auth: Option<&Account>,
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        self.request_with(method, path, auth, &[], body)
    }

    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        auth: Option<&Account>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        request_at(&self.addr(), method, path, auth, headers, body)
    }

    pub fn register(&self) -> Account {
        self.register_with_token(None).expect("register")
    }

    pub fn register_with_token(&self, token: Option<&str>) -> Result<Account, (u16, Vec<u8>)> {
        let password = format!("pw-{}", Uuid::new_v4());
        let body = format!(r#"{{"password":"{password}","registrationId":4242}}"#);
        let headers: Vec<(&str, &str)> =
            token.map(|t| vec![("X-Registration-Token", t)]).unwrap_or_default();
        let (status, response) =
            self.request_with("PUT", "/v1/accounts", None, &headers, body.as_bytes());
        if status != 200 {
            return Err((status, response));
        }
        let json: serde_json::Value = serde_json::from_slice(&response).unwrap();
        assert_eq!(json["deviceId"], 1);
        Ok(Account {
            uuid: Uuid::parse_str(json["uuid"].as_str().unwrap()).unwrap(),
            device_id: 1,
            password,
        })
    }

    /// Registers accounts until one is owned by `shard` of `shard_count`.
    pub fn register_on_shard(&self, shard: usize, shard_count: usize) -> Account {
        for _ in 0..200 {
            let account = self.register();
            if switchboard::shard::owner(&account.uuid, shard_count) == shard {
                return account;
            }
        }
        panic!("no account landed on shard {shard}");
    }

    pub fn connect(&self, account: &Account) -> Result<Ws, tungstenite::Error> {
        let url = format!(
            "ws://{}/v1/websocket/?login={}.{}&password={}",
            self.addr(),
            account.uuid,
            account.device_id,
            account.password
        );
        connect_url(&url)
    }

    /// True once the server's log file holds a line containing `text`.
    pub fn log_contains(&self, log_path: &Path, text: &str) -> bool {
        std::fs::read_to_string(log_path).is_ok_and(|log| log.contains(text))
    }

    /// One request on a new connection, or `None` when the server does not
    /// answer in time (e.g. it cannot accept yet).
    pub fn try_request(&self, method: &str, path: &str) -> Option<u16> {
        let mut stream = TcpStream::connect(self.addr()).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).ok()?;
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        text.split(' ').nth(1)?.parse().ok()
    }

    /// `GET path` on the admin listener: (status, body).
    pub fn admin_get(&self, path: &str) -> (u16, Vec<u8>) {
        request_at(&self.admin, "GET", path, None, &[], b"")
    }

    pub fn metric(&self, name: &str) -> u64 {
        let (_, body) = self.admin_get("/metrics");
        let text = String::from_utf8(body).unwrap();
        text.lines()
            .filter(|line| line.starts_with(&format!("switchboard_{name}{{")))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Debug, Clone)]
pub struct Account {
    pub uuid: Uuid,
    pub device_id: u32,
    pub password: String,
}

impl Account {
    pub fn basic(&self) -> String {
        let text = format!("{}.{}:{}", self.uuid, self.device_id, self.password);
        format!("Basic {}", base64::encode(text.as_bytes()))
    }
}

pub type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

pub fn connect_url(url: &str) -> Result<Ws, tungstenite::Error> {
    let (mut ws, _) = tungstenite::connect(url)?;
    if let MaybeTlsStream::Plain(stream) = ws.get_mut() {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    Ok(ws)
}

/// One HTTP request to `addr` on a new connection: (status, body). Usable
/// from a thread that does not own the [`Server`].
pub fn request_at(
    addr: &str,
    method: &str,
    path: &str,
    auth: Option<&Account>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(account) = auth {
        head.push_str(&format!("Authorization: {}\r\n", account.basic()));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    parse_response(&exchange(addr, &bytes, Duration::from_secs(10)))
}

/// Sends `bytes` on a new connection to `addr` and returns all bytes read
/// until the server closes or `wait` passes.
pub fn exchange(addr: &str, bytes: &[u8], wait: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    let _ = stream.write_all(bytes);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

/// Parses an HTTP response: (status, body).
pub fn parse_response(bytes: &[u8]) -> (u16, Vec<u8>) {
    let text_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..text_end]);
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, bytes[text_end + 4..].to_vec())
}

/// The `code` and `message` of a JSON error body.
pub fn error_body(body: &[u8]) -> (u64, String) {
    let json: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("error body is JSON: {:?}", String::from_utf8_lossy(body)));
    (json["code"].as_u64().unwrap(), json["message"].as_str().unwrap().to_string())
}

/// Reads the next frame that is a JSON request or response, answering
/// pings on the way (tungstenite does) and skipping pongs.
pub fn next_frame<S: Read + Write>(ws: &mut WebSocket<S>) -> Frame {
    loop {
        match ws.read().expect("read frame") {
            Message::Text(text) => {
                let mut bytes = text.as_bytes().to_vec();
                return frame::decode(&mut bytes, 1 << 20).expect("server frame decodes");
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// Sends a framed request and waits for its response, answering (with 200)
/// any server request that arrives first.
pub fn ws_call(ws: &mut Ws, id: u64, verb: &str, path: &str, body: Option<&[u8]>) -> WsResponse {
    let request = WsRequest {
        id,
        verb: verb.into(),
        path: path.into(),
        body: body.map(|b| b.to_vec()),
        headers: vec![],
    };
    ws.send(Message::text(frame::encode_request(&request))).unwrap();
    loop {
        match next_frame(ws) {
            Frame::Response(response) if response.id == id => return response,
            Frame::Response(other) => panic!("response to unknown id {other:?}"),
            Frame::Request(server_request) => ack(ws, server_request.id, 200),
        }
    }
}

pub fn ack(ws: &mut Ws, id: u64, status: u16) {
    let response =
        WsResponse { id, status, message: Some("OK".into()), body: None, headers: vec![] };
    ws.send(Message::text(frame::encode_response(&response))).unwrap();
}

/// Reads until the server closes; returns the close code (None if the
/// connection ended without a close frame).
pub fn expect_close(ws: &mut Ws) -> Option<u16> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match ws.read() {
            Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    panic!("server did not close");
}

pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

pub fn data_dir_exists(path: &Path) -> bool {
    path.join("CURRENT").exists()
}

/// Like [`request_at`] (no extra headers), but also returns the response
/// head, status line and headers, as text: (status, head, body).
pub fn request_head_at(
    addr: &str,
    method: &str,
    path: &str,
    auth: Option<&Account>,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(account) = auth {
        head.push_str(&format!("Authorization: {}\r\n", account.basic()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    let response = exchange(addr, &bytes, Duration::from_secs(10));
    let (status, response_body) = parse_response(&response);
    let head_len = response.len() - response_body.len();
    (status, String::from_utf8_lossy(&response[..head_len]).into_owned(), response_body)
}

/// The value of header `name` (case-insensitive) in a response head.
pub fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (field, value) = line.split_once(':')?;
        field.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_string())
    })
}
