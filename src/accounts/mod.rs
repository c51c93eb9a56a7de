//! Accounts: the shard's account table, device credentials, link codes, and
//! the owner-side operations on them (create an account, link a device,
//! judge a send against the destination's devices).
//!
//! - [`table`]: the in-memory table of the accounts this shard owns, and
//!   password hashing.
//! - [`link_codes`]: pending single-use device-link codes.
//! - [`send_check`]: whether a send names exactly the destination's devices.
//! - [`push_tokens`]: registering, clearing and retiring devices' push tokens.
//! - [`refusal`]: the typed outcomes of these operations.
//!
//! Owns: [`Accounts`], the shard's account component. Its invariants are kept
//! by its methods, not by callers: a record is visible to logins only once it
//! is durable; changes to one account are written one at a time (a second
//! concurrent change is refused as [`LinkRefused::Busy`] rather than racing
//! for the same device id); a link code is consumed before its write, so a
//! second use fails even while the first is in flight.
//!
//! Imports: `clock`, `config`, `protocol`, `metrics`, `store` only.

pub mod link_codes;
pub mod push_tokens;
pub mod refusal;
pub mod send_check;
pub mod table;

pub use refusal::{
    CreateRefused, FanoutRefused, LinkRefused, ProvisionRefused, SendRefused, TokenRefused,
    UnlinkRefused,
};
pub use table::{
    hash_password, new_account_record, new_device_record, new_salt, AccountTable, AuthError,
    AuthedDevice,
};

use crate::metrics::ShardMetrics;
use crate::protocol::envelope::Send;
use crate::protocol::payloads::{DeviceInfo, Registration};
use crate::store::accounts::AccountRecord;
use crate::store::commit::Writer;
use crate::store::directory::IdentifierHash;
use crate::store::writer::{Family, Op};
use crate::store::StoreError;
use link_codes::LinkCodes;
use std::cell::RefCell;
use std::collections::HashSet;
use uuid::Uuid;

/// The accounts one shard owns and the changes in flight to them.
#[derive(Default)]
pub struct Accounts {
    table: RefCell<AccountTable>,
    link_codes: RefCell<LinkCodes>,
    /// Accounts with a record write in flight (see [`ChangeGuard`]).
    changing: RefCell<HashSet<Uuid>>,
}

/// Holds one account's "change in flight" mark until dropped: proof, for a
/// change made of several steps, that no other change runs meanwhile.
pub struct ChangeGuard<'a> {
    changing: &'a RefCell<HashSet<Uuid>>,
    account: Uuid,
}

impl Drop for ChangeGuard<'_> {
    fn drop(&mut self) {
        self.changing.borrow_mut().remove(&self.account);
    }
}

impl Accounts {
    /// The component over an already loaded table.
    pub fn new(table: AccountTable) -> Self {
        Self { table: RefCell::new(table), ..Self::default() }
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.table.borrow().len()
    }

    /// Adds accounts whose records are already durable (a partition moved
    /// in); an account already present is replaced.
    pub fn insert_loaded(&self, records: Vec<(Uuid, AccountRecord)>) {
        let mut table = self.table.borrow_mut();
        records.into_iter().for_each(|(uuid, record)| table.insert(uuid, record));
    }

    /// Keeps only the accounts `keep` says yes to (a partition moved away).
    pub fn retain(&self, keep: impl Fn(&Uuid) -> bool) {
        self.table.borrow_mut().retain(keep);
    }

    /// True when the shard owns no account.
    pub fn is_empty(&self) -> bool {
        self.table.borrow().is_empty()
    }

    /// Checks a device's password; on success records `now_ms` as last seen.
    pub fn authenticate(
        &self,
        account: &Uuid,
        device_id: u32,
        password: &str,
        now_ms: u64,
    ) -> Result<AuthedDevice, AuthError> {
        self.table.borrow_mut().authenticate(account, device_id, password, now_ms)
    }

    /// The devices of `account`, or `None` when it does not exist.
    pub fn device_list(&self, account: &Uuid) -> Option<Vec<DeviceInfo>> {
        let table = self.table.borrow();
        let record = table.get(account)?;
        let devices = record
            .devices
            .iter()
            .map(|device| DeviceInfo {
                id: device.id,
                name: device.name.clone(),
                created: device.created_ms,
                last_seen: table.last_seen_ms(account, device),
            })
            .collect();
        Some(devices)
    }

    /// The device ids of `account`, or `None` when it does not exist.
    pub fn device_ids(&self, account: &Uuid) -> Option<Vec<u32>> {
        let table = self.table.borrow();
        Some(table.get(account)?.devices.iter().map(|device| device.id).collect())
    }

    /// True when `account` has more than one device (Signal's `needsSync`).
    pub fn has_linked_devices(&self, account: &Uuid) -> bool {
        self.table.borrow().get(account).is_some_and(|record| record.devices.len() > 1)
    }

    /// Judges a send against `destination`'s devices (see [`send_check`]).
    pub fn check_send(
        &self,
        destination: &Uuid,
        sender: Option<AuthedDevice>,
        access_key: Option<&[u8]>,
        send: &Send,
    ) -> Result<(), SendRefused> {
        let table = self.table.borrow();
        let account = table.get(destination).ok_or(SendRefused::UnknownAccount)?;
        send_check::check_send(account, destination, sender, access_key, send)
    }

    /// Creates account `uuid` with its primary device: durable first, then
    /// visible to logins.
    pub async fn create(
        &self,
        writer: &Writer,
        stats: &ShardMetrics,
        uuid: Uuid,
        registration: &Registration,
        now_ms: u64,
    ) -> Result<(), CreateRefused> {
        if self.table.borrow().get(&uuid).is_some() {
            return Err(CreateRefused::Exists);
        }
        let record = new_account_record(registration, now_ms);
        writer.write(vec![record_op(&uuid, &record)]).await.map_err(CreateRefused::Storage)?;
        self.table.borrow_mut().insert(uuid, record);
        ShardMetrics::inc(&stats.accounts);
        Ok(())
    }

    /// Issues a single-use link code to the caller's account (primary only).
    pub fn issue_link_code(
        &self,
        caller: AuthedDevice,
        now_ms: u64,
    ) -> Result<String, LinkRefused> {
        if caller.device_id != 1 {
            return Err(LinkRefused::NotPrimary);
        }
        Ok(self.link_codes.borrow_mut().issue(caller.account, now_ms))
    }

    /// Adds a device to `account` if `code` is its live link code; returns
    /// the new device's id (the next after the highest).
    pub async fn link(
        &self,
        writer: &Writer,
        account: Uuid,
        code: &str,
        registration: &Registration,
        devices_max: usize,
        now_ms: u64,
    ) -> Result<u32, LinkRefused> {
        if !self.link_codes.borrow().is_valid(&account, code, now_ms) {
            return Err(LinkRefused::InvalidCode);
        }
        let Some(mut record) = self.table.borrow().get(&account).cloned() else {
            return Err(LinkRefused::InvalidCode);
        };
        let _change = self.begin_change(account)?;
        if record.devices.len() >= devices_max {
            return Err(LinkRefused::TooManyDevices);
        }
        let device_id = record.devices.iter().map(|device| device.id).max().unwrap_or(0) + 1;
        record.devices.push(new_device_record(registration, device_id, now_ms));
        // Consumed before the write: a concurrent second use must fail.
        self.link_codes.borrow_mut().consume(&account);
        writer.write(vec![record_op(&account, &record)]).await.map_err(LinkRefused::Storage)?;
        self.table.borrow_mut().insert(account, record);
        Ok(device_id)
    }

    /// Removes `device` from its account (`caller` is its primary or the
    /// device itself), writing `extra_ops` (the device's queue deletes) in
    /// the same atomic batch: durable first, then gone from logins.
    pub async fn remove_device(
        &self,
        writer: &Writer,
        caller: AuthedDevice,
        device: AuthedDevice,
        extra_ops: Vec<Op>,
    ) -> Result<(), UnlinkRefused> {
        may_remove(caller, device)?;
        let Some(mut record) = self.table.borrow().get(&device.account).cloned() else {
            return Err(UnlinkRefused::NoSuchDevice);
        };
        let devices_before = record.devices.len();
        record.devices.retain(|known| known.id != device.device_id);
        if record.devices.len() == devices_before {
            return Err(UnlinkRefused::NoSuchDevice);
        }
        let _change = self.begin_change(device.account).map_err(|_| UnlinkRefused::Busy)?;
        let mut ops = extra_ops;
        ops.push(record_op(&device.account, &record));
        writer.write(ops).await.map_err(UnlinkRefused::Storage)?;
        let mut table = self.table.borrow_mut();
        table.insert(device.account, record);
        table.forget_device(&device.account, device.device_id);
        Ok(())
    }

    /// The identifier hash `account` is discoverable by: `None` when the
    /// account does not exist, `Some(None)` when it is not discoverable.
    pub fn discoverable(&self, account: &Uuid) -> Option<Option<IdentifierHash>> {
        Some(self.table.borrow().get(account)?.discoverable)
    }

    /// Records `hash` as the identifier hash `account` is discoverable by
    /// (durable first), under the caller's [`ChangeGuard`] for `account`.
    pub async fn set_discoverable(
        &self,
        writer: &Writer,
        change: &ChangeGuard<'_>,
        hash: Option<IdentifierHash>,
    ) -> Result<(), StoreError> {
        let account = change.account;
        let Some(mut record) = self.table.borrow().get(&account).cloned() else {
            return Ok(());
        };
        record.discoverable = hash;
        writer.write(vec![record_op(&account, &record)]).await?;
        self.table.borrow_mut().insert(account, record);
        Ok(())
    }

    /// Marks `account` as changing for a change of several steps; `None`
    /// while another change is in flight.
    pub fn try_change(&self, account: Uuid) -> Option<ChangeGuard<'_>> {
        self.begin_change(account).ok()
    }

    /// Marks `account` as changing; refused while another change is in flight.
    fn begin_change(&self, account: Uuid) -> Result<ChangeGuard<'_>, LinkRefused> {
        if !self.changing.borrow_mut().insert(account) {
            return Err(LinkRefused::Busy);
        }
        Ok(ChangeGuard { changing: &self.changing, account })
    }
}

/// Whether `caller` may remove `device`: the account's primary or the device
/// itself may, and the primary device (id 1) is never removed.
pub fn may_remove(caller: AuthedDevice, device: AuthedDevice) -> Result<(), UnlinkRefused> {
    if caller.account != device.account
        || (caller.device_id != 1 && caller.device_id != device.device_id)
    {
        return Err(UnlinkRefused::NotAllowed);
    }
    if device.device_id == 1 {
        return Err(UnlinkRefused::Primary);
    }
    Ok(())
}

/// The write that stores `record` as `account`'s.
pub(crate) fn record_op(account: &Uuid, record: &AccountRecord) -> Op {
    Op::Put { family: Family::Accounts, key: account.as_bytes().to_vec(), value: record.encode() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_guard_refuses_a_second_change_until_dropped() {
        let accounts = Accounts::default();
        let account = Uuid::new_v4();
        let first = accounts.begin_change(account).expect("first change");
        assert!(matches!(accounts.begin_change(account), Err(LinkRefused::Busy)));
        assert!(accounts.begin_change(Uuid::new_v4()).is_ok(), "other accounts are free");
        drop(first);
        assert!(accounts.begin_change(account).is_ok());
    }

    #[test]
    fn only_the_primary_device_gets_a_link_code() {
        let accounts = Accounts::default();
        let account = Uuid::new_v4();
        let secondary = AuthedDevice { account, device_id: 2 };
        assert!(matches!(accounts.issue_link_code(secondary, 0), Err(LinkRefused::NotPrimary)));
        let code = accounts.issue_link_code(AuthedDevice { account, device_id: 1 }, 0).unwrap();
        assert_eq!(LinkCodes::account_of(&code), Some(account));
    }
}
