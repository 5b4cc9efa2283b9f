//! Labeling several sectors of one proof type together (the SupraSeal idea, without SPDK).
//!
//! All sectors of a proof type share the graph, so node `v` of every sector has the same
//! parents. A *group* of sectors keeps its layers interleaved node by node
//! (`[v][sector][32 bytes]`): one parent lookup and one contiguous fetch serve the whole
//! group, and the group's labels are hashed together: up to 16 sectors in the 16 lanes of the
//! AVX-512 engine, or up to four chains interleaved on SHA-NI for narrow groups
//! ([`crate::hash::sha256_engine::for_lanes`]). Groups are independent, one per core, with no
//! synchronisation between them; each hashing thread gathers its own parents, prefetching
//! them a few nodes ahead.

use super::label::{
    header_states, header_states16, label_layer1_16, label_layer1_lanes, label_layer_n_16,
    label_layer_n_lanes, label_node0, LABEL,
};
use std::sync::atomic::{AtomicBool, Ordering};

use super::parent_cache::ParentCache;
use super::shared_layer::{RowsMut, SharedLayer};
use super::{prefetch_l2, BASE_DEGREE, DEGREE, EXP_DEGREE};
use crate::affinity::pin_current_thread;
use crate::hash::sha256_engine::{self, Engine};

/// Largest group (lanes per hashing thread): the AVX-512 engine's 16 lanes.
pub const MAX_GROUP: usize = 16;

/// Largest group on SHA-NI chains: interleaving more does not pay.
pub const MAX_CHAINS: usize = 4;

/// Largest group worth forming on this process's engine.
pub fn max_group() -> usize {
    MAX_GROUP
        .min(sha256_engine::active().lanes())
        .max(MAX_CHAINS)
}

/// Nodes ahead whose parent lines a hashing thread requests.
const PREFETCH_AHEAD: usize = 6;

/// Nodes between publications of the labeled rows (and progress reports, and looks at the
/// stop flag).
const PUBLISH_EVERY: usize = 1 << 16;

/// One group's layer job: interleaved buffers of `lanes` sectors.
pub struct GroupJob<'a> {
    pub replica_ids: &'a [[u8; 32]],
    pub layer: u32,
    pub parents: &'a ParentCache,
    /// Previous layer, interleaved (layer ≥ 2).
    pub prev: Option<&'a [u8]>,
    /// CPU to pin the hashing thread to.
    pub cpu: Option<usize>,
    /// Set by another thread to stop the labeling early; the output is then unfinished.
    pub stop: Option<&'a AtomicBool>,
    pub progress: &'a (dyn Fn(u64) + Sync),
}

/// The expander parents' labels of a group, delivered node by node in order, for layers
/// whose previous layer is not in memory (see [`crate::pc1::stream`]).
pub trait ExpanderFeed {
    /// Node `v`'s expander parents for every lane: `[lane][parent][32 bytes]`, `lanes *
    /// EXP_DEGREE * 32` bytes. Called with `v` = 1, 2, … in order.
    fn expanders(&mut self, v: usize) -> &[u8];
}

/// Bytes of one node's expander parents for one lane.
pub const EXP_ROW: usize = EXP_DEGREE * LABEL;

/// The SHA-256 engine a group of `lanes` sectors is hashed on.
pub fn group_engine(lanes: usize) -> Engine {
    sha256_engine::for_lanes(lanes)
}

/// Labels one layer of a group into `out` (interleaved, `nodes * lanes * 32` bytes).
pub fn label_group(job: &GroupJob, out: &mut [u8]) {
    label_group_fed(job, out, None)
}

/// [`label_group`] with the expander parents of a layer ≥ 2 taken from `feed` instead of
/// `job.prev` (which is then `None`).
pub fn label_group_fed(job: &GroupJob, out: &mut [u8], feed: Option<&mut dyn ExpanderFeed>) {
    let stride = job.replica_ids.len() * LABEL;
    label_rows(job, RowsMut::of_slice(out, stride), feed)
}

/// [`label_group`] into a layer that writers read behind the labeling: its rows are
/// published as they become final.
pub fn label_group_shared(job: &GroupJob, layer: &SharedLayer) {
    assert_eq!(
        layer.stride(),
        job.replica_ids.len() * LABEL,
        "a row per node of every lane"
    );
    label_rows(job, layer.rows_mut(), None)
}

fn label_rows(job: &GroupJob, out: RowsMut, feed: Option<&mut dyn ExpanderFeed>) {
    if let Some(c) = job.cpu {
        pin_current_thread(c);
    }
    let lanes = job.replica_ids.len();
    assert!(
        (1..=MAX_GROUP).contains(&lanes),
        "a group has 1 to {MAX_GROUP} sectors, not {lanes}"
    );
    match group_engine(lanes) {
        Engine::ShaNi if lanes <= MAX_CHAINS => match lanes {
            1 => run(job, out, feed, &chains::<1>(job)),
            2 => run(job, out, feed, &chains::<2>(job)),
            3 => run(job, out, feed, &chains::<3>(job)),
            _ => run(job, out, feed, &chains::<4>(job)),
        },
        #[cfg(target_arch = "x86_64")]
        Engine::Avx512 if feed.is_none() => run_x16(job, out),
        engine => run(job, out, feed, &wide(job, engine)),
    }
}

/// Hashes node `v`'s labels for every lane from the gathered parents (`B` buffers, the
/// first `lanes` used) into `labels`.
type Hasher<'a, const B: usize> = dyn Fn(u64, &[[u8; DEGREE * LABEL]; B], &mut [[u8; 32]; B]) + 'a;

/// Labels on `L` interleaved SHA-NI chains.
fn chains<'a, const L: usize>(
    job: &'a GroupJob,
) -> impl Fn(u64, &[[u8; DEGREE * LABEL]; L], &mut [[u8; 32]; L]) + 'a {
    let rids: [[u8; 32]; L] = job.replica_ids.try_into().expect("group size");
    move |v, bufs, labels| {
        let mut states = header_states::<L>(&rids, job.layer, v);
        *labels = if job.layer == 1 {
            label_layer1_lanes::<L>(&mut states, bufs)
        } else {
            label_layer_n_lanes::<L>(&mut states, bufs)
        };
    }
}

/// Labels on 16 vector lanes of `engine`.
fn wide<'a>(
    job: &'a GroupJob,
    engine: Engine,
) -> impl Fn(u64, &[[u8; DEGREE * LABEL]; 16], &mut [[u8; 32]; 16]) + 'a {
    let lanes = job.replica_ids.len();
    move |v, bufs, labels| {
        let mut state = header_states16(engine, job.replica_ids, job.layer, v);
        *labels = if job.layer == 1 {
            label_layer1_16(engine, &mut state, bufs, lanes)
        } else {
            label_layer_n_16(engine, &mut state, bufs, lanes)
        };
    }
}

/// The layer loop: gathers each node's parents for every lane (buffers of `B` lanes, the
/// first `lanes` used) and hashes them with `hash`. Expander parents come from `job.prev`,
/// or from `feed` when the previous layer is read from files.
fn run<const B: usize>(
    job: &GroupJob,
    mut out: RowsMut,
    mut feed: Option<&mut dyn ExpanderFeed>,
    hash: &Hasher<B>,
) {
    let lanes = job.replica_ids.len();
    let stride = lanes * LABEL;
    let nodes = out.rows();
    let row0 = out.row_mut(0);
    for (l, rid) in job.replica_ids.iter().enumerate() {
        row0[l * LABEL..(l + 1) * LABEL].copy_from_slice(&label_node0(rid, job.layer));
    }
    let mut bufs = [[0u8; DEGREE * LABEL]; B];
    let mut labels = [[0u8; 32]; B];
    let parents_of = |v: usize| job.parents.parents(v as u64);
    for v in 1..nodes {
        if v + PREFETCH_AHEAD < nodes {
            let p = parents_of(v + PREFETCH_AHEAD);
            for &b in &p[..BASE_DEGREE] {
                prefetch_row(out.base(), stride, b as usize);
            }
            if let Some(prev) = job.prev {
                for &e in &p[BASE_DEGREE..] {
                    prefetch_row(prev.as_ptr(), stride, e as usize);
                }
            }
        }
        let p = parents_of(v);
        for (i, &b) in p[..BASE_DEGREE].iter().enumerate() {
            assert!(
                (b as usize) < v,
                "base parent {b} of node {v} is not before it"
            );
            let src = out.row(b as usize);
            for (l, buf) in bufs.iter_mut().enumerate().take(lanes) {
                buf[i * LABEL..(i + 1) * LABEL].copy_from_slice(&src[l * LABEL..(l + 1) * LABEL]);
            }
        }
        if let Some(prev) = job.prev {
            for (i, &e) in p[BASE_DEGREE..].iter().enumerate() {
                let src = &prev[e as usize * stride..(e as usize + 1) * stride];
                let at = (BASE_DEGREE + i) * LABEL;
                for (l, buf) in bufs.iter_mut().enumerate().take(lanes) {
                    buf[at..at + LABEL].copy_from_slice(&src[l * LABEL..(l + 1) * LABEL]);
                }
            }
        } else if let Some(feed) = &mut feed {
            let rows = feed.expanders(v);
            let at = BASE_DEGREE * LABEL;
            for (l, buf) in bufs.iter_mut().enumerate().take(lanes) {
                buf[at..].copy_from_slice(&rows[l * EXP_ROW..(l + 1) * EXP_ROW]);
            }
        }
        hash(v as u64, &bufs, &mut labels);
        let dst = out.row_mut(v);
        for (l, label) in labels.iter().enumerate().take(lanes) {
            dst[l * LABEL..(l + 1) * LABEL].copy_from_slice(label);
        }
        if v % PUBLISH_EVERY == 0 {
            out.publish(v + 1);
            (job.progress)(v as u64);
            if job.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                return;
            }
        }
    }
    out.publish(nodes);
    (job.progress)(nodes as u64);
}

/// The layer loop on the AVX-512 lanes, parents read where they lie
/// ([`super::label_x16`]).
#[cfg(target_arch = "x86_64")]
fn run_x16(job: &GroupJob, mut out: RowsMut) {
    use super::label_x16::{label_row, Group16};
    let lanes = job.replica_ids.len();
    let stride = lanes * LABEL;
    let nodes = out.rows();
    // The previous layer may be longer than `out` (a benchmark labels a layer's start).
    let prev_nodes = job.prev.map_or(0, |p| p.len() / stride);
    assert!(
        job.layer == 1 || prev_nodes >= nodes,
        "a layer after the first needs the previous one, as large"
    );
    let row0 = out.row_mut(0);
    for (l, rid) in job.replica_ids.iter().enumerate() {
        row0[l * LABEL..(l + 1) * LABEL].copy_from_slice(&label_node0(rid, job.layer));
    }
    assert!(
        sha256_engine::Engine::Avx512.available(),
        "the AVX-512 engine on a CPU without it"
    );
    if !super::label_x16::agrees_with_general_path(lanes) {
        eprintln!(
            "{}: warning: the AVX-512 labeler disagrees with the general path on this CPU; using the general path",
            crate::cli::tool_name()
        );
        return run(job, out, None, &wide(job, Engine::Avx512));
    }
    // SAFETY: the CPU has AVX-512F and AVX-512BW (checked above).
    let group = unsafe { Group16::new(job.replica_ids, job.layer) };
    let degree = if job.layer == 1 { BASE_DEGREE } else { DEGREE };
    let base = out.base();
    let prev = job.prev.map(|p| p.as_ptr());
    let mut rows = [std::ptr::null::<u8>(); DEGREE];
    for v in 1..nodes {
        if v + PREFETCH_AHEAD < nodes {
            let p = job.parents.parents((v + PREFETCH_AHEAD) as u64);
            for &b in &p[..BASE_DEGREE] {
                prefetch_row(base, stride, b as usize);
            }
            if let Some(prev) = prev {
                for &e in &p[BASE_DEGREE..] {
                    prefetch_row(prev, stride, e as usize);
                }
            }
        }
        let p = job.parents.parents(v as u64);
        // Base parents are earlier nodes of this layer (labeled, and not the row written);
        // expander parents are nodes of the previous layer.
        for (r, &b) in rows.iter_mut().zip(&p[..BASE_DEGREE]) {
            assert!(
                (b as usize) < v,
                "base parent {b} of node {v} is not before it"
            );
            *r = base.wrapping_add(b as usize * stride);
        }
        if let Some(prev) = prev {
            for (r, &e) in rows[BASE_DEGREE..].iter_mut().zip(&p[BASE_DEGREE..]) {
                assert!(
                    (e as usize) < prev_nodes,
                    "expander parent {e} past the layer"
                );
                *r = prev.wrapping_add(e as usize * stride);
            }
        }
        debug_assert!(v >= out.published(), "row {v} is published");
        // SAFETY: AVX-512 checked; every parent row lies within `out` (before row v) or
        // `prev` (asserted above), each `stride` bytes; row v is within `out`, none of the
        // parent rows, and not published (rows are published up to the last one written),
        // so no reader has it.
        unsafe { label_row(&group, v as u64, &rows[..degree], base.add(v * stride)) };
        if v % PUBLISH_EVERY == 0 {
            out.publish(v + 1);
            (job.progress)(v as u64);
            if job.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                return;
            }
        }
    }
    out.publish(nodes);
    (job.progress)(nodes as u64);
}

/// Prefetches every cache line of row `node` (one node of every lane) at `base` into the
/// second-level cache, not the first: a group's row is 512 bytes and a node has 14 of them,
/// more than the first level's fill buffers hold in flight, and the hashing's own loads queue
/// behind them. `bench_label --group-512` (layer 2 of 16 × 512MiB, Xeon AVX-512, four A/B
/// pairs): 59.2 M compressions/s into the first level, 61.6 into the second; prefetching
/// fewer lines of a row (every 2nd, 4th, 8th) measured 50–52.
#[inline]
fn prefetch_row(base: *const u8, stride: usize, node: usize) {
    for line in (0..stride).step_by(64) {
        prefetch_l2(base.wrapping_add(node * stride + line));
    }
}

/// Copies the sectors `which` of an interleaved group buffer (`rows`, rows of `lanes`
/// labels) into `outs` (`outs[k]` gets lane `which[k]`), in one pass over the rows: the
/// group's memory is read once, in order, however many sectors are copied out.
pub fn deinterleave_lanes(rows: &[u8], lanes: usize, which: &[usize], outs: &mut [&mut [u8]]) {
    assert_eq!(which.len(), outs.len(), "a buffer per lane copied");
    let stride = lanes * LABEL;
    let n = rows.len() / stride;
    for out in outs.iter() {
        assert_eq!(out.len(), n * LABEL, "a label per row");
    }
    for (r, row) in rows.chunks_exact(stride).enumerate() {
        for (&lane, out) in which.iter().zip(outs.iter_mut()) {
            out[r * LABEL..(r + 1) * LABEL].copy_from_slice(&row[lane * LABEL..(lane + 1) * LABEL]);
        }
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

#[cfg(test)]
mod tests {
    use super::{deinterleave_lanes, interleave, LABEL};

    /// Sectors interleaved into a group buffer come back out byte for byte, any subset of
    /// lanes in any order.
    #[test]
    fn deinterleave_undoes_interleave() {
        let (lanes, nodes) = (5usize, 7usize);
        let layers: Vec<Vec<u8>> = (0..lanes)
            .map(|l| {
                (0..nodes * LABEL)
                    .map(|i| (i * 7 + l * 131) as u8)
                    .collect()
            })
            .collect();
        let mut group = vec![0u8; lanes * nodes * LABEL];
        for (l, layer) in layers.iter().enumerate() {
            interleave(layer, lanes, l, &mut group);
        }
        assert_eq!(group[LABEL..2 * LABEL], layers[1][..LABEL]);
        assert_eq!(
            group[lanes * LABEL..(lanes + 1) * LABEL],
            layers[0][LABEL..2 * LABEL]
        );
        let which = [4usize, 0, 2];
        let mut bufs: Vec<Vec<u8>> = which.iter().map(|_| vec![0u8; nodes * LABEL]).collect();
        let mut outs: Vec<&mut [u8]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
        deinterleave_lanes(&group, lanes, &which, &mut outs);
        for (k, &l) in which.iter().enumerate() {
            assert_eq!(bufs[k], layers[l], "lane {l}");
        }
    }
}
