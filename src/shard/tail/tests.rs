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

fn at(batch: u64) -> OpRef {
    OpRef { batch, index: 0 }
}

fn keys(taken: &[(StoredMessage, OpRef)]) -> Vec<u8> {
    taken.iter().map(|(message, _)| message.key[0]).collect()
}

/// A slot holding entries 1..=n staged in batches 10+1..=10+n, not serving.
fn slot_with(n: u8) -> TailSlot {
    let slot = TailSlot::default();
    for key in 1..=n {
        assert_eq!(slot.append(at(10 + u64::from(key)), 0, message(key, 8)), Appended::InTail);
    }
    slot
}

#[test]
fn serves_nothing_until_a_store_read_caught_up_after_older_batches() {
    let slot = slot_with(2);
    assert!(!slot.is_serving());
    assert!(slot.take_ready(0, None, 16).unwrap().is_empty(), "not serving yet");
    // A read that began before batch 10 (older than the tail) was done proves nothing.
    slot.on_store_caught_up((9, 0), 1_000, 0);
    assert!(!slot.is_serving());
    slot.on_store_caught_up((10, 0), 1_000, 0);
    assert!(slot.is_serving());
    let taken = slot.take_ready(0, None, 16).unwrap();
    assert_eq!(keys(&taken), vec![1, 2]);
    assert_eq!(taken[1].1, at(12), "each entry carries its place in its batch");
}

#[test]
fn entries_are_served_before_their_batch_is_written_in_order_up_to_the_limit() {
    let slot = slot_with(3);
    slot.on_store_caught_up((10, 0), 1_000, 0);
    // Batches 11..=13 are still being written: delivery does not wait for them.
    assert_eq!(keys(&slot.take_ready(0, None, 1).unwrap()), vec![1], "at most limit");
    assert_eq!(keys(&slot.take_ready(0, None, 16).unwrap()), vec![2, 3]);
    assert!(slot.take_ready(0, None, 16).unwrap().is_empty());
}

#[test]
fn entries_already_read_from_the_store_are_skipped() {
    let slot = slot_with(3);
    slot.on_store_caught_up((13, 0), 1_000, 0);
    let after = vec![2u8; 36];
    assert_eq!(keys(&slot.take_ready(0, Some(&after), 16).unwrap()), vec![3]);
}

#[test]
fn an_overflow_drops_the_tail_and_the_next_item_starts_a_new_one() {
    let slot = TailSlot::default();
    for batch in 1..=TAIL_ENTRIES_MAX as u64 {
        assert_eq!(slot.append(at(batch), 0, message(batch as u8, 8)), Appended::InTail);
    }
    slot.on_store_caught_up((0, 0), 1_000, 0);
    assert!(slot.is_serving());
    let over = TAIL_ENTRIES_MAX as u64 + 1;
    assert_eq!(slot.append(at(over), 0, message(200, 8)), Appended::NotInTail);
    assert!(!slot.is_serving(), "dropped whole");
    assert_eq!(slot.append(at(over + 1), 0, message(201, 8)), Appended::InTail);
    // The new tail starts at batch over + 1: batch `over` must be done first.
    slot.on_store_caught_up((over - 1, 0), 1_000, 0);
    assert!(!slot.is_serving());
    slot.on_store_caught_up((over, 0), 1_000, 0);
    assert_eq!(keys(&slot.take_ready(0, None, 16).unwrap()), vec![201]);
}

#[test]
fn the_byte_bound_drops_the_tail_too() {
    let slot = TailSlot::default();
    assert_eq!(slot.append(at(1), 0, message(1, TAIL_BYTES_MAX / 2)), Appended::InTail);
    assert_eq!(slot.append(at(2), 0, message(2, TAIL_BYTES_MAX / 2)), Appended::NotInTail);
    assert!(slot.tail.borrow().is_none());
}

#[test]
fn a_failed_batch_invalidates_the_tail() {
    let slot = slot_with(2);
    slot.on_store_caught_up((10, 0), 1_000, 0);
    assert_eq!(slot.take_ready(1, None, 16), Err(TailInvalid::WriteFailed));
    assert!(slot.tail.borrow().is_none(), "dropped");
    assert!(slot.take_ready(1, None, 16).unwrap().is_empty());
}

#[test]
fn a_failure_before_the_catch_up_keeps_the_store_in_charge() {
    let slot = slot_with(1);
    slot.on_store_caught_up((11, 1), 1_000, 1);
    assert!(!slot.is_serving());
}

#[test]
fn a_cleared_slot_holds_nothing() {
    let slot = slot_with(2);
    slot.on_store_caught_up((12, 0), 1_000, 0);
    slot.clear();
    assert!(!slot.is_serving());
    assert!(slot.take_ready(0, None, 16).unwrap().is_empty());
}

#[test]
fn a_read_that_saw_everything_staged_starts_an_empty_serving_tail_at_the_open_batch() {
    let slot = TailSlot::default();
    slot.note_staged(5); // the open batch when the session registered
    slot.on_store_caught_up((4, 0), 6, 0);
    assert!(!slot.is_serving(), "batch 5 may hold an item the read did not see");
    slot.on_store_caught_up((5, 0), 7, 0);
    assert!(slot.is_serving(), "an empty tail vouched for by the read");
    assert_eq!(slot.append(at(7), 0, message(1, 8)), Appended::InTail);
    assert_eq!(keys(&slot.take_ready(0, None, 16).unwrap()), vec![1], "served at once");
}

#[test]
fn an_item_staged_after_the_read_began_keeps_the_store_in_charge() {
    let slot = TailSlot::default();
    slot.note_staged(3);
    // Overflowed: no tail, but an item was staged in batch 9 meanwhile.
    for batch in 4..=TAIL_ENTRIES_MAX as u64 + 4 {
        slot.append(at(batch), 0, message(batch as u8, 8));
    }
    assert!(slot.tail.borrow().is_none(), "dropped by the overflow");
    slot.on_store_caught_up((8, 0), 70, 0);
    assert!(!slot.is_serving(), "items up to batch {} were staged", TAIL_ENTRIES_MAX + 4);
    slot.on_store_caught_up((TAIL_ENTRIES_MAX as u64 + 4, 1), 70, 2);
    assert!(!slot.is_serving(), "a failure between the read and now");
    slot.on_store_caught_up((TAIL_ENTRIES_MAX as u64 + 4, 2), 70, 2);
    assert!(slot.is_serving());
}
