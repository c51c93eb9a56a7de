//! Bulk registration of test accounts over keep-alive HTTP connections.

use crate::client::HttpConn;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

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

/// Registers `count` accounts with `concurrency` connections in parallel.
pub async fn register_many(
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
