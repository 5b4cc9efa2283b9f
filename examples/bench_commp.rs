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

/// CPU seconds (user + system) this process has used, all threads: with other work on the
/// machine, wall times stretch but the CPU a computation needs does not.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    // Linux reports them in clock ticks of 1/100 s (USER_HZ).
    f.iter().sum::<f64>() / 100.0
}

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

    println!(
        "engine: {} (SEALKIT_SHA_ENGINE); CPU = user+system seconds of all threads",
        sealkit::hash::sha256_engine::active().describe()
    );
    let cpu = cpu_secs();
    let (t_ref, c_ref) = time_reference(path, len)?;
    let cpu_ref = cpu_secs() - cpu;
    println!(
        "reference  generate_piece_commitment   {t_ref:7.3} s  {:7.1} MB/s payload  CPU {cpu_ref:6.2} s",
        mb / t_ref
    );
    for &n in &threads {
        let cpu = cpu_secs();
        let (t, c) = time_ours(path, n)?;
        let cpu_ours = cpu_secs() - cpu;
        ensure!(c == c_ref, "CommP differs from the reference!");
        println!(
            "sealkit    commp ({n} thread{})           {t:7.3} s  {:7.1} MB/s payload  CPU {cpu_ours:6.2} s  ratio {:.2}x wall, {:.2}x CPU",
            if n == 1 { " " } else { "s" },
            mb / t,
            t_ref / t,
            cpu_ref / cpu_ours
        );
    }
    println!("CommP {} (identical)", sealkit::hex::encode(&c_ref));
    Ok(())
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
