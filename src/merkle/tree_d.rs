//! tree_d: the binary SHA-256 tree over the sector's padded data, stored as the reference's
//! `sc-02-data-tree-d.dat`: every row bottom-up (leaves first, root last), `(2N − 1) · 32` bytes.

use rayon::prelude::*;

use crate::hash::sha256_engine::{self, hash64_many_with, Engine};

/// File name of tree_d in the cache directory.
pub const TREE_D_FILE: &str = "sc-02-data-tree-d.dat";

/// Builds tree_d over `data` (N leaves, a power of two) into `out` (`(2N − 1) · 32` bytes,
/// every row bottom-up); returns the root (comm_d).
pub fn build_tree_d(data: &[u8], out: &mut [u8]) -> [u8; 32] {
    build_tree_d_with(sha256_engine::active(), data, out)
}

/// [`build_tree_d`] on a given SHA-256 engine: each row is hashed many node pairs at a time.
pub fn build_tree_d_with(engine: Engine, data: &[u8], out: &mut [u8]) -> [u8; 32] {
    out[..data.len()].copy_from_slice(data);
    build_in_place(engine, out)
}

/// [`build_tree_d`] when the leaves are already the first row of `out` (saves a copy of
/// the data).
pub fn build_tree_d_in_place(out: &mut [u8]) -> [u8; 32] {
    build_in_place(sha256_engine::active(), out)
}

fn build_in_place(engine: Engine, out: &mut [u8]) -> [u8; 32] {
    let nodes = out.len() / 64 + 1;
    assert!(
        nodes.is_power_of_two(),
        "tree_d needs a power-of-two number of leaves"
    );
    assert_eq!(out.len(), (2 * nodes - 1) * 32, "tree_d buffer size");
    let (mut start, mut width) = (0usize, nodes);
    while width > 1 {
        let (done, rest) = out.split_at_mut(start + width * 32);
        let src = &done[start..];
        let dst = &mut rest[..width / 2 * 32];
        dst.par_chunks_mut(32 * 1024)
            .zip(src.par_chunks(64 * 1024))
            .for_each(|(d, s)| hash64_many_with(engine, s, d));
        start += width * 32;
        width /= 2;
    }
    out[out.len() - 32..].try_into().expect("root")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_equals_binary_root_and_rows_are_kept() {
        let data: Vec<u8> = (0..64 * 32).map(|i| (i % 251) as u8 & 0x3f).collect();
        let mut out = vec![0u8; (2 * 64 - 1) * 32];
        let root = build_tree_d(&data, &mut out);
        assert_eq!(root, crate::merkle::binary::root(&data));
        assert_eq!(&out[..data.len()], &data[..]);
        let first_parent = crate::hash::sha256::hash_pair64(data[..64].try_into().unwrap());
        assert_eq!(&out[data.len()..data.len() + 32], &first_parent);
    }

    /// Every row, on every engine, equals the rows hashed one pair at a time with `sha2`.
    #[test]
    fn every_engine_equals_pairwise_sha2() {
        let mut x = 0x6c078965u32;
        for leaves in [2usize, 4, 8, 16, 64, 4096, 1 << 16] {
            let data: Vec<u8> = (0..leaves * 32)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let mut want = data.clone();
            let mut row = data.clone();
            while row.len() > 32 {
                row = row
                    .chunks_exact(64)
                    .flat_map(|p| crate::hash::sha256::hash_pair64(p.try_into().unwrap()))
                    .collect();
                want.extend_from_slice(&row);
            }
            for e in sha256_engine::ALL.into_iter().filter(|e| e.available()) {
                let mut out = vec![0u8; (2 * leaves - 1) * 32];
                let root = build_tree_d_with(e, &data, &mut out);
                assert!(out == want, "{e:?}, {leaves} leaves");
                assert_eq!(root[..], want[want.len() - 32..]);
            }
        }
    }
}
