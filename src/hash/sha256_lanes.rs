//! Several independent SHA-256 compressions interleaved on one core (SHA-NI).
//!
//! A single SHA-256 chain is bound by the latency of the `sha256rnds2` instruction, not by its
//! throughput: each round pair waits for the previous one. Independent chains (the same node
//! of several sectors in a PC1 batch) have no such dependency, so running `L` of them in one
//! instruction stream lets the core overlap them. The lanes advance in lock step over the same
//! number of blocks. `compress_lanes` falls back to the portable compression when the CPU has
//! no SHA extensions; both are tested equal.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[cfg(target_arch = "x86_64")]
use super::sha256_soft::K;

/// Whether the SHA-NI path is usable on this CPU.
pub fn has_sha_ni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("sha") && is_x86_feature_detected!("sse4.1")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Compresses `data[l]` (whole 64-byte blocks, the same number in every lane) into
/// `states[l]` for each lane `l`.
#[inline]
pub fn compress_lanes<const L: usize>(states: &mut [[u32; 8]; L], data: [&[u8]; L]) {
    let blocks = data[0].len() / 64;
    for d in &data {
        assert_eq!(
            d.len(),
            blocks * 64,
            "every lane must have the same whole blocks"
        );
    }
    if L == 1 {
        // One chain gains nothing from interleaving; sha2's single-stream code is faster.
        return crate::hash::sha256::compress_blocks(&mut states[0], data[0]);
    }
    #[cfg(target_arch = "x86_64")]
    if has_sha_ni_cached() {
        // SAFETY: the CPU has SHA-NI and SSE4.1 (checked above); lengths checked.
        unsafe { compress_ni::<L>(states, data, blocks) };
        return;
    }
    for (s, d) in states.iter_mut().zip(data) {
        crate::hash::sha256::compress_blocks(s, d);
    }
}

/// [`compress_lanes`] always on our SHA-NI code, even for one lane (for measurements).
///
/// # Panics
/// If the CPU has no SHA-NI.
pub fn compress_lanes_ni<const L: usize>(states: &mut [[u32; 8]; L], data: [&[u8]; L]) {
    assert!(has_sha_ni_cached(), "this CPU has no SHA-NI");
    let blocks = data[0].len() / 64;
    assert!(
        data.iter().all(|d| d.len() == blocks * 64),
        "every lane must have the same whole blocks"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has SHA-NI and SSE4.1 (checked above); lengths checked.
    unsafe {
        compress_ni::<L>(states, data, blocks)
    };
}

/// Most distinct blocks [`compress_lanes_repeating`] takes per lane.
pub const MAX_DISTINCT: usize = 8;

/// Compresses, into each lane's state, the 64-byte blocks of `data[l]` in the sequence
/// `order` gives (block indices, repeats allowed): `compress_lanes` over the concatenation.
/// An SDR label hashes the same parent blocks two to six times; the message schedule depends
/// only on the block, so with three or more chains on SHA-NI each distinct block's schedule
/// (`sha256msg1`/`msg2`, which compete with the rounds for the SHA unit) is expanded once and
/// every repeat runs the rounds alone: 4 chains then reach about 1.3× their rate with the
/// schedule in the rounds (`bench_label --lanes-only`). One or two chains leave the unit idle
/// between dependent rounds, where the schedule costs nothing; they keep it in the rounds.
#[inline]
pub fn compress_lanes_repeating<const L: usize>(
    states: &mut [[u32; 8]; L],
    data: [&[u8]; L],
    order: &[usize],
) {
    let blocks = data[0].len() / 64;
    assert!(
        (1..=MAX_DISTINCT).contains(&blocks)
            && data.iter().all(|d| d.len() == blocks * 64)
            && order.iter().all(|&b| b < blocks),
        "1 to {MAX_DISTINCT} whole blocks in every lane, and `order` within them"
    );
    #[cfg(target_arch = "x86_64")]
    if L > 2 && has_sha_ni_cached() {
        // SAFETY: the CPU has SHA-NI and SSE4.1 (checked above); lengths and indices checked.
        unsafe { compress_ni_repeating::<L>(states, data, blocks, order) };
        return;
    }
    // Runs of consecutive blocks, each in one call.
    let mut at = 0;
    while at < order.len() {
        let first = order[at];
        let mut n = 1;
        while at + n < order.len() && order[at + n] == first + n {
            n += 1;
        }
        compress_lanes::<L>(
            states,
            std::array::from_fn(|l| &data[l][64 * first..64 * (first + n)]),
        );
        at += n;
    }
}

#[inline]
fn has_sha_ni_cached() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(has_sha_ni)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
unsafe fn compress_ni<const L: usize>(states: &mut [[u32; 8]; L], data: [&[u8]; L], blocks: usize) {
    if L > 2 {
        // SAFETY: the caller's guarantees, passed on.
        return unsafe { compress_ni_staged::<L>(states, data, blocks) };
    }
    // Byte-swap each 32-bit word: SHA-256 reads its message big-endian.
    let bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bu64 as i64, 0x0405060700010203u64 as i64);
    let (mut s0, mut s1) = load_states(states);
    for b in 0..blocks {
        let save0 = s0;
        let save1 = s1;
        let mut m = [[_mm_setzero_si128(); 4]; L];
        // Sixteen quad-rounds, written out so that every index below is a constant and the
        // message words stay in registers (a loop over `i` kept them on the stack, and the
        // chains waited on those loads).
        macro_rules! quad {
            ($i:literal) => {{
                const I: usize = $i;
                let k = _mm_loadu_si128(K.as_ptr().add(4 * I) as *const __m128i);
                for l in 0..L {
                    if I < 4 {
                        let p = data[l].as_ptr().add(64 * b + 16 * I) as *const __m128i;
                        m[l][I % 4] = _mm_shuffle_epi8(_mm_loadu_si128(p), bswap);
                    }
                    let mut msg = _mm_add_epi32(m[l][I % 4], k);
                    s1[l] = _mm_sha256rnds2_epu32(s1[l], s0[l], msg);
                    if I >= 3 && I < 15 {
                        let t = _mm_alignr_epi8(m[l][I % 4], m[l][(I + 3) % 4], 4);
                        let next = _mm_add_epi32(m[l][(I + 1) % 4], t);
                        m[l][(I + 1) % 4] = _mm_sha256msg2_epu32(next, m[l][I % 4]);
                    }
                    msg = _mm_shuffle_epi32(msg, 0x0E);
                    s0[l] = _mm_sha256rnds2_epu32(s0[l], s1[l], msg);
                    if I >= 1 && I < 13 {
                        m[l][(I + 3) % 4] = _mm_sha256msg1_epu32(m[l][(I + 3) % 4], m[l][I % 4]);
                    }
                }
            }};
        }
        quad!(0);
        quad!(1);
        quad!(2);
        quad!(3);
        quad!(4);
        quad!(5);
        quad!(6);
        quad!(7);
        quad!(8);
        quad!(9);
        quad!(10);
        quad!(11);
        quad!(12);
        quad!(13);
        quad!(14);
        quad!(15);
        for l in 0..L {
            s0[l] = _mm_add_epi32(s0[l], save0[l]);
            s1[l] = _mm_add_epi32(s1[l], save1[l]);
        }
    }
    store_states(states, &s0, &s1);
}

/// [`compress_ni`] for more chains than SHA-NI's 16 registers hold with their message words:
/// each block's schedule (`W + K`, all 64 words of every chain) is expanded first into a
/// stack buffer, then the rounds of all chains run with only the states in registers.
/// `sha256rnds2` issues about once per cycle but takes 3 to 4 cycles, so four chains keep it
/// busy where two leave it half idle.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
unsafe fn compress_ni_staged<const L: usize>(
    states: &mut [[u32; 8]; L],
    data: [&[u8]; L],
    blocks: usize,
) {
    let bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bu64 as i64, 0x0405060700010203u64 as i64);
    let (mut s0, mut s1) = load_states(states);
    let mut wk = [[_mm_setzero_si128(); 16]; L];
    for b in 0..blocks {
        // SAFETY: block b of every lane is within its slice (the caller's bound).
        let mut m: [[__m128i; 4]; L] = std::array::from_fn(|l| {
            std::array::from_fn(|i| unsafe {
                let p = data[l].as_ptr().add(64 * b + 16 * i) as *const __m128i;
                _mm_shuffle_epi8(_mm_loadu_si128(p), bswap)
            })
        });
        schedule_ni::<L>(&mut m, &mut wk);
        rounds_ni::<L>(&mut s0, &mut s1, &wk);
    }
    store_states(states, &s0, &s1);
}

/// The chains' states in the form the SHA instructions keep them: ABEF and CDGH.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn load_states<const L: usize>(states: &[[u32; 8]; L]) -> ([__m128i; L], [__m128i; L]) {
    let mut s0 = [_mm_setzero_si128(); L];
    let mut s1 = [_mm_setzero_si128(); L];
    for l in 0..L {
        // SAFETY: a state is 32 bytes.
        let (abcd, efgh) = unsafe {
            (
                _mm_loadu_si128(states[l].as_ptr() as *const __m128i),
                _mm_loadu_si128(states[l].as_ptr().add(4) as *const __m128i),
            )
        };
        let cdab = _mm_shuffle_epi32(abcd, 0xB1);
        let efgh = _mm_shuffle_epi32(efgh, 0x1B);
        s0[l] = _mm_alignr_epi8(cdab, efgh, 8);
        s1[l] = _mm_blend_epi16(efgh, cdab, 0xF0);
    }
    (s0, s1)
}

/// [`load_states`] undone.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn store_states<const L: usize>(states: &mut [[u32; 8]; L], s0: &[__m128i; L], s1: &[__m128i; L]) {
    for l in 0..L {
        let feba = _mm_shuffle_epi32(s0[l], 0x1B);
        let dchg = _mm_shuffle_epi32(s1[l], 0xB1);
        let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
        let hgfe = _mm_alignr_epi8(dchg, feba, 8);
        // SAFETY: a state is 32 bytes.
        unsafe {
            _mm_storeu_si128(states[l].as_mut_ptr() as *mut __m128i, dcba);
            _mm_storeu_si128(states[l].as_mut_ptr().add(4) as *mut __m128i, hgfe);
        }
    }
}

/// Expands every chain's schedule of one block (message words `m`, byte-swapped) into `wk`:
/// `W + K` for the 16 quad-rounds, the chains side by side (each is a serial chain of
/// `sha256msg2`).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn schedule_ni<const L: usize>(m: &mut [[__m128i; 4]; L], wk: &mut [[__m128i; 16]; L]) {
    macro_rules! sched {
        ($i:literal) => {{
            const I: usize = $i;
            // SAFETY: K has 64 words.
            let k = unsafe { _mm_loadu_si128(K.as_ptr().add(4 * I) as *const __m128i) };
            for l in 0..L {
                wk[l][I] = _mm_add_epi32(m[l][I % 4], k);
                if I >= 3 && I < 15 {
                    let t = _mm_alignr_epi8(m[l][I % 4], m[l][(I + 3) % 4], 4);
                    let next = _mm_add_epi32(m[l][(I + 1) % 4], t);
                    m[l][(I + 1) % 4] = _mm_sha256msg2_epu32(next, m[l][I % 4]);
                }
                if I >= 1 && I < 13 {
                    m[l][(I + 3) % 4] = _mm_sha256msg1_epu32(m[l][(I + 3) % 4], m[l][I % 4]);
                }
            }
        }};
    }
    sched!(0);
    sched!(1);
    sched!(2);
    sched!(3);
    sched!(4);
    sched!(5);
    sched!(6);
    sched!(7);
    sched!(8);
    sched!(9);
    sched!(10);
    sched!(11);
    sched!(12);
    sched!(13);
    sched!(14);
    sched!(15);
}

/// The 64 rounds of one block for every chain (states as ABEF `s0` / CDGH `s1`) from its
/// expanded schedule, added into the states.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn rounds_ni<const L: usize>(
    s0: &mut [__m128i; L],
    s1: &mut [__m128i; L],
    wk: &[[__m128i; 16]; L],
) {
    let save0 = *s0;
    let save1 = *s1;
    // Quad-round i of every chain before quad-round i + 1 of any: the chains interleave.
    #[allow(clippy::needless_range_loop)]
    for i in 0..16 {
        for l in 0..L {
            let msg = wk[l][i];
            s1[l] = _mm_sha256rnds2_epu32(s1[l], s0[l], msg);
            s0[l] = _mm_sha256rnds2_epu32(s0[l], s1[l], _mm_shuffle_epi32(msg, 0x0E));
        }
    }
    for l in 0..L {
        s0[l] = _mm_add_epi32(s0[l], save0[l]);
        s1[l] = _mm_add_epi32(s1[l], save1[l]);
    }
}

/// [`compress_lanes_repeating`] on SHA-NI: every distinct block's schedule first, then the
/// rounds in `order`.
///
/// # Safety
/// SHA-NI and SSE4.1; `data[l]` holds `blocks` (at most [`MAX_DISTINCT`]) whole blocks and
/// every index of `order` is below `blocks`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
unsafe fn compress_ni_repeating<const L: usize>(
    states: &mut [[u32; 8]; L],
    data: [&[u8]; L],
    blocks: usize,
    order: &[usize],
) {
    let bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bu64 as i64, 0x0405060700010203u64 as i64);
    let mut wk = [[[_mm_setzero_si128(); 16]; L]; MAX_DISTINCT];
    for (b, wk) in wk.iter_mut().enumerate().take(blocks) {
        // SAFETY: block b < blocks of every lane is within its slice (the caller's bound).
        let mut m: [[__m128i; 4]; L] = std::array::from_fn(|l| {
            std::array::from_fn(|i| unsafe {
                let p = data[l].as_ptr().add(64 * b + 16 * i) as *const __m128i;
                _mm_shuffle_epi8(_mm_loadu_si128(p), bswap)
            })
        });
        schedule_ni::<L>(&mut m, wk);
    }
    let (mut s0, mut s1) = load_states(states);
    for &b in order {
        rounds_ni::<L>(&mut s0, &mut s1, &wk[b]);
    }
    store_states(states, &s0, &s1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256::{compress_blocks, H0};

    fn lanes_equal_portable<const L: usize>() {
        let mut seed = 1u32;
        let mut next = || {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            (seed >> 24) as u8
        };
        for blocks in [1usize, 2, 5, 19] {
            let data: Vec<Vec<u8>> = (0..L)
                .map(|_| (0..64 * blocks).map(|_| next()).collect())
                .collect();
            let mut want = [H0; L];
            for l in 0..L {
                want[l][0] ^= l as u32; // distinct starting states too
                compress_blocks(&mut want[l], &data[l]);
            }
            let mut got = [H0; L];
            for (l, s) in got.iter_mut().enumerate() {
                s[0] ^= l as u32;
            }
            compress_lanes::<L>(&mut got, std::array::from_fn(|l| data[l].as_slice()));
            assert_eq!(got, want, "{L} lanes, {blocks} blocks");
        }
    }

    /// Repeated blocks from their schedules equal the plain compression of the sequence.
    #[test]
    fn repeating_equals_the_sequence() {
        fn check<const L: usize>() {
            let data: Vec<Vec<u8>> = (0..L)
                .map(|l| {
                    (0..64 * 7)
                        .map(|i| (i * 31 + l * 7 + i / 64) as u8)
                        .collect()
                })
                .collect();
            for order in [&[0usize, 1, 2, 0, 1, 2, 0][..], &[6, 5, 6, 0, 3, 3]] {
                let mut want = [H0; L];
                for l in 0..L {
                    want[l][1] ^= l as u32;
                    for &b in order {
                        compress_blocks(&mut want[l], &data[l][64 * b..64 * (b + 1)]);
                    }
                }
                let mut got = [H0; L];
                for (l, s) in got.iter_mut().enumerate() {
                    s[1] ^= l as u32;
                }
                compress_lanes_repeating::<L>(
                    &mut got,
                    std::array::from_fn(|l| data[l].as_slice()),
                    order,
                );
                assert_eq!(got, want, "{L} lanes, order {order:?}");
            }
        }
        check::<1>();
        check::<2>();
        check::<3>();
        check::<4>();
    }

    #[test]
    fn equal_to_portable() {
        lanes_equal_portable::<1>();
        lanes_equal_portable::<2>();
        lanes_equal_portable::<3>();
        lanes_equal_portable::<4>();
    }
}
