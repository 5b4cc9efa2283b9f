//! Stacked DRG (SDR): the graph, its parent cache, and labeling (PreCommit1).
//!
//! `seeds` derives the DRG seed and Feistel keys from the porep_id, `drg` and `feistel` give
//! the 6 base and 8 expander parents of a node, `graph` puts them together, `parent_cache`
//! stores them in the reference's cache file, `label` hashes labels (`label_x16`: a batch
//! group's 16 lanes straight from its interleaved layers) and `labeler` runs a
//! whole sector (or a batch of sectors) through all layers.

pub mod batch;
pub mod drg;
pub mod feistel;
pub mod graph;
pub mod label;
#[cfg(target_arch = "x86_64")]
pub mod label_x16;
pub mod labeler;
pub mod parent_cache;
pub mod seeds;
pub mod shared_layer;

/// Base (DRG) parents per node.
pub const BASE_DEGREE: usize = 6;
/// Expander parents per node.
pub const EXP_DEGREE: usize = 8;
/// Parents per node in the parent cache and graph.
pub const DEGREE: usize = BASE_DEGREE + EXP_DEGREE;

/// Asks the CPU to bring the cache line at `p` closer: a hint that never faults, so any
/// address is fine.
#[inline]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint and never faults.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Like [`prefetch`], into the second-level cache only (leaves the first level's fill
/// buffers to the loads that need the line now).
#[inline]
pub(crate) fn prefetch_l2(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint and never faults.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
