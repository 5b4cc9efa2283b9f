//! The update's randomness: `H_rand`, phi and the rho values (docs/snap-deals.md#primitives).
//!
//! `H_rand` is Poseidon of arity 2 with the custom domain tag `2^40` ("gen randomness"): the
//! same rounds and constants as the MerkleTree arity-2 hash, only the capacity element
//! differs. phi binds the new data to the old replica (`H_rand(comm_d_new, comm_r_old)`), and
//! rho of a node is `H_rand(phi, high)` for the top h bits of its index: 2^h values in all.

use std::sync::OnceLock;

use anyhow::{Context, Result};
use blstrs::Scalar as Fr;
use ff::{Field, PrimeField};
use generic_array::typenum::U2;
use neptune::hash_type::{CType, HashType};
use neptune::poseidon::{Poseidon, PoseidonConstants};
use neptune::Strength;

use super::params::UpdateShape;
use crate::hash::poseidon::to_fr;

fn constants() -> &'static PoseidonConstants<Fr, U2> {
    static C: OnceLock<PoseidonConstants<Fr, U2>> = OnceLock::new();
    C.get_or_init(|| {
        PoseidonConstants::new_with_strength_and_type(
            Strength::Standard,
            HashType::Custom(CType::Arbitrary(1)),
        )
    })
}

/// `H_rand(x, y)`.
pub fn h_rand(x: &Fr, y: &Fr) -> Fr {
    Poseidon::new_with_preimage(&[*x, *y], constants()).hash()
}

/// A 32-byte commitment as a field element, naming it when it is not canonical.
pub fn commitment(bytes: &[u8; 32], what: &str) -> Result<Fr> {
    to_fr(bytes).with_context(|| format!("{what} is not a field element"))
}

/// `phi = H_rand(comm_d_new, comm_r_old)`: the new data commitment first.
pub fn phi(comm_d_new: &[u8; 32], comm_r_old: &[u8; 32]) -> Result<Fr> {
    Ok(h_rand(
        &commitment(comm_d_new, "comm_d of the new data")?,
        &commitment(comm_r_old, "comm_r of the sector key")?,
    ))
}

/// The 2^h rho values of a sector (or their inverses, for decoding).
#[derive(Debug, Clone)]
pub struct Rhos {
    shift: u32,
    values: Vec<Fr>,
}

impl Rhos {
    /// rho for every `high` of `shape`.
    pub fn new(phi: &Fr, shape: &UpdateShape) -> Rhos {
        Rhos {
            shift: shape.rho_shift(),
            values: (0..1u64 << shape.h)
                .map(|high| h_rand(phi, &Fr::from(high)))
                .collect(),
        }
    }

    /// rho⁻¹ for every `high` (rho is never zero but for a Poseidon collision with 0, which
    /// the reference would not survive either).
    pub fn inverses(phi: &Fr, shape: &UpdateShape) -> Rhos {
        let mut r = Rhos::new(phi, shape);
        for v in &mut r.values {
            *v = v.invert().expect("rho is not zero");
        }
        r
    }

    /// The value for node `i`.
    #[inline]
    pub fn of_node(&self, i: u64) -> &Fr {
        &self.values[(i >> self.shift) as usize]
    }

    /// The value for a `high` index (`node >> (n − h)`).
    pub fn of_high(&self, high: usize) -> &Fr {
        &self.values[high]
    }
}

/// A field element as its 32-byte little-endian canonical encoding.
pub fn bytes(x: &Fr) -> [u8; 32] {
    x.to_repr()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;

    fn fr_hex(s: &str) -> Fr {
        to_fr(&hex::decode32(s).unwrap()).unwrap()
    }

    /// docs/snap-deals.md#h_rand: the values confirmed with the crate's `phi`.
    #[test]
    fn h_rand_known_answers() {
        assert_eq!(
            hex::encode(&bytes(&h_rand(&Fr::ZERO, &Fr::ZERO))),
            "b3f18da3b9c14f6cc04be465c31c812e95510e8eb8b13f75263ca08d5c127823"
        );
        assert_eq!(
            hex::encode(&bytes(&h_rand(&Fr::from(1u64), &Fr::from(2u64)))),
            "3c2fe9b59c5f0de453bbb6db5c84af5448c7d4c1fbf41830ab05dbaf9b872c70"
        );
    }

    /// docs/snap-deals.md#known-answers: 2KiB phi and both rho values from the crate-checked
    /// inputs.
    #[test]
    fn phi_and_rho_2kib() {
        let comm_d_new =
            hex::decode32("692fbdbc72e1aa6468e86a183ed3dfc2d43b8ad6fb6639110966b2d6371f5419")
                .unwrap();
        let comm_r_old =
            hex::decode32("5ef39cd8b8ff6434a5c5cceabed58a857113254b2d7fa34a98782db30582690b")
                .unwrap();
        let phi = phi(&comm_d_new, &comm_r_old).unwrap();
        assert_eq!(
            phi,
            fr_hex("bf3fbd3b75cb65ce7d03a423481aa8276852a12c86481a9399072632ed4aeb23")
        );
        let shape = UpdateShape::of(crate::sector::proof::SealProof::from_id(5).unwrap()).unwrap();
        let rhos = Rhos::new(&phi, &shape);
        let r0 = fr_hex("a412feffe7e66b3b3bc03b4b7a098677a544dbc350163708489df13d6253255a");
        let r1 = fr_hex("bd374dac14c4d30d86ff5d5be61d2d1be0590ca9cc561c9bb07f4656e738402d");
        assert_eq!(*rhos.of_node(0), r0);
        assert_eq!(*rhos.of_node(31), r0);
        assert_eq!(*rhos.of_node(32), r1);
        assert_eq!(*rhos.of_node(63), r1);
        let inv = Rhos::inverses(&phi, &shape);
        assert_eq!(*inv.of_node(40) * r1, Fr::ONE);
    }

    /// docs/snap-deals.md#known-answers-at-other-sizes: 8MiB rho[0] and rho[1023] (h = 10).
    #[test]
    fn rho_8mib() {
        let phi = fr_hex("0d640d2c2a61d135d3b9dff1f3490cb5b7cbdb3e3863cc225d5d6700cc3e8316");
        let shape = UpdateShape::of(crate::sector::proof::SealProof::from_id(6).unwrap()).unwrap();
        let rhos = Rhos::new(&phi, &shape);
        assert_eq!(
            hex::encode(&bytes(rhos.of_high(0))),
            "1005b09cf20e3f03477c019b1a1d2a1d1ba6c15391f59b27619410784856ea05"
        );
        assert_eq!(
            hex::encode(&bytes(rhos.of_high(1023))),
            "3614862077d0eb0dc776b3ef14568777f9ad7854419459dfe13b92e0d0b26b1a"
        );
        assert_eq!(rhos.of_node((1 << 18) - 1), rhos.of_high(1023));
    }
}
