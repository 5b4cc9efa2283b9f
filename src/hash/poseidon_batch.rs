//! Poseidon for eight hashes at once on AVX-512 IFMA ([`super::field_ifma`]).
//!
//! The algorithm is neptune's `HashMode::OptimizedStatic`, the one `Poseidon::hash` (and so
//! the reference) runs, with neptune's own constants read at start-up from
//! `PoseidonConstants`: add the first `width` compressed round constants; `half_full_rounds`
//! full rounds (S-box `x⁵` on every element, then the next compressed constants, then the
//! MDS matrix, except that the last of these rounds multiplies by the pre-sparse matrix);
//! `partial_rounds` partial rounds (S-box on element 0 plus one constant, then one sparse
//! matrix each: a dense first row `w_hat` and `x[j] + v_rest[j−1]·x[0]` below it, 2w − 1
//! products instead of w²); `half_full_rounds − 1` full rounds with constants and a last full
//! round without; the output is element 1. Field arithmetic is exact, so the result equals
//! neptune's bit for bit; the tests compare them on random preimages for every arity.
//!
//! **Why no reduction is needed beyond one conditional subtraction.** With `p/R < 1/32`
//! (field module), a Montgomery product of `a < αp` and `b < βp` is below `p(1 + αβ/32)`.
//! Every state element stays below `2.2p` between rounds: the S-box of `x < 2.2p` gives
//! `x² < 1.16p`, `x⁴ < 1.05p`, `x⁵ < 1.08p`, plus a canonical constant `< 2.08p`; a matrix
//! row sums at most 17 products of canonical constants with elements `< 2.2p` into one
//! [`Wide8`] and reduces once, giving `< p(1 + 17·2.2/32) < 2.17p`; a sparse row's
//! `x[j] + v·x[0]` is below `2.2p + 1.07p`, and subtracting 2p when it is at least 2p brings
//! it below 2p. All values stay below 2^257, and a 17-product row puts at most 170 52-bit
//! terms in one 64-bit column.

use blstrs::Scalar as Fr;
use ff::PrimeField;
use generic_array::typenum::{U11, U16, U2, U4, U8};
use neptune::hash_type::HashType;
use neptune::poseidon::{Arity, PoseidonConstants};

use super::field_ifma::{is_canonical, Const, Fr8, Ifma, Wide8, LANES};

/// Poseidon arities with batched constants: trees (2, 4, 8, 16) and 11-layer columns.
pub const ARITIES: [usize; 5] = [2, 4, 8, 11, 16];

/// The widest state the bounds above allow (arity 16).
const MAX_WIDTH: usize = 17;

/// A field element as 64-bit little-endian words.
pub type Words = [u64; 4];

/// Little-endian words of a field element's canonical encoding.
pub fn fr_words(f: &Fr) -> Words {
    let b = f.to_repr();
    std::array::from_fn(|i| u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().expect("8")))
}

/// One sparse matrix of the partial rounds.
struct Sparse<const W: usize> {
    w_hat: [Const; W],
    v_rest: Vec<Const>,
}

/// One arity's constants, converted to Montgomery form with `R = 2^260`.
struct Params<const W: usize> {
    half_full_rounds: usize,
    partial_rounds: usize,
    domain_tag: Const,
    round_constants: Vec<Const>,
    /// `mds[i][j]`: row `i`, column `j` (neptune multiplies the state as a row vector).
    mds: Vec<[Const; W]>,
    pre_sparse: Vec<[Const; W]>,
    sparse: Vec<Sparse<W>>,
}

impl<const W: usize> Params<W> {
    fn new<A: Arity<Fr>>(ifma: Ifma) -> Self {
        const {
            assert!(
                W <= MAX_WIDTH,
                "the lazy-reduction bounds hold up to width 17"
            )
        };
        let c = PoseidonConstants::<Fr, A>::new();
        assert_eq!(c.width(), W, "arity and width");
        assert!(
            matches!(c.hash_type, HashType::MerkleTree),
            "Merkle tree hashes"
        );
        let k = |f: &Fr| ifma.constant(fr_words(f));
        let matrix = |m: &Vec<Vec<Fr>>| -> Vec<[Const; W]> {
            assert_eq!(m.len(), W, "matrix rows");
            m.iter()
                .map(|row| std::array::from_fn(|j| k(&row[j])))
                .collect()
        };
        let params = Params {
            half_full_rounds: c.half_full_rounds,
            partial_rounds: c.partial_rounds,
            domain_tag: k(&c.domain_tag),
            round_constants: c.compressed_round_constants.iter().map(k).collect(),
            mds: matrix(&c.mds_matrices.m),
            pre_sparse: matrix(&c.pre_sparse_matrix),
            sparse: c
                .sparse_matrixes
                .iter()
                .map(|s| Sparse {
                    w_hat: std::array::from_fn(|i| k(&s.w_hat[i])),
                    v_rest: s.v_rest.iter().map(k).collect(),
                })
                .collect(),
        };
        assert_eq!(
            params.round_constants.len(),
            2 * params.half_full_rounds * W + params.partial_rounds,
            "compressed round constants"
        );
        assert!(params.sparse.len() >= params.partial_rounds);
        assert!(params.sparse.iter().all(|s| s.v_rest.len() == W - 1));
        params
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn sbox(x: &Fr8) -> Fr8 {
    x.square().square().mul(x)
}

/// A full round: S-box on every element, then the round's constants (none after the last
/// round), then `state · matrix`, each output column summed unreduced and reduced once.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn full_round<const W: usize>(s: &mut [Fr8; W], keys: Option<&[Const]>, m: &[[Const; W]]) {
    let t: [Fr8; W] = std::array::from_fn(|i| match keys {
        Some(k) => sbox(&s[i]).add_const(&k[i]),
        None => sbox(&s[i]),
    });
    *s = std::array::from_fn(|j| {
        let mut acc = Wide8::zero();
        for (ti, row) in t.iter().zip(m) {
            acc.mul_add_const(ti, &row[j]);
        }
        acc.reduce()
    });
}

/// A partial round: S-box and constant on element 0, then the sparse matrix.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn partial_round<const W: usize>(s: &mut [Fr8; W], key: &Const, m: &Sparse<W>) {
    let x0 = sbox(&s[0]).add_const(key);
    s[0] = x0;
    let mut acc = Wide8::zero();
    for (si, w) in s.iter().zip(&m.w_hat) {
        acc.mul_add_const(si, w);
    }
    for (sj, v) in s[1..].iter_mut().zip(&m.v_rest) {
        *sj = sj.add(&x0.mul_const(v)).reduce_2p();
    }
    s[0] = acc.reduce();
}

/// The permutation of eight states; returns element 1 of each.
#[target_feature(enable = "avx512f,avx512ifma")]
fn permute<const W: usize>(p: &Params<W>, s: &mut [Fr8; W]) -> Fr8 {
    let half = p.half_full_rounds;
    let rc = &p.round_constants;
    for (x, k) in s.iter_mut().zip(rc) {
        *x = x.add_const(k);
    }
    let mut at = W;
    // The last full round before the partial rounds multiplies by the pre-sparse matrix.
    for round in 0..half {
        let m = if round + 1 == half {
            &p.pre_sparse
        } else {
            &p.mds
        };
        full_round(s, Some(&rc[at..at + W]), m);
        at += W;
    }
    for sparse in &p.sparse[..p.partial_rounds] {
        partial_round(s, &rc[at], sparse);
        at += 1;
    }
    for _ in 1..half {
        full_round(s, Some(&rc[at..at + W]), &p.mds);
        at += W;
    }
    full_round(s, None, &p.mds);
    debug_assert_eq!(at, rc.len());
    s[1]
}

/// Eight hashes of `W − 1` elements each: `inputs[i][lane]` is element `i` of hash `lane`
/// (canonical words); returns each hash's canonical words.
#[target_feature(enable = "avx512f,avx512ifma")]
fn hash_lanes<const W: usize>(p: &Params<W>, inputs: &[[Words; LANES]]) -> [Words; LANES] {
    let mut s: [Fr8; W] = std::array::from_fn(|i| match i {
        0 => Fr8::splat(&p.domain_tag),
        i => Fr8::from_words(&inputs[i - 1]),
    });
    permute(p, &mut s).to_words()
}

/// Batched Poseidon with the MerkleTree domain tag for every arity in [`ARITIES`].
pub struct PoseidonIfma {
    /// Never read: holding it is the proof, checked by the type system, that the CPU has
    /// the features the `unsafe` calls below rely on.
    #[allow(dead_code)]
    ifma: Ifma,
    a2: Params<3>,
    a4: Params<5>,
    a8: Params<9>,
    a11: Params<12>,
    a16: Params<17>,
}

impl PoseidonIfma {
    /// Converts neptune's constants for every arity (a few milliseconds).
    pub fn new(ifma: Ifma) -> Self {
        PoseidonIfma {
            ifma,
            a2: Params::new::<U2>(ifma),
            a4: Params::new::<U4>(ifma),
            a8: Params::new::<U8>(ifma),
            a11: Params::new::<U11>(ifma),
            a16: Params::new::<U16>(ifma),
        }
    }

    /// Hashes eight preimages of `inputs.len()` elements (`inputs[i][lane]`, canonical).
    pub fn hash8(&self, inputs: &[[Words; LANES]]) -> [Words; LANES] {
        // SAFETY: `self.ifma` exists only if the CPU has AVX-512 F and IFMA, the features
        // these functions are compiled for.
        unsafe {
            match inputs.len() {
                2 => hash_lanes(&self.a2, inputs),
                4 => hash_lanes(&self.a4, inputs),
                8 => hash_lanes(&self.a8, inputs),
                11 => hash_lanes(&self.a11, inputs),
                16 => hash_lanes(&self.a16, inputs),
                n => panic!("no batched Poseidon of arity {n}"),
            }
        }
    }

    /// Hashes `out.len() / 32` preimages of `arity` elements, eight at a time: element `i`
    /// of preimage `h` is `node(h, i)`, 32 canonical little-endian bytes. Writes each hash's
    /// 32 bytes to `out`. Panics on a non-canonical element, as the neptune path does.
    pub fn hash_many<'a>(
        &self,
        arity: usize,
        node: impl Fn(usize, usize) -> &'a [u8],
        out: &mut [u8],
    ) {
        assert!(
            ARITIES.contains(&arity),
            "no batched Poseidon of arity {arity}"
        );
        let n = out.len() / 32;
        let mut inputs = [[[0u64; 4]; LANES]; MAX_WIDTH - 1];
        for (batch, out) in out.chunks_mut(32 * LANES).enumerate() {
            let lanes = out.len() / 32;
            for (i, element) in inputs[..arity].iter_mut().enumerate() {
                for (lane, w) in element.iter_mut().enumerate() {
                    // Lanes past the end hash zeros and are dropped.
                    *w = if lane < lanes {
                        let b = node(batch * LANES + lane, i);
                        let w: Words = std::array::from_fn(|k| {
                            u64::from_le_bytes(b[8 * k..8 * k + 8].try_into().expect("8"))
                        });
                        assert!(is_canonical(&w), "node is a canonical field element");
                        w
                    } else {
                        [0; 4]
                    };
                }
            }
            let h = self.hash8(&inputs[..arity]);
            for (o, w) in out.chunks_exact_mut(32).zip(h) {
                for (b, x) in o.chunks_exact_mut(8).zip(w) {
                    b.copy_from_slice(&x.to_le_bytes());
                }
            }
        }
        debug_assert_eq!(n.div_ceil(LANES), out.len().div_ceil(32 * LANES));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ff::Field;
    use neptune::poseidon::Poseidon;
    use rand::SeedableRng;
    use rand_xorshift::XorShiftRng;

    fn neptune<A: Arity<Fr>>(pre: &[Fr]) -> Fr {
        let c = PoseidonConstants::<Fr, A>::new();
        Poseidon::new_with_preimage(pre, &c).hash()
    }

    fn reference(pre: &[Fr]) -> Fr {
        match pre.len() {
            2 => neptune::<U2>(pre),
            4 => neptune::<U4>(pre),
            8 => neptune::<U8>(pre),
            11 => neptune::<U11>(pre),
            16 => neptune::<U16>(pre),
            n => panic!("{n}"),
        }
    }

    /// Every arity, lanes with different random preimages (and edge values), partial
    /// batches: equal to neptune's `Poseidon::hash`.
    #[test]
    fn equals_neptune_for_every_arity() {
        let Some(ifma) = Ifma::detect() else {
            eprintln!("no AVX-512 IFMA on this CPU: nothing to test");
            return;
        };
        let p = PoseidonIfma::new(ifma);
        let mut rng = XorShiftRng::seed_from_u64(11);
        for arity in ARITIES {
            for n in [1usize, 8, 13] {
                let pre: Vec<Vec<Fr>> = (0..n)
                    .map(|h| {
                        (0..arity)
                            .map(|i| match (h + i) % 9 {
                                0 => -Fr::ONE,
                                1 => Fr::ZERO,
                                _ => Fr::random(&mut rng),
                            })
                            .collect()
                    })
                    .collect();
                let bytes: Vec<Vec<[u8; 32]>> = pre
                    .iter()
                    .map(|v| v.iter().map(|f| f.to_repr()).collect())
                    .collect();
                let mut out = vec![0u8; 32 * n];
                p.hash_many(arity, |h, i| &bytes[h][i][..], &mut out);
                for (h, o) in out.chunks_exact(32).enumerate() {
                    assert_eq!(
                        o,
                        &reference(&pre[h]).to_repr()[..],
                        "arity {arity}, hash {h} of {n}"
                    );
                }
            }
        }
    }

    /// Known answers (neptune's test vectors, docs/sdr-porep.md#known-answers) through the
    /// batched path.
    #[test]
    fn known_answers() {
        let Some(ifma) = Ifma::detect() else {
            return;
        };
        let p = PoseidonIfma::new(ifma);
        let counting =
            |n: u64| -> Vec<[u8; 32]> { (0..n).map(|i| Fr::from(i).to_repr()).collect() };
        let mut out = [0u8; 32];
        let two = counting(2);
        p.hash_many(2, |_, i| &two[i][..], &mut out);
        assert_eq!(
            crate::hex::encode(&out),
            crate::hex::encode(&crate::hash::poseidon::hash2(&two[0], &two[1]))
        );
        assert_eq!(
            fr_words(&Fr::from_repr_vartime(out).unwrap()),
            [
                0x2e203c369a02e7ff,
                0xa6fba9339d05a69d,
                0x739e0fd902efe161,
                0x396508d75e76a56b
            ]
        );
        let eight = counting(8);
        p.hash_many(8, |_, i| &eight[i][..], &mut out);
        assert_eq!(
            fr_words(&Fr::from_repr_vartime(out).unwrap()),
            [
                0x2a9934f56d38a5e6,
                0x4b682e9d9cc4aed9,
                0x1201004211677077,
                0x2394611da3a5de55
            ]
        );
        let eleven = counting(11);
        p.hash_many(11, |_, i| &eleven[i][..], &mut out);
        assert_eq!(
            crate::hex::encode(&out),
            "6331692bc3bbe3cec18fb0ccd8dcf3097ae8eb32e237a56c287f22e5b2c10f0c"
        );
    }

    #[test]
    #[should_panic(expected = "canonical")]
    fn rejects_non_canonical_nodes() {
        let Some(ifma) = Ifma::detect() else {
            panic!("canonical (no IFMA: nothing to test)");
        };
        let p = PoseidonIfma::new(ifma);
        let bad = [0xffu8; 32];
        let mut out = [0u8; 32];
        p.hash_many(2, |_, _| &bad[..], &mut out);
    }
}
