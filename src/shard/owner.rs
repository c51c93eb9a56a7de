//! Account ownership: `owner(uuid, n)` splits the 128-bit UUID space into `n`
//! contiguous ranges of (nearly) equal size and returns the index of the
//! range holding `uuid`.
//!
//! The function uses the UUID's top 64 bits: `owner = (hi64 * n) >> 64`.
//! It is monotonic in the UUID (range partition), depends on nothing but
//! `n`, and so is stable across restarts with the same shard count. Because
//! a changed `n` moves range boundaries, the store refuses to open with a
//! shard count other than the one it was created with.

use uuid::Uuid;

/// The shard owning `uuid` among `shard_count` shards (`shard_count >= 1`).
pub fn owner(uuid: &Uuid, shard_count: usize) -> usize {
    assert!(shard_count >= 1, "shard_count must be at least 1");
    let high = (uuid.as_u128() >> 64) as u64;
    let shard = ((u128::from(high) * shard_count as u128) >> 64) as usize;
    debug_assert!(shard < shard_count);
    shard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shard_owns_everything() {
        assert_eq!(owner(&Uuid::max(), 1), 0);
        assert_eq!(owner(&Uuid::nil(), 1), 0);
    }

    #[test]
    fn ranges_are_contiguous_and_cover_the_space() {
        for n in 1..=17usize {
            assert_eq!(owner(&Uuid::nil(), n), 0);
            assert_eq!(owner(&Uuid::max(), n), n - 1);
            // Walk the top 64 bits in steps: the owner never decreases.
            let mut last = 0;
            for step in 0..=1000u128 {
                let high = (u128::from(u64::MAX) * step / 1000) as u64;
                let uuid = Uuid::from_u128(u128::from(high) << 64);
                let shard = owner(&uuid, n);
                assert!(shard >= last && shard < n);
                last = shard;
            }
        }
    }

    #[test]
    fn boundaries_are_where_documented() {
        // With 2 shards the split is at the top bit.
        assert_eq!(owner(&Uuid::from_u128(0x7fff_ffff_ffff_ffff_ffff_ffff_ffff_ffff), 2), 0);
        assert_eq!(owner(&Uuid::from_u128(0x8000_0000_0000_0000_0000_0000_0000_0000), 2), 1);
        // With 4 shards, at each quarter.
        assert_eq!(owner(&Uuid::from_u128(0x4000_0000_0000_0000_0000_0000_0000_0000), 4), 1);
        assert_eq!(owner(&Uuid::from_u128(0xc000_0000_0000_0000_0000_0000_0000_0000), 4), 3);
    }

    #[test]
    fn random_uuids_spread_evenly() {
        let n = 4;
        let mut counts = [0usize; 4];
        for _ in 0..40_000 {
            counts[owner(&Uuid::new_v4(), n)] += 1;
        }
        for count in counts {
            assert!((8_000..12_000).contains(&count), "{counts:?}");
        }
    }
}
