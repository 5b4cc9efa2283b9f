//! The update's challenges (docs/snap-deals.md#challenges): drawn from comm_r_new alone.
//!
//! Digest `j` of partition `k` is `H_rand(comm_r_new, k·dpp + j)`; its low 254 bits are cut
//! into little-endian chunks of `rb = n − p` bits, and each chunk with the partition index
//! above it is a node index in partition k's range. Node 0 may be challenged.

use blstrs::Scalar as Fr;
use ff::PrimeField;

use super::params::UpdateShape;
use super::rho::h_rand;

/// The challenged nodes of partition `k`, in the order the proofs open them.
pub fn challenges(shape: &UpdateShape, comm_r_new: &Fr, k: usize) -> Vec<u64> {
    let rb = shape.random_bits();
    let per_digest = shape.challenges_per_digest();
    let dpp = shape.digests_per_partition();
    let mut out = Vec::with_capacity(shape.challenges);
    for j in 0..dpp {
        let d = h_rand(comm_r_new, &Fr::from((k * dpp + j) as u64)).to_repr();
        for m in 0..per_digest {
            if out.len() == shape.challenges {
                break;
            }
            out.push(bits(&d, m as u32 * rb, rb) | (k as u64) << rb);
        }
    }
    out
}

/// `width` (≤ 64) bits of a little-endian integer from bit `from`.
fn bits(le: &[u8; 32], from: u32, width: u32) -> u64 {
    let mut v = 0u64;
    for b in 0..width {
        let at = from + b;
        let bit = (le[(at / 8) as usize] >> (at % 8)) & 1;
        v |= (bit as u64) << b;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::poseidon::to_fr;
    use crate::sector::proof::SealProof;

    fn shape(id: u64) -> UpdateShape {
        UpdateShape::of(SealProof::from_id(id).unwrap()).unwrap()
    }

    fn comm(s: &str) -> Fr {
        to_fr(&crate::hex::decode32(s).unwrap()).unwrap()
    }

    /// docs/snap-deals.md#challenges: the crate's hard-coded vectors (first five of a
    /// partition) for comm_r_new = PoseidonDomain::random(XorShiftRng(TEST_SEED)).
    #[test]
    fn crate_vectors() {
        let r = comm("101cbe4b9c42604f04c703c396f788c6cb2d6d7d58f45430b12eb2edd640076c");
        assert_eq!(challenges(&shape(5), &r, 0)[..5], [53, 51, 56, 3, 0]);
        assert_eq!(
            challenges(&shape(6), &r, 1)[..5],
            [78878, 130797, 112892, 93994, 78379]
        );
        let c = challenges(&shape(8), &r, 0);
        assert_eq!(c.len(), 86);
        assert_eq!(c[..5], [1019125, 27985696, 15282860, 11586600, 44651330]);
        assert_eq!(
            challenges(&shape(8), &r, 15)[..5],
            [1038629497, 1053983614, 1030421316, 1027373887, 1068685433]
        );
    }

    /// docs/snap-deals.md#known-answers: the 2KiB update's ten challenges.
    #[test]
    fn appendix_a_2kib() {
        let r = comm("4afebf703ef8719db5e6dd6bf8cb6fc981f94cf5b349adf40867ff9d15997e3e");
        assert_eq!(
            challenges(&shape(5), &r, 0),
            [63, 19, 25, 57, 31, 59, 37, 24, 47, 17]
        );
    }
}
