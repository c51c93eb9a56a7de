//! The stored form of an account: key = the account UUID's 16 bytes in
//! `s{n}_accounts`, value = JSON of [`AccountRecord`].
//!
//! Invariant: a record decoded here has at least one device and device ids
//! unique within the account; anything else is [`StoreError::Corrupt`].

use crate::store::{accounts_family, Store, StoreError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One device's credentials and registration data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Device id, 1 for the primary.
    pub id: u32,
    /// The device's registration id (checked by senders in a later issue).
    pub registration_id: u32,
    /// The device's name, if it gave one.
    pub name: Option<String>,
    /// Random salt of the password hash.
    pub salt: [u8; 16],
    /// SHA-256 of salt then password.
    pub password_hash: [u8; 32],
    /// Registration time, ms since the epoch.
    pub created_ms: u64,
    /// The device's push channel, if it registered one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushToken>,
}

/// Which provider a push token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushProvider {
    /// Apple (APNs).
    Apn,
    /// Google (FCM).
    Fcm,
}

/// A device's push token (a device has at most one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushToken {
    /// The provider.
    pub provider: PushProvider,
    /// The token the provider gave the device.
    pub token: String,
    /// When it was registered, ms since the epoch (a later invalidation
    /// from the provider removes it, an earlier one does not).
    pub registered_ms: u64,
}

/// One account as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// Devices, primary first.
    pub devices: Vec<DeviceRecord>,
    /// Key a sealed-sender sender must present.
    pub unidentified_access_key: Option<[u8; 16]>,
    /// Anyone may send sealed-sender messages.
    pub unrestricted_unidentified_access: bool,
    /// Registration time, ms since the epoch.
    pub created_ms: u64,
    /// The identifier hash the account is discoverable by (contact discovery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discoverable: Option<crate::store::directory::IdentifierHash>,
}

impl AccountRecord {
    /// Encodes the record for storage.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("account record encodes")
    }

    /// Decodes and checks a stored record.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let record: Self = serde_json::from_slice(bytes).map_err(|error| error.to_string())?;
        if record.devices.is_empty() {
            return Err("account has no devices".into());
        }
        let mut ids: Vec<u32> = record.devices.iter().map(|device| device.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != record.devices.len() {
            return Err("duplicate device id".into());
        }
        Ok(record)
    }
}

/// Every account of shard `shard`, read at start-up.
pub fn load(store: &Store, shard: usize) -> Result<Vec<(Uuid, AccountRecord)>, StoreError> {
    let family = accounts_family(shard);
    let db = store.db();
    let cf = store.family(&family)?;
    let mut accounts = Vec::new();
    for item in db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
        let (key, value) = item?;
        let corrupt = |reason: String| StoreError::Corrupt { family: family.clone(), reason };
        let uuid = Uuid::from_slice(&key).map_err(|_| corrupt("key is not a UUID".into()))?;
        let record = AccountRecord::decode(&value).map_err(corrupt)?;
        accounts.push((uuid, record));
    }
    Ok(accounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: u32) -> DeviceRecord {
        DeviceRecord {
            id,
            registration_id: 5,
            name: None,
            salt: [1; 16],
            password_hash: [2; 32],
            created_ms: 3,
            push: (id == 2).then(|| PushToken {
                provider: PushProvider::Fcm,
                token: "t".into(),
                registered_ms: 9,
            }),
        }
    }

    #[test]
    fn record_round_trips() {
        let record = AccountRecord {
            devices: vec![device(1), device(2)],
            unidentified_access_key: Some([9; 16]),
            unrestricted_unidentified_access: false,
            created_ms: 4,
            discoverable: Some([7; 10]),
        };
        assert_eq!(AccountRecord::decode(&record.encode()).unwrap(), record);
    }

    #[test]
    fn corrupt_records_are_refused() {
        let mut record = AccountRecord {
            devices: vec![],
            unidentified_access_key: None,
            unrestricted_unidentified_access: false,
            created_ms: 0,
            discoverable: None,
        };
        assert!(AccountRecord::decode(&record.encode()).is_err());
        record.devices = vec![device(1), device(1)];
        assert!(AccountRecord::decode(&record.encode()).is_err());
        assert!(AccountRecord::decode(b"\x00garbage").is_err());
    }
}
