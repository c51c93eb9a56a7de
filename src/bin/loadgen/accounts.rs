//! Bulk registration of test accounts over keep-alive HTTP connections.
//!
//! With `--accounts-file` (set once by `main` through [`reuse_accounts_from`])
//! the accounts a scenario needs are taken from the file first and only the
//! missing ones are registered (and appended), so repeated runs against one
//! server (the soak) reuse the same accounts instead of growing the table.

use crate::client::HttpConn;
use std::cell::RefCell;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::OnceLock;

/// The accounts file of this run, if any (`uuid password` per line).
static ACCOUNTS_FILE: OnceLock<PathBuf> = OnceLock::new();

/// Makes every later [`register_many`] reuse (and extend) `path`.
pub fn reuse_accounts_from(path: PathBuf) {
    let _ = ACCOUNTS_FILE.set(path);
}

/// The accounts saved in `path` (none when it does not exist yet); a line
/// that is not `uuid password` is an error naming the line.
fn load_accounts(path: &Path) -> std::io::Result<Vec<Credentials>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| match line.split_once(' ') {
            Some((uuid, password)) if uuid::Uuid::parse_str(uuid).is_ok() => {
                Ok(Credentials { uuid: uuid.to_string(), password: password.to_string() })
            }
            _ => Err(std::io::Error::other(format!(
                "{}: line {} is not `uuid password`",
                path.display(),
                index + 1
            ))),
        })
        .collect()
}

/// Appends `accounts` to `path`.
fn save_accounts(path: &Path, accounts: &[Credentials]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    for account in accounts {
        writeln!(file, "{} {}", account.uuid, account.password)?;
    }
    Ok(())
}

/// One registered account's primary device.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Account UUID.
    pub uuid: String,
    /// Device 1's password.
    pub password: String,
}

/// Attempts after the first when a registration's connection fails.
const REGISTRATION_RETRIES: usize = 3;

/// Registration id every load-generator device uses.
pub const REGISTRATION_ID: u32 = 1;

/// `count` accounts: from the accounts file when one is set (registering
/// and saving only the missing ones), else all freshly registered with
/// `concurrency` connections in parallel.
pub async fn register_many(
    server: SocketAddr,
    count: usize,
    concurrency: usize,
) -> std::io::Result<Vec<Credentials>> {
    let Some(path) = ACCOUNTS_FILE.get() else {
        return register_fresh(server, count, concurrency).await;
    };
    let mut accounts = load_accounts(path)?;
    if accounts.len() < count {
        let fresh = register_fresh(server, count - accounts.len(), concurrency).await?;
        save_accounts(path, &fresh)?;
        accounts.extend(fresh);
    }
    accounts.truncate(count);
    Ok(accounts)
}

/// Registers `count` new accounts with `concurrency` connections in parallel.
pub async fn register_fresh(
    server: SocketAddr,
    count: usize,
    concurrency: usize,
) -> std::io::Result<Vec<Credentials>> {
    let done: Rc<RefCell<Vec<Credentials>>> = Rc::new(RefCell::new(Vec::with_capacity(count)));
    let failed = Rc::new(RefCell::new(None));
    let per_task = count.div_ceil(concurrency.max(1));
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let share = per_task.min(count.saturating_sub(task * per_task));
        if share == 0 {
            break;
        }
        let (done, failed) = (done.clone(), failed.clone());
        tasks.push(monoio::spawn(register_share(server, task, share, done, failed)));
    }
    for task in tasks {
        task.await;
    }
    if let Some(error) = failed.borrow_mut().take() {
        return Err(error);
    }
    let accounts = done.borrow().clone();
    Ok(accounts)
}

/// Task number `task`'s part of [`register_many`]: registers `share`
/// accounts over one keep-alive connection, appending each to `done`; the
/// first failure goes to `failed` and ends the task.
async fn register_share(
    server: SocketAddr,
    task: usize,
    share: usize,
    done: Rc<RefCell<Vec<Credentials>>>,
    failed: Rc<RefCell<Option<std::io::Error>>>,
) {
    let mut conn = match HttpConn::connect(server) {
        Ok(conn) => conn,
        Err(error) => {
            *failed.borrow_mut() = Some(error);
            return;
        }
    };
    for index in 0..share {
        let password = format!("lg{task}x{index}");
        match register_one(server, &mut conn, password).await {
            Ok(credentials) => done.borrow_mut().push(credentials),
            Err(error) => {
                *failed.borrow_mut() = Some(error);
                return;
            }
        }
    }
}

/// Registers one account with `password` over `conn` (which is replaced
/// if it has to reconnect); an answer other than 200 is an error.
async fn register_one(
    server: SocketAddr,
    conn: &mut HttpConn,
    password: String,
) -> std::io::Result<Credentials> {
    let body = format!(r#"{{"password":"{password}","registrationId":{REGISTRATION_ID}}}"#);
    match put_account(server, conn, body.as_bytes()).await? {
        (200, response) => {
            let json: serde_json::Value = serde_json::from_slice(&response).unwrap_or_default();
            let uuid = json["uuid"].as_str().unwrap_or_default().to_string();
            Ok(Credentials { uuid, password })
        }
        (status, _) => Err(std::io::Error::other(format!("registration answered {status}"))),
    }
}

/// `PUT /v1/accounts` with `body`: (status, response body). A reset
/// connection (e.g. right after a storm of closes) gets a fresh one in
/// `conn` and a bounded number of retries.
async fn put_account(
    server: SocketAddr,
    conn: &mut HttpConn,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut outcome = conn.request("PUT", "/v1/accounts", body).await;
    for _ in 0..REGISTRATION_RETRIES {
        if outcome.is_ok() {
            break;
        }
        monoio::time::sleep(std::time::Duration::from_millis(50)).await;
        outcome = match HttpConn::connect(server) {
            Ok(fresh) => {
                *conn = fresh;
                conn.request("PUT", "/v1/accounts", body).await
            }
            Err(error) => Err(error),
        };
    }
    outcome
}
