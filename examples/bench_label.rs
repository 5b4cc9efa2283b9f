//! Labeling micro-benchmark: the raw label-hash rate on one core, then one layer of a real
//! graph in memory (no files), inline and pipelined. Diagnoses PC1 speed against the cap.
//!
//! usage: bench_label [LOG2_NODES=24] (needs the parent cache of the 512MiB V1_1 graph, or
//! generates it into FIL_PROOFS_PARENT_CACHE)

use std::time::Instant;

use sealkit::sdr::graph::SdrGraph;
use sealkit::sdr::label::{header_state, label_layer_n};
use sealkit::sdr::labeler::{label_layer, LayerJob};
use sealkit::sdr::parent_cache::ParentCache;
use sealkit::sector::proof::SealProof;

fn main() -> anyhow::Result<()> {
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

/// Compressions per second on one core with `L` interleaved SHA-NI lanes.
fn lanes<const L: usize>() {
    use sealkit::hash::sha256_lanes::compress_lanes;
    let data = vec![3u8; 64 * 19];
    let mut states = [sealkit::hash::sha256::H0; L];
    let iters = 1_000_000 / L;
    let t = Instant::now();
    for _ in 0..iters {
        compress_lanes::<L>(&mut states, [data.as_slice(); L]);
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "{L} lane(s): {:.1} M compressions/s on one core (state {:x})",
        (iters * L * 19) as f64 / dt / 1e6,
        states[0][0]
    );
}
