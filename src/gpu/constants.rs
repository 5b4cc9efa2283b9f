//! The constant tables the Poseidon kernels read, built from neptune's `PoseidonConstants`:
//! the same source the CPU code uses ([`crate::hash::poseidon`], [`crate::hash::poseidon_batch`]),
//! so the GPU never carries a second copy of the constants that could drift.
//!
//! The layout is the one `src/gpu/kernels/poseidon.cuh` documents (domain tag, compressed
//! round constants, MDS, pre-sparse, sparse matrices), each element as four little-endian
//! 64-bit words in Montgomery form with `R = 2^256`, blstrs' own form. The table is plain
//! data: the CUDA backend copies it to the device, and the host tests feed it to the same
//! C++ code compiled for the CPU.

use blstrs::Scalar as Fr;
use ff::{Field, PrimeField};
use generic_array::typenum::{U11, U16, U2, U8};
use neptune::hash_type::HashType;
use neptune::poseidon::{Arity, PoseidonConstants};

/// The arities the kernels are instantiated for: tree nodes (2, 8, 16) and 11-layer
/// columns (2-layer columns are arity 2).
pub const GPU_ARITIES: [usize; 4] = [2, 8, 11, 16];

/// One arity's constants in the kernels' layout.
#[derive(Debug, Clone)]
pub struct PoseidonTable {
    pub arity: usize,
    pub half_full_rounds: usize,
    pub partial_rounds: usize,
    /// Four words per element, Montgomery form.
    pub words: Vec<u64>,
}

/// `f · 2^256 mod p` as words: the Montgomery form of `f`.
pub fn mont_words(f: &Fr) -> [u64; 4] {
    fr_words(&(*f * r_mod_p()))
}

/// Little-endian 64-bit words of a field element's canonical encoding.
pub fn fr_words(f: &Fr) -> [u64; 4] {
    let b = f.to_repr();
    std::array::from_fn(|i| u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().expect("8")))
}

/// `2^256 mod p` as a field element.
fn r_mod_p() -> Fr {
    Fr::from(2u64).pow_vartime([256u64])
}

fn table<A: Arity<Fr>>() -> PoseidonTable {
    let c = PoseidonConstants::<Fr, A>::new();
    assert!(
        matches!(c.hash_type, HashType::MerkleTree),
        "Merkle tree hashes"
    );
    let w = c.width();
    let r = r_mod_p();
    let mut words = Vec::new();
    let mut push = |f: &Fr| words.extend_from_slice(&fr_words(&(*f * r)));
    push(&c.domain_tag);
    let rc_len = 2 * c.half_full_rounds * w + c.partial_rounds;
    assert_eq!(
        c.compressed_round_constants.len(),
        rc_len,
        "compressed round constants"
    );
    c.compressed_round_constants.iter().for_each(&mut push);
    for m in [&c.mds_matrices.m, &c.pre_sparse_matrix] {
        assert_eq!(m.len(), w, "matrix rows");
        for row in m {
            assert_eq!(row.len(), w, "matrix columns");
            row.iter().for_each(&mut push);
        }
    }
    for s in &c.sparse_matrixes[..c.partial_rounds] {
        assert_eq!((s.w_hat.len(), s.v_rest.len()), (w, w - 1), "sparse matrix");
        s.w_hat.iter().for_each(&mut push);
        s.v_rest.iter().for_each(&mut push);
    }
    let table = PoseidonTable {
        arity: w - 1,
        half_full_rounds: c.half_full_rounds,
        partial_rounds: c.partial_rounds,
        words,
    };
    assert_eq!(table.words.len(), 4 * table.len(), "table layout");
    table
}

impl PoseidonTable {
    /// The table of one of [`GPU_ARITIES`]; `None` for any other arity.
    pub fn new(arity: usize) -> Option<PoseidonTable> {
        Some(match arity {
            2 => table::<U2>(),
            8 => table::<U8>(),
            11 => table::<U11>(),
            16 => table::<U16>(),
            _ => return None,
        })
    }

    /// The state width, `arity + 1`.
    pub fn width(&self) -> usize {
        self.arity + 1
    }

    /// Elements in the table (the kernels' `sk_poseidon_layout(..).len`).
    pub fn len(&self) -> usize {
        let w = self.width();
        1 + 2 * self.half_full_rounds * w
            + self.partial_rounds
            + 2 * w * w
            + self.partial_rounds * (2 * w - 1)
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Montgomery form matches blstrs' own: `mont(1)` is `2^256 mod p = 2^256 − 2p` (p is
    /// between 2^254 and 2^255), computed here on plain integers. The element counts are
    /// SupraSeal's independently published table sizes for arities 11, 8 and 2 (1,752,
    /// 1,260 and 372 elements, without the domain tag our table starts with).
    #[test]
    fn layout_and_form() {
        // The curve's published scalar modulus r.
        let p: [u64; 4] = [
            0xffff_ffff_0000_0001,
            0x53bd_a402_fffe_5bfe,
            0x3339_d808_09a1_d805,
            0x73ed_a753_299d_7d48,
        ];
        let mut r = [0u64; 4];
        let mut borrow = 0u64;
        for i in 0..4 {
            // 0 − 2p mod 2^256, limb by limb: 2p's limb is p[i] << 1 | p[i−1] >> 63.
            let two_p = p[i] << 1 | if i > 0 { p[i - 1] >> 63 } else { 0 };
            let (d, b1) = 0u64.overflowing_sub(two_p);
            let (d, b2) = d.overflowing_sub(borrow);
            r[i] = d;
            borrow = (b1 || b2) as u64;
        }
        assert_eq!(mont_words(&Fr::ONE), r);
        for (arity, len) in [(11, 1752), (8, 1260), (2, 372)] {
            let t = PoseidonTable::new(arity).unwrap();
            assert_eq!(t.len(), len + 1, "arity {arity}");
            assert_eq!(t.words.len(), 4 * (len + 1));
        }
        assert!(PoseidonTable::new(4).is_none());
    }
}
