//! The server's own delivery receipts: when a device acknowledges envelopes
//! from identified senders, each sender's account is sent one `DELIVERY`
//! receipt listing the acknowledged envelopes' timestamps (as Signal sends
//! its server delivery receipt on ack).
//!
//! Invariants: one receipt per sender account per batch of acknowledgements
//! (split only at `receipt_timestamps_max`), senders in the order their
//! first envelope was acknowledged, timestamps in acknowledgement order.

use crate::protocol::items::Receipt;
use crate::store::messages::ReceiptTo;
use uuid::Uuid;

/// The receipts `due` makes: `(sender account, receipt)`, each receipt with
/// at most `timestamps_max` timestamps.
pub fn group(due: Vec<ReceiptTo>, timestamps_max: usize) -> Vec<(Uuid, Receipt)> {
    let mut by_sender: Vec<(Uuid, Vec<u64>)> = Vec::new();
    for to in due {
        match by_sender.iter_mut().find(|(account, _)| *account == to.account) {
            Some((_, timestamps)) => timestamps.push(to.timestamp),
            None => by_sender.push((to.account, vec![to.timestamp])),
        }
    }
    by_sender
        .into_iter()
        .flat_map(|(account, timestamps)| {
            timestamps
                .chunks(timestamps_max.max(1))
                .map(|chunk| (account, Receipt { kind: "DELIVERY", timestamps: chunk.to_vec() }))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(account: u128, timestamp: u64) -> ReceiptTo {
        ReceiptTo { account: Uuid::from_u128(account), timestamp }
    }

    #[test]
    fn one_receipt_per_sender_in_ack_order() {
        let receipts = group(vec![to(1, 10), to(2, 20), to(1, 11), to(1, 12)], 100);
        assert_eq!(receipts.len(), 2);
        assert_eq!(receipts[0].0, Uuid::from_u128(1));
        assert_eq!(receipts[0].1, Receipt { kind: "DELIVERY", timestamps: vec![10, 11, 12] });
        assert_eq!(receipts[1].1.timestamps, vec![20]);
        assert!(group(Vec::new(), 100).is_empty());
    }

    #[test]
    fn a_long_burst_splits_at_the_timestamp_bound() {
        let due = (0..5).map(|n| to(1, n)).collect();
        let receipts = group(due, 2);
        let lens: Vec<usize> = receipts.iter().map(|(_, r)| r.timestamps.len()).collect();
        assert_eq!(lens, vec![2, 2, 1]);
    }
}
