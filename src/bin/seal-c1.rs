//! seal-c1: Commit1. See `man/seal-c1.1`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{ensure, Result};
use clap::Parser;

use sealkit::cli;
use sealkit::commit::{commit1, Commit1Options};

#[derive(Parser)]
#[command(
    name = "seal-c1",
    version,
    about = "Commit1: challenges from the seed, vanilla proofs, the Commit1 output",
    after_help = "\
Reads sector documents that went through seal-pc2 (files, or stdin when none is given), derives
the PoRep challenges (from the seed; from comm_r for non-interactive proof types; selected from
the stored synthetic proofs for synthetic ones), opens them in the sector's trees and layers,
checks every opening, and writes the Commit1 output to <cache>/commit1-output.json. That file is
byte-identical to the JSON of the reference's seal_commit_phase1, so any C2 can prove from it.
Prints each document with seed and c1_output added, one per line.

Examples:
  seal-c1 --seed 6a09e667...bb67ae85 --seed-epoch 1234 pc2.json > c1.json
  seal-pc2 pc1.json | seal-c1 --seed \"$SEED\" | seal-c2
  seal-c1 c1-ready.json          # the document already holds \"seed\""
)]
struct Args {
    /// Sector documents ('-' or none: stdin).
    docs: Vec<PathBuf>,

    /// The interactive seed (chain randomness at the seed epoch), 64 hex digits.
    #[arg(long)]
    seed: Option<String>,

    /// The epoch the seed was drawn at (recorded in the document).
    #[arg(long)]
    seed_epoch: Option<u64>,

    /// Worker threads (default: SEALKIT_THREADS, else every CPU this process may use).
    #[arg(long)]
    threads: Option<usize>,

    /// Report the time of each step on stderr.
    #[arg(short, long)]
    verbose: bool,
}

fn main() -> ExitCode {
    cli::run_main("seal-c1", || run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    cli::init_threads(args.threads)?;
    let mut docs = cli::read_document_args(&args.docs)?;
    ensure!(
        args.seed.is_none() || docs.len() == 1,
        "--seed applies to one sector; give each document its own \"seed\" field instead"
    );
    let opts = Commit1Options {
        verbose: args.verbose,
    };
    for doc in &mut docs {
        if let Some(s) = &args.seed {
            let seed = sealkit::hex::decode32(s).map_err(|e| anyhow::anyhow!("--seed: {e}"))?;
            doc.set_hex("seed", &seed);
        }
        if let Some(e) = args.seed_epoch {
            doc.set("seed_epoch", e);
        }
        commit1(doc, &opts)?;
        cli::print_document(doc)?;
    }
    Ok(())
}
