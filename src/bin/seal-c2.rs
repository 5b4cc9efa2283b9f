//! seal-c2: Commit2. See `man/seal-c2.1`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{ensure, Result};
use clap::Parser;

use sealkit::cli;
use sealkit::commit::c1_output_path;
use sealkit::snark::params::generate_test_params;
use sealkit::snark::prove::commit2;

#[derive(Parser)]
#[command(
    name = "seal-c2",
    version,
    about = "Commit2: the Groth16 proof of a sealed sector",
    after_help = "\
Reads sector documents that went through seal-c1 (files, or stdin when none is given), proves
their Commit1 output (the document's c1_output, or --c1 FILE: ours, the reference's, or a
Commit1Out from Lotus/filecoin-ffi) with the reference's circuit and Groth16 prover, verifies
the proof, and prints each document with \"proof\" (hex) added, one per line. NI-PoRep
partition proofs are aggregated with SnarkPack, as the reference does.

Parameters are read from FIL_PROOFS_PARAMETER_CACHE (default
/var/tmp/filecoin-proof-parameters), as in Lotus. --generate-test-params writes random,
INSECURE parameters for testing into that directory (it must be set explicitly).

Examples:
  seal-c1 --seed \"$SEED\" pc2.json | seal-c2 > proven.json
  seal-c2 --c1 /tmp/commit1-out.json sector.json
  FIL_PROOFS_PARAMETER_CACHE=/var/tmp/test-params seal-c2 --generate-test-params 2KiB"
)]
struct Args {
    /// Sector documents ('-' or none: stdin).
    docs: Vec<PathBuf>,

    /// Prove this Commit1 output instead of the document's c1_output.
    #[arg(long)]
    c1: Option<PathBuf>,

    /// Write random, insecure test parameters for a sector size (2KiB, 8MiB, 512MiB; or a
    /// seal proof id) into FIL_PROOFS_PARAMETER_CACHE and exit. Repeatable.
    #[arg(long, value_name = "SIZE")]
    generate_test_params: Vec<String>,

    /// Worker threads (default: SEALKIT_THREADS, else every CPU this process may use).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    cli::run_main("seal-c2", || run(Args::parse()))
}

/// A sector size name or a proof id to a proof type with that size.
fn run(args: Args) -> Result<()> {
    cli::init_threads(args.threads)?;
    if !args.generate_test_params.is_empty() {
        ensure!(
            args.docs.is_empty() && args.c1.is_none(),
            "--generate-test-params takes no documents"
        );
        for s in &args.generate_test_params {
            generate_test_params(sealkit::snark::params::proof_for_size_arg(s)?)?;
        }
        return Ok(());
    }
    let mut docs = cli::read_document_args(&args.docs)?;
    ensure!(
        args.c1.is_none() || docs.len() == 1,
        "--c1 applies to one sector"
    );
    for doc in &mut docs {
        let c1 = match &args.c1 {
            Some(p) => p.clone(),
            None => c1_output_path(doc)?,
        };
        commit2(doc, &c1)?;
        cli::print_document(doc)?;
    }
    Ok(())
}
