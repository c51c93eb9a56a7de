//! The fresh server a verify run checks the plan against: `switchboard
//! serve --shards 1` on a temporary data directory, pinned to core 0 when
//! the box has a second core for the load generator (as the figures were
//! measured), its push windows compressed like the day and its APNs
//! endpoint the in-process stand-in. Killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub data_dir: PathBuf,
}

/// What the server is started with.
pub struct ServerSpec<'a> {
    pub binary: &'a Path,
    pub work_dir: &'a Path,
    /// The APNs stand-in's address.
    pub apns: SocketAddr,
    /// Push windows, real milliseconds.
    pub alert_coalesce_ms: u64,
    pub background_interval_ms: u64,
    pub after_close_delay_ms: u64,
    /// Pin to core 0.
    pub pin: bool,
}

/// The longest wait for the server's "listening" line.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A loopback port nobody listens on now (bound, read, released).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Server {
    /// Writes the config, starts the server and waits until it listens.
    pub fn start(spec: &ServerSpec) -> anyhow::Result<Self> {
        let config = spec.work_dir.join("verify.toml");
        let key = spec.work_dir.join("apns-key.p8");
        std::fs::write(&key, APNS_TEST_KEY)?;
        std::fs::write(
            &config,
            format!(
                "[push]\nalert_coalesce_ms = {}\nbackground_interval_ms = {}\nafter_close_delay_ms = {}\n\n\
                 [push.apns]\nbase_url = \"http://{}\"\ntopic = \"org.example.verify\"\nkey_file = \"{}\"\n\
                 key_id = \"VERIFYKEY1\"\nteam_id = \"VERIFYTEAM\"\n",
                spec.alert_coalesce_ms, spec.background_interval_ms.max(1), spec.after_close_delay_ms,
                spec.apns, key.display()
            ),
        )?;
        let data_dir = spec.work_dir.join("data");
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let mut command = match spec.pin {
            true => {
                let mut command = Command::new("taskset");
                command.args(["-c", "0"]).arg(spec.binary);
                command
            }
            false => Command::new(spec.binary),
        };
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--shards",
                "1",
                "--durability",
                "group",
                "--log",
                "warn",
            ])
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--admin-listen", &admin.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {}: {e}", spec.binary.display()))?;
        let listen = wait_listening(&mut child)?;
        Ok(Self { pid: child.id(), child, listen, admin, data_dir })
    }

    /// Stops the server (SIGTERM, then SIGKILL after 20 s) and waits for it.
    pub fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads the server's stdout until its "listening on ADDR" line.
fn wait_listening(child: &mut Child) -> anyhow::Result<SocketAddr> {
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(address) =
                line.rsplit(' ').next().and_then(|a| a.parse::<SocketAddr>().ok())
            {
                if line.contains("listening") {
                    let _ = sender.send(address);
                }
            }
        }
    });
    receiver
        .recv_timeout(START_TIMEOUT)
        .map_err(|_| anyhow::anyhow!("the server did not start listening within {START_TIMEOUT:?}"))
}

/// A P-256 key in PKCS#8 for the token the server signs its APNs requests
/// with: the stand-in checks nothing (the same test-only key as
/// `tests/fixtures/apns-test-auth-key.p8`, which a user's install lacks).
const APNS_TEST_KEY: &str = include_str!("../../../../../tests/fixtures/apns-test-auth-key.p8");
