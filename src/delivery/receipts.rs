//! The server's own delivery receipts: when a device acknowledges envelopes
//! from identified senders, each sender's account is sent a `DELIVERY`
//! receipt listing the acknowledged envelopes' timestamps (as Signal sends
//! its server delivery receipt on ack). The shard gathers what its
//! acknowledgements owe over a short window
//! ([`crate::shard::receipt_window`]); this module turns one device's debt
//! to one sender into receipts.
//!
//! Invariants: every timestamp goes into exactly one receipt, in
//! acknowledgement order; a receipt holds at most `timestamps_max` of them
//! (a longer run is split).

use crate::protocol::items::Receipt;

/// The `DELIVERY` receipts for `timestamps`, each with at most
/// `timestamps_max` of them.
pub fn delivery_receipts(timestamps: &[u64], timestamps_max: usize) -> Vec<Receipt> {
    timestamps
        .chunks(timestamps_max.max(1))
        .map(|chunk| Receipt { kind: "DELIVERY", timestamps: chunk.to_vec() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_receipt_with_every_timestamp_in_order() {
        let receipts = delivery_receipts(&[10, 11, 12], 100);
        assert_eq!(receipts, vec![Receipt { kind: "DELIVERY", timestamps: vec![10, 11, 12] }]);
        assert!(delivery_receipts(&[], 100).is_empty());
    }

    #[test]
    fn a_long_run_splits_at_the_timestamp_bound() {
        let receipts = delivery_receipts(&[0, 1, 2, 3, 4], 2);
        let lens: Vec<usize> = receipts.iter().map(|r| r.timestamps.len()).collect();
        assert_eq!(lens, vec![2, 2, 1]);
        let all: Vec<u64> = receipts.into_iter().flat_map(|r| r.timestamps).collect();
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
    }
}
