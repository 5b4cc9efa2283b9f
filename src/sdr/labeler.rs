//! Labeling one layer of one sector, at the speed of the hashing thread.
//!
//! Each label costs 20 SHA-256 compressions in one dependent chain, so a layer can go no faster
//! than one core's compression rate. The reference loses much of that waiting on parent reads.
//! Here a *hasher* thread only hashes; a *producer* thread runs ahead of it through a ring of
//! slots, precomputing each node's header compression and gathering every parent label that
//! already exists (all expander parents, and base parents the hasher has passed). The hasher
//! copies the few base parents that were not ready (always `v − 1`, and other near ones, hot
//! in its cache), hashes, and publishes its progress.
//!
//! With one CPU the producer would only steal the hasher's core, so the hasher then gathers
//! parents itself.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};

use super::label::{header_state, label_layer1, label_layer_n, label_node0, LABEL};
use super::parent_cache::ParentCache;
use super::{prefetch, BASE_DEGREE, DEGREE};
use crate::affinity::pin_current_thread;

/// Nodes the producer may run ahead of the hasher (slots in the ring, about 256 KiB).
const RING: usize = 512;

/// What one layer's labeling needs.
pub struct LayerJob<'a> {
    pub replica_id: [u8; 32],
    /// 1-based layer number.
    pub layer: u32,
    pub parents: &'a ParentCache,
    /// The previous layer's labels (layer ≥ 2).
    pub prev: Option<&'a [u8]>,
    /// CPUs for the hasher and the producer, hasher first; empty means "don't pin".
    pub cpus: &'a [usize],
    /// Called with the number of nodes done, now and then.
    pub progress: &'a (dyn Fn(u64) + Sync),
}

#[repr(C, align(64))]
struct Slot {
    state: [u32; 8],
    /// Bit i set: base parent i was not ready and the hasher must copy it.
    missing: u32,
    parents: [u8; DEGREE * LABEL],
}

/// Shared view of the layer being written. The hasher writes label `v` and then publishes
/// `done = v + 1` (Release); the producer reads only labels `< done` (Acquire). No label is
/// ever read and written at the same time.
struct SharedLayer {
    ptr: *mut u8,
    len: usize,
}
unsafe impl Sync for SharedLayer {}

impl SharedLayer {
    /// # Safety
    /// `node` must be published (below `done`) or owned by the caller.
    #[inline]
    unsafe fn label(&self, node: usize) -> &[u8] {
        debug_assert!((node + 1) * LABEL <= self.len);
        std::slice::from_raw_parts(self.ptr.add(node * LABEL), LABEL)
    }

    /// # Safety
    /// Only the hasher writes, and only the node it owns.
    #[inline]
    unsafe fn write(&self, node: usize, label: &[u8; 32]) {
        debug_assert!((node + 1) * LABEL <= self.len);
        std::ptr::copy_nonoverlapping(label.as_ptr(), self.ptr.add(node * LABEL), LABEL);
    }
}

/// A counter alone on its cache lines, so the producer's and the hasher's counters do not
/// bounce one line between their cores on every node.
#[repr(align(128))]
struct Counter(AtomicU64);

/// How often the hasher publishes its progress: the producer only needs it to know which
/// base parents it may gather and when a slot is free, so every few nodes is plenty.
const PUBLISH_EVERY: usize = 16;

struct Ring {
    slots: Vec<UnsafeCell<Slot>>,
}
unsafe impl Sync for Ring {}

/// Labels a whole layer into `out` (`nodes * 32` bytes).
pub fn label_layer(job: &LayerJob, out: &mut [u8]) {
    let nodes = out.len() / LABEL;
    assert_eq!(
        job.parents.nodes() as usize,
        nodes,
        "parent cache does not match the layer"
    );
    let first = label_node0(&job.replica_id, job.layer);
    out[..LABEL].copy_from_slice(&first);
    // The hashing runs on threads of its own, so pinning never sticks to the caller.
    std::thread::scope(|s| {
        s.spawn(|| {
            if job.cpus.len() < 2 {
                if let Some(&c) = job.cpus.first() {
                    pin_current_thread(c);
                }
                label_inline(job, out);
            } else {
                label_pipelined(job, out);
            }
        });
    });
}

/// Gathers node `v`'s parents into `buf`; base parents at or past `ready` are left for later
/// and reported in the returned mask.
#[inline]
fn gather(
    job: &LayerJob,
    layer: &SharedLayer,
    v: usize,
    ready: usize,
    buf: &mut [u8; DEGREE * LABEL],
) -> u32 {
    let p = job.parents.parents(v as u64);
    let mut missing = 0u32;
    for (i, &b) in p[..BASE_DEGREE].iter().enumerate() {
        if (b as usize) < ready {
            // SAFETY: b < ready ≤ done, so label b is published (and within the layer).
            buf[i * LABEL..(i + 1) * LABEL].copy_from_slice(unsafe { layer.label(b as usize) });
        } else {
            missing |= 1 << i;
        }
    }
    if let Some(prev) = job.prev {
        for (i, &e) in p[BASE_DEGREE..].iter().enumerate() {
            let at = e as usize * LABEL;
            buf[(BASE_DEGREE + i) * LABEL..(BASE_DEGREE + i + 1) * LABEL]
                .copy_from_slice(&prev[at..at + LABEL]);
        }
    }
    missing
}

#[inline]
fn hash_node(
    job: &LayerJob,
    layer: &SharedLayer,
    v: usize,
    state: [u32; 8],
    missing: u32,
    buf: &mut [u8; DEGREE * LABEL],
) {
    if missing != 0 {
        let p = job.parents.parents(v as u64);
        for i in 0..BASE_DEGREE {
            if missing & (1 << i) != 0 {
                // SAFETY: base parents are < v (every entry is range-checked when the parent
                // cache is opened, `parent_cache::check_entries`), all written by this thread.
                buf[i * LABEL..(i + 1) * LABEL]
                    .copy_from_slice(unsafe { layer.label(p[i] as usize) });
            }
        }
    }
    let label = if job.prev.is_none() {
        label_layer1(
            state,
            buf[..BASE_DEGREE * LABEL].try_into().expect("6 labels"),
        )
    } else {
        label_layer_n(state, buf)
    };
    // SAFETY: node v is owned by the hashing thread until it publishes v + 1.
    unsafe { layer.write(v, &label) };
}

fn label_inline(job: &LayerJob, out: &mut [u8]) {
    let nodes = out.len() / LABEL;
    let layer = SharedLayer {
        ptr: out.as_mut_ptr(),
        len: out.len(),
    };
    let mut buf = [0u8; DEGREE * LABEL];
    for v in 1..nodes {
        let missing = gather(job, &layer, v, v, &mut buf);
        let state = header_state(&job.replica_id, job.layer, v as u64);
        hash_node(job, &layer, v, state, missing, &mut buf);
        if v % (1 << 16) == 0 {
            (job.progress)(v as u64);
        }
    }
    (job.progress)(nodes as u64);
}

/// How far ahead the producer asks for parent labels, so they arrive from memory while it
/// gathers the nodes in between.
const PREFETCH_AHEAD: usize = 8;

/// Asks for the cache lines of node `v`'s parent labels that the producer will gather.
#[inline]
fn prefetch_parents(job: &LayerJob, layer: &SharedLayer, v: usize, ready: usize) {
    let p = job.parents.parents(v as u64);
    for &b in &p[..BASE_DEGREE] {
        if (b as usize) < ready {
            prefetch(layer.ptr.wrapping_add(b as usize * LABEL));
        }
    }
    if let Some(prev) = job.prev {
        for &e in &p[BASE_DEGREE..] {
            prefetch(prev.as_ptr().wrapping_add(e as usize * LABEL));
        }
    }
}

#[inline]
fn prefetch_slot(ring: &Ring, v: usize) {
    let p = ring.slots[v % RING].get() as *const u8;
    for line in 0..std::mem::size_of::<Slot>() / 64 {
        prefetch(p.wrapping_add(line * 64));
    }
}

/// Spins (then yields, in case the CPUs are oversubscribed) until `cond(counter)` holds;
/// returns the counter's value.
#[inline]
fn wait_until(counter: &AtomicU64, cond: impl Fn(usize) -> bool) -> usize {
    let mut spins = 0u32;
    loop {
        let c = counter.load(Ordering::Acquire) as usize;
        if cond(c) {
            return c;
        }
        spins += 1;
        if spins < 1 << 12 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

fn label_pipelined(job: &LayerJob, out: &mut [u8]) {
    let nodes = out.len() / LABEL;
    let layer = SharedLayer {
        ptr: out.as_mut_ptr(),
        len: out.len(),
    };
    let ring = Ring {
        slots: (0..RING)
            .map(|_| {
                UnsafeCell::new(Slot {
                    state: [0; 8],
                    missing: 0,
                    parents: [0; DEGREE * LABEL],
                })
            })
            .collect(),
    };
    // `produced`: slots filled for nodes < produced. `done`: labels written for nodes < done.
    let produced = Counter(AtomicU64::new(1));
    let done = Counter(AtomicU64::new(1));
    let (produced, done) = (&produced.0, &done.0);
    let ring = &ring;

    std::thread::scope(|s| {
        s.spawn(|| {
            pin_current_thread(job.cpus[1]);
            for v in 1..nodes {
                let ready = wait_until(done, |d| v < d + RING);
                // SAFETY: v < done + RING, so the hasher is not reading this slot (it only
                // reads slot v after `produced` passes v, and has finished with v − RING).
                let slot = unsafe { &mut *ring.slots[v % RING].get() };
                if v + PREFETCH_AHEAD < nodes {
                    prefetch_parents(job, &layer, v + PREFETCH_AHEAD, ready);
                }
                slot.state = header_state(&job.replica_id, job.layer, v as u64);
                slot.missing = gather(job, &layer, v, ready, &mut slot.parents);
                produced.store(v as u64 + 1, Ordering::Release);
            }
        });

        pin_current_thread(job.cpus[0]);
        let mut available = 1usize;
        for v in 1..nodes {
            if available <= v {
                available = wait_until(produced, |p| p > v);
            }
            // Pull the next slot into this core's cache while this node hashes: it was
            // written on the producer's core.
            prefetch_slot(ring, v + 1);
            // SAFETY: produced > v, and the producer will not touch this slot again until
            // done > v (it waits for v + RING < done + RING).
            let slot = unsafe { &mut *ring.slots[v % RING].get() };
            hash_node(job, &layer, v, slot.state, slot.missing, &mut slot.parents);
            if v % PUBLISH_EVERY == 0 || v + 1 == nodes {
                done.store(v as u64 + 1, Ordering::Release);
            }
            if v % (1 << 16) == 0 {
                (job.progress)(v as u64);
            }
        }
        (job.progress)(nodes as u64);
    });
}
