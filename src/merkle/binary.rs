//! Roots of full binary SHA-256 trees whose leaves are 32-byte nodes taken as-is.
//!
//! Leaves are never hashed (the reference's `Sha256Function::leaf` is the identity); each
//! internal node is `trunc254(SHA256(left || right))`. The nodes of a level are independent
//! hashes, so a level is hashed many pairs at a time on the SHA-256 engine
//! ([`crate::hash::sha256_engine`]: 16 pairs per instruction stream with AVX-512).

use rayon::prelude::*;

use crate::hash::sha256_engine::{self, hash64_in_place_with, hash64_many_with, Engine};

/// Bytes of one node.
pub const NODE: usize = 32;

/// Subtree size each rayon task reduces on its own: large enough to amortise scheduling,
/// small enough (256 KiB) to stay in L2 while its levels are hashed.
const PAR_SUBTREE: usize = 256 * 1024;

/// Root of the tree over `buf` (a power-of-two number of 32-byte leaves), computed in place:
/// level `k+1` overwrites the first half of level `k`. `buf` is clobbered.
pub fn root_in_place(buf: &mut [u8]) -> [u8; 32] {
    root_in_place_with(sha256_engine::active(), buf)
}

/// [`root_in_place`] on a given SHA-256 engine.
pub fn root_in_place_with(engine: Engine, buf: &mut [u8]) -> [u8; 32] {
    assert!(
        buf.len() >= NODE && (buf.len() / NODE).is_power_of_two() && buf.len().is_multiple_of(NODE),
        "tree input must be a power-of-two number of nodes"
    );
    let mut len = buf.len();
    while len > NODE {
        hash64_in_place_with(engine, &mut buf[..len]);
        len /= 2;
    }
    buf[..NODE].try_into().expect("root node")
}

/// Root of the tree over `data` without modifying it. The first level is hashed into a
/// per-thread scratch buffer, so no copy of `data` is made.
pub fn root(data: &[u8]) -> [u8; 32] {
    root_with(sha256_engine::active(), data)
}

/// [`root`] on a given SHA-256 engine.
pub fn root_with(engine: Engine, data: &[u8]) -> [u8; 32] {
    use std::cell::RefCell;
    thread_local! {
        static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    assert!(
        data.len() >= NODE
            && (data.len() / NODE).is_power_of_two()
            && data.len().is_multiple_of(NODE),
        "tree input must be a power-of-two number of nodes"
    );
    if data.len() == NODE {
        return data.try_into().expect("one node");
    }
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        s.resize(data.len() / 2, 0);
        hash64_many_with(engine, data, &mut s);
        root_in_place_with(engine, &mut s)
    })
}

/// Like [`root_in_place`], with subtrees of 256 KiB reduced on all rayon threads first.
pub fn root_in_place_par(buf: &mut [u8]) -> [u8; 32] {
    if buf.len() <= PAR_SUBTREE {
        return root_in_place(buf);
    }
    let mut roots: Vec<u8> = buf
        .par_chunks_mut(PAR_SUBTREE)
        .map(root_in_place)
        .collect::<Vec<_>>()
        .concat();
    root_in_place(&mut roots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256::hash_nodes;

    #[test]
    fn four_leaves_by_hand() {
        let leaves: Vec<[u8; 32]> = (0..4u8).map(|i| [i; 32]).collect();
        let want = hash_nodes(
            &hash_nodes(&leaves[0], &leaves[1]),
            &hash_nodes(&leaves[2], &leaves[3]),
        );
        let mut buf = leaves.concat();
        assert_eq!(root_in_place(&mut buf), want);
    }

    #[test]
    fn copying_root_equals_in_place() {
        let data: Vec<u8> = (0..8192).map(|i| (i * 3 % 256) as u8).collect();
        assert_eq!(root(&data), root_in_place(&mut data.clone()));
    }

    /// The root level by level with one `sha2` hash per node pair, as before the engine.
    fn root_by_pairs(data: &[u8]) -> [u8; 32] {
        let mut level = data.to_vec();
        while level.len() > NODE {
            level = level
                .chunks_exact(64)
                .flat_map(|p| crate::hash::sha256::hash_pair64(p.try_into().unwrap()))
                .collect();
        }
        level.try_into().unwrap()
    }

    #[test]
    fn every_engine_equals_pairwise_sha2() {
        let mut x = 0x2545f491u32;
        for leaves in [1usize, 2, 4, 8, 16, 32, 64, 128, 1024] {
            let data: Vec<u8> = (0..leaves * NODE)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let want = root_by_pairs(&data);
            for e in sha256_engine::ALL.into_iter().filter(|e| e.available()) {
                assert_eq!(root_with(e, &data), want, "{e:?}, {leaves} leaves");
                assert_eq!(root_in_place_with(e, &mut data.clone()), want, "{e:?}");
            }
            assert_eq!(root_in_place_par(&mut data.clone()), want);
        }
    }

    #[test]
    fn parallel_equals_serial() {
        let mut a: Vec<u8> = (0..4 * PAR_SUBTREE).map(|i| (i * 7 % 251) as u8).collect();
        let mut b = a.clone();
        assert_eq!(root_in_place_par(&mut a), root_in_place(&mut b));
    }
}
