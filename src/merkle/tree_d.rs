//! tree_d: the binary SHA-256 tree over the sector's padded data, stored as the reference's
//! `sc-02-data-tree-d.dat`: every row bottom-up (leaves first, root last), `(2N − 1) · 32` bytes.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use memmap2::MmapMut;
use rayon::prelude::*;

use crate::fsutil::{create_preallocated, sync_parent, temp_path};
use crate::hash::sha256::hash_pair64;

/// File name of tree_d in the cache directory.
pub const TREE_D_FILE: &str = "sc-02-data-tree-d.dat";

/// Builds tree_d over `data` (N leaves) into `path` atomically; returns the root (comm_d).
pub fn build_tree_d(data: &[u8], path: &Path) -> Result<[u8; 32]> {
    let nodes = data.len() / 32;
    assert!(
        nodes.is_power_of_two(),
        "tree_d needs a power-of-two number of leaves"
    );
    let len = (2 * nodes - 1) * 32;
    let tmp = temp_path(path);
    let result = (|| -> Result<[u8; 32]> {
        let f = create_preallocated(&tmp, len as u64)?;
        let mut map = unsafe { MmapMut::map_mut(&f)? };
        map[..data.len()].copy_from_slice(data);
        let (mut start, mut width) = (0usize, nodes);
        while width > 1 {
            let (done, rest) = map.split_at_mut(start + width * 32);
            let src = &done[start..];
            let dst = &mut rest[..width / 2 * 32];
            dst.par_chunks_mut(32 * 1024)
                .zip(src.par_chunks(64 * 1024))
                .for_each(|(d, s)| {
                    for (o, pair) in d.chunks_exact_mut(32).zip(s.chunks_exact(64)) {
                        o.copy_from_slice(&hash_pair64(pair.try_into().expect("pair")));
                    }
                });
            start += width * 32;
            width /= 2;
        }
        let root: [u8; 32] = map[len - 32..].try_into().expect("root");
        map.flush()?;
        drop(map);
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_parent(path)?;
        Ok(root)
    })();
    if result.is_err() {
        fs::remove_file(&tmp).ok();
    }
    result.with_context(|| format!("building tree_d {}", path.display()))
}
