//! Labeling micro-benchmark: the raw label-hash rate on one core, then one layer of a real
//! graph in memory (no files), inline and pipelined. Diagnoses PC1 speed against the cap.
//!
//! usage: bench_label [--lanes-only | --group] (needs the parent cache of the 512MiB V1_1
//! graph, or generates it into FIL_PROOFS_PARENT_CACHE). `--group`: only the batch labeler's
//! two layers of a group of 8MiB sectors in memory, as wide as a batch forms them here.
//! `--group-512 [N]`: the first N nodes (default 2^21) of layer 2 of a full group of 512MiB
//! sectors, the previous layer (16 × 512MiB) filled in memory: the expander parents' misses
//! of a real batch, without labeling whole layers.

use std::time::Instant;

use sealkit::sdr::graph::SdrGraph;
use sealkit::sdr::label::{header_state, label_layer_n};
use sealkit::sdr::labeler::{label_layer, LayerJob};
use sealkit::sdr::parent_cache::ParentCache;
use sealkit::sector::proof::SealProof;

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("--group") {
        return group();
    }
    if std::env::args().nth(1).as_deref() == Some("--group-512") {
        let n = std::env::args().nth(2).map_or(Ok(1 << 21), |a| a.parse())?;
        return group_512(n);
    }
    let n = 2_000_000u64;
    let rid = [7u8; 32];
    let parents = [5u8; 448];
    let t = Instant::now();
    let mut acc = 0u8;
    for v in 0..n {
        let l = label_layer_n(header_state(&rid, 2, v), &parents);
        acc ^= l[0];
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "label hash, one core: {:.2} M labels/s = {:.1} M compressions/s (acc {acc})",
        n as f64 / dt / 1e6,
        n as f64 * 20.0 / dt / 1e6
    );

    lanes::<1>();
    lanes::<2>();
    lanes::<3>();
    lanes::<4>();
    if std::env::args().nth(1).as_deref() == Some("--lanes-only") {
        return Ok(());
    }

    let proof = SealProof::from_id(7)?; // 512MiB V1_1
    let graph = SdrGraph::new(proof.nodes(), proof.porep_id(), proof.api_version());
    let cache = ParentCache::open_or_generate(&graph)?;
    let nodes = proof.nodes() as usize;
    let mut l1 = vec![0u8; nodes * 32];
    let mut l2 = vec![0u8; nodes * 32];
    let cpus = sealkit::affinity::ordered_cpus();
    for (name, cpus) in [("pipelined", &cpus[..]), ("inline", &cpus[..1])] {
        let job = LayerJob {
            replica_id: rid,
            layer: 1,
            parents: &cache,
            prev: None,
            cpus,
            progress: &|_| {},
        };
        let t = Instant::now();
        label_layer(&job, &mut l1);
        let t1 = t.elapsed().as_secs_f64();
        let job = LayerJob {
            replica_id: rid,
            layer: 2,
            parents: &cache,
            prev: Some(&l1),
            cpus,
            progress: &|_| {},
        };
        let t = Instant::now();
        label_layer(&job, &mut l2);
        let t2 = t.elapsed().as_secs_f64();
        println!(
            "{name:9}: layer 1 {t1:.2} s, layer 2 {t2:.2} s = {:.1} M compressions/s",
            2.0 * nodes as f64 * 20.0 / (t1 + t2) / 1e6
        );
    }
    Ok(())
}

/// Compressions per second on one core with `L` interleaved SHA-NI lanes: 19-block
/// messages, then the 18 parent blocks of a layer-2 label (7 distinct) with each block's
/// schedule expanded for every use and expanded once.
fn lanes<const L: usize>() {
    use sealkit::hash::sha256_lanes::{compress_lanes, compress_lanes_repeating};
    let data = vec![3u8; 64 * 19];
    let mut states = [sealkit::hash::sha256::H0; L];
    let iters = 1_000_000 / L;
    let t = Instant::now();
    for _ in 0..iters {
        compress_lanes::<L>(&mut states, [data.as_slice(); L]);
    }
    let dt = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let labels = iters * 19 / 18;
    for _ in 0..labels {
        compress_lanes::<L>(&mut states, [&data[..448]; L]);
        compress_lanes::<L>(&mut states, [&data[..448]; L]);
        compress_lanes::<L>(&mut states, [&data[..256]; L]);
    }
    let dt_each = t.elapsed().as_secs_f64();
    let order: Vec<usize> = (0..7).chain(0..7).chain(0..4).collect();
    let t = Instant::now();
    for _ in 0..labels {
        compress_lanes_repeating::<L>(&mut states, [&data[..448]; L], &order);
    }
    let dt_once = t.elapsed().as_secs_f64();
    let rate = |n: usize, dt: f64| (n * L) as f64 / dt / 1e6;
    println!(
        "{L} lane(s): {:.1} M compressions/s on one core; label parent blocks: {:.1} M/s, schedules expanded once {:.1} M/s (state {:x})",
        rate(iters * 19, dt),
        rate(labels * 18, dt_each),
        rate(labels * 18, dt_once),
        states[0][0]
    );
}

/// Two layers of a group of 8MiB sectors in memory, as wide as a batch forms them on this CPU
/// (16 on AVX-512, else 4 SHA-NI chains).
fn group() -> anyhow::Result<()> {
    use sealkit::sdr::batch::{group_engine, label_group, max_group, GroupJob};
    let proof = SealProof::from_name("StackedDrg8MiBV1_1")?;
    let graph = SdrGraph::new(proof.nodes(), proof.porep_id(), proof.api_version());
    let cache = ParentCache::open_or_generate(&graph)?;
    let nodes = proof.nodes() as usize;
    let lanes = max_group();
    let rids: Vec<[u8; 32]> = (0..lanes as u8).map(|i| [i; 32]).collect();
    // On huge pages where the kernel allows, as `seal-pc1` allocates them.
    let mut l1 = sealkit::buffer::anon_buffer(nodes * lanes * 32)?;
    let mut l2 = sealkit::buffer::anon_buffer(nodes * lanes * 32)?;
    for _ in 0..3 {
        let mut secs = [0.0; 2];
        for layer in 1..=2u32 {
            let (prev, out) = if layer == 1 {
                (None, &mut l1[..])
            } else {
                (Some(&l1[..]), &mut l2[..])
            };
            let job = GroupJob {
                replica_ids: &rids,
                layer,
                parents: &cache,
                prev,
                cpu: None,
                stop: None,
                progress: &|_| {},
            };
            let t = Instant::now();
            label_group(&job, out);
            secs[layer as usize - 1] = t.elapsed().as_secs_f64();
        }
        let rate = |s: f64| (lanes * nodes) as f64 * 20.0 / s / 1e6;
        println!(
            "group of {lanes} on {}: layer 1 {:.1} M compressions/s, layer 2 {:.1} M/s (label {:02x})",
            group_engine(lanes).name(),
            rate(secs[0]),
            rate(secs[1]),
            l2[l2.len() - 1]
        );
    }
    Ok(())
}

fn group_512(n: usize) -> anyhow::Result<()> {
    use sealkit::sdr::batch::{group_engine, label_group, max_group, GroupJob};
    let proof = SealProof::from_name("StackedDrg512MiBV1_1")?;
    let graph = SdrGraph::new(proof.nodes(), proof.porep_id(), proof.api_version());
    let cache = ParentCache::open_or_generate(&graph)?;
    let nodes = proof.nodes() as usize;
    let n = n.clamp(2, nodes);
    let lanes = max_group();
    let rids: Vec<[u8; 32]> = (0..lanes as u8).map(|i| [i; 32]).collect();
    let mut l1 = sealkit::buffer::anon_buffer(nodes * lanes * 32)?;
    let t = Instant::now();
    // Every page written, so the expander parents' reads miss as in a real batch.
    for (i, chunk) in l1.chunks_mut(1 << 20).enumerate() {
        chunk.fill(i as u8 | 1);
    }
    println!("previous layer filled: {:.1} s", t.elapsed().as_secs_f64());
    let mut l2 = sealkit::buffer::anon_buffer(n * lanes * 32)?;
    for _ in 0..2 {
        let job = GroupJob {
            replica_ids: &rids,
            layer: 2,
            parents: &cache,
            prev: Some(&l1[..]),
            cpu: None,
            stop: None,
            progress: &|_| {},
        };
        let t = Instant::now();
        label_group(&job, &mut l2);
        let secs = t.elapsed().as_secs_f64();
        println!(
            "group of {lanes} on {}, 512MiB, layer 2, {n} nodes: {:.1} M compressions/s (label {:02x})",
            group_engine(lanes).name(),
            (lanes * n) as f64 * 20.0 / secs / 1e6,
            l2[l2.len() - 1]
        );
    }
    Ok(())
}
