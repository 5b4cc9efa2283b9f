//! DRG base parents by bucket sampling (`BucketGraph::parents`; docs/sdr-porep.md#drg-parents).
//!
//! For node v ≥ 2 a ChaCha8 stream seeded with `drg_seed || u32_le(v)` draws, five times, a
//! bucket and then a distance in the metagraph of degree 5; the parent is the metagraph node
//! at that distance mapped back. `v − 1` is always a parent: first (V1_1+) or last (V1_0).

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::BASE_DEGREE;
use crate::sector::proof::ApiVersion;

/// The six base parents of `node`, in the reference's order.
pub fn base_parents(seed: &[u8; 28], api: ApiVersion, node: u32) -> [u32; BASE_DEGREE] {
    let mut parents = [0u32; BASE_DEGREE];
    if node < 2 {
        return parents;
    }
    let mut s = [0u8; 32];
    s[..28].copy_from_slice(seed);
    s[28..].copy_from_slice(&node.to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(s);

    const M_PRIME: u64 = BASE_DEGREE as u64 - 1;
    let meta = u64::from(node) * M_PRIME;
    let n_buckets = (meta as f64).log2().ceil() as u64;
    let (pred, sampled) = match api {
        ApiVersion::V1_0_0 => (BASE_DEGREE - 1, 0..BASE_DEGREE - 1),
        ApiVersion::V1_1_0 | ApiVersion::V1_2_0 => (0, 1..BASE_DEGREE),
    };
    for slot in sampled {
        let bucket = rng.next_u64() % n_buckets + 1;
        let largest = meta.min(1 << bucket);
        let smallest = (largest >> 1).max(2);
        let dist = smallest + rng.next_u64() % (largest - smallest + 1);
        let parent = ((meta - dist) / M_PRIME) as u32;
        parents[slot] = if parent == node { node - 1 } else { parent };
    }
    parents[pred] = node - 1;
    parents
}
