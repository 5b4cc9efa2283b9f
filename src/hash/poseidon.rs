//! Poseidon over the BLS12-381 scalar field, as the proofs use it (docs/sdr-porep.md#poseidon).
//!
//! Every sealing hash uses the MerkleTree domain tag `2^arity − 1`: column hashes (arity 2 or
//! 11), tree_c / tree_r_last nodes (arity 8, and 2 for the 8-2-x sub and top layers) and
//! comm_r (arity 2). Values travel as 32-byte little-endian canonical encodings.
//!
//! Single hashes use neptune, the crate the reference links. The bulk of PC2 (column hashes,
//! tree rows) goes through [`hash_many`], which hashes eight preimages at a time with our own
//! AVX-512 IFMA permutation ([`super::poseidon_batch`], neptune's constants and algorithm)
//! when the CPU has IFMA, and neptune otherwise. `SEALKIT_POSEIDON=neptune` forces neptune
//! (benchmarks, cross-checks); both give the same bytes.

use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use blstrs::Scalar as Fr;
use ff::PrimeField;
use generic_array::typenum::{U11, U16, U2, U4, U8};
use neptune::poseidon::{Poseidon, PoseidonConstants};

#[cfg(target_arch = "x86_64")]
use super::{field_ifma::Ifma, poseidon_batch::PoseidonIfma};

/// Which implementation [`hash_many`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Our eight-lane AVX-512 IFMA permutation.
    Ifma,
    /// neptune, one hash at a time.
    Neptune,
}

#[cfg(target_arch = "x86_64")]
fn ifma_hasher() -> Option<&'static PoseidonIfma> {
    static H: OnceLock<Option<PoseidonIfma>> = OnceLock::new();
    H.get_or_init(|| Ifma::detect().map(PoseidonIfma::new))
        .as_ref()
}

#[cfg(not(target_arch = "x86_64"))]
fn ifma_hasher() -> Option<&'static std::convert::Infallible> {
    None
}

/// Whether this CPU can run [`Backend::Ifma`].
pub fn ifma_available() -> bool {
    ifma_hasher().is_some()
}

/// The backend [`hash_many`] uses: IFMA when the CPU has it, unless `SEALKIT_POSEIDON=neptune`.
pub fn backend() -> Backend {
    static B: OnceLock<Backend> = OnceLock::new();
    *B.get_or_init(|| {
        let forced = std::env::var("SEALKIT_POSEIDON").ok();
        if forced.as_deref() != Some("neptune") && ifma_available() {
            Backend::Ifma
        } else {
            Backend::Neptune
        }
    })
}

/// Hashes `out.len() / 32` preimages of `arity` (2, 4, 8, 11 or 16) canonical nodes: node
/// `i` of preimage `h` is `node(h, i)` (32 bytes). Writes the hashes to `out`, in order.
pub fn hash_many<'a>(arity: usize, node: impl Fn(usize, usize) -> &'a [u8], out: &mut [u8]) {
    hash_many_with(backend(), arity, node, out)
}

/// [`hash_many`] on a given backend (IFMA falls back to neptune where the CPU lacks it).
pub fn hash_many_with<'a>(
    backend: Backend,
    arity: usize,
    node: impl Fn(usize, usize) -> &'a [u8],
    out: &mut [u8],
) {
    #[cfg(target_arch = "x86_64")]
    if backend == Backend::Ifma {
        if let Some(h) = ifma_hasher() {
            return h.hash_many(arity, node, out);
        }
    }
    let _ = backend;
    let mut pre: Vec<Fr> = Vec::with_capacity(arity);
    for (h, o) in out.chunks_exact_mut(32).enumerate() {
        pre.clear();
        pre.extend((0..arity).map(|i| fr(node(h, i))));
        o.copy_from_slice(&to_bytes(&neptune_hash(&pre)));
    }
}

/// Poseidon of `arity` contiguous nodes per output: `children` holds `out.len() / 32`
/// preimages back to back (a tree row's children).
pub fn hash_rows(children: &[u8], arity: usize, out: &mut [u8]) {
    assert_eq!(children.len(), out.len() * arity, "children per output");
    hash_many(
        arity,
        |h, i| &children[32 * (h * arity + i)..32 * (h * arity + i + 1)],
        out,
    )
}

/// Column hashes: `layers[l]` holds layer `l + 1`'s labels of consecutive nodes; one hash per
/// node into `out`.
pub fn hash_columns(layers: &[&[u8]], out: &mut [u8]) {
    assert!(layers.iter().all(|l| l.len() == out.len()), "layer lengths");
    hash_many(layers.len(), |h, i| &layers[i][32 * h..32 * h + 32], out)
}

/// neptune's Poseidon (MerkleTree tag) of 2, 4, 8, 11 or 16 elements.
pub fn neptune_hash(pre: &[Fr]) -> Fr {
    static C4: OnceLock<PoseidonConstants<Fr, U4>> = OnceLock::new();
    static C16: OnceLock<PoseidonConstants<Fr, U16>> = OnceLock::new();
    match pre.len() {
        2 => Poseidon::new_with_preimage(pre, constants2()).hash(),
        4 => Poseidon::new_with_preimage(pre, C4.get_or_init(PoseidonConstants::new)).hash(),
        8 => Poseidon::new_with_preimage(pre, constants8()).hash(),
        11 => Poseidon::new_with_preimage(pre, constants11()).hash(),
        16 => Poseidon::new_with_preimage(pre, C16.get_or_init(PoseidonConstants::new)).hash(),
        n => panic!("no Poseidon of arity {n}"),
    }
}

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
    use ff::Field;

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

    /// Rows and columns through both backends equal the single-hash functions.
    #[test]
    fn batches_equal_single_hashes() {
        let nodes: Vec<u8> = (0..8 * 21u64)
            .flat_map(|i| to_bytes(&Fr::from(i * i + 7).pow_vartime([i + 3])))
            .collect();
        for backend in [Backend::Ifma, Backend::Neptune] {
            for arity in [2, 8] {
                let n = nodes.len() / 32 / arity;
                let mut out = vec![0u8; 32 * n];
                hash_many_with(
                    backend,
                    arity,
                    |h, i| &nodes[32 * (h * arity + i)..32 * (h * arity + i + 1)],
                    &mut out,
                );
                for (h, o) in out.chunks_exact(32).enumerate() {
                    let children = &nodes[32 * arity * h..32 * arity * (h + 1)];
                    assert_eq!(o, hash_children(children), "{backend:?} arity {arity}");
                }
            }
            let layers: Vec<&[u8]> = nodes.chunks_exact(32 * 15).take(11).collect();
            let mut out = vec![0u8; 32 * 15];
            hash_many_with(
                backend,
                11,
                |h, i| &layers[i][32 * h..32 * h + 32],
                &mut out,
            );
            for (h, o) in out.chunks_exact(32).enumerate() {
                let col: Vec<Fr> = layers.iter().map(|l| fr(&l[32 * h..32 * h + 32])).collect();
                assert_eq!(o, hash_column(&col), "{backend:?} column {h}");
            }
        }
        let mut rows = vec![0u8; nodes.len() / 8];
        hash_rows(&nodes, 8, &mut rows);
        assert_eq!(&rows[..32], hash8(&nodes[..256]));
    }
}
