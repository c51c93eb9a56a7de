//! The account table of one shard and device credentials.
//!
//! Each shard holds, in memory, every account it owns (loaded from its
//! `s{n}_accounts` family at start and written through on change), so
//! authentication never touches the disk. The table is `!Send` by use: it
//! lives in the shard's state and only that thread reads or writes it.
//!
//! Passwords are device secrets: only `SHA-256(salt || password)` with a
//! random 16-byte salt is kept, and hashes are compared in constant time.
//! A failed login does the same work whether or not the account exists, so
//! the answer does not reveal which.

use crate::protocol::payloads::Registration;
use crate::store::accounts::{AccountRecord, DeviceRecord};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// A device that proved its password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuthedDevice {
    /// The account.
    pub account: Uuid,
    /// The device within it.
    pub device_id: u32,
}

/// Why a login failed. Deliberately one variant: the caller must not learn
/// whether the account, the device or the password was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid credentials")]
pub struct AuthError;

/// `SHA-256(salt || password)`.
pub fn hash_password(salt: &[u8; 16], password: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(password.as_bytes());
    hasher.finalize().into()
}

/// A fresh random salt.
pub fn new_salt() -> [u8; 16] {
    let mut salt = [0u8; 16];
    // The OS random source failing is not an operating condition we can serve through.
    getrandom::fill(&mut salt).expect("OS random source");
    salt
}

/// Builds the record of device `id` with a fresh salt.
pub fn new_device_record(registration: &Registration, id: u32, now_ms: u64) -> DeviceRecord {
    let salt = new_salt();
    DeviceRecord {
        id,
        registration_id: registration.registration_id,
        name: registration.name.clone(),
        salt,
        password_hash: hash_password(&salt, &registration.password),
        created_ms: now_ms,
        push: None,
    }
}

/// Builds the record of a new account with its primary device (id 1).
pub fn new_account_record(registration: &Registration, now_ms: u64) -> AccountRecord {
    AccountRecord {
        devices: vec![new_device_record(registration, 1, now_ms)],
        unidentified_access_key: registration.unidentified_access_key,
        unrestricted_unidentified_access: registration.unrestricted_unidentified_access,
        created_ms: now_ms,
        discoverable: None,
    }
}

/// Every account one shard owns.
#[derive(Default)]
pub struct AccountTable {
    accounts: HashMap<Uuid, AccountRecord>,
    /// Last successful authentication per device, ms since the epoch. Kept in
    /// memory only: persisting it on every connect would cost a write each.
    last_seen_ms: HashMap<(Uuid, u32), u64>,
}

impl AccountTable {
    /// A table holding `accounts`.
    pub fn from_records(accounts: Vec<(Uuid, AccountRecord)>) -> Self {
        Self { accounts: accounts.into_iter().collect(), last_seen_ms: HashMap::new() }
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// True when there are no accounts.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// The account `uuid`, if this shard has it.
    pub fn get(&self, uuid: &Uuid) -> Option<&AccountRecord> {
        self.accounts.get(uuid)
    }

    /// Forgets when `device_id` of `account` was last seen (it was removed).
    pub fn forget_device(&mut self, account: &Uuid, device_id: u32) {
        self.last_seen_ms.remove(&(*account, device_id));
    }

    /// Adds (or replaces) an account whose record is already durable.
    pub fn insert(&mut self, uuid: Uuid, record: AccountRecord) {
        self.accounts.insert(uuid, record);
    }

    /// Keeps only the accounts `keep` says yes to (a partition moved away).
    pub fn retain(&mut self, keep: impl Fn(&Uuid) -> bool) {
        self.accounts.retain(|uuid, _| keep(uuid));
        self.last_seen_ms.retain(|(uuid, _), _| keep(uuid));
    }

    /// When the device last authenticated (its creation time if never).
    pub fn last_seen_ms(&self, account: &Uuid, device: &DeviceRecord) -> u64 {
        self.last_seen_ms.get(&(*account, device.id)).copied().unwrap_or(device.created_ms)
    }

    /// Checks a device's password; on success records `now_ms` as last seen.
    pub fn authenticate(
        &mut self,
        account: &Uuid,
        device_id: u32,
        password: &str,
        now_ms: u64,
    ) -> Result<AuthedDevice, AuthError> {
        let device = self
            .accounts
            .get(account)
            .and_then(|record| record.devices.iter().find(|device| device.id == device_id));
        let Some(device) = device else {
            // Same work as a real check, so timing does not tell the account exists.
            let _ = hash_password(&[0u8; 16], password).ct_eq(&[0u8; 32]);
            return Err(AuthError);
        };
        let hash = hash_password(&device.salt, password);
        if bool::from(hash.ct_eq(&device.password_hash)) {
            self.last_seen_ms.insert((*account, device_id), now_ms);
            Ok(AuthedDevice { account: *account, device_id })
        } else {
            Err(AuthError)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(password: &str) -> Registration {
        Registration {
            password: password.into(),
            registration_id: 7,
            unidentified_access_key: None,
            unrestricted_unidentified_access: false,
            name: None,
        }
    }

    #[test]
    fn right_password_authenticates_and_wrong_does_not() {
        let uuid = Uuid::new_v4();
        let mut table = AccountTable::default();
        table.insert(uuid, new_account_record(&registration("secret"), 10));
        assert_eq!(
            table.authenticate(&uuid, 1, "secret", 20),
            Ok(AuthedDevice { account: uuid, device_id: 1 })
        );
        assert_eq!(table.authenticate(&uuid, 1, "Secret", 20), Err(AuthError));
        assert_eq!(table.authenticate(&uuid, 2, "secret", 20), Err(AuthError));
        assert_eq!(table.authenticate(&Uuid::new_v4(), 1, "secret", 20), Err(AuthError));
        let device = &table.get(&uuid).unwrap().devices[0];
        assert_eq!(table.last_seen_ms(&uuid, device), 20);
    }

    #[test]
    fn salts_differ_so_equal_passwords_hash_differently() {
        let a = new_account_record(&registration("same"), 0);
        let b = new_account_record(&registration("same"), 0);
        assert_ne!(a.devices[0].password_hash, b.devices[0].password_hash);
    }
}
