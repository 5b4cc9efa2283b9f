//! SHA-256 node hashing for the binary trees (CommP, CommD, tree_d).
//!
//! An internal node is `trunc254(SHA256(left || right))`. The message is always exactly
//! 64 bytes, so the SHA-256 padding block is a constant: we hand both blocks straight to the
//! compression function (`sha2::compress256`, which picks the SHA-NI instructions at run time
//! when the CPU has them) and skip the generic `Digest` buffering entirely.

use sha2::digest::generic_array::GenericArray;

/// SHA-256 initial hash value (FIPS 180-4 §5.3.3).
pub const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The second block of every 64-byte message: 0x80, zeros, then the bit length 512 big-endian.
const PAD_64: [u8; 64] = {
    let mut b = [0u8; 64];
    b[0] = 0x80;
    b[62] = 0x02;
    b
};

/// Clears the two most significant bits of a little-endian 32-byte value, making it a
/// canonical BLS12-381 scalar (< 2^254 < p). Applied to every SHA-256 output that becomes a node.
#[inline]
pub fn trunc254(mut node: [u8; 32]) -> [u8; 32] {
    node[31] &= 0x3f;
    node
}

/// Runs the compression function over `data`, a whole number of 64-byte blocks.
#[inline]
pub fn compress_blocks(state: &mut [u32; 8], data: &[u8]) {
    debug_assert!(data.len().is_multiple_of(64));
    type Block = GenericArray<u8, sha2::digest::consts::U64>;
    // SAFETY: `GenericArray<u8, U64>` is `repr(transparent)` over `[u8; 64]` (alignment 1),
    // so a byte slice of whole blocks is a valid slice of blocks; sha2 casts the other way.
    let blocks =
        unsafe { std::slice::from_raw_parts(data.as_ptr() as *const Block, data.len() / 64) };
    sha2::compress256(state, blocks);
}

/// The big-endian digest bytes of a state, truncated to 254 bits.
#[inline]
pub fn state_to_node(state: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    trunc254(out)
}

/// `trunc254(SHA256(left || right))` over a 64-byte pair.
#[inline]
pub fn hash_pair64(pair: &[u8; 64]) -> [u8; 32] {
    let mut state = H0;
    let blocks = [
        *GenericArray::from_slice(pair),
        *GenericArray::from_slice(&PAD_64),
    ];
    sha2::compress256(&mut state, &blocks);
    state_to_node(&state)
}

/// `trunc254(SHA256(left || right))` for two separate nodes.
#[inline]
pub fn hash_nodes(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut pair = [0u8; 64];
    pair[..32].copy_from_slice(left);
    pair[32..].copy_from_slice(right);
    hash_pair64(&pair)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn matches_generic_sha256_then_trunc() {
        let mut pair = [0u8; 64];
        for (i, b) in pair.iter_mut().enumerate() {
            *b = (i * 37 + 11) as u8;
        }
        let mut want: [u8; 32] = Sha256::digest(pair).into();
        want[31] &= 0x3f;
        assert_eq!(hash_pair64(&pair), want);
    }
}
