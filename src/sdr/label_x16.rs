//! SDR labels of up to 16 sectors at once on AVX-512, read straight from a group's
//! interleaved layers ([`crate::sdr::batch`]) and written straight back.
//!
//! The general path ([`super::label::label_layer_n_16`]) copies every node's 14 parents of
//! every lane into per-lane buffers, then loads and transposes each of the 18 parent blocks
//! of the message on its way into the 16 lanes. But the message repeats its parents (in
//! layer 1 the same 3 blocks six times, in later layers 7 blocks twice and 4 of them a third
//! time), so here each distinct block is transposed once, from the parents' rows where they
//! lie, and the schedules of the blocks used three times or more expanded once for their
//! repeats (a repeat then costs the 64 rounds alone, about two thirds of a compression's
//! vector work; layer 1's group labels 64 → 76 M compressions/s in `bench_label --group`).
//! The header block needs no transposing at all (the replica ids' words are the same for
//! every node, the layer and node index the same in every lane), the final block reuses its
//! parent's words, and the labels go from the state to the output row in one transpose. Equal to the general path: tested below.

use std::arch::x86_64::*;

use super::{BASE_DEGREE, DEGREE};
use crate::hash::sha256::H0;
use crate::hash::sha256_x16::{
    block, block_kw, bswap, schedule_kw, store_nodes, transpose16, LANES,
};

/// Message length of a label (1248 bytes) in bits, the last word of the final block.
const MESSAGE_BITS: u32 = 1248 * 8;

/// What stays the same for every node of a group's layer: the replica ids' words, the lanes.
#[derive(Clone, Copy)]
pub struct Group16 {
    rid_words: [__m512i; 8],
    lanes: usize,
    layer: u32,
}

impl Group16 {
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512BW.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn new(replica_ids: &[[u8; 32]], layer: u32) -> Group16 {
        let lanes = replica_ids.len();
        assert!((1..=LANES).contains(&lanes), "1 to 16 sectors in a group");
        let rows: [[u8; 32]; LANES] = std::array::from_fn(|l| replica_ids[l.min(lanes - 1)]);
        // SAFETY: `rows` is 16 × 32 contiguous bytes, the row layout `pair_words` reads.
        let w = unsafe { pair_words(rows.as_ptr().cast(), rows.as_ptr().cast(), LANES) };
        Group16 {
            rid_words: std::array::from_fn(|i| w[i]),
            lanes,
            layer,
        }
    }
}

/// The message words of the block made of parent rows `p` and `q` (each `lanes` labels of
/// 32 bytes, lane by lane), word-major: lane `l` hashes `p[l] || q[l]`. Lanes past `lanes`
/// repeat the last one.
///
/// # Safety
/// AVX-512F and AVX-512BW; `p` and `q` readable for `lanes * 32` bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn pair_words(p: *const u8, q: *const u8, lanes: usize) -> [__m512i; 16] {
    let rows: [__m512i; 16] = std::array::from_fn(|l| {
        let at = 32 * l.min(lanes - 1);
        // SAFETY: `at + 32 <= lanes * 32`, the caller's bound.
        unsafe {
            let lo = _mm256_loadu_si256(p.add(at).cast());
            let hi = _mm256_loadu_si256(q.add(at).cast());
            _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
        }
    });
    let mut w = transpose16(&rows);
    for x in &mut w {
        *x = bswap(*x);
    }
    w
}

/// Labels node `v` of every lane from its parents' rows (`parents`: 6 in layer 1, else 14,
/// base parents first, each `lanes * 32` bytes) into the row at `out`.
///
/// # Safety
/// AVX-512F and AVX-512BW; every parent pointer readable and `out` writable for
/// `lanes * 32` bytes; `out` overlaps no parent row.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn label_row(g: &Group16, v: u64, parents: &[*const u8], out: *mut u8) {
    let lanes = g.lanes;
    let mut s: [__m512i; 8] = std::array::from_fn(|i| _mm512_set1_epi32(H0[i] as i32));
    // The header block: replica id, layer, node index, zeros.
    let zero = _mm512_setzero_si512();
    let mut header = [zero; 16];
    header[..8].copy_from_slice(&g.rid_words);
    header[8] = _mm512_set1_epi32(g.layer as i32);
    header[9] = _mm512_set1_epi32((v >> 32) as i32);
    header[10] = _mm512_set1_epi32(v as u32 as i32);
    block(&mut s, header);
    // A distinct parent block's schedule is expanded once and its repeats run the rounds
    // alone (`block_kw`).
    // SAFETY (pair_words): the caller's bounds on every parent row.
    let last = if parents.len() == BASE_DEGREE {
        // 36 parents = the 6 base parents six times = 3 blocks six times; parent 37 is the first.
        let w: [[__m512i; 16]; 3] = std::array::from_fn(|i| unsafe {
            pair_words(parents[2 * i], parents[2 * i + 1], lanes)
        });
        let kw: [[__m512i; 64]; 3] = std::array::from_fn(|i| schedule_kw(&w[i]));
        for _ in 0..6 {
            for k in &kw {
                block_kw(&mut s, k);
            }
        }
        w[0]
    } else {
        assert_eq!(parents.len(), DEGREE, "6 or 14 parents");
        // 36 parents = all 14, all 14 again, the first 8 = 7 + 7 + 4 blocks; parent 37 is the
        // ninth (the first half of block 4).
        let w: [[__m512i; 16]; 7] = std::array::from_fn(|i| unsafe {
            pair_words(parents[2 * i], parents[2 * i + 1], lanes)
        });
        // Only the 4 blocks used three times keep their schedules: keeping all 7 (28 KiB,
        // beside the parents' rows in L1) measured 11% slower than expanding none, these 4
        // about 3% faster.
        let kw: [[__m512i; 64]; 4] = std::array::from_fn(|i| schedule_kw(&w[i]));
        for _ in 0..2 {
            for k in &kw {
                block_kw(&mut s, k);
            }
            for x in &w[4..] {
                block(&mut s, *x);
            }
        }
        for k in &kw {
            block_kw(&mut s, k);
        }
        w[4]
    };
    // The final block: parent 37, then the padding and the length.
    let mut fin = [zero; 16];
    fin[..8].copy_from_slice(&last[..8]);
    fin[8] = _mm512_set1_epi32(0x8000_0000u32 as i32);
    fin[15] = _mm512_set1_epi32(MESSAGE_BITS as i32);
    block(&mut s, fin);
    // trunc254: the digest's last byte (the low byte of word 7) loses its top two bits.
    s[7] = _mm512_and_si512(s[7], _mm512_set1_epi32(0xffff_ff3fu32 as i32));
    if lanes == LANES {
        // SAFETY: `out` is writable for 16 × 32 bytes (the caller's bound).
        unsafe { store_nodes(&s, out) };
    } else {
        let mut row = [0u8; 32 * LANES];
        // SAFETY: `row` is 512 bytes; `out` is writable for `lanes * 32` of them.
        unsafe {
            store_nodes(&s, row.as_mut_ptr());
            std::ptr::copy_nonoverlapping(row.as_ptr(), out, lanes * 32);
        }
    }
}

/// Whether [`label_row`] equals the general 16-lane path ([`super::label`]) on this CPU for
/// `lanes` sectors: three rows of pseudo-random parents (layer 1, layer 2, a node index with
/// high bits set) hashed both ways. The batch labeler runs this before it trusts the fast
/// path with a layer (microseconds), so a fault in it cannot reach a sector's files.
pub fn agrees_with_general_path(lanes: usize) -> bool {
    use crate::hash::sha256_engine::Engine;
    use crate::sdr::label::{header_states16, label_layer1_16, label_layer_n_16, LABEL};
    if !crate::hash::sha256_x16::available() || !(1..=LANES).contains(&lanes) {
        return false;
    }
    let mut seed = 7u64 + lanes as u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as u8
    };
    let rids: Vec<[u8; 32]> = (0..lanes)
        .map(|_| std::array::from_fn(|_| next()))
        .collect();
    // 14 parent rows of `lanes` labels each, and the same labels lane by lane.
    let rows: Vec<Vec<u8>> = (0..DEGREE)
        .map(|_| (0..lanes * LABEL).map(|_| next()).collect())
        .collect();
    let ptrs: Vec<*const u8> = rows.iter().map(|r| r.as_ptr()).collect();
    let bufs: [[u8; DEGREE * LABEL]; 16] = std::array::from_fn(|l| {
        let mut b = [0u8; DEGREE * LABEL];
        for (i, r) in rows.iter().enumerate() {
            let l = l.min(lanes - 1);
            b[i * LABEL..(i + 1) * LABEL].copy_from_slice(&r[l * LABEL..(l + 1) * LABEL]);
        }
        b
    });
    [(1u32, 3u64), (2, 77), (11, (1 << 33) + 5)]
        .into_iter()
        .all(|(layer, v)| {
            let mut st = header_states16(Engine::Avx512, &rids, layer, v);
            let want = if layer == 1 {
                label_layer1_16(Engine::Avx512, &mut st, &bufs, lanes)
            } else {
                label_layer_n_16(Engine::Avx512, &mut st, &bufs, lanes)
            };
            let mut got = vec![0xeeu8; lanes * LABEL + 1];
            let n = if layer == 1 { BASE_DEGREE } else { DEGREE };
            // SAFETY: AVX-512 checked above; parent rows of `lanes * 32` bytes; `got` is
            // larger than a row and separate from them.
            unsafe {
                let g = Group16::new(&rids, layer);
                label_row(&g, v, &ptrs[..n], got.as_mut_ptr());
            }
            got[lanes * LABEL] == 0xee
                && (0..lanes).all(|l| got[l * LABEL..(l + 1) * LABEL] == want[l])
        })
}

#[cfg(test)]
mod tests {
    /// Equal to the general 16-lane path for every lane count, both layer kinds, and node
    /// indices with high bits set; nothing written past the row.
    #[test]
    fn equals_the_general_path() {
        if !crate::hash::sha256_x16::available() {
            return;
        }
        for lanes in [1usize, 5, 15, 16] {
            assert!(super::agrees_with_general_path(lanes), "{lanes} lanes");
        }
    }
}
