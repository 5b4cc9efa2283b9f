//! Poseidon over the BLS12-381 scalar field, as the proofs use it (spec §9).
//!
//! Every sealing hash uses the MerkleTree domain tag `2^arity − 1`: column hashes (arity 2 or
//! 11), tree_c / tree_r_last nodes (arity 8, and 2 for the 8-2-x sub and top layers) and
//! comm_r (arity 2). Values travel as 32-byte little-endian canonical encodings. The
//! permutation itself is neptune's, the crate the reference links, with its constants.

use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use blstrs::Scalar as Fr;
use ff::PrimeField;
use generic_array::typenum::{U11, U2, U8};
use neptune::poseidon::{Poseidon, PoseidonConstants};

fn constants2() -> &'static PoseidonConstants<Fr, U2> {
    static C: OnceLock<PoseidonConstants<Fr, U2>> = OnceLock::new();
    C.get_or_init(PoseidonConstants::new)
}

fn constants8() -> &'static PoseidonConstants<Fr, U8> {
    static C: OnceLock<PoseidonConstants<Fr, U8>> = OnceLock::new();
    C.get_or_init(PoseidonConstants::new)
}

fn constants11() -> &'static PoseidonConstants<Fr, U11> {
    static C: OnceLock<PoseidonConstants<Fr, U11>> = OnceLock::new();
    C.get_or_init(PoseidonConstants::new)
}

/// A 32-byte node as a field element; an error if it is not canonical (≥ p).
pub fn to_fr(bytes: &[u8]) -> Result<Fr> {
    let repr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow!("a node is 32 bytes"))?;
    Fr::from_repr_vartime(repr).ok_or_else(|| anyhow!("value is not a canonical field element"))
}

/// A node that is known to be canonical (labels, hashes, replica nodes).
#[inline]
pub fn fr(bytes: &[u8]) -> Fr {
    to_fr(bytes).expect("node is a canonical field element")
}

#[inline]
pub fn to_bytes(f: &Fr) -> [u8; 32] {
    f.to_repr()
}

/// Poseidon of two nodes (tree layers of arity 2, comm_r, 2-layer column hashes).
pub fn hash2(a: &[u8], b: &[u8]) -> [u8; 32] {
    to_bytes(&Poseidon::new_with_preimage(&[fr(a), fr(b)], constants2()).hash())
}

/// Poseidon of eight nodes given as 256 contiguous bytes (oct-tree nodes).
pub fn hash8(children: &[u8]) -> [u8; 32] {
    let pre: [Fr; 8] = std::array::from_fn(|i| fr(&children[32 * i..32 * i + 32]));
    to_bytes(&Poseidon::new_with_preimage(&pre, constants8()).hash())
}

/// Poseidon of `arity` contiguous nodes, for the arities trees use (2 and 8).
pub fn hash_children(children: &[u8]) -> [u8; 32] {
    match children.len() / 32 {
        2 => hash2(&children[..32], &children[32..]),
        8 => hash8(children),
        n => panic!("no tree arity {n}"),
    }
}

/// A column hash: Poseidon of a node's labels in every layer (2 or 11 layers).
pub fn hash_column(column: &[Fr]) -> [u8; 32] {
    let h = match column.len() {
        2 => Poseidon::new_with_preimage(column, constants2()).hash(),
        11 => Poseidon::new_with_preimage(column, constants11()).hash(),
        n => panic!("no column hash for {n} layers"),
    };
    to_bytes(&h)
}

/// `(a + b) mod p` on 32-byte encodings: the SDR encoding of a replica node.
#[inline]
pub fn add(a: &[u8], b: &[u8]) -> [u8; 32] {
    to_bytes(&(fr(a) + fr(b)))
}

/// `(a − b) mod p`: decoding (unseal).
#[inline]
pub fn sub(a: &[u8], b: &[u8]) -> [u8; 32] {
    to_bytes(&(fr(a) - fr(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limbs(b: &[u8; 32]) -> [u64; 4] {
        std::array::from_fn(|i| u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap()))
    }

    fn counting(n: u64) -> Vec<u8> {
        (0..n).flat_map(|i| to_bytes(&Fr::from(i))).collect()
    }

    /// Spec Appendix A.1 (neptune's own test vectors and the crates' values).
    #[test]
    fn known_answers() {
        let two = counting(2);
        assert_eq!(
            limbs(&hash2(&two[..32], &two[32..])),
            [
                0x2e203c369a02e7ff,
                0xa6fba9339d05a69d,
                0x739e0fd902efe161,
                0x396508d75e76a56b
            ]
        );
        assert_eq!(
            limbs(&hash8(&counting(8))),
            [
                0x2a9934f56d38a5e6,
                0x4b682e9d9cc4aed9,
                0x1201004211677077,
                0x2394611da3a5de55
            ]
        );
        let col: Vec<Fr> = (0..11u64).map(Fr::from).collect();
        assert_eq!(
            crate::hex::encode(&hash_column(&col)),
            "6331692bc3bbe3cec18fb0ccd8dcf3097ae8eb32e237a56c287f22e5b2c10f0c"
        );
        let one_two = [to_bytes(&Fr::from(1)), to_bytes(&Fr::from(2))];
        assert_eq!(
            crate::hex::encode(&hash2(&one_two[0], &one_two[1])),
            "bea95f3e83d91793d896586e724ec069769d6a43afcbab7b4d1f7f6506816f6d"
        );
        assert!(to_fr(&[0xff; 32]).is_err());
    }
}
