//! SHA-256 compression rate of every engine on one core, side by side in one process:
//! `sha2` (the reference's hasher: one chain, SHA-NI when present) against our SHA-NI
//! interleaving and the AVX-512 / AVX2 lanes. Run through `scripts/bench-sha.sh`, which pins
//! it to one CPU.
//!
//! usage: bench_sha [SECONDS_PER_ENGINE=2]

use std::hint::black_box;
use std::time::Instant;

use sealkit::hash::sha256::{compress_blocks, H0};
use sealkit::hash::sha256_engine::{self, hash64_many_with, Engine};
use sealkit::hash::sha256_lanes::{compress_lanes_ni, has_sha_ni};

/// Blocks per message in the chain measurements: one SDR label's worth.
const BLOCKS: usize = 19;

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`), so a rate stays
/// the hardware's even when other processes share the CPU; `None` where the kernel lacks it.
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs `f` (which does `per_call` compressions) for about `secs` seconds; compressions per
/// second of wall time and of this thread's CPU time.
fn rate(secs: f64, per_call: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut calls = 0usize;
    let t = Instant::now();
    // Warm up, and do at least a few calls.
    while calls < 4 || t.elapsed().as_secs_f64() < 0.2 {
        f();
        calls += 1;
    }
    let t = Instant::now();
    let c0 = cpu_ns();
    calls = 0;
    while t.elapsed().as_secs_f64() < secs {
        for _ in 0..16 {
            f();
        }
        calls += 16;
    }
    let wall = t.elapsed().as_secs_f64();
    let cpu = match (c0, cpu_ns()) {
        (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
        _ => wall,
    };
    let n = (calls * per_call) as f64;
    (n / wall, n / cpu)
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let data: Vec<u8> = (0..64 * BLOCKS * 16)
        .map(|i| (i * 131 % 251) as u8)
        .collect();
    let mut rows: Vec<(String, (f64, f64))> = Vec::new();

    let mut s = H0;
    let base = rate(secs, BLOCKS, || {
        compress_blocks(&mut s, &data[..64 * BLOCKS]);
        black_box(&s);
    });
    rows.push(("sha2 compress256, one chain (reference)".into(), base));

    if has_sha_ni() {
        fn ni<const L: usize>(secs: f64, data: &[u8]) -> (f64, f64) {
            let mut states = [H0; L];
            let lanes: [&[u8]; L] =
                std::array::from_fn(|l| &data[64 * BLOCKS * l..64 * BLOCKS * (l + 1)]);
            rate(secs, BLOCKS * L, || {
                compress_lanes_ni::<L>(&mut states, lanes);
                black_box(&states);
            })
        }
        rows.push(("sealkit SHA-NI, 1 chain".into(), ni::<1>(secs, &data)));
        rows.push((
            "sealkit SHA-NI, 2 interleaved chains".into(),
            ni::<2>(secs, &data),
        ));
        rows.push((
            "sealkit SHA-NI, 4 interleaved chains".into(),
            ni::<4>(secs, &data),
        ));
    }
    let msgs: Vec<&[u8]> = data.chunks_exact(64 * BLOCKS).collect();
    for (e, lanes) in [
        (Engine::Avx512, 16),
        (Engine::Avx2, 8),
        (Engine::Portable, 1),
    ] {
        if !e.available() {
            println!("{:46} not available on this CPU", e.describe());
            continue;
        }
        let mut states = vec![H0; lanes];
        let r = rate(secs, BLOCKS * lanes, || {
            sha256_engine::compress_many_with(e, &mut states, &msgs[..lanes]);
            black_box(&states);
        });
        rows.push((format!("sealkit {}", e.describe()), r));
    }
    // Whole 64-byte-message hashes (tree nodes): 2 compressions each, the second on the
    // precomputed padding schedule.
    let pairs = vec![7u8; 64 * 1024];
    let mut nodes = vec![0u8; 32 * 1024];
    for e in sha256_engine::ALL.into_iter().filter(|e| e.available()) {
        let r = rate(secs, 2 * 1024, || {
            hash64_many_with(e, &pairs, &mut nodes);
            black_box(&nodes);
        });
        rows.push((format!("sealkit tree nodes, {}", e.describe()), r));
    }

    println!(
        "engine chosen here: {} (override: SEALKIT_SHA_ENGINE)",
        sha256_engine::active().describe()
    );
    println!("{BLOCKS}-block messages; tree nodes are 64-byte messages (2 compressions each)");
    println!(
        "{:58} {:>22}  {:>9}  {:>22}",
        "", "on-CPU rate", "ratio", "wall-clock rate"
    );
    for (name, (wall, cpu)) in &rows {
        println!(
            "{name:58} {:7.2} M compressions/s  {:5.2}x sha2  {:7.2} M compressions/s",
            cpu / 1e6,
            cpu / base.1,
            wall / 1e6
        );
    }
}
