//! seal-pc1: PreCommit1. See `man/seal-pc1.1`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;

use sealkit::cli;
use sealkit::pc1::{precommit1, Pc1Options};

#[derive(Parser)]
#[command(
    name = "seal-pc1",
    version,
    about = "PreCommit1: SDR labeling of every layer, tree_d and the replica file",
    after_help = "\
Reads sector documents (files, or stdin when none is given; stdin may hold several, one per
line), writes the layers (sc-02-data-layer-N.dat) and tree_d (sc-02-data-tree-d.dat) into
paths.cache in the reference layout, copies the unsealed data into paths.sealed, and prints each
document with replica_id added, one JSON document per line. comm_d must be the pieces' CommD
(seal-ap sets it); the data's tree_d root is checked against it.

A re-run after a kill resumes: finished layers are reused only if the journal in the cache
directory lists them and their checksum still matches.

The hashing thread and its prefetch thread run on the CPUs of the process's affinity mask,
CPUs that share an L3 cache first.

Several documents are one batch, labeled together in groups (16 sectors per core on AVX-512
lanes, up to 4 on SHA-NI chains). When the batch's layers (4× the sector size per sector,
counting tree_d) do not fit in the memory budget (--memory, default 70% of the memory
available), the batch is streamed: each group holds only the layer it labels, finished layers
go to their files, and the next layer reads its expander parents back from them (8 random
32-byte reads per node per sector), as many sectors at once as the budget holds.

Environment: FIL_PROOFS_PARENT_CACHE (parent cache directory, default
/var/tmp/filecoin-parents), FIL_PROOFS_VERIFY_CACHE=1 (check the parent cache digest),
SEALKIT_THREADS.

Examples:
  seal-ap job.json --piece - --fill < piece.car | seal-pc1 | seal-pc2
  taskset -c 0-7 seal-pc1 sector.json > pc1.json
  seal-pc1 s1.json s2.json s3.json s4.json      # several sectors of one proof type
  seal-pc1 --memory 64GiB s*.json              # a batch larger than 64 GiB, streamed"
)]
struct Args {
    /// Sector documents ('-' or none: stdin).
    docs: Vec<PathBuf>,

    /// CPUs to use from the affinity mask (default: SEALKIT_THREADS, else all of them).
    #[arg(long)]
    threads: Option<usize>,

    /// Memory budget of a batch ("4GiB", "512MiB", bytes): a batch whose layers do not fit
    /// reads previous layers back from its files (default: 70% of the memory available).
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,

    /// Report the time of each step on stderr.
    #[arg(short, long)]
    verbose: bool,
}

fn main() -> ExitCode {
    cli::run_main("seal-pc1", || run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    let memory = args
        .memory
        .as_deref()
        .map(|m| sealkit::sched::config::parse_size(m).context("--memory"))
        .transpose()?;
    let threads = cli::thread_count(args.threads)?;
    cli::init_threads(Some(threads))?;
    let mut docs = cli::read_document_args(&args.docs)?;
    let proofs = docs
        .iter()
        .map(|d| d.seal_proof())
        .collect::<Result<Vec<_>>>()?;
    if let Some(p) = proofs.iter().find(|p| **p != proofs[0]) {
        bail!(
            "a batch must have one proof type: {} and {} are mixed",
            proofs[0],
            p
        );
    }
    for d in &docs {
        if d.get("comm_r").is_some() {
            bail!("sector {} already went through PC2 (comm_r is set); re-running PC1 would overwrite its sealed replica", d.sector().map(|s| s.to_string()).unwrap_or_default());
        }
    }
    let mut cpus = sealkit::affinity::ordered_cpus();
    cpus.truncate(threads.max(1));
    let opts = Pc1Options {
        cpus,
        verbose: args.verbose,
        memory,
    };
    precommit1(&mut docs, &opts)?;
    for doc in &docs {
        cli::print_document(doc)?;
    }
    Ok(())
}
