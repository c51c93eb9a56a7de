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
        tasks.push(monoio::spawn(async move {
            let mut conn = match HttpConn::connect(server) {
                Ok(conn) => conn,
                Err(error) => {
                    *failed.borrow_mut() = Some(error);
                    return;
                }
            };
            for index in 0..share {
                let password = format!("lg{task}x{index}");
                let body =
                    format!(r#"{{"password":"{password}","registrationId":{REGISTRATION_ID}}}"#);
                let mut outcome = conn.request("PUT", "/v1/accounts", body.as_bytes()).await;
                // A reset connection (e.g. right after a storm of closes) gets
                // a fresh one and a bounded number of retries.
                for _ in 0..REGISTRATION_RETRIES {
                    if outcome.is_ok() {
                        break;
                    }
                    monoio::time::sleep(std::time::Duration::from_millis(50)).await;
                    outcome = match HttpConn::connect(server) {
                        Ok(fresh) => {
                            conn = fresh;
                            conn.request("PUT", "/v1/accounts", body.as_bytes()).await
                        }
                        Err(error) => Err(error),
                    };
                }
                match outcome {
                    Ok((200, response)) => {
                        let json: serde_json::Value =
                            serde_json::from_slice(&response).unwrap_or_default();
                        let uuid = json["uuid"].as_str().unwrap_or_default().to_string();
                        done.borrow_mut().push(Credentials { uuid, password });
                    }
                    Ok((status, _)) => {
                        *failed.borrow_mut() =
                            Some(std::io::Error::other(format!("registration answered {status}")));
                        return;
                    }
                    Err(error) => {
                        *failed.borrow_mut() = Some(error);
                        return;
                    }
                }
            }
        }));
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
