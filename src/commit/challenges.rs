//! Which nodes a PoRep proof opens (docs/sdr-porep.md#interactive-challenges,
//! docs/sdr-porep.md#non-interactive-porep, docs/sdr-porep.md#synthetic-porep).
//!
//! Three derivations, all ending in `(int_le(32 bytes) mod (N − 1)) + 1`, so node 0 (whose
//! label depends on no parent) is never challenged:
//! * interactive: `SHA256(replica_id || seed || u32_le(j))`, the seed drawn from the chain
//!   150 epochs after precommit;
//! * non-interactive: `SHA256(tag || replica_id || comm_r || u32_le(j))`, no seed at all;
//! * synthetic: a fixed set of `min(N, 2^18)` challenges from a ChaCha20 keystream keyed by
//!   `(replica_id, comm_r)`, proven right after PC2; the seed later only *selects* which of
//!   them the SNARK uses, so the layers can be deleted before the seed arrives.

use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::ChaCha20;
use sha2::{Digest, Sha256};

use crate::sector::proof::{Feature, SealProof};

/// The NI-PoRep domain tag.
const NI_TAG: &[u8] = b"filecoin.io|PoRep|1|NonInteractive|1";
/// Synthetic challenges for sectors of at least this many nodes.
const MAX_SYNTH_CHALLENGES: u64 = 1 << 18;
const SYNTH_NONCE: &[u8; 12] = b"synth-porep\x00";
const SYNTH_GENERATION_KEY: &[u8] = b"filecoin.io|PoRep|1|Synthetic|1|Generation";
const SYNTH_SELECTION_KEY: &[u8] = b"filecoin.io|PoRep|1|Synthetic|1|Selection";

/// `(int_le(bytes) mod (nodes − 1)) + 1`: a 256-bit little-endian integer reduced limb by
/// limb from the top (the modulus is below 2^32, so a u128 never overflows).
pub fn to_challenge(bytes: &[u8; 32], nodes: u64) -> u64 {
    let m = (nodes - 1) as u128;
    let r = bytes.rchunks_exact(8).fold(0u128, |r, limb| {
        let limb = u64::from_le_bytes(limb.try_into().expect("8 bytes"));
        ((r << 64) | limb as u128) % m
    });
    r as u64 + 1
}

/// Interactive challenges of partition `k`.
pub fn interactive(proof: SealProof, replica_id: &[u8; 32], seed: &[u8; 32], k: usize) -> Vec<u64> {
    let cpp = proof.challenges_per_partition();
    (0..cpp)
        .map(|i| {
            let j = (cpp * k + i) as u32;
            let h: [u8; 32] = Sha256::new()
                .chain_update(replica_id)
                .chain_update(seed)
                .chain_update(j.to_le_bytes())
                .finalize()
                .into();
            to_challenge(&h, proof.nodes())
        })
        .collect()
}

/// Non-interactive challenges of partition `k`.
pub fn non_interactive(
    proof: SealProof,
    replica_id: &[u8; 32],
    comm_r: &[u8; 32],
    k: usize,
) -> Vec<u64> {
    let cpp = proof.challenges_per_partition();
    let prefix = Sha256::new()
        .chain_update(NI_TAG)
        .chain_update(replica_id)
        .chain_update(comm_r);
    (0..cpp)
        .map(|i| {
            let j = (cpp * k + i) as u32;
            let h: [u8; 32] = prefix
                .clone()
                .chain_update(j.to_le_bytes())
                .finalize()
                .into();
            to_challenge(&h, proof.nodes())
        })
        .collect()
}

fn keyed_chacha(key: &[u8], a: &[u8; 32], b: &[u8; 32]) -> ChaCha20 {
    let k = blake2b_simd::Params::new()
        .hash_length(32)
        .key(key)
        .to_state()
        .update(a)
        .update(b)
        .finalize();
    ChaCha20::new(k.as_bytes().into(), SYNTH_NONCE.into())
}

/// Number of synthetic challenges of a sector of `nodes` nodes.
pub fn synthetic_count(nodes: u64) -> usize {
    nodes.min(MAX_SYNTH_CHALLENGES) as usize
}

/// The whole synthetic challenge set, in order.
pub fn synthetic(nodes: u64, replica_id: &[u8; 32], comm_r: &[u8; 32]) -> Vec<u64> {
    let count = synthetic_count(nodes);
    let mut stream = vec![0u8; count * 32];
    keyed_chacha(SYNTH_GENERATION_KEY, replica_id, comm_r).apply_keystream(&mut stream);
    stream
        .chunks_exact(32)
        .map(|c| to_challenge(c.try_into().expect("32 bytes"), nodes))
        .collect()
}

/// Indexes into the synthetic set of partition `k`'s PoRep challenges, selected by `seed`.
pub fn synthetic_selection(
    proof: SealProof,
    replica_id: &[u8; 32],
    seed: &[u8; 32],
    k: usize,
) -> Vec<usize> {
    let cpp = proof.challenges_per_partition();
    let count = synthetic_count(proof.nodes());
    let mut c = keyed_chacha(SYNTH_SELECTION_KEY, replica_id, seed);
    c.seek((4 * k * cpp) as u64);
    let mut words = vec![0u8; 4 * cpp];
    c.apply_keystream(&mut words);
    words
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")) as usize % count)
        .collect()
}

/// How a proof type draws the challenges C1 proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Interactive,
    Synthetic,
    NonInteractive,
}

impl Kind {
    pub fn of(proof: SealProof) -> Kind {
        match proof.feature() {
            Some(Feature::SyntheticPoRep) => Kind::Synthetic,
            Some(Feature::NonInteractivePoRep) => Kind::NonInteractive,
            None => Kind::Interactive,
        }
    }
}

/// The challenges of every partition, `[partition][i]`, for interactive and
/// non-interactive proofs (synthetic ones come from the stored synthetic set instead).
pub fn partitions(
    proof: SealProof,
    replica_id: &[u8; 32],
    comm_r: &[u8; 32],
    seed: &[u8; 32],
) -> Vec<Vec<u64>> {
    (0..proof.partitions())
        .map(|k| match Kind::of(proof) {
            Kind::NonInteractive => non_interactive(proof, replica_id, comm_r, k),
            _ => interactive(proof, replica_id, seed, k),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::decode32;

    fn fr_u64(v: u64) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&v.to_le_bytes());
        b
    }

    /// Spec Appendix A.4' (the reference's hard-coded synthetic test vector).
    #[test]
    fn synthetic_known_answer() {
        let (rid, comm_r) = (fr_u64(55), fr_u64(101));
        let mut c = keyed_chacha(SYNTH_GENERATION_KEY, &rid, &comm_r);
        let mut stream = vec![0u8; 21 * 32];
        c.apply_keystream(&mut stream);
        let synth: Vec<u64> = stream
            .chunks_exact(32)
            .map(|c| to_challenge(c.try_into().unwrap(), 1024))
            .collect();
        assert_eq!(
            synth,
            [
                178, 297, 869, 211, 875, 477, 94, 781, 124, 332, 856, 801, 176, 692, 429, 691, 290,
                204, 986, 210, 973
            ]
        );
        let mut sel = keyed_chacha(SYNTH_SELECTION_KEY, &rid, &[1; 32]);
        let mut words = vec![0u8; 40];
        sel.apply_keystream(&mut words);
        let picked: Vec<u64> = words
            .chunks_exact(4)
            .map(|w| synth[u32::from_le_bytes(w.try_into().unwrap()) as usize % 21])
            .collect();
        assert_eq!(picked, [176, 781, 801, 986, 290, 211, 692, 856, 986, 332]);
    }

    /// Spec Appendix A.4 (b): the same 2KiB sector's challenges for all three kinds.
    #[test]
    fn sector_known_answers() {
        let seed = [3u8; 32];
        let p5 = SealProof::from_id(5).unwrap();
        let rid =
            decode32("db0edd534f017d66c9c2a60309c1b497052a9c0bb5e574f3a967d1a25f3c7d1e").unwrap();
        assert_eq!(interactive(p5, &rid, &seed, 0), [12, 5]);

        let p10 = SealProof::from_id(10).unwrap();
        let rid =
            decode32("6823bff38603cbdc453a27ec62e7500c18b4f0731193304d1692831e1a05d818").unwrap();
        let comm_r =
            decode32("462e272ae0a230f909aa283599536f148fbd814c87c08846e7f19743533a9c2b").unwrap();
        let set = synthetic(64, &rid, &comm_r);
        assert_eq!(set.len(), 64);
        assert_eq!(&set[..8], [39, 25, 32, 5, 23, 23, 38, 39]);
        assert_eq!(set[63], 7);
        let picked: Vec<u64> = synthetic_selection(p10, &rid, &seed, 0)
            .into_iter()
            .map(|i| set[i])
            .collect();
        assert_eq!(picked, [35, 49]);

        let p15 = SealProof::from_id(15).unwrap();
        let comm_r =
            decode32("9fe27fe20954cbcdd06c9143df51a86bd97a8381db066e9e1d0de1c070ae4e15").unwrap();
        let rid15 = crate::sector::replica_id::replica_id(
            &[1; 32],
            42,
            &[2; 32],
            &decode32("692fbdbc72e1aa6468e86a183ed3dfc2d43b8ad6fb6639110966b2d6371f5419").unwrap(),
            &p15.porep_id(),
        );
        let all = partitions(p15, &rid15, &comm_r, &seed);
        assert_eq!(all.len(), 13);
        assert_eq!(all[0], [12, 34]);
        assert_eq!(all[12], [46, 38]);
    }

    #[test]
    fn reduction_matches_big_integer_maths() {
        // 2^255 mod (2^18 − 1) = 2^(255 mod 18) = 2^3, since 2^18 ≡ 1.
        let mut b = [0u8; 32];
        b[31] = 0x80;
        assert_eq!(to_challenge(&b, 1 << 18), 8 + 1);
        // 2^256 − 1 mod 63: 2^6 ≡ 1, so 2^256 = 2^4·(2^6)^42 ≡ 16, minus one is 15.
        assert_eq!(to_challenge(&[0xff; 32], 64), 15 + 1);
    }
}
