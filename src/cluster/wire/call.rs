//! [`Call`] to and from its frame, one arm per variant in both directions.

use super::field::{self, uuid, uuid_bytes};
use super::format::WireError;
use super::frames::{self, CallKind};
use super::payload;
use crate::protocol::discovery::{IdentifierHash, HASH_BYTES};
use crate::protocol::push::{ApnRegistration, GcmRegistration};
use crate::shard::msg::Call;
use crate::store::accounts::PushProvider;

/// Push providers by code (position + 1).
const PROVIDERS: [PushProvider; 2] = [PushProvider::Apn, PushProvider::Fcm];

/// The longest link code `PUT /v1/devices/link` accepts, in bytes.
const LINK_CODE_BYTES_MAX: usize = 128;

/// The frame of `call` (copies what it carries).
pub(super) fn to_frame(call: &Call) -> CallKind {
    match call {
        Call::CreateAccount { uuid, registration } => {
            CallKind::CreateAccount(frames::CreateAccount {
                uuid: uuid_bytes(uuid),
                registration: Some(payload::registration_to_frame(registration)),
            })
        }
        Call::LinkDevice { account, code, registration } => {
            CallKind::LinkDevice(frames::LinkDevice {
                account: uuid_bytes(account),
                code: code.clone(),
                registration: Some(payload::registration_to_frame(registration)),
            })
        }
        Call::SendMessage { destination, sender, access_key, send } => {
            CallKind::SendMessage(frames::SendMessage {
                destination: uuid_bytes(destination),
                sender: sender.as_ref().map(payload::device_to_frame),
                access_key: access_key.clone(),
                send: Some(payload::send_to_frame(send)),
            })
        }
        Call::FanOut { destination, sender, item } => CallKind::FanOut(frames::FanOut {
            destination: uuid_bytes(destination),
            sender: Some(payload::device_to_frame(sender)),
            item: Some(payload::item_to_frame(item)),
        }),
        Call::Provision { address, body } => CallKind::Provision(frames::Provision {
            address: uuid_bytes(address),
            body: body.clone(),
        }),
        Call::ClaimHash { hash, account } => CallKind::ClaimHash(hash_change(hash, account)),
        Call::ReleaseHash { hash, account } => CallKind::ReleaseHash(hash_change(hash, account)),
        Call::FindHashes { hashes } => CallKind::FindHashes(hashes.concat()),
        Call::CreateVerification { id, provider, token } => {
            CallKind::CreateVerification(frames::CreateVerification {
                id: uuid_bytes(id),
                provider: provider_code(*provider),
                token: token.clone(),
            })
        }
        Call::AnswerVerification { id, challenge } => {
            CallKind::AnswerVerification(frames::AnswerVerification {
                id: uuid_bytes(id),
                challenge: challenge.clone(),
            })
        }
        Call::ConsumeVerification { id } => CallKind::ConsumeVerification(uuid_bytes(id)),
    }
}

/// The call of a decoded frame, checked.
pub(super) fn from_frame(kind: CallKind) -> Result<Call, WireError> {
    Ok(match kind {
        CallKind::CreateAccount(frame) => Call::CreateAccount {
            uuid: uuid("create_account.uuid", &frame.uuid)?,
            registration: payload::registration_from_frame(frame.registration)?,
        },
        CallKind::LinkDevice(frame) => {
            field::text_len("link_device.code", &frame.code, 1, LINK_CODE_BYTES_MAX)?;
            Call::LinkDevice {
                account: uuid("link_device.account", &frame.account)?,
                code: frame.code,
                registration: payload::registration_from_frame(frame.registration)?,
            }
        }
        CallKind::SendMessage(frame) => Call::SendMessage {
            destination: uuid("send_message.destination", &frame.destination)?,
            sender: frame.sender.map(payload::device_from_frame).transpose()?,
            access_key: frame.access_key,
            send: payload::send_from_frame(frame.send)?,
        },
        CallKind::FanOut(frame) => Call::FanOut {
            destination: uuid("fan_out.destination", &frame.destination)?,
            sender: payload::device_from_frame(field::required("fan_out.sender", frame.sender)?)?,
            item: payload::item_from_frame(frame.item)?,
        },
        CallKind::Provision(frame) => Call::Provision {
            address: uuid("provision.address", &frame.address)?,
            body: frame.body,
        },
        CallKind::ClaimHash(frame) => {
            let (hash, account) = hash_change_from(frame)?;
            Call::ClaimHash { hash, account }
        }
        CallKind::ReleaseHash(frame) => {
            let (hash, account) = hash_change_from(frame)?;
            Call::ReleaseHash { hash, account }
        }
        CallKind::FindHashes(bytes) => Call::FindHashes { hashes: hashes_from(&bytes)? },
        CallKind::CreateVerification(frame) => create_verification_from(frame)?,
        CallKind::AnswerVerification(frame) => Call::AnswerVerification {
            id: uuid("answer_verification.id", &frame.id)?,
            challenge: frame.challenge,
        },
        CallKind::ConsumeVerification(id) => {
            Call::ConsumeVerification { id: uuid("consume_verification.id", &id)? }
        }
    })
}

fn hash_change(hash: &IdentifierHash, account: &uuid::Uuid) -> frames::HashChange {
    frames::HashChange { hash: hash.to_vec(), account: uuid_bytes(account) }
}

fn hash_change_from(frame: frames::HashChange) -> Result<(IdentifierHash, uuid::Uuid), WireError> {
    Ok((field::fixed("hash", &frame.hash)?, uuid("hash.account", &frame.account)?))
}

/// The hashes of `FindHashes`: `bytes` cut in pieces of [`HASH_BYTES`].
fn hashes_from(bytes: &[u8]) -> Result<Vec<IdentifierHash>, WireError> {
    if !bytes.len().is_multiple_of(HASH_BYTES) {
        let reason = "not a whole number of hashes";
        return Err(WireError::Invalid { field: "find_hashes", reason });
    }
    let pieces = bytes.chunks_exact(HASH_BYTES);
    pieces.map(|piece| field::fixed("find_hashes", piece)).collect()
}

/// The code of `provider`: its position in [`PROVIDERS`] + 1.
fn provider_code(provider: PushProvider) -> u32 {
    match provider {
        PushProvider::Apn => 1,
        PushProvider::Fcm => 2,
    }
}

/// Checks the token as `POST /v1/verification/session` did for its provider.
fn create_verification_from(frame: frames::CreateVerification) -> Result<Call, WireError> {
    let id = uuid("create_verification.id", &frame.id)?;
    let provider = field::of_code("create_verification.provider", &PROVIDERS, frame.provider)?;
    let token = match provider {
        PushProvider::Apn => {
            ApnRegistration { apn_registration_id: frame.token, voip_registration_id: None }
                .validate()
        }
        PushProvider::Fcm => GcmRegistration { gcm_registration_id: frame.token }.validate(),
    };
    let invalid = |_| WireError::Invalid {
        field: "create_verification.token",
        reason: "not a token of its provider",
    };
    Ok(Call::CreateVerification { id, provider, token: token.map_err(invalid)? })
}
