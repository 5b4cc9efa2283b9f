//! Helpers shared by the integration tests: seeded randomness and the reference oracle.
#![allow(dead_code)]

pub mod chaos;
pub mod fake_lotus;
pub mod json_schema;
pub mod sched;
pub mod sector;
pub mod sshd;

use std::io::Cursor;

use filecoin_proofs::{PaddedBytesAmount, UnpaddedBytesAmount};
use rand::{Rng, SeedableRng};
use rand_xorshift::XorShiftRng;

/// A seeded RNG; `SEALKIT_TEST_SEED` overrides the seed to reproduce a failure.
pub fn rng(test: &str) -> XorShiftRng {
    let seed: u64 = std::env::var("SEALKIT_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            test.bytes()
                .fold(0x5ea1u64, |a, b| a.wrapping_mul(31).wrapping_add(b as u64))
        });
    eprintln!("{test}: seed {seed} (set SEALKIT_TEST_SEED to reproduce)");
    let mut s = [0u8; 16];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    s[8..].copy_from_slice(&(!seed).to_le_bytes());
    XorShiftRng::from_seed(s)
}

pub fn random_bytes(rng: &mut impl Rng, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rng.fill(&mut v[..]);
    v
}

/// Unpadded piece size the reference wants for a payload: 127·2^k ≥ len.
pub fn reference_piece_size(len: u64) -> u64 {
    let mut s = 127;
    while s < len {
        s *= 2;
    }
    s
}

/// The reference's CommP of a payload, zero-padded to its piece size as Lotus does.
pub fn reference_commp(payload: &[u8]) -> [u8; 32] {
    let size = reference_piece_size(payload.len() as u64);
    let mut padded = payload.to_vec();
    padded.resize(size as usize, 0);
    filecoin_proofs::generate_piece_commitment(Cursor::new(padded), UnpaddedBytesAmount(size))
        .expect("reference CommP")
        .commitment
}

/// Root of the binary SHA-256 tree over already-padded bytes, by the reference.
pub fn reference_tree_root(padded: &[u8]) -> [u8; 32] {
    storage_proofs_core::pieces::generate_piece_commitment_bytes_from_source::<
        filecoin_proofs::constants::DefaultPieceHasher,
    >(&mut Cursor::new(padded), padded.len())
    .expect("reference tree root")
}

pub fn padded(u: u64) -> u64 {
    u64::from(PaddedBytesAmount::from(UnpaddedBytesAmount(u)))
}

pub fn hex(b: &[u8]) -> String {
    sealkit::hex::encode(b)
}

/// Asserts a tool failed cleanly: non-zero exit, nothing on stdout, one line on stderr
/// containing `needle`; returns that line.
pub fn fails(out: std::process::Output, needle: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "should fail: {err}");
    assert!(out.stdout.is_empty());
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    err
}
