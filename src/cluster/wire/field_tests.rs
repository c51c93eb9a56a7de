//! Well-formed protobuf with values the domain types do not allow: each is
//! refused with the typed error naming the field. The frames are built by
//! hand from valid ones, one field spoiled at a time.

use super::answer_frames::{AnswerFrame, AnswerKind, HashesFound, ResultFrame, StoreErrorFrame};
use super::frames::{self, CallFrame, CallKind};
use super::samples;
use super::*;
use crate::shard::msg::Call;

fn call_bytes(epoch: u64, request_id: Vec<u8>, call: Option<CallKind>) -> Vec<u8> {
    with_version(&CallFrame { epoch, request_id, call })
}

/// The error decoding `kind` as a call gives.
fn call_error(kind: CallKind) -> WireError {
    decode_call(&call_bytes(1, vec![0; 16], Some(kind))).expect_err("refused")
}

/// The error decoding `kind` as an answer gives.
fn answer_error(kind: AnswerKind) -> WireError {
    let frame = AnswerFrame { epoch: 1, request_id: vec![0; 16], answer: Some(kind) };
    decode_answer(&with_version(&frame)).expect_err("refused")
}

fn range(field: &'static str, value: u64, min: u64, max: u64) -> WireError {
    WireError::OutOfRange { field, value, min, max }
}

fn unknown(field: &'static str, value: u64) -> WireError {
    WireError::UnknownValue { field, value }
}

fn invalid(field: &'static str, reason: &'static str) -> WireError {
    WireError::Invalid { field, reason }
}

#[test]
fn header_fields_are_checked() {
    let kind = Some(CallKind::ConsumeVerification(vec![1; 16]));
    assert!(decode_call(&call_bytes(1, vec![0; 16], kind.clone())).is_ok());
    assert_eq!(
        decode_call(&call_bytes(0, vec![0; 16], kind.clone())).err(),
        Some(WireError::ZeroEpoch)
    );
    let short = WireError::BadLength { field: "request_id", len: 15, expected: 16 };
    assert_eq!(decode_call(&call_bytes(1, vec![0; 15], kind)).err(), Some(short));
    assert_eq!(
        decode_call(&call_bytes(1, vec![0; 16], None)).err(),
        Some(WireError::Missing("call"))
    );
    let bad_id = WireError::BadLength { field: "consume_verification.id", len: 0, expected: 16 };
    assert_eq!(call_error(CallKind::ConsumeVerification(Vec::new())), bad_id);
    assert_eq!(answer_error(AnswerKind::WrongOwner(0)), WireError::ZeroEpoch);
    let none = AnswerFrame { epoch: 1, request_id: vec![0; 16], answer: None };
    assert_eq!(decode_answer(&with_version(&none)).err(), Some(WireError::Missing("answer")));
}

fn create(spoil: impl FnOnce(&mut frames::Registration)) -> WireError {
    let mut registration = payload::registration_to_frame(&samples::registration(None, true));
    spoil(&mut registration);
    let frame = frames::CreateAccount { uuid: vec![1; 16], registration: Some(registration) };
    call_error(CallKind::CreateAccount(frame))
}

#[test]
fn registrations_are_checked_as_validate_does() {
    let (password, id) = ("registration.password", "registration.registration_id");
    assert_eq!(create(|r| r.password.clear()), range(password, 0, 1, 512));
    assert_eq!(create(|r| r.password = "p".repeat(513)), range(password, 513, 1, 512));
    assert_eq!(create(|r| r.registration_id = 0), range(id, 0, 1, 0x3FFF));
    assert_eq!(create(|r| r.registration_id = 0x4000), range(id, 0x4000, 1, 0x3FFF));
    let name = range("registration.name", 257, 0, 256);
    assert_eq!(create(|r| r.name = Some("n".repeat(257))), name);
    let key = WireError::BadLength { field: "registration.access_key", len: 15, expected: 16 };
    assert_eq!(create(|r| r.unidentified_access_key = Some(vec![0; 15])), key);
    let no_registration = frames::CreateAccount { uuid: vec![1; 16], registration: None };
    assert_eq!(
        call_error(CallKind::CreateAccount(no_registration)),
        WireError::Missing("registration")
    );
    let uuid = WireError::BadLength { field: "create_account.uuid", len: 17, expected: 16 };
    let long_uuid = frames::CreateAccount { uuid: vec![1; 17], ..frames::CreateAccount::default() };
    assert_eq!(call_error(CallKind::CreateAccount(long_uuid)), uuid);
    for code in [String::new(), "c".repeat(129)] {
        let len = code.len() as u64;
        let registration =
            Some(payload::registration_to_frame(&samples::registration(None, false)));
        let frame = frames::LinkDevice { account: vec![1; 16], code, registration };
        assert_eq!(call_error(CallKind::LinkDevice(frame)), range("link_device.code", len, 1, 128));
    }
}

fn send_result(spoil: impl FnOnce(&mut frames::SendMessage)) -> Result<(Header, Call), WireError> {
    let CallKind::SendMessage(mut frame) = call::to_frame(&samples::typical_send(30)) else {
        unreachable!()
    };
    frame.send = Some(payload::send_to_frame(&samples::send(3, 30)));
    spoil(&mut frame);
    decode_call(&call_bytes(1, vec![0; 16], Some(CallKind::SendMessage(frame))))
}

fn send(spoil: impl FnOnce(&mut frames::SendMessage)) -> WireError {
    send_result(spoil).expect_err("refused")
}

fn first(frame: &mut frames::SendMessage) -> &mut frames::OutgoingMessage {
    &mut frame.send.as_mut().unwrap().messages[0]
}

#[test]
fn sends_are_checked_as_validate_does() {
    assert_eq!(send(|f| f.send = None), WireError::Missing("send"));
    assert_eq!(
        send(|f| f.send.as_mut().unwrap().messages.clear()),
        range("send.messages", 0, 1, 127)
    );
    for kind in [0, 2, 4, 5, 8, 256 + 1] {
        assert_eq!(send(|f| first(f).kind = kind), unknown("message.kind", kind.into()));
    }
    for id in [0, 128, u32::MAX] {
        assert_eq!(
            send(|f| first(f).device_id = id),
            range("message.device_id", id.into(), 1, 127)
        );
    }
    assert_eq!(send(|f| first(f).device_id = 2), invalid("send.messages", "device named twice"));
    for content in ["QUJD", "QUI=", ""] {
        assert!(send_result(|f| first(f).content = content.into()).is_ok(), "{content}");
    }
    for content in ["QUI", "Q===", "****", "QU I="] {
        let refused = invalid("message.content", "not padded Base64");
        assert_eq!(send(|f| first(f).content = content.into()), refused, "{content}");
    }
    let sender = |device_id| Some(frames::Device { account: vec![2; 16], device_id });
    assert_eq!(send(|f| f.sender = sender(0)), range("sender.device_id", 0, 1, 127));
    assert_eq!(send(|f| f.sender = sender(128)), range("sender.device_id", 128, 1, 127));
    let account = WireError::BadLength { field: "sender.account", len: 0, expected: 16 };
    let no_account = Some(frames::Device { account: Vec::new(), device_id: 1 });
    assert_eq!(send(|f| f.sender = no_account), account);
}

fn fan_out(sender: Option<frames::Device>, item: Option<frames::Item>) -> WireError {
    call_error(CallKind::FanOut(frames::FanOut { destination: vec![3; 16], sender, item }))
}

fn item(item: frames::Item) -> WireError {
    fan_out(Some(frames::Device { account: vec![2; 16], device_id: 1 }), Some(item))
}

#[test]
fn fanout_items_are_checked_as_validate_does() {
    let device = Some(frames::Device { account: vec![2; 16], device_id: 1 });
    let story = |content: &str| frames::Story { content: content.into(), ..Default::default() };
    assert_eq!(
        fan_out(None, Some(frames::Item::Story(story("AA==")))),
        WireError::Missing("fan_out.sender")
    );
    assert_eq!(fan_out(device, None), WireError::Missing("item"));
    let typing = |action, group_id: Option<String>| {
        frames::Item::Typing(frames::Typing { action, timestamp: 1, group_id })
    };
    assert_eq!(item(typing(0, None)), unknown("typing.action", 0));
    assert_eq!(item(typing(3, None)), unknown("typing.action", 3));
    assert_eq!(item(typing(1, Some("*".into()))), invalid("typing.group_id", "not Base64"));
    let long = Some("A".repeat(260));
    assert_eq!(item(typing(2, long)), range("typing.group_id", 260, 0, 256));
    let receipt = |kind, timestamps| frames::Item::Receipt(frames::Receipt { kind, timestamps });
    assert_eq!(item(receipt(3, vec![1])), unknown("receipt.kind", 3));
    assert_eq!(item(receipt(1, Vec::new())), WireError::Missing("receipt.timestamps"));
    let empty = range("story.content", 0, 1, usize::MAX as u64);
    assert_eq!(item(frames::Item::Story(story(""))), empty);
    let story_refused = invalid("story.content", "not Base64");
    assert_eq!(item(frames::Item::Story(story("no way"))), story_refused);
}

#[test]
fn hashes_and_verification_calls_are_checked() {
    let hash = WireError::BadLength { field: "hash", len: 11, expected: 10 };
    let change = frames::HashChange { hash: vec![0; 11], account: vec![1; 16] };
    assert_eq!(call_error(CallKind::ClaimHash(change.clone())), hash);
    assert_eq!(call_error(CallKind::ReleaseHash(change)), hash);
    let pieces = invalid("find_hashes", "not a whole number of hashes");
    assert_eq!(call_error(CallKind::FindHashes(vec![0; 25])), pieces);
    let verification = |provider, token: &str| {
        call_error(CallKind::CreateVerification(frames::CreateVerification {
            id: vec![7; 16],
            provider,
            token: token.into(),
        }))
    };
    assert_eq!(verification(0, "ab"), unknown("create_verification.provider", 0));
    assert_eq!(verification(3, "ab"), unknown("create_verification.provider", 3));
    let token = invalid("create_verification.token", "not a token of its provider");
    for (provider, bad) in [(1, ""), (1, "xyz"), (1, &"a".repeat(201)), (2, ""), (2, "a b")] {
        assert_eq!(verification(provider, bad), token, "{provider} {bad}");
    }
}

fn result(spoil: impl FnOnce(&mut ResultFrame)) -> ResultFrame {
    let mut frame = ResultFrame::default();
    spoil(&mut frame);
    frame
}

/// An answer kind holding a result, its refusal's field, its first unknown code.
type Kind = fn(ResultFrame) -> AnswerKind;

#[test]
fn outcomes_are_checked() {
    let code = |refused| result(|r| r.refused = refused);
    let kinds: [(Kind, &str, u32); 8] = [
        (AnswerKind::AccountCreated, "create_refused", 3),
        (AnswerKind::DeviceLinked, "link_refused", 6),
        (AnswerKind::MessageAccepted, "send_refused", 8),
        (AnswerKind::FannedOut, "fanout_refused", 3),
        (AnswerKind::Provisioned, "provision_refused", 2),
        (AnswerKind::HashClaimed, "claim_refused", 4),
        (AnswerKind::HashReleased, "claim_refused", 4),
        (AnswerKind::Verification, "verify_refused", 6),
    ];
    for (kind, field, first_unknown) in kinds {
        for refused in [first_unknown, u32::MAX] {
            assert_eq!(answer_error(kind(code(refused))), unknown(field, refused.into()));
        }
    }
    assert_eq!(answer_error(AnswerKind::AccountCreated(code(2))), WireError::Missing("storage"));
    let storage = |kind| Some(StoreErrorFrame { kind, ..Default::default() });
    let frame = result(|r| (r.refused, r.storage) = (6, storage(6)));
    assert_eq!(answer_error(AnswerKind::MessageAccepted(frame)), unknown("storage.kind", 6));
    let linked = range("device_linked", 0, 1, 127);
    assert_eq!(answer_error(AnswerKind::DeviceLinked(code(0))), linked);
    let unsorted = result(|r| (r.refused, r.missing) = (4, vec![3, 2]));
    let order = invalid("mismatched.missing", "device ids not strictly ascending");
    assert_eq!(answer_error(AnswerKind::MessageAccepted(unsorted)), order);
    let repeated = result(|r| (r.refused, r.stale) = (5, vec![2, 2]));
    let order = invalid("stale.stale", "device ids not strictly ascending");
    assert_eq!(answer_error(AnswerKind::MessageAccepted(repeated)), order);
    let high = result(|r| (r.refused, r.extra) = (4, vec![128]));
    let extra = range("mismatched.extra", 128, 1, 127);
    assert_eq!(answer_error(AnswerKind::MessageAccepted(high)), extra);
    let holders = HashesFound { holders: vec![vec![1; 16], vec![2; 5]] };
    let holder = WireError::BadLength { field: "hashes_found.holder", len: 5, expected: 16 };
    assert_eq!(answer_error(AnswerKind::HashesFound(holders)), holder);
}
