//! Why an owner-side account operation refused: typed outcomes that cross
//! shards on the rings and are turned into status codes in one place
//! (`http::refusal`), never here.

use crate::store::StoreError;

/// Why `PUT /v1/accounts` did not create the account.
#[derive(Debug, thiserror::Error)]
pub enum CreateRefused {
    /// The random id collided with an existing account.
    #[error("account exists")]
    Exists,
    /// The account record could not be made durable.
    #[error("storage unavailable: {0}")]
    Storage(StoreError),
}

/// Why a link code was not issued or a device was not linked.
#[derive(Debug, thiserror::Error)]
pub enum LinkRefused {
    /// Only the primary device (id 1) may issue link codes.
    #[error("only the primary device can link devices")]
    NotPrimary,
    /// The code is unknown, expired, already used, or for no account.
    #[error("invalid verification code")]
    InvalidCode,
    /// Another change to the account is being written; the client retries.
    #[error("the account is being changed; retry")]
    Busy,
    /// The account already has `devices_per_account_max` devices.
    #[error("too many devices on this account")]
    TooManyDevices,
    /// The new record could not be made durable.
    #[error("storage unavailable: {0}")]
    Storage(StoreError),
}

/// Why a device was not removed.
#[derive(Debug, thiserror::Error)]
pub enum UnlinkRefused {
    /// Only the primary device, or the device itself, may remove a device.
    #[error("only the primary device or the device itself can remove a device")]
    NotAllowed,
    /// The primary device (id 1) cannot be removed.
    #[error("the primary device cannot be removed")]
    Primary,
    /// The account has no such device.
    #[error("no such device")]
    NoSuchDevice,
    /// Another change to the account is being written; the client retries.
    #[error("the account is being changed; retry")]
    Busy,
    /// The change could not be made durable.
    #[error("storage unavailable: {0}")]
    Storage(StoreError),
}

/// Why a send was refused as a whole (nothing of it was stored).
#[derive(Debug, thiserror::Error)]
pub enum SendRefused {
    /// No account has the destination id.
    #[error("no such account")]
    UnknownAccount,
    /// Neither an authenticated sender nor a matching access key.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The request did not name exactly the destination's devices.
    #[error("devices do not match")]
    MismatchedDevices {
        /// Devices the account has that the request did not name (ascending).
        missing: Vec<u32>,
        /// Devices the request named that the account does not have (ascending).
        extra: Vec<u32>,
    },
    /// Registration ids that no longer match (ascending device ids).
    #[error("stale devices")]
    StaleDevices {
        /// The devices whose registration id differs.
        stale: Vec<u32>,
    },
    /// The envelopes could not be made durable.
    #[error("storage unavailable: {0}")]
    Storage(StoreError),
}

/// Why a typing indicator, receipt or story was not taken for an account.
#[derive(Debug, thiserror::Error)]
pub enum FanoutRefused {
    /// No account has the destination id.
    #[error("no such account")]
    UnknownAccount,
    /// The items could not be made durable.
    #[error("storage unavailable: {0}")]
    Storage(StoreError),
}

/// Why a provisioning message was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionRefused {
    /// No socket waits at the address (gone, timed out, used, or never
    /// existed), or it went away before accepting the message.
    #[error("no provisioning socket at this address")]
    NoSuchAddress,
}

/// Why a device's push token was not changed.
#[derive(Debug, thiserror::Error)]
pub enum TokenRefused {
    /// The device is gone (unlinked meanwhile).
    #[error("no such device")]
    NoSuchDevice,
    /// Another change to the account is being written; the client retries.
    #[error("the account is being changed; retry")]
    Busy,
    /// The record could not be made durable.
    #[error("storage unavailable: {0}")]
    Storage(StoreError),
}
