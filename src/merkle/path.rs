//! Merkle inclusion paths as the reference's vanilla proofs carry them
//! (docs/sdr-porep.md#inclusion-paths).
//!
//! A path runs from the leaf to the root; each level holds the `arity − 1` siblings of the
//! running node in child order and the running node's position among the `arity` children.
//! Compound trees (8-8-0, 8-8-2) simply continue the path through the sub and top levels,
//! whose arities differ from the base's.

use anyhow::{ensure, Result};

/// One level of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathLevel {
    pub siblings: Vec<[u8; 32]>,
    pub index: usize,
}

impl PathLevel {
    /// Arity of the level: the siblings plus the running node.
    pub fn arity(&self) -> usize {
        self.siblings.len() + 1
    }

    /// The level's children, with `node` at `index`, contiguous.
    pub fn children_with(&self, node: &[u8; 32]) -> Vec<u8> {
        let mut all = Vec::with_capacity(32 * self.arity());
        for (i, s) in self.siblings.iter().enumerate() {
            if i == self.index {
                all.extend_from_slice(node);
            }
            all.extend_from_slice(s);
        }
        if self.index == self.siblings.len() {
            all.extend_from_slice(node);
        }
        all
    }
}

/// A leaf, its root and the levels between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerklePath {
    pub leaf: [u8; 32],
    pub root: [u8; 32],
    pub levels: Vec<PathLevel>,
}

impl MerklePath {
    /// The leaf's index in the tree, read back from the per-level positions.
    pub fn position(&self) -> u64 {
        let (mut pos, mut scale) = (0u64, 1u64);
        for l in &self.levels {
            pos += l.index as u64 * scale;
            scale *= l.arity() as u64;
        }
        pos
    }

    /// The root the path leads to, hashing each level's children with `hash`.
    pub fn computed_root(&self, hash: impl Fn(&[u8]) -> [u8; 32]) -> [u8; 32] {
        self.levels
            .iter()
            .fold(self.leaf, |node, level| hash(&level.children_with(&node)))
    }

    /// Checks that the path leads from `leaf` at `position` to its recorded `root`.
    pub fn check(&self, what: &str, position: u64, hash: impl Fn(&[u8]) -> [u8; 32]) -> Result<()> {
        ensure!(
            self.position() == position,
            "{what} opens node {} instead of {position}",
            self.position()
        );
        ensure!(
            self.computed_root(hash) == self.root,
            "{what} of node {position} does not lead to its root"
        );
        Ok(())
    }
}

/// SHA-256 of two children for tree_d (the binary tree's hash on a 64-byte slice).
pub fn sha_children(children: &[u8]) -> [u8; 32] {
    crate::hash::sha256::hash_pair64(children.try_into().expect("two nodes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_order_and_position() {
        let level = |index, n: u8| PathLevel {
            siblings: (0..n).map(|i| [i + 10; 32]).collect(),
            index,
        };
        let l = level(1, 2);
        let c = l.children_with(&[0; 32]);
        assert_eq!((c[0], c[32], c[64]), (10, 0, 11));
        let l = level(2, 2);
        assert_eq!(l.children_with(&[0; 32])[64], 0);
        let p = MerklePath {
            leaf: [0; 32],
            root: [0; 32],
            levels: vec![level(3, 7), level(5, 7), level(1, 1)],
        };
        assert_eq!(p.position(), 3 + 5 * 8 + 64);
    }
}
