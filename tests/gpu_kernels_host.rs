//! The CUDA kernels' arithmetic and Poseidon, built for the host with the system C++
//! compiler (no GPU, no CUDA toolkit), against blstrs (the field the reference uses) and
//! neptune (the reference's Poseidon) on edge and random values, for every kernel arity.
//!
//! The kernels are `__host__ __device__` code (src/gpu/kernels/*.cuh); the harness
//! (tests/gpu_host/harness.cpp) runs `sk_hash_strided_one`, the whole body of a kernel
//! thread, with the constant tables `sealkit::gpu::constants` builds from neptune's.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use blstrs::Scalar as Fr;
use ff::{Field, PrimeField};
use rand::SeedableRng;
use rand_xorshift::XorShiftRng;

use sealkit::gpu::constants::{fr_words, mont_words, PoseidonTable, GPU_ARITIES};
use sealkit::hash::poseidon::{hash_many, neptune_hash};

/// The BLS12-381 scalar field modulus (the curve's published `r`), little-endian words.
const P: [u64; 4] = [
    0xffff_ffff_0000_0001,
    0x53bd_a402_fffe_5bfe,
    0x3339_d808_09a1_d805,
    0x73ed_a753_299d_7d48,
];

/// The harness, compiled once per test process (the tests run as threads of one process).
fn harness() -> PathBuf {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    EXE.get_or_init(compile_harness).clone()
}

fn compile_harness() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gpu-kernels-host");
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let out = Command::new(&cxx)
        .args(["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root.join("src/gpu/kernels"))
        .arg(root.join("tests/gpu_host/harness.cpp"))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("running the C++ compiler {cxx}: {e}"));
    assert!(
        out.status.success(),
        "the kernels do not build for the host:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

fn hex(w: &[u64]) -> String {
    w.iter().map(|x| format!("{x:x} ")).collect()
}

fn words_line(line: &str) -> [u64; 4] {
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|t| u64::from_str_radix(t, 16).expect("hex"))
        .collect();
    v.try_into()
        .unwrap_or_else(|_| panic!("four words: {line}"))
}

/// Runs the harness on `input`; returns its answer lines.
fn run(input: &str) -> Vec<String> {
    let mut child = Command::new(harness())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("harness");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "harness failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn tables_request() -> String {
    let mut s = String::new();
    for arity in GPU_ARITIES {
        let t = PoseidonTable::new(arity).unwrap();
        s += &format!(
            "T {:x} {:x} {:x} {:x} {}\n",
            arity,
            t.half_full_rounds,
            t.partial_rounds,
            t.words.len(),
            hex(&t.words)
        );
    }
    s
}

fn edge_values() -> Vec<Fr> {
    let from_words = |w: [u64; 4]| {
        let mut b = [0u8; 32];
        for (c, x) in b.chunks_exact_mut(8).zip(w) {
            c.copy_from_slice(&x.to_le_bytes());
        }
        Fr::from_repr_vartime(b).expect("canonical")
    };
    let two_inv = Fr::from(2u64).invert().unwrap();
    vec![
        Fr::ZERO,
        Fr::ONE,
        Fr::from(2u64),
        -Fr::ONE,
        -Fr::from(2u64),
        two_inv,
        -two_inv,
        Fr::from(u64::MAX),
        from_words([0, 1, 0, 0]),
        from_words([0, 0, 0, 1]),
        from_words([u64::MAX, u64::MAX, u64::MAX, 0]),
        from_words([P[0] - 1, P[1], P[2], P[3] - 1]),
        Fr::from(2u64).pow_vartime([254u64]),
    ]
}

/// Field operations: products through Montgomery form, sums, differences and the
/// Montgomery form itself equal blstrs' on every pair of edge values and random pairs.
#[test]
fn field_arithmetic_equals_blstrs() {
    let mut rng = XorShiftRng::seed_from_u64(1);
    let mut vals = edge_values();
    vals.extend((0..40).map(|_| Fr::random(&mut rng)));
    let mut pairs = Vec::new();
    for a in edge_values() {
        for b in edge_values() {
            pairs.push((a, b));
        }
    }
    for w in vals.windows(2) {
        pairs.push((w[0], w[1]));
    }
    let mut req = String::new();
    let mut want = Vec::new();
    for (a, b) in &pairs {
        let (wa, wb) = (hex(&fr_words(a)), hex(&fr_words(b)));
        req += &format!("M {wa}{wb}\nA {wa}{wb}\nS {wa}{wb}\nR {wa}\n");
        want.push(fr_words(&(a * b)));
        want.push(fr_words(&(a + b)));
        want.push(fr_words(&(a - b)));
        want.push(mont_words(a));
    }
    let got = run(&req);
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let (a, b) = pairs[i / 4];
        assert_eq!(
            words_line(g),
            *w,
            "operation {} of {:?} and {:?}",
            ["mul", "add", "sub", "mont"][i % 4],
            fr_words(&a),
            fr_words(&b)
        );
    }
}

/// Poseidon of every kernel arity, as columns (layer-major, elem_stride = n) and as tree
/// rows (contiguous children), equals neptune and the CPU batch hasher; a non-canonical node
/// is reported.
#[test]
fn poseidon_equals_neptune() {
    let mut rng = XorShiftRng::seed_from_u64(2);
    let edges = edge_values();
    let mut req = tables_request();
    let mut cases = Vec::new();
    for arity in GPU_ARITIES {
        let n = 9;
        // pre[h][i]: element i of hash h; edge values mixed into random ones, one hash all 0,
        // one all p − 1.
        let pre: Vec<Vec<Fr>> = (0..n)
            .map(|h| {
                (0..arity)
                    .map(|i| match h {
                        0 => Fr::ZERO,
                        1 => -Fr::ONE,
                        2 => Fr::from(i as u64),
                        _ if (h + i) % 3 == 0 => edges[(h * 7 + i) % edges.len()],
                        _ => Fr::random(&mut rng),
                    })
                    .collect()
            })
            .collect();
        // Column layout: element i of hash h at i·n + h.
        let mut cols = vec![0u64; 4 * n * arity];
        // Row layout: element i of hash h at h·arity + i.
        let mut rows = vec![0u64; 4 * n * arity];
        for (h, p) in pre.iter().enumerate() {
            for (i, f) in p.iter().enumerate() {
                let w = fr_words(f);
                cols[4 * (i * n + h)..4 * (i * n + h + 1)].copy_from_slice(&w);
                rows[4 * (h * arity + i)..4 * (h * arity + i + 1)].copy_from_slice(&w);
            }
        }
        req += &format!(
            "H {arity:x} {n:x} {n:x} 1 {:x} {}\n",
            cols.len(),
            hex(&cols)
        );
        req += &format!(
            "H {arity:x} {n:x} 1 {arity:x} {:x} {}\n",
            rows.len(),
            hex(&rows)
        );
        cases.push((arity, pre));
    }
    // A non-canonical element (p itself) must be flagged.
    let mut bad = vec![0u64; 8];
    bad[..4].copy_from_slice(&P);
    req += &format!("H 2 1 1 2 8 {}\n", hex(&bad));

    let got = run(&req);
    let mut lines = got.iter();
    for _ in GPU_ARITIES {
        assert_eq!(lines.next().map(String::as_str), Some("ok"), "table loads");
    }
    for (arity, pre) in &cases {
        let bytes: Vec<Vec<[u8; 32]>> = pre
            .iter()
            .map(|p| p.iter().map(|f| f.to_repr()).collect())
            .collect();
        let mut cpu = vec![0u8; 32 * pre.len()];
        hash_many(*arity, |h, i| &bytes[h][i][..], &mut cpu);
        for layout in ["columns", "rows"] {
            for (h, p) in pre.iter().enumerate() {
                let line = lines.next().expect("a hash");
                let want = neptune_hash(p);
                assert_eq!(
                    words_line(line),
                    fr_words(&want),
                    "arity {arity}, {layout}, hash {h}: kernel vs neptune"
                );
                assert_eq!(&cpu[32 * h..32 * h + 32], &want.to_repr()[..], "CPU batch");
            }
            assert_eq!(
                lines.next().map(String::as_str),
                Some("ok"),
                "all canonical"
            );
        }
    }
    lines.next().expect("the non-canonical hash");
    assert_eq!(
        lines.next().map(String::as_str),
        Some("bad"),
        "p is flagged"
    );
    assert!(lines.next().is_none());
}

/// neptune's published test vectors (docs/sdr-porep.md#known-answers) through the kernels.
#[test]
fn known_answers() {
    let counting = |n: u64| -> Vec<u64> { (0..n).flat_map(|i| fr_words(&Fr::from(i))).collect() };
    let mut req = tables_request();
    for arity in [2usize, 8, 11] {
        let w = counting(arity as u64);
        req += &format!("H {arity:x} 1 1 {arity:x} {:x} {}\n", w.len(), hex(&w));
    }
    let got = run(&req);
    let hashes: Vec<&String> = got.iter().filter(|l| l.len() > 3).collect();
    assert_eq!(
        words_line(hashes[0]),
        [
            0x2e203c369a02e7ff,
            0xa6fba9339d05a69d,
            0x739e0fd902efe161,
            0x396508d75e76a56b
        ]
    );
    assert_eq!(
        words_line(hashes[1]),
        [
            0x2a9934f56d38a5e6,
            0x4b682e9d9cc4aed9,
            0x1201004211677077,
            0x2394611da3a5de55
        ]
    );
    let bytes: Vec<u8> = words_line(hashes[2])
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    assert_eq!(
        sealkit::hex::encode(&bytes),
        "6331692bc3bbe3cec18fb0ccd8dcf3097ae8eb32e237a56c287f22e5b2c10f0c"
    );
}
