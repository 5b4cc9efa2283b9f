//! Which SHA-256 engine hashes many independent messages, chosen once per process.
//!
//! Independent hashes (a tree level's node pairs, a batch's sectors) can run on SHA-NI with a
//! few chains interleaved, or one per vector lane: 16 lanes with AVX-512, 8 with AVX2. On the
//! CPU we measured (BENCHMARKS.md, `scripts/bench-sha.sh`), 16 AVX-512 lanes hash tree nodes
//! 1.7× faster than the best SHA-NI interleaving, and multi-block chains as fast as it, so the
//! automatic order is AVX-512, SHA-NI, AVX2, portable, and [`for_lanes`] keeps narrow chain
//! jobs on SHA-NI. `SEALKIT_SHA_ENGINE=auto|sha-ni|avx512|avx2|portable` overrides the choice
//! (for measurements, and to rule an engine out); an engine the CPU lacks is an error.
//!
//! One dependent chain (single-sector labeling) has no lanes to fill and always runs on
//! `sha2`'s single-stream code (SHA-NI when present); the engine is for independent hashes.

use std::sync::OnceLock;

use anyhow::{bail, Result};

use super::sha256::{state_to_node, H0};
use super::sha256_soft;

/// Environment variable that overrides the automatic choice.
pub const ENV: &str = "SEALKIT_SHA_ENGINE";

/// A way of running many SHA-256 compressions at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// SHA-NI, [`SHA_NI_CHAINS`] chains interleaved on one core.
    ShaNi,
    /// AVX-512F/BW, 16 messages per vector.
    Avx512,
    /// AVX2, 8 messages per vector.
    Avx2,
    /// Plain Rust, one message at a time.
    Portable,
}

/// Chains the SHA-NI engine interleaves: two overlap `sha256rnds2`'s latency; with more,
/// the states and message words no longer fit the 16 registers SHA-NI can address
/// (`scripts/bench-sha.sh`: 4 chains hash slower than 2).
pub const SHA_NI_CHAINS: usize = 2;

/// Every engine, in the automatic order of preference.
pub const ALL: [Engine; 4] = [
    Engine::Avx512,
    Engine::ShaNi,
    Engine::Avx2,
    Engine::Portable,
];

impl Engine {
    /// The name `SEALKIT_SHA_ENGINE` takes.
    pub fn name(self) -> &'static str {
        match self {
            Engine::ShaNi => "sha-ni",
            Engine::Avx512 => "avx512",
            Engine::Avx2 => "avx2",
            Engine::Portable => "portable",
        }
    }

    /// Messages hashed together.
    pub fn lanes(self) -> usize {
        match self {
            Engine::ShaNi => SHA_NI_CHAINS,
            Engine::Avx512 => 16,
            Engine::Avx2 => 8,
            Engine::Portable => 1,
        }
    }

    /// Whether this CPU can run it.
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Engine::ShaNi => super::sha256_lanes::has_sha_ni(),
                Engine::Avx512 => super::sha256_x16::available(),
                Engine::Avx2 => super::sha256_x8::available(),
                Engine::Portable => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Engine::Portable
        }
    }

    /// `"avx512 (16 lanes)"`, for `-v` output.
    pub fn describe(self) -> String {
        match self {
            Engine::ShaNi => format!("sha-ni ({SHA_NI_CHAINS} interleaved chains)"),
            Engine::Portable => "portable (one message at a time)".into(),
            e => format!("{} ({} lanes)", e.name(), e.lanes()),
        }
    }
}

/// The best engine this CPU has.
pub fn auto() -> Engine {
    ALL.into_iter()
        .find(|e| e.available())
        .unwrap_or(Engine::Portable)
}

/// The engine a setting (`SEALKIT_SHA_ENGINE`'s value, `None` if unset) asks for.
pub fn choose(setting: Option<&str>) -> Result<Engine> {
    let name = match setting {
        None | Some("") | Some("auto") => return Ok(auto()),
        Some(s) => s,
    };
    let Some(e) = ALL.into_iter().find(|e| e.name() == name) else {
        bail!("{ENV}={name:?} is not one of auto, sha-ni, avx512, avx2, portable");
    };
    if !e.available() {
        bail!("{ENV}={name}: this CPU cannot run that engine");
    }
    Ok(e)
}

/// The engine `SEALKIT_SHA_ENGINE` asks for on this CPU; an error names a bad setting.
pub fn from_env() -> Result<Engine> {
    choose(std::env::var(ENV).ok().as_deref())
}

/// The engine of this process. A bad setting falls back to [`auto`] here; the tools report it
/// as an error at start ([`crate::cli::run_main`] calls [`from_env`]).
pub fn active() -> Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    *E.get_or_init(|| from_env().unwrap_or_else(|_| auto()))
}

/// Whether `SEALKIT_SHA_ENGINE` names an engine (not `auto`, not unset).
pub fn forced() -> bool {
    static F: OnceLock<bool> = OnceLock::new();
    *F.get_or_init(|| {
        !matches!(
            std::env::var(ENV).ok().as_deref(),
            None | Some("") | Some("auto")
        )
    })
}

/// The engine for a job of `lanes` independent multi-block chains (a batch group's labels).
/// Vector lanes left empty are wasted work, and on the CPUs we measured (BENCHMARKS.md) two
/// interleaved SHA-NI chains already hash as fast as 16 full AVX-512 lanes; so unless the
/// engine is forced, a job filling less than 13/16 of the vector runs on SHA-NI chains when
/// the CPU has them.
pub fn for_lanes(lanes: usize) -> Engine {
    let e = active();
    if forced() || e.lanes() <= 4 || 16 * lanes >= 13 * e.lanes() || !Engine::ShaNi.available() {
        e
    } else {
        Engine::ShaNi
    }
}

/// Sixteen states, word-major (`s[w][l]` is word `w` of lane `l`): the AVX-512 engine's own
/// layout, kept between calls by a caller that compresses the same 16 chains many times.
pub type State16 = [[u32; 16]; 8];

/// [`compress_many_with`] for 16 word-major states: the first `lanes` are compressed with
/// their `data`, the others are left in an unspecified state (their `data` must still be
/// valid slices of the same length).
pub fn compress16_with(engine: Engine, state: &mut State16, data: &[&[u8]; 16], lanes: usize) {
    let bytes = data[0].len();
    assert!(
        lanes <= 16 && bytes.is_multiple_of(64) && data.iter().all(|d| d.len() == bytes),
        "every message must have the same whole 64-byte blocks"
    );
    #[cfg(target_arch = "x86_64")]
    if engine == Engine::Avx512 && engine.available() {
        let lanes: [*const u8; 16] = std::array::from_fn(|l| data[l].as_ptr());
        // SAFETY: the CPU has AVX-512 (checked); every lane has `bytes` bytes (checked).
        unsafe { super::sha256_x16::compress(state, &lanes, bytes / 64) };
        return;
    }
    let mut aos: [[u32; 8]; 16] = std::array::from_fn(|l| std::array::from_fn(|w| state[w][l]));
    compress_many_with(engine, &mut aos[..lanes], &data[..lanes]);
    for (l, s) in aos[..lanes].iter().enumerate() {
        for (w, x) in s.iter().enumerate() {
            state[w][l] = *x;
        }
    }
}

/// `trunc254(SHA256(m))` for each 64-byte message `m` of `input`, written in order to `out`
/// (`input.len() / 2` bytes). This is one level of a binary SHA-256 tree.
pub fn hash64_many(input: &[u8], out: &mut [u8]) {
    hash64_many_with(active(), input, out)
}

/// [`hash64_many`] on a given engine (one the CPU lacks falls back to [`auto`]).
pub fn hash64_many_with(engine: Engine, input: &[u8], out: &mut [u8]) {
    assert!(
        input.len().is_multiple_of(64) && out.len() == input.len() / 2,
        "64-byte messages in, 32-byte nodes out"
    );
    // SAFETY: input and out are distinct borrows of the right lengths.
    unsafe { hash64_raw(engine, input.as_ptr(), out.as_mut_ptr(), input.len() / 64) }
}

/// One tree level in place: the `n = buf.len() / 64` messages of `buf` become the nodes in its
/// first half (node `i` overwrites bytes `32i..32i + 32`).
pub fn hash64_in_place(buf: &mut [u8]) {
    hash64_in_place_with(active(), buf)
}

/// [`hash64_in_place`] on a given engine.
pub fn hash64_in_place_with(engine: Engine, buf: &mut [u8]) {
    assert!(buf.len().is_multiple_of(64), "64-byte messages");
    let p = buf.as_mut_ptr();
    // SAFETY: node i is written at 32i after message i (at 64i) and every earlier one was
    // read, and each kernel reads all of its messages before writing its nodes, so no byte is
    // overwritten before it is read; both ranges are within `buf`.
    unsafe { hash64_raw(engine, p, p, buf.len() / 64) }
}

/// Most messages a `hash64` kernel takes per call.
const MAX_MESSAGES: usize = 32;

/// # Safety
/// `input` readable for `64 n` bytes, `out` writable for `32 n`; if they overlap, `out` must
/// not be above `input` (see [`hash64_in_place_with`]).
unsafe fn hash64_raw(engine: Engine, input: *const u8, out: *mut u8, n: usize) {
    let engine = if engine.available() { engine } else { auto() };
    let (lanes, kernel): (usize, unsafe fn(*const u8, *mut u8)) = match engine {
        #[cfg(target_arch = "x86_64")]
        Engine::Avx512 => (
            super::sha256_x16::HASH64_MESSAGES,
            super::sha256_x16::hash64_trunc,
        ),
        #[cfg(target_arch = "x86_64")]
        Engine::Avx2 => (8, super::sha256_x8::hash64_trunc),
        Engine::ShaNi => (SHA_NI_CHAINS, sha_ni_hash64),
        _ => (1, portable_hash64),
    };
    let whole = n / lanes * lanes;
    for i in (0..whole).step_by(lanes) {
        // SAFETY: messages i..i + lanes are within the n; the kernels read before writing.
        unsafe { kernel(input.add(64 * i), out.add(32 * i)) };
    }
    if whole < n {
        // The last few messages go through a full-width scratch buffer.
        let rest = n - whole;
        let mut msgs = [0u8; 64 * MAX_MESSAGES];
        let mut nodes = [0u8; 32 * MAX_MESSAGES];
        // SAFETY: the rest is within the caller's bounds; scratch buffers hold 16 lanes.
        unsafe {
            std::ptr::copy(input.add(64 * whole), msgs.as_mut_ptr(), 64 * rest);
            kernel(msgs.as_ptr(), nodes.as_mut_ptr());
            std::ptr::copy(nodes.as_ptr(), out.add(32 * whole), 32 * rest);
        }
    }
}

/// Compresses `data[i]` into `states[i]` for every `i`: independent messages of the same
/// number of whole 64-byte blocks, as many as the engine's lanes at a time.
pub fn compress_many(states: &mut [[u32; 8]], data: &[&[u8]]) {
    compress_many_with(active(), states, data)
}

/// [`compress_many`] on a given engine (one the CPU lacks falls back to [`auto`]).
pub fn compress_many_with(engine: Engine, states: &mut [[u32; 8]], data: &[&[u8]]) {
    assert_eq!(states.len(), data.len(), "one state per message");
    let Some(first) = data.first() else { return };
    let bytes = first.len();
    assert!(
        bytes.is_multiple_of(64) && data.iter().all(|d| d.len() == bytes),
        "every message must have the same whole 64-byte blocks"
    );
    let engine = if engine.available() { engine } else { auto() };
    match engine {
        #[cfg(target_arch = "x86_64")]
        Engine::Avx512 => {
            use super::sha256_x16::{compress, State16, LANES};
            for (s, d) in states.chunks_mut(LANES).zip(data.chunks(LANES)) {
                // Lanes past the end repeat the first message; their results are dropped.
                let lanes: [*const u8; LANES] =
                    std::array::from_fn(|l| d.get(l).unwrap_or(&d[0]).as_ptr());
                let mut soa: State16 = std::array::from_fn(|w| {
                    std::array::from_fn(|l| s.get(l).map_or(0, |st| st[w]))
                });
                // SAFETY: the CPU has AVX-512 (checked); every lane has `bytes` bytes.
                unsafe { compress(&mut soa, &lanes, bytes / 64) };
                for (l, st) in s.iter_mut().enumerate() {
                    *st = std::array::from_fn(|w| soa[w][l]);
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        Engine::Avx2 => {
            use super::sha256_x8::{compress, State8, LANES};
            for (s, d) in states.chunks_mut(LANES).zip(data.chunks(LANES)) {
                let lanes: [*const u8; LANES] =
                    std::array::from_fn(|l| d.get(l).unwrap_or(&d[0]).as_ptr());
                let mut soa: State8 = std::array::from_fn(|w| {
                    std::array::from_fn(|l| s.get(l).map_or(0, |st| st[w]))
                });
                // SAFETY: the CPU has AVX2 (checked); every lane has `bytes` bytes.
                unsafe { compress(&mut soa, &lanes, bytes / 64) };
                for (l, st) in s.iter_mut().enumerate() {
                    *st = std::array::from_fn(|w| soa[w][l]);
                }
            }
        }
        Engine::ShaNi => {
            use super::sha256_lanes::compress_lanes;
            const L: usize = SHA_NI_CHAINS;
            let mut s_chunks = states.chunks_exact_mut(L);
            let mut d_chunks = data.chunks_exact(L);
            for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
                let s: &mut [[u32; 8]; L] = s.try_into().expect("L states");
                compress_lanes::<L>(s, std::array::from_fn(|l| d[l]));
            }
            for (s, d) in s_chunks
                .into_remainder()
                .iter_mut()
                .zip(d_chunks.remainder())
            {
                compress_lanes::<1>(std::array::from_mut(s), [*d]);
            }
        }
        _ => {
            for (s, d) in states.iter_mut().zip(data) {
                sha256_soft::compress(s, d);
            }
        }
    }
}

/// # Safety
/// `input` readable for 64 bytes, `out` writable for 32.
unsafe fn portable_hash64(input: *const u8, out: *mut u8) {
    // SAFETY: the caller's bound.
    let msg: [u8; 64] = unsafe { std::ptr::read(input.cast()) };
    let mut s = H0;
    sha256_soft::compress(&mut s, &msg);
    sha256_soft::rounds(&mut s, &sha256_soft::PAD_64_KW);
    // SAFETY: the caller's bound.
    unsafe { std::ptr::write(out.cast(), state_to_node(&s)) };
}

/// # Safety
/// `input` readable for `64 · SHA_NI_CHAINS` bytes, `out` writable for `32 · SHA_NI_CHAINS`.
unsafe fn sha_ni_hash64(input: *const u8, out: *mut u8) {
    const L: usize = SHA_NI_CHAINS;
    // SAFETY: the caller's bound.
    let msgs: [[u8; 128]; L] = std::array::from_fn(|l| {
        let mut b = [0u8; 128];
        b[..64].copy_from_slice(unsafe { std::slice::from_raw_parts(input.add(64 * l), 64) });
        b[64..].copy_from_slice(&sha256_soft::PAD_64);
        b
    });
    let mut states = [H0; L];
    super::sha256_lanes::compress_lanes::<L>(&mut states, std::array::from_fn(|l| &msgs[l][..]));
    for (l, s) in states.iter().enumerate() {
        // SAFETY: the caller's bound.
        unsafe { std::ptr::write(out.add(32 * l).cast(), state_to_node(s)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn sha2_trunc(msg: &[u8]) -> [u8; 32] {
        let mut d: [u8; 32] = Sha256::digest(msg).into();
        d[31] &= 0x3f;
        d
    }

    #[test]
    fn every_engine_equals_sha2_on_any_count() {
        for e in ALL.into_iter().filter(|e| e.available()) {
            for n in [1usize, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100] {
                let input = random(64 * n, n as u64 * 7 + 1);
                let mut out = vec![0u8; 32 * n];
                hash64_many_with(e, &input, &mut out);
                for (i, node) in out.chunks_exact(32).enumerate() {
                    assert_eq!(
                        node,
                        sha2_trunc(&input[64 * i..64 * i + 64]),
                        "{e:?} n {n} i {i}"
                    );
                }
                let mut buf = input.clone();
                hash64_in_place_with(e, &mut buf);
                assert_eq!(&buf[..32 * n], &out[..], "{e:?} in place, n {n}");
            }
        }
    }

    /// FIPS 180-2 Appendix B messages, padded by hand, as lanes of one call: each message
    /// in every lane position, next to random messages of the same length.
    #[test]
    fn fips_vectors_in_every_lane() {
        fn pad(msg: &[u8]) -> Vec<u8> {
            let mut p = msg.to_vec();
            p.push(0x80);
            while p.len() % 64 != 56 {
                p.push(0);
            }
            p.extend_from_slice(&(msg.len() as u64 * 8).to_be_bytes());
            p
        }
        let cases: [(Vec<u8>, &str); 3] = [
            (
                b"abc".to_vec(),
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".to_vec(),
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
            (
                vec![b'a'; 1_000_000],
                "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
            ),
        ];
        for e in ALL.into_iter().filter(|e| e.available()) {
            for (msg, want) in &cases {
                let padded = pad(msg);
                let lanes = e.lanes().max(2);
                // The long message only in lane 0 and the last lane, to keep the test short.
                let positions: Vec<usize> = if msg.len() > 1000 {
                    vec![0, lanes - 1]
                } else {
                    (0..lanes).collect()
                };
                for at in positions {
                    let other = random(padded.len(), at as u64 + 3);
                    let data: Vec<&[u8]> = (0..lanes)
                        .map(|l| if l == at { &padded[..] } else { &other[..] })
                        .collect();
                    let mut states = vec![H0; lanes];
                    compress_many_with(e, &mut states, &data);
                    let mut digest = [0u8; 32];
                    for (o, w) in digest.chunks_exact_mut(4).zip(states[at]) {
                        o.copy_from_slice(&w.to_be_bytes());
                    }
                    assert_eq!(crate::hex::encode(&digest), *want, "{e:?} lane {at}");
                }
            }
        }
    }

    #[test]
    fn every_engine_equals_portable_for_any_lanes_and_blocks() {
        for e in ALL.into_iter().filter(|e| e.available()) {
            for lanes in 1..=17usize {
                for blocks in [1usize, 2, 3, 19] {
                    let data: Vec<Vec<u8>> = (0..lanes)
                        .map(|l| random(64 * blocks, (lanes * 100 + l * 10 + blocks) as u64))
                        .collect();
                    let start: Vec<[u32; 8]> = (0..lanes)
                        .map(|l| {
                            let mut s = H0;
                            s[l % 8] ^= l as u32 * 0x01010101;
                            s
                        })
                        .collect();
                    let mut want = start.clone();
                    for (s, d) in want.iter_mut().zip(&data) {
                        sha256_soft::compress(s, d);
                    }
                    let mut got = start.clone();
                    let refs: Vec<&[u8]> = data.iter().map(|d| &d[..]).collect();
                    compress_many_with(e, &mut got, &refs);
                    assert_eq!(got, want, "{e:?}, {lanes} lanes, {blocks} blocks");
                }
            }
        }
    }

    #[test]
    fn sixteen_word_major_lanes_equal_portable() {
        for e in ALL.into_iter().filter(|e| e.available()) {
            for lanes in [1usize, 5, 8, 9, 16] {
                let data: Vec<Vec<u8>> = (0..16).map(|l| random(64 * 3, l as u64 + 40)).collect();
                let refs: [&[u8]; 16] = std::array::from_fn(|l| &data[l][..]);
                let mut soa: State16 =
                    std::array::from_fn(|w| std::array::from_fn(|l| H0[w] ^ l as u32));
                compress16_with(e, &mut soa, &refs, lanes);
                for (l, d) in data.iter().enumerate().take(lanes) {
                    let mut want: [u32; 8] = std::array::from_fn(|w| H0[w] ^ l as u32);
                    sha256_soft::compress(&mut want, d);
                    let got: [u32; 8] = std::array::from_fn(|w| soa[w][l]);
                    assert_eq!(got, want, "{e:?} {lanes} lanes, lane {l}");
                }
            }
        }
    }

    #[test]
    fn settings() {
        assert_eq!(choose(None).unwrap(), auto());
        assert_eq!(choose(Some("auto")).unwrap(), auto());
        assert_eq!(choose(Some("portable")).unwrap(), Engine::Portable);
        for e in ALL {
            assert_eq!(choose(Some(e.name())).is_ok(), e.available(), "{e:?}");
        }
        let err = choose(Some("avx1024")).unwrap_err().to_string();
        assert!(
            err.contains("SEALKIT_SHA_ENGINE") && !err.contains('\n'),
            "{err}"
        );
        assert!(auto().available());
    }
}
