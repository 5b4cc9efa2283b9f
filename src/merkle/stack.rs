//! Folding a left-to-right sequence of aligned subtree roots into one root.
//!
//! Both CommP (a piece streamed in chunks) and CommD (a sector made of pieces) are roots of
//! a binary tree whose leaves arrive as whole subtrees. The stack holds at most one root per
//! level (the binary representation of the bytes seen so far); pushing a subtree of size `s`
//! first pads with zero subtrees until the position is a multiple of `s`, exactly as the
//! reference's `compute_comm_d` pads with `zero_padding(top.size)`, then merges equal sizes.

use anyhow::{bail, ensure, Result};

use super::zero::zero_root;
use crate::hash::sha256::hash_nodes;

#[derive(Debug, Default, Clone)]
pub struct SubtreeStack {
    /// (padded size, root), sizes strictly decreasing from bottom to top.
    entries: Vec<(u64, [u8; 32])>,
    /// Padded bytes covered so far, alignment padding included.
    total: u64,
}

impl SubtreeStack {
    pub fn new() -> Self {
        Self::default()
    }

    /// Padded bytes covered so far.
    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Appends a subtree of `size` padded bytes (a power of two, at least 32) after zero
    /// padding up to the next multiple of `size`.
    pub fn push(&mut self, size: u64, root: [u8; 32]) -> Result<()> {
        ensure!(
            size.is_power_of_two() && size >= 32,
            "subtree size {size} is not a power of two of at least 32 bytes"
        );
        while !self.total.is_multiple_of(size) {
            let gap = 1u64 << self.total.trailing_zeros();
            self.push_aligned(gap, zero_root(gap));
        }
        self.push_aligned(size, root);
        Ok(())
    }

    fn push_aligned(&mut self, size: u64, root: [u8; 32]) {
        let mut cur = (size, root);
        while let Some(&(top_size, top_root)) = self.entries.last() {
            if top_size != cur.0 {
                break;
            }
            self.entries.pop();
            cur = (top_size * 2, hash_nodes(&top_root, &cur.1));
        }
        self.entries.push(cur);
        self.total += size;
    }

    /// Pads with zero subtrees up to `size` padded bytes (a power of two) and returns the root
    /// of that whole tree.
    pub fn finish(mut self, size: u64) -> Result<[u8; 32]> {
        ensure!(
            size.is_power_of_two() && size >= 32,
            "tree size {size} is not a power of two"
        );
        if self.total > size {
            bail!(
                "{} bytes of subtrees do not fit in a tree of {size} bytes",
                self.total
            );
        }
        if self.total == 0 {
            return Ok(zero_root(size));
        }
        while self.total < size {
            let gap = 1u64 << self.total.trailing_zeros();
            self.push_aligned(gap, zero_root(gap));
        }
        debug_assert_eq!(self.entries.len(), 1);
        Ok(self.entries[0].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::binary::root_in_place;

    /// A stack fed with mixed-size subtrees must equal the root of the tree over the same
    /// bytes laid out with zero gaps.
    #[test]
    fn equals_flat_tree_with_gaps() {
        let sizes = [64u64, 256, 32, 1024, 128];
        let mut flat = vec![0u8; 4096];
        let mut stack = SubtreeStack::new();
        let mut pos = 0u64;
        for (n, &s) in sizes.iter().enumerate() {
            pos = pos.div_ceil(s) * s;
            let mut data: Vec<u8> = (0..s)
                .map(|i| (i as usize * 13 + n * 71) as u8 & 0x3f)
                .collect();
            flat[pos as usize..(pos + s) as usize].copy_from_slice(&data);
            let root = root_in_place(&mut data);
            stack.push(s, root).unwrap();
            pos += s;
        }
        assert_eq!(stack.finish(4096).unwrap(), root_in_place(&mut flat));
    }

    #[test]
    fn zero_tree_matches_hashing_zeros() {
        let mut zeros = vec![0u8; 8192];
        assert_eq!(
            SubtreeStack::new().finish(8192).unwrap(),
            root_in_place(&mut zeros)
        );
    }
}
