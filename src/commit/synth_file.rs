//! `syn-porep-vanilla-proofs.dat`: the synthetic challenges' proofs, stored after PC2 in the
//! reference's format (`SynthProofs::write`, docs/sdr-porep.md#synthetic-proofs-file) so that
//! either implementation's C1 can select from it once the seed is known.
//!
//! Layout: `root_d || root_c || root_r`, then one fixed-size record per synthetic challenge:
//! the challenge and its 14 parents (u64 LE), tree_d leaf and siblings, the challenge's
//! column, tree_c leaf and siblings, the same for each parent, then the tree_r_last leaf and
//! siblings. Path positions are not stored: they are the node index's digits.

use std::io::Write;
use std::os::unix::fs::FileExt;

use anyhow::{ensure, Context, Result};

use super::vanilla::{ChallengeProof, ColumnOpening};
use crate::merkle::path::{MerklePath, PathLevel};
use crate::sdr::DEGREE;
use crate::sector::proof::SealProof;

/// The file's name in the cache directory.
pub const SYNTH_FILE: &str = "syn-porep-vanilla-proofs.dat";

/// Arities of a tree_c / tree_r_last path, leaf to root.
fn poseidon_arities(proof: SealProof) -> Vec<usize> {
    let s = proof.tree_shape();
    let per_tree = proof.nodes() / s.base_trees() as u64;
    let base_levels = (per_tree.trailing_zeros() / s.base.trailing_zeros()) as usize;
    let mut a = vec![s.base; base_levels];
    a.extend([s.sub, s.top].into_iter().filter(|&x| x > 0));
    a
}

fn path_nodes(arities: &[usize]) -> usize {
    1 + arities.iter().map(|a| a - 1).sum::<usize>()
}

/// Bytes of one challenge's record.
pub fn record_size(proof: SealProof) -> usize {
    let d = 1 + proof.nodes().trailing_zeros() as usize;
    let r = path_nodes(&poseidon_arities(proof));
    let col = proof.layers() + r;
    8 * (1 + DEGREE) + 32 * (d + (1 + DEGREE) * col + r)
}

/// Bytes of the whole file.
pub fn file_size(proof: SealProof, count: usize) -> u64 {
    96 + (count * record_size(proof)) as u64
}

fn put_path(out: &mut Vec<u8>, p: &MerklePath) {
    out.extend_from_slice(&p.leaf);
    for l in &p.levels {
        for s in &l.siblings {
            out.extend_from_slice(s);
        }
    }
}

/// One challenge's record.
pub fn encode(p: &ChallengeProof, out: &mut Vec<u8>) {
    out.extend_from_slice(&p.challenge.to_le_bytes());
    for c in &p.parents {
        out.extend_from_slice(&c.node.to_le_bytes());
    }
    put_path(out, &p.tree_d);
    for c in std::iter::once(&p.column).chain(&p.parents) {
        for r in &c.rows {
            out.extend_from_slice(r);
        }
        put_path(out, &c.path);
    }
    put_path(out, &p.tree_r);
}

/// Writes the three roots that open the file.
pub fn write_header(f: &mut impl Write, roots: [&[u8; 32]; 3]) -> Result<()> {
    for r in roots {
        f.write_all(r)?;
    }
    Ok(())
}

struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let v = self.buf[self.at..self.at + N].try_into().expect("length");
        self.at += N;
        v
    }

    fn path(&mut self, node: u64, arities: &[usize], root: [u8; 32]) -> MerklePath {
        let leaf = self.take::<32>();
        let mut pos = node;
        let levels = arities
            .iter()
            .map(|&a| {
                let index = (pos % a as u64) as usize;
                pos /= a as u64;
                PathLevel {
                    siblings: (1..a).map(|_| self.take::<32>()).collect(),
                    index,
                }
            })
            .collect();
        MerklePath { leaf, root, levels }
    }
}

/// Reads the proofs of synthetic challenges `indexes` from the file at `path`.
pub fn read(
    path: &std::path::Path,
    proof: SealProof,
    indexes: &[usize],
) -> Result<Vec<ChallengeProof>> {
    let f = crate::fsutil::open_regular_read(path).with_context(|| {
        format!(
            "synthetic proofs file {} is missing: run seal-pc2 (it writes it for synthetic proof types)",
            path.display()
        )
    })?;
    let count = super::challenges::synthetic_count(proof.nodes());
    let len = f.metadata()?.len();
    ensure!(
        len == file_size(proof, count),
        "synthetic proofs file {} has {len} bytes, expected {}: it is truncated",
        path.display(),
        file_size(proof, count)
    );
    let mut roots = [0u8; 96];
    f.read_exact_at(&mut roots, 0)?;
    let root = |i: usize| -> [u8; 32] { roots[32 * i..32 * i + 32].try_into().expect("32") };
    let size = record_size(proof);
    let d_arities = vec![2; proof.nodes().trailing_zeros() as usize];
    let r_arities = poseidon_arities(proof);
    indexes
        .iter()
        .map(|&i| {
            let mut buf = vec![0u8; size];
            f.read_exact_at(&mut buf, 96 + (i * size) as u64)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let mut c = Cursor { buf: &buf, at: 0 };
            let challenge = u64::from_le_bytes(c.take());
            let nodes: Vec<u64> = (0..DEGREE).map(|_| u64::from_le_bytes(c.take())).collect();
            let tree_d = c.path(challenge, &d_arities, root(0));
            let mut column = |node: u64| ColumnOpening {
                node,
                rows: (0..proof.layers()).map(|_| c.take::<32>()).collect(),
                path: c.path(node, &r_arities, root(1)),
            };
            let own = column(challenge);
            let parents = nodes.iter().map(|&n| column(n)).collect();
            let tree_r = c.path(challenge, &r_arities, root(2));
            Ok(ChallengeProof {
                challenge,
                tree_d,
                column: own,
                parents,
                tree_r,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Record sizes of docs/sdr-porep.md#synthetic-proofs-file.
    #[test]
    fn record_sizes() {
        for (id, size) in [
            (10, 8_984),
            (11, 23_704),
            (12, 31_064),
            (13, 42_744),
            (14, 43_288),
        ] {
            assert_eq!(
                record_size(SealProof::from_id(id).unwrap()),
                size,
                "id {id}"
            );
        }
        assert_eq!(file_size(SealProof::from_id(10).unwrap(), 64), 575_072);
    }
}
