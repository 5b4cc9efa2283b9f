//! Poseidon Merkle trees of the SDR shapes (tree_c, tree_r_last), in the reference's on-disk
//! forms (docs/sdr-porep.md#poseidon-tree-shapes, docs/sdr-porep.md#tree-c,
//! docs/sdr-porep.md#tree-r-last).
//!
//! A tree of shape base-sub-top splits its leaves into `sub·top` base trees of arity `base`
//! (8); the roots of consecutive groups of `sub` base trees are hashed together (arity 8 or 2),
//! then those sub roots by the top arity. Each base tree is one file: all its rows bottom-up
//! (tree_c, a DiskStore), or only the rows above the `rows_to_discard` lowest internal rows
//! (tree_r_last, a LevelCacheStore: its leaves are the replica itself).

use rayon::prelude::*;

use crate::hash::poseidon::{hash_children, hash_rows};
use crate::sector::proof::TreeShape;

/// Nodes in all rows of a tree with `leaves` leaves of arity `arity`.
pub fn tree_len(leaves: usize, arity: usize) -> usize {
    let (mut n, mut total) = (leaves, leaves);
    while n > 1 {
        n /= arity;
        total += n;
    }
    total
}

/// The reference's `default_rows_to_discard(leafs, arity)` with `FIL_PROOFS_ROWS_TO_DISCARD`
/// (default 2) as the cap for arities other than 2 and 4.
pub fn default_rows_to_discard(leaves: usize, arity: usize) -> usize {
    let rows = ((arity * leaves) as f64).log(arity as f64).floor() as usize;
    let cap = match arity {
        2 => 7,
        4 => 5,
        _ => std::env::var("FIL_PROOFS_ROWS_TO_DISCARD")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2),
    };
    match rows {
        0..=2 => 0,
        3 => 1,
        r => (r - 2).min(cap),
    }
}

/// Builds every row of an `arity` tree over `leaves` (32-byte nodes) into `out`
/// ([`tree_len`] nodes, rows bottom-up, leaves first); returns the root.
pub fn build_rows(leaves: &[u8], arity: usize, out: &mut [u8]) -> [u8; 32] {
    out[..leaves.len()].copy_from_slice(leaves);
    build_rows_in_place(out, leaves.len() / 32, arity)
}

/// [`build_rows`] when the `leaves` leaves are already in the first row of `out`.
pub fn build_rows_in_place(out: &mut [u8], leaves: usize, arity: usize) -> [u8; 32] {
    let n = leaves;
    assert_eq!(out.len(), tree_len(n, arity) * 32, "tree buffer size");
    let (mut start, mut width) = (0usize, n);
    while width > 1 {
        let (done, rest) = out.split_at_mut(start + width * 32);
        let src = &done[start..];
        let dst = &mut rest[..width / arity * 32];
        const PER_TASK: usize = 256;
        dst.par_chunks_mut(32 * PER_TASK)
            .zip(src.par_chunks(32 * arity * PER_TASK))
            .for_each(|(d, s)| hash_rows(s, arity, d));
        start += width * 32;
        width /= arity;
    }
    out[out.len() - 32..].try_into().expect("root")
}

/// Byte offset, in a full row dump of a tree with `leaves` leaves, where the rows a
/// LevelCacheStore keeps begin (past the leaves and `rows_to_discard` rows above them).
pub fn cached_rows_offset(leaves: usize, arity: usize, rows_to_discard: usize) -> usize {
    let (mut n, mut skip) = (leaves, leaves);
    for _ in 0..rows_to_discard {
        n /= arity;
        skip += n;
    }
    skip * 32
}

/// The root of a whole tree from its base-tree roots (in order) and shape.
pub fn combine_roots(base_roots: &[[u8; 32]], shape: TreeShape) -> [u8; 32] {
    let mut level: Vec<[u8; 32]> = base_roots.to_vec();
    for arity in [shape.sub, shape.top] {
        if arity == 0 {
            continue;
        }
        level = level
            .chunks_exact(arity)
            .map(|group| hash_children(&group.concat()))
            .collect();
    }
    assert_eq!(level.len(), 1, "base roots do not match the tree shape");
    level[0]
}

/// File name of base tree `i` of `count` for a tree id (`tree-c`, `tree-r-last`): no index
/// when there is a single base tree.
pub fn base_tree_file(id: &str, i: usize, count: usize) -> String {
    if count == 1 {
        format!("sc-02-data-{id}.dat")
    } else {
        format!("sc-02-data-{id}-{i}.dat")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rows_to_discard() {
        assert_eq!(tree_len(64, 8), 73);
        assert_eq!(tree_len(1 << 18, 8) * 32, 9_586_976);
        assert_eq!(default_rows_to_discard(64, 8), 1);
        assert_eq!(default_rows_to_discard(1 << 18, 8), 2);
        assert_eq!(default_rows_to_discard(1 << 27, 8), 2);
        // 2KiB keeps only the root; 8MiB keeps 585 nodes (docs/sdr-porep.md#tree-r-last).
        assert_eq!(tree_len(64, 8) * 32 - cached_rows_offset(64, 8, 1), 32);
        assert_eq!(
            tree_len(1 << 18, 8) * 32 - cached_rows_offset(1 << 18, 8, 2),
            585 * 32
        );
        assert_eq!(base_tree_file("tree-c", 0, 1), "sc-02-data-tree-c.dat");
        assert_eq!(
            base_tree_file("tree-r-last", 3, 8),
            "sc-02-data-tree-r-last-3.dat"
        );
    }
}
