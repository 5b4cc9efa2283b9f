//! p_aux and t_aux, byte for byte as the reference writes them with bincode
//! (docs/sdr-porep.md#aux-files).
//!
//! p_aux = comm_c || comm_r_last. t_aux = the StoreConfigs of the label layers, tree_d,
//! tree_r_last and tree_c, each `u64 len + path, u64 len + id, u8 1 + u64 size, u64
//! rows_to_discard` (bincode 1: little-endian, u64 lengths), the labels prefixed by their
//! count.

use std::path::Path;

use anyhow::{Context, Result};

use crate::fsutil::write_atomic;

/// One StoreConfig as bincode.
fn put_config(out: &mut Vec<u8>, path: &str, id: &str, size: u64, rows_to_discard: u64) {
    out.extend_from_slice(&(path.len() as u64).to_le_bytes());
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(&(id.len() as u64).to_le_bytes());
    out.extend_from_slice(id.as_bytes());
    out.push(1);
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&rows_to_discard.to_le_bytes());
}

/// What t_aux describes.
pub struct TreeSizes {
    pub nodes: u64,
    pub layers: usize,
    /// Nodes in all rows of one base tree (tree_c and tree_r_last alike).
    pub base_tree_len: u64,
    pub rows_to_discard: u64,
}

/// The bytes of t_aux for a cache directory given as `cache` (the string the reference would
/// have been handed).
pub fn t_aux_bytes(cache: &str, t: &TreeSizes) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(t.layers as u64).to_le_bytes());
    for l in 1..=t.layers {
        put_config(&mut out, cache, &format!("layer-{l}"), t.nodes, 0);
    }
    put_config(&mut out, cache, "tree-d", 2 * t.nodes - 1, 0);
    put_config(
        &mut out,
        cache,
        "tree-r-last",
        t.base_tree_len,
        t.rows_to_discard,
    );
    put_config(&mut out, cache, "tree-c", t.base_tree_len, 0);
    out
}

/// File name of p_aux (comm_c, comm_r_last) in the cache directory.
pub const P_AUX_FILE: &str = "p_aux";
/// File name of t_aux (the tree configurations) in the cache directory.
pub const T_AUX_FILE: &str = "t_aux";

/// Writes p_aux and t_aux into the cache directory, atomically.
pub fn write_aux(
    cache: &Path,
    comm_c: &[u8; 32],
    comm_r_last: &[u8; 32],
    t: &TreeSizes,
) -> Result<()> {
    let mut p = Vec::with_capacity(64);
    p.extend_from_slice(comm_c);
    p.extend_from_slice(comm_r_last);
    write_atomic(&cache.join(P_AUX_FILE), &p)?;
    let cache_str = cache
        .to_str()
        .with_context(|| format!("cache path {} is not UTF-8", cache.display()))?;
    write_atomic(&cache.join(T_AUX_FILE), &t_aux_bytes(cache_str, t))
}

#[cfg(test)]
mod tests {
    /// Spec Appendix A.4: a 2KiB t_aux is 350 bytes for a 28-byte cache path (210 + 5·28).
    #[test]
    fn t_aux_size() {
        let t = super::TreeSizes {
            nodes: 64,
            layers: 2,
            base_tree_len: 73,
            rows_to_discard: 1,
        };
        assert_eq!(super::t_aux_bytes(&"x".repeat(28), &t).len(), 350);
    }
}
