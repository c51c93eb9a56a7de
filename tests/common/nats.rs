//! Test support: a NATS cluster with JetStream on loopback, started and
//! killed by the test itself.
//!
//! [`NatsCluster::start`] runs `size` `nats-server` processes on free
//! loopback ports (client, route and monitoring port each), every one with
//! its own store directory under one temporary directory, routed to each
//! other, and returns once JetStream is ready: every running server names
//! the same meta leader and answers `/healthz` with 200. Fault tests kill
//! one (`kill -9`), pause it (`SIGSTOP`/`SIGCONT`) or restart it on the
//! same ports and store. Everything is killed on drop.
//!
//! The binary is the current NATS server that `scripts/setup` installs
//! (Debian's 2.9 is refused: async-nats cannot make a KV bucket on it):
//! `$SWITCHBOARD_NATS_SERVER` (exported by `scripts/env.sh`), else
//! `switchboard-nats/bin/nats-server` beside the target directory the test
//! runs from, else under `~/.cache`. Missing, the test fails and says to
//! run `scripts/setup`.
//!
//! Include it with `#[path = "common/nats.rs"] mod nats;`.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable naming the `nats-server` binary (set by `scripts/env.sh`).
pub const NATS_SERVER_ENV: &str = "SWITCHBOARD_NATS_SERVER";

/// How long a cluster may take to elect its JetStream meta leader.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The oldest server the cluster code works with (KV needs 2.10+).
const VERSION_MIN: (u32, u32) = (2, 10);

/// A running NATS cluster, killed on drop.
pub struct NatsCluster {
    /// The cluster's name (`--cluster_name`).
    pub name: String,
    servers: Vec<NatsServer>,
    binary: PathBuf,
    dir: tempfile::TempDir,
}

/// One server: its ports, its store and its process (`None` once killed).
struct NatsServer {
    name: String,
    client_port: u16,
    route_port: u16,
    monitor_port: u16,
    child: Option<Child>,
}

impl NatsCluster {
    /// Starts `size` routed servers with JetStream and waits until ready.
    pub fn start(size: usize) -> Self {
        assert!((1..=5).contains(&size), "a NATS cluster of 1 to 5 servers");
        let binary = nats_server_binary();
        let dir = tempfile::tempdir().expect("a temp dir for the NATS stores");
        let ports = free_ports(3 * size);
        let servers = (0..size)
            .map(|i| NatsServer {
                name: format!("n{i}"),
                client_port: ports[3 * i],
                route_port: ports[3 * i + 1],
                monitor_port: ports[3 * i + 2],
                child: None,
            })
            .collect();
        let name = format!("sbtest{}", ports[0]);
        let mut cluster = Self { name, servers, binary, dir };
        for i in 0..size {
            cluster.launch(i);
        }
        cluster.wait_ready(READY_TIMEOUT);
        cluster
    }

    /// The client URL of every server.
    pub fn urls(&self) -> Vec<String> {
        (0..self.servers.len()).map(|i| self.url(i)).collect()
    }

    /// The client URL of server `i`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.servers[i].client_port)
    }

    /// The number of servers (running or not).
    pub fn size(&self) -> usize {
        self.servers.len()
    }

    /// Which server is called `name` (`n0`, `n1`, ...).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.servers.iter().position(|server| server.name == name)
    }

    /// Kills server `i` with SIGKILL and reaps it.
    pub fn kill9(&mut self, i: usize) {
        let mut child = self.servers[i].child.take().expect("the server is running");
        child.kill().expect("SIGKILL a nats-server");
        child.wait().expect("reap a nats-server");
    }

    /// Freezes server `i` (SIGSTOP): its sockets stay open, it answers nothing.
    pub fn pause(&self, i: usize) {
        self.signal(i, libc::SIGSTOP);
    }

    /// Lets a paused server `i` run again (SIGCONT).
    pub fn resume(&self, i: usize) {
        self.signal(i, libc::SIGCONT);
    }

    /// Starts killed server `i` again on its ports and store, and waits
    /// until the cluster is ready.
    pub fn restart(&mut self, i: usize) {
        assert!(self.servers[i].child.is_none(), "server {i} is still running");
        self.launch(i);
        self.wait_ready(READY_TIMEOUT);
    }

    /// Waits until every running server names the same JetStream meta
    /// leader and reports itself healthy; panics with the logs after `timeout`.
    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let leaders: Vec<Option<String>> =
                self.running().map(|i| self.meta_leader(i)).collect();
            let agreed = leaders
                .first()
                .cloned()
                .flatten()
                .filter(|first| leaders.iter().all(|leader| leader.as_ref() == Some(first)));
            let healthy =
                self.running().all(|i| self.get(i, "/healthz").is_some_and(|(s, _)| s == 200));
            if agreed.is_some() && healthy {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "NATS cluster not ready in {timeout:?} (meta leaders {leaders:?}, healthy \
                 {healthy}):\n{}",
                self.log_tails()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server leading stream `stream`'s replicas, asked of any running
    /// server's monitoring port.
    pub fn stream_leader(&self, stream: &str) -> Option<String> {
        self.running().find_map(|i| {
            let jsz = self.get_json(i, "/jsz?streams=true")?;
            let accounts = jsz["account_details"].as_array()?;
            let streams = accounts.iter().filter_map(|a| a["stream_detail"].as_array()).flatten();
            let found = streams.into_iter().find(|s| s["name"] == stream)?;
            found["cluster"]["leader"].as_str().filter(|l| !l.is_empty()).map(String::from)
        })
    }

    /// Stream `stream`'s first and last sequence, asked of any running
    /// server's monitoring port (`None` when no server knows it).
    pub fn stream_seqs(&self, stream: &str) -> Option<(u64, u64)> {
        self.running().find_map(|i| {
            let jsz = self.get_json(i, "/jsz?streams=true")?;
            let accounts = jsz["account_details"].as_array()?;
            let streams = accounts.iter().filter_map(|a| a["stream_detail"].as_array()).flatten();
            let found = streams.into_iter().find(|s| s["name"] == stream)?;
            Some((found["state"]["first_seq"].as_u64()?, found["state"]["last_seq"].as_u64()?))
        })
    }

    /// The names of the streams JetStream holds (a KV bucket `b` is `KV_b`).
    pub fn stream_names(&self) -> Vec<String> {
        let i = self.running().next().expect("a running server");
        let jsz = self.get_json(i, "/jsz?streams=true").expect("/jsz answers");
        let accounts = jsz["account_details"].as_array().cloned().unwrap_or_default();
        let mut names: Vec<String> = accounts
            .iter()
            .filter_map(|a| a["stream_detail"].as_array())
            .flatten()
            .filter_map(|s| s["name"].as_str().map(String::from))
            .collect();
        names.sort();
        names
    }

    /// The last lines of every server's log, for a failure message.
    pub fn log_tails(&self) -> String {
        let mut text = String::new();
        for server in &self.servers {
            let log = std::fs::read_to_string(self.log_path(&server.name)).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            text.push_str(&format!("--- {} ---\n{tail}\n", server.name));
        }
        text
    }

    fn launch(&mut self, i: usize) {
        let routes: Vec<String> =
            (self.servers.iter()).map(|s| format!("nats://127.0.0.1:{}", s.route_port)).collect();
        let server = &self.servers[i];
        let log = File::options().create(true).append(true).open(self.log_path(&server.name));
        let log = log.expect("a NATS log file");
        let child = Command::new(&self.binary)
            .args(["--server_name", &server.name, "-a", "127.0.0.1"])
            .args(["-p", &server.client_port.to_string(), "-m", &server.monitor_port.to_string()])
            .arg("-js")
            .arg("-sd")
            .arg(self.dir.path().join(&server.name))
            .args(["--cluster_name", &self.name])
            .args(["--cluster", &format!("nats://127.0.0.1:{}", server.route_port)])
            .args(["--routes", &routes.join(",")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup the log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        self.servers[i].child = Some(child);
    }

    fn running(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.servers.len()).filter(|&i| self.servers[i].child.is_some())
    }

    fn signal(&self, i: usize, signal: libc::c_int) {
        let child = self.servers[i].child.as_ref().expect("the server is running");
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "signal {signal} to nats-server {i}");
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    fn meta_leader(&self, i: usize) -> Option<String> {
        let jsz = self.get_json(i, "/jsz")?;
        jsz["meta_cluster"]["leader"].as_str().filter(|l| !l.is_empty()).map(String::from)
    }

    fn get_json(&self, i: usize, path: &str) -> Option<serde_json::Value> {
        let (status, body) = self.get(i, path)?;
        (status == 200).then(|| serde_json::from_str(&body).ok()).flatten()
    }

    /// `GET path` on server `i`'s monitoring port: status and body.
    fn get(&self, i: usize, path: &str) -> Option<(u16, String)> {
        let addr = ([127, 0, 0, 1], self.servers[i].monitor_port).into();
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        Some((status, body.to_string()))
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for server in &mut self.servers {
            if let Some(mut child) = server.child.take() {
                // SIGKILL ends a stopped process too.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// `count` distinct free loopback ports (held together while chosen, so
/// they differ from each other).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port"))
        .collect();
    listeners.iter().map(|l| l.local_addr().expect("a bound address").port()).collect()
}

/// The `nats-server` to run, checked to be 2.10 or newer.
pub fn nats_server_binary() -> PathBuf {
    let binary = match std::env::var_os(NATS_SERVER_ENV) {
        Some(path) => PathBuf::from(path),
        None => well_known_paths().into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
            panic!(
                "nats-server not found: run scripts/setup (it installs NATS 2.15 beside the \
                 target directory), or set {NATS_SERVER_ENV}; looked in {:?}",
                well_known_paths()
            )
        }),
    };
    let version = server_version(&binary);
    assert!(
        version >= VERSION_MIN,
        "{} is NATS {}.{}; cluster mode needs {}.{}+: run scripts/setup",
        binary.display(),
        version.0,
        version.1,
        VERSION_MIN.0,
        VERSION_MIN.1
    );
    binary
}

/// `switchboard-nats/bin/nats-server` beside each directory above the test
/// binary (the target directory's sibling), then under `~/.cache`.
fn well_known_paths() -> Vec<PathBuf> {
    let relative = Path::new("switchboard-nats/bin/nats-server");
    let exe = std::env::current_exe().unwrap_or_default();
    let mut paths: Vec<PathBuf> =
        exe.ancestors().skip(1).filter_map(|dir| dir.parent()).map(|p| p.join(relative)).collect();
    if let Some(home) = std::env::var_os("HOME") {
        paths.push(Path::new(&home).join(".cache").join(relative));
    }
    paths
}

/// `(major, minor)` from `nats-server --version` (`nats-server: v2.15.1`).
fn server_version(binary: &Path) -> (u32, u32) {
    let output = Command::new(binary).arg("--version").output().unwrap_or_else(|e| {
        panic!("running {} --version: {e} (run scripts/setup)", binary.display())
    });
    let text = String::from_utf8_lossy(&output.stdout);
    let parse = || {
        let version = text.trim().rsplit('v').next()?;
        let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
        Some((parts.next()??, parts.next()??))
    };
    parse().unwrap_or_else(|| panic!("cannot read the version of {}: {text:?}", binary.display()))
}
