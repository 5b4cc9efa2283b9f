//! SHA-256 on 16 independent messages at once, one per 32-bit lane of a zmm register
//! (AVX-512F; AVX-512BW for the byte swap).
//!
//! SHA-NI runs one compression as a dependent chain of `sha256rnds2`; here every instruction
//! works on 16 messages, and a round is 6 rotates (`vprord`), 4 three-input logic operations
//! (`vpternlogd`: Σ0, Σ1, Ch, Maj each in one) and 7 additions. The callers are the batch
//! labeler (16 sectors' chains) and the binary trees (16 node pairs of one level).
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

/// The 64 rounds; `kw(t)` gives `K[t] + W[t]` for all lanes. Adds into `s`.
#[inline]
#[target_feature(enable = "avx512f")]
fn rounds(s: &mut [__m512i; 8], kw: impl Fn(usize) -> __m512i) {
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *s;
    let mut t = 0;
    while t < 64 {
        round(a, b, c, &mut d, e, f, g, &mut h, kw(t));
        round(h, a, b, &mut c, d, e, f, &mut g, kw(t + 1));
        round(g, h, a, &mut b, c, d, e, &mut f, kw(t + 2));
        round(f, g, h, &mut a, b, c, d, &mut e, kw(t + 3));
        round(e, f, g, &mut h, a, b, c, &mut d, kw(t + 4));
        round(d, e, f, &mut g, h, a, b, &mut c, kw(t + 5));
        round(c, d, e, &mut f, g, h, a, &mut b, kw(t + 6));
        round(b, c, d, &mut e, f, g, h, &mut a, kw(t + 7));
        t += 8;
    }
    for (x, y) in s.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *x = add(*x, y);
    }
}

/// Expands the 16 message words to `K[t] + W[t]` for all 64 rounds.
#[inline]
#[target_feature(enable = "avx512f")]
fn expand(w: &[__m512i; 16], kw: &mut [__m512i; 64]) {
    let mut x = *w;
    for t in 0..64 {
        if t >= 16 {
            let w15 = x[(t - 15) % 16];
            let w2 = x[(t - 2) % 16];
            let s0 = xor3(ror::<7>(w15), ror::<18>(w15), _mm512_srli_epi32::<3>(w15));
            let s1 = xor3(ror::<17>(w2), ror::<19>(w2), _mm512_srli_epi32::<10>(w2));
            x[t % 16] = add(add(x[t % 16], x[(t - 7) % 16]), add(s0, s1));
        }
        kw[t] = add(x[t % 16], _mm512_set1_epi32(K[t] as i32));
    }
}

/// Transposes 16 rows of 16 words: `out[j]` word `i` = `rows[i]` word `j`.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose16(r: &[__m512i; 16]) -> [__m512i; 16] {
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
fn bswap(x: __m512i) -> __m512i {
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
    let mut kw = [_mm512_setzero_si512(); 64];
    for b in 0..blocks {
        // SAFETY: b < blocks, the caller's bound.
        let w = unsafe { load_block(lanes, b) };
        expand(&w, &mut kw);
        rounds(&mut s, |t| kw[t]);
    }
    for (row, v) in state.iter_mut().zip(s) {
        // SAFETY: as above.
        unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), v) };
    }
}

/// `trunc254(SHA256(m))` of 16 consecutive 64-byte messages at `input`, written as 16
/// consecutive 32-byte nodes at `out`. All 1024 input bytes are read before any output byte
/// is written, so `out` may overlap `input` (a tree level hashed in place).
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW; `input` readable for 1024 bytes, `out`
/// writable for 512.
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn hash64_trunc(input: *const u8, out: *mut u8) {
    let lanes: [*const u8; LANES] = std::array::from_fn(|l| input.wrapping_add(64 * l));
    // SAFETY: the caller's bound on `input`.
    let w = unsafe { load_block(&lanes, 0) };
    let mut kw = [_mm512_setzero_si512(); 64];
    expand(&w, &mut kw);
    let mut s: [__m512i; 8] = std::array::from_fn(|i| _mm512_set1_epi32(H0[i] as i32));
    rounds(&mut s, |t| kw[t]);
    // The padding block's schedule is a constant: K + W precomputed, broadcast per round.
    rounds(&mut s, |t| _mm512_set1_epi32(PAD_64_KW[t] as i32));
    // trunc254: the digest's last byte (the low byte of word 7) loses its top two bits.
    s[7] = _mm512_and_si512(s[7], _mm512_set1_epi32(0xffff_ff3fu32 as i32));
    // SAFETY: the caller's bound on `out`.
    unsafe { store_nodes(&s, out) };
}

/// Writes 16 states as 16 consecutive 32-byte big-endian digests.
///
/// # Safety
/// `out` writable for 512 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn store_nodes(s: &[__m512i; 8], out: *mut u8) {
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
