//! Roots of all-zero binary SHA-256 trees: `Z(32)` is the zero node, `Z(2S) = H(Z(S) || Z(S))`.
//!
//! These let AddPiece and CommD account for zero padding (alignment gaps, the empty tail of a
//! sector, a whole committed-capacity sector) without hashing a single zero byte.

use std::sync::OnceLock;

use crate::hash::sha256::hash_nodes;

/// Largest tree level we tabulate: 2^40 bytes, far above the 64 GiB sector.
const MAX_LOG2: u32 = 40;

fn table() -> &'static [[u8; 32]] {
    static TABLE: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // Index k holds the root of a zero tree of 32 * 2^k bytes.
        let mut t = vec![[0u8; 32]];
        for k in 1..=(MAX_LOG2 - 5) as usize {
            let prev = t[k - 1];
            t.push(hash_nodes(&prev, &prev));
        }
        t
    })
}

/// Root of an all-zero tree over `padded_size` bytes (a power of two, at least 32).
pub fn zero_root(padded_size: u64) -> [u8; 32] {
    assert!(
        padded_size.is_power_of_two() && (32..=1u64 << MAX_LOG2).contains(&padded_size),
        "zero tree size must be a power of two in [32, 2^40]"
    );
    table()[(padded_size.trailing_zeros() - 5) as usize]
}
