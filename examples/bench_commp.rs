//! Side-by-side CommP benchmark: sealkit against filecoin-proofs' `generate_piece_commitment`
//! on the same file. Run through `scripts/bench-commp.sh`, which prepares the file.
//!
//! usage: bench_commp FILE [threads...]

use std::fs::File;
use std::io::BufReader;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use filecoin_proofs::{generate_piece_commitment, UnpaddedBytesAmount};
use sealkit::piece::commp::commp_of_reader;

fn time_ours(path: &str, threads: usize) -> Result<(f64, [u8; 32])> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    pool.install(|| {
        let mut f = File::open(path)?;
        let t = Instant::now();
        let c = commp_of_reader(&mut f, &|_| {})?;
        Ok((t.elapsed().as_secs_f64(), c.comm_p))
    })
}

fn time_reference(path: &str, len: u64) -> Result<(f64, [u8; 32])> {
    let f = BufReader::new(File::open(path)?);
    let t = Instant::now();
    let info = generate_piece_commitment(f, UnpaddedBytesAmount(len))?;
    Ok((t.elapsed().as_secs_f64(), info.commitment))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .context("usage: bench_commp FILE [threads...]")?;
    let threads: Vec<usize> = if args.len() > 2 {
        args[2..]
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()?
    } else {
        vec![1, num_cpus()]
    };
    let len = std::fs::metadata(path)?.len();
    ensure!(
        (len / 127).is_power_of_two() && len % 127 == 0,
        "the file must be a whole piece: 127 * 2^k bytes"
    );
    let mb = len as f64 / 1e6;
    // Warm the page cache so both read from memory.
    std::io::copy(&mut File::open(path)?, &mut std::io::sink())?;

    let (t_ref, c_ref) = time_reference(path, len)?;
    println!(
        "reference  generate_piece_commitment   {t_ref:7.3} s  {:7.1} MB/s payload",
        mb / t_ref
    );
    for &n in &threads {
        let (t, c) = time_ours(path, n)?;
        ensure!(c == c_ref, "CommP differs from the reference!");
        println!(
            "sealkit    commp ({n} thread{})           {t:7.3} s  {:7.1} MB/s payload  ratio {:.2}x",
            if n == 1 { " " } else { "s" },
            mb / t,
            t_ref / t
        );
    }
    println!("CommP {} (identical)", sealkit::hex::encode(&c_ref));
    Ok(())
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
