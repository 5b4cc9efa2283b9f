//! Expander parents through a 3-round Feistel permutation (docs/sdr-porep.md#expander-parents).
//!
//! The index `8v + i` is permuted over the domain `8N` (cycle walking over the next power of 4)
//! with round function `BLAKE2b-512(u64_be(R) || u64_be(key))[..8]` read big-endian, then
//! divided by 8. Only the first three keys are used.

use super::EXP_DEGREE;
use crate::sector::proof::ApiVersion;

const ROUNDS: usize = 3;

/// A Feistel permutation over `[0, domain)`.
#[derive(Debug, Clone, Copy)]
pub struct Feistel {
    keys: [u64; 4],
    domain: u64,
    half_bits: u32,
    right_mask: u64,
}

impl Feistel {
    pub fn new(keys: [u64; 4], domain: u64) -> Feistel {
        // Smallest 4^h ≥ domain with h ≥ 1.
        let mut h = 1u32;
        while (1u64 << (2 * h)) < domain {
            h += 1;
        }
        Feistel {
            keys,
            domain,
            half_bits: h,
            right_mask: (1 << h) - 1,
        }
    }

    fn round(&self, right: u64, key: u64) -> u64 {
        let mut data = [0u8; 16];
        data[..8].copy_from_slice(&right.to_be_bytes());
        data[8..].copy_from_slice(&key.to_be_bytes());
        let h = blake2b_simd::blake2b(&data);
        u64::from_be_bytes(h.as_bytes()[..8].try_into().expect("8 bytes")) & self.right_mask
    }

    fn encode(&self, x: u64) -> u64 {
        let mut left = (x >> self.half_bits) & self.right_mask;
        let mut right = x & self.right_mask;
        for &key in &self.keys[..ROUNDS] {
            (left, right) = (right, left ^ self.round(right, key));
        }
        (left << self.half_bits) | right
    }

    /// The permutation of `x` within the domain.
    pub fn permute(&self, x: u64) -> u64 {
        let mut u = self.encode(x);
        while u >= self.domain {
            u = self.encode(u);
        }
        u
    }
}

/// The eight expander parents of `node`.
pub fn expander_parents(f: &Feistel, api: ApiVersion, node: u32) -> [u32; EXP_DEGREE] {
    std::array::from_fn(|i| {
        let t = f.permute(u64::from(node) * EXP_DEGREE as u64 + i as u64);
        match api {
            ApiVersion::V1_0_0 => t as u32 / EXP_DEGREE as u32,
            _ => u32::try_from(t / EXP_DEGREE as u64).expect("expander parent fits in u32"),
        }
    })
}
