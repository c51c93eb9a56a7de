//! The `day` scenario's population, registered for real: accounts with
//! sealed-sender access keys, a linked second device for a share of them
//! (through the server's link-code flow), and APNs tokens on a share of
//! primary devices. Which account is linked, which device is away and
//! which has a token are drawn from the seed, so one seed registers the
//! same shape twice (the UUIDs are the server's).

use super::model::{Rng, Traffic};
use crate::accounts::REGISTRATION_ID;
use crate::client::HttpConn;
use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use switchboard::protocol::base64;

/// Registrations in flight at once (one keep-alive connection each).
const REGISTRATION_CONCURRENCY: usize = 32;

/// One account of the population.
#[derive(Debug, Clone)]
pub struct Account {
    /// The server's UUID for it.
    pub uuid: String,
    /// Base64 of its 16-byte unidentified-access key (sealed sends to it).
    pub access_key_b64: String,
    /// It has a linked device 2 besides its primary.
    pub linked: bool,
}

/// One device of the population.
#[derive(Debug, Clone)]
pub struct Device {
    /// Index of its account in [`Population::accounts`].
    pub account: u32,
    /// 1 for the primary, 2 for the linked device.
    pub device_id: u32,
    /// Its password.
    pub password: String,
    /// Away all day: never connects during the run.
    pub away: bool,
    /// Registered an APNs token (primary devices only).
    pub token: bool,
}

/// Every account and device, in account order (a linked device follows
/// its primary).
#[derive(Debug, Default)]
pub struct Population {
    pub accounts: Vec<Account>,
    pub devices: Vec<Device>,
}

impl Population {
    /// The WebSocket login of `device` (`uuid` for a primary, `uuid.2` for
    /// a linked device).
    pub fn login(&self, device: &Device) -> String {
        let uuid = &self.accounts[device.account as usize].uuid;
        match device.device_id {
            1 => uuid.clone(),
            id => format!("{uuid}.{id}"),
        }
    }

    /// The device ids of account `account` (1, or 1 and 2).
    pub fn device_ids(&self, account: u32) -> &'static [u32] {
        match self.accounts[account as usize].linked {
            true => &[1, 2],
            false => &[1],
        }
    }
}

/// One registered account and its devices, by account index (`None`
/// until registered).
type Slots = RefCell<Vec<Option<(Account, Vec<Device>)>>>;

/// What the seed decides for account `index` before it is registered.
struct Plan {
    linked: bool,
    access_key: [u8; 16],
    away: [bool; 2],
    token: bool,
}

/// Draws account `index`'s shape from the seed.
fn plan(traffic: &Traffic, seed: u64, index: u64) -> Plan {
    let mut rng = Rng::new(seed ^ 0x5EED_ACC0, index);
    let linked = index < traffic.linked_accounts();
    let mut access_key = [0u8; 16];
    access_key[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    access_key[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
    let away = [rng.chance(traffic.away_share), rng.chance(traffic.away_share)];
    Plan { linked, access_key, away, token: rng.chance(traffic.push_share) }
}

/// Registers the population `traffic` describes on `server`, with a
/// progress line; the first failure ends it.
pub async fn register(server: SocketAddr, traffic: &Traffic, seed: u64) -> io::Result<Population> {
    let accounts = traffic.accounts as usize;
    let slots: Rc<Slots> = Rc::new(RefCell::new(vec![None; accounts]));
    let failed = Rc::new(RefCell::new(None));
    let mut tasks = Vec::new();
    for task in 0..REGISTRATION_CONCURRENCY.min(accounts) {
        let (slots, failed, traffic) = (slots.clone(), failed.clone(), traffic.clone());
        tasks.push(monoio::spawn(async move {
            let result = register_share(server, &traffic, seed, task, &slots).await;
            if let Err(error) = result {
                failed.borrow_mut().get_or_insert(error);
            }
        }));
    }
    let progress = crate::report::Progress::new("day: registering", accounts as u64);
    let watcher = monoio::spawn(watch(progress, slots.clone()));
    for task in tasks {
        task.await;
    }
    drop(watcher);
    eprintln!();
    if let Some(error) = failed.borrow_mut().take() {
        return Err(error);
    }
    let mut population = Population::default();
    for slot in slots.borrow_mut().drain(..) {
        let (account, devices) = slot.ok_or_else(|| io::Error::other("an account is missing"))?;
        population.accounts.push(account);
        population.devices.extend(devices);
    }
    Ok(population)
}

/// Shows the registered accounts every 250 ms.
async fn watch(mut progress: crate::report::Progress, slots: Rc<Slots>) {
    loop {
        progress.set(slots.borrow().iter().filter(|slot| slot.is_some()).count() as u64);
        monoio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Task `task`'s accounts (every index that is `task` modulo the
/// concurrency), over one keep-alive connection.
async fn register_share(
    server: SocketAddr,
    traffic: &Traffic,
    seed: u64,
    task: usize,
    slots: &Slots,
) -> io::Result<()> {
    let mut conn = HttpConn::connect(server)?;
    let accounts = slots.borrow().len();
    for index in (task..accounts).step_by(REGISTRATION_CONCURRENCY) {
        let plan = plan(traffic, seed, index as u64);
        let registered = register_account(&mut conn, index, &plan).await?;
        slots.borrow_mut()[index] = Some(registered);
    }
    Ok(())
}

/// Registers account `index` per its `plan`: the account, its linked
/// device, its primary's token.
async fn register_account(
    conn: &mut HttpConn,
    index: usize,
    plan: &Plan,
) -> io::Result<(Account, Vec<Device>)> {
    let password = format!("day{index}p");
    let access_key_b64 = base64::encode(&plan.access_key);
    let body = format!(
        r#"{{"password":"{password}","registrationId":{REGISTRATION_ID},"unidentifiedAccessKey":"{access_key_b64}"}}"#
    );
    let response = expect(conn.request("PUT", "/v1/accounts", body.as_bytes()).await?, 200)?;
    let json: serde_json::Value = serde_json::from_slice(&response).map_err(io::Error::other)?;
    let uuid = json["uuid"].as_str().ok_or_else(|| io::Error::other("no uuid"))?.to_string();
    let login = Some((uuid.as_str(), password.as_str()));
    let account = index as u32;
    let mut devices = vec![Device {
        account,
        device_id: 1,
        password: password.clone(),
        away: plan.away[0],
        token: plan.token,
    }];
    if plan.token {
        let token = format!(r#"{{"apnRegistrationId":"{index:064x}"}}"#);
        expect(conn.request_as("PUT", "/v1/accounts/apn", login, token.as_bytes()).await?, 204)?;
    }
    if plan.linked {
        let code = expect(
            conn.request_as("GET", "/v1/devices/provisioning/code", login, b"").await?,
            200,
        )?;
        let code: serde_json::Value = serde_json::from_slice(&code).map_err(io::Error::other)?;
        let linked_password = format!("day{index}l");
        let body = serde_json::json!({
            "verificationCode": code["verificationCode"], "password": linked_password,
            "registrationId": REGISTRATION_ID, "name": "desktop",
        });
        let body = serde_json::to_vec(&body).map_err(io::Error::other)?;
        let linked = expect(conn.request("PUT", "/v1/devices/link", &body).await?, 200)?;
        let linked: serde_json::Value =
            serde_json::from_slice(&linked).map_err(io::Error::other)?;
        if linked["deviceId"].as_u64() != Some(2) {
            return Err(io::Error::other(format!("linked device got id {}", linked["deviceId"])));
        }
        devices.push(Device {
            account,
            device_id: 2,
            password: linked_password,
            away: plan.away[1],
            token: false,
        });
    }
    Ok((Account { uuid, access_key_b64, linked: plan.linked }, devices))
}

/// The body of an answer with status `wanted`; another status is an error.
fn expect((status, body): (u16, Vec<u8>), wanted: u16) -> io::Result<Vec<u8>> {
    match status == wanted {
        true => Ok(body),
        false => Err(io::Error::other(format!(
            "registration step answered {status}: {}",
            String::from_utf8_lossy(&body)
        ))),
    }
}
