//! seal-gpu: GPU discovery, self-test and a timed tree-building partition. See
//! `man/seal-gpu.1`.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use sealkit::cli;

#[derive(Parser)]
#[command(
    name = "seal-gpu",
    version,
    about = "GPU discovery, self-test against the CPU, and a timed PC2 partition",
    after_help = "\
Needs a build with the cuda feature (cargo build --release --features cuda); without one, or
without an NVIDIA driver and GPU, each command says why in one line and exits 1.

The kernels are compiled at start-up by NVRTC (libnvrtc.so.13) for the device, unless
SEALKIT_CUDA_MODULE names a .ptx/.cubin/.fatbin built by nvcc from src/gpu/kernels/poseidon.cu.

Examples:
  seal-gpu info
  seal-gpu selftest --quick
  seal-gpu bench --log2-nodes 27 --layers 11"
)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The GPUs the driver reports, and whether NVRTC can be loaded.
    Info,
    /// GPU column hashes and tree roots equal to the CPU's on random data, every kernel
    /// arity and the sealing tree shapes.
    Selftest {
        /// Smaller batches (seconds instead of a minute).
        #[arg(long)]
        quick: bool,
    },
    /// Times one partition of PC2's Poseidon work on the GPU: column hashes of `layers`
    /// synthetic layers of 2^log2_nodes nodes, then tree_c and tree_r_last (arity 8) over
    /// them; 2^27 nodes and 11 layers is one of a 32 GiB sector's eight partitions.
    Bench {
        #[arg(long, default_value_t = 27)]
        log2_nodes: u32,
        #[arg(long, default_value_t = 11)]
        layers: usize,
    },
}

fn main() -> ExitCode {
    cli::run_main("seal-gpu", || run(Args::parse()))
}

#[cfg(not(feature = "cuda"))]
fn run(_args: Args) -> Result<()> {
    anyhow::bail!("this seal-gpu was built without the cuda feature (cargo build --features cuda)")
}

#[cfg(feature = "cuda")]
fn run(args: Args) -> Result<()> {
    use sealkit::gpu::cuda;
    match args.cmd {
        Cmd::Info => {
            eprintln!(
                "NVRTC: {}",
                if cuda::nvrtc_present() {
                    "present"
                } else {
                    "not found"
                }
            );
            for d in cuda::devices()? {
                println!("{d}");
            }
            Ok(())
        }
        Cmd::Selftest { quick } => gpu_cmd::selftest(quick),
        Cmd::Bench { log2_nodes, layers } => gpu_cmd::bench(log2_nodes, layers),
    }
}

#[cfg(feature = "cuda")]
mod gpu_cmd {
    use std::time::Instant;

    use anyhow::{ensure, Result};
    use rayon::prelude::*;

    use sealkit::gpu::cuda::GpuBuilder;
    use sealkit::merkle::poseidon_tree::tree_len;
    use sealkit::pc2::{CpuBuilder, TreeBuilder};

    /// Deterministic pseudo-random canonical nodes (top two bits clear: below 2^254 < p),
    /// from a splitmix64 stream at `seed`, written into `out`, in parallel.
    pub fn fill_nodes(out: &mut [u8], seed: u64) {
        out.par_chunks_mut(32 * 4096)
            .enumerate()
            .for_each(|(c, chunk)| {
                let mut x = seed ^ (c as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                for node in chunk.chunks_exact_mut(32) {
                    for w in node.chunks_exact_mut(8) {
                        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
                        let mut z = x;
                        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                        w.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
                    }
                    node[31] &= 0x3f;
                }
            });
    }

    fn open() -> Result<GpuBuilder> {
        let g = GpuBuilder::open(0)?;
        println!("device: {} (kernels: {})", g.info, g.module);
        Ok(g)
    }

    pub fn selftest(quick: bool) -> Result<()> {
        let gpu = open()?;
        let n = if quick { 1 << 14 } else { 1 << 20 };
        let mut failures = 0;
        // Column hashes: 2 layers (arity 2) and 11 (arity 11); 8 and 16 through the same
        // kernels as trees use, as "layers".
        for layers in [2usize, 8, 11, 16] {
            let data: Vec<Vec<u8>> = (0..layers)
                .map(|l| {
                    let mut v = vec![0u8; 32 * n];
                    fill_nodes(&mut v, 1000 + l as u64);
                    v
                })
                .collect();
            let refs: Vec<&[u8]> = data.iter().map(|v| &v[..]).collect();
            let (mut g, mut c) = (vec![0u8; 32 * n], vec![0u8; 32 * n]);
            let t = Instant::now();
            gpu.column_hashes(&refs, &mut g)?;
            let tg = t.elapsed().as_secs_f64();
            let t = Instant::now();
            CpuBuilder.column_hashes(&refs, &mut c)?;
            let tc = t.elapsed().as_secs_f64();
            let ok = g == c;
            failures += usize::from(!ok);
            println!(
                "arity {layers:>2} columns: {n} hashes {} (GPU {:.3}s {:.2} M/s, CPU {:.3}s)",
                if ok { "equal" } else { "DIFFER" },
                tg,
                n as f64 / tg / 1e6,
                tc
            );
        }
        // Trees: every base-tree size of the sealing shapes up to 2^24 leaves (arity 8),
        // and binary trees.
        let mut shapes: Vec<(usize, usize)> = (1..=if quick { 5 } else { 8 })
            .map(|k| (8usize.pow(k), 8))
            .collect();
        shapes.extend([(2, 2), (1 << 10, 2)]);
        for (leaves, arity) in shapes {
            let len = tree_len(leaves, arity);
            let mut g = vec![0u8; 32 * len];
            fill_nodes(&mut g[..32 * leaves], leaves as u64);
            let mut c = g.clone();
            let rg = gpu.build_rows(&mut g, leaves, arity)?;
            let rc = CpuBuilder.build_rows(&mut c, leaves, arity)?;
            let ok = g == c && rg == rc;
            failures += usize::from(!ok);
            println!(
                "arity {arity} tree of {leaves} leaves: rows and root {}",
                if ok { "equal" } else { "DIFFER" }
            );
        }
        // A non-canonical node is an error, not a wrong hash.
        let bad = [0xffu8; 32 * 2];
        let mut out = vec![0u8; 32];
        let refused = gpu
            .column_hashes(&[&bad[..32], &bad[32..]], &mut out)
            .is_err();
        failures += usize::from(!refused);
        println!(
            "non-canonical node: {}",
            if refused { "refused" } else { "ACCEPTED" }
        );
        ensure!(
            failures == 0,
            "{failures} GPU result(s) differ from the CPU's"
        );
        println!("selftest: all equal");
        Ok(())
    }

    pub fn bench(log2_nodes: u32, layers: usize) -> Result<()> {
        ensure!(
            (3..=30).contains(&log2_nodes),
            "--log2-nodes must be 3..=30"
        );
        ensure!(layers == 2 || layers == 11, "--layers must be 2 or 11");
        let gpu = open()?;
        let nodes = 1usize << log2_nodes;
        let chunk = nodes.min(1 << 22);
        let len = tree_len(nodes, 8);
        let mut tree = vec![0u8; 32 * len];
        let mut bufs: Vec<Vec<u8>> = vec![vec![0u8; 32 * chunk]; layers];
        let (mut t_cols, mut t_gen) = (0.0, 0.0);
        for (i, first) in (0..nodes).step_by(chunk).enumerate() {
            let t = Instant::now();
            for (l, b) in bufs.iter_mut().enumerate() {
                fill_nodes(b, (i * layers + l) as u64);
            }
            t_gen += t.elapsed().as_secs_f64();
            let refs: Vec<&[u8]> = bufs.iter().map(|v| &v[..]).collect();
            let t = Instant::now();
            gpu.column_hashes(&refs, &mut tree[32 * first..32 * (first + chunk)])?;
            t_cols += t.elapsed().as_secs_f64();
        }
        let leaves = tree[..32 * nodes].to_vec();
        let t = Instant::now();
        gpu.build_rows(&mut tree, nodes, 8)?;
        let t_c = t.elapsed().as_secs_f64();
        tree[..32 * nodes].copy_from_slice(&leaves);
        let t = Instant::now();
        gpu.build_rows(&mut tree, nodes, 8)?;
        let t_r = t.elapsed().as_secs_f64();
        let total = t_cols + t_c + t_r;
        println!(
            "partition of 2^{log2_nodes} nodes, {layers} layers: columns {t_cols:.2}s \
             ({:.2} M hashes/s), tree_c {t_c:.2}s, tree_r_last {t_r:.2}s, total {total:.2}s \
             (host data generation {t_gen:.2}s, not counted)",
            nodes as f64 / t_cols / 1e6
        );
        if log2_nodes == 27 {
            println!(
                "32 GiB sector (8 such partitions): {:.0}s of GPU Poseidon work",
                8.0 * total
            );
        }
        Ok(())
    }
}
