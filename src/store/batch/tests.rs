use super::*;
use crate::store::writer::Family;
use std::sync::Arc;
use std::task::Wake;

fn put(key: u8) -> Op {
    Op::Put { family: Family::Messages, key: vec![key; 4], value: vec![0; 8] }
}

fn delete(key: u8) -> Op {
    Op::Delete { family: Family::Messages, key: vec![key; 4] }
}

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn poll(waiter: &Waiter) -> Poll<Result<Elided, String>> {
    let waker = Waker::from(Arc::new(Noop));
    waiter.poll_done(&mut Context::from_waker(&waker))
}

#[test]
fn stages_keep_their_order_and_number_their_ops() {
    let mut batch = OpenBatch::new(7);
    let a = batch.stage(vec![put(1), put(2)], true);
    let b = batch.stage(vec![delete(3)], false);
    assert_eq!(a.first, OpRef { batch: 7, index: 0 });
    assert_eq!(b.first, OpRef { batch: 7, index: 2 });
    let sealed = batch.seal();
    assert_eq!(sealed.number, 7);
    assert_eq!(sealed.ops, vec![put(1), put(2), delete(3)]);
    assert_eq!(sealed.stage_ends, vec![2, 3]);
    assert!(sealed.durable);
    assert_eq!(batch.number(), 8, "the next batch takes the next number");
    assert!(batch.is_empty());
    assert!(poll(&a.waiter).is_pending() && poll(&b.waiter).is_pending());
    sealed.waiters.complete(&Ok(()));
    assert_eq!(poll(&a.waiter), Poll::Ready(Ok(vec![])));
    assert_eq!(poll(&b.waiter), Poll::Ready(Ok(vec![])));
}

#[test]
fn a_put_acknowledged_while_open_leaves_the_batch_and_its_stage_completes_when_all_are_gone() {
    let mut batch = OpenBatch::new(1);
    let staged = batch.stage(vec![put(1), put(2)], true);
    let second = OpRef { index: staged.first.index + 1, ..staged.first };
    assert!(batch.elide(second, &[2; 4]));
    assert!(!batch.elide(second, &[2; 4]), "only once");
    assert!(poll(&staged.waiter).is_pending(), "the first put is still to be written");
    assert!(batch.elide(staged.first, &[1; 4]));
    assert_eq!(
        poll(&staged.waiter),
        Poll::Ready(Ok(vec![0, 1])),
        "acknowledged is as good as durable"
    );
    let sealed = batch.seal();
    assert!(sealed.ops.is_empty(), "neither put nor any delete is written");
    assert!(sealed.stage_ends.is_empty());
    assert!(sealed.waiters.is_empty());
}

#[test]
fn a_partly_elided_stage_waits_for_the_write_and_reports_what_was_elided() {
    let mut batch = OpenBatch::new(1);
    let first = batch.stage(vec![put(9)], true);
    let staged = batch.stage(vec![put(1), put(2), put(3)], true);
    let middle = OpRef { index: staged.first.index + 1, ..staged.first };
    assert!(batch.elide(middle, &[2; 4]));
    let sealed = batch.seal();
    assert_eq!(sealed.ops, vec![put(9), put(1), put(3)]);
    assert_eq!(sealed.stage_ends, vec![1, 3]);
    sealed.waiters.complete(&Ok(()));
    assert_eq!(poll(&staged.waiter), Poll::Ready(Ok(vec![1])));
    assert_eq!(poll(&first.waiter), Poll::Ready(Ok(vec![])));
}

#[test]
fn a_failed_write_fails_the_stages_not_already_complete() {
    let mut batch = OpenBatch::new(1);
    let elided = batch.stage(vec![put(1)], true);
    let written = batch.stage(vec![put(2)], true);
    assert!(batch.elide(elided.first, &[1; 4]));
    batch.seal().waiters.complete(&Err("disk full".into()));
    assert_eq!(poll(&elided.waiter), Poll::Ready(Ok(vec![0])));
    assert_eq!(poll(&written.waiter), Poll::Ready(Err("disk full".into())));
}

#[test]
fn only_a_put_of_the_same_key_in_the_open_batch_is_elided() {
    let mut batch = OpenBatch::new(3);
    let staged = batch.stage(vec![put(1), delete(2)], false);
    assert!(!batch.elide(OpRef { batch: 2, ..staged.first }, &[1; 4]), "an older batch");
    assert!(!batch.elide(OpRef { batch: 3, index: 1 }, &[2; 4]), "a delete");
    assert!(!batch.elide(OpRef { batch: 3, index: 9 }, &[1; 4]), "past the end");
    let sealed = batch.seal();
    assert!(!batch.elide(staged.first, &[1; 4]), "sealed: too late, a delete is due");
    assert_eq!(sealed.ops.len(), 2);
}

#[test]
fn an_empty_stage_completes_at_once_and_room_is_bounded() {
    let mut batch = OpenBatch::new(1);
    let staged = batch.stage(Vec::new(), true);
    assert_eq!(poll(&staged.waiter), Poll::Ready(Ok(vec![])));
    assert!(batch.is_empty());
    assert!(batch.has_room(BATCH_OPS_MAX * 2, 0), "an empty batch takes anything");
    let _held = batch.stage(vec![put(1)], false);
    assert!(batch.has_room(BATCH_OPS_MAX - 1, 0));
    assert!(!batch.has_room(BATCH_OPS_MAX, 0));
    assert!(!batch.has_room(1, BATCH_BYTES_MAX));
}

#[test]
fn marked_puts_are_counted_until_elided() {
    let mut batch = OpenBatch::new(4);
    assert_eq!(batch.elidable(), 0);
    let offline = batch.stage(vec![put(1)], true);
    let live = batch.stage(vec![put(2), put(3)], true);
    let third = OpRef { index: live.first.index + 1, ..live.first };
    batch.mark_elidable(live.first);
    batch.mark_elidable(third);
    batch.mark_elidable(OpRef { batch: 3, index: 0 });
    assert_eq!(batch.elidable(), 2, "another batch's op is not marked");
    assert!(batch.elide(third, &[3; 4]));
    assert_eq!(batch.elidable(), 1);
    assert!(batch.elide(offline.first, &[1; 4]), "an unmarked put may still be elided");
    assert_eq!(batch.elidable(), 1, "without touching the count");
    assert!(batch.elide(live.first, &[2; 4]));
    assert_eq!(batch.elidable(), 0);
    batch.mark_elidable(offline.first);
    assert_eq!(batch.elidable(), 0, "an elided op cannot be marked");
    let _ = batch.seal();
    assert_eq!(batch.elidable(), 0, "a new batch starts with no marks");
}

#[test]
fn the_open_batch_tells_whether_it_holds_a_key_prefix() {
    let mut batch = OpenBatch::new(1);
    assert!(!batch.holds_prefix(&[1, 1]));
    let staged = batch.stage(vec![put(1), delete(2)], false);
    assert!(batch.holds_prefix(&[1, 1]) && batch.holds_prefix(&[2]));
    assert!(!batch.holds_prefix(&[3]));
    assert!(batch.elide(staged.first, &[1; 4]));
    assert!(!batch.holds_prefix(&[1]), "an elided put is gone");
}
