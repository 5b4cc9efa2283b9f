//! SHA-256 on 16 independent messages at once, one per 32-bit lane of a zmm register
//! (AVX-512F; AVX-512BW for the byte swap).
//!
//! SHA-NI runs one compression as a dependent chain of `sha256rnds2`; here every instruction
//! works on 16 messages, and a round is 6 rotates (`vprord`), 4 three-input logic operations
//! (`vpternlogd`: Σ0, Σ1, Ch, Maj each in one) and 7 additions. The callers are the batch
//! labeler (16 sectors' chains) and the binary trees (node pairs of one level).
//!
//! Rotates are the scarce resource (one zmm rotate per cycle on the CPUs we measured, against
//! two additions or logic operations), and a round's critical path runs through three of
//! them, so a round alone leaves the rotate unit idle part of the time. The message schedule
//! is therefore computed inside the rounds (`W[t + 16]` during round `t`), where its
//! independent rotates fill those gaps, and the constant padding block of tree nodes, which
//! has no schedule, hashes two groups of 16 messages side by side for the same reason.
//!
//! Messages are loaded as 16 rows of 16 words and transposed to word-major order (word `t`
//! of every lane in one register); states are kept word-major ([`State16`]).

use std::arch::x86_64::*;

use super::sha256::H0;
use super::sha256_soft::{K, PAD_64_KW};

/// Lanes per vector.
pub const LANES: usize = 16;

/// Sixteen SHA-256 states, word-major: `s[w][l]` is word `w` of lane `l`.
pub type State16 = [[u32; LANES]; 8];

/// Whether this CPU runs this module's functions.
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")
}

#[inline]
#[target_feature(enable = "avx512f")]
fn ror<const N: i32>(x: __m512i) -> __m512i {
    _mm512_ror_epi32::<N>(x)
}

/// `x ^ y ^ z` in one `vpternlogd`.
#[inline]
#[target_feature(enable = "avx512f")]
fn xor3(x: __m512i, y: __m512i, z: __m512i) -> __m512i {
    _mm512_ternarylogic_epi32::<0x96>(x, y, z)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn add(x: __m512i, y: __m512i) -> __m512i {
    _mm512_add_epi32(x, y)
}

/// One round: `d` and `h` are updated in place, the caller rotates the names.
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
fn round(
    a: __m512i,
    b: __m512i,
    c: __m512i,
    d: &mut __m512i,
    e: __m512i,
    f: __m512i,
    g: __m512i,
    h: &mut __m512i,
    kw: __m512i,
) {
    let s1 = xor3(ror::<6>(e), ror::<11>(e), ror::<25>(e));
    // Ch(e, f, g) = e ? f : g.
    let ch = _mm512_ternarylogic_epi32::<0xCA>(e, f, g);
    let t1 = add(add(*h, kw), add(s1, ch));
    let s0 = xor3(ror::<2>(a), ror::<13>(a), ror::<22>(a));
    // Maj(a, b, c): the majority of three bits.
    let maj = _mm512_ternarylogic_epi32::<0xE8>(a, b, c);
    *d = add(*d, t1);
    *h = add(t1, add(s0, maj));
}

/// σ0 of the message schedule.
#[inline]
#[target_feature(enable = "avx512f")]
fn small_sigma0(x: __m512i) -> __m512i {
    xor3(ror::<7>(x), ror::<18>(x), _mm512_srli_epi32::<3>(x))
}

/// σ1 of the message schedule.
#[inline]
#[target_feature(enable = "avx512f")]
fn small_sigma1(x: __m512i) -> __m512i {
    xor3(ror::<17>(x), ror::<19>(x), _mm512_srli_epi32::<10>(x))
}

/// One block: the 64 rounds over message words `w`, with the schedule computed in the
/// rounds (`w` is a ring of the last 16 words), added into `s`.
#[inline]
#[target_feature(enable = "avx512f")]
// The last sixteen rounds expand no schedule; the macro still names the ring updates.
#[allow(unused_assignments)]
pub(crate) fn block(s: &mut [__m512i; 8], mut w: [__m512i; 16]) {
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *s;
    // Round t = 16 j + i uses W[t] (ring slot i); while the schedule runs (`$next`), slot i
    // then becomes W[t + 16] = σ1(W[t + 14]) + W[t + 9] + σ0(W[t + 1]) + W[t], all of them
    // already in the ring. Written out so every index is a constant.
    macro_rules! r {
        ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident, $j:literal, $i:literal, $next:literal) => {
            let kw = add(w[$i], _mm512_set1_epi32(K[16 * $j + $i] as i32));
            round($a, $b, $c, &mut $d, $e, $f, $g, &mut $h, kw);
            if $next {
                w[$i] = add(
                    add(w[$i], w[($i + 9) % 16]),
                    add(
                        small_sigma0(w[($i + 1) % 16]),
                        small_sigma1(w[($i + 14) % 16]),
                    ),
                );
            }
        };
    }
    macro_rules! sixteen {
        ($j:literal, $next:literal) => {
            r!(a, b, c, d, e, f, g, h, $j, 0, $next);
            r!(h, a, b, c, d, e, f, g, $j, 1, $next);
            r!(g, h, a, b, c, d, e, f, $j, 2, $next);
            r!(f, g, h, a, b, c, d, e, $j, 3, $next);
            r!(e, f, g, h, a, b, c, d, $j, 4, $next);
            r!(d, e, f, g, h, a, b, c, $j, 5, $next);
            r!(c, d, e, f, g, h, a, b, $j, 6, $next);
            r!(b, c, d, e, f, g, h, a, $j, 7, $next);
            r!(a, b, c, d, e, f, g, h, $j, 8, $next);
            r!(h, a, b, c, d, e, f, g, $j, 9, $next);
            r!(g, h, a, b, c, d, e, f, $j, 10, $next);
            r!(f, g, h, a, b, c, d, e, $j, 11, $next);
            r!(e, f, g, h, a, b, c, d, $j, 12, $next);
            r!(d, e, f, g, h, a, b, c, $j, 13, $next);
            r!(c, d, e, f, g, h, a, b, $j, 14, $next);
            r!(b, c, d, e, f, g, h, a, $j, 15, $next);
        };
    }
    sixteen!(0, true);
    sixteen!(1, true);
    sixteen!(2, true);
    sixteen!(3, false);
    for (x, y) in s.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *x = add(*x, y);
    }
}

/// The message schedule of a block with the round constants added, `K[t] + W[t]` for the 64
/// rounds. A label hashes the same parent blocks two to six times ([`crate::sdr::label_x16`]);
/// the schedule depends only on the message, so it is expanded once and each repeat runs the
/// rounds alone ([`block_kw`]), which skips the schedule's 4 rotates and 2 shifts per word
/// on the unit the rounds' rotates are queued on.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn schedule_kw(w: &[__m512i; 16]) -> [__m512i; 64] {
    let mut x = [_mm512_setzero_si512(); 64];
    x[..16].copy_from_slice(w);
    for t in 16..64 {
        x[t] = add(
            add(x[t - 16], x[t - 7]),
            add(small_sigma0(x[t - 15]), small_sigma1(x[t - 2])),
        );
    }
    for (t, v) in x.iter_mut().enumerate() {
        *v = add(*v, _mm512_set1_epi32(K[t] as i32));
    }
    x
}

/// One block from its expanded schedule ([`schedule_kw`]), added into `s`; equal to
/// [`block`] over the same message.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn block_kw(s: &mut [__m512i; 8], kw: &[__m512i; 64]) {
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *s;
    for k in kw.chunks_exact(8) {
        round(a, b, c, &mut d, e, f, g, &mut h, k[0]);
        round(h, a, b, &mut c, d, e, f, &mut g, k[1]);
        round(g, h, a, &mut b, c, d, e, &mut f, k[2]);
        round(f, g, h, &mut a, b, c, d, &mut e, k[3]);
        round(e, f, g, &mut h, a, b, c, &mut d, k[4]);
        round(d, e, f, &mut g, h, a, b, &mut c, k[5]);
        round(c, d, e, &mut f, g, h, a, &mut b, k[6]);
        round(b, c, d, &mut e, f, g, h, &mut a, k[7]);
    }
    for (x, y) in s.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *x = add(*x, y);
    }
}

/// The padding block of 64-byte messages (its `K + W` a constant) for two groups of 16
/// lanes side by side: two independent chains for the core to overlap.
#[inline]
#[target_feature(enable = "avx512f")]
fn pad_block2(s: &mut [[__m512i; 8]; 2]) {
    let [[mut a0, mut b0, mut c0, mut d0, mut e0, mut f0, mut g0, mut h0], [mut a1, mut b1, mut c1, mut d1, mut e1, mut f1, mut g1, mut h1]] =
        *s;
    let mut t = 0;
    while t < 64 {
        let kw = |i: usize| _mm512_set1_epi32(PAD_64_KW[t + i] as i32);
        round(a0, b0, c0, &mut d0, e0, f0, g0, &mut h0, kw(0));
        round(a1, b1, c1, &mut d1, e1, f1, g1, &mut h1, kw(0));
        round(h0, a0, b0, &mut c0, d0, e0, f0, &mut g0, kw(1));
        round(h1, a1, b1, &mut c1, d1, e1, f1, &mut g1, kw(1));
        round(g0, h0, a0, &mut b0, c0, d0, e0, &mut f0, kw(2));
        round(g1, h1, a1, &mut b1, c1, d1, e1, &mut f1, kw(2));
        round(f0, g0, h0, &mut a0, b0, c0, d0, &mut e0, kw(3));
        round(f1, g1, h1, &mut a1, b1, c1, d1, &mut e1, kw(3));
        round(e0, f0, g0, &mut h0, a0, b0, c0, &mut d0, kw(4));
        round(e1, f1, g1, &mut h1, a1, b1, c1, &mut d1, kw(4));
        round(d0, e0, f0, &mut g0, h0, a0, b0, &mut c0, kw(5));
        round(d1, e1, f1, &mut g1, h1, a1, b1, &mut c1, kw(5));
        round(c0, d0, e0, &mut f0, g0, h0, a0, &mut b0, kw(6));
        round(c1, d1, e1, &mut f1, g1, h1, a1, &mut b1, kw(6));
        round(b0, c0, d0, &mut e0, f0, g0, h0, &mut a0, kw(7));
        round(b1, c1, d1, &mut e1, f1, g1, h1, &mut a1, kw(7));
        t += 8;
    }
    let out = [
        [a0, b0, c0, d0, e0, f0, g0, h0],
        [a1, b1, c1, d1, e1, f1, g1, h1],
    ];
    for (sg, og) in s.iter_mut().zip(out) {
        for (x, y) in sg.iter_mut().zip(og) {
            *x = add(*x, y);
        }
    }
}

/// Transposes 16 rows of 16 words: `out[j]` word `i` = `rows[i]` word `j`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn transpose16(r: &[__m512i; 16]) -> [__m512i; 16] {
    // Within each 128-bit quarter: pairs of rows interleaved by words, then by word pairs.
    let mut t = [_mm512_setzero_si512(); 16];
    for k in 0..8 {
        t[2 * k] = _mm512_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
    }
    let mut u = [_mm512_setzero_si512(); 16];
    for k in 0..4 {
        u[4 * k] = _mm512_unpacklo_epi64(t[4 * k], t[4 * k + 2]);
        u[4 * k + 1] = _mm512_unpackhi_epi64(t[4 * k], t[4 * k + 2]);
        u[4 * k + 2] = _mm512_unpacklo_epi64(t[4 * k + 1], t[4 * k + 3]);
        u[4 * k + 3] = _mm512_unpackhi_epi64(t[4 * k + 1], t[4 * k + 3]);
    }
    // Quarter q of u[4k + m] now holds word 4q + m of rows 4k..4k+3: a 4×4 transpose of
    // 128-bit quarters finishes the job.
    let mut out = [_mm512_setzero_si512(); 16];
    for m in 0..4 {
        let v0 = _mm512_shuffle_i32x4::<0x88>(u[m], u[4 + m]);
        let v1 = _mm512_shuffle_i32x4::<0xDD>(u[m], u[4 + m]);
        let v2 = _mm512_shuffle_i32x4::<0x88>(u[8 + m], u[12 + m]);
        let v3 = _mm512_shuffle_i32x4::<0xDD>(u[8 + m], u[12 + m]);
        out[m] = _mm512_shuffle_i32x4::<0x88>(v0, v2);
        out[8 + m] = _mm512_shuffle_i32x4::<0xDD>(v0, v2);
        out[4 + m] = _mm512_shuffle_i32x4::<0x88>(v1, v3);
        out[12 + m] = _mm512_shuffle_i32x4::<0xDD>(v1, v3);
    }
    out
}

/// Byte-swaps every 32-bit word (SHA-256 words are big-endian).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn bswap(x: __m512i) -> __m512i {
    let m = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
    _mm512_shuffle_epi8(x, m)
}

/// Loads block `b` of 16 lanes as message words, word-major.
///
/// # Safety
/// `lanes[l]` must be valid for reads of `64 * (b + 1)` bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn load_block(lanes: &[*const u8; LANES], b: usize) -> [__m512i; 16] {
    // SAFETY: the caller guarantees 64 readable bytes at block b of every lane.
    let rows: [__m512i; 16] =
        std::array::from_fn(|l| unsafe { _mm512_loadu_si512(lanes[l].add(64 * b).cast()) });
    let mut w = transpose16(&rows);
    for x in &mut w {
        *x = bswap(*x);
    }
    w
}

/// Compresses `blocks` blocks of each lane into `state`.
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW; every `lanes[l]` must be valid for reads of
/// `64 * blocks` bytes.
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn compress(state: &mut State16, lanes: &[*const u8; LANES], blocks: usize) {
    // SAFETY (loads/stores of `state`): State16 is 8 rows of 64 bytes.
    let mut s: [__m512i; 8] =
        std::array::from_fn(|w| unsafe { _mm512_loadu_si512(state[w].as_ptr().cast()) });
    for b in 0..blocks {
        // SAFETY: b < blocks, the caller's bound.
        block(&mut s, unsafe { load_block(lanes, b) });
    }
    for (row, v) in state.iter_mut().zip(s) {
        // SAFETY: as above.
        unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), v) };
    }
}

/// Messages [`hash64_trunc`] hashes per call.
pub const HASH64_MESSAGES: usize = 32;

/// `trunc254(SHA256(m))` of 32 consecutive 64-byte messages at `input`, written as 32
/// consecutive 32-byte nodes at `out`. All 2048 input bytes are read before any output byte
/// is written, so `out` may overlap `input` (a tree level hashed in place).
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW; `input` readable for 2048 bytes, `out`
/// writable for 1024.
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn hash64_trunc(input: *const u8, out: *mut u8) {
    let mut s: [[__m512i; 8]; 2] = [std::array::from_fn(|i| _mm512_set1_epi32(H0[i] as i32)); 2];
    for (g, sg) in s.iter_mut().enumerate() {
        let lanes: [*const u8; LANES] =
            std::array::from_fn(|l| input.wrapping_add(64 * (LANES * g + l)));
        // SAFETY: the caller's bound on `input`.
        block(sg, unsafe { load_block(&lanes, 0) });
    }
    pad_block2(&mut s);
    for (g, sg) in s.iter_mut().enumerate() {
        // trunc254: the digest's last byte (the low byte of word 7) loses its top two bits.
        sg[7] = _mm512_and_si512(sg[7], _mm512_set1_epi32(0xffff_ff3fu32 as i32));
        // SAFETY: the caller's bound on `out`; group g's 16 nodes are its second half.
        unsafe { store_nodes(sg, out.add(32 * LANES * g)) };
    }
}

/// Writes 16 states as 16 consecutive 32-byte big-endian digests.
///
/// # Safety
/// `out` writable for 512 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) unsafe fn store_nodes(s: &[__m512i; 8], out: *mut u8) {
    let s: [__m512i; 8] = std::array::from_fn(|i| bswap(s[i]));
    // As in `transpose16` with 8 rows: quarter q of u[4k + m] holds lane 4q + m of words
    // 4k..4k+3, so lane j = 4q + m is quarter q of u[m] followed by quarter q of u[4 + m].
    let mut t = [_mm512_setzero_si512(); 8];
    for k in 0..4 {
        t[2 * k] = _mm512_unpacklo_epi32(s[2 * k], s[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_epi32(s[2 * k], s[2 * k + 1]);
    }
    let mut u = [_mm512_setzero_si512(); 8];
    for k in 0..2 {
        u[4 * k] = _mm512_unpacklo_epi64(t[4 * k], t[4 * k + 2]);
        u[4 * k + 1] = _mm512_unpackhi_epi64(t[4 * k], t[4 * k + 2]);
        u[4 * k + 2] = _mm512_unpacklo_epi64(t[4 * k + 1], t[4 * k + 3]);
        u[4 * k + 3] = _mm512_unpackhi_epi64(t[4 * k + 1], t[4 * k + 3]);
    }
    for m in 0..4 {
        // [u_m.q0, u_m.q2, u_4+m.q0, u_4+m.q2] → [u_m.q0, u_4+m.q0 | u_m.q2, u_4+m.q2]
        let even = _mm512_shuffle_i32x4::<0x88>(u[m], u[4 + m]);
        let odd = _mm512_shuffle_i32x4::<0xDD>(u[m], u[4 + m]);
        let even = _mm512_shuffle_i32x4::<0xD8>(even, even);
        let odd = _mm512_shuffle_i32x4::<0xD8>(odd, odd);
        // SAFETY: lanes m, 8 + m, 4 + m, 12 + m are within the 512 bytes.
        unsafe {
            _mm256_storeu_si256(out.add(32 * m).cast(), _mm512_castsi512_si256(even));
            _mm256_storeu_si256(
                out.add(32 * (8 + m)).cast(),
                _mm512_extracti64x4_epi64::<1>(even),
            );
            _mm256_storeu_si256(out.add(32 * (4 + m)).cast(), _mm512_castsi512_si256(odd));
            _mm256_storeu_si256(
                out.add(32 * (12 + m)).cast(),
                _mm512_extracti64x4_epi64::<1>(odd),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block from its precomputed schedule equals the block with the schedule in its rounds.
    #[test]
    fn block_from_its_schedule_equals_block() {
        if !available() {
            return;
        }
        let mut seed = 3u32;
        let mut next = || {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            seed
        };
        let words: [[u32; 16]; 16] = std::array::from_fn(|_| std::array::from_fn(|_| next()));
        let state: [[u32; 16]; 8] = std::array::from_fn(|_| std::array::from_fn(|_| next()));
        // SAFETY: AVX-512 checked above; every array row is 64 bytes.
        let (want, got) = unsafe {
            let w: [__m512i; 16] =
                std::array::from_fn(|i| _mm512_loadu_si512(words[i].as_ptr().cast()));
            let s: [__m512i; 8] =
                std::array::from_fn(|i| _mm512_loadu_si512(state[i].as_ptr().cast()));
            let (mut a, mut b) = (s, s);
            block(&mut a, w);
            block_kw(&mut b, &schedule_kw(&w));
            let out = |v: [__m512i; 8]| {
                let mut o = [[0u32; 16]; 8];
                for (o, v) in o.iter_mut().zip(v) {
                    _mm512_storeu_si512(o.as_mut_ptr().cast(), v);
                }
                o
            };
            (out(a), out(b))
        };
        assert_eq!(got, want);
        assert_ne!(got, state, "the block changed the state");
    }

    #[test]
    fn transpose_is_a_transpose() {
        if !available() {
            return;
        }
        let m: [[u32; 16]; 16] =
            std::array::from_fn(|i| std::array::from_fn(|j| (i * 16 + j) as u32));
        // SAFETY: AVX-512 checked above; each row is 64 bytes.
        let got: [[u32; 16]; 16] = unsafe {
            let rows = std::array::from_fn(|i| _mm512_loadu_si512(m[i].as_ptr().cast()));
            let t = transpose16(&rows);
            let mut out = [[0u32; 16]; 16];
            for (o, v) in out.iter_mut().zip(t) {
                _mm512_storeu_si512(o.as_mut_ptr().cast(), v);
            }
            out
        };
        for i in 0..16 {
            for j in 0..16 {
                assert_eq!(got[j][i], m[i][j]);
            }
        }
    }
}
