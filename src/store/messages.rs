//! Per-device message queues in `s{n}_messages`.
//!
//! Key (36 bytes, big-endian so byte order is delivery order):
//! `account uuid (16) | device id (u32) | server timestamp ms (u64) | seq (u64)`.
//! `seq` is a per-shard counter, so two envelopes accepted in the same
//! millisecond keep their acceptance order. Value: `server guid (16) |
//! [kind tag (1)] | JSON` (the JSON the device receives, minus the delivered
//! time). A plain envelope has no tag (its JSON starts with `{`, as every
//! value written before tags existed does); a receipt, a story, or an
//! envelope owing its sender a delivery receipt has a tag byte below `{`
//! (the last followed by the sender's UUID and timestamp), so old and new
//! values decode alike.
//!
//! Reads here run on the shard thread: they are bounded (a page, or one
//! device's queue which the queue cap bounds) and mostly hit the memtable
//! or block cache. Writes go through [`crate::store::writer`].

use crate::store::{messages_family, Store, StoreError};
use std::collections::HashMap;
use std::ops::ControlFlow;
use uuid::Uuid;

/// Bytes of the per-device key prefix.
pub const PREFIX_BYTES: usize = 20;
/// Bytes of a full key.
pub const KEY_BYTES: usize = 36;

/// Whom an envelope's delivery receipt goes to: its identified sender's
/// account, and the sender's timestamp of the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptTo {
    /// The sending account.
    pub account: Uuid,
    /// The envelope's client timestamp (what the receipt lists).
    pub timestamp: u64,
}

/// What a queued item is, which decides where the device receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredKind {
    /// An envelope (`PUT /api/v1/message`) with no delivery receipt due
    /// (sealed sender, or to the sender's own account).
    Envelope,
    /// An envelope from an identified sender: acknowledging it sends the
    /// sender a `DELIVERY` receipt.
    IdentifiedEnvelope(ReceiptTo),
    /// A receipt (`PUT /api/v1/receipt`).
    Receipt,
    /// A story (`PUT /api/v1/story`).
    Story,
}

/// Tag of [`StoredKind::Receipt`].
const RECEIPT_TAG: u8 = 1;
/// Tag of [`StoredKind::Story`].
const STORY_TAG: u8 = 2;
/// Tag of [`StoredKind::IdentifiedEnvelope`], followed by the sender's UUID
/// (16 bytes) and the timestamp (8, big-endian).
const IDENTIFIED_ENVELOPE_TAG: u8 = 3;

impl StoredKind {
    /// Writes the tag (and what follows it) that goes before the JSON; none
    /// for a plain envelope.
    fn write_tag(self, value: &mut Vec<u8>) {
        match self {
            StoredKind::Envelope => {}
            StoredKind::IdentifiedEnvelope(to) => {
                value.push(IDENTIFIED_ENVELOPE_TAG);
                value.extend_from_slice(to.account.as_bytes());
                value.extend_from_slice(&to.timestamp.to_be_bytes());
            }
            StoredKind::Receipt => value.push(RECEIPT_TAG),
            StoredKind::Story => value.push(STORY_TAG),
        }
    }

    /// The kind a value's bytes after the GUID start with, and the JSON.
    fn split(rest: &[u8]) -> Option<(StoredKind, &[u8])> {
        match *rest.first()? {
            b'{' => Some((StoredKind::Envelope, rest)),
            RECEIPT_TAG => Some((StoredKind::Receipt, &rest[1..])),
            STORY_TAG => Some((StoredKind::Story, &rest[1..])),
            IDENTIFIED_ENVELOPE_TAG if rest.len() > 25 => {
                let account = Uuid::from_slice(&rest[1..17]).ok()?;
                let timestamp = u64::from_be_bytes(rest[17..25].try_into().ok()?);
                Some((
                    StoredKind::IdentifiedEnvelope(ReceiptTo { account, timestamp }),
                    &rest[25..],
                ))
            }
            _ => None,
        }
    }
}

/// One stored item (an envelope, a receipt or a story).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its key (delivery order).
    pub key: Vec<u8>,
    /// Its server GUID.
    pub guid: Uuid,
    /// What it is.
    pub kind: StoredKind,
    /// The envelope JSON without `serverDeliveredTimestamp`.
    pub json: Vec<u8>,
}

/// The key prefix of `device`'s queue.
pub fn device_prefix(account: &Uuid, device_id: u32) -> [u8; PREFIX_BYTES] {
    let mut prefix = [0u8; PREFIX_BYTES];
    prefix[..16].copy_from_slice(account.as_bytes());
    prefix[16..].copy_from_slice(&device_id.to_be_bytes());
    prefix
}

/// The key of one envelope.
pub fn message_key(account: &Uuid, device_id: u32, server_ms: u64, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(KEY_BYTES);
    key.extend_from_slice(&device_prefix(account, device_id));
    key.extend_from_slice(&server_ms.to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// `(account, device, server ms, seq)` of a key, if it is one.
pub fn parse_key(key: &[u8]) -> Option<(Uuid, u32, u64, u64)> {
    if key.len() != KEY_BYTES {
        return None;
    }
    let account = Uuid::from_slice(&key[..16]).ok()?;
    let device = u32::from_be_bytes(key[16..20].try_into().ok()?);
    let server_ms = u64::from_be_bytes(key[20..28].try_into().ok()?);
    let seq = u64::from_be_bytes(key[28..36].try_into().ok()?);
    Some((account, device, server_ms, seq))
}

/// The stored value of an item of `kind` (`json` is a JSON object).
pub fn encode_value(guid: &Uuid, kind: StoredKind, json: &[u8]) -> Vec<u8> {
    assert_eq!(json.first(), Some(&b'{'), "a queued item is a JSON object");
    let mut value = Vec::with_capacity(41 + json.len());
    value.extend_from_slice(guid.as_bytes());
    kind.write_tag(&mut value);
    value.extend_from_slice(json);
    value
}

fn decode(key: Box<[u8]>, value: &[u8], family: &str) -> Result<StoredMessage, StoreError> {
    let corrupt =
        |reason: &str| StoreError::Corrupt { family: family.into(), reason: reason.into() };
    if value.len() < 17 || key.len() != KEY_BYTES {
        return Err(corrupt("short message record"));
    }
    let guid = Uuid::from_slice(&value[..16]).expect("16 bytes");
    let (kind, json) =
        StoredKind::split(&value[16..]).ok_or_else(|| corrupt("unknown item kind"))?;
    Ok(StoredMessage { key: key.into_vec(), guid, kind, json: json.to_vec() })
}

fn upper_bound(account: &Uuid, device_id: u32) -> [u8; PREFIX_BYTES] {
    device_prefix(account, device_id.saturating_add(1))
}

/// Up to `limit` envelopes of `device`'s queue after key `after` (from the
/// start when `None`), in order, and whether more follow.
pub fn read_page(
    store: &Store,
    shard: usize,
    account: &Uuid,
    device_id: u32,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<(Vec<StoredMessage>, bool), StoreError> {
    let family = messages_family(shard);
    let db = store.db();
    let cf = store.family(&family)?;
    let prefix = device_prefix(account, device_id);
    let start: &[u8] = after.unwrap_or(&prefix);
    let mut options = rocksdb::ReadOptions::default();
    options.set_iterate_upper_bound(upper_bound(account, device_id).to_vec());
    let iterator = db.iterator_cf_opt(
        cf,
        options,
        rocksdb::IteratorMode::From(start, rocksdb::Direction::Forward),
    );
    let mut page = Vec::with_capacity(limit.min(256));
    for item in iterator {
        let (key, value) = item?;
        if after.is_some_and(|after| *key == *after) {
            continue;
        }
        if page.len() == limit {
            return Ok((page, true));
        }
        page.push(decode(key, &value, &family)?);
    }
    Ok((page, false))
}

/// Items read per page when walking a whole queue.
const WALK_PAGE_LEN: usize = 256;

/// Hands every item of `device`'s queue, in order, to `each` until it
/// returns `Break` (bounded reads of [`WALK_PAGE_LEN`]).
pub fn walk_queue<B>(
    store: &Store,
    shard: usize,
    account: &Uuid,
    device_id: u32,
    mut each: impl FnMut(StoredMessage) -> ControlFlow<B>,
) -> Result<Option<B>, StoreError> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let (page, more) =
            read_page(store, shard, account, device_id, after.as_deref(), WALK_PAGE_LEN)?;
        after = page.last().map(|message| message.key.clone());
        for message in page {
            if let ControlFlow::Break(found) = each(message) {
                return Ok(Some(found));
            }
        }
        if !more {
            return Ok(None);
        }
    }
}

/// `device`'s queued item with server GUID `guid`, if there is one.
pub fn find_by_guid(
    store: &Store,
    shard: usize,
    account: &Uuid,
    device_id: u32,
    guid: &Uuid,
) -> Result<Option<StoredMessage>, StoreError> {
    walk_queue(store, shard, account, device_id, |message| {
        if message.guid == *guid {
            ControlFlow::Break(message)
        } else {
            ControlFlow::Continue(())
        }
    })
}

/// The queue length of every device with a queue on shard `shard`.
pub fn count_per_device(
    store: &Store,
    shard: usize,
) -> Result<HashMap<(Uuid, u32), u32>, StoreError> {
    let family = messages_family(shard);
    let db = store.db();
    let cf = store.family(&family)?;
    let mut counts = HashMap::new();
    for item in db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
        let (key, _) = item?;
        if let Some((account, device, _, _)) = parse_key(&key) {
            *counts.entry((account, device)).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// Up to `limit` keys on shard `shard` whose server time is before `before_ms`.
pub fn expired_keys(
    store: &Store,
    shard: usize,
    before_ms: u64,
    limit: usize,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let family = messages_family(shard);
    let db = store.db();
    let cf = store.family(&family)?;
    let mut keys = Vec::new();
    for item in db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
        let (key, _) = item?;
        if let Some((_, _, server_ms, _)) = parse_key(&key) {
            if server_ms < before_ms {
                keys.push(key.into_vec());
                if keys.len() == limit {
                    break;
                }
            }
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_in_delivery_order() {
        let account = Uuid::new_v4();
        let a = message_key(&account, 1, 100, 5);
        let b = message_key(&account, 1, 100, 6);
        let c = message_key(&account, 1, 101, 0);
        let other_device = message_key(&account, 2, 0, 0);
        assert!(a < b && b < c && c < other_device);
        assert!(c.starts_with(&device_prefix(&account, 1)));
        assert!(!other_device.starts_with(&device_prefix(&account, 1)));
    }

    #[test]
    fn item_kinds_round_trip_and_untagged_values_are_envelopes() {
        let guid = Uuid::new_v4();
        let to = ReceiptTo { account: Uuid::new_v4(), timestamp: u64::MAX - 1 };
        let kinds = [
            StoredKind::Envelope,
            StoredKind::IdentifiedEnvelope(to),
            StoredKind::Receipt,
            StoredKind::Story,
        ];
        for kind in kinds {
            let value = encode_value(&guid, kind, br#"{"a":1}"#);
            let key = message_key(&guid, 1, 2, 3).into_boxed_slice();
            let item = decode(key, &value, "f").unwrap();
            assert_eq!((item.kind, item.json.as_slice()), (kind, &br#"{"a":1}"#[..]));
        }
        let mut old = guid.as_bytes().to_vec();
        old.extend_from_slice(br#"{"type":1}"#);
        let item = decode(message_key(&guid, 1, 2, 3).into_boxed_slice(), &old, "f").unwrap();
        assert_eq!(item.kind, StoredKind::Envelope, "values written before tags");
        old[16] = 9;
        assert!(decode(message_key(&guid, 1, 2, 3).into_boxed_slice(), &old, "f").is_err());
        old[16] = IDENTIFIED_ENVELOPE_TAG;
        let truncated = decode(message_key(&guid, 1, 2, 3).into_boxed_slice(), &old, "f");
        assert!(truncated.is_err(), "a tag 3 value too short for its sender is corrupt");
    }

    #[test]
    fn keys_parse_back() {
        let account = Uuid::new_v4();
        let key = message_key(&account, 7, 123, 456);
        assert_eq!(parse_key(&key), Some((account, 7, 123, 456)));
        assert_eq!(parse_key(&key[..35]), None);
    }

    #[test]
    fn pages_follow_the_cursor_in_a_real_rocksdb() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1).unwrap();
        let db = store.db();
        let cf = db.cf_handle(&messages_family(0)).unwrap();
        let account = Uuid::new_v4();
        let other = Uuid::new_v4();
        for seq in 0..10u64 {
            let guid = Uuid::from_u128(seq as u128);
            db.put_cf(
                cf,
                message_key(&account, 1, 1000, seq),
                encode_value(&guid, StoredKind::Envelope, b"{}"),
            )
            .unwrap();
            db.put_cf(
                cf,
                message_key(&other, 1, 1000, seq),
                encode_value(&guid, StoredKind::Envelope, b"{}"),
            )
            .unwrap();
        }
        db.put_cf(
            cf,
            message_key(&account, 2, 1, 0),
            encode_value(&Uuid::nil(), StoredKind::Envelope, b"{}"),
        )
        .unwrap();
        let (first, more) = read_page(&store, 0, &account, 1, None, 4).unwrap();
        assert!(more);
        assert_eq!(first.len(), 4);
        let (rest, more) = read_page(&store, 0, &account, 1, Some(&first[3].key), 100).unwrap();
        assert!(!more);
        assert_eq!(rest.len(), 6);
        assert_eq!(rest[0].guid, Uuid::from_u128(4));
        assert_eq!(
            find_by_guid(&store, 0, &account, 1, &Uuid::from_u128(9)).unwrap().map(|m| m.key),
            Some(message_key(&account, 1, 1000, 9))
        );
        assert_eq!(find_by_guid(&store, 0, &account, 1, &Uuid::from_u128(99)).unwrap(), None);
        let counts = count_per_device(&store, 0).unwrap();
        assert_eq!(counts[&(account, 1)], 10);
        assert_eq!(counts[&(account, 2)], 1);
        assert_eq!(expired_keys(&store, 0, 500, 100).unwrap().len(), 1);
    }
}
