//! Labeling several sectors of one proof type together (the SupraSeal idea, without SPDK).
//!
//! All sectors of a proof type share the graph, so node `v` of every sector has the same
//! parents. A *group* of up to four sectors keeps its layers interleaved node by node
//! (`[v][sector][32 bytes]`): one parent lookup and one cache-line fetch serve the whole group,
//! and the group's labels are hashed together with multi-lane SHA-NI. Groups are independent,
//! one per core, with no synchronisation between them; each hashing thread gathers its own
//! parents, prefetching them a few nodes ahead.

use super::label::{header_states, label_layer1_lanes, label_layer_n_lanes, label_node0, LABEL};
use super::parent_cache::ParentCache;
use super::{prefetch, BASE_DEGREE, DEGREE};
use crate::affinity::pin_current_thread;

/// Largest group (lanes per hashing thread).
pub const MAX_GROUP: usize = 4;

/// Nodes ahead whose parent lines a hashing thread requests.
const PREFETCH_AHEAD: usize = 6;

/// One group's layer job: interleaved buffers of `lanes` sectors.
pub struct GroupJob<'a> {
    pub replica_ids: &'a [[u8; 32]],
    pub layer: u32,
    pub parents: &'a ParentCache,
    /// Previous layer, interleaved (layer ≥ 2).
    pub prev: Option<&'a [u8]>,
    /// CPU to pin the hashing thread to.
    pub cpu: Option<usize>,
    pub progress: &'a (dyn Fn(u64) + Sync),
}

/// Labels one layer of a group into `out` (interleaved, `nodes * lanes * 32` bytes).
pub fn label_group(job: &GroupJob, out: &mut [u8]) {
    if let Some(c) = job.cpu {
        pin_current_thread(c);
    }
    match job.replica_ids.len() {
        1 => run::<1>(job, out),
        2 => run::<2>(job, out),
        3 => run::<3>(job, out),
        4 => run::<4>(job, out),
        n => panic!("a group has 1 to {MAX_GROUP} sectors, not {n}"),
    }
}

fn run<const L: usize>(job: &GroupJob, out: &mut [u8]) {
    let rids: [[u8; 32]; L] = job.replica_ids.try_into().expect("group size");
    let stride = L * LABEL;
    let nodes = out.len() / stride;
    for (l, rid) in rids.iter().enumerate() {
        out[l * LABEL..(l + 1) * LABEL].copy_from_slice(&label_node0(rid, job.layer));
    }
    let mut bufs = [[0u8; DEGREE * LABEL]; L];
    let parents_of = |v: usize| job.parents.parents(v as u64);
    for v in 1..nodes {
        if v + PREFETCH_AHEAD < nodes {
            let p = parents_of(v + PREFETCH_AHEAD);
            for &b in &p[..BASE_DEGREE] {
                prefetch(out.as_ptr().wrapping_add(b as usize * stride));
            }
            if let Some(prev) = job.prev {
                for &e in &p[BASE_DEGREE..] {
                    prefetch(prev.as_ptr().wrapping_add(e as usize * stride));
                }
            }
        }
        let p = parents_of(v);
        for (i, &b) in p[..BASE_DEGREE].iter().enumerate() {
            let src = &out[b as usize * stride..(b as usize + 1) * stride];
            for l in 0..L {
                bufs[l][i * LABEL..(i + 1) * LABEL]
                    .copy_from_slice(&src[l * LABEL..(l + 1) * LABEL]);
            }
        }
        let mut states = header_states::<L>(&rids, job.layer, v as u64);
        let labels = match job.prev {
            None => label_layer1_lanes::<L>(&mut states, &bufs),
            Some(prev) => {
                for (i, &e) in p[BASE_DEGREE..].iter().enumerate() {
                    let src = &prev[e as usize * stride..(e as usize + 1) * stride];
                    let at = (BASE_DEGREE + i) * LABEL;
                    for l in 0..L {
                        bufs[l][at..at + LABEL].copy_from_slice(&src[l * LABEL..(l + 1) * LABEL]);
                    }
                }
                label_layer_n_lanes::<L>(&mut states, &bufs)
            }
        };
        let dst = &mut out[v * stride..(v + 1) * stride];
        for l in 0..L {
            dst[l * LABEL..(l + 1) * LABEL].copy_from_slice(&labels[l]);
        }
        if v % (1 << 16) == 0 {
            (job.progress)(v as u64);
        }
    }
    (job.progress)(nodes as u64);
}

/// Copies sector `lane` of an interleaved group buffer into `out`.
pub fn deinterleave(group: &[u8], lanes: usize, lane: usize, out: &mut [u8]) {
    for (dst, src) in out
        .chunks_exact_mut(LABEL)
        .zip(group.chunks_exact(lanes * LABEL))
    {
        dst.copy_from_slice(&src[lane * LABEL..(lane + 1) * LABEL]);
    }
}

/// Copies a sector's layer into lane `lane` of an interleaved group buffer.
pub fn interleave(layer: &[u8], lanes: usize, lane: usize, group: &mut [u8]) {
    for (src, dst) in layer
        .chunks_exact(LABEL)
        .zip(group.chunks_exact_mut(lanes * LABEL))
    {
        dst[lane * LABEL..(lane + 1) * LABEL].copy_from_slice(src);
    }
}
