//! fr32 padding: packing 254-bit chunks of a byte stream into 32-byte field elements.
//!
//! Every 127 input bytes (1016 bits, little-endian bit order) become four 32-byte words, word
//! `k` holding bits `[254k, 254k + 254)` with its two top bits zero, so each word is a valid
//! BLS12-381 scalar. It is a bit-level packing, not "two zero bits inserted per 254 bits of a
//! big-endian stream" (docs/sdr-porep.md#fr32-padding, docs/sdr-porep.md#traps).

use anyhow::{ensure, Result};

/// Unpadded bytes per block.
pub const UNPADDED_BLOCK: usize = 127;
/// Padded bytes per block.
pub const PADDED_BLOCK: usize = 128;

/// Padded length of `unpadded` bytes (`fr32::to_padded_bytes`): the stream is cut into
/// 254-bit chunks, each stored in 256 bits; a partial chunk keeps its partial length.
pub fn to_padded_bytes(unpadded: u64) -> u64 {
    let bits = unpadded * 8;
    (bits / 254 * 256 + bits % 254).div_ceil(8)
}

/// Unpadded length that `padded` bytes hold (`fr32::to_unpadded_bytes`).
pub fn to_unpadded_bytes(padded: u64) -> u64 {
    let bits = padded * 8;
    (bits / 256 * 254 + bits % 256) / 8
}

#[inline]
fn load_block(raw: &[u8]) -> [u64; 16] {
    let mut bytes = [0u8; 128];
    bytes[..UNPADDED_BLOCK].copy_from_slice(&raw[..UNPADDED_BLOCK]);
    let mut limbs = [0u64; 16];
    for (l, c) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
        *l = u64::from_le_bytes(c.try_into().expect("8 bytes"));
    }
    limbs
}

/// Pads one 127-byte block into 128 bytes.
#[inline]
pub fn pad_block(raw: &[u8], out: &mut [u8]) {
    const TOP2: u64 = (1 << 62) - 1;
    let x = load_block(raw);
    // Word k starts at bit 254k = 64*q + r with (q, r) = (0,0), (3,62), (7,60), (11,58).
    let mut words = [0u64; 16];
    words[..4].copy_from_slice(&x[..4]);
    for (k, (q, r)) in [(3usize, 62u32), (7, 60), (11, 58)].into_iter().enumerate() {
        for j in 0..4 {
            words[4 * (k + 1) + j] = (x[q + j] >> r) | (x[q + j + 1] << (64 - r));
        }
    }
    for k in 0..4 {
        words[4 * k + 3] &= TOP2;
    }
    for (c, w) in out[..PADDED_BLOCK].chunks_exact_mut(8).zip(words) {
        c.copy_from_slice(&w.to_le_bytes());
    }
}

/// Unpads one 128-byte block into 127 bytes (the inverse of [`pad_block`]).
#[inline]
pub fn unpad_block(padded: &[u8], out: &mut [u8]) {
    const TOP2: u64 = (1 << 62) - 1;
    let mut w = [0u64; 16];
    for (l, c) in w.iter_mut().zip(padded[..PADDED_BLOCK].chunks_exact(8)) {
        *l = u64::from_le_bytes(c.try_into().expect("8 bytes"));
    }
    for k in 0..4 {
        w[4 * k + 3] &= TOP2;
    }
    let mut x = [0u64; 17];
    // Scatter each 254-bit word at bit offset 254k.
    for k in 0..4 {
        let bit = 254 * k;
        let (q, r) = (bit / 64, (bit % 64) as u32);
        for j in 0..4 {
            x[q + j] |= w[4 * k + j] << r;
            if r != 0 {
                x[q + j + 1] |= w[4 * k + j] >> (64 - r);
            }
        }
    }
    let mut bytes = [0u8; 136];
    for (c, l) in bytes.chunks_exact_mut(8).zip(x) {
        c.copy_from_slice(&l.to_le_bytes());
    }
    out[..UNPADDED_BLOCK].copy_from_slice(&bytes[..UNPADDED_BLOCK]);
}

/// Pads `raw` (a whole number of 127-byte blocks) into `out` (128 bytes per block).
pub fn pad(raw: &[u8], out: &mut [u8]) {
    assert_eq!(
        raw.len() % UNPADDED_BLOCK,
        0,
        "pad takes whole 127-byte blocks"
    );
    assert_eq!(out.len(), raw.len() / UNPADDED_BLOCK * PADDED_BLOCK);
    for (r, o) in raw
        .chunks_exact(UNPADDED_BLOCK)
        .zip(out.chunks_exact_mut(PADDED_BLOCK))
    {
        pad_block(r, o);
    }
}

/// Pads any number of bytes, zero-extending the last block; returns whole 128-byte blocks.
pub fn pad_to_vec(raw: &[u8]) -> Vec<u8> {
    let blocks = raw.len().div_ceil(UNPADDED_BLOCK);
    let mut src = raw.to_vec();
    src.resize(blocks * UNPADDED_BLOCK, 0);
    let mut out = vec![0u8; blocks * PADDED_BLOCK];
    pad(&src, &mut out);
    out
}

/// Unpads `padded` (a whole number of 128-byte blocks) into `out` (127 bytes per block).
pub fn unpad(padded: &[u8], out: &mut [u8]) {
    assert_eq!(
        padded.len() % PADDED_BLOCK,
        0,
        "unpad takes whole 128-byte blocks"
    );
    assert_eq!(out.len(), padded.len() / PADDED_BLOCK * UNPADDED_BLOCK);
    for (p, o) in padded
        .chunks_exact(PADDED_BLOCK)
        .zip(out.chunks_exact_mut(UNPADDED_BLOCK))
    {
        unpad_block(p, o);
    }
}

/// The padded byte range (whole 128-byte blocks) that holds unpadded bytes
/// `[offset, offset + len)`, and where those bytes start once that range is unpadded.
pub fn covering_blocks(offset: u64, len: u64) -> (std::ops::Range<u64>, usize) {
    let first = offset / UNPADDED_BLOCK as u64;
    let last = (offset + len.max(1) - 1) / UNPADDED_BLOCK as u64;
    let range = first * PADDED_BLOCK as u64..(last + 1) * PADDED_BLOCK as u64;
    (range, (offset - first * UNPADDED_BLOCK as u64) as usize)
}

/// Unpadded bytes `[offset, offset + len)` of a padded stream, given the padded bytes of
/// [`covering_blocks`]. Correct for every offset and length, not only multiples of 127.
pub fn unpad_range(covering: &[u8], skip: usize, len: usize) -> Result<Vec<u8>> {
    ensure!(
        covering.len().is_multiple_of(PADDED_BLOCK),
        "padded input is not whole 128-byte blocks"
    );
    let mut all = vec![0u8; covering.len() / PADDED_BLOCK * UNPADDED_BLOCK];
    unpad(covering, &mut all);
    ensure!(skip + len <= all.len(), "range runs past the padded input");
    all.truncate(skip + len);
    all.drain(..skip);
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec Appendix A.2: pad(0x00..0x7e).
    #[test]
    fn known_answer_counting_block() {
        let raw: Vec<u8> = (0..127u8).collect();
        let padded = pad_to_vec(&raw);
        let hex = crate::hex::encode(&padded);
        assert_eq!(
            hex,
            concat!(
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                "8084888c9094989ca0a4a8acb0b4b8bcc0c4c8ccd0d4d8dce0e4e8ecf0f4f83c",
                "03142434445464748494a4b4c4d4e4f404152535455565758595a5b5c5d5e535",
                "175898d8185999d9195a9ada1a5b9bdb1b5c9cdc1c5d9ddd1d5e9ede1e5f9f1f"
            )
        );
        let mut back = vec![0u8; 127];
        unpad(&padded, &mut back);
        assert_eq!(back, raw);
    }

    #[test]
    fn all_ones_block() {
        let padded = pad_to_vec(&[0xff; 127]);
        for w in padded.chunks(32) {
            assert!(w[..31].iter().all(|&b| b == 0xff));
            assert_eq!(w[31], 0x3f);
        }
    }

    #[test]
    fn size_maths() {
        assert_eq!(to_padded_bytes(127), 128);
        assert_eq!(to_padded_bytes(2032), 2048);
        assert_eq!(to_unpadded_bytes(2048), 2032);
        assert_eq!(to_unpadded_bytes(32 << 30), 34_091_302_912);
        assert_eq!(to_padded_bytes(1), 1);
        assert_eq!(to_padded_bytes(32), 33);
    }
}
