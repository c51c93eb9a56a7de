//! Devices' push tokens: registering one (a device has one channel, so a
//! token of either kind replaces the other), clearing one, and retiring one
//! the provider reported dead.
//!
//! Invariants: like every account change, durable before visible and one
//! change per account at a time; a dead-token report removes a token only
//! if it is still the token that failed and was registered before the
//! provider invalidated it (a device that registered a fresh token since
//! keeps it).

use crate::accounts::{record_op, Accounts, AuthedDevice, TokenRefused};
use crate::store::accounts::{DeviceRecord, PushProvider, PushToken};
use crate::store::commit::Writer;

/// A change to a device's push token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushTokenChange {
    /// Register this token (replacing any token of either kind).
    Set(PushToken),
    /// Drop the token if it is of this provider.
    Clear(PushProvider),
}

impl Accounts {
    /// `device`'s push token, if it has one.
    pub fn push_token(&self, device: &AuthedDevice) -> Option<PushToken> {
        let table = self.table.borrow();
        let record = table.get(&device.account)?;
        record.devices.iter().find(|known| known.id == device.device_id)?.push.clone()
    }

    /// Sets (or with `None` clears) `device`'s push token, durable first. A
    /// device has one channel: a new token of either kind replaces the old.
    /// Clearing `provider`'s token leaves a token of the other kind alone.
    pub async fn set_push_token(
        &self,
        writer: &Writer,
        device: AuthedDevice,
        change: PushTokenChange,
    ) -> Result<(), TokenRefused> {
        self.change_device(writer, device, |known| match change {
            PushTokenChange::Set(token) => known.push = Some(token),
            PushTokenChange::Clear(provider) => {
                if known.push.as_ref().is_some_and(|push| push.provider == provider) {
                    known.push = None;
                }
            }
        })
        .await
    }

    /// Removes `device`'s token after the provider said it is dead, only if
    /// it is still `token` and was registered before `invalidated_ms`;
    /// true when it was removed.
    pub async fn remove_dead_push_token(
        &self,
        writer: &Writer,
        device: AuthedDevice,
        token: &str,
        invalidated_ms: u64,
    ) -> Result<bool, TokenRefused> {
        let still_dead = self
            .push_token(&device)
            .is_some_and(|push| push.token == token && push.registered_ms < invalidated_ms);
        if !still_dead {
            return Ok(false);
        }
        self.change_device(writer, device, |known| known.push = None).await?;
        Ok(true)
    }

    /// Applies `change` to `device`'s record: durable first, then visible.
    async fn change_device(
        &self,
        writer: &Writer,
        device: AuthedDevice,
        change: impl FnOnce(&mut DeviceRecord),
    ) -> Result<(), TokenRefused> {
        let Some(mut record) = self.table.borrow().get(&device.account).cloned() else {
            return Err(TokenRefused::NoSuchDevice);
        };
        let Some(known) = record.devices.iter_mut().find(|known| known.id == device.device_id)
        else {
            return Err(TokenRefused::NoSuchDevice);
        };
        change(known);
        let _change = self.begin_change(device.account).map_err(|_| TokenRefused::Busy)?;
        let op = record_op(&device.account, &record);
        writer.write(vec![op]).await.map_err(TokenRefused::Storage)?;
        self.table.borrow_mut().insert(device.account, record);
        Ok(())
    }
}
