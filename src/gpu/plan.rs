//! The host side of the GPU builder, kept free of any device call so the tests run it on
//! every machine: how work is cut into batches, how layer bytes are packed into the
//! layer-major words the kernels read, and which tree rows are hashed from which.
//!
//! The CUDA backend (`gpu::cuda`) only copies these buffers and launches a kernel per step;
//! the tests run the same plans with the CPU hash as a stand-in for the kernel and compare
//! with [`crate::pc2::CpuBuilder`].

use std::ops::Range;

/// Consecutive ranges of at most `batch` items covering `0..n` (none when `n` is 0).
pub fn batches(n: usize, batch: usize) -> impl Iterator<Item = Range<usize>> {
    assert!(batch > 0, "batch size");
    (0..n)
        .step_by(batch)
        .map(move |start| start..(start + batch).min(n))
}

/// Packs nodes `range` of every layer into `dst`, layer-major: node `i` of layer `l` goes to
/// words `4·(l·len + i)`, `len = range.len()`. The kernels then read element `l` of column
/// `i` with `elem_stride = len`, `hash_stride = 1`.
pub fn pack_columns(layers: &[&[u8]], range: Range<usize>, dst: &mut [u64]) {
    let len = range.len();
    assert!(dst.len() >= 4 * len * layers.len(), "packed column buffer");
    for (l, layer) in layers.iter().enumerate() {
        let src = &layer[32 * range.start..32 * range.end];
        bytes_to_words(src, &mut dst[4 * l * len..4 * (l + 1) * len]);
    }
}

/// 32-byte little-endian nodes as 64-bit words (the kernels' `sk_u64[4]` per node).
pub fn bytes_to_words(src: &[u8], dst: &mut [u64]) {
    for (w, b) in dst.iter_mut().zip(src.chunks_exact(8)) {
        *w = u64::from_le_bytes(b.try_into().expect("8 bytes"));
    }
}

/// The kernels' words back to 32-byte nodes.
pub fn words_to_bytes(src: &[u64], dst: &mut [u8]) {
    for (b, w) in dst.chunks_exact_mut(8).zip(src) {
        b.copy_from_slice(&w.to_le_bytes());
    }
}

/// One row of a tree built from the row below it: `width` nodes starting at node `dst`
/// of the tree buffer, node `h` hashing the `arity` nodes from `src + arity·h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub src: usize,
    pub dst: usize,
    pub width: usize,
}

/// Every row above the leaves of an `arity` tree with `leaves` leaves, bottom-up, in the
/// reference's buffer layout ([`crate::merkle::poseidon_tree::tree_len`]).
pub fn levels(leaves: usize, arity: usize) -> Vec<Level> {
    let mut out = Vec::new();
    let (mut src, mut width) = (0, leaves);
    while width > 1 {
        let next = width / arity;
        out.push(Level {
            src,
            dst: src + width,
            width: next,
        });
        src += width;
        width = next;
    }
    out
}

/// Nodes per column batch: as many as fit `budget` bytes of packed input (all layers) and
/// output, a multiple of 1,024 (whole thread blocks), at least 1,024.
pub fn column_batch(layers: usize, budget: usize) -> usize {
    let per_node = 32 * (layers + 1);
    ((budget / per_node) / 1024).max(1) * 1024
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::poseidon::{fr, hash_many, to_bytes};
    use crate::merkle::poseidon_tree::{build_rows_in_place, tree_len};
    use crate::pc2::{CpuBuilder, TreeBuilder};
    use blstrs::Scalar as Fr;
    use ff::Field;
    use rand::SeedableRng;

    /// What a kernel launch computes, on the CPU: hash `h` of `n` reads element `i` at words
    /// `4·(i·elem_stride + h·hash_stride)` (src/gpu/kernels/poseidon.cuh).
    fn stand_in(
        arity: usize,
        input: &[u64],
        elem_stride: usize,
        hash_stride: usize,
        n: usize,
    ) -> Vec<u64> {
        let mut bytes = vec![0u8; input.len() * 8];
        words_to_bytes(input, &mut bytes);
        let mut out = vec![0u8; 32 * n];
        hash_many(
            arity,
            |h, i| {
                let at = 32 * (i * elem_stride + h * hash_stride);
                &bytes[at..at + 32]
            },
            &mut out,
        );
        let mut words = vec![0u64; 4 * n];
        bytes_to_words(&out, &mut words);
        words
    }

    fn random_nodes(n: usize, seed: u64) -> Vec<u8> {
        let mut rng = rand_xorshift::XorShiftRng::seed_from_u64(seed);
        (0..n)
            .flat_map(|i| match i % 7 {
                0 => to_bytes(&-Fr::ONE),
                1 => to_bytes(&Fr::ZERO),
                _ => to_bytes(&Fr::random(&mut rng)),
            })
            .collect()
    }

    #[test]
    fn batches_cover_exactly() {
        let b: Vec<_> = batches(10, 4).collect();
        assert_eq!(b, vec![0..4, 4..8, 8..10]);
        assert_eq!(batches(0, 4).count(), 0);
        assert_eq!(batches(8, 8).collect::<Vec<_>>(), vec![0..8]);
        assert_eq!(column_batch(11, 0), 1024);
        assert_eq!(column_batch(11, 384 << 20), 1024 * 1024);
    }

    /// Columns packed batch by batch, hashed as the kernel would, equal the CPU builder.
    #[test]
    fn packed_columns_equal_cpu_builder() {
        for layers_n in [2usize, 11] {
            let n = 37;
            let data: Vec<Vec<u8>> = (0..layers_n)
                .map(|l| random_nodes(n, 100 + l as u64))
                .collect();
            let layers: Vec<&[u8]> = data.iter().map(|v| &v[..]).collect();
            let mut want = vec![0u8; 32 * n];
            CpuBuilder.column_hashes(&layers, &mut want).unwrap();
            let mut got = vec![0u8; 32 * n];
            let mut packed = vec![0u64; 4 * layers_n * 16];
            for r in batches(n, 16) {
                pack_columns(&layers, r.clone(), &mut packed);
                let h = stand_in(layers_n, &packed, r.len(), 1, r.len());
                words_to_bytes(&h, &mut got[32 * r.start..32 * r.end]);
            }
            assert_eq!(got, want, "{layers_n} layers");
        }
    }

    /// Rows built level by level from the plan equal the CPU tree, for both tree arities.
    #[test]
    fn levels_build_the_reference_tree() {
        for (leaves, arity) in [(64usize, 8usize), (512, 8), (16, 2)] {
            let len = tree_len(leaves, arity);
            let mut want = vec![0u8; 32 * len];
            want[..32 * leaves].copy_from_slice(&random_nodes(leaves, 7));
            let mut words = vec![0u64; 4 * len];
            bytes_to_words(&want, &mut words);
            let root = build_rows_in_place(&mut want, leaves, arity);
            let plan = levels(leaves, arity);
            assert_eq!(plan.last().unwrap().width, 1);
            assert_eq!(plan.last().unwrap().dst + 1, len);
            for l in plan {
                let h = stand_in(arity, &words[4 * l.src..], 1, arity, l.width);
                words[4 * l.dst..4 * (l.dst + l.width)].copy_from_slice(&h);
            }
            let mut got = vec![0u8; 32 * len];
            words_to_bytes(&words, &mut got);
            assert_eq!(got, want, "{leaves} leaves, arity {arity}");
            assert_eq!(fr(&got[32 * (len - 1)..]), fr(&root));
        }
    }
}
