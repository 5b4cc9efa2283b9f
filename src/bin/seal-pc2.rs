//! seal-pc2: PreCommit2. See `man/seal-pc2.1`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use sealkit::cli;
use sealkit::pc2::{precommit2, Pc2Options};

#[derive(Parser)]
#[command(
    name = "seal-pc2",
    version,
    about = "PreCommit2: column hashes, tree_c, encoding, tree_r_last and comm_r",
    after_help = "\
Reads sector documents that went through seal-pc1 (files, or stdin when none is given), builds
tree_c from the layers, encodes the replica (paths.sealed) from the unsealed data and the last
layer, builds tree_r_last, and writes p_aux and t_aux, all in the reference's formats. Prints
each document with comm_c, comm_r_last, comm_r and sealed_cid added, one per line.

Safe to re-run at any time: the replica is always encoded from the unsealed file, never from
itself, so a kill during encoding or a second run cannot double-encode it.

Examples:
  seal-ap job.json --piece - --fill < piece.car | seal-pc1 | seal-pc2
  seal-pc2 pc1.json > pc2.json
  seal-pc2 -v s1.json s2.json"
)]
struct Args {
    /// Sector documents ('-' or none: stdin).
    docs: Vec<PathBuf>,

    /// Worker threads (default: SEALKIT_THREADS, else every CPU this process may use).
    #[arg(long)]
    threads: Option<usize>,

    /// Report the time of each step (and the tree builder) on stderr.
    #[arg(short, long)]
    verbose: bool,

    /// Column hashes and tree rows on the GPU (a build with the cuda feature); no usable GPU
    /// is an error. Same as SEALKIT_GPU=1. FIL_PROOFS_USE_GPU_COLUMN_BUILDER=1 and
    /// FIL_PROOFS_USE_GPU_TREE_BUILDER=1 ask for either part, falling back to the CPU with a
    /// warning when there is no GPU.
    #[arg(long)]
    gpu: bool,
}

fn main() -> ExitCode {
    cli::run_main("seal-pc2", || run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    cli::init_threads(args.threads)?;
    let mut docs = cli::read_document_args(&args.docs)?;
    let opts = Pc2Options {
        verbose: args.verbose,
        gpu: args.gpu,
    };
    for doc in &mut docs {
        precommit2(doc, &opts)?;
        cli::print_document(doc)?;
    }
    Ok(())
}
