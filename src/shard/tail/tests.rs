use super::*;
use crate::store::messages::StoredKind;
use uuid::Uuid;

fn message(n: u8, json_len: usize) -> StoredMessage {
    StoredMessage {
        key: vec![n; 36],
        guid: Uuid::from_bytes([n; 16]),
        kind: StoredKind::Envelope,
        json: vec![b'{'; json_len.max(1)],
    }
}

fn keys(messages: &[StoredMessage]) -> Vec<u8> {
    messages.iter().map(|message| message.key[0]).collect()
}

/// A slot holding entries 1..=n stored by jobs 10+1..=10+n, not serving.
fn slot_with(n: u8) -> TailSlot {
    let slot = TailSlot::default();
    for key in 1..=n {
        assert_eq!(slot.append(10 + u64::from(key), 0, message(key, 8)), Appended::InTail);
    }
    slot
}

#[test]
fn serves_nothing_until_a_store_read_caught_up_after_older_jobs() {
    let slot = slot_with(2);
    assert!(!slot.is_serving());
    assert_eq!(slot.take_ready((100, 0), None, 16).unwrap(), vec![], "not serving yet");
    // A read that began before job 10 (older than the tail) was done proves nothing.
    slot.on_store_caught_up((9, 0));
    assert!(!slot.is_serving());
    slot.on_store_caught_up((10, 0));
    assert!(slot.is_serving());
    assert_eq!(keys(&slot.take_ready((12, 0), None, 16).unwrap()), vec![1, 2]);
}

#[test]
fn an_entry_still_being_written_holds_back_the_ones_after_it() {
    let slot = slot_with(3);
    slot.on_store_caught_up((10, 0));
    assert_eq!(keys(&slot.take_ready((11, 0), None, 16).unwrap()), vec![1]);
    assert_eq!(slot.take_ready((11, 0), None, 16).unwrap(), vec![], "job 12 not done");
    assert_eq!(keys(&slot.take_ready((13, 0), None, 1).unwrap()), vec![2], "at most limit");
    assert_eq!(keys(&slot.take_ready((13, 0), None, 16).unwrap()), vec![3]);
}

#[test]
fn entries_already_read_from_the_store_are_skipped() {
    let slot = slot_with(3);
    slot.on_store_caught_up((13, 0));
    let after = vec![2u8; 36];
    assert_eq!(keys(&slot.take_ready((13, 0), Some(&after), 16).unwrap()), vec![3]);
}

#[test]
fn an_overflow_drops_the_tail_and_the_next_item_starts_a_new_one() {
    let slot = TailSlot::default();
    for job in 1..=TAIL_ENTRIES_MAX as u64 {
        assert_eq!(slot.append(job, 0, message(job as u8, 8)), Appended::InTail);
    }
    slot.on_store_caught_up((0, 0));
    assert!(slot.is_serving());
    let over = TAIL_ENTRIES_MAX as u64 + 1;
    assert_eq!(slot.append(over, 0, message(200, 8)), Appended::NotInTail);
    assert!(!slot.is_serving(), "dropped whole");
    assert_eq!(slot.append(over + 1, 0, message(201, 8)), Appended::InTail);
    // The new tail starts at job over + 1: job `over` must be done first.
    slot.on_store_caught_up((over - 1, 0));
    assert!(!slot.is_serving());
    slot.on_store_caught_up((over, 0));
    assert_eq!(keys(&slot.take_ready((over + 1, 0), None, 16).unwrap()), vec![201]);
}

#[test]
fn the_byte_bound_drops_the_tail_too() {
    let slot = TailSlot::default();
    assert_eq!(slot.append(1, 0, message(1, TAIL_BYTES_MAX / 2)), Appended::InTail);
    assert_eq!(slot.append(2, 0, message(2, TAIL_BYTES_MAX / 2)), Appended::NotInTail);
    assert!(slot.0.borrow().is_none());
}

#[test]
fn a_failed_batch_invalidates_the_tail() {
    let slot = slot_with(2);
    slot.on_store_caught_up((10, 0));
    assert_eq!(slot.take_ready((12, 1), None, 16), Err(TailInvalid::WriteFailed));
    assert!(slot.0.borrow().is_none(), "dropped");
    assert_eq!(slot.take_ready((12, 1), None, 16).unwrap(), vec![]);
}

#[test]
fn a_failure_before_the_catch_up_keeps_the_store_in_charge() {
    let slot = slot_with(1);
    slot.on_store_caught_up((11, 1));
    assert!(!slot.is_serving());
}

#[test]
fn a_cleared_slot_holds_nothing() {
    let slot = slot_with(2);
    slot.on_store_caught_up((12, 0));
    slot.clear();
    assert!(!slot.is_serving());
    assert_eq!(slot.take_ready((12, 0), None, 16).unwrap(), vec![]);
}
