//! SHA-256 on 8 independent messages at once, one per 32-bit lane of a ymm register (AVX2),
//! for CPUs without AVX-512 (or SHA-NI). The same algorithm as `sha256_x16`, with rotates
//! made of two shifts and the logic functions of two-input operations.

use std::arch::x86_64::*;

use super::sha256::H0;
use super::sha256_soft::{K, PAD_64_KW};

/// Lanes per vector.
pub const LANES: usize = 8;

/// Eight SHA-256 states, word-major: `s[w][l]` is word `w` of lane `l`.
pub type State8 = [[u32; LANES]; 8];

/// Whether this CPU runs this module's functions.
pub fn available() -> bool {
    is_x86_feature_detected!("avx2")
}

/// `ror(x, a) ^ ror(x, b) ^ ror(x, c)`: six shifts, the halves of each rotate xor-ed together
/// (their bits never overlap, so xor is or).
#[inline]
#[target_feature(enable = "avx2")]
fn sigma<const A: i32, const A2: i32, const B: i32, const B2: i32, const C: i32, const C2: i32>(
    x: __m256i,
) -> __m256i {
    let a = _mm256_xor_si256(_mm256_srli_epi32::<A>(x), _mm256_slli_epi32::<A2>(x));
    let b = _mm256_xor_si256(_mm256_srli_epi32::<B>(x), _mm256_slli_epi32::<B2>(x));
    let c = _mm256_xor_si256(_mm256_srli_epi32::<C>(x), _mm256_slli_epi32::<C2>(x));
    _mm256_xor_si256(a, _mm256_xor_si256(b, c))
}

#[inline]
#[target_feature(enable = "avx2")]
fn add(x: __m256i, y: __m256i) -> __m256i {
    _mm256_add_epi32(x, y)
}

#[inline]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn round(
    a: __m256i,
    b: __m256i,
    c: __m256i,
    d: &mut __m256i,
    e: __m256i,
    f: __m256i,
    g: __m256i,
    h: &mut __m256i,
    kw: __m256i,
) {
    let s1 = sigma::<6, 26, 11, 21, 25, 7>(e);
    // Ch(e, f, g) = ((f ^ g) & e) ^ g.
    let ch = _mm256_xor_si256(_mm256_and_si256(_mm256_xor_si256(f, g), e), g);
    let t1 = add(add(*h, kw), add(s1, ch));
    let s0 = sigma::<2, 30, 13, 19, 22, 10>(a);
    // Maj(a, b, c) = (a & b) | (c & (a | b)).
    let maj = _mm256_or_si256(
        _mm256_and_si256(a, b),
        _mm256_and_si256(c, _mm256_or_si256(a, b)),
    );
    *d = add(*d, t1);
    *h = add(t1, add(s0, maj));
}

#[inline]
#[target_feature(enable = "avx2")]
fn rounds(s: &mut [__m256i; 8], kw: impl Fn(usize) -> __m256i) {
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

#[inline]
#[target_feature(enable = "avx2")]
fn expand(w: &[__m256i; 16], kw: &mut [__m256i; 64]) {
    let mut x = *w;
    for t in 0..64 {
        if t >= 16 {
            let w15 = x[(t - 15) % 16];
            let w2 = x[(t - 2) % 16];
            let s0 = _mm256_xor_si256(
                _mm256_xor_si256(_mm256_srli_epi32::<7>(w15), _mm256_slli_epi32::<25>(w15)),
                _mm256_xor_si256(
                    _mm256_xor_si256(_mm256_srli_epi32::<18>(w15), _mm256_slli_epi32::<14>(w15)),
                    _mm256_srli_epi32::<3>(w15),
                ),
            );
            let s1 = _mm256_xor_si256(
                _mm256_xor_si256(_mm256_srli_epi32::<17>(w2), _mm256_slli_epi32::<15>(w2)),
                _mm256_xor_si256(
                    _mm256_xor_si256(_mm256_srli_epi32::<19>(w2), _mm256_slli_epi32::<13>(w2)),
                    _mm256_srli_epi32::<10>(w2),
                ),
            );
            x[t % 16] = add(add(x[t % 16], x[(t - 7) % 16]), add(s0, s1));
        }
        kw[t] = add(x[t % 16], _mm256_set1_epi32(K[t] as i32));
    }
}

/// Transposes 8 rows of 8 words: `out[j]` word `i` = `r[i]` word `j`.
#[inline]
#[target_feature(enable = "avx2")]
fn transpose8(r: &[__m256i; 8]) -> [__m256i; 8] {
    let t: [__m256i; 8] = std::array::from_fn(|i| {
        let (x, y) = (r[i & !1], r[i | 1]);
        if i % 2 == 0 {
            _mm256_unpacklo_epi32(x, y)
        } else {
            _mm256_unpackhi_epi32(x, y)
        }
    });
    // Half h of u[4k + m] holds word 4h + m of rows 4k..4k+3.
    let mut u = [_mm256_setzero_si256(); 8];
    for k in 0..2 {
        u[4 * k] = _mm256_unpacklo_epi64(t[4 * k], t[4 * k + 2]);
        u[4 * k + 1] = _mm256_unpackhi_epi64(t[4 * k], t[4 * k + 2]);
        u[4 * k + 2] = _mm256_unpacklo_epi64(t[4 * k + 1], t[4 * k + 3]);
        u[4 * k + 3] = _mm256_unpackhi_epi64(t[4 * k + 1], t[4 * k + 3]);
    }
    let mut out = [_mm256_setzero_si256(); 8];
    for m in 0..4 {
        out[m] = _mm256_permute2x128_si256::<0x20>(u[m], u[4 + m]);
        out[4 + m] = _mm256_permute2x128_si256::<0x31>(u[m], u[4 + m]);
    }
    out
}

#[inline]
#[target_feature(enable = "avx2")]
fn bswap(x: __m256i) -> __m256i {
    let m = _mm256_set_epi32(
        0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203, 0x0c0d0e0f, 0x08090a0b, 0x04050607,
        0x00010203,
    );
    _mm256_shuffle_epi8(x, m)
}

/// # Safety
/// `lanes[l]` must be valid for reads of `64 * (b + 1)` bytes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load_block(lanes: &[*const u8; LANES], b: usize) -> [__m256i; 16] {
    let mut w = [_mm256_setzero_si256(); 16];
    for half in 0..2 {
        // SAFETY: the caller guarantees 64 readable bytes at block b of every lane.
        let rows: [__m256i; 8] = std::array::from_fn(|l| unsafe {
            _mm256_loadu_si256(lanes[l].add(64 * b + 32 * half).cast())
        });
        for (i, v) in transpose8(&rows).into_iter().enumerate() {
            w[8 * half + i] = bswap(v);
        }
    }
    w
}

/// Compresses `blocks` blocks of each lane into `state`.
///
/// # Safety
/// The CPU must have AVX2; every `lanes[l]` must be valid for reads of `64 * blocks` bytes.
#[target_feature(enable = "avx2")]
pub unsafe fn compress(state: &mut State8, lanes: &[*const u8; LANES], blocks: usize) {
    // SAFETY (loads/stores of `state`): State8 is 8 rows of 32 bytes.
    let mut s: [__m256i; 8] =
        std::array::from_fn(|w| unsafe { _mm256_loadu_si256(state[w].as_ptr().cast()) });
    let mut kw = [_mm256_setzero_si256(); 64];
    for b in 0..blocks {
        // SAFETY: b < blocks, the caller's bound.
        let w = unsafe { load_block(lanes, b) };
        expand(&w, &mut kw);
        rounds(&mut s, |t| kw[t]);
    }
    for (row, v) in state.iter_mut().zip(s) {
        // SAFETY: as above.
        unsafe { _mm256_storeu_si256(row.as_mut_ptr().cast(), v) };
    }
}

/// `trunc254(SHA256(m))` of 8 consecutive 64-byte messages at `input`, written as 8
/// consecutive 32-byte nodes at `out`; every input byte is read before any is written.
///
/// # Safety
/// The CPU must have AVX2; `input` readable for 512 bytes, `out` writable for 256.
#[target_feature(enable = "avx2")]
pub unsafe fn hash64_trunc(input: *const u8, out: *mut u8) {
    let lanes: [*const u8; LANES] = std::array::from_fn(|l| input.wrapping_add(64 * l));
    // SAFETY: the caller's bound on `input`.
    let w = unsafe { load_block(&lanes, 0) };
    let mut kw = [_mm256_setzero_si256(); 64];
    expand(&w, &mut kw);
    let mut s: [__m256i; 8] = std::array::from_fn(|i| _mm256_set1_epi32(H0[i] as i32));
    rounds(&mut s, |t| kw[t]);
    rounds(&mut s, |t| _mm256_set1_epi32(PAD_64_KW[t] as i32));
    s[7] = _mm256_and_si256(s[7], _mm256_set1_epi32(0xffff_ff3fu32 as i32));
    // Word-major to lane-major is the same 8×8 transpose.
    for (l, v) in transpose8(&s).into_iter().enumerate() {
        // SAFETY: lane l < 8 is within the 256 bytes.
        unsafe { _mm256_storeu_si256(out.add(32 * l).cast(), bswap(v)) };
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
        let m: [[u32; 8]; 8] = std::array::from_fn(|i| std::array::from_fn(|j| (i * 8 + j) as u32));
        // SAFETY: AVX2 checked above; each row is 32 bytes.
        let got: [[u32; 8]; 8] = unsafe {
            let rows = std::array::from_fn(|i| _mm256_loadu_si256(m[i].as_ptr().cast()));
            let mut out = [[0u32; 8]; 8];
            for (o, v) in out.iter_mut().zip(transpose8(&rows)) {
                _mm256_storeu_si256(o.as_mut_ptr().cast(), v);
            }
            out
        };
        for i in 0..8 {
            for j in 0..8 {
                assert_eq!(got[j][i], m[i][j]);
            }
        }
    }
}
