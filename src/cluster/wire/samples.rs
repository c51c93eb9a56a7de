//! Realistic values of every [`Call`] and [`Outcome`] variant and of every
//! refusal they carry, for the wire's tests; and a seeded xorshift.

use super::Answer;
use crate::accounts::{
    AuthedDevice, CreateRefused, FanoutRefused, LinkRefused, ProvisionRefused, SendRefused,
};
use crate::directory::{identifier_hash, ClaimRefused};
use crate::protocol::base64;
use crate::protocol::envelope::{OutgoingMessage, Send};
use crate::protocol::items::{FanoutItem, Receipt, TypingEvent};
use crate::protocol::payloads::Registration;
use crate::push::challenge::ChallengeRefused;
use crate::push::verification::VerifyRefused;
use crate::shard::msg::{Call, Outcome};
use crate::store::accounts::PushProvider;
use crate::store::StoreError;
use uuid::Uuid;

/// xorshift64: the same sequence for the same seed, on every machine.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(super) fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    pub(super) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

pub(super) fn uuid(n: u8) -> Uuid {
    Uuid::from_bytes([n.wrapping_mul(37) ^ 0x5a; 16])
}

pub(super) fn registration(name: Option<&str>, key: bool) -> Registration {
    Registration {
        password: "correct horse battery staple".into(),
        registration_id: 0x3FFF,
        unidentified_access_key: key.then_some([9; 16]),
        unrestricted_unidentified_access: !key,
        name: name.map(str::to_owned),
    }
}

/// A send to devices `1..=devices` of `content_bytes` random bytes each.
pub(super) fn send(devices: u32, content_bytes: usize) -> Send {
    let mut rng = Rng(u64::from(devices) * 7919 + content_bytes as u64);
    let messages = (1..=devices).map(|device_id| OutgoingMessage {
        kind: [1, 3, 6, 7][device_id as usize % 4],
        device_id,
        registration_id: 1000 + device_id,
        content: base64::encode(&rng.bytes(content_bytes)),
    });
    Send { messages: messages.collect(), online: false, urgent: true, timestamp: 1_700_000_000_123 }
}

pub(super) fn sender(device_id: u32) -> AuthedDevice {
    AuthedDevice { account: uuid(2), device_id }
}

/// A typical send: an authenticated sender, one device, `content_bytes`.
pub(super) fn typical_send(content_bytes: usize) -> Call {
    let send = send(1, content_bytes);
    Call::SendMessage { destination: uuid(1), sender: Some(sender(1)), access_key: None, send }
}

fn fan_out(item: FanoutItem) -> Call {
    Call::FanOut { destination: uuid(3), sender: sender(127), item }
}

fn fanout_items() -> Vec<FanoutItem> {
    let typing = |action, group_id: Option<&str>| TypingEvent {
        action,
        timestamp: 1_700_000_000_000,
        group_id: group_id.map(str::to_owned),
    };
    vec![
        FanoutItem::Typing(typing("STARTED", Some("AAEC"))),
        FanoutItem::Typing(typing("STOPPED", None)),
        FanoutItem::Receipt(Receipt { kind: "DELIVERY", timestamps: vec![1, 2, u64::MAX] }),
        FanoutItem::Receipt(Receipt { kind: "READ", timestamps: vec![1_700_000_000_000] }),
        FanoutItem::Story { content: "c3Rvcnk".into(), timestamp: 5, allows_replies: true },
    ]
}

/// Every `Call` variant, several with each of their shapes.
pub(super) fn calls() -> Vec<Call> {
    let hashes = vec![identifier_hash("+15550001"), identifier_hash("+15550002")];
    let mut calls = vec![
        Call::CreateAccount { uuid: uuid(1), registration: registration(Some("phone"), true) },
        Call::CreateAccount { uuid: Uuid::nil(), registration: registration(None, false) },
        Call::LinkDevice {
            account: uuid(1),
            code: "123456".into(),
            registration: registration(Some(""), false),
        },
        typical_send(160),
        Call::SendMessage {
            destination: uuid(1),
            sender: None,
            access_key: Some(vec![7; 16]),
            send: send(5, 300),
        },
        Call::SendMessage {
            destination: uuid(4),
            sender: None,
            access_key: None,
            send: send(1, 0),
        },
        Call::Provision { address: uuid(5), body: vec![0, 1, 2, 255] },
        Call::Provision { address: uuid(5), body: Vec::new() },
        Call::ClaimHash { hash: hashes[0], account: uuid(6) },
        Call::ReleaseHash { hash: hashes[1], account: uuid(6) },
        Call::FindHashes { hashes },
        Call::FindHashes { hashes: Vec::new() },
        Call::CreateVerification { id: uuid(7), provider: PushProvider::Apn, token: "ab01".into() },
        Call::CreateVerification {
            id: uuid(7),
            provider: PushProvider::Fcm,
            token: "fcm:token-1_x.y".into(),
        },
        Call::AnswerVerification { id: uuid(8), challenge: "0123456789abcdef".into() },
        Call::AnswerVerification { id: uuid(8), challenge: String::new() },
        Call::ConsumeVerification { id: uuid(9) },
    ];
    calls.extend(fanout_items().into_iter().map(fan_out));
    calls
}

/// One of each `StoreError` variant the wire rebuilds exactly (not `Rocks`).
pub(super) fn store_errors() -> Vec<StoreError> {
    vec![
        StoreError::WriteFailed("IO error: No space left on device".into()),
        StoreError::ShardCountMismatch { dir: "/var/lib/sb".into(), stored: 4, wanted: 8 },
        StoreError::Corrupt { family: "s0_accounts".into(), reason: "bad json".into() },
        StoreError::DataDir { dir: "/ro".into(), source: std::io::Error::other("read-only") },
        StoreError::WriterBusy,
    ]
}

fn send_refusals() -> Vec<SendRefused> {
    let mut refusals = vec![
        SendRefused::UnknownAccount,
        SendRefused::Unauthorized("authentication required"),
        SendRefused::Unauthorized("unidentified access key does not match"),
        SendRefused::MismatchedDevices { missing: vec![1, 3], extra: vec![127] },
        SendRefused::MismatchedDevices { missing: Vec::new(), extra: vec![2] },
        SendRefused::StaleDevices { stale: vec![2, 5, 6] },
    ];
    refusals.extend(store_errors().into_iter().map(SendRefused::Storage));
    refusals
}

fn verify_refusals() -> Vec<VerifyRefused> {
    vec![
        VerifyRefused::NoSuchSession,
        VerifyRefused::Challenge(ChallengeRefused::Wrong),
        VerifyRefused::Challenge(ChallengeRefused::Expired),
        VerifyRefused::NotVerified,
        VerifyRefused::Full,
    ]
}

/// Every `Outcome` variant: `Ok` and every refusal of its type.
pub(super) fn outcomes() -> Vec<Outcome> {
    use Outcome::*;
    let mut outcomes = vec![AccountCreated(Ok(())), AccountCreated(Err(CreateRefused::Exists))];
    outcomes
        .extend(store_errors().into_iter().map(|e| AccountCreated(Err(CreateRefused::Storage(e)))));
    outcomes.extend([1, 2, 127].map(|device_id| DeviceLinked(Ok(device_id))));
    let links = [LinkRefused::NotPrimary, LinkRefused::InvalidCode, LinkRefused::Busy];
    outcomes.extend(links.into_iter().map(|refused| DeviceLinked(Err(refused))));
    outcomes.push(DeviceLinked(Err(LinkRefused::TooManyDevices)));
    outcomes.extend(store_errors().into_iter().map(|e| DeviceLinked(Err(LinkRefused::Storage(e)))));
    outcomes.push(MessageAccepted(Ok(())));
    outcomes.extend(send_refusals().into_iter().map(|refused| MessageAccepted(Err(refused))));
    outcomes.extend([FannedOut(Ok(())), FannedOut(Err(FanoutRefused::UnknownAccount))]);
    outcomes.extend(store_errors().into_iter().map(|e| FannedOut(Err(FanoutRefused::Storage(e)))));
    outcomes.extend([Provisioned(Ok(())), Provisioned(Err(ProvisionRefused::NoSuchAddress))]);
    for claimed in [HashClaimed as fn(_) -> Outcome, HashReleased] {
        outcomes.extend([claimed(Ok(())), claimed(Err(ClaimRefused::Taken))]);
        outcomes.push(claimed(Err(ClaimRefused::Busy)));
        outcomes.extend(store_errors().into_iter().map(|e| claimed(Err(ClaimRefused::Storage(e)))));
    }
    outcomes.push(HashesFound(vec![Some(uuid(1)), None, Some(Uuid::max()), None]));
    outcomes.push(HashesFound(Vec::new()));
    outcomes.push(Verification(Ok(())));
    outcomes.extend(verify_refusals().into_iter().map(|refused| Verification(Err(refused))));
    outcomes
}

/// Every answer: each outcome done, a wrong owner, unavailable.
pub(super) fn answers() -> Vec<Answer> {
    let mut answers: Vec<Answer> = outcomes().into_iter().map(Answer::Done).collect();
    answers.extend([Answer::WrongOwner { current_epoch: 1 }, Answer::Unavailable]);
    answers.push(Answer::WrongOwner { current_epoch: u64::MAX });
    answers
}

/// The position of `call`'s variant in `Call`: a new variant fails to
/// compile here until the samples (and the wire) know it.
pub(super) fn call_variant(call: &Call) -> usize {
    match call {
        Call::CreateAccount { .. } => 0,
        Call::LinkDevice { .. } => 1,
        Call::SendMessage { .. } => 2,
        Call::FanOut { .. } => 3,
        Call::Provision { .. } => 4,
        Call::ClaimHash { .. } => 5,
        Call::ReleaseHash { .. } => 6,
        Call::FindHashes { .. } => 7,
        Call::CreateVerification { .. } => 8,
        Call::AnswerVerification { .. } => 9,
        Call::ConsumeVerification { .. } => 10,
    }
}

/// The number of `Call` variants.
pub(super) const CALL_VARIANTS: usize = 11;

/// The position of `outcome`'s variant in `Outcome` (see [`call_variant`]).
pub(super) fn outcome_variant(outcome: &Outcome) -> usize {
    match outcome {
        Outcome::AccountCreated(_) => 0,
        Outcome::DeviceLinked(_) => 1,
        Outcome::MessageAccepted(_) => 2,
        Outcome::FannedOut(_) => 3,
        Outcome::Provisioned(_) => 4,
        Outcome::HashClaimed(_) => 5,
        Outcome::HashReleased(_) => 6,
        Outcome::HashesFound(_) => 7,
        Outcome::Verification(_) => 8,
    }
}

/// The number of `Outcome` variants.
pub(super) const OUTCOME_VARIANTS: usize = 9;
